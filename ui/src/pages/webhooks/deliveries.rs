//! A webhook's delivery log: newest first, each delivery's event type, state, attempts
//! and last answer. A row opens to its attempts (status code, latency, error, the start
//! of the answer); Redeliver sends it again with the same webhook-id. Asked again every
//! two seconds while the page is open, and every quarter second while a delivery just
//! sent from here is still pending, so a test ping shows its outcome at once.

use super::REFRESH_MS;
use crate::api;
use crate::app::deliver;
use crate::live;
use crate::pages::prompt::text;
use crate::webhook_form::response_start;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use sycamore::prelude::*;
use wasm_bindgen::JsValue;

/// How often, and how many times, a delivery just sent is looked at (15 s in all).
const WATCH_MS: i32 = 250;
const WATCH_TRIES: u32 = 60;

/// A time in milliseconds since 1970 as people read it (`2026-11-25 10:00:00 UTC`).
pub(super) fn time_of(ms: f64) -> String {
    if !ms.is_finite() {
        return String::new();
    }
    let iso: String = js_sys::Date::new(&JsValue::from_f64(ms)).to_iso_string().into();
    crate::readable_time(&iso)
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// The receiver's last answer: its status code, the error, or both.
fn last_answer(d: &Value) -> String {
    match (d["last_status"].as_i64(), d["last_error"].as_str()) {
        (Some(code), Some(error)) => format!("{code}: {error}"),
        (Some(code), None) => code.to_string(),
        (None, Some(error)) => error.to_owned(),
        (None, None) => "—".to_owned(),
    }
}

#[component(inline_props)]
pub(super) fn DeliveryLog(webhook_path: String, watch: Signal<Option<String>>) -> View {
    let deliveries = create_signal(None::<Vec<Value>>);
    let error = create_signal(String::new());
    let expanded = create_signal(BTreeSet::<String>::new());
    let busy = create_signal(false);
    let list_path = create_signal(format!("{webhook_path}/deliveries?limit=50"));
    let webhook_path = create_signal(webhook_path);

    let load = move || {
        // Read now: the page may be closed by the time the answer comes, or before a
        // watch's next look.
        let path = list_path.is_alive().then(|| list_path.get_clone_untracked());
        async move {
            let Some(path) = path else { return };
            match api::get(&path).await {
                Ok(list) => {
                    let items = list["items"].as_array().cloned().unwrap_or_default();
                    if error.is_alive() && !error.with_untracked(String::is_empty) {
                        error.set(String::new());
                    }
                    // An unchanged log leaves the table (and any open row) as it is.
                    if deliveries.is_alive() && deliveries.with_untracked(|d| d.as_ref() != Some(&items)) {
                        deliveries.set(Some(items));
                    }
                }
                Err(f) => deliver(error, f.message),
            }
        }
    };
    live::poll(REFRESH_MS, load);
    // A delivery sent from here is looked at closely until it is delivered or failed.
    create_effect(move || {
        let Some(delivery) = watch.get_clone() else { return };
        wasm_bindgen_futures::spawn_local(async move {
            for _ in 0..WATCH_TRIES {
                live::pause(WATCH_MS).await;
                if !deliveries.is_alive() {
                    return;
                }
                load().await;
                let settled = deliveries.is_alive()
                    && deliveries.with_untracked(|ds| {
                        ds.iter().flatten().any(|d| d["delivery_id"] == delivery.as_str() && d["status"] != "pending")
                    });
                if settled {
                    return;
                }
            }
        });
    });

    let toggle = move |id: String| {
        expanded.update(|open| {
            if !open.remove(&id) {
                open.insert(id);
            }
        })
    };
    let redeliver = move |id: String| {
        let to = format!("{}/deliveries/{}/redeliver", webhook_path.get_clone_untracked(), api::encode(&id));
        busy.set(true);
        wasm_bindgen_futures::spawn_local(async move {
            match api::post(&to, json!({})).await {
                Ok(_) => deliver(watch, Some(id)),
                Err(f) => deliver(error, f.message),
            }
            deliver(busy, false);
        });
    };
    let refresh = move |_| wasm_bindgen_futures::spawn_local(load());

    let rows = move || {
        let open = expanded.get_clone();
        deliveries
            .get_clone()
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                let id = text(&d, "delivery_id");
                let is_open = open.contains(&id);
                let status = text(&d, "status");
                let badge = format!("delivery-status {status}");
                let retry = if status == "pending" && d["attempts"].as_i64().unwrap_or(0) > 0 {
                    format!("next try {}", time_of(ms(&d["next_attempt_ms"])))
                } else {
                    String::new()
                };
                let (toggle_id, redeliver_id) = (id.clone(), id.clone());
                let attempts = d["attempts"].to_string();
                let (queued, event_type, answer) = (time_of(ms(&d["created_ms"])), text(&d, "event_type"), last_answer(&d));
                let attempts_row = if is_open { attempts_table(&d) } else { view! {} };
                let shown_status = status.clone();
                view! {
                    tr("data-delivery-id"=id, "data-status"=status) {
                        td(class="nowrap") { (queued) }
                        td(class="event-type") { (event_type) }
                        td { span(class=badge) { (shown_status) } span(class="hint retry") { (retry) } }
                        td(class="attempt-count") { (attempts) }
                        td(class="last-answer") { (answer) }
                        td(class="nowrap") {
                            button(r#type="button", class="link", "aria-expanded"=if is_open { "true" } else { "false" },
                                on:click=move |_| toggle(toggle_id.clone())) {
                                (if is_open { "Hide attempts" } else { "Attempts" })
                            }
                            " "
                            button(r#type="button", class="secondary", disabled=move || busy.get(),
                                on:click=move |_| redeliver(redeliver_id.clone())) { "Redeliver" }
                        }
                    }
                    (attempts_row)
                }
            })
            .collect::<Vec<View>>()
    };
    let body = move || match deliveries.with(|d| d.as_ref().map(Vec::is_empty)) {
        None => view! { p(class="hint") { "Loading the delivery log…" } },
        Some(true) => view! {
            p(class="hint", "data-testid"="deliveries-empty") {
                "Nothing delivered yet. Send a test to see a delivery here."
            }
        },
        Some(false) => view! {
            div(class="scroll") {
                table(class="deliveries", "data-testid"="deliveries") {
                    thead {
                        tr { th { "Queued" } th { "Event" } th { "Status" } th { "Attempts" } th { "Last answer" } th {} }
                    }
                    tbody { (rows()) }
                }
            }
        },
    };
    view! {
        div(class="delivery-log") {
            div(class="title-row") {
                h3 { "Delivery log" }
                button(r#type="button", class="link", on:click=refresh) { "Refresh" }
            }
            p(class="error", role="alert") { (error.get_clone()) }
            (body())
        }
    }
}

/// The attempts of one delivery, in a row under it.
fn attempts_table(d: &Value) -> View {
    let rows = d["log"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let code = a["status_code"].as_i64().map(|c| c.to_string()).unwrap_or_else(|| "—".to_owned());
            let latency = crate::readable_duration(a["latency_ms"].as_i64().unwrap_or(0));
            let answer = response_start(a["response"].as_str().unwrap_or_default(), 200);
            let (attempt, at, error) = (a["attempt"].to_string(), time_of(ms(&a["at_ms"])), text(&a, "error"));
            view! {
                tr {
                    td { (attempt) }
                    td(class="nowrap") { (at) }
                    td(class="status-code") { (code) }
                    td(class="nowrap") { (latency) }
                    td { (error) }
                    td { code(class="answer") { (answer) } }
                }
            }
        })
        .collect::<Vec<View>>();
    let empty = rows.is_empty();
    view! {
        tr(class="attempts") {
            td(colspan="6") {
                (if empty {
                    view! { p(class="hint") { "Not tried yet." } }
                } else {
                    view! {
                        table(class="attempts", "data-testid"="attempts") {
                            thead { tr { th { "#" } th { "At" } th { "Status" } th { "Latency" } th { "Error" } th { "Answer (start)" } } }
                            tbody { (rows) }
                        }
                    }
                })
            }
        }
    }
}
