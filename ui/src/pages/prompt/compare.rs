//! Comparing two versions of a prompt: a line diff with the changed words marked, text
//! by text, message by message for chat versions, and the configuration.

use super::{text, version, Data};
use crate::diff::{self, Side};
use serde_json::Value;
use sycamore::prelude::*;

/// Two version selects and the diff between them.
#[component(inline_props)]
pub(super) fn Compare(data: Data, from: Signal<String>, to: Signal<String>) -> View {
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
    // The text, or each chat message, and the model configuration, each as a titled diff.
    let sections = create_memo(move || {
        let (a, b) = (version(&data, &from.get_clone())?, version(&data, &to.get_clone())?);
        Some(compare_sections(&a, &b))
    });
    let summary = move || match sections.get_clone() {
        None => "Pick two versions to compare.".to_owned(),
        Some(sections) => {
            let (added, removed) =
                sections.iter().map(|(_, l)| diff::counts(l)).fold((0, 0), |(a, r), (a2, r2)| (a + a2, r + r2));
            match (added, removed) {
                (0, 0) => format!("{} and {} have the same text.", from.get_clone(), to.get_clone()),
                (added, removed) => format!(
                    "{} → {}: {added} line{} added, {removed} removed.",
                    from.get_clone(),
                    to.get_clone(),
                    if added == 1 { "" } else { "s" }
                ),
            }
        }
    };
    let diff_sections = move || {
        sections
            .get_clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(title, lines)| {
                let heading = if title.is_empty() {
                    view! {}
                } else {
                    view! { h3(class="diff-title") { (title) } }
                };
                let body = diff_lines(lines);
                view! { (heading) (body) }
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
            div(class="diff", "data-testid"="diff") { (diff_sections()) }
        }
    }
}

/// What two versions differ in, as titled line diffs: the text of text prompts, or
/// chat messages paired by position (noting added, removed and re-roled messages), then
/// the model configuration when either version has one.
pub(crate) fn compare_sections(a: &Value, b: &Value) -> Vec<(String, Vec<diff::Line>)> {
    let mut out = Vec::new();
    if a["kind"] == "chat" || b["kind"] == "chat" {
        let messages = |v: &Value| -> Vec<(String, String)> {
            match v["messages"].as_array() {
                Some(ms) => ms.iter().map(|m| (text(m, "role"), text(m, "content"))).collect(),
                None => vec![("text".to_owned(), text(v, "text"))],
            }
        };
        let (ma, mb) = (messages(a), messages(b));
        for i in 0..ma.len().max(mb.len()) {
            let n = i + 1;
            let (ra, ca) = ma.get(i).cloned().unwrap_or_default();
            let (rb, cb) = mb.get(i).cloned().unwrap_or_default();
            let title = match (ma.get(i).is_some(), mb.get(i).is_some()) {
                (false, true) => format!("Message {n}: {rb} (added)"),
                (true, false) => format!("Message {n}: {ra} (removed)"),
                _ if ra != rb => format!("Message {n}: role {ra} → {rb}"),
                _ => format!("Message {n}: {rb}"),
            };
            out.push((title, diff::lines(&ca, &cb)));
        }
    } else {
        out.push((String::new(), diff::lines(&text(a, "text"), &text(b, "text"))));
    }
    if a["config"].is_object() || b["config"].is_object() {
        let pretty = |v: &Value| {
            if v["config"].is_object() {
                serde_json::to_string_pretty(&v["config"]).unwrap_or_default()
            } else {
                String::new()
            }
        };
        out.push(("Model configuration".to_owned(), diff::lines(&pretty(a), &pretty(b))));
    }
    out
}

/// A line diff, numbered and marked.
pub(crate) fn diff_lines(lines: Vec<diff::Line>) -> View {
    lines
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
        .into()
}
