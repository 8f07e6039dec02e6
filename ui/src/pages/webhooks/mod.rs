//! The Webhooks page (`/ui/webhooks`, admins only): the URLs subscribed to the log's
//! events, a form to add one, and for each its actions ([`card`]) and its delivery log
//! ([`deliveries`]). A signing secret comes back from the server once, when a webhook is
//! made or its secret rotated, so the page shows it then and never again.

mod card;
mod deliveries;

use crate::api;
use crate::app::{deliver, Session};
use crate::live;
use crate::pages::secret::SecretReveal;
use crate::webhook_form::{event_types_problem, known_event_types, list_field, with_event_type};
use card::WebhookCard;
use serde_json::{json, Value};
use sycamore::prelude::*;

/// Every two seconds the list and each delivery log are asked again while the page is
/// open: deliveries happen on the server's schedule, not on the change feed.
const REFRESH_MS: i32 = 2_000;

/// The webhooks as the server lists them, shared by the page and its cards.
#[derive(Clone, Copy)]
pub(super) struct Subscriptions {
    items: Signal<Option<Vec<Value>>>,
    error: Signal<String>,
}

impl Subscriptions {
    /// Asks for the list; an unchanged answer leaves the page as it is.
    async fn load(self) {
        match api::get("/webhooks/").await {
            Ok(list) => {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                if self.error.is_alive() && !self.error.with_untracked(String::is_empty) {
                    self.error.set(String::new());
                }
                if self.items.is_alive() && self.items.with_untracked(|i| i.as_ref() != Some(&items)) {
                    self.items.set(Some(items));
                }
            }
            Err(f) => deliver(self.error, f.message),
        }
    }

    fn reload(self) {
        wasm_bindgen_futures::spawn_local(self.load());
    }

    /// The webhook with this id, as last listed (`Null` once it is gone).
    fn find(self, id: &str) -> Value {
        self.items.with(|i| i.iter().flatten().find(|w| w["id"] == id).cloned().unwrap_or(Value::Null))
    }
}

#[component]
pub fn WebhooksPage() -> View {
    let session = use_context::<Session>();
    // None until the session knows who is logged in.
    let role = create_selector(move || session.me.with(|m| m.as_ref().map(|_| session.role())));
    view! {
        (match role.get_clone() {
            None => view! { p(class="hint") { "Loading…" } },
            Some(r) if r == "admin" => view! { Webhooks {} },
            Some(_) => view! {
                section(class="card") {
                    h1 { "Webhooks" }
                    p(class="hint", "data-testid"="webhooks-admins-only") { "Only admins manage webhooks." }
                }
            },
        })
    }
}

#[component]
fn Webhooks() -> View {
    let hooks = Subscriptions { items: create_signal(None), error: create_signal(String::new()) };
    live::poll(REFRESH_MS, move || hooks.load());

    let ids = create_selector(move || {
        hooks
            .items
            .with(|i| i.iter().flatten().map(|w| w["id"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>())
    });
    let list = move || match hooks.items.with(|i| i.as_ref().map(Vec::is_empty)) {
        None => view! { p(class="hint") { "Loading…" } },
        Some(true) => view! {
            p(class="hint", "data-testid"="webhooks-empty") {
                "No webhooks yet. Add one above: its URL receives a signed POST for each event it asks for."
            }
        },
        Some(false) => view! {},
    };
    view! {
        section(class="card") {
            h1 { "Webhooks" }
            p(class="hint") {
                "Other tools (CI, chat, warehouses) hear about what happens here: each event of the log is "
                "POSTed to the URLs that ask for it, signed as the Standard Webhooks specification says, "
                "retried until the receiver answers 2xx. Delivery logs refresh every two seconds."
            }
            p(class="error", role="alert") { (hooks.error.get_clone()) }
        }
        AddWebhook(hooks=hooks)
        (list())
        div(class="webhooks", "data-testid"="webhooks") {
            Keyed(list=ids, view=move |id| view! { WebhookCard(id=id, hooks=hooks) }, key=|id| id.clone())
        }
    }
}

/// The form that subscribes a new URL; shows the new webhook's secret once.
#[component(inline_props)]
fn AddWebhook(hooks: Subscriptions) -> View {
    let url = create_signal(String::new());
    let description = create_signal(String::new());
    let format = create_signal("standard".to_owned());
    let event_types = create_signal(String::new());
    let environments = create_signal(String::new());
    let prompts = create_signal(String::new());
    let tags = create_signal(String::new());
    let form_error = create_signal(String::new());
    let busy = create_signal(false);
    let secret = create_signal(None::<(String, String)>);

    let types_problem = create_memo(move || event_types.with(|t| event_types_problem(&list_field(t))));
    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let body = json!({
            "url": url.get_clone().trim(),
            "description": description.get_clone().trim(),
            "format": format.get_clone(),
            "event_types": list_field(&event_types.get_clone()),
            "environments": list_field(&environments.get_clone()),
            "prompts": list_field(&prompts.get_clone()),
            "tags": list_field(&tags.get_clone()),
        });
        busy.set(true);
        secret.set(None);
        wasm_bindgen_futures::spawn_local(async move {
            match api::post("/webhooks/", body).await {
                Ok(created) => {
                    let heading = format!("Signing secret of {}", created["url"].as_str().unwrap_or_default());
                    deliver(secret, Some((heading, created["secret"].as_str().unwrap_or_default().to_owned())));
                    deliver(form_error, String::new());
                    for field in [url, description, event_types, environments, prompts, tags] {
                        deliver(field, String::new());
                    }
                    hooks.load().await;
                }
                Err(f) => deliver(form_error, f.message),
            }
            deliver(busy, false);
        });
    };
    let type_buttons = known_event_types()
        .map(|t| {
            view! {
                button(r#type="button", class="tag", on:click=move |_| event_types.set(with_event_type(&event_types.get_clone(), t))) { (t) }
            }
        })
        .collect::<Vec<View>>();
    view! {
        section(class="card", "aria-label"="Add webhook") {
            h2 { "Add webhook" }
            form(on:submit=submit, "aria-label"="Add a webhook") {
                label(r#for="webhook-url") { "URL" }
                input(id="webhook-url", r#type="url", placeholder="https://ci.example.com/hooks/promptos", required=true, bind:value=url)
                label(r#for="webhook-description") { "Description (optional)" }
                input(id="webhook-description", bind:value=description)
                label(r#for="webhook-format") { "Format" }
                select(id="webhook-format", bind:value=format) {
                    option(value="standard", selected=true) { "Standard Webhooks (JSON event)" }
                    option(value="slack") { "Slack (a text message)" }
                }
                label(r#for="webhook-event-types") { "Event types (optional)" }
                input(id="webhook-event-types", placeholder="prompt.version.deployed, change_request.*", bind:value=event_types,
                    "aria-describedby"="webhook-event-types-hint")
                p(id="webhook-event-types-hint", role="status",
                    class=move || if types_problem.with(Option::is_some) { "hint error" } else { "hint" }) {
                    (types_problem.get_clone().unwrap_or_else(|| "Comma-separated; empty: every event.".to_owned()))
                }
                details(class="event-types") {
                    summary { "Known event types" }
                    div { (type_buttons) }
                }
                label(r#for="webhook-environments") { "Environments (optional)" }
                input(id="webhook-environments", placeholder="production, staging", bind:value=environments)
                label(r#for="webhook-prompts") { "Prompts (optional)" }
                input(id="webhook-prompts", placeholder="customer-support-agent", bind:value=prompts)
                label(r#for="webhook-tags") { "Tags (optional)" }
                input(id="webhook-tags", placeholder="billing", bind:value=tags)
                p(class="hint") {
                    "Environments, prompts and tags are comma-separated too; a list left empty does not narrow "
                    "what is sent. The server takes https URLs to public addresses."
                }
                p(class="error", role="alert", "data-testid"="webhook-form-error") { (form_error.get_clone()) }
                button(r#type="submit",
                    disabled=move || busy.get() || url.with(|u| u.trim().is_empty()) || types_problem.with(Option::is_some)) {
                    "Add webhook"
                }
            }
            SigningSecret(secret=secret)
        }
    }
}

/// A new signing secret, shown once.
#[component(inline_props)]
pub(super) fn SigningSecret(secret: Signal<Option<(String, String)>>) -> View {
    let note = "Receivers check each delivery's webhook-signature header with it; a lost secret can only be \
                replaced (Rotate secret).";
    view! { SecretReveal(secret=secret, label="New signing secret", note=note, testid="webhook-secret") }
}
