//! The Audit page's verification panel (`GET /audit/verify`): is the hash chain intact,
//! do the read models equal a fresh replay of the log, and do the signed checkpoints
//! match it (the latest's position, time and key, and the server's own statement of
//! what that proves). Everyone may download the public key and the latest signed note
//! to verify an export offline (`promptos audit verify`); admins may sign one now.

use crate::api;
use crate::app::{deliver, Session};
use crate::audit::{Finding, Verification};
use crate::download::save_text;
use crate::readable_time;
use serde_json::json;
use sycamore::prelude::*;

/// A finding as a badge and its sentence, under `data-testid=testid`.
fn finding(f: Finding, testid: &'static str) -> View {
    let (badge, class) = if f.ok { ("intact", "verdict ok") } else { ("broken", "verdict bad") };
    let ok = f.ok.to_string();
    view! {
        dd("data-testid"=testid, "data-ok"=ok) {
            span(class=class) { (badge) } " " (f.sentence)
        }
    }
}

/// The checkpoints part of the panel.
fn checkpoints(v: &Verification) -> View {
    if !v.checkpoints_enabled {
        let statement = v.statement.clone();
        return view! {
            dd("data-testid"="verify-checkpoints", "data-ok"="false") {
                span(class="verdict off") { "off" } " "
                span("data-testid"="checkpoint-statement") { (statement) }
            }
        };
    }
    let (badge, class) =
        if v.checkpoints_ok { ("match the log", "verdict ok") } else { ("do not match", "verdict bad") };
    let latest = match v.latest.clone() {
        Some(l) => {
            let (position, time, key) = (l.position.to_string(), readable_time(&l.time), l.key_id);
            view! {
                p("data-testid"="latest-checkpoint") {
                    "Latest signed checkpoint: position "
                    strong("data-testid"="checkpoint-position") { (position) }
                    ", signed at " span("data-testid"="checkpoint-time") { (time) }
                    " by key " code { (key) } "."
                }
            }
        }
        None => view! {},
    };
    let failures = v
        .failures
        .iter()
        .map(|f| {
            let f = f.clone();
            view! { li { (f) } }
        })
        .collect::<Vec<View>>();
    let failures = if failures.is_empty() {
        view! {}
    } else {
        view! { ul(class="failures", "data-testid"="checkpoint-failures") { (failures) } }
    };
    let statement = v.statement.clone();
    let ok = v.checkpoints_ok.to_string();
    view! {
        dd("data-testid"="verify-checkpoints", "data-ok"=ok) {
            span(class=class) { (badge) }
            (latest)
            (failures)
            p(class="statement", "data-testid"="checkpoint-statement") { (statement) }
        }
    }
}

#[component]
pub(super) fn VerificationPanel() -> View {
    let session = use_context::<Session>();
    let report = create_signal(None::<Verification>);
    let error = create_signal(String::new());
    let notice = create_signal(String::new());
    let busy = create_signal(false);
    let load = move || {
        wasm_bindgen_futures::spawn_local(async move {
            match api::get("/audit/verify").await {
                Ok(r) => deliver(report, Some(Verification::of(&r))),
                Err(f) => deliver(error, f.message),
            }
        })
    };
    load();
    let sign = move |_| {
        busy.set(true);
        error.set(String::new());
        notice.set(String::new());
        wasm_bindgen_futures::spawn_local(async move {
            match api::post("/audit/checkpoints", json!({})).await {
                Ok(c) => {
                    let time = readable_time(c["time"].as_str().unwrap_or_default());
                    let key = c["key_id"].as_str().unwrap_or_default();
                    deliver(notice, format!("Signed a checkpoint at position {} ({time}, key {key}).", c["position"]));
                    load();
                }
                Err(f) => deliver(error, f.message),
            }
            deliver(busy, false);
        });
    };
    let save = move |path: &'static str, file: &'static str| {
        error.set(String::new());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(message) = save_text(path, file).await {
                deliver(error, message);
            }
        });
    };
    let body = move || match report.get_clone() {
        None => view! { p(class="hint") { "Checking the log…" } },
        Some(v) => {
            let (chain, models) =
                (finding(v.chain.clone(), "verify-chain"), finding(v.read_models.clone(), "verify-read-models"));
            let checked = format!("Checked {}.", readable_time(&v.checked_at));
            let downloads = if v.checkpoints_enabled {
                view! {
                    button(class="secondary", on:click=move |_| save("/audit/public-key?format=text", "promptos-public-key.txt")) {
                        "Download the public key"
                    }
                    button(class="secondary",
                        on:click=move |_| save("/audit/checkpoints/latest?format=text", "promptos-checkpoint.txt")) {
                        "Download the latest checkpoint"
                    }
                }
            } else {
                view! {}
            };
            let checkpoints = checkpoints(&v);
            view! {
                dl(class="facts verification") {
                    dt { "Hash chain" } (chain)
                    dt { "Read models" } (models)
                    dt { "Signed checkpoints" } (checkpoints)
                }
                p(class="hint") { (checked) }
                div(class="actions") { (downloads) }
            }
        }
    };
    let admin = move || session.role() == "admin";
    view! {
        section(class="card", "aria-label"="Verification", "data-testid"="verification") {
            div(class="title-row") {
                h2 { "Verification" }
                button(class="secondary", on:click=move |_| { error.set(String::new()); load(); }) { "Check again" }
                (if admin() {
                    view! { button(disabled=move || busy.get(), on:click=sign) { "Sign a checkpoint now" } }
                } else {
                    view! {}
                })
            }
            (body())
            p(class="error", role="alert", "data-testid"="verification-error") { (error.get_clone()) }
            p(class="hint", role="status", "data-testid"="verification-notice") { (notice.get_clone()) }
            p(class="hint") {
                "To check the log without trusting this server: export it (admins: GET /events/export), download the "
                "public key and the latest checkpoint, and run promptos audit verify --export … --checkpoint … "
                "--public-key …"
            }
        }
    }
}
