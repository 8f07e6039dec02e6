//! One webhook on the Webhooks page: where it sends, what it receives, whether it is
//! enabled (and why the server stopped it, if it did), its actions (Send test, Rotate
//! secret, Enable/Disable, Delete) and its delivery log.

use super::deliveries::{time_of, DeliveryLog};
use super::{SigningSecret, Subscriptions};
use crate::api;
use crate::app::deliver;
use crate::pages::prompt::text;
use crate::webhook_form::filter_summary;
use serde_json::{json, Value};
use sycamore::prelude::*;

/// What to do with a successful answer.
type Then = Box<dyn FnOnce(Value)>;

#[component(inline_props)]
pub(super) fn WebhookCard(id: String, hooks: Subscriptions) -> View {
    let path = create_signal(format!("/webhooks/{}", api::encode(&id)));
    let key = id.clone();
    let webhook = create_selector(move || hooks.find(&key));
    let busy = create_signal(false);
    let action_error = create_signal(String::new());
    let notice = create_signal(String::new());
    let secret = create_signal(None::<(String, String)>);
    // The delivery the log should follow closely: a test just sent, a redelivery.
    let watch = create_signal(None::<String>);

    let run = move |method: &'static str, suffix: &'static str, body: Option<Value>, then: Then| {
        let to = format!("{}{suffix}", path.get_clone_untracked());
        busy.set(true);
        action_error.set(String::new());
        notice.set(String::new());
        wasm_bindgen_futures::spawn_local(async move {
            match api::call(method, &to, body.map(|b| b.to_string()), false).await {
                Ok(answer) => then(answer),
                Err(f) => deliver(action_error, f.message),
            }
            deliver(busy, false);
        });
    };
    let send_test = move |_| {
        run(
            "POST",
            "/test",
            Some(json!({})),
            Box::new(move |answer| {
                let delivery = text(&answer, "delivery_id");
                deliver(
                    notice,
                    format!("Test ping queued (webhook-id {delivery}); it shows in the delivery log below."),
                );
                deliver(watch, Some(delivery));
            }),
        )
    };
    let rotate = move |_| {
        run(
            "POST",
            "/rotate-secret",
            None,
            Box::new(move |answer| {
                let until = time_of(js_sys::Date::parse(&text(&answer, "previous_valid_until")));
                deliver(secret, Some(("New signing secret".to_owned(), text(&answer, "secret"))));
                deliver(
                notice,
                format!("The previous secret signs deliveries too until {until}: give the receiver the new one before then."),
            );
            }),
        )
    };
    let enabled = create_selector(move || webhook.with(|w| w["enabled"] == true));
    let toggle = move |_| {
        let body = json!({ "enabled": !enabled.get_untracked() });
        run("PATCH", "", Some(body), Box::new(move |_| hooks.reload()))
    };
    let delete = move |_| {
        let url = webhook.with_untracked(|w| text(w, "url"));
        let sure = web_sys::window()
            .and_then(|w| {
                w.confirm_with_message(&format!("Delete the webhook to {url}? Nothing more is sent to it.")).ok()
            })
            .unwrap_or(false);
        if sure {
            run("DELETE", "", None, Box::new(move |_| hooks.reload()));
        }
    };

    let header = move || {
        let w = webhook.get_clone();
        if w.is_null() {
            return view! {};
        }
        let [url, description, created_at, created_by] =
            ["url", "description", "created_at", "created_by"].map(|k| text(&w, k));
        let format = match w["format"].as_str() {
            Some("slack") => "Slack (a text message)",
            _ => "Standard Webhooks (JSON event)",
        };
        let added = format!("{} by {created_by}", crate::readable_time(&created_at));
        let description = if description.is_empty() {
            view! {}
        } else {
            view! { p(class="description") { (description) } }
        };
        let state = if w["enabled"] == true {
            view! { span(class="webhook-state enabled", "data-testid"="webhook-state") { "enabled" } }
        } else {
            view! { span(class="webhook-state disabled", "data-testid"="webhook-state") { "disabled" } }
        };
        let reason = match w["disabled_reason"].as_str().filter(|_| w["enabled"] != true) {
            Some(reason) => {
                let line =
                    format!("The server stopped delivering: {reason}. Enable it to resume from where it stopped.");
                view! { p(class="notice", "data-testid"="webhook-disabled-reason") { (line) } }
            }
            None => view! {},
        };
        view! {
            div(class="title-row") { h2(class="webhook-url") { (url) } (state) }
            (description)
            dl(class="facts") {
                dt { "Receives" } dd("data-testid"="webhook-filter") { (filter_summary(&w)) }
                dt { "Format" } dd { (format) }
                dt { "Added" } dd { (added) }
            }
            (reason)
        }
    };
    let label = move || format!("Webhook {}", webhook.with(|w| text(w, "url")));
    view! {
        section(class="card webhook", "aria-label"=label, "data-webhook-id"=id.clone()) {
            (header())
            div(class="actions") {
                button(r#type="button", disabled=move || busy.get(), on:click=send_test) { "Send test" }
                button(r#type="button", class="secondary", disabled=move || busy.get(), on:click=rotate) { "Rotate secret" }
                button(r#type="button", class="secondary", disabled=move || busy.get(), on:click=toggle) {
                    (if enabled.get() { "Disable" } else { "Enable" })
                }
                button(r#type="button", class="danger", disabled=move || busy.get(), on:click=delete) { "Delete" }
            }
            p(class="hint", role="status", "data-testid"="webhook-notice") { (notice.get_clone()) }
            p(class="error", role="alert", "data-testid"="webhook-error") { (action_error.get_clone()) }
            SigningSecret(secret=secret)
            DeliveryLog(webhook_path=path.get_clone_untracked(), watch=watch)
        }
    }
}
