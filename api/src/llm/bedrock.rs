//! Amazon Bedrock's Converse API, signed with SigV4. It does not stream here:
//! ConverseStream answers in AWS's binary event-stream encoding, not server-sent events,
//! so [`crate::llm::stream`] gets its answer in one piece.

use super::{build, renamed, turns, urlencode, Answer, Completion, Provider};
use crate::config::Secret;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};
use std::time::SystemTime;

/// Amazon Bedrock's Converse API, signed with SigV4.
pub struct Bedrock {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub model: String,
}

/// OpenAI's configuration names and Converse's `inferenceConfig` equivalents. Bedrock
/// refuses unknown fields there, so nothing else is sent.
const INFERENCE: &[(&str, &str)] =
    &[("temperature", "temperature"), ("top_p", "topP"), ("max_tokens", "maxTokens"), ("stop", "stopSequences")];

impl Provider for Bedrock {
    fn name(&self) -> &str {
        "bedrock"
    }
    fn default_model(&self) -> &str {
        &self.model
    }
    fn request(&self, http: &reqwest::Client, c: &Completion<'_>, _stream: bool) -> Result<reqwest::Request, String> {
        let url = format!("{}/model/{}/converse", self.endpoint.trim_end_matches('/'), urlencode(c.model));
        let body = body(c).to_string();
        let mut request = build(http.post(&url).header(CONTENT_TYPE, "application/json").body(body.clone()))?;
        let identity = Credentials::new(
            self.access_key_id.expose(),
            self.secret_access_key.expose(),
            self.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "promptos-config",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("bedrock")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            request.url().as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _) =
            sign(signable, &params).map_err(|e| format!("cannot sign the request: {e}"))?.into_parts();
        for (name, value) in instructions.headers() {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let mut value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            value.set_sensitive(name == AUTHORIZATION || name.as_str() == "x-amz-security-token");
            request.headers_mut().insert(name, value);
        }
        Ok(request)
    }
    fn answer(&self, reply: &Value) -> Option<Answer> {
        let parts = reply["output"]["message"]["content"].as_array()?;
        Some(Answer {
            text: parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            input_tokens: reply["usage"]["inputTokens"].as_u64(),
            output_tokens: reply["usage"]["outputTokens"].as_u64(),
        })
    }
}

/// System messages go in the top-level `system`; each turn's messages are text blocks.
fn body(c: &Completion<'_>) -> Value {
    let (system, turns) = turns(c.messages, "assistant");
    let blocks = |texts: Vec<&str>| texts.into_iter().map(|t| json!({"text": t})).collect::<Vec<_>>();
    let messages: Vec<Value> =
        turns.into_iter().map(|(role, texts)| json!({"role": role, "content": blocks(texts)})).collect();
    let mut body = json!({"messages": messages});
    if !system.is_empty() {
        body["system"] = json!(blocks(system));
    }
    let inference = renamed(c.config, INFERENCE);
    if !inference.is_empty() {
        body["inferenceConfig"] = Value::Object(inference);
    }
    body
}
