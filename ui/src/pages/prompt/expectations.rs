//! The expectation editor, shared by the Tests tab's case form and the Playground: a
//! list of expectations, each a kind and the one field that kind needs (a form per kind),
//! checked as it is typed by [`crate::expectation_form`].

use crate::expectation_form::{ExpectationDraft, KINDS};
use promptos_core::evaluation::Expectation;
use sycamore::prelude::*;
use wasm_bindgen::JsCast;

/// One expectation being edited, with a stable id so removing one keeps the others'
/// fields.
#[derive(Clone, PartialEq, Debug)]
pub(super) struct Row {
    pub id: u32,
    pub draft: ExpectationDraft,
}

/// The rows of one editor, and the next id to give.
#[derive(Clone, Copy)]
pub(super) struct Rows {
    pub rows: Signal<Vec<Row>>,
    next: Signal<u32>,
}

impl Rows {
    pub fn new() -> Self {
        Rows { rows: create_signal(Vec::new()), next: create_signal(0) }
    }

    fn row(&self, draft: ExpectationDraft) -> Row {
        let id = self.next.get_untracked();
        self.next.set(id + 1);
        Row { id, draft }
    }

    pub fn push(&self, draft: ExpectationDraft) {
        let row = self.row(draft);
        self.rows.update(|r| r.push(row));
    }

    /// Replaces the rows with `expectations` (to edit a saved case), or empties them.
    pub fn load(&self, expectations: &[Expectation]) {
        let rows: Vec<Row> = expectations.iter().map(|e| self.row(ExpectationDraft::of(e))).collect();
        self.rows.set(rows);
    }

    pub fn drafts(&self) -> Vec<ExpectationDraft> {
        self.rows.with(|r| r.iter().map(|r| r.draft.clone()).collect())
    }

    fn edit(&self, id: u32, change: impl FnOnce(&mut ExpectationDraft)) {
        self.rows.update(|r| {
            if let Some(row) = r.iter_mut().find(|x| x.id == id) {
                change(&mut row.draft);
            }
        })
    }
}

/// The editor. `prefix` keeps its fields' ids apart from another editor's on the page.
#[component(inline_props)]
pub(super) fn ExpectationEditor(rows: Rows, prefix: &'static str) -> View {
    let position = move |id: u32| rows.rows.with(|r| r.iter().position(|x| x.id == id).unwrap_or(0)) + 1;
    let draft_of = move |id: u32| rows.rows.with(|r| r.iter().find(|x| x.id == id).map(|x| x.draft.clone()));
    let row_view = move |row: Row| {
        let id = row.id;
        let kind_id = format!("{prefix}-expectation-kind-{id}");
        let text_id = format!("{prefix}-expectation-text-{id}");
        let case_id = format!("{prefix}-expectation-case-{id}");
        let (kind_for, text_for, case_for) = (kind_id.clone(), text_id.clone(), case_id.clone());
        let kind = create_memo(move || draft_of(id).map(|d| d.kind).unwrap_or_default());
        let options = KINDS
            .iter()
            .map(|(value, label)| {
                let selected = *value == row.draft.kind;
                view! { option(value=*value, selected=selected) { (*label) } }
            })
            .collect::<Vec<View>>();
        let on_kind = move |e: web_sys::Event| {
            if let Some(s) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok()) {
                rows.edit(id, |d| d.kind = s.value());
            }
        };
        let on_text = move |e: web_sys::Event| {
            let target = e.target();
            let value = target
                .clone()
                .and_then(|t| t.dyn_into::<web_sys::HtmlTextAreaElement>().ok().map(|t| t.value()))
                .or_else(|| target.and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok().map(|t| t.value())));
            if let Some(value) = value {
                rows.edit(id, |d| d.text = value);
            }
        };
        let on_case = move |e: web_sys::Event| {
            if let Some(c) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                rows.edit(id, |d| d.case_insensitive = c.checked());
            }
        };
        let problem = move || draft_of(id).and_then(|d| d.parse().err()).unwrap_or_default();
        let text = row.draft.text.clone();
        let ignores_case = row.draft.case_insensitive;
        // The field changes with the kind; what was typed stays.
        let field = move || {
            let k = kind.get_clone();
            let Some(label) = ExpectationDraft::field_label(&k) else { return view! {} };
            let label = move || format!("Expectation {} — {label}", position(id));
            // Read without tracking: typing must not rebuild the field it types in.
            let current = rows
                .rows
                .with_untracked(|r| r.iter().find(|x| x.id == id).map(|x| x.draft.text.clone()))
                .unwrap_or_else(|| text.clone());
            let (field_id, field_for) = (text_id.clone(), text_for.clone());
            let input = if ExpectationDraft::is_long(&k) {
                view! { textarea(id=field_id, rows="3", prop:value=current, on:input=on_text) }
            } else {
                let kind_of_input = if k == "max_chars" { "number" } else { "text" };
                view! { input(id=field_id, r#type=kind_of_input, prop:value=current, on:input=on_text) }
            };
            view! { label(r#for=field_for) { (label) } (input) }
        };
        let case_box = move || {
            if !ExpectationDraft::compares_text(&kind.get_clone()) {
                return view! {};
            }
            let (box_id, box_for) = (case_id.clone(), case_for.clone());
            let label = move || format!("Expectation {} ignores case", position(id));
            let ignores_case = rows
                .rows
                .with_untracked(|r| r.iter().find(|x| x.id == id).map(|x| x.draft.case_insensitive))
                .unwrap_or(ignores_case);
            view! {
                label(class="check", r#for=box_for) {
                    input(id=box_id, r#type="checkbox", prop:checked=ignores_case, on:change=on_case)
                    " " (label)
                }
            }
        };
        view! {
            li(class="expectation-editor", "data-expectation-id"=id.to_string()) {
                div(class="inline-form") {
                    label(r#for=kind_for) { (move || format!("Expectation {} kind", position(id))) }
                    select(id=kind_id, on:change=on_kind) { (options) }
                    button(r#type="button", class="secondary", "aria-label"=move || format!("Remove expectation {}", position(id)),
                        on:click=move |_| rows.rows.update(|r| r.retain(|x| x.id != id))) { "Remove" }
                }
                (field)
                (case_box)
                p(class="hint error", role="status") { (problem()) }
            }
        }
    };
    view! {
        ol(class="expectations") {
            Keyed(list=rows.rows, view=row_view, key=|r: &Row| r.id)
        }
        button(r#type="button", class="secondary", on:click=move |_| rows.push(ExpectationDraft::default())) { "Add expectation" }
    }
}
