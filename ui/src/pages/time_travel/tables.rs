//! The Time travel page's two tables: what was live at the moment (each row opens the
//! version's text as it was then), and the changes since, each with its events.
//!
//! The prompt page has no address for one version, so rows link to the prompt page
//! (`/ui/prompts/<name>`, its Versions tab); the text as it was is shown here.

use crate::api;
use crate::app::Session;
use crate::readable_time;
use crate::time_travel::{change_label, change_version, describe_change, event_line, serving};
use serde_json::Value;
use sycamore::prelude::*;

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// A link to the prompt page, inside the app.
fn prompt_link(name: &str, label: String, aria: String) -> View {
    let session = use_context::<Session>();
    let href = format!("/ui/prompts/{}", api::encode(name));
    let go = href.clone();
    view! {
        a(href=href, "aria-label"=aria, on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate(&go); }) { (label) }
    }
}

/// A template or a chat prompt's messages, as deployed.
fn wording(d: &Value) -> View {
    match d["messages"].as_array().cloned() {
        Some(messages) => {
            let items = messages
                .into_iter()
                .map(|m| {
                    let (role, content) = (text(&m, "role"), text(&m, "content"));
                    view! { li(class="message") { span(class="role") { (role) } pre(class="template") { (content) } } }
                })
                .collect::<Vec<View>>();
            view! { ol(class="messages") { (items) } }
        }
        None => {
            let body = text(d, "prompt_text");
            view! { pre(class="template") { (body) } }
        }
    }
}

/// The version(s) a deployed prompt served, with their text as it was: one version, or
/// each variant of an A/B test with its weight.
fn version_as_it_was(d: &Value) -> View {
    let variants = d["experiment"]["variants"].as_array().cloned().unwrap_or_default();
    if variants.is_empty() {
        let heading = format!("Version {}", text(d, "version_string"));
        let body = wording(d);
        return view! { h3 { (heading) } (body) };
    }
    variants
        .iter()
        .map(|v| {
            let heading = format!("Version {} ({} %)", text(v, "version_string"), v["weight"]);
            let body = wording(v);
            view! { h3 { (heading) } (body) }
        })
        .collect::<Vec<View>>()
        .into()
}

/// One prompt live at the moment; "View" opens its text as it was.
#[component(inline_props)]
fn LiveRow(deployed: Value) -> View {
    let open = create_signal(false);
    let name = text(&deployed, "prompt_name");
    let version = text(&deployed, "version_string");
    let link = prompt_link(&name, name.clone(), format!("Open {name}"));
    let (what, at, by) =
        (serving(&deployed), readable_time(&text(&deployed, "deployed_at")), text(&deployed, "deployed_by"));
    let position = deployed["position"].to_string();
    let label = format!("View {name} {version} as it was");
    let detail = move || {
        if !open.get() {
            return view! {};
        }
        let body = version_as_it_was(&deployed);
        view! { tr(class="version-detail", "data-testid"="version-as-it-was") { td(colspan="6") { (body) } } }
    };
    view! {
        tr("data-prompt"=name.clone(), class=move || if open.get() { "open" } else { "" }) {
            th(scope="row") { (link) }
            td(class="version", "data-testid"="serving") { (what) }
            td(class="nowrap") { (at) }
            td { (by) }
            td { (position) }
            td {
                button(class="secondary", "aria-label"=label, "aria-expanded"=move || open.get().to_string(),
                    on:click=move |_| open.set(!open.get())) { "View" }
            }
        }
        (detail())
    }
}

/// What was live: `{environment, position, items}` of `GET /deployed/?as_of=`.
#[component(inline_props)]
pub(super) fn LiveTable(answer: Value) -> View {
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    let heading = format!("Live in {} at {}", text(&answer, "environment"), readable_time(&text(&answer, "as_of")));
    // The answer includes the log up to here (read then, about the moment asked for).
    let position = format!("Read from the log up to position {}.", answer["position"]);
    let rows = items.into_iter().map(|d| view! { LiveRow(deployed=d) }).collect::<Vec<View>>();
    let table = if rows.is_empty() {
        view! { p(class="hint", "data-testid"="live-empty") { "Nothing was deployed here at that moment." } }
    } else {
        view! {
            div(class="scroll") {
                table(class="as-of", "data-testid"="live-table") {
                    thead { tr { th { "Prompt" } th { "Serving" } th { "Deployed" } th { "By" } th { "Position" } th {} } }
                    tbody { (rows) }
                }
            }
        }
    };
    view! {
        section(class="card", "aria-label"="Live at that moment") {
            h2 { (heading) }
            (table)
            p(class="hint", "data-testid"="live-position") { (position) }
        }
    }
}

/// One change: its kind, before → after, the events behind it, and the version it opens.
fn change_row(change: &Value) -> View {
    let name = text(change, "prompt_name");
    let kind = text(change, "change");
    let (label, what) = (change_label(&kind), describe_change(change));
    let events = change["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let (line, at) = (event_line(&e), readable_time(&text(&e, "recorded_at")));
            let kind = text(&e, "type");
            view! { li("data-type"=kind) { (line) span(class="hint") { " at " (at) } } }
        })
        .collect::<Vec<View>>();
    let open = match change_version(change) {
        Some(v) => prompt_link(&name, format!("Open {v}"), format!("Open {name} {v}")),
        None => view! {},
    };
    let badge = format!("change {kind}");
    let name_attr = name.clone();
    view! {
        tr("data-prompt"=name_attr, "data-change"=kind) {
            th(scope="row") { (name) }
            td { span(class=badge) { (label) } }
            td(class="version", "data-testid"="change-what") { (what) }
            td { ul(class="change-events", "data-testid"="change-events") { (events) } }
            td { (open) }
        }
    }
}

/// What changed: `{environment, from, to, changes}` of `GET /audit/diff`.
#[component(inline_props)]
pub(super) fn ChangesTable(answer: Value) -> View {
    let changes = answer["changes"].as_array().cloned().unwrap_or_default();
    let to = match answer["to"].as_str() {
        Some(t) if !t.is_empty() => readable_time(t),
        _ => "now".to_owned(),
    };
    let heading = format!("Changes from {} to {to}", readable_time(&text(&answer, "from")));
    let rows = changes.iter().map(change_row).collect::<Vec<View>>();
    let table = if rows.is_empty() {
        view! { p(class="hint", "data-testid"="changes-empty") { "Nothing changed in between." } }
    } else {
        view! {
            div(class="scroll") {
                table(class="changes", "data-testid"="changes-table") {
                    thead { tr { th { "Prompt" } th { "Change" } th { "Before → after" } th { "Events" } th {} } }
                    tbody { (rows) }
                }
            }
        }
    };
    view! {
        section(class="card", "aria-label"="Changes") {
            h2 { (heading) }
            (table)
        }
    }
}
