//! One event of the Audit page's log: position, time, type, actor, and the prompt and
//! environment it concerns; "Details" opens its payload (pretty JSON) and its hashes.

use crate::api;
use crate::app::Session;
use crate::audit::{event_change_request, event_environment, event_prompt};
use crate::readable_time;
use serde_json::Value;
use sycamore::prelude::*;

/// A link inside the app (no reload).
fn app_link(href: String, text: String) -> View {
    let session = use_context::<Session>();
    let go = href.clone();
    view! { a(href=href, on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate(&go); }) { (text) } }
}

#[component(inline_props)]
pub(super) fn EventRow(event: Value) -> View {
    let open = create_signal(false);
    let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
    let position = event["position"].to_string();
    let kind = text("type");
    let (at, actor) = (readable_time(&text("recorded_at")), text("actor"));
    let prompt = match event_prompt(&event) {
        Some(name) => app_link(format!("/ui/prompts/{}", api::encode(&name)), name),
        None => view! {},
    };
    let environment = event_environment(&event).unwrap_or_default();
    let label = format!("Details of event {position}");
    let (position_attr, kind_attr) = (position.clone(), kind.clone());
    let detail = {
        let event = event.clone();
        let position = position.clone();
        move || {
            if !open.get() {
                return view! {};
            }
            let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
            let payload = serde_json::to_string_pretty(&event["payload"]).unwrap_or_default();
            let [hash, prev_hash, stream, event_id, recorded_at, request_id] =
                ["hash", "prev_hash", "stream_id", "event_id", "recorded_at", "request_id"].map(text);
            let stream_version = event["stream_version"].to_string();
            let position = position.clone();
            let request = match event_change_request(&event) {
                Some(id) => {
                    let link = app_link(format!("/ui/change-requests/{}", api::encode(&id)), id);
                    view! { dt { "Change request" } dd { (link) } }
                }
                None => view! {},
            };
            let forced = if event["forced"] == true {
                view! { dt { "Forced" } dd { "An admin bypassed the change-request policy." } }
            } else {
                view! {}
            };
            view! {
                tr(class="event-detail", "data-testid"="event-detail") {
                    td(colspan="7") {
                        h3 { "Payload" }
                        pre(class="payload", "data-testid"="event-payload") { (payload) }
                        dl(class="facts hashes") {
                            dt { "Hash" } dd { code("data-testid"="event-hash") { (hash) } }
                            dt { "Previous hash" } dd { code("data-testid"="event-prev-hash") { (prev_hash) } }
                            dt { "Stream" } dd { code { (stream) } " version " (stream_version) }
                            dt { "Event id" } dd { code { (event_id) } }
                            dt { "Recorded at" } dd { (recorded_at) }
                            dt { "Request id" } dd { code { (request_id) } }
                            (request)
                            (forced)
                        }
                        p(class="hint") { "Event " (position) " as the log holds it; secrets are shown as [redacted]." }
                    }
                }
            }
        }
    };
    view! {
        tr("data-position"=position_attr, "data-type"=kind_attr, class=move || if open.get() { "open" } else { "" }) {
            td { (position) }
            td(class="nowrap") { (at) }
            td { span(class="event-type") { (kind) } }
            td { (actor) }
            td { (prompt) }
            td { (environment) }
            td {
                button(class="secondary", "aria-label"=label, "aria-expanded"=move || open.get().to_string(),
                    on:click=move |_| open.set(!open.get())) { "Details" }
            }
        }
        (detail())
    }
}
