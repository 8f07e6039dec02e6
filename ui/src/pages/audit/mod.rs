//! The Audit page (`/ui/audit`, every role, read-only): the whole event log, newest
//! first, filtered by event types, actor, time range, prompt and environment, a page at
//! a time ("Load more" follows the cursor). Each event opens to its payload and hashes
//! ([`event_row`]); the filtered events export as JSON Lines or CSV. Above the log, the
//! verification panel ([`verification`]): chain, read models and signed checkpoints.

mod event_row;
mod verification;

use crate::api;
use crate::app::deliver;
use crate::audit::{event_types, EventFilters};
use crate::download::{download, every_page};
use crate::export;
use crate::moment::utc_from_browser;
use event_row::EventRow;
use serde_json::Value;
use sycamore::prelude::*;
use verification::VerificationPanel;

/// Events per page of the list; an export asks for the most the API gives at once.
const PAGE: u32 = 100;
const EXPORT_PAGE: u32 = 500;

/// What the filter form holds; the time fields as the browser gives them.
#[derive(Clone, Copy)]
struct Form {
    types: Signal<Vec<String>>,
    actor: Signal<String>,
    prompt: Signal<String>,
    environment: Signal<String>,
    from: Signal<String>,
    to: Signal<String>,
}

impl Form {
    /// The filters, or a sentence saying which time field is not a date and time.
    fn filters(self) -> Result<EventFilters, String> {
        Ok(EventFilters {
            types: self.types.get_clone(),
            actor: self.actor.get_clone(),
            prompt: self.prompt.get_clone(),
            environment: self.environment.get_clone(),
            from: utc_from_browser(&self.from.get_clone()).map_err(|e| format!("From: {e}"))?,
            to: utc_from_browser(&self.to.get_clone()).map_err(|e| format!("To: {e}"))?,
        })
    }

    fn clear(self) {
        self.types.set(Vec::new());
        for field in [self.actor, self.prompt, self.environment, self.from, self.to] {
            field.set(String::new());
        }
    }
}

#[component]
pub fn AuditPage() -> View {
    let form = Form {
        types: create_signal(Vec::new()),
        actor: create_signal(String::new()),
        prompt: create_signal(String::new()),
        environment: create_signal(String::new()),
        from: create_signal(String::new()),
        to: create_signal(String::new()),
    };
    let filters = create_memo(move || form.filters());
    let events = create_signal(Vec::<Value>::new());
    let next = create_signal(None::<String>);
    let loaded = create_signal(false);
    let error = create_signal(String::new());
    let exporting = create_signal(false);
    // An answer for older filters must not overwrite the newer one.
    let generation = create_signal(0u64);

    // The first page, again whenever a filter changes.
    create_effect(move || {
        let current = filters.get_clone();
        let mine = generation.get_untracked() + 1;
        generation.set(mine);
        let f = match current {
            Ok(f) => f,
            Err(message) => return error.set(message),
        };
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::get(&f.path(None, PAGE, true)).await;
            if !generation.is_alive() || generation.get_untracked() != mine {
                return;
            }
            match answer {
                Ok(page) => {
                    deliver(error, String::new());
                    deliver(events, page["items"].as_array().cloned().unwrap_or_default());
                    deliver(next, page["next_cursor"].as_str().map(str::to_owned));
                    deliver(loaded, true);
                }
                Err(f) => deliver(error, f.message),
            }
        });
    });
    let more = move |_| {
        let (Some(cursor), Ok(f)) = (next.get_clone(), filters.get_clone()) else { return };
        let mine = generation.get_untracked();
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::get(&f.path(Some(&cursor), PAGE, true)).await;
            if !generation.is_alive() || generation.get_untracked() != mine {
                return;
            }
            match answer {
                Ok(page) => {
                    events.update(|all| all.extend(page["items"].as_array().cloned().unwrap_or_default()));
                    deliver(next, page["next_cursor"].as_str().map(str::to_owned));
                }
                Err(f) => deliver(error, f.message),
            }
        });
    };
    // Every event the filters select, oldest first (the log's order), then one file.
    let export = move |csv: bool| {
        let Ok(f) = filters.get_clone() else { return };
        exporting.set(true);
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = every_page(|cursor| f.path(cursor, EXPORT_PAGE, false)).await.map_err(|f| f.message);
            let outcome = outcome.and_then(|all| {
                let saved = if csv {
                    download(&f.file_name("csv"), "text/csv", &export::csv(&all))
                } else {
                    download(&f.file_name("jsonl"), "application/x-ndjson", &export::json_lines(&all))
                };
                saved.map_err(|_| "The browser refused the download.".to_owned())
            });
            if let Err(message) = outcome {
                deliver(error, message);
            }
            deliver(exporting, false);
        });
    };

    let positions =
        create_memo(move || events.with(|es| es.iter().filter_map(|e| e["position"].as_i64()).collect::<Vec<_>>()));
    let count = move || {
        let n = events.with(Vec::len);
        let more = if next.with(Option::is_some) { ", more below" } else { "" };
        match (loaded.get(), n) {
            (false, _) => "Loading…".to_owned(),
            (true, 0) => "No event matches these filters.".to_owned(),
            (true, 1) => "1 event shown.".to_owned(),
            (true, n) => format!("{n} events shown{more}."),
        }
    };
    view! {
        section(class="card") {
            h1 { "Audit" }
            p(class="hint") {
                "Everything that ever changed PromptOS, in the order it was written: the log. Each event is linked "
                "to the one before by its hash, so an edited row shows; a signed checkpoint also shows a rewrite of "
                "the whole log by someone who can write to the database."
            }
        }
        VerificationPanel {}
        section(class="card", "aria-label"="Event log") {
            h2 { "Event log" }
            Filters(form=form)
            div(class="inline-form") {
                button(class="secondary", on:click=move |_| form.clear()) { "Clear filters" }
                button(class="secondary", disabled=move || exporting.get() || filters.with(Result::is_err),
                    on:click=move |_| export(false)) { "Export JSON Lines" }
                button(class="secondary", disabled=move || exporting.get() || filters.with(Result::is_err),
                    on:click=move |_| export(true)) { "Export CSV" }
            }
            p(class="error", role="alert", "data-testid"="audit-error") { (error.get_clone()) }
            p(class="hint", role="status", "data-testid"="audit-count") { (count()) }
            div(class="scroll") {
                table(class="timeline audit") {
                    thead { tr {
                        th { "#" } th { "When" } th { "Event" } th { "Who" } th { "Prompt" } th { "Environment" } th {}
                    } }
                    tbody {
                        Keyed(list=positions,
                            view=move |p| {
                                let event = events.with_untracked(|es| es.iter().find(|e| e["position"] == p).cloned());
                                view! { EventRow(event=event.unwrap_or_default()) }
                            },
                            key=|p| *p)
                    }
                }
            }
            (if next.with(Option::is_some) {
                view! { button(class="secondary", on:click=more) { "Load more" } }
            } else {
                view! {}
            })
        }
    }
}

/// The filter form; every change reloads the log.
#[component(inline_props)]
fn Filters(form: Form) -> View {
    let environments = create_signal(Vec::<String>::new());
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(answer) = api::get("/environments").await {
            let names = crate::environment_matrix::Environment::list(&answer).into_iter().map(|e| e.name).collect();
            deliver(environments, names);
        }
    });
    let type_boxes = event_types()
        .into_iter()
        .map(|t| {
            let id = format!("audit-type-{t}");
            let (checked, toggle, label_for) = (t.to_owned(), t.to_owned(), id.clone());
            view! {
                label(class="check", r#for=label_for) {
                    input(id=id, r#type="checkbox", checked=move || form.types.with(|ts| ts.contains(&checked)),
                        on:change=move |_| form.types.update(|ts| match ts.iter().position(|x| *x == toggle) {
                            Some(i) => { ts.remove(i); }
                            None => ts.push(toggle.clone()),
                        }))
                    " " (t)
                }
            }
        })
        .collect::<Vec<View>>();
    let chosen = move || match form.types.with(Vec::len) {
        0 => "Event types: all".to_owned(),
        _ => format!("Event types: {}", form.types.with(|ts| ts.join(", "))),
    };
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
    view! {
        div(class="audit-filters", role="group", "aria-label"="Filters") {
            details(class="event-types") {
                summary { (chosen()) }
                div(class="type-boxes") { (type_boxes) }
            }
            div(class="filter-fields") {
                label(r#for="audit-actor") { "Actor" }
                input(id="audit-actor", placeholder="user:ann", bind:value=form.actor)
                label(r#for="audit-prompt") { "Prompt" }
                input(id="audit-prompt", placeholder="greeting", bind:value=form.prompt)
                label(r#for="audit-environment") { "Environment" }
                select(id="audit-environment", bind:value=form.environment) {
                    option(value="") { "Any" }
                    (env_options())
                }
                label(r#for="audit-from") { "From" }
                input(id="audit-from", r#type="datetime-local", step="1", bind:value=form.from)
                label(r#for="audit-to") { "To" }
                input(id="audit-to", r#type="datetime-local", step="1", bind:value=form.to)
            }
            p(class="hint") { "Times are in your time zone; the log records them in UTC." }
        }
    }
}
