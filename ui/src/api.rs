//! The one API client. Every failure becomes a sentence for the page to show.

use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

const TOKEN_KEY: &str = "promptos.token";

pub fn stored_token() -> Option<String> {
    let storage = web_sys::window()?.session_storage().ok()??;
    storage.get_item(TOKEN_KEY).ok()?
}

pub fn store_token(token: Option<&str>) {
    if let Some(storage) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
        let _ = match token {
            Some(t) => storage.set_item(TOKEN_KEY, t),
            None => storage.remove_item(TOKEN_KEY),
        };
    }
}

/// A failed call, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub message: String,
    pub field: Option<String>,
    /// The server's error code (`evaluation_gate_closed`, …); empty when it sent none.
    pub code: String,
    /// For a closed evaluation gate: the test cases that failed or still have to run.
    pub cases: Vec<String>,
}

impl Failure {
    pub(crate) fn network(e: JsValue) -> Self {
        let detail = e.as_string().unwrap_or_else(|| "the server could not be reached".into());
        Failure {
            status: 0,
            message: format!("PromptOS cannot be reached right now ({detail}). Try again in a moment."),
            field: None,
            code: String::new(),
            cases: Vec::new(),
        }
    }
}

/// Sends a request; `body` is JSON, or form-encoded when `form` is true.
pub async fn call(method: &str, path: &str, body: Option<String>, form: bool) -> Result<Value, Failure> {
    let text = send(method, path, body, form).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A request to `path` with the session's token; `body` is JSON, or form-encoded when
/// `form` is true. `accept` and `signal` (to abort it) are for streams.
pub(crate) fn request(
    method: &str,
    path: &str,
    body: Option<String>,
    form: bool,
    accept: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<Request, Failure> {
    let init = RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(Failure::network)?;
    if let Some(token) = stored_token() {
        headers.set("Authorization", &format!("Bearer {token}")).map_err(Failure::network)?;
    }
    if let Some(b) = &body {
        let kind = if form { "application/x-www-form-urlencoded" } else { "application/json" };
        headers.set("Content-Type", kind).map_err(Failure::network)?;
        init.set_body(&JsValue::from_str(b));
    }
    if let Some(accept) = accept {
        headers.set("Accept", accept).map_err(Failure::network)?;
    }
    init.set_signal(signal);
    init.set_headers(&headers);
    Request::new_with_str_and_init(path, &init).map_err(Failure::network)
}

/// Sends `request`; any answer, success or not, is a response.
pub(crate) async fn fetch(request: &Request) -> Result<Response, Failure> {
    let window = web_sys::window().expect("a browser window");
    Ok(JsFuture::from(window.fetch_with_request(request)).await.map_err(Failure::network)?.unchecked_into())
}

/// Sends a request and answers the body of a success as text.
async fn send(method: &str, path: &str, body: Option<String>, form: bool) -> Result<String, Failure> {
    let response = fetch(&request(method, path, body, form, None, None)?).await?;
    if !response.ok() {
        return Err(failure(&response, path).await);
    }
    let text = JsFuture::from(response.text().map_err(Failure::network)?).await.map_err(Failure::network)?;
    Ok(text.as_string().unwrap_or_default())
}

/// What a failed response (4xx, 5xx) to a call to `path` means, in a sentence.
pub(crate) async fn failure(response: &Response, path: &str) -> Failure {
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    let status = response.status();
    if status == 401 && path != "/auth/token" {
        // The session ended (expired token, password changed, account disabled).
        store_token(None);
    }
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let error = serde_json::from_value::<promptos_core::wire::ErrorBody>(json).ok().map(|b| b.error);
    let field = error.as_ref().and_then(|e| e.field.clone());
    let code = error.as_ref().map(|e| e.code.clone()).unwrap_or_default();
    let cases = error.as_ref().map(|e| e.cases.clone()).unwrap_or_default();
    let message = error.map(|e| e.message).unwrap_or_else(|| match status {
        401 => "Please log in again.".into(),
        403 => "You are not allowed to do this.".into(),
        404 => "Not found.".into(),
        s if s >= 500 => "The server failed to answer; try again in a moment.".into(),
        s => format!("The request failed (HTTP {s})."),
    });
    let mut message = message;
    if let Some(first) = message.get(..1) {
        message = first.to_uppercase() + &message[1..];
    }
    Failure { status, message, field, code, cases }
}

/// A GET whose answer is plain text (a key or a signed note to save as a file).
pub async fn get_text(path: &str) -> Result<String, Failure> {
    send("GET", path, None, false).await
}

pub async fn get(path: &str) -> Result<Value, Failure> {
    call("GET", path, None, false).await
}

pub async fn post(path: &str, body: Value) -> Result<Value, Failure> {
    call("POST", path, Some(body.to_string()), false).await
}

/// Percent-encodes a query or form value.
pub fn encode(s: &str) -> String {
    js_sys::encode_uri_component(s).into()
}
