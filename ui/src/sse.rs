//! Server-sent events read with `fetch` and a streaming body, parsed by the same SSE
//! parser the SDK uses. The browser's `EventSource` can neither send an `Authorization`
//! header nor POST (the playground's run is a POST), so every stream in the UI is read
//! this way: the change feed ([`crate::live`]), an evaluation's progress and a
//! playground run.

use crate::api::{self, Failure};
use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::pin::Pin;
use sycamore::prelude::on_cleanup;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, ReadableStreamDefaultReader, Response};

/// The events of one response, in order; ends when the server closes the stream, the
/// connection drops, or the request is aborted.
pub(crate) type Events = Pin<Box<dyn Stream<Item = Event>>>;

/// The events in `response`'s body (a `text/event-stream`).
pub(crate) fn events_of(response: &Response) -> Option<Events> {
    let reader: ReadableStreamDefaultReader = response.body()?.get_reader().unchecked_into();
    let chunks = futures::stream::unfold(reader, |reader| async move {
        let chunk = JsFuture::from(reader.read()).await.ok()?;
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done")).ok()?.as_bool().unwrap_or(true);
        if done {
            return None;
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).ok()?;
        let bytes = js_sys::Uint8Array::new(&value).to_vec();
        Some((Ok::<_, JsValue>(bytes), reader))
    });
    // A malformed event ends the stream rather than being skipped: what follows it
    // cannot be trusted to be whole.
    let events =
        chunks.eventsource().take_while(|e| futures::future::ready(e.is_ok())).filter_map(|e| async { e.ok() });
    Some(Box::pin(events))
}

/// An abort controller for the streams the calling reactive scope opens: they are
/// aborted when the scope is disposed (the page or the section closes).
pub(crate) fn scoped_abort() -> Option<AbortController> {
    let controller = AbortController::new().ok()?;
    let abort = controller.clone();
    on_cleanup(move || abort.abort());
    Some(controller)
}

/// Opens a stream: `method` to `path` with an optional JSON `body`. A refusal (4xx,
/// 5xx) is a [`Failure`] with the server's message, as for any other call.
pub(crate) async fn open(
    method: &str,
    path: &str,
    body: Option<&Value>,
    controller: &AbortController,
) -> Result<Events, Failure> {
    let signal = controller.signal();
    let request =
        api::request(method, path, body.map(Value::to_string), false, Some("text/event-stream"), Some(&signal))?;
    let response = api::fetch(&request).await?;
    if !response.ok() {
        return Err(api::failure(&response, path).await);
    }
    events_of(&response).ok_or_else(|| Failure::network(JsValue::from_str("the answer had no body")))
}
