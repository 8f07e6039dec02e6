//! Live updates: follows the server's change feed (`GET /changes/stream`, Server-Sent
//! Events) so a deploy made by someone else shows on the open page at once.
//!
//! The browser's `EventSource` cannot send an `Authorization` header, and a token in the
//! URL would end up in access logs; so the feed is read with `fetch` and a streaming body
//! ([`crate::sse`]). It reconnects with `Last-Event-ID` and a
//! growing pause, and stops when the page that started it goes away. What the feed does
//! not carry (the SDK instances' reports) is polled instead, with [`poll`].

use crate::api;
use crate::app::deliver;
use futures::StreamExt;
use std::cell::Cell;
use std::rc::Rc;
use sycamore::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Request, RequestInit, Response};

/// What the page says about its live connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Connecting,
    Live,
    /// Lost; retrying. The page still shows the last data it had.
    Retrying,
}

/// Why one connection ended.
enum End {
    /// The server closed it or the network dropped: try again.
    Dropped,
    /// Retrying would not help (the session ended, or the page was closed).
    Stop,
}

/// Waits `ms` milliseconds without blocking the page.
pub(crate) async fn pause(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Runs `load` now and then `every_ms` milliseconds after each run ends (so runs never
/// overlap), until the reactive scope that called `poll` is disposed. For what the change
/// feed does not carry: what the SDK instances report.
pub fn poll<F, Fut>(every_ms: i32, load: F)
where
    F: Fn() -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let stopped = Rc::new(Cell::new(false));
    let stop = stopped.clone();
    on_cleanup(move || stop.set(true));
    wasm_bindgen_futures::spawn_local(async move {
        // Checked before each run: `load` reads the page's signals, gone once it closes.
        while !stopped.get() {
            load().await;
            pause(every_ms).await;
        }
    });
}

/// Calls `on_change` for every change to `prompt` (and once after each reconnect, to catch
/// up), until the reactive scope that called `follow` is disposed.
pub fn follow(prompt: String, status: Signal<Status>, on_change: impl Fn() + Clone + 'static) {
    follow_path(format!("/changes/stream?prompt={}", api::encode(&prompt)), status, on_change);
}

/// As [`follow`], for a change to any prompt.
pub fn follow_all(status: Signal<Status>, on_change: impl Fn() + Clone + 'static) {
    follow_path("/changes/stream".to_owned(), status, on_change);
}

fn follow_path(path: String, status: Signal<Status>, on_change: impl Fn() + Clone + 'static) {
    let Ok(controller) = AbortController::new() else { return };
    let abort = controller.clone();
    on_cleanup(move || abort.abort());
    wasm_bindgen_futures::spawn_local(async move {
        let mut last_event_id: Option<String> = None;
        let mut delay = 500;
        let mut first = true;
        loop {
            if controller.signal().aborted() {
                return;
            }
            let catch_up = on_change.clone();
            let caught_up = !first;
            let connected = move || {
                deliver(status, Status::Live);
                if caught_up {
                    catch_up();
                }
            };
            match connect(&path, &controller, &mut last_event_id, connected, on_change.clone()).await {
                End::Stop => return,
                End::Dropped => {
                    if controller.signal().aborted() {
                        return;
                    }
                    deliver(status, Status::Retrying);
                }
            }
            first = false;
            pause(delay).await;
            delay = (delay * 2).min(10_000);
        }
    });
}

async fn connect(
    path: &str,
    controller: &AbortController,
    last_event_id: &mut Option<String>,
    connected: impl FnOnce(),
    on_change: impl Fn(),
) -> End {
    let Some(token) = api::stored_token() else { return End::Stop };
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_signal(Some(&controller.signal()));
    let Ok(headers) = web_sys::Headers::new() else { return End::Stop };
    let _ = headers.set("Authorization", &format!("Bearer {token}"));
    let _ = headers.set("Accept", "text/event-stream");
    if let Some(id) = last_event_id.as_deref() {
        let _ = headers.set("Last-Event-ID", id);
    }
    init.set_headers(&headers);
    let Ok(request) = Request::new_with_str_and_init(path, &init) else { return End::Stop };
    let Some(window) = web_sys::window() else { return End::Stop };
    let response: Response = match JsFuture::from(window.fetch_with_request(&request)).await {
        Ok(r) => r.unchecked_into(),
        Err(_) => return End::Dropped,
    };
    match response.status() {
        200 => {}
        401 | 403 => return End::Stop,
        _ => return End::Dropped,
    }
    let Some(mut events) = crate::sse::events_of(&response) else { return End::Dropped };
    connected();
    while let Some(event) = events.next().await {
        if !event.id.is_empty() {
            *last_event_id = Some(event.id);
        }
        if event.event == "change" {
            on_change();
        }
    }
    End::Dropped
}
