//! A local stand-in for a paid LLM provider: a real HTTP server on a random port that
//! records each request and answers from a script, so PromptOS's real client code runs
//! end to end against each provider's wire format.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply { status: 200, body: body.to_string(), delay: Duration::ZERO, location: None }
    }
    pub fn status(status: u16, body: &str) -> Self {
        Reply { status, body: body.to_owned(), delay: Duration::ZERO, location: None }
    }
    pub fn slow(delay: Duration) -> Self {
        Reply { status: 200, body: "{}".into(), delay, location: None }
    }
    /// A 307 to `location` (the method and body are to be sent again there).
    pub fn redirect(location: &str) -> Self {
        Reply { status: 307, body: String::new(), delay: Duration::ZERO, location: Some(location.to_owned()) }
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    /// Answered when the script runs out.
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
    let reply = {
        let mut s = script.lock().unwrap();
        s.received.push(Received {
            method,
            uri: uri.to_string(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        s.replies.pop_front().or_else(|| s.fallback.clone())
    };
    let Some(reply) = reply else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the fake has no reply scripted").into_response();
    };
    tokio::time::sleep(reply.delay).await;
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

/// Successful replies in each provider's format.
pub fn openai_reply(text: &str) -> Reply {
    Reply::ok(serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}))
}

pub fn gemini_reply(text: &str) -> Reply {
    Reply::ok(
        serde_json::json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]}),
    )
}

pub fn bedrock_reply(text: &str) -> Reply {
    Reply::ok(serde_json::json!({"output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn", "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}}))
}
