//! One change request (`/ui/change-requests/{id}`): what it changes, each change's
//! proposed version against the one live now (drawn as the Versions tab draws a
//! comparison), its approvals with their comments, its timeline, and the buttons its
//! reader may use: admins other than the author approve, admins reject, the author or an
//! admin applies (now or at a set time) or withdraws. A refusal shows the server's words.

use super::{approvals_line, badges};
use crate::api;
use crate::app::{deliver, Session};
use crate::diff;
use crate::pages::prompt::compare::{compare_sections, diff_lines};
use crate::pages::prompt::text;
use crate::readable_time as when;
use serde_json::{json, Value};
use sycamore::prelude::*;

#[component(inline_props)]
pub fn ChangeRequestPage(id: String) -> View {
    let session = use_context::<Session>();
    let request = create_signal(Value::Null);
    let load_error = create_signal(String::new());
    let action_error = create_signal(String::new());
    let comment = create_signal(String::new());
    let apply_at = create_signal(String::new());
    let busy = create_signal(false);
    let path = create_signal(format!("/change-requests/{}", api::encode(&id)));

    let load = move || {
        let path = path.get_clone_untracked();
        wasm_bindgen_futures::spawn_local(async move {
            match api::get(&path).await {
                Ok(r) => {
                    deliver(load_error, String::new());
                    deliver(request, r);
                }
                Err(f) => deliver(load_error, f.message),
            }
        });
    };
    load();
    // Every action answers with the request as it is after it.
    let act = move |verb: &'static str, body: Option<Value>| {
        let path = format!("{}/{verb}", path.get_clone_untracked());
        busy.set(true);
        wasm_bindgen_futures::spawn_local(async move {
            match api::call("POST", &path, body.map(|b| b.to_string()), false).await {
                Ok(r) => {
                    deliver(action_error, String::new());
                    deliver(comment, String::new());
                    deliver(apply_at, String::new());
                    deliver(request, r);
                }
                Err(f) => {
                    deliver(action_error, f.message);
                    // What refused it (an approval gone stale, a request closed) shows too.
                    load();
                }
            }
            deliver(busy, false);
        });
    };
    let with_comment = move || {
        let c = comment.get_clone();
        Some(if c.trim().is_empty() { json!({}) } else { json!({"comment": c.trim()}) })
    };

    let is_open = create_selector(move || request.with(|r| r["status"] == "open"));
    let is_author = create_selector(move || request.with(|r| !r.is_null() && r["author"] == session.actor().as_str()));
    let is_admin = create_selector(move || session.role() == "admin");
    let can_approve = create_selector(move || is_open.get() && is_admin.get() && !is_author.get());
    let can_reject = create_selector(move || is_open.get() && is_admin.get());
    let can_apply = create_selector(move || is_open.get() && (is_admin.get() || is_author.get()));

    let header = move || {
        let r = request.get_clone();
        if r.is_null() {
            return view! { p(class="hint") { "Loading…" } };
        }
        let [title, env, author, opened, expires, scheduled, closed, closed_by, description] = [
            "title",
            "environment",
            "author",
            "opened_at",
            "expires_at",
            "scheduled_at",
            "closed_at",
            "closed_by",
            "description",
        ]
        .map(|k| text(&r, k));
        let scheduled = if scheduled.is_empty() {
            view! {}
        } else {
            view! { dt { "Scheduled for" } dd("data-testid"="scheduled-at") { (when(&scheduled)) } }
        };
        let closed = if closed.is_empty() {
            view! { dt { "Expires" } dd { (when(&expires)) } }
        } else {
            let by = format!("{} by {closed_by}", when(&closed));
            view! { dt { "Closed" } dd { (by) } }
        };
        let moved = r["moved"].as_array().map(|m| m.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "));
        let moved = match moved.filter(|m| !m.is_empty()) {
            Some(m) => {
                let line = format!("What is served changed since the latest review ({m}): it needs a fresh approval.");
                view! { p(class="notice", "data-testid"="moved") { (line) } }
            }
            None => view! {},
        };
        let description = if description.is_empty() {
            view! {}
        } else {
            view! { p(class="request-description") { (description) } }
        };
        let approvals = approvals_line(&r);
        view! {
            div(class="title-row") { h1 { (title) } (badges(&r)) }
            dl(class="facts") {
                dt { "Environment" } dd { (env) }
                dt { "Author" } dd { (author) }
                dt { "Opened" } dd { (when(&opened)) }
                (closed)
                (scheduled)
                dt { "Approvals" } dd("data-testid"="approvals-count") { (approvals) }
            }
            (description)
            (moved)
        }
    };

    view! {
        section(class="card", "data-testid"="change-request") {
            a(href="/ui/change-requests", on:click=move |e: web_sys::MouseEvent| {
                e.prevent_default();
                session.navigate("/ui/change-requests");
            }) { "← All change requests" }
            p(class="error", role="alert") { (load_error.get_clone()) }
            (header())
        }
        (request.with(|r| r["changes"].as_array().cloned().unwrap_or_default())
            .into_iter()
            .enumerate()
            .map(|(i, c)| change_card(i + 1, &c, session))
            .collect::<Vec<View>>())
        (approvals_card(&request.get_clone()))
        (if session.can_edit() {
            view! {
                section(class="card", "aria-label"="Review") {
                    h2 { "Review" }
                    form(on:submit=move |e: web_sys::SubmitEvent| e.prevent_default(), "aria-label"="Review the request") {
                        label(r#for="review-comment") { "Comment" }
                        textarea(id="review-comment", rows="3", maxlength="4000", bind:value=comment)
                        div(class="actions") {
                            (if can_approve.get() {
                                view! { button(r#type="button", disabled=move || busy.get(), on:click=move |_| act("approve", with_comment())) { "Approve" } }
                            } else {
                                view! {}
                            })
                            (if can_reject.get() {
                                view! { button(r#type="button", class="danger", disabled=move || busy.get(), on:click=move |_| act("reject", with_comment())) { "Reject" } }
                            } else {
                                view! {}
                            })
                            button(r#type="button", class="secondary", disabled=move || busy.get() || comment.with(|c| c.trim().is_empty()),
                                on:click=move |_| act("comment", with_comment())) { "Add comment" }
                        }
                    }
                    (if can_apply.get() {
                        view! {
                            h3 { "Apply" }
                            p(class="hint") { (ready_hint(&request.get_clone())) }
                            div(class="actions") {
                                button(r#type="button", disabled=move || busy.get(), on:click=move |_| act("apply", None)) { "Apply now" }
                                label(r#for="apply-at") { "or at (UTC)" }
                                input(id="apply-at", r#type="datetime-local", bind:value=apply_at)
                                button(r#type="button", class="secondary", disabled=move || busy.get() || apply_at.with(String::is_empty),
                                    on:click=move |_| act("apply", Some(json!({"at": crate::utc_time_from_input(&apply_at.get_clone())})))) { "Schedule" }
                            }
                            p(class="hint") { "Withdrawing closes the request without changing anything." }
                            button(r#type="button", class="secondary", disabled=move || busy.get(), on:click=move |_| {
                                let sure = web_sys::window()
                                    .and_then(|w| w.confirm_with_message("Withdraw this change request?").ok())
                                    .unwrap_or(false);
                                if sure {
                                    act("withdraw", None);
                                }
                            }) { "Withdraw" }
                        }
                    } else {
                        view! {}
                    })
                    p(class="error", role="alert", "data-testid"="action-error") { (action_error.get_clone()) }
                }
            }
        } else {
            view! { p(class="hint") { "Viewers can read change requests; editors and admins review them." } }
        })
        (activity_card(&request.get_clone()))
    }
}

/// What applying it now would meet.
fn ready_hint(r: &Value) -> String {
    if r["ready"] == true {
        return "Approved against what is served now: it can be applied.".to_owned();
    }
    if r["outdated"] == true {
        return "Outdated: it needs a fresh approval before it can be applied.".to_owned();
    }
    format!("It has {} approvals; it cannot be applied yet.", approvals_line(r))
}

/// One change: what it does, what is served now, and the proposed version against it.
fn change_card(n: usize, change: &Value, session: Session) -> View {
    let prompt = text(change, "prompt_name");
    let summary = text(change, "summary");
    let label = format!("Change {n}: {summary}");
    let served = format!(
        "Served now: {}. When the request was opened: {}.",
        text(&change["live"], "summary"),
        text(&change["opened_against"], "summary")
    );
    let split = if change["variants"].is_array() {
        let line = format!("Split: {}", crate::split_summary(&change["variants"]));
        view! { p(class="hint") { (line) } }
    } else {
        view! {}
    };
    let href = format!("/ui/prompts/{}/deployments", api::encode(&prompt));
    let target = href.clone();
    let link = format!("Open {prompt}");
    let diff_view = match change["diff"].as_object() {
        None => view! { p(class="hint") { "The comparison with what is live shows while the request is open." } },
        Some(d) => {
            let (live, proposed) = (&d["live"], &d["proposed"]);
            let sections = compare_sections(live, proposed);
            let (added, removed) =
                sections.iter().map(|(_, l)| diff::counts(l)).fold((0, 0), |(a, r), (a2, r2)| (a + a2, r + r2));
            let from = if live.is_object() {
                format!("{} (live)", text(live, "version_string"))
            } else {
                "nothing live".to_owned()
            };
            let heading = format!(
                "{from} → {} (proposed): {added} line{} added, {removed} removed",
                text(proposed, "version_string"),
                if added == 1 { "" } else { "s" }
            );
            let body = sections
                .into_iter()
                .map(|(title, lines)| {
                    let title = if title.is_empty() {
                        view! {}
                    } else {
                        view! { h3(class="diff-title") { (title) } }
                    };
                    let lines = diff_lines(lines);
                    view! { (title) (lines) }
                })
                .collect::<Vec<View>>();
            view! {
                p(class="hint", "data-testid"="change-diff-summary") { (heading) }
                div(class="diff", "data-testid"="change-diff") { (body) }
            }
        }
    };
    view! {
        section(class="card", "aria-label"=label, "data-testid"="change") {
            h2 { (summary) }
            p(class="hint") { (served) }
            (split)
            a(href=href, on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate(&target); }) { (link) }
            (diff_view)
        }
    }
}

fn approvals_card(r: &Value) -> View {
    if r.is_null() {
        return view! {};
    }
    let items = r["approvals"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let line = format!("{}, {}", text(&a, "approver"), when(&text(&a, "at")));
            let stale = if a["current"] == true {
                view! {}
            } else {
                view! { span(class="cr-status outdated", title="What is served changed since this approval.") { "no longer counts" } }
            };
            let comment = text(&a, "comment");
            let comment = if comment.is_empty() { view! {} } else { view! { blockquote { (comment) } } };
            view! { li { (line) " " (stale) (comment) } }
        })
        .collect::<Vec<View>>();
    let empty = items.is_empty();
    let count = format!("Approvals that count now: {}.", approvals_line(r));
    view! {
        section(class="card", "aria-label"="Approvals") {
            h2 { "Approvals" }
            p(class="hint") { (count) }
            (if empty { view! { p(class="hint") { "No approvals yet." } } } else { view! { ul(class="approvals") { (items) } } })
        }
    }
}

/// One step of the timeline, in words.
fn activity_line(a: &Value) -> String {
    let detail = &a["detail"];
    match a["kind"].as_str().unwrap_or_default() {
        "opened" => "Opened the request".to_owned(),
        "approved" => "Approved".to_owned(),
        "rejected" => "Rejected".to_owned(),
        "commented" => "Commented".to_owned(),
        "scheduled" => match detail.as_str() {
            Some(at) => format!("Scheduled it for {}", when(at)),
            None => "Removed its schedule".to_owned(),
        },
        "applied" => match (detail["scheduled_for"].as_str(), detail["delay_ms"].as_i64()) {
            (Some(at), Some(ms)) => {
                format!("Applied it as scheduled for {} ({} late)", when(at), crate::readable_duration(ms))
            }
            _ => "Applied it".to_owned(),
        },
        "withdrawn" => "Withdrew it".to_owned(),
        "expired" => "It expired".to_owned(),
        other => other.to_owned(),
    }
}

fn activity_card(r: &Value) -> View {
    let rows = r["activity"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let (kind, at, actor, comment) =
                (text(&a, "kind"), when(&text(&a, "at")), text(&a, "actor"), text(&a, "comment"));
            let what = activity_line(&a);
            view! {
                tr("data-kind"=kind) {
                    td(class="nowrap") { (at) } td { (actor) } td { (what) } td { (comment) }
                }
            }
        })
        .collect::<Vec<View>>();
    if rows.is_empty() {
        return view! {};
    }
    view! {
        section(class="card", "aria-label"="Activity") {
            h2 { "Activity" }
            div(class="scroll") {
                table(class="activity") {
                    thead { tr { th { "When" } th { "Who" } th { "What" } th { "Comment" } } }
                    tbody { (rows) }
                }
            }
        }
    }
}
