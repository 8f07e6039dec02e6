//! One version's results: its latest run case by case (each expands to the answer's
//! start, the error if there was one, and every check with its reason), and the render
//! checks (`GET /prompts/{name}/versions/{v}/checks`: does every case render, with no
//! provider called).

use super::Suite;
use crate::api;
use crate::app::deliver;
use crate::evaluation_report::{check_line, latest_of, run_summary};
use crate::pages::prompt::{text, when};
use serde_json::Value;
use sycamore::prelude::*;

/// One case's outcome, folded to a line until it is opened.
fn outcome_view(o: &Value) -> View {
    let passed = o["passed"] == true;
    let summary = format!(
        "{} {} — {}",
        if passed { "✓" } else { "✗" },
        text(o, "case_name"),
        if passed { "passed" } else { "failed" }
    );
    let checks = o["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let line = check_line(c);
            view! { li(class=if c["passed"] == true { "passed" } else { "failed" }) { (line) } }
        })
        .collect::<Vec<View>>();
    let error = o["error"].as_str().map(|e| format!("No answer to check: {e}")).unwrap_or_default();
    let mut facts = vec![crate::readable_duration(o["latency_ms"].as_i64().unwrap_or(0))];
    if let (Some(i), Some(out)) = (o["input_tokens"].as_u64(), o["output_tokens"].as_u64()) {
        facts.push(format!("{i} tokens in, {out} out"));
    }
    let facts = facts.join(" · ");
    let excerpt = text(o, "answer_excerpt");
    let class = if passed { "outcome passed" } else { "outcome failed" };
    let case_name = text(o, "case_name");
    view! {
        li(class=class, "data-case"=case_name) {
            details {
                summary { (summary) }
                (if excerpt.is_empty() { view! {} } else {
                    let excerpt = excerpt.clone();
                    view! { h4 { "Answer" } pre(class="template answer-excerpt") { (excerpt) } }
                })
                p(class="error") { (error) }
                ul(class="checks") { (checks) }
                p(class="hint") { (facts) }
            }
        }
    }
}

#[component(inline_props)]
pub(super) fn Results(suite: Suite, shown: Signal<String>) -> View {
    let data = suite.data;
    let checks = create_signal(Value::Null);
    let checks_error = create_signal(String::new());
    // The render checks follow the version shown and the cases (a case added or edited).
    create_effect(move || {
        let version = shown.get_clone();
        suite.cases.track();
        if version.is_empty() {
            return;
        }
        let path = format!(
            "/prompts/{}/versions/{}/checks",
            api::encode(&data.name.get_clone_untracked()),
            api::encode(&version)
        );
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::get(&path).await;
            if !shown.is_alive() || shown.get_clone_untracked() != version {
                return;
            }
            match answer {
                Ok(v) => {
                    deliver(checks_error, String::new());
                    deliver(checks, v);
                }
                Err(f) => deliver(checks_error, f.message),
            }
        });
    });

    let run = move || {
        let version = shown.get_clone();
        let Some(run) = suite.runs.with(|rs| latest_of(rs, &version).cloned()) else {
            return view! { p(class="hint") { (format!("{version} has not been evaluated yet.")) } };
        };
        let about = format!(
            "Latest evaluation: {} — {} ({}), started {} by {}.",
            run_summary(&run),
            text(&run, "provider"),
            text(&run, "model"),
            when(&text(&run, "started_at")),
            text(&run, "started_by")
        );
        let outcomes =
            run["outcomes"].as_array().cloned().unwrap_or_default().iter().map(outcome_view).collect::<Vec<View>>();
        view! {
            p(class="hint", "data-testid"="latest-run") { (about) }
            ul(class="outcomes", "data-testid"="run-outcomes") { (outcomes) }
        }
    };

    let render_checks = move || {
        let c = checks.get_clone();
        let Some(items) = c["items"].as_array().cloned() else { return view! {} };
        let summary = if items.is_empty() {
            "No test cases to render.".to_owned()
        } else if c["ok"] == true {
            format!(
                "Every test case renders against {} (includes resolved in {}).",
                text(&c, "version_string"),
                text(&c, "environment")
            )
        } else {
            format!("Some test cases do not render against {}.", text(&c, "version_string"))
        };
        let rows = items
            .iter()
            .map(|i| {
                let ok = i["ok"] == true;
                let line = if ok {
                    format!("✓ {}: {} characters", text(i, "case_name"), i["rendered_chars"].as_u64().unwrap_or(0))
                } else {
                    format!("✗ {}: {}", text(i, "case_name"), text(i, "error"))
                };
                view! { li(class=if ok { "passed" } else { "failed" }) { (line) } }
            })
            .collect::<Vec<View>>();
        view! {
            p(class="hint", "data-testid"="render-checks") { (summary) }
            ul(class="checks") { (rows) }
        }
    };

    view! {
        section(class="card", "aria-label"="Results") {
            h2 { (move || format!("Results of {}", shown.get_clone())) }
            (run())
            h3 { "Render checks" }
            p(class="hint") { "Instant: each case rendered with its inputs, no provider called." }
            (render_checks())
            p(class="error", role="alert") { (checks_error.get_clone()) }
        }
    }
}
