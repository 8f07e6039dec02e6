//! The Versions tab: the history of versions, a version's text, a comparison of any two
//! versions as a highlighted diff, and the new-version editor that checks the template as
//! you type (with the server's own parser, compiled to WebAssembly).

use super::optimize::{Catalogue, OptimizeButton, OptimizeDialog};
use super::{text, when, Data};
use crate::api;
use crate::app::{deliver, Session};
use crate::diff::{self, Side};
use promptos_core::template::Template;
use serde_json::{json, Value};
use sycamore::prelude::*;

/// One version, looked up by its version string.
fn version(data: &Data, v: &str) -> Option<Value> {
    data.prompt.with(|p| p["versions"].as_array().and_then(|vs| vs.iter().find(|x| x["version_string"] == v).cloned()))
}

#[component(inline_props)]
pub(super) fn Versions(data: Data) -> View {
    let session = use_context::<Session>();
    let selected = create_signal(String::new());
    let from = create_signal(String::new());
    let to = create_signal(String::new());
    // Start by comparing the two newest versions.
    create_effect(move || {
        let vs = data.versions();
        if vs.len() >= 2 && from.with_untracked(String::is_empty) && to.with_untracked(String::is_empty) {
            from.set(vs[1].clone());
            to.set(vs[0].clone());
        }
    });
    let draft = create_signal(String::new());
    // The version the Optimize dialog works on; empty while it is closed.
    let optimizing = create_signal(String::new());
    let catalogue = Catalogue::load(session);

    let rows = move || {
        data.prompt
            .with(|p| p["versions"].as_array().cloned().unwrap_or_default())
            .into_iter()
            .rev()
            .map(|v| {
                let [vs, author, created, message] =
                    ["version_string", "author", "created_at", "commit_message"].map(|k| text(&v, k));
                let live: Vec<String> = data.deployments.with(|d| {
                    d["current"]
                        .as_object()
                        .map(|c| {
                            c.iter().filter(|(_, dep)| dep["version_string"] == vs.as_str()).map(|(e, _)| e.clone()).collect()
                        })
                        .unwrap_or_default()
                });
                let live = live.join(", ");
                let is_open = {
                    let vs = vs.clone();
                    move || selected.with(|s| *s == vs)
                };
                let toggle = {
                    let vs = vs.clone();
                    move |_| selected.set(if selected.with(|s| *s == vs) { String::new() } else { vs.clone() })
                };
                let label = format!("Show the text of {vs}");
                let expanded = is_open.clone();
                view! {
                    tr(class=move || if is_open() { "open" } else { "" }) {
                        td(class="version") { (vs.clone()) }
                        td { (author) }
                        td { (when(&created)) }
                        td { (message) }
                        td { span(class="live-in") { (live) } }
                        td {
                            button(class="secondary", "aria-label"=label, "aria-expanded"=move || expanded().to_string(),
                                on:click=toggle) { "View" }
                        }
                    }
                }
            })
            .collect::<Vec<View>>()
    };

    let detail = move || {
        let vs = selected.get_clone();
        let Some(v) = version(&data, &vs) else { return view! {} };
        let body = text(&v, "text");
        let variables = v["variables"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let variables =
            if variables.is_empty() { "No variables.".to_owned() } else { format!("Variables: {variables}") };
        let draft_body = body.clone();
        let compare_with = vs.clone();
        let heading = format!("Version {vs}");
        let region = heading.clone();
        let origin = origin_line(&v["origin"]);
        let actions = if session.can_edit() {
            let version = vs.clone();
            view! {
                button(class="secondary", on:click=move |_| draft.set(draft_body.clone())) { "Edit as a new version" }
                OptimizeButton(version=version, catalogue=catalogue, source=optimizing)
            }
        } else {
            view! {}
        };
        view! {
            section(class="card", "aria-label"=region, "data-testid"="version-detail") {
                h2 { (heading) }
                pre(class="template") { (body) }
                p(class="hint") { (variables) }
                p(class="hint origin", "data-testid"="version-origin") { (origin) }
                div(class="actions") {
                    button(class="secondary", on:click=move |_| to.set(compare_with.clone())) { "Compare" }
                    (actions)
                }
            }
        }
    };

    view! {
        section(class="card") {
            h2 { "Versions" }
            div(class="scroll") {
                table(class="versions") {
                    thead { tr { th { "Version" } th { "Author" } th { "Created" } th { "Message" } th { "Live in" } th {} } }
                    tbody { (rows()) }
                }
            }
            (if data.prompt.with(|p| p["versions"].as_array().is_some_and(|v| v.is_empty())) {
                view! { p(class="hint") { "No versions yet." } }
            } else {
                view! {}
            })
        }
        (detail())
        Compare(data=data, from=from, to=to)
        (if session.can_edit() {
            view! {
                NewVersion(data=data, draft=draft)
                OptimizeDialog(data=data, catalogue=catalogue, source=optimizing, created=selected)
            }
        } else {
            view! { section(class="card") { p(class="hint") { "Viewers can read versions; editors and admins create them." } } }
        })
    }
}

/// Where a version's text came from, when an LLM wrote it; empty for human-written text.
pub(super) fn origin_line(origin: &Value) -> String {
    if !origin.is_object() {
        return String::new();
    }
    let from = origin["from_version"].as_str().map(|v| format!(" from {v}")).unwrap_or_default();
    let edited = if origin["edited"] == true { ", edited before it was accepted" } else { "" };
    format!(
        "LLM suggestion: goal {}, by {} ({}){from}{edited}.",
        text(origin, "goal"),
        text(origin, "provider"),
        text(origin, "model")
    )
}

/// Two version selects and the diff between them.
#[component(inline_props)]
fn Compare(data: Data, from: Signal<String>, to: Signal<String>) -> View {
    let options = move |chosen: Signal<String>| {
        data.versions()
            .into_iter()
            .map(|v| {
                let value = v.clone();
                let is_chosen = chosen.with(|c| *c == v);
                view! { option(value=value, selected=is_chosen) { (v) } }
            })
            .collect::<Vec<View>>()
    };
    let lines = create_memo(move || {
        let (a, b) = (version(&data, &from.get_clone()), version(&data, &to.get_clone()));
        match (a, b) {
            (Some(a), Some(b)) => Some(diff::lines(&text(&a, "text"), &text(&b, "text"))),
            _ => None,
        }
    });
    let summary = move || match lines.get_clone() {
        None => "Pick two versions to compare.".to_owned(),
        Some(l) => match diff::counts(&l) {
            (0, 0) => format!("{} and {} have the same text.", from.get_clone(), to.get_clone()),
            (added, removed) => format!(
                "{} → {}: {added} line{} added, {removed} removed.",
                from.get_clone(),
                to.get_clone(),
                if added == 1 { "" } else { "s" }
            ),
        },
    };
    let diff_lines = move || {
        lines
            .get_clone()
            .unwrap_or_default()
            .into_iter()
            .map(|line| {
                let number = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
                let (old, new) = (number(line.old_number), number(line.new_number));
                let pieces = line
                    .pieces
                    .into_iter()
                    .map(|(emphasised, s)| {
                        if emphasised {
                            view! { mark { (s) } }
                        } else {
                            view! { (s) }
                        }
                    })
                    .collect::<Vec<View>>();
                let content = match line.side {
                    Side::Same => view! { span(class="text") { (pieces) } },
                    Side::Removed => view! { del(class="text") { (pieces) } },
                    Side::Added => view! { ins(class="text") { (pieces) } },
                };
                let mark = match line.side {
                    Side::Same => " ",
                    Side::Removed => "−",
                    Side::Added => "+",
                };
                view! {
                    div(class=format!("line {}", line.side.class())) {
                        span(class="num", "aria-hidden"="true") { (old) }
                        span(class="num", "aria-hidden"="true") { (new) }
                        span(class="mark", "aria-hidden"="true") { (mark) }
                        (content)
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    view! {
        section(class="card", "aria-label"="Compare versions") {
            h2 { "Compare versions" }
            div(class="inline-form") {
                label(r#for="compare-from") { "From" }
                select(id="compare-from", bind:value=from) { option(value="") { "Choose…" } (options(from)) }
                label(r#for="compare-to") { "To" }
                select(id="compare-to", bind:value=to) { option(value="") { "Choose…" } (options(to)) }
            }
            p(class="hint", role="status", "data-testid"="diff-summary") { (summary()) }
            div(class="diff", "data-testid"="diff") { (diff_lines()) }
        }
    }
}

/// The new-version editor. `draft` fills it from an existing version.
#[component(inline_props)]
fn NewVersion(data: Data, draft: Signal<String>) -> View {
    let version = create_signal(String::new());
    let body = create_signal(String::new());
    let message = create_signal(String::new());
    let form_error = create_signal(String::new());
    create_effect(move || {
        let d = draft.get_clone();
        if !d.is_empty() {
            body.set(d);
            draft.set_silent(String::new());
            if let Some(t) =
                web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("version-string"))
            {
                use wasm_bindgen::JsCast;
                if let Ok(input) = t.dyn_into::<web_sys::HtmlElement>() {
                    let _ = input.focus();
                }
            }
        }
    });
    let check = create_memo(move || match Template::parse(&body.get_clone()) {
        Ok(t) if t.variables().is_empty() => Ok("No variables.".to_owned()),
        Ok(t) => Ok(format!("Variables: {}", t.variables().join(", "))),
        Err(e) => Err(format!("Line {}, column {}: {}", e.line, e.column, e.message)),
    });
    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let mut payload = json!({"version_string": version.get_clone(), "text": body.get_clone()});
        if !message.with(|m| m.trim().is_empty()) {
            payload["commit_message"] = json!(message.get_clone());
        }
        let path = format!("/prompts/{}/versions/", api::encode(&data.name.get_clone()));
        wasm_bindgen_futures::spawn_local(async move {
            match api::post(&path, payload).await {
                Ok(_) => {
                    deliver(form_error, String::new());
                    deliver(version, String::new());
                    deliver(body, String::new());
                    deliver(message, String::new());
                    data.reload();
                }
                Err(f) => deliver(form_error, f.message),
            }
        });
    };
    view! {
        section(class="card") {
            h2 { "New version" }
            form(on:submit=submit, "aria-label"="Create a version") {
                label(r#for="version-string") { "Version" }
                input(id="version-string", placeholder="v1.0", bind:value=version)
                label(r#for="version-text") { "Template" }
                textarea(id="version-text", rows="8", bind:value=body, "aria-describedby"="template-check")
                p(id="template-check", class=move || if check.with(|c| c.is_err()) { "hint error" } else { "hint" },
                    role="status") {
                    (check.with(|c| match c { Ok(s) | Err(s) => s.clone() }))
                }
                label(r#for="commit-message") { "Commit message (optional)" }
                input(id="commit-message", bind:value=message)
                p(class="error", role="alert") { (form_error.get_clone()) }
                button(r#type="submit", disabled=move || check.with(|c| c.is_err()) || version.with(|v| v.trim().is_empty())) { "Create version" }
            }
        }
    }
}
