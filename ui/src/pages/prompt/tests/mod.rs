//! The Tests tab: the prompt's test cases and their expectations ([`cases`]), where
//! each version stands at the evaluation gate with its latest run, a button that runs an
//! evaluation and shows its progress live ([`runs`]), a run's result case by case and
//! the instant render checks ([`results`]), and two runs compared ([`compare_runs`]).

mod cases;
mod compare_runs;
mod results;
mod runs;

use super::Data;
use crate::api;
use crate::app::deliver;
use serde_json::Value;
use sycamore::prelude::*;

/// What the tab shows besides the prompt: its cases and its runs (newest first).
#[derive(Clone, Copy)]
pub(super) struct Suite {
    pub data: Data,
    pub cases: Signal<Vec<Value>>,
    pub runs: Signal<Vec<Value>>,
    pub error: Signal<String>,
    /// Answers from an older reload must not overwrite a newer one.
    generation: Signal<u64>,
}

impl Suite {
    /// Reads the cases and the runs again, and the prompt with its gate standing.
    pub fn reload(self) {
        if !self.generation.is_alive() {
            return;
        }
        let generation = self.generation.get_untracked() + 1;
        self.generation.set(generation);
        self.data.reload();
        let name = api::encode(&self.data.name.get_clone_untracked());
        wasm_bindgen_futures::spawn_local(async move {
            let cases = api::get(&format!("/prompts/{name}/test-cases/")).await;
            let runs = api::get(&format!("/prompts/{name}/evaluations/?limit=200")).await;
            if !self.generation.is_alive() || self.generation.get_untracked() != generation {
                return;
            }
            let items = |v: Value| v["items"].as_array().cloned().unwrap_or_default();
            match (cases, runs) {
                (Ok(c), Ok(r)) => {
                    deliver(self.error, String::new());
                    deliver(self.cases, items(c));
                    deliver(self.runs, items(r));
                }
                (Err(f), _) | (_, Err(f)) => deliver(self.error, f.message),
            }
        });
    }
}

#[component(inline_props)]
pub(super) fn Tests(data: Data) -> View {
    let suite = Suite {
        data,
        cases: create_signal(Vec::new()),
        runs: create_signal(Vec::new()),
        error: create_signal(String::new()),
        generation: create_signal(0),
    };
    suite.reload();
    // The version whose results are shown; the newest until one is picked.
    let shown = create_signal(String::new());
    create_effect(move || {
        if shown.with_untracked(String::is_empty) {
            if let Some(newest) = data.versions().into_iter().next() {
                shown.set(newest);
            }
        }
    });
    view! {
        runs::Standing(suite=suite, shown=shown)
        results::Results(suite=suite, shown=shown)
        cases::Cases(suite=suite)
        compare_runs::CompareRuns(suite=suite)
    }
}
