//! The History tab, for auditors: the prompt's event timeline (newest first) with who did
//! what and when, each event's payload on demand, a filter by event type, and export of
//! what the filter selects as JSON Lines or CSV. Above it, the change requests that
//! touched the prompt, each linked to its page in the inbox.

use super::{text, when, Data};
use crate::api;
use crate::app::{deliver, Session};
use crate::download::download;
use crate::export;
use promptos_core::events::Event;
use serde_json::Value;
use sycamore::prelude::*;

/// A one-line account of an event, in the product's words.
fn summary(e: &Value) -> String {
    let p = &e["payload"];
    let s = |k: &str| text(p, k);
    match e["type"].as_str().unwrap_or_default() {
        "PromptCreated" if s("description").is_empty() => "Created the prompt".to_owned(),
        "PromptCreated" => format!("Created the prompt: “{}”", s("description")),
        "PromptUpdated" => format!("Changed the description to “{}”", s("description")),
        "PromptDeleted" => "Deleted the prompt".to_owned(),
        "VersionCreated" => {
            let made = match p["commit_message"].as_str() {
                Some(m) => format!("Created version {} ({m})", s("version_string")),
                None => format!("Created version {}", s("version_string")),
            };
            match super::versions::origin_line(&p["origin"]) {
                origin if origin.is_empty() => made,
                origin => format!("{made}. {origin}"),
            }
        }
        "VersionDeployed" => {
            let deployed = match p["previous_version_string"].as_str() {
                Some(prev) => format!("Deployed {} to {} (was {prev})", s("version_string"), s("environment")),
                None => format!("Deployed {} to {}", s("version_string"), s("environment")),
            };
            match p["gate"]["by"].as_str() {
                Some("evaluation") => format!(
                    "{deployed}; the evaluation gate opened on a run that passed {}/{}",
                    p["gate"]["passed"], p["gate"]["total"]
                ),
                Some("override") => {
                    format!("{deployed}; the evaluation gate was overridden: “{}”", text(&p["gate"], "reason"))
                }
                _ => deployed,
            }
        }
        "TestCaseAdded" => format!("Added the test case “{}”", text(&p["case"], "name")),
        "TestCaseUpdated" => format!("Changed the test case “{}”", text(&p["case"], "name")),
        "TestCaseRemoved" => format!("Removed the test case “{}”", s("case_name")),
        "EvaluationStarted" => format!(
            "Started an evaluation of {} ({} cases, {} {})",
            s("version_string"),
            p["cases"],
            s("provider"),
            s("model")
        ),
        "EvaluationCompleted" => {
            format!("Evaluated {}: {} of {} cases passed", s("version_string"), p["passed"], p["total"])
        }
        "DeploymentRolledBack" => {
            format!("Rolled {} back from {} to {}", s("environment"), s("from_version_string"), s("to_version_string"))
        }
        "ExperimentStarted" => {
            format!("Started an A/B test in {}: {}", s("environment"), crate::split_summary(&p["variants"]))
        }
        "ExperimentWeightsChanged" => {
            format!("Changed the A/B test weights in {} to {}", s("environment"), crate::split_summary(&p["variants"]))
        }
        "ExperimentStopped" => {
            let (env, v) = (s("environment"), s("version_string"));
            match s("outcome").as_str() {
                "promoted" => format!("Stopped the A/B test in {env}: promoted {v}"),
                "reverted" => format!("Stopped the A/B test in {env}: reverted to {v}"),
                "ended_by_deploy" => format!("The deploy of {v} ended the A/B test in {env}"),
                _ => format!("A rollback to {v} ended the A/B test in {env}"),
            }
        }
        other => other.to_owned(),
    }
}

/// A page of the prompt's history; `newest_first` for the timeline, oldest first for export.
fn history_path(name: &str, event_type: &str, cursor: Option<&str>, limit: u32, newest_first: bool) -> String {
    let order = if newest_first { "desc" } else { "asc" };
    let mut path = format!("/prompts/{}/history?order={order}&limit={limit}", api::encode(name));
    if !event_type.is_empty() {
        path.push_str(&format!("&type={}", api::encode(event_type)));
    }
    if let Some(c) = cursor {
        path.push_str(&format!("&cursor={}", api::encode(c)));
    }
    path
}

#[component(inline_props)]
pub(super) fn History(data: Data) -> View {
    let filter = create_signal(String::new());
    let events = create_signal(Vec::<Value>::new());
    let next = create_signal(None::<String>);
    let error = create_signal(String::new());
    let exporting = create_signal(false);

    // The first page, again whenever the filter changes or the prompt changes.
    create_effect(move || {
        data.changes.track();
        let path = history_path(&data.name.get_clone(), &filter.get_clone(), None, 100, true);
        wasm_bindgen_futures::spawn_local(async move {
            match api::get(&path).await {
                Ok(page) => {
                    deliver(error, String::new());
                    deliver(events, page["items"].as_array().cloned().unwrap_or_default());
                    deliver(next, page["next_cursor"].as_str().map(str::to_owned));
                }
                Err(f) => deliver(error, f.message),
            }
        });
    });
    let more = move |_| {
        let Some(cursor) = next.get_clone() else { return };
        let path = history_path(&data.name.get_clone(), &filter.get_clone(), Some(&cursor), 100, true);
        wasm_bindgen_futures::spawn_local(async move {
            match api::get(&path).await {
                Ok(_) if !events.is_alive() => {}
                Ok(page) => {
                    let mut all = events.get_clone();
                    all.extend(page["items"].as_array().cloned().unwrap_or_default());
                    deliver(events, all);
                    deliver(next, page["next_cursor"].as_str().map(str::to_owned));
                }
                Err(f) => deliver(error, f.message),
            }
        });
    };
    // Every page the filter selects, oldest first, then one file.
    let export = move |csv: bool| {
        exporting.set(true);
        let name = data.name.get_clone();
        let event_type = filter.get_clone();
        wasm_bindgen_futures::spawn_local(async move {
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            let outcome = loop {
                let path = history_path(&name, &event_type, cursor.as_deref(), 500, false);
                match api::get(&path).await {
                    Ok(page) => {
                        all.extend(page["items"].as_array().cloned().unwrap_or_default());
                        match page["next_cursor"].as_str() {
                            Some(c) => cursor = Some(c.to_owned()),
                            None => break Ok(()),
                        }
                    }
                    Err(f) => break Err(f.message),
                }
            };
            let suffix = if event_type.is_empty() { String::new() } else { format!("-{event_type}") };
            let outcome = outcome.and_then(|()| {
                let saved = if csv {
                    download(&format!("{name}-history{suffix}.csv"), "text/csv", &export::csv(&all))
                } else {
                    download(
                        &format!("{name}-history{suffix}.jsonl"),
                        "application/x-ndjson",
                        &export::json_lines(&all),
                    )
                };
                saved.map_err(|_| "The browser refused the download.".to_owned())
            });
            if let Err(message) = outcome {
                deliver(error, message);
            }
            deliver(exporting, false);
        });
    };

    let type_options = Event::PROMPT_TYPES
        .iter()
        .map(|t| {
            let (value, label) = (t.to_string(), t.to_string());
            view! { option(value=value) { (label) } }
        })
        .collect::<Vec<View>>();
    let rows = move || {
        events
            .get_clone()
            .into_iter()
            .map(|e| {
                let kind = text(&e, "type");
                let kind_attr = kind.clone();
                let (at, actor, what) = (when(&text(&e, "recorded_at")), text(&e, "actor"), summary(&e));
                let position = e["position"].to_string();
                let payload = serde_json::to_string_pretty(&e["payload"]).unwrap_or_default();
                let hash = text(&e, "hash");
                view! {
                    tr("data-type"=kind_attr) {
                        td(class="nowrap") { (at) }
                        td { (actor) }
                        td { span(class="event-type") { (kind) } }
                        td {
                            (what)
                            details {
                                summary { "Payload" }
                                pre(class="payload") { (payload) }
                                p(class="hint") { "Position " (position) ", hash " code { (hash) } }
                            }
                        }
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    view! {
        ChangeRequests(data=data)
        section(class="card") {
            h2 { "History" }
            div(class="inline-form") {
                label(r#for="history-type") { "Event type" }
                select(id="history-type", bind:value=filter) { option(value="") { "All events" } (type_options) }
                button(class="secondary", disabled=move || exporting.get(), on:click=move |_| export(false)) { "Export JSON Lines" }
                button(class="secondary", disabled=move || exporting.get(), on:click=move |_| export(true)) { "Export CSV" }
            }
            p(class="error", role="alert") { (error.get_clone()) }
            div(class="scroll") {
                table(class="timeline") {
                    thead { tr { th { "When" } th { "Who" } th { "Event" } th { "What happened" } } }
                    tbody { (rows()) }
                }
            }
            (if next.with(Option::is_some) {
                view! { button(class="secondary", on:click=more) { "Show older events" } }
            } else {
                view! {}
            })
        }
    }
}

/// The change requests that change this prompt, newest first, with their state.
#[component(inline_props)]
fn ChangeRequests(data: Data) -> View {
    let session = use_context::<Session>();
    let requests = create_signal(None::<Vec<Value>>);
    let error = create_signal(String::new());
    // Again after every change to the prompt: an applied request is one.
    create_effect(move || {
        data.changes.track();
        let path = format!("/change-requests/?prompt={}&limit=50", api::encode(&data.name.get_clone()));
        wasm_bindgen_futures::spawn_local(async move {
            match api::get(&path).await {
                Ok(list) => {
                    deliver(error, String::new());
                    deliver(requests, Some(list["items"].as_array().cloned().unwrap_or_default()));
                }
                Err(f) => deliver(error, f.message),
            }
        });
    });
    let rows = move || {
        requests
            .get_clone()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let [id, title, env, status, author, opened] =
                    ["id", "title", "environment", "status", "author", "opened_at"].map(|k| text(&r, k));
                let changes = r["summary"]
                    .as_array()
                    .map(|s| s.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default();
                let href = format!("/ui/change-requests/{}", api::encode(&id));
                let target = href.clone();
                let badge = format!("cr-status {status}");
                view! {
                    tr("data-request-id"=id) {
                        td { a(href=href, on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate(&target); }) { (title) } }
                        td { (env) }
                        td { (changes) }
                        td { span(class=badge) { (status) } }
                        td { (author) }
                        td(class="nowrap") { (when(&opened)) }
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    view! {
        section(class="card", "aria-label"="Change requests", "data-testid"="prompt-change-requests") {
            h2 { "Change requests" }
            p(class="error", role="alert") { (error.get_clone()) }
            (match requests.with(|r| r.as_ref().map(Vec::is_empty)) {
                None => view! {},
                Some(true) => view! { p(class="hint") { "No change request has touched this prompt." } },
                Some(false) => view! {
                    div(class="scroll") {
                        table(class="requests") {
                            thead { tr { th { "Title" } th { "Environment" } th { "Changes" } th { "State" } th { "Author" } th { "Opened" } } }
                            tbody { (rows()) }
                        }
                    }
                },
            })
        }
    }
}
