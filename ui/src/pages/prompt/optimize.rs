//! The Optimize dialog: an expert asks an LLM to rewrite a version towards a goal, reads
//! the suggestion beside the original with the changed words marked and the variables
//! checked, edits it if they like, and accepts it as a new version or discards it. The
//! expert always has the final say; nothing is written until they accept.

use super::{text, Data};
use crate::api;
use crate::app::{deliver, Session};
use crate::diff::{self, Side};
use crate::{next_version, VariableCheck};
use serde_json::{json, Value};
use sycamore::prelude::*;
use wasm_bindgen::JsCast;

const DIALOG_ID: &str = "optimize-dialog";

/// What `GET /optimize/providers` said, loaded once per page.
#[derive(Clone, PartialEq)]
pub(super) enum Catalogue {
    Loading,
    /// Providers and goals, as the server lists them.
    Ready(Value),
    Failed(String),
}

impl Catalogue {
    /// Asks the server once the user is known to be an editor or admin (the session may
    /// still be loading when the page is built).
    pub(super) fn load(session: Session) -> Signal<Catalogue> {
        let catalogue = create_signal(Catalogue::Loading);
        let asked = create_signal(false);
        create_effect(move || {
            if !session.can_edit() || asked.get_untracked() {
                return;
            }
            asked.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                let answer = match api::get("/optimize/providers").await {
                    Ok(v) => Catalogue::Ready(v),
                    Err(f) => Catalogue::Failed(f.message),
                };
                deliver(catalogue, answer);
            });
        });
        catalogue
    }

    /// Why Optimize cannot be used now, if it cannot.
    pub(super) fn unavailable(&self) -> Option<String> {
        match self {
            Catalogue::Loading => Some("Looking for LLM providers…".into()),
            Catalogue::Failed(m) => Some(m.clone()),
            Catalogue::Ready(v) if v["providers"].as_array().is_none_or(|p| p.is_empty()) => {
                Some("No LLM provider is configured on this server (PROMPTOS_LLM_* settings; see the README).".into())
            }
            Catalogue::Ready(v) if v["goals"].as_array().is_none_or(|g| g.is_empty()) => {
                Some("No optimisation goal is deployed to the system environment.".into())
            }
            Catalogue::Ready(_) => None,
        }
    }

    pub(super) fn list(&self, key: &str) -> Vec<Value> {
        match self {
            Catalogue::Ready(v) => v[key].as_array().cloned().unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// The button in a version's action row. `source` opens the dialog on that version.
#[component(inline_props)]
pub(super) fn OptimizeButton(version: String, catalogue: Signal<Catalogue>, source: Signal<String>) -> View {
    let reason = create_selector(move || catalogue.with(Catalogue::unavailable));
    let label = format!("Optimize {version} with an LLM");
    view! {
        button(class="secondary", "aria-label"=label, disabled=move || reason.with(Option::is_some),
            "aria-describedby"="optimize-unavailable", on:click=move |_| source.set(version.clone())) { "Optimize…" }
        span(id="optimize-unavailable", class="hint") { (reason.get_clone().unwrap_or_default()) }
    }
}

fn dialog() -> Option<web_sys::HtmlDialogElement> {
    web_sys::window()?.document()?.get_element_by_id(DIALOG_ID)?.dyn_into().ok()
}

/// The dialog itself: a modal `<dialog>`, so focus stays inside and Escape closes it.
/// `source` is the version being optimised; empty means closed. `created` is told the
/// version string of an accepted suggestion.
#[component(inline_props)]
pub(super) fn OptimizeDialog(
    data: Data,
    catalogue: Signal<Catalogue>,
    source: Signal<String>,
    created: Signal<String>,
) -> View {
    let goal = create_signal(String::new());
    let provider = create_signal(String::new());
    let model = create_signal(String::new());
    // Bumped by every run and every close: an answer for an older run is dropped.
    let run = create_signal(0u64);
    let running = create_signal(false);
    let error = create_signal(String::new());
    let result = create_signal(Option::<Value>::None);
    let edited = create_signal(String::new());
    let new_version = create_signal(String::new());
    let message = create_signal(String::new());
    let accept_error = create_signal(String::new());
    let accepting = create_signal(false);

    // Opening starts afresh; closing (Discard, Escape, Accept) forgets the suggestion.
    create_effect(move || {
        let open = !source.with(String::is_empty);
        run.set(run.get_untracked() + 1);
        running.set(false);
        error.set(String::new());
        result.set(None);
        accept_error.set(String::new());
        if let Some(d) = dialog() {
            match (open, d.open()) {
                (true, false) => {
                    if goal.with_untracked(String::is_empty) {
                        let first = catalogue.with_untracked(|c| c.list("goals").first().map(|g| text(g, "goal")));
                        goal.set(first.unwrap_or_default());
                    }
                    let _ = d.show_modal();
                }
                (false, true) => d.close(),
                _ => {}
            }
        }
    });

    let goals = move || {
        catalogue
            .with(|c| c.list("goals"))
            .into_iter()
            .map(|g| {
                let value = text(&g, "goal");
                let label = format!("{} ({})", text(&g, "description"), value);
                let chosen = goal.with(|c| *c == value);
                view! { option(value=value, selected=chosen) { (label) } }
            })
            .collect::<Vec<View>>()
    };
    let goal_prompt = move || {
        let chosen = goal.get_clone();
        catalogue
            .with(|c| c.list("goals"))
            .into_iter()
            .find(|g| g["goal"] == chosen.as_str())
            .map(|g| format!("Meta-prompt: {} {}, live in system.", text(&g, "prompt"), text(&g, "version")))
            .unwrap_or_default()
    };
    let providers = catalogue.with_untracked(|c| c.list("providers"));
    let default_model = move || {
        let chosen = provider.get_clone();
        catalogue
            .with(|c| c.list("providers"))
            .into_iter()
            .find(|p| if chosen.is_empty() { p["default"] == true } else { p["name"] == chosen.as_str() })
            .map(|p| text(&p, "default_model"))
            .unwrap_or_default()
    };
    let provider_choice = if providers.len() > 1 {
        let options = providers
            .iter()
            .map(|p| {
                let name = text(p, "name");
                let label = if p["default"] == true { format!("{name} (default)") } else { name.clone() };
                view! { option(value=name) { (label) } }
            })
            .collect::<Vec<View>>();
        view! {
            label(r#for="optimize-provider") { "Provider" }
            select(id="optimize-provider", bind:value=provider) { option(value="") { "Default" } (options) }
        }
    } else {
        view! {}
    };

    let start = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let id = run.get() + 1;
        run.set(id);
        running.set(true);
        error.set(String::new());
        result.set(None);
        let mut payload = json!({"version_string": source.get_clone(), "goal": goal.get_clone()});
        if !provider.with(String::is_empty) {
            payload["provider"] = json!(provider.get_clone());
        }
        if !model.with(|m| m.trim().is_empty()) {
            payload["model"] = json!(model.get_clone().trim());
        }
        let path = format!("/prompts/{}/optimize", api::encode(&data.name.get_clone()));
        let taken = data.versions();
        let from = source.get_clone();
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::post(&path, payload).await;
            if !run.is_alive() || run.get_untracked() != id {
                return;
            }
            deliver(running, false);
            match answer {
                Ok(v) => {
                    deliver(edited, text(&v, "suggestion"));
                    deliver(new_version, next_version(&from, &taken));
                    deliver(message, format!("LLM suggestion ({}) from {from}", text(&v, "goal")));
                    deliver(result, Some(v));
                }
                Err(f) => deliver(error, f.message),
            }
        });
    };

    let accept = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let Some(r) = result.get_clone() else { return };
        accepting.set(true);
        accept_error.set(String::new());
        let version = new_version.get_clone().trim().to_owned();
        let mut payload = json!({
            "version_string": version,
            "text": edited.get_clone(),
            "suggestion_token": text(&r, "suggestion_token"),
        });
        if !message.with(|m| m.trim().is_empty()) {
            payload["commit_message"] = json!(message.get_clone());
        }
        let path = format!("/prompts/{}/versions/", api::encode(&data.name.get_clone()));
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::post(&path, payload).await;
            deliver(accepting, false);
            match answer {
                Ok(_) => {
                    deliver(created, version);
                    deliver(source, String::new());
                    data.reload();
                }
                Err(f) => deliver(accept_error, f.message),
            }
        });
    };

    let check = create_memo(move || {
        let original = result.with(|r| r.as_ref().map(|r| text(r, "original")).unwrap_or_default());
        VariableCheck::of(&original, &edited.get_clone())
    });
    let check_line = move || match check.get_clone() {
        Ok(c) => c.sentence(),
        Err(e) => format!("Not a valid template. {e}"),
    };
    let check_class =
        move || if check.with(|c| c.as_ref().is_ok_and(VariableCheck::is_ok)) { "hint" } else { "hint warn" };
    let changes = move || {
        let original = result.with(|r| r.as_ref().map(|r| text(r, "original")).unwrap_or_default());
        diff::words(&original, &edited.get_clone())
            .into_iter()
            .map(|w| match w.side {
                Side::Same => view! { span { (w.text) } },
                Side::Removed => view! { del { (w.text) } },
                Side::Added => view! { ins { (w.text) } },
            })
            .collect::<Vec<View>>()
    };
    let about = move || {
        result.with(|r| {
            r.as_ref()
                .map(|r| {
                    let retried = if r["attempts"].as_u64().unwrap_or(1) > 1 {
                        " The first answer did not keep the variables; it was asked once more."
                    } else {
                        ""
                    };
                    format!("Suggested by {} ({}).{retried}", text(r, "provider"), text(r, "model"))
                })
                .unwrap_or_default()
        })
    };

    let review = move || {
        if result.with(Option::is_none) {
            return view! {};
        }
        let original = result.with(|r| r.as_ref().map(|r| text(r, "original")).unwrap_or_default());
        let heading = format!("Original ({})", source.get_clone());
        view! {
            div(class="side-by-side") {
                section(class="pane", "aria-label"="Original") {
                    h3 { (heading) }
                    pre(class="template", "data-testid"="optimize-original") { (original) }
                }
                section(class="pane", "aria-label"="Suggestion") {
                    h3 { label(r#for="optimize-suggestion") { "Suggestion (edit it before accepting if you like)" } }
                    textarea(id="optimize-suggestion", rows="10", bind:value=edited, "aria-describedby"="optimize-check")
                }
            }
            p(class="hint") { (about()) }
            p(id="optimize-check", class=check_class, role="status", "data-testid"="optimize-check") { (check_line()) }
            h3 { "Changes" }
            div(class="word-diff", "data-testid"="optimize-diff") { (changes()) }
            form(class="accept", on:submit=accept, "aria-label"="Accept the suggestion") {
                div(class="inline-form") {
                    label(r#for="optimize-version") { "New version" }
                    input(id="optimize-version", bind:value=new_version)
                    label(r#for="optimize-message") { "Commit message" }
                    input(id="optimize-message", bind:value=message)
                }
                p(class="error", role="alert") { (accept_error.get_clone()) }
                button(r#type="submit", disabled=move || accepting.get() || check.with(Result::is_err)
                    || new_version.with(|v| v.trim().is_empty())) { "Accept as a new version" }
            }
        }
    };

    let title = move || format!("Optimize {} of {}", source.get_clone(), data.name.get_clone());
    view! {
        dialog(id=DIALOG_ID, class="optimize", "aria-labelledby"="optimize-title",
            on:close=move |_| { if !source.with_untracked(String::is_empty) { source.set(String::new()) } }) {
            h2(id="optimize-title") { (title()) }
            form(class="inline-form", on:submit=start, "aria-label"="Ask for a suggestion") {
                label(r#for="optimize-goal") { "Goal" }
                select(id="optimize-goal", bind:value=goal) { (goals()) }
                (provider_choice)
                label(r#for="optimize-model") { "Model" }
                input(id="optimize-model", bind:value=model, placeholder=default_model)
                button(r#type="submit", disabled=move || running.get() || goal.with(String::is_empty)) { "Run" }
            }
            p(class="hint") { (goal_prompt()) }
            (if running.get() {
                view! {
                    div(class="progress", role="status", "aria-live"="polite") {
                        progress("aria-label"="Waiting for the model") {}
                        span { "The model is rewriting the prompt… this can take up to a minute." }
                    }
                }
            } else {
                view! {}
            })
            p(class="error", role="alert") { (error.get_clone()) }
            (review())
            div(class="actions end") {
                button(class="secondary", on:click=move |_| source.set(String::new())) { "Discard" }
            }
        }
    }
}
