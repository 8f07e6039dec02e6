//! Asking for a change where a policy needs approval first (`PROMPTOS_APPROVALS`): there,
//! the Deployments tab's deploy, rollback and A/B test actions make a [`Proposal`]
//! instead of changing the environment. This card lets its author title and describe it
//! and, if they wish, schedule it, opens the change request, and links to it in the
//! inbox, where admins review it.

use super::{text, Data};
use crate::api;
use crate::app::{deliver, Session};
use serde_json::{json, Value};
use sycamore::prelude::*;

/// One change to one environment, waiting for its request to be written.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Proposal {
    pub environment: String,
    /// The request's change (`{"action": "deploy", "prompt_name": …}`).
    pub change: Value,
    /// What the title starts as.
    pub title: String,
}

impl Proposal {
    pub fn deploy(prompt: &str, environment: &str, version: &str) -> Self {
        Proposal {
            environment: environment.to_owned(),
            change: json!({"action": "deploy", "prompt_name": prompt, "version_string": version}),
            title: format!("Deploy {version} of {prompt} to {environment}"),
        }
    }

    /// Back to the version live before `live`; the server pins which one that is.
    pub fn rollback(prompt: &str, environment: &str, live: &str) -> Self {
        Proposal {
            environment: environment.to_owned(),
            change: json!({"action": "rollback", "prompt_name": prompt}),
            title: format!("Roll {prompt} back from {live} in {environment}"),
        }
    }

    /// The request for what a direct call to `path` (one of `/deployments/split…`) with
    /// `payload` would have done.
    pub fn split(path: &str, payload: &Value) -> Self {
        let (prompt, environment) = (text(payload, "prompt_name"), text(payload, "environment"));
        let variants = crate::split_summary(&payload["variants"]);
        let (action, title) = match path {
            "/deployments/split/weights" => (
                "change_experiment_weights",
                format!("Change the A/B test weights of {prompt} in {environment} to {variants}"),
            ),
            "/deployments/split/stop" => (
                "stop_experiment",
                format!("Stop the A/B test of {prompt} in {environment}, keeping {}", text(payload, "version_string")),
            ),
            _ => ("start_experiment", format!("Start an A/B test of {prompt} in {environment}: {variants}")),
        };
        let mut change = json!({"action": action, "prompt_name": prompt});
        for key in ["variants", "version_string"] {
            if !payload[key].is_null() {
                change[key] = payload[key].clone();
            }
        }
        Proposal { environment, change, title }
    }
}

/// The request form for `proposal` while there is one; then a link to the request opened.
#[component(inline_props)]
pub(super) fn RequestCard(data: Data, proposal: Signal<Option<Proposal>>) -> View {
    let session = use_context::<Session>();
    let title = create_signal(String::new());
    let description = create_signal(String::new());
    let apply_at = create_signal(String::new());
    let error = create_signal(String::new());
    // The request opened last: its id and title.
    let opened = create_signal(None::<(String, String)>);
    create_effect(move || {
        let Some(p) = proposal.get_clone() else { return };
        title.set(p.title);
        description.set(String::new());
        apply_at.set(String::new());
        error.set(String::new());
        opened.set(None);
        // Once the card is drawn (right after this), the title is where to type.
        wasm_bindgen_futures::spawn_local(async {
            use wasm_bindgen::JsCast;
            let field = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("request-title"));
            if let Some(field) = field.and_then(|f| f.dyn_into::<web_sys::HtmlElement>().ok()) {
                let _ = field.focus();
            }
        });
    });
    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let Some(p) = proposal.get_clone() else { return };
        let mut body = json!({
            "environment": p.environment,
            "title": title.get_clone().trim(),
            "description": description.get_clone().trim(),
            "changes": [p.change],
        });
        if let Some(at) = crate::utc_time_from_input(&apply_at.get_clone()) {
            body["apply_at"] = json!(at);
        }
        wasm_bindgen_futures::spawn_local(async move {
            match api::post("/change-requests/", body).await {
                Ok(request) => {
                    deliver(error, String::new());
                    deliver(opened, Some((text(&request, "id"), text(&request, "title"))));
                    deliver(proposal, None);
                }
                Err(f) => deliver(error, f.message),
            }
        });
    };
    let form = move || {
        let Some(p) = proposal.get_clone() else { return view! {} };
        let needed = data.approvals_required(&p.environment).unwrap_or(1);
        let heading = format!("Request a change to {}", p.environment);
        let hint = format!(
            "{} changes through change requests: {needed} {} by an admin other than you, then you or an admin applies it.",
            p.environment,
            if needed == 1 { "approval" } else { "approvals" }
        );
        view! {
            section(class="card", "aria-label"="Change request") {
                h2 { (heading) }
                p(class="hint") { (hint) }
                form(on:submit=submit, "aria-label"="Open a change request") {
                    label(r#for="request-title") { "Title" }
                    input(id="request-title", maxlength="200", bind:value=title)
                    label(r#for="request-description") { "Description (optional)" }
                    textarea(id="request-description", rows="3", maxlength="4000", bind:value=description)
                    label(r#for="request-apply-at") { "Apply at (UTC, optional)" }
                    input(id="request-apply-at", r#type="datetime-local", bind:value=apply_at)
                    p(class="hint") { "Scheduled, it is applied at that time once approved; otherwise you apply it after approval." }
                    p(class="error", role="alert") { (error.get_clone()) }
                    div(class="actions") {
                        button(r#type="submit", disabled=move || title.with(|t| t.trim().is_empty())) { "Open change request" }
                        button(r#type="button", class="secondary", on:click=move |_| proposal.set(None)) { "Cancel" }
                    }
                }
            }
        }
    };
    let notice = move || {
        let Some((id, request_title)) = opened.get_clone() else { return view! {} };
        let href = format!("/ui/change-requests/{}", api::encode(&id));
        let target = href.clone();
        view! {
            section(class="card") {
                p(class="notice", role="status", "data-testid"="request-opened") {
                    "Change request opened: "
                    a(href=href, on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate(&target); }) { (request_title) }
                    ". Nothing changes until it is approved and applied."
                }
            }
        }
    };
    view! {
        (form())
        (notice())
    }
}
