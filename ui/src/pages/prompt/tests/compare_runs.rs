//! Two completed runs compared case by case (`GET /evaluations/compare`): what a new
//! version fixed and what it broke.

use super::Suite;
use crate::api;
use crate::app::deliver;
use crate::evaluation_report::{change_label, run_label};
use crate::pages::prompt::text;
use serde_json::Value;
use sycamore::prelude::*;

fn verdict(outcome: &Value) -> &'static str {
    match outcome["passed"].as_bool() {
        Some(true) => "✓ passed",
        Some(false) => "✗ failed",
        None => "—",
    }
}

#[component(inline_props)]
pub(super) fn CompareRuns(suite: Suite) -> View {
    let base = create_signal(String::new());
    let head = create_signal(String::new());
    let comparison = create_signal(Value::Null);
    let error = create_signal(String::new());
    let completed = create_memo(move || {
        suite.runs.with(|rs| rs.iter().filter(|r| r["status"] == "completed").cloned().collect::<Vec<Value>>())
    });
    // Start from the two newest runs: the older as the base.
    create_effect(move || {
        let runs = completed.get_clone();
        if runs.len() >= 2 && base.with_untracked(String::is_empty) && head.with_untracked(String::is_empty) {
            head.set(text(&runs[0], "evaluation_id"));
            base.set(text(&runs[1], "evaluation_id"));
        }
    });
    create_effect(move || {
        let (b, h) = (base.get_clone(), head.get_clone());
        if b.is_empty() || h.is_empty() || b == h {
            comparison.set(Value::Null);
            return;
        }
        let path = format!("/evaluations/compare?base={}&head={}", api::encode(&b), api::encode(&h));
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::get(&path).await;
            if !base.is_alive() || base.get_clone_untracked() != b || head.get_clone_untracked() != h {
                return;
            }
            match answer {
                Ok(v) => {
                    deliver(error, String::new());
                    deliver(comparison, v);
                }
                Err(f) => deliver(error, f.message),
            }
        });
    });
    let options = move |chosen: Signal<String>| {
        completed
            .get_clone()
            .into_iter()
            .map(|r| {
                let id = text(&r, "evaluation_id");
                let is_chosen = chosen.with(|c| *c == id);
                view! { option(value=id, selected=is_chosen) { (run_label(&r)) } }
            })
            .collect::<Vec<View>>()
    };
    let rows = move || {
        comparison.get_clone()["cases"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let change = text(&c, "change");
                let class = format!("change-{change}");
                let (case_name, base, head, label) =
                    (text(&c, "case_name"), verdict(&c["base"]), verdict(&c["head"]), change_label(&change));
                let attr = case_name.clone();
                view! {
                    tr("data-case"=attr) {
                        td { (case_name) }
                        td { (base) }
                        td { (head) }
                        td(class=class) { (label) }
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    view! {
        section(class="card", "aria-label"="Compare runs") {
            h2 { "Compare two runs" }
            (if completed.with(|r| r.len() < 2) {
                view! { p(class="hint") { "Two completed runs are needed to compare." } }
            } else {
                view! {
                    div(class="inline-form") {
                        label(r#for="compare-base") { "First run" }
                        select(id="compare-base", bind:value=base) { (options(base)) }
                        label(r#for="compare-head") { "Second run" }
                        select(id="compare-head", bind:value=head) { (options(head)) }
                    }
                    table(class="comparison") {
                        thead { tr { th { "Case" } th { "First run" } th { "Second run" } th { "Change" } } }
                        tbody { (rows()) }
                    }
                }
            })
            p(class="error", role="alert") { (error.get_clone()) }
        }
    }
}
