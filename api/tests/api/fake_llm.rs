//! A local stand-in for a paid LLM provider: a real HTTP server on a random port that
//! records each request and answers from a script, so PromptOS's real client code runs
//! end to end against each provider's wire format.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One request as the provider received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    /// Path and query.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    /// A `Location` header, for redirects.
    pub location: Option<String>,
    /// When not empty, the reply is `text/event-stream` and these are its events' data,
    /// each sent as soon as the one before it (`body` is then unused).
    pub events: Vec<String>,
    /// Ends each line of an event (`\n`; Gemini's servers send `\r\n`).
    pub line_end: &'static str,
    /// How many events carry no more than the first piece of text.
    pub first_piece: usize,
    /// When set, the stream waits after its first piece until the gate is released.
    pub gate: Option<Gate>,
}

/// Holds a streamed reply open after its first piece until the test releases it, so a
/// test can see the first piece reach the client while the provider has not finished.
#[derive(Clone, Default)]
pub struct Gate(Arc<Notify>);

impl Gate {
    pub fn new() -> Self {
        Gate::default()
    }

    /// Lets the held reply go on (also when released before the reply got there).
    pub fn release(&self) {
        self.0.notify_one();
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Reply {
    fn new(status: u16, body: String) -> Self {
        Reply {
            status,
            body,
            delay: Duration::ZERO,
            location: None,
            events: Vec::new(),
            line_end: "\n",
            first_piece: 0,
            gate: None,
        }
    }
    pub fn ok(body: Value) -> Self {
        Reply::new(200, body.to_string())
    }
    pub fn status(status: u16, body: &str) -> Self {
        Reply::new(status, body.to_owned())
    }
    pub fn slow(delay: Duration) -> Self {
        Reply { delay, ..Reply::new(200, "{}".into()) }
    }
    /// A 307 to `location` (the method and body are to be sent again there).
    pub fn redirect(location: &str) -> Self {
        Reply { location: Some(location.to_owned()), ..Reply::new(307, String::new()) }
    }

    /// A `text/event-stream` reply with these events' data, sent one by one.
    pub fn events(events: impl IntoIterator<Item = Value>) -> Self {
        let events: Vec<String> = events.into_iter().map(|e| e.to_string()).collect();
        Reply { first_piece: events.len().min(1), events, ..Reply::new(200, String::new()) }
    }

    /// OpenAI's streamed chat completion (`stream_options.include_usage` on): a chunk with
    /// the role, one per piece, the finish, the usage, then `[DONE]`.
    pub fn openai_stream(pieces: &[&str], usage: (u64, u64)) -> Self {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
        };
        let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
        events.extend(pieces.iter().map(|p| chunk(json!({"content": p}), Value::Null)));
        events.push(chunk(json!({}), json!("stop")));
        events.push(json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1}}));
        let mut reply = Reply::events(events);
        reply.events.push("[DONE]".into());
        Reply { first_piece: 2, ..reply }
    }

    /// Gemini's `streamGenerateContent?alt=sse`: one response per piece, each with the
    /// usage so far; the last one finishes and has the whole usage.
    pub fn gemini_stream(pieces: &[&str], usage: (u64, u64)) -> Self {
        let last = pieces.len().saturating_sub(1);
        let events = pieces.iter().enumerate().map(|(i, p)| {
            let mut candidate = json!({"content": {"role": "model", "parts": [{"text": p}]}, "index": 0});
            let mut metadata = json!({"promptTokenCount": usage.0, "totalTokenCount": usage.0});
            if i == last {
                candidate["finishReason"] = json!("STOP");
                metadata = json!({"promptTokenCount": usage.0, "candidatesTokenCount": usage.1,
                    "totalTokenCount": usage.0 + usage.1});
            }
            json!({"candidates": [candidate], "usageMetadata": metadata, "modelVersion": "gemini-2.0-flash"})
        });
        Reply { line_end: "\r\n", ..Reply::events(events) }
    }

    /// Holds the stream open after its first piece until `gate` is released.
    pub fn held_after_first_piece(self, gate: &Gate) -> Self {
        Reply { gate: Some(gate.clone()), ..self }
    }
}

/// Answers a request by what it asks.
type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    /// Asked when the queue is empty.
    responder: Option<Responder>,
    /// Answered when the queue is empty and there is no responder.
    fallback: Option<Reply>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct FakeLlm {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl FakeLlm {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeLlm { url, script }
    }

    /// Queues replies, answered in order.
    pub fn reply(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.script.lock().unwrap().replies.extend(replies);
        self
    }

    /// Answers each request by calling `f` once the queue is empty (before the fallback),
    /// so that concurrent requests can be answered by what they ask.
    pub fn respond(&self, f: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> &Self {
        self.script.lock().unwrap().responder = Some(Arc::new(f));
        self
    }

    /// Answers every request once the queue is empty.
    pub fn always(&self, reply: Reply) -> &Self {
        self.script.lock().unwrap().fallback = Some(reply);
        self
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received =
        Received { method, uri: uri.to_string(), headers, body: serde_json::from_slice(&body).unwrap_or(Value::Null) };
    let (queued, responder, fallback) = {
        let mut s = script.lock().unwrap();
        s.received.push(received.clone());
        (s.replies.pop_front(), s.responder.clone(), s.fallback.clone())
    };
    // The responder runs outside the lock: it may take its time, or look at the fake.
    let Some(reply) = queued.or_else(|| responder.map(|f| f(&received))).or(fallback) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the fake has no reply scripted").into_response();
    };
    tokio::time::sleep(reply.delay).await;
    if !reply.events.is_empty() {
        return streamed(reply);
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json"), ("retry-after", "0")],
        reply.body,
    )
        .into_response();
    if let Some(location) = reply.location {
        response.headers_mut().insert("location", location.parse().unwrap());
    }
    response
}

/// The reply's events, each written to the connection as soon as the one before it (and
/// the gate, after the first piece).
fn streamed(reply: Reply) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        for (i, data) in reply.events.iter().enumerate() {
            let event = format!("data: {data}{end}{end}", end = reply.line_end);
            if tx.send(Ok(Bytes::from(event))).await.is_err() {
                return; // the client went away
            }
            if i + 1 == reply.first_piece {
                if let Some(gate) = &reply.gate {
                    gate.0.notified().await;
                }
            }
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }));
    (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "text/event-stream"), ("cache-control", "no-cache")],
        body,
    )
        .into_response()
}

/// Successful replies in each provider's format, with a token usage of (11, 7).
pub fn openai_reply(text: &str) -> Reply {
    openai_reply_with_usage(text, (11, 7))
}

pub fn openai_reply_with_usage(text: &str, usage: (u64, u64)) -> Reply {
    Reply::ok(json!({"id": "chatcmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1}}))
}

pub fn gemini_reply(text: &str) -> Reply {
    gemini_reply_with_usage(text, (11, 7))
}

pub fn gemini_reply_with_usage(text: &str, usage: (u64, u64)) -> Reply {
    Reply::ok(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": usage.0, "candidatesTokenCount": usage.1,
            "totalTokenCount": usage.0 + usage.1}}))
}

pub fn bedrock_reply(text: &str) -> Reply {
    bedrock_reply_with_usage(text, (10, 5))
}

pub fn bedrock_reply_with_usage(text: &str, usage: (u64, u64)) -> Reply {
    Reply::ok(json!({"output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": usage.0, "outputTokens": usage.1, "totalTokens": usage.0 + usage.1}}))
}
