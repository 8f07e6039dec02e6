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
}

impl Failure {
    fn network(e: JsValue) -> Self {
        let detail = e.as_string().unwrap_or_else(|| "the server could not be reached".into());
        Failure {
            status: 0,
            message: format!("PromptOS cannot be reached right now ({detail}). Try again in a moment."),
            field: None,
        }
    }
}

/// Sends a request; `body` is JSON, or form-encoded when `form` is true.
pub async fn call(method: &str, path: &str, body: Option<String>, form: bool) -> Result<Value, Failure> {
    let text = send(method, path, body, form).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Sends a request and answers the body of a success as text.
async fn send(method: &str, path: &str, body: Option<String>, form: bool) -> Result<String, Failure> {
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
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(path, &init).map_err(Failure::network)?;
    let window = web_sys::window().expect("a browser window");
    let response: Response =
        JsFuture::from(window.fetch_with_request(&request)).await.map_err(Failure::network)?.unchecked_into();
    let text = JsFuture::from(response.text().map_err(Failure::network)?).await.map_err(Failure::network)?;
    let text = text.as_string().unwrap_or_default();
    if response.ok() {
        return Ok(text);
    }
    let status = response.status();
    if status == 401 && path != "/auth/token" {
        // The session ended (expired token, password changed, account disabled).
        store_token(None);
    }
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let error = serde_json::from_value::<promptos_core::wire::ErrorBody>(json).ok().map(|b| b.error);
    let field = error.as_ref().and_then(|e| e.field.clone());
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
    Err(Failure { status, message, field })
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
