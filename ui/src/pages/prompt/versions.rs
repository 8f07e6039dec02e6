//! The Versions tab: the history of versions, a version's text, a comparison of any two
//! versions as a highlighted diff, and the new-version editor that checks the template as
//! you type (with the server's own parser, compiled to WebAssembly).

use super::optimize::{Catalogue, OptimizeButton, OptimizeDialog};
use super::{text, version, when, Data};
use crate::api;
use crate::app::{deliver, Session};
use promptos_core::template::Template;
use serde_json::{json, Value};
use sycamore::prelude::*;

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
    // A version to start the editor from (its JSON); Null when there is none.
    let draft = create_signal(Value::Null);
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
        let includes = v["includes"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let includes = if includes.is_empty() { String::new() } else { format!("Includes: {includes}") };
        let config = if v["config"].is_object() {
            let pretty = serde_json::to_string_pretty(&v["config"]).unwrap_or_default();
            view! { h3 { "Model configuration" } pre(class="template", "data-testid"="version-config") { (pretty) } }
        } else {
            view! {}
        };
        let content = match v["messages"].as_array().cloned() {
            Some(messages) => {
                let items = messages
                    .into_iter()
                    .map(|m| {
                        let (role, content) = (text(&m, "role"), text(&m, "content"));
                        view! { li(class="message") { span(class="role") { (role) } pre(class="template") { (content) } } }
                    })
                    .collect::<Vec<View>>();
                view! { ol(class="messages", "data-testid"="version-messages") { (items) } }
            }
            None => view! { pre(class="template") { (body) } },
        };
        let draft_source = v.clone();
        let compare_with = vs.clone();
        let heading = if v["kind"] == "chat" { format!("Version {vs} (chat)") } else { format!("Version {vs}") };
        let region = format!("Version {vs}");
        let origin = origin_line(&v["origin"]);
        let actions = if session.can_edit() {
            let version = vs.clone();
            let optimize = if v["kind"] == "chat" {
                view! {}
            } else {
                view! { OptimizeButton(version=version, catalogue=catalogue, source=optimizing) }
            };
            view! {
                button(class="secondary", on:click=move |_| draft.set(draft_source.clone())) { "Edit as a new version" }
                (optimize)
            }
        } else {
            view! {}
        };
        view! {
            section(class="card", "aria-label"=region, "data-testid"="version-detail") {
                h2 { (heading) }
                (content)
                p(class="hint") { (variables) }
                p(class="hint") { (includes) }
                (config)
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
        super::compare::Compare(data=data, from=from, to=to)
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

/// A chat message being edited: a stable id (so reordering keeps each row's inputs),
/// its role and content.
#[derive(Clone, PartialEq)]
struct Row {
    id: u32,
    role: String,
    content: String,
}

const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

/// What the editor's content amounts to: the variables and includes, or the first
/// problem in words.
fn check_content(kind: &str, body: &str, rows: &[Row], config: &str) -> Result<String, String> {
    let mut variables = std::collections::BTreeSet::new();
    let mut includes = std::collections::BTreeSet::new();
    if kind == "chat" {
        if rows.is_empty() {
            return Err("Add at least one message.".to_owned());
        }
        for (i, row) in rows.iter().enumerate() {
            let t = Template::parse(&row.content)
                .map_err(|e| format!("Message {}, line {}, column {}: {}", i + 1, e.line, e.column, e.message))?;
            variables.extend(t.variables().iter().cloned());
            includes.extend(t.includes().iter().map(|n| n.to_string()));
        }
    } else {
        let t = Template::parse(body).map_err(|e| format!("Line {}, column {}: {}", e.line, e.column, e.message))?;
        variables.extend(t.variables().iter().cloned());
        includes.extend(t.includes().iter().map(|n| n.to_string()));
    }
    if !config.trim().is_empty() {
        match serde_json::from_str::<Value>(config) {
            Ok(Value::Object(_)) => {}
            Ok(_) => return Err("Model configuration: must be a JSON object, like {\"model\": \"gpt-4o\"}.".to_owned()),
            Err(e) => return Err(format!("Model configuration: not valid JSON ({e}).")),
        }
    }
    let mut said = if variables.is_empty() {
        "No variables.".to_owned()
    } else {
        format!("Variables: {}.", variables.into_iter().collect::<Vec<_>>().join(", "))
    };
    if !includes.is_empty() {
        said.push_str(&format!(" Includes: {}.", includes.into_iter().collect::<Vec<_>>().join(", ")));
    }
    Ok(said)
}

/// The new-version editor: a text template or chat messages (add, remove, reorder, each
/// with its role), and an optional model configuration as JSON. `draft` fills it from an
/// existing version.
#[component(inline_props)]
fn NewVersion(data: Data, draft: Signal<Value>) -> View {
    let version = create_signal(String::new());
    let kind = create_signal("text".to_owned());
    let body = create_signal(String::new());
    let rows = create_signal(Vec::<Row>::new());
    let next_id = create_signal(0u32);
    let config = create_signal(String::new());
    let message = create_signal(String::new());
    let form_error = create_signal(String::new());
    let new_row = move |role: &str, content: String| {
        let id = next_id.get();
        next_id.set(id + 1);
        Row { id, role: role.to_owned(), content }
    };
    create_effect(move || {
        let d = draft.get_clone();
        if d.is_null() {
            return;
        }
        draft.set_silent(Value::Null);
        match d["messages"].as_array() {
            Some(ms) => {
                kind.set("chat".into());
                let loaded: Vec<Row> = ms.iter().map(|m| new_row(&text(m, "role"), text(m, "content"))).collect();
                rows.set(loaded);
            }
            None => {
                kind.set("text".into());
                body.set(text(&d, "text"));
            }
        }
        config.set(if d["config"].is_object() {
            serde_json::to_string_pretty(&d["config"]).unwrap_or_default()
        } else {
            String::new()
        });
        if let Some(t) =
            web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("version-string"))
        {
            use wasm_bindgen::JsCast;
            if let Ok(input) = t.dyn_into::<web_sys::HtmlElement>() {
                let _ = input.focus();
            }
        }
    });
    // Switching to chat starts from the text as a system message, and back.
    let switch_kind = move |e: web_sys::Event| {
        use wasm_bindgen::JsCast;
        let Some(select) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok()) else { return };
        let chosen = select.value();
        if chosen == "chat" && rows.with(Vec::is_empty) {
            let first = new_row("system", body.get_clone());
            rows.set(vec![first]);
        }
        if chosen == "text" && body.with(String::is_empty) {
            let joined = rows.with(|r| r.iter().map(|r| r.content.clone()).collect::<Vec<_>>().join("\n\n"));
            body.set(joined);
        }
        kind.set(chosen);
    };
    let check = create_memo(move || {
        check_content(&kind.get_clone(), &body.get_clone(), &rows.get_clone(), &config.get_clone())
    });
    let position = move |id: u32| rows.with(|r| r.iter().position(|x| x.id == id).unwrap_or(0));
    let set_role = move |id: u32, role: String| {
        rows.update(|r| {
            if let Some(x) = r.iter_mut().find(|x| x.id == id) {
                x.role = role;
            }
        })
    };
    let set_content = move |id: u32, content: String| {
        rows.update(|r| {
            if let Some(x) = r.iter_mut().find(|x| x.id == id) {
                x.content = content;
            }
        })
    };
    let shift = move |id: u32, by: isize| {
        rows.update(|r| {
            let Some(i) = r.iter().position(|x| x.id == id) else { return };
            let j = i as isize + by;
            if j >= 0 && (j as usize) < r.len() {
                r.swap(i, j as usize);
            }
        })
    };
    let remove = move |id: u32| rows.update(|r| r.retain(|x| x.id != id));
    let add = move |_| {
        let role = if rows.with(|r| r.last().is_some_and(|x| x.role == "user")) { "assistant" } else { "user" };
        let row = new_row(role, String::new());
        rows.update(|r| r.push(row));
    };
    let row_view = move |row: Row| {
        use wasm_bindgen::JsCast;
        let id = row.id;
        let (role_id, content_id) = (format!("message-role-{id}"), format!("message-content-{id}"));
        let (role_for, content_for) = (role_id.clone(), content_id.clone());
        let n = move || position(id) + 1;
        let options = ROLES
            .iter()
            .map(|r| {
                let selected = *r == row.role;
                view! { option(value=*r, selected=selected) { (*r) } }
            })
            .collect::<Vec<View>>();
        let on_role = move |e: web_sys::Event| {
            if let Some(s) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok()) {
                set_role(id, s.value());
            }
        };
        let on_content = move |e: web_sys::Event| {
            if let Some(t) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlTextAreaElement>().ok()) {
                set_content(id, t.value());
            }
        };
        let content = row.content.clone();
        view! {
            li(class="message-editor", "data-message-id"=id.to_string()) {
                div(class="inline-form") {
                    label(r#for=role_for) { (move || format!("Message {} role", n())) }
                    select(id=role_id, on:change=on_role) { (options) }
                    button(r#type="button", class="secondary", "aria-label"=move || format!("Move message {} up", n()),
                        disabled=move || n() == 1, on:click=move |_| shift(id, -1)) { "↑" }
                    button(r#type="button", class="secondary", "aria-label"=move || format!("Move message {} down", n()),
                        disabled=move || n() == rows.with(Vec::len), on:click=move |_| shift(id, 1)) { "↓" }
                    button(r#type="button", class="secondary", "aria-label"=move || format!("Remove message {}", n()),
                        on:click=move |_| remove(id)) { "Remove" }
                }
                label(r#for=content_for) { (move || format!("Message {} content", n())) }
                textarea(id=content_id, rows="4", prop:value=content, on:input=on_content)
            }
        }
    };
    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let mut payload = json!({"version_string": version.get_clone()});
        if kind.with(|k| k == "chat") {
            let messages: Vec<Value> =
                rows.with(|r| r.iter().map(|x| json!({"role": x.role, "content": x.content})).collect());
            payload["messages"] = json!(messages);
        } else {
            payload["text"] = json!(body.get_clone());
        }
        if !config.with(|c| c.trim().is_empty()) {
            payload["config"] = serde_json::from_str(&config.get_clone()).unwrap_or(Value::Null);
        }
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
                    deliver(rows, Vec::new());
                    deliver(config, String::new());
                    deliver(message, String::new());
                    data.reload();
                }
                Err(f) => deliver(form_error, f.message),
            }
        });
    };
    let is_chat = create_selector(move || kind.with(|k| k == "chat"));
    view! {
        section(class="card") {
            h2 { "New version" }
            form(on:submit=submit, "aria-label"="Create a version") {
                label(r#for="version-string") { "Version" }
                input(id="version-string", placeholder="v1.0", bind:value=version)
                label(r#for="version-kind") { "Kind" }
                select(id="version-kind", on:change=switch_kind, prop:value=move || kind.get_clone()) {
                    option(value="text") { "Text: one template" }
                    option(value="chat") { "Chat: messages with roles" }
                }
                (if is_chat.get() {
                    view! {
                        ol(class="messages") {
                            Keyed(list=rows, view=row_view, key=|r: &Row| r.id)
                        }
                        button(r#type="button", class="secondary", on:click=add) { "Add message" }
                    }
                } else {
                    view! {
                        label(r#for="version-text") { "Template" }
                        textarea(id="version-text", rows="8", bind:value=body, "aria-describedby"="template-check")
                    }
                })
                p(id="template-check", class=move || if check.with(|c| c.is_err()) { "hint error" } else { "hint" },
                    role="status") {
                    (check.with(|c| match c { Ok(s) | Err(s) => s.clone() }))
                }
                label(r#for="version-config") { "Model configuration (JSON object, optional)" }
                textarea(id="version-config", rows="5", placeholder="{\"model\": \"gpt-4o-mini\", \"temperature\": 0.2}",
                    bind:value=config)
                label(r#for="commit-message") { "Commit message (optional)" }
                input(id="commit-message", bind:value=message)
                p(class="error", role="alert") { (form_error.get_clone()) }
                button(r#type="submit", disabled=move || check.with(|c| c.is_err()) || version.with(|v| v.trim().is_empty())) { "Create version" }
            }
        }
    }
}
