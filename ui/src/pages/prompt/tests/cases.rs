//! The prompt's test cases: each with its inputs and expectations, and a form to add
//! one or edit one (a field per variable the versions read, an optional user message
//! for chat prompts, and the expectation editor). Every change to the cases makes the
//! earlier evaluations count no more at the gate, which the page says before saving.

use super::Suite;
use crate::api;
use crate::app::{deliver, Session};
use crate::expectation_form::{case_name_problem, describe, parse_all, variable_names, variable_text, variables};
use crate::pages::prompt::expectations::{ExpectationEditor, Rows};
use crate::pages::prompt::text;
use promptos_core::evaluation::Expectation;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use sycamore::prelude::*;

/// A case's inputs in one line: `customer = Ada · question = Where is my refund?`.
fn inputs_line(case: &Value) -> String {
    let mut parts: Vec<String> = case["variables"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} = {}", crate::webhook_form::response_start(&variable_text(v), 60)))
        .collect();
    for m in case["messages"].as_array().into_iter().flatten() {
        parts.push(format!("{}: {}", text(m, "role"), crate::webhook_form::response_start(&text(m, "content"), 60)));
    }
    if parts.is_empty() {
        "no inputs".to_owned()
    } else {
        parts.join(" · ")
    }
}

fn expectations_of(case: &Value) -> Vec<Expectation> {
    serde_json::from_value(case["expectations"].clone()).unwrap_or_default()
}

#[component(inline_props)]
pub(super) fn Cases(suite: Suite) -> View {
    let session = use_context::<Session>();
    let data = suite.data;
    // The case being edited (its id); `None` while adding one.
    let editing = create_signal(None::<String>);
    let name = create_signal(String::new());
    let values = create_signal(BTreeMap::<String, String>::new());
    let message = create_signal(String::new());
    // Messages of a case saved with more than one user message: kept as they are.
    let kept_messages = create_signal(Value::Null);
    let case_variables = create_signal(Value::Null);
    // Bumped when the form is filled or emptied, so its fields show the new values.
    let filled = create_signal(0u32);
    let rows = Rows::new();
    let form_error = create_signal(String::new());
    let busy = create_signal(false);

    let reset = move || {
        editing.set(None);
        name.set(String::new());
        values.set(BTreeMap::new());
        message.set(String::new());
        kept_messages.set(Value::Null);
        case_variables.set(Value::Null);
        rows.load(&[]);
        form_error.set(String::new());
        filled.set(filled.get_untracked() + 1);
    };
    let edit = move |case: Value| {
        editing.set(Some(text(&case, "case_id")));
        name.set(text(&case, "name"));
        let vars = case["variables"].as_object().cloned().unwrap_or_default();
        values.set(vars.iter().map(|(k, v)| (k.clone(), variable_text(v))).collect());
        case_variables.set(case["variables"].clone());
        let messages = case["messages"].as_array().cloned().unwrap_or_default();
        match messages.as_slice() {
            [] => (message.set(String::new()), kept_messages.set(Value::Null)),
            [one] if one["role"] == "user" => (message.set(text(one, "content")), kept_messages.set(Value::Null)),
            _ => (message.set(String::new()), kept_messages.set(json!(messages))),
        };
        rows.load(&expectations_of(&case));
        form_error.set(String::new());
        filled.set(filled.get_untracked() + 1);
        if let Some(field) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("case-name"))
        {
            use wasm_bindgen::JsCast;
            if let Ok(field) = field.dyn_into::<web_sys::HtmlElement>() {
                let _ = field.focus();
            }
        }
    };
    let remove = move |case: Value| {
        let question = format!(
            "Remove the test case {:?}? Earlier evaluations then count no more at the gate.",
            text(&case, "name")
        );
        if !web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false) {
            return;
        }
        let path = format!("/prompts/{}/test-cases/{}", api::encode(&data.name.get_clone()), text(&case, "case_id"));
        wasm_bindgen_futures::spawn_local(async move {
            match api::call("DELETE", &path, None, false).await {
                Ok(_) => suite.reload(),
                Err(f) => deliver(suite.error, f.message),
            }
        });
    };

    let list = move || {
        let can_edit = session.can_edit();
        suite
            .cases
            .get_clone()
            .into_iter()
            .map(|case| {
                let case_name = text(&case, "name");
                let expectations = expectations_of(&case)
                    .iter()
                    .map(|e| {
                        let line = describe(e);
                        view! { li { (line) } }
                    })
                    .collect::<Vec<View>>();
                let actions = if can_edit {
                    let (for_edit, for_remove) = (case.clone(), case.clone());
                    let (edit_label, remove_label) = (format!("Edit {case_name}"), format!("Remove {case_name}"));
                    view! {
                        div(class="actions") {
                            button(class="secondary", "aria-label"=edit_label, on:click=move |_| edit(for_edit.clone())) { "Edit" }
                            button(class="secondary", "aria-label"=remove_label, on:click=move |_| remove(for_remove.clone())) { "Remove" }
                        }
                    }
                } else {
                    view! {}
                };
                let (attr, inputs) = (case_name.clone(), inputs_line(&case));
                view! {
                    tr("data-case"=attr) {
                        td { (case_name) }
                        td(class="inputs") { (inputs) }
                        td { ul(class="expectation-list") { (expectations) } }
                        td { (actions) }
                    }
                }
            })
            .collect::<Vec<View>>()
    };

    let variable_fields = move || {
        filled.track();
        let vars = case_variables.get_clone();
        let names = data.prompt.with(|p| {
            let versions: Vec<Value> =
                p["versions"].as_array().cloned().unwrap_or_default().into_iter().rev().collect();
            variable_names(&versions, Some(&vars))
        });
        names
            .into_iter()
            .map(|n| {
                let id = format!("case-variable-{n}");
                let for_id = id.clone();
                let current = values.with_untracked(|v| v.get(&n).cloned().unwrap_or_default());
                let label = format!("Variable {n}");
                let key = n.clone();
                let on_input = move |e: web_sys::Event| {
                    use wasm_bindgen::JsCast;
                    if let Some(i) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                        values.update(|v| {
                            v.insert(key.clone(), i.value());
                        });
                    }
                };
                view! { label(r#for=for_id) { (label) } input(id=id, prop:value=current, on:input=on_input) }
            })
            .collect::<Vec<View>>()
    };

    let save = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let expectations = match parse_all(&rows.drafts()) {
            Ok(x) => x,
            Err(problem) => return form_error.set(problem),
        };
        let fields: Vec<(String, String)> = values
            .with(|v| v.iter().filter(|(_, typed)| !typed.is_empty()).map(|(k, t)| (k.clone(), t.clone())).collect());
        let messages = if kept_messages.with(Value::is_array) {
            kept_messages.get_clone()
        } else if message.with(|m| m.trim().is_empty()) {
            json!([])
        } else {
            json!([{"role": "user", "content": message.get_clone()}])
        };
        let body = json!({"name": name.get_clone().trim(), "variables": variables(&fields), "messages": messages,
            "expectations": expectations});
        let base = format!("/prompts/{}/test-cases/", api::encode(&data.name.get_clone()));
        let (method, path) = match editing.get_clone() {
            Some(id) => ("PUT", format!("{base}{id}")),
            None => ("POST", base),
        };
        busy.set(true);
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::call(method, &path, Some(body.to_string()), false).await;
            deliver(busy, false);
            match answer {
                Ok(_) => {
                    if busy.is_alive() {
                        reset();
                    }
                    suite.reload();
                }
                Err(f) => deliver(form_error, f.message),
            }
        });
    };

    let name_problem = create_memo(move || {
        let n = name.get_clone();
        if n.is_empty() {
            None
        } else {
            case_name_problem(&n)
        }
    });
    // A user message is offered for chat prompts, and for a case that has one. Typing in
    // it must not rebuild it: the message is read untracked, on each fill of the form.
    let takes_message = move || {
        filled.track();
        let chat =
            data.prompt.with(|p| p["versions"].as_array().is_some_and(|vs| vs.iter().any(|v| v["kind"] == "chat")));
        chat || !message.with_untracked(String::is_empty)
    };
    let heading = move || match editing.get_clone() {
        Some(_) => "Edit the test case".to_owned(),
        None => "Add a test case".to_owned(),
    };
    let form = move || {
        if !session.can_edit() {
            return view! { p(class="hint") { "Viewers see the test cases; editors and admins change them." } };
        }
        view! {
            h3 { (heading()) }
            form(on:submit=save, "aria-label"="Test case") {
                label(r#for="case-name") { "Case name" }
                input(id="case-name", bind:value=name, "aria-describedby"="case-name-problem")
                p(id="case-name-problem", class="hint error", role="status") { (name_problem.get_clone().unwrap_or_default()) }
                fieldset(class="variables") {
                    legend { "Inputs" }
                    p(class="hint") { "A field left empty is not sent. A value starting with [ or { is read as JSON." }
                    (variable_fields())
                    (if kept_messages.with(Value::is_array) {
                        view! { p(class="hint") { "This case's messages are kept as they are." } }
                    } else if !takes_message() {
                        view! {}
                    } else {
                        view! {
                            label(r#for="case-message") { "User message (optional, sent after a chat prompt's messages)" }
                            textarea(id="case-message", rows="2", bind:value=message)
                        }
                    })
                }
                fieldset(class="expectations") {
                    legend { "Expectations" }
                    ExpectationEditor(rows=rows, prefix="case")
                }
                p(class="error", role="alert") { (form_error.get_clone()) }
                div(class="actions") {
                    button(r#type="submit", disabled=move || busy.get() || name.with(|n| n.trim().is_empty()) || name_problem.with(Option::is_some)) {
                        (if editing.with(Option::is_some) { "Save the test case" } else { "Add the test case" })
                    }
                    (if editing.with(Option::is_some) {
                        view! { button(r#type="button", class="secondary", on:click=move |_| reset()) { "Cancel" } }
                    } else {
                        view! {}
                    })
                }
                p(class="hint") { "Saving a change means every version must be evaluated again before the gate opens." }
            }
        }
    };

    view! {
        section(class="card", "aria-label"="Test cases") {
            h2 { "Test cases" }
            (if suite.cases.with(Vec::is_empty) {
                view! { p(class="hint") { "No test cases yet. Add one below, or save one from the Playground." } }
            } else {
                view! {}
            })
            div(class="scroll") {
                table(class="cases") {
                    thead { tr { th { "Name" } th { "Inputs" } th { "Expectations" } th {} } }
                    tbody { (list()) }
                }
            }
            (form())
        }
    }
}
