//! Talking to LLM providers. Each provider is one [`Provider`]: it knows how to phrase a
//! [`Completion`] (chat messages, a model, the version's model configuration) in its wire
//! format, and where the answer and its token usage sit in the reply. Sending, timeouts,
//! bounded retries and turning failures into plain words are shared by all of them:
//! [`complete`] for one answer, [`stream`] for an answer passed on piece by piece.
//!
//! Keys stay in [`Secret`](crate::config::Secret)s: they are never logged and never part of an error message.

mod bedrock;
mod gemini;
mod openai;
mod sse;

pub use bedrock::Bedrock;
pub use gemini::Gemini;
pub use openai::{Azure, OpenAi};

use crate::config::LlmArgs;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message { role: role.into(), content: content.into() }
    }

    /// A message from the user.
    pub fn user(content: impl Into<String>) -> Self {
        Message::new("user", content)
    }
}

/// What to ask a model.
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// The model (for Azure, the deployment). A configuration's own `model` is not read:
    /// the caller has already chosen.
    pub model: &'a str,
    pub messages: &'a [Message],
    /// The version's model configuration under OpenAI's names (`temperature`,
    /// `max_tokens`, `top_p`, `stop`, …). Each provider sends what it has an equivalent for.
    pub config: Option<&'a Map<String, Value>>,
}

/// A model's answer, and the tokens it took when the provider says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub text: String,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// What one event of a streamed answer carries: the text it adds (often none), and the
/// usage when the event reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// Why a provider gave no answer. Messages quote the provider's own reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider} did not answer within {seconds} s")]
    Timeout { provider: String, seconds: u64 },
    #[error("{provider} cannot be reached: {reason}")]
    Unreachable { provider: String, reason: String },
    #[error("{provider} refused the credentials (HTTP {status}): {reason}")]
    Unauthorized { provider: String, status: u16, reason: String },
    #[error("{provider} is limiting requests (HTTP 429): {reason}")]
    RateLimited { provider: String, reason: String },
    #[error("{provider} failed (HTTP {status}): {reason}")]
    Failed { provider: String, status: u16, reason: String },
    #[error("{provider} rejected the request (HTTP {status}): {reason}")]
    Rejected { provider: String, status: u16, reason: String },
    /// An error event inside a streamed answer, after the provider had already said 200.
    #[error("{provider} broke off the answer: {reason}")]
    Interrupted { provider: String, reason: String },
    #[error("{provider} sent a reply PromptOS cannot read: {reason}")]
    Malformed { provider: String, reason: String },
    #[error("{provider} is misconfigured: {reason}")]
    Misconfigured { provider: String, reason: String },
}

impl ProviderError {
    /// Worth another try: the provider may answer next time.
    fn retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Timeout { .. }
                | ProviderError::Unreachable { .. }
                | ProviderError::RateLimited { .. }
                | ProviderError::Failed { .. }
                | ProviderError::Interrupted { .. }
        )
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, ProviderError::Timeout { .. })
    }
}

/// One provider's wire format.
pub trait Provider: Send + Sync {
    /// The name requests and responses use (`openai`, `azure`, …).
    fn name(&self) -> &str;
    /// The model used when the caller names none.
    fn default_model(&self) -> &str;
    /// The HTTP request asking for `c`. With `stream` (asked only of a provider that
    /// [`streams`](Provider::streams)), the answer is to come as server-sent events.
    fn request(&self, http: &reqwest::Client, c: &Completion<'_>, stream: bool) -> Result<reqwest::Request, String>;
    /// The answer in a successful reply; `None` when there is no text where the format
    /// puts it.
    fn answer(&self, reply: &Value) -> Option<Answer>;
    /// Whether the provider can send its answer as server-sent events of JSON.
    fn streams(&self) -> bool {
        false
    }
    /// What one event (its `data`, as JSON) of a streamed answer carries.
    fn delta(&self, _event: &Value) -> Piece {
        Piece::default()
    }
}

/// Timeouts and retries, shared by every provider.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Bounds a whole call; in a stream, the wait for the response and for each next event.
    pub timeout: Duration,
    pub max_retries: u32,
    /// First pause between attempts; it doubles each time.
    pub backoff: Duration,
}

impl Policy {
    /// The policy the server's configuration asks for.
    pub fn configured(args: &LlmArgs) -> Self {
        Policy {
            timeout: Duration::from_secs(args.llm_timeout_secs.max(1)),
            max_retries: args.llm_max_retries.min(10),
            backoff: Duration::from_millis(250),
        }
    }
}

/// The HTTP client to call providers with.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        // Azure and Gemini take their keys in headers of their own (`api-key`,
        // `x-goog-api-key`), which reqwest does not strip when a redirect leads to
        // another host. So redirects are followed only within the same origin; any
        // other is answered as the provider's error.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin && attempt.previous().len() < 5 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .build()
        .expect("an HTTP client with default TLS settings builds")
}

/// One answer, retrying transient failures (timeouts, 429, 5xx, an unreachable
/// provider) up to `policy.max_retries` times with growing pauses.
pub async fn complete(
    provider: &dyn Provider,
    http: &reqwest::Client,
    policy: Policy,
    c: &Completion<'_>,
) -> Result<Answer, ProviderError> {
    with_retries(provider, http, policy, c, None).await
}

/// The answer streamed: each piece of text is sent on `deltas` as it arrives; the whole
/// answer with its usage is returned at the end. A provider that cannot stream answers in
/// one piece (one delta).
///
/// Transient failures are retried only before the first piece was sent: after it, another
/// attempt would send the caller text a second time. A closed `deltas` does not stop the
/// stream (the answer and its usage are still returned); drop the future to stop it.
pub async fn stream(
    provider: &dyn Provider,
    http: &reqwest::Client,
    policy: Policy,
    c: &Completion<'_>,
    deltas: mpsc::Sender<String>,
) -> Result<Answer, ProviderError> {
    if !provider.streams() {
        let answer = complete(provider, http, policy, c).await?;
        // A caller that stopped listening still gets the answer returned.
        let _ = deltas.send(answer.text.clone()).await;
        return Ok(answer);
    }
    with_retries(provider, http, policy, c, Some(&deltas)).await
}

/// One failed attempt.
struct Failure {
    error: ProviderError,
    /// The provider's `Retry-After`.
    retry_after: Option<Duration>,
    /// Text already reached the caller: another attempt would send it again.
    spoken: bool,
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        Failure { error, retry_after: None, spoken: false }
    }
}

/// Attempts until one succeeds, fails for good, or the retries are used up; streamed when
/// there are `deltas` to send the pieces on.
async fn with_retries(
    provider: &dyn Provider,
    http: &reqwest::Client,
    policy: Policy,
    c: &Completion<'_>,
    deltas: Option<&mpsc::Sender<String>>,
) -> Result<Answer, ProviderError> {
    let mut attempt = 0;
    loop {
        let result = match deltas {
            Some(deltas) => sse::stream_once(provider, http, policy, c, deltas).await,
            None => answer_once(provider, http, policy, c).await,
        };
        match result {
            Ok(answer) => return Ok(answer),
            Err(f) if f.error.retryable() && !f.spoken && attempt < policy.max_retries => {
                let pause = f.retry_after.unwrap_or(policy.backoff * 2u32.pow(attempt)).min(Duration::from_secs(10));
                tracing::warn!(provider = provider.name(), attempt, error = %f.error, "LLM call failed; retrying");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            Err(f) => return Err(f.error),
        }
    }
}

async fn answer_once(
    provider: &dyn Provider,
    http: &reqwest::Client,
    policy: Policy,
    c: &Completion<'_>,
) -> Result<Answer, Failure> {
    let name = provider.name();
    let mut request = provider.request(http, c, false).map_err(|reason| misconfigured(name, reason))?;
    *request.timeout_mut() = Some(policy.timeout);
    let response = within(name, policy, http.execute(request)).await?;
    let response = successful(name, policy, response).await?;
    let body = within(name, policy, response.text()).await?;
    Ok(read_answer(provider, &body)?)
}

/// The response when its status says success; otherwise the provider's error in its own
/// words.
async fn successful(name: &str, policy: Policy, response: reqwest::Response) -> Result<reqwest::Response, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let reason = reason_in(&within(name, policy, response.text()).await?);
    let (provider, status) = (name.to_owned(), status.as_u16());
    let error = match status {
        401 | 403 => ProviderError::Unauthorized { provider, status, reason },
        429 => ProviderError::RateLimited { provider, reason },
        s if s >= 500 => ProviderError::Failed { provider, status, reason },
        _ => ProviderError::Rejected { provider, status, reason },
    };
    Err(Failure { error, retry_after, spoken: false })
}

/// The answer in a whole (not streamed) reply body.
fn read_answer(provider: &dyn Provider, body: &str) -> Result<Answer, ProviderError> {
    let malformed =
        |reason: &str| ProviderError::Malformed { provider: provider.name().to_owned(), reason: reason.into() };
    let reply: Value = serde_json::from_str(body).map_err(|e| malformed(&format!("not JSON ({e})")))?;
    match provider.answer(&reply) {
        Some(answer) if !answer.text.trim().is_empty() => Ok(answer),
        Some(_) => Err(malformed("the answer is empty")),
        None => Err(malformed("no answer text where the format puts it")),
    }
}

/// `f` (a step of a call), bounded by `policy.timeout`. A streamed request has no overall
/// timeout of its own, so each of its steps is bounded here.
async fn within<T>(
    name: &str,
    policy: Policy,
    f: impl Future<Output = reqwest::Result<T>>,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(policy.timeout, f).await {
        Ok(result) => result.map_err(|e| transport(name, policy, e)),
        Err(_) => Err(timed_out(name, policy)),
    }
}

fn timed_out(provider: &str, policy: Policy) -> ProviderError {
    ProviderError::Timeout { provider: provider.to_owned(), seconds: policy.timeout.as_secs().max(1) }
}

fn misconfigured(provider: &str, reason: String) -> ProviderError {
    ProviderError::Misconfigured { provider: provider.to_owned(), reason }
}

fn transport(provider: &str, policy: Policy, e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return timed_out(provider, policy);
    }
    // Without the URL: it may carry a key in its query string. The cause says why.
    let e = e.without_url();
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    ProviderError::Unreachable { provider: provider.to_owned(), reason }
}

/// The provider's own words from an error body (each format nests them differently).
fn reason_in(body: &str) -> String {
    let reason = serde_json::from_str::<Value>(body).ok().and_then(|v| reason_of(&v));
    let reason = reason.unwrap_or_else(|| body.trim().to_owned());
    let reason: String = reason.chars().take(300).collect();
    if reason.is_empty() {
        "no reason given".to_owned()
    } else {
        reason
    }
}

fn reason_of(error: &Value) -> Option<String> {
    [&error["error"]["message"], &error["message"], &error["Message"], &error["error"]]
        .into_iter()
        .find_map(|m| m.as_str().map(str::to_owned))
}

fn json_post(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    http.post(url).header(CONTENT_TYPE, "application/json").body(body.to_string())
}

fn build(builder: reqwest::RequestBuilder) -> Result<reqwest::Request, String> {
    builder.build().map_err(|e| format!("the request cannot be built: {}", e.without_url()))
}

/// Everything but RFC 3986's unreserved characters is escaped in a path segment (a
/// Bedrock model id's `:` included).
const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

/// System texts, then the conversation as turns, the way Gemini and Bedrock take it:
/// system messages go apart, and consecutive messages from one side become one turn
/// (Bedrock refuses two turns in a row from the same side). Neither takes a plain-text
/// `tool` turn (a tool result needs the id of a call these messages do not carry), so a
/// tool message reaches the model as the user's words.
fn turns<'m>(messages: &'m [Message], assistant: &'static str) -> (Vec<&'m str>, Vec<(&'static str, Vec<&'m str>)>) {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<&'m str>)> = Vec::new();
    for m in messages {
        let role = match m.role.as_str() {
            "system" => {
                system.push(m.content.as_str());
                continue;
            }
            "assistant" => assistant,
            _ => "user",
        };
        match turns.last_mut() {
            Some((last, texts)) if *last == role => texts.push(&m.content),
            _ => turns.push((role, vec![&m.content])),
        }
    }
    (system, turns)
}

/// The configuration's values a provider has an equivalent for, under its names (`names`
/// pairs OpenAI's name with the provider's). A single `stop` string becomes a list, the
/// only form Gemini and Bedrock take.
fn renamed(config: Option<&Map<String, Value>>, names: &[(&str, &str)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (ours, theirs) in names {
        match config.and_then(|c| c.get(*ours)) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if *ours == "stop" => {
                out.insert((*theirs).to_owned(), json!([s]));
            }
            Some(v) => {
                out.insert((*theirs).to_owned(), v.clone());
            }
        }
    }
    out
}

/// The providers the configuration enables, in the order of precedence for the default.
pub fn configured(args: &LlmArgs) -> Vec<Arc<dyn Provider>> {
    let mut out: Vec<Arc<dyn Provider>> = Vec::new();
    if let Some(key) = &args.llm_openai_api_key {
        out.push(Arc::new(OpenAi {
            name: "openai".into(),
            base_url: args.llm_openai_base_url.clone(),
            api_key: Some(key.clone()),
            model: args.llm_openai_model.clone(),
        }));
    }
    if let (Some(endpoint), Some(key), Some(deployment)) =
        (&args.llm_azure_endpoint, &args.llm_azure_api_key, &args.llm_azure_deployment)
    {
        out.push(Arc::new(Azure {
            endpoint: endpoint.clone(),
            api_key: key.clone(),
            deployment: deployment.clone(),
            api_version: args.llm_azure_api_version.clone(),
        }));
    }
    if let Some(key) = &args.llm_gemini_api_key {
        out.push(Arc::new(Gemini {
            base_url: args.llm_gemini_base_url.clone(),
            api_key: key.clone(),
            model: args.llm_gemini_model.clone(),
        }));
    }
    if let (Some(region), Some(id), Some(secret)) =
        (&args.llm_bedrock_region, &args.aws_access_key_id, &args.aws_secret_access_key)
    {
        out.push(Arc::new(Bedrock {
            endpoint: args
                .llm_bedrock_endpoint
                .clone()
                .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com")),
            region: region.clone(),
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: args.aws_session_token.clone(),
            model: args.llm_bedrock_model.clone(),
        }));
    }
    if let (Some(base_url), Some(model)) = (&args.llm_compatible_base_url, &args.llm_compatible_model) {
        out.push(Arc::new(OpenAi {
            name: "compatible".into(),
            base_url: base_url.clone(),
            api_key: args.llm_compatible_api_key.clone(),
            model: model.clone(),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_come_from_each_format_error_shape() {
        assert_eq!(reason_in(r#"{"error":{"message":"Incorrect API key provided"}}"#), "Incorrect API key provided");
        assert_eq!(
            reason_in(r#"{"message":"The security token included in the request is invalid."}"#),
            "The security token included in the request is invalid."
        );
        assert_eq!(reason_in("upstream connect error"), "upstream connect error");
        assert_eq!(reason_in(""), "no reason given");
    }

    #[test]
    fn model_ids_are_escaped_in_paths() {
        assert_eq!(urlencode("anthropic.claude-3-5-haiku-20241022-v1:0"), "anthropic.claude-3-5-haiku-20241022-v1%3A0");
    }

    #[test]
    fn system_messages_go_apart_and_one_side_s_messages_make_one_turn() {
        let messages = [
            Message::new("system", "Be brief."),
            Message::user("Hi"),
            Message::new("tool", "42"),
            Message::new("assistant", "Hello"),
            Message::new("system", "No emojis."),
            Message::user("Bye"),
        ];
        let (system, turns) = turns(&messages, "model");
        assert_eq!(system, ["Be brief.", "No emojis."]);
        assert_eq!(turns, [("user", vec!["Hi", "42"]), ("model", vec!["Hello"]), ("user", vec!["Bye"])]);
    }

    #[test]
    fn configuration_is_renamed_and_a_single_stop_becomes_a_list() {
        let config = json!({"temperature": 0.2, "top_p": 0.9, "stop": "END", "max_tokens": null, "logit_bias": {}});
        let out = renamed(
            config.as_object(),
            &[
                ("temperature", "temperature"),
                ("top_p", "topP"),
                ("stop", "stopSequences"),
                ("max_tokens", "maxTokens"),
            ],
        );
        assert_eq!(Value::Object(out), json!({"temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}));
        assert!(renamed(None, &[("temperature", "temperature")]).is_empty());
    }
}
