//! LLM providers behind one trait: each knows how to phrase one completion request in its
//! wire format and where the answer sits in the reply. Sending, timeouts, bounded retries
//! and turning failures into plain words are shared by all of them ([`complete`]).

use crate::config::{LlmArgs, Secret};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why a provider gave no suggestion. Messages quote the provider's own reason.
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
    fn default_model(&self) -> &str;
    /// The HTTP request asking `model` to answer `prompt`.
    fn request(&self, http: &reqwest::Client, model: &str, prompt: &str) -> Result<reqwest::Request, String>;
    /// The answer's text in a successful reply.
    fn answer(&self, reply: &Value) -> Option<String>;
}

/// Timeouts and retries, shared by every provider.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub timeout: Duration,
    pub max_retries: u32,
    /// First pause between attempts; it doubles each time.
    pub backoff: Duration,
}

/// Asks `provider` once, retrying transient failures up to `policy.max_retries` times.
pub async fn complete(
    provider: &dyn Provider,
    http: &reqwest::Client,
    policy: Policy,
    model: &str,
    prompt: &str,
) -> Result<String, ProviderError> {
    let mut attempt = 0;
    loop {
        match attempt_once(provider, http, policy, model, prompt).await {
            Err((e, retry_after)) if e.retryable() && attempt < policy.max_retries => {
                let pause = retry_after.unwrap_or(policy.backoff * 2u32.pow(attempt)).min(Duration::from_secs(10));
                tracing::warn!(provider = provider.name(), attempt, error = %e, "LLM call failed; retrying");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            Err((e, _)) => return Err(e),
            Ok(text) => return Ok(text),
        }
    }
}

async fn attempt_once(
    provider: &dyn Provider,
    http: &reqwest::Client,
    policy: Policy,
    model: &str,
    prompt: &str,
) -> Result<String, (ProviderError, Option<Duration>)> {
    let name = provider.name().to_owned();
    let mut request = provider
        .request(http, model, prompt)
        .map_err(|reason| (ProviderError::Misconfigured { provider: name.clone(), reason }, None))?;
    *request.timeout_mut() = Some(policy.timeout);
    let response = http.execute(request).await.map_err(|e| (transport(&name, policy, e), None))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.map_err(|e| (transport(&name, policy, e), None))?;
    if !status.is_success() {
        let reason = reason_in(&body);
        let status = status.as_u16();
        let e = match status {
            401 | 403 => ProviderError::Unauthorized { provider: name, status, reason },
            429 => ProviderError::RateLimited { provider: name, reason },
            s if s >= 500 => ProviderError::Failed { provider: name, status, reason },
            _ => ProviderError::Rejected { provider: name, status, reason },
        };
        return Err((e, retry_after));
    }
    let malformed = |reason: String| (ProviderError::Malformed { provider: name.clone(), reason }, None);
    let reply: Value = serde_json::from_str(&body).map_err(|e| malformed(format!("not JSON ({e})")))?;
    match provider.answer(&reply) {
        Some(text) if !text.trim().is_empty() => Ok(text),
        Some(_) => Err(malformed("the answer is empty".into())),
        None => Err(malformed("no answer text where the format puts it".into())),
    }
}

fn transport(provider: &str, policy: Policy, e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout { provider: provider.to_owned(), seconds: policy.timeout.as_secs().max(1) };
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
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        [&v["error"]["message"], &v["message"], &v["Message"], &v["error"]]
            .into_iter()
            .find_map(|m| m.as_str().map(str::to_owned))
    });
    let reason = from_json.unwrap_or_else(|| body.trim().to_owned());
    let reason: String = reason.chars().take(300).collect();
    if reason.is_empty() {
        "no reason given".to_owned()
    } else {
        reason
    }
}

fn json_post(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    http.post(url).header(CONTENT_TYPE, "application/json").body(body.to_string())
}

fn build(builder: reqwest::RequestBuilder) -> Result<reqwest::Request, String> {
    builder.build().map_err(|e| format!("the request cannot be built: {}", e.without_url()))
}

/// OpenAI's chat completions, also spoken by Ollama, vLLM, LM Studio and others.
pub struct OpenAi {
    pub name: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }
    fn default_model(&self) -> &str {
        &self.model
    }
    fn request(&self, http: &reqwest::Client, model: &str, prompt: &str) -> Result<reqwest::Request, String> {
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let body = json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
        let mut builder = json_post(http, &url, &body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        build(builder)
    }
    fn answer(&self, reply: &Value) -> Option<String> {
        chat_completion_answer(reply)
    }
}

/// Azure OpenAI: the deployment in the path, the key in an `api-key` header.
pub struct Azure {
    pub endpoint: String,
    pub api_key: Secret,
    pub deployment: String,
    pub api_version: String,
}

impl Provider for Azure {
    fn name(&self) -> &str {
        "azure"
    }
    fn default_model(&self) -> &str {
        &self.deployment
    }
    fn request(&self, http: &reqwest::Client, model: &str, prompt: &str) -> Result<reqwest::Request, String> {
        let url = format!(
            "{}/openai/deployments/{}/chat/completions?api-version={}",
            self.endpoint.trim_end_matches('/'),
            urlencode(model),
            urlencode(&self.api_version)
        );
        let body = json!({"messages": [{"role": "user", "content": prompt}]});
        build(json_post(http, &url, &body).header("api-key", self.api_key.expose()))
    }
    fn answer(&self, reply: &Value) -> Option<String> {
        chat_completion_answer(reply)
    }
}

/// Google Gemini's `generateContent`.
pub struct Gemini {
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
}

impl Provider for Gemini {
    fn name(&self) -> &str {
        "gemini"
    }
    fn default_model(&self) -> &str {
        &self.model
    }
    fn request(&self, http: &reqwest::Client, model: &str, prompt: &str) -> Result<reqwest::Request, String> {
        let url = format!("{}/models/{}:generateContent", self.base_url.trim_end_matches('/'), urlencode(model));
        let body = json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}]});
        build(json_post(http, &url, &body).header("x-goog-api-key", self.api_key.expose()))
    }
    fn answer(&self, reply: &Value) -> Option<String> {
        let parts = reply["candidates"][0]["content"]["parts"].as_array()?;
        Some(parts.iter().filter_map(|p| p["text"].as_str()).collect())
    }
}

/// Amazon Bedrock's Converse API, signed with SigV4.
pub struct Bedrock {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub model: String,
}

impl Provider for Bedrock {
    fn name(&self) -> &str {
        "bedrock"
    }
    fn default_model(&self) -> &str {
        &self.model
    }
    fn request(&self, http: &reqwest::Client, model: &str, prompt: &str) -> Result<reqwest::Request, String> {
        let url = format!("{}/model/{}/converse", self.endpoint.trim_end_matches('/'), urlencode(model));
        let body = json!({"messages": [{"role": "user", "content": [{"text": prompt}]}]}).to_string();
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
    fn answer(&self, reply: &Value) -> Option<String> {
        let parts = reply["output"]["message"]["content"].as_array()?;
        Some(parts.iter().filter_map(|p| p["text"].as_str()).collect())
    }
}

/// The answer in an OpenAI chat completion (also Azure's and compatible servers').
fn chat_completion_answer(reply: &Value) -> Option<String> {
    reply["choices"][0]["message"]["content"].as_str().map(str::to_owned)
}

/// Everything but RFC 3986's unreserved characters is escaped in a path segment (a
/// Bedrock model id's `:` included).
const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string()
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
    fn secrets_do_not_show_in_debug_output() {
        let p = OpenAi {
            name: "openai".into(),
            base_url: "x".into(),
            api_key: Some(Secret::new("sk-123")),
            model: "m".into(),
        };
        assert!(!format!("{:?}", p.api_key).contains("sk-123"));
    }
}
