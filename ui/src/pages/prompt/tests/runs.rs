//! Where each version stands: its standing at the evaluation gate in words, its latest
//! run, and a button that runs an evaluation of it and follows the run's progress
//! stream (`GET /evaluations/{id}/events`), showing each case's result as it lands.

use super::Suite;
use crate::api;
use crate::app::Session;
use crate::evaluation_report::{gate_sentence, latest_of, progress_line, run_summary, standing_of, RunProgress};
use crate::pages::prompt::text;
use crate::sse;
use futures::StreamExt;
use serde_json::{json, Value};
use sycamore::prelude::*;

/// A run started from this page, as its progress arrives.
#[derive(Clone, PartialEq, Default)]
struct LiveRun {
    version: String,
    /// Empty until the server has answered the start.
    evaluation_id: String,
    done: u64,
    total: u64,
    /// Each case's outcome, in the order they finished.
    outcomes: Vec<Value>,
    /// The summary once the run is recorded.
    finished: Option<String>,
    error: String,
}

impl LiveRun {
    fn line(&self) -> String {
        if let Some(summary) = &self.finished {
            return format!("Evaluation of {} finished: {summary}.", self.version);
        }
        if self.evaluation_id.is_empty() {
            return format!("Starting an evaluation of {}…", self.version);
        }
        format!("Evaluating {}: {}.", self.version, progress_line(self.done, self.total))
    }
}

/// Sets part of the live run, if it is still the run `id` and the page is open.
fn update(live: Signal<Option<LiveRun>>, id: &str, change: impl FnOnce(&mut LiveRun)) {
    if !live.is_alive() {
        return;
    }
    live.update(|l| {
        if let Some(l) = l.as_mut().filter(|l| l.evaluation_id == id) {
            change(l);
        }
    });
}

/// Follows run `id` until it is recorded (or the stream ends), then reloads the tab.
async fn follow(suite: Suite, live: Signal<Option<LiveRun>>, id: String, controller: web_sys::AbortController) {
    match sse::open("GET", &format!("/evaluations/{}/events", api::encode(&id)), None, &controller).await {
        Ok(mut events) => {
            while let Some(event) = events.next().await {
                match RunProgress::parse(&event.event, &event.data) {
                    Some(RunProgress::Case { done, total, outcome }) => update(live, &id, |l| {
                        l.done = done;
                        l.total = total;
                        l.outcomes.push(outcome);
                    }),
                    Some(RunProgress::Completed { passed, total, stopped }) => {
                        let summary = run_summary(&json!({"status": "completed", "passed": passed, "total": total,
                            "stopped": stopped, "current": true}));
                        update(live, &id, |l| l.finished = Some(summary));
                        break;
                    }
                    None => {}
                }
            }
        }
        Err(f) => update(live, &id, |l| l.error = f.message),
    }
    if !controller.signal().aborted() {
        suite.reload();
    }
}

#[component(inline_props)]
pub(super) fn Standing(suite: Suite, shown: Signal<String>) -> View {
    let session = use_context::<Session>();
    let data = suite.data;
    let live = create_signal(None::<LiveRun>);
    let controller = create_signal(sse::scoped_abort());
    let busy = move || live.with(|l| l.as_ref().is_some_and(|l| l.finished.is_none() && l.error.is_empty()));
    let start = move |version: String| {
        let Some(controller) = controller.get_clone() else { return };
        let path =
            format!("/prompts/{}/versions/{}/evaluations", api::encode(&data.name.get_clone()), api::encode(&version));
        live.set(Some(LiveRun { version: version.clone(), ..Default::default() }));
        shown.set(version);
        wasm_bindgen_futures::spawn_local(async move {
            match api::post(&path, json!({})).await {
                Ok(run) => {
                    let id = text(&run, "evaluation_id");
                    if !live.is_alive() {
                        return;
                    }
                    live.update(|l| {
                        if let Some(l) = l {
                            l.evaluation_id = id.clone();
                            l.total = run["cases"].as_u64().unwrap_or(0);
                        }
                    });
                    suite.reload();
                    follow(suite, live, id, controller).await;
                }
                Err(f) => update(live, "", |l| l.error = f.message),
            }
        });
    };

    let rows = move || {
        let gate = data.gate.get_clone();
        let no_cases = suite.cases.with(Vec::is_empty);
        data.versions()
            .into_iter()
            .map(|v| {
                let sentence = standing_of(&gate, &v)
                    .map(|s| gate_sentence(s, &gate))
                    .unwrap_or_else(|| format!("{v}: standing not known yet"));
                let open = standing_of(&gate, &v).is_some_and(|s| s["open"] == true);
                let latest = suite.runs.with(|rs| latest_of(rs, &v).map(run_summary));
                let latest = latest.unwrap_or_else(|| "never evaluated".to_owned());
                let run_button = if session.can_edit() {
                    let version = v.clone();
                    let label = format!("Run evaluation of {v}");
                    view! {
                        button(disabled=move || busy() || no_cases, on:click=move |_| start(version.clone())) { (label) }
                    }
                } else {
                    view! {}
                };
                let (pick, show_label) = (v.clone(), format!("Show the results of {v}"));
                let selected = {
                    let v = v.clone();
                    move || shown.with(|s| *s == v)
                };
                let state = if open { "standing open" } else { "standing closed" };
                let cell = v.clone();
                view! {
                    tr("data-version"=v, class=move || if selected() { "open" } else { "" }) {
                        td(class="version") { (cell) }
                        td(class=state, "data-testid"="gate-standing") { (sentence) }
                        td { (latest) }
                        td {
                            div(class="actions") {
                                (run_button)
                                button(class="secondary", "aria-label"=show_label, on:click=move |_| shown.set(pick.clone())) { "Results" }
                            }
                        }
                    }
                }
            })
            .collect::<Vec<View>>()
    };

    let progress = move || {
        let Some(l) = live.get_clone() else { return view! {} };
        let outcomes = l
            .outcomes
            .iter()
            .map(|o| {
                let passed = o["passed"] == true;
                let line = format!("{} {}", if passed { "✓" } else { "✗" }, text(o, "case_name"));
                view! { li(class=if passed { "passed" } else { "failed" }) { (line) } }
            })
            .collect::<Vec<View>>();
        let (done, total) = (l.done.to_string(), l.total.max(1).to_string());
        let (line, error) = (l.line(), l.error);
        view! {
            div(class="progress", role="status", "aria-live"="polite", "data-testid"="evaluation-progress") {
                progress(max=total, value=done, "aria-label"="Cases evaluated") {}
                span { (line) }
            }
            ul(class="live-outcomes", "data-testid"="live-outcomes") { (outcomes) }
            p(class="error", role="alert") { (error) }
        }
    };

    let hint = move || {
        if !session.can_edit() {
            "Viewers see the results; editors and admins run evaluations.".to_owned()
        } else if suite.cases.with(Vec::is_empty) {
            "Add a test case below to evaluate a version.".to_owned()
        } else {
            "An evaluation runs every test case against the version through the server's LLM provider.".to_owned()
        }
    };
    view! {
        section(class="card", "aria-label"="Versions at the gate") {
            h2 { "Versions at the gate" }
            div(class="scroll") {
                table(class="standing") {
                    thead { tr { th { "Version" } th { "At the gate" } th { "Latest evaluation" } th {} } }
                    tbody { (rows()) }
                }
            }
            p(class="hint") { (hint()) }
            p(class="error", role="alert") { (suite.error.get_clone()) }
            (progress())
        }
    }
}
