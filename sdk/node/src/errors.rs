//! The SDK's errors as JavaScript errors the JS layer (`lib/errors.js`) turns into
//! `PromptosError` subclasses: the message is a JSON object with the class name and the
//! details, so no detail is lost on the way and no JS class is needed on this side.

use promptos_sdk::Error;
use serde_json::json;

/// `error` as a thrown or rejected JS `Error` whose message is
/// `{"kind", "message", "prompt", "environment", "variables"}`.
pub fn to_js(error: Error) -> napi::Error {
    let (kind, prompt, environment, variables): (&str, Option<&str>, Option<&str>, Vec<&str>) = match &error {
        Error::NotFound { prompt, environment } => ("PromptNotFound", Some(prompt), Some(environment), vec![]),
        Error::MissingVariable { prompt, name } => ("MissingVariable", Some(prompt), None, vec![name.as_str()]),
        Error::Render { prompt, .. } => ("RenderError", Some(prompt), None, vec![]),
        Error::Unauthorized(_) => ("Unauthorized", None, None, vec![]),
        Error::Unavailable { prompt, environment, .. } => ("Unavailable", Some(prompt), Some(environment), vec![]),
        Error::Protocol(_) => ("ProtocolError", None, None, vec![]),
        Error::WrongKind { prompt, .. } => ("WrongKind", Some(prompt), None, vec![]),
        Error::Config(_) => ("ConfigurationError", None, None, vec![]),
    };
    let kind_of_prompt = match &error {
        Error::WrongKind { kind, .. } => Some(kind.as_str()),
        _ => None,
    };
    let detail = json!({
        "kind": kind,
        "message": error.to_string(),
        "prompt": prompt,
        "environment": environment,
        "variables": variables,
        "promptKind": kind_of_prompt,
    });
    napi::Error::from_reason(detail.to_string())
}

/// The prompt is not in the cache (or may not be served from it without asking the
/// server) and a synchronous call must not wait: a refresh has been started.
pub fn not_cached(name: &str, env: &str) -> napi::Error {
    let detail = json!({
        "kind": "Unavailable",
        "message": format!(
            "prompt {name:?} ({env}) is not cached yet; it is being fetched now (await prompts.fetch() waits for it)"
        ),
        "prompt": name,
        "environment": env,
        "variables": [],
    });
    napi::Error::from_reason(detail.to_string())
}

/// A client used after `close()`.
pub fn closed() -> napi::Error {
    let detail = json!({"kind": "ConfigurationError", "message": "this PromptOS client is closed", "variables": []});
    napi::Error::from_reason(detail.to_string())
}
