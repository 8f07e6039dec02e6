//! The Playground tab (`/ui/prompts/{name}/playground`): try a version before it ships.
//! Pick a version (and another to run beside it on the same inputs), fill in its
//! variables, see what it renders to, run it against a provider and model with the
//! answer streamed token by token, check the answer against expectations, and save the
//! inputs with those expectations as a test case in one click. Runs change nothing.

mod pane;

use super::expectations::{ExpectationEditor, Rows};
use super::optimize::Catalogue;
use super::{text, version, Data, Tab};
use crate::api;
use crate::app::{deliver, Session};
use crate::expectation_form::{case_name_problem, parse_all, variable_names, variables};
use crate::playground_run::suggested_case_name;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use sycamore::prelude::*;

/// What both panes run with.
#[derive(Clone, Copy)]
pub(super) struct Inputs {
    /// Each variable's field, by name; a field left empty is not sent.
    values: Signal<BTreeMap<String, String>>,
    /// A user message sent after a chat prompt's own.
    message: Signal<String>,
    provider: Signal<String>,
    model: Signal<String>,
    expectations: Rows,
}

impl Inputs {
    fn variables(&self) -> BTreeMap<String, Value> {
        let filled: Vec<(String, String)> = self
            .values
            .with(|v| v.iter().filter(|(_, t)| !t.is_empty()).map(|(k, t)| (k.clone(), t.clone())).collect());
        variables(&filled)
    }

    fn messages(&self) -> Value {
        if self.message.with(|m| m.trim().is_empty()) {
            json!([])
        } else {
            json!([{"role": "user", "content": self.message.get_clone()}])
        }
    }

    /// The body of `/playground/render` for `version`.
    fn body(&self, prompt: &str, version: &str) -> Value {
        json!({"prompt_name": prompt, "version_string": version, "variables": self.variables(),
            "messages": self.messages()})
    }

    /// What a run adds to it: the provider, the model and the expectations to check.
    fn add_run_settings(&self, body: &mut Value) {
        if !self.provider.with(String::is_empty) {
            body["provider"] = json!(self.provider.get_clone());
        }
        if !self.model.with(|m| m.trim().is_empty()) {
            body["model"] = json!(self.model.get_clone().trim());
        }
        body["expectations"] = json!(parse_all(&self.expectations.drafts()).unwrap_or_default());
    }
}

#[component(inline_props)]
pub(super) fn Playground(data: Data) -> View {
    let session = use_context::<Session>();
    let catalogue = Catalogue::load(session);
    let inputs = Inputs {
        values: create_signal(BTreeMap::new()),
        message: create_signal(String::new()),
        provider: create_signal(String::new()),
        model: create_signal(String::new()),
        expectations: Rows::new(),
    };
    let version_a = create_signal(String::new());
    let version_b = create_signal(String::new());
    // Start on the newest version.
    create_effect(move || {
        if let Some(newest) = data.versions().into_iter().next() {
            if version_a.with_untracked(String::is_empty) {
                version_a.set(newest);
            }
        }
    });
    let runs = create_signal(0u64);
    let run_error = create_signal(String::new());
    let case_names = create_signal(Vec::<String>::new());
    let load_case_names = move || {
        let path = format!("/prompts/{}/test-cases/", api::encode(&data.name.get_clone_untracked()));
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(list) = api::get(&path).await {
                let names = list["items"].as_array().into_iter().flatten().map(|c| text(c, "name")).collect();
                deliver(case_names, names);
            }
        });
    };
    load_case_names();

    let chosen = move || {
        [version_a.get_clone(), version_b.get_clone()]
            .into_iter()
            .filter_map(|v| version(&data, &v))
            .collect::<Vec<_>>()
    };
    let is_chat = create_selector(move || chosen().iter().any(|v| v["kind"] == "chat"));
    let names = create_memo(move || variable_names(&chosen(), None));
    let variable_fields = move || {
        names
            .get_clone()
            .into_iter()
            .map(|n| {
                let id = format!("playground-variable-{n}");
                let for_id = id.clone();
                // Read without tracking: typing must not rebuild the field it types in.
                let current = inputs.values.with_untracked(|v| v.get(&n).cloned().unwrap_or_default());
                let key = n.clone();
                let on_input = move |e: web_sys::Event| {
                    use wasm_bindgen::JsCast;
                    if let Some(i) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                        inputs.values.update(|v| {
                            v.insert(key.clone(), i.value());
                        });
                    }
                };
                view! { label(r#for=for_id) { (format!("Variable {n}")) } input(id=id, prop:value=current, on:input=on_input) }
            })
            .collect::<Vec<View>>()
    };
    let version_options = move |chosen: Signal<String>, none: bool| {
        let mut options = if none { vec![view! { option(value="") { "— none —" } }] } else { Vec::new() };
        options.extend(data.versions().into_iter().map(|v| {
            let (value, is_chosen) = (v.clone(), chosen.with(|c| *c == v));
            view! { option(value=value, selected=is_chosen) { (v) } }
        }));
        options
    };
    let providers = move || catalogue.with(|c| c.list("providers"));
    let provider_options = move || {
        providers()
            .into_iter()
            .map(|p| {
                let name = text(&p, "name");
                let label = if p["default"] == true { format!("{name} (default)") } else { name.clone() };
                view! { option(value=name) { (label) } }
            })
            .collect::<Vec<View>>()
    };
    let default_model = move || {
        let chosen = inputs.provider.get_clone();
        providers()
            .into_iter()
            .find(|p| if chosen.is_empty() { p["default"] == true } else { p["name"] == chosen.as_str() })
            .map(|p| text(&p, "default_model"))
            .unwrap_or_default()
    };
    let cannot_run = move || -> Option<String> {
        if !session.can_edit() {
            return Some("Viewers see what a version renders to; editors and admins run it.".into());
        }
        match catalogue.get_clone() {
            Catalogue::Loading => return Some("Looking for LLM providers…".into()),
            Catalogue::Failed(m) => return Some(m),
            Catalogue::Ready(_) if providers().is_empty() => {
                return Some(
                    "No LLM provider is configured on this server (PROMPTOS_LLM_* settings; see the README).".into(),
                )
            }
            Catalogue::Ready(_) => {}
        }
        parse_all(&inputs.expectations.drafts()).err()
    };
    let run = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        match cannot_run() {
            Some(why) => run_error.set(why),
            None => {
                run_error.set(String::new());
                runs.set(runs.get() + 1);
            }
        }
    };

    // Save as a test case: the inputs and the expectations, under a free name.
    let case_name = create_signal(String::new());
    let saved = create_signal(String::new());
    let save_error = create_signal(String::new());
    let suggestion = move || suggested_case_name(&version_a.get_clone(), &case_names.get_clone());
    let save = move |_| {
        let expectations = match parse_all(&inputs.expectations.drafts()) {
            Ok(x) => x,
            Err(problem) => return save_error.set(problem),
        };
        let typed = case_name.get_clone().trim().to_owned();
        let name = if typed.is_empty() { suggestion() } else { typed };
        if let Some(problem) = case_name_problem(&name) {
            return save_error.set(problem);
        }
        let body = json!({"name": name, "variables": inputs.variables(), "messages": inputs.messages(),
            "expectations": expectations});
        let path = format!("/prompts/{}/test-cases/", api::encode(&data.name.get_clone()));
        wasm_bindgen_futures::spawn_local(async move {
            match api::post(&path, body).await {
                Ok(case) => {
                    deliver(save_error, String::new());
                    deliver(saved, format!("Saved as the test case “{}”.", text(&case, "name")));
                    deliver(case_name, String::new());
                    if saved.is_alive() {
                        load_case_names();
                    }
                }
                Err(f) => {
                    deliver(saved, String::new());
                    deliver(save_error, f.message);
                }
            }
        });
    };
    let has_b = create_selector(move || !version_b.with(String::is_empty));

    view! {
        section(class="card", "aria-label"="Playground") {
            h2 { "Playground" }
            p(class="hint") { "Try a version with your own inputs before it ships. Runs change nothing and are not recorded." }
            form(on:submit=run, "aria-label"="Run in the playground") {
                div(class="inline-form") {
                    label(r#for="playground-version") { "Version" }
                    select(id="playground-version", bind:value=version_a) { (version_options(version_a, false)) }
                    label(r#for="playground-version-b") { "Side by side with" }
                    select(id="playground-version-b", bind:value=version_b) { (version_options(version_b, true)) }
                }
                fieldset(class="variables") {
                    legend { "Inputs" }
                    (if names.with(Vec::is_empty) { view! { p(class="hint") { "These versions read no variables." } } } else { view! {} })
                    (variable_fields())
                    (if is_chat.get() {
                        view! {
                            label(r#for="playground-message") { "User message (sent after the version's messages)" }
                            textarea(id="playground-message", rows="3", bind:value=inputs.message)
                        }
                    } else {
                        view! {}
                    })
                }
                div(class="inline-form") {
                    label(r#for="playground-provider") { "Provider" }
                    select(id="playground-provider", bind:value=inputs.provider) { option(value="") { "Default" } (provider_options()) }
                    label(r#for="playground-model") { "Model" }
                    input(id="playground-model", bind:value=inputs.model, placeholder=default_model)
                }
                fieldset(class="expectations") {
                    legend { "Expectations (checked on each answer; saved with the test case)" }
                    ExpectationEditor(rows=inputs.expectations, prefix="playground")
                }
                p(class="hint") { (cannot_run().unwrap_or_default()) }
                p(class="error", role="alert") { (run_error.get_clone()) }
                div(class="actions") {
                    button(r#type="submit", disabled=move || cannot_run().is_some()) {
                        (if has_b.get() { "Run both" } else { "Run" })
                    }
                }
            }
            (if session.can_edit() {
                view! {
                    div(class="inline-form save-case") {
                        label(r#for="playground-case-name") { "Test case name" }
                        input(id="playground-case-name", bind:value=case_name, placeholder=suggestion)
                        button(r#type="button", class="secondary", on:click=save) { "Save as test case" }
                    }
                    p(class="error", role="alert") { (save_error.get_clone()) }
                    (if saved.with(String::is_empty) { view! {} } else {
                        view! {
                            p(class="hint", role="status", "data-testid"="saved-case") {
                                (saved.get_clone()) " "
                                a(href="#", on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); data.open_tab(session, Tab::Tests); }) { "Open the Tests tab" }
                            }
                        }
                    })
                }
            } else {
                view! {}
            })
        }
        div(class="side-by-side playground-panes") {
            pane::Pane(data=data, inputs=inputs, version=version_a, runs=runs, side="a")
            (if has_b.get() {
                view! { pane::Pane(data=data, inputs=inputs, version=version_b, runs=runs, side="b") }
            } else {
                view! {}
            })
        }
    }
}
