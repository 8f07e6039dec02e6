//! The change-request inbox (`/ui/change-requests`): the requests to review and apply,
//! open ones first, filtered by state and environment, each with its changes, its
//! approvals and whether it can be applied now. A request's own page ([`detail`]) has its
//! diffs, reviews and timeline, and the buttons to approve, reject, apply or withdraw it.

pub mod detail;

use crate::api;
use crate::app::{deliver, Session};
use crate::pages::prompt::text;
use crate::readable_time as when;
use serde_json::Value;
use std::collections::BTreeMap;
use sycamore::prelude::*;

/// The states a request can be in, as the filter offers them (empty: all).
const STATES: [(&str, &str); 6] = [
    ("open", "Open"),
    ("applied", "Applied"),
    ("rejected", "Rejected"),
    ("withdrawn", "Withdrawn"),
    ("expired", "Expired"),
    ("", "All"),
];

/// The page of the request with this id.
pub fn page_of(id: &str) -> String {
    format!("/ui/change-requests/{}", api::encode(id))
}

/// "1 of 2": the approvals that count now, of those the request needs.
fn approvals_line(request: &Value) -> String {
    format!("{} of {}", request["approvals_current"].as_u64().unwrap_or(0), request["approvals_required"])
}

/// The request's state and, while it is open, whether it is outdated or ready.
fn badges(request: &Value) -> View {
    let status = text(request, "status");
    let class = format!("cr-status {status}");
    let outdated = if request["outdated"] == true {
        view! { span(class="cr-status outdated", title="What is served changed since it was reviewed: it needs a fresh approval.") { "outdated" } }
    } else {
        view! {}
    };
    let ready = if request["ready"] == true {
        view! { span(class="cr-status ready", title="Approved against what is served now: it can be applied.") { "ready" } }
    } else {
        view! {}
    };
    view! { span(class="badges") { span(class=class) { (status) } (outdated) (ready) } }
}

#[component]
pub fn Inbox() -> View {
    let session = use_context::<Session>();
    let state = create_signal("open".to_owned());
    let environment = create_signal(String::new());
    let environments = create_signal(Vec::<String>::new());
    let requests = create_signal(None::<Vec<Value>>);
    // The open requests in full (id → request): the list does not carry their approvals.
    let details = create_signal(BTreeMap::<String, Value>::new());
    let error = create_signal(String::new());

    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(envs) = api::get("/environments").await {
            let names = envs["items"].as_array().map(|es| es.iter().map(|e| text(e, "name")).collect());
            deliver(environments, names.unwrap_or_default());
        }
    });
    create_effect(move || {
        let (wanted_state, wanted_env) = (state.get_clone(), environment.get_clone());
        let mut path = "/change-requests/?limit=200".to_owned();
        if !wanted_state.is_empty() {
            path.push_str(&format!("&state={}", api::encode(&wanted_state)));
        }
        if !wanted_env.is_empty() {
            path.push_str(&format!("&environment={}", api::encode(&wanted_env)));
        }
        // An answer for a filter changed meanwhile would list the wrong requests.
        let current = move || {
            state.is_alive()
                && state.with_untracked(|s| *s == wanted_state)
                && environment.with_untracked(|e| *e == wanted_env)
        };
        wasm_bindgen_futures::spawn_local(async move {
            let list = match api::get(&path).await {
                Ok(list) => list["items"].as_array().cloned().unwrap_or_default(),
                Err(f) => return deliver(error, f.message),
            };
            if !current() {
                return;
            }
            let open: Vec<String> = list.iter().filter(|r| r["status"] == "open").map(|r| text(r, "id")).collect();
            deliver(error, String::new());
            deliver(requests, Some(list));
            let paths: Vec<String> = open.iter().map(|id| format!("/change-requests/{}", api::encode(id))).collect();
            let answers = futures::future::join_all(paths.iter().map(|p| api::get(p))).await;
            if current() {
                let found = open.into_iter().zip(answers).filter_map(|(id, a)| Some((id, a.ok()?))).collect();
                deliver(details, found);
            }
        });
    });

    let state_options = STATES
        .iter()
        .map(|(value, label)| view! { option(value=*value, selected=*value == "open") { (*label) } })
        .collect::<Vec<View>>();
    let env_options = move || {
        environments
            .get_clone()
            .into_iter()
            .map(|n| {
                let value = n.clone();
                view! { option(value=value) { (n) } }
            })
            .collect::<Vec<View>>()
    };
    let rows = move || {
        let details = details.get_clone();
        requests
            .get_clone()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let id = text(&r, "id");
                // The full request when there is one, for its approvals and badges.
                let full = details.get(&id).cloned().unwrap_or_else(|| r.clone());
                let [title, env, author, scheduled] = ["title", "environment", "author", "scheduled_at"].map(|k| text(&r, k));
                let changes = r["summary"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| {
                        let line = c.as_str().unwrap_or_default().to_owned();
                        view! { li { (line) } }
                    })
                    .collect::<Vec<View>>();
                let approvals = if full["approvals_current"].is_null() { "—".to_owned() } else { approvals_line(&full) };
                let scheduled = if scheduled.is_empty() { "—".to_owned() } else { when(&scheduled) };
                let (href, target) = (page_of(&id), page_of(&id));
                let badges = badges(&full);
                view! {
                    tr("data-request-id"=id) {
                        td {
                            a(href=href, on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate(&target); }) { (title) }
                        }
                        td { (env) }
                        td { (author) }
                        td { ul(class="change-list") { (changes) } }
                        td(class="approvals") { (approvals) }
                        td(class="nowrap") { (scheduled) }
                        td { (badges) }
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    let body = move || match requests.with(|r| r.as_ref().map(Vec::is_empty)) {
        None => view! { p(class="hint") { "Loading…" } },
        Some(true) => view! { p(class="hint", "data-testid"="change-requests-empty") { "No change requests here." } },
        Some(false) => view! {
            div(class="scroll") {
                table(class="requests", "data-testid"="change-requests") {
                    thead {
                        tr { th { "Title" } th { "Environment" } th { "Author" } th { "Changes" } th { "Approvals" } th { "Scheduled" } th { "State" } }
                    }
                    tbody { (rows()) }
                }
            }
        },
    };
    view! {
        section(class="card") {
            h1 { "Change requests" }
            p(class="hint") {
                "Where a policy needs approvals, deploys, rollbacks and A/B tests are asked for here: an admin "
                "other than the author approves, then the author or an admin applies the request."
            }
            div(class="inline-form") {
                label(r#for="requests-state") { "State" }
                select(id="requests-state", bind:value=state) { (state_options) }
                label(r#for="requests-env") { "Environment" }
                select(id="requests-env", bind:value=environment) { option(value="") { "All" } (env_options()) }
            }
            p(class="error", role="alert") { (error.get_clone()) }
            (body())
        }
    }
}
