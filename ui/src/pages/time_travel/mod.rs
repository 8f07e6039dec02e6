//! The Time travel page (`/ui/time-travel`, every role, read-only): pick an environment
//! and a moment (in the browser's time zone, sent as UTC) and see what was live there
//! then ([`tables::LiveTable`], each row opening the version's text as it was), and
//! what changed from that moment to now or to a second moment
//! ([`tables::ChangesTable`], each change with the events that caused it).

mod tables;

use crate::api;
use crate::app::deliver;
use crate::environment_matrix::Environment;
use crate::moment::utc_from_browser;
use crate::readable_time;
use crate::time_travel::{deployed_path, diff_path};
use serde_json::Value;
use sycamore::prelude::*;
use tables::{ChangesTable, LiveTable};

/// What the page asks the server, once the form says enough.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Question {
    environment: String,
    as_of: String,
    /// The second moment; `None`: now.
    to: Option<String>,
}

/// The answers to one question.
#[derive(Clone, PartialEq, Debug)]
struct Answers {
    live: Value,
    changes: Value,
}

#[component]
pub fn TimeTravelPage() -> View {
    let environments = create_signal(Vec::<String>::new());
    let environment = create_signal(String::new());
    let at = create_signal(String::new());
    // "now" or "moment".
    let compare = create_signal("now".to_owned());
    let until = create_signal(String::new());
    let error = create_signal(String::new());
    let answers = create_signal(None::<Answers>);
    let generation = create_signal(0u64);

    wasm_bindgen_futures::spawn_local(async move {
        match api::get("/environments").await {
            Ok(list) => {
                let names: Vec<String> = Environment::list(&list).into_iter().map(|e| e.name).collect();
                let first = names.first().cloned().unwrap_or_default();
                deliver(environments, names);
                // After the options exist, so the select can show it.
                if environment.is_alive() && environment.with_untracked(String::is_empty) {
                    environment.set(first);
                }
            }
            Err(f) => deliver(error, f.message),
        }
    });

    // `Ok(None)` until an environment and a moment (and the second one, when asked
    // for) are picked.
    let question = create_memo(move || -> Result<Option<Question>, String> {
        let environment = environment.get_clone();
        let Some(as_of) = utc_from_browser(&at.get_clone()).map_err(|e| format!("Moment: {e}"))? else {
            return Ok(None);
        };
        let to = match compare.get_clone().as_str() {
            "moment" => match utc_from_browser(&until.get_clone()).map_err(|e| format!("Compare with: {e}"))? {
                Some(t) => Some(t),
                None => return Ok(None),
            },
            _ => None,
        };
        Ok((!environment.is_empty()).then_some(Question { environment, as_of, to }))
    });
    create_effect(move || {
        let q = question.get_clone();
        let mine = generation.get_untracked() + 1;
        generation.set(mine);
        let q = match q {
            Ok(Some(q)) => q,
            Ok(None) => return answers.set(None),
            Err(message) => return error.set(message),
        };
        wasm_bindgen_futures::spawn_local(async move {
            let (live_path, diff_path) =
                (deployed_path(&q.environment, &q.as_of), diff_path(&q.environment, &q.as_of, q.to.as_deref()));
            let (live, changes) = futures::future::join(api::get(&live_path), api::get(&diff_path)).await;
            if !generation.is_alive() || generation.get_untracked() != mine {
                return;
            }
            match (live, changes) {
                (Ok(live), Ok(changes)) => {
                    deliver(error, String::new());
                    deliver(answers, Some(Answers { live, changes }));
                }
                (Err(f), _) | (_, Err(f)) => deliver(error, f.message),
            }
        });
    });

    let env_options = move || {
        environments
            .get_clone()
            .into_iter()
            .map(|e| {
                let value = e.clone();
                view! { option(value=value) { (e) } }
            })
            .collect::<Vec<View>>()
    };
    let sent = move || match question.get_clone() {
        Ok(Some(q)) => {
            let to = q.to.as_deref().map(readable_time).unwrap_or_else(|| "now".to_owned());
            format!("In UTC: {} compared with {to}.", readable_time(&q.as_of))
        }
        _ => "Pick a moment: what was live then shows here, and what changed since.".to_owned(),
    };
    let results = move || match answers.get_clone() {
        None => view! {},
        Some(a) => view! {
            LiveTable(answer=a.live)
            ChangesTable(answer=a.changes)
        },
    };
    view! {
        section(class="card") {
            h1 { "Time travel" }
            p(class="hint") {
                "What was live in an environment at a past moment, and what changed between then and now (or a "
                "second moment), each change with the events in the log that made it."
            }
            div(class="time-travel-form", role="group", "aria-label"="What to show") {
                label(r#for="tt-environment") { "Environment" }
                select(id="tt-environment", bind:value=environment) { (env_options()) }
                label(r#for="tt-moment") { "Moment" }
                input(id="tt-moment", r#type="datetime-local", step="1", bind:value=at)
                label(r#for="tt-compare") { "Compare with" }
                select(id="tt-compare", bind:value=compare) {
                    option(value="now") { "Now" }
                    option(value="moment") { "Another moment" }
                }
                (if compare.with(|c| c == "moment") {
                    view! {
                        label(r#for="tt-until") { "Second moment" }
                        input(id="tt-until", r#type="datetime-local", step="1", bind:value=until)
                    }
                } else {
                    view! {}
                })
            }
            p(class="hint", "data-testid"="tt-sent") { (sent()) " Moments are in your time zone." }
            p(class="error", role="alert", "data-testid"="tt-error") { (error.get_clone()) }
        }
        (results())
    }
}
