//! One version in the Playground: what it renders to with the inputs (`POST
//! /playground/render`, again whenever an input changes), and its answer, streamed token
//! by token from `POST /playground/run` when the page asks for a run.

use super::Inputs;
use crate::api;
use crate::app::deliver;
use crate::evaluation_report::check_line;
use crate::pages::prompt::Data;
use crate::playground_run::{done_line, rendered_messages, PlaygroundEvent};
use crate::sse;
use futures::StreamExt;
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use sycamore::prelude::*;
use web_sys::AbortController;

/// The pane for `version`; `runs` is bumped by the page for each run. `side` names the
/// pane in labels and test ids (`a`, `b`).
#[component(inline_props)]
pub(super) fn Pane(data: Data, inputs: Inputs, version: Signal<String>, runs: Signal<u64>, side: &'static str) -> View {
    let rendered = create_signal(Value::Null);
    let render_error = create_signal(String::new());
    let answer = create_signal(String::new());
    let done = create_signal(Value::Null);
    let error = create_signal(String::new());
    let running = create_signal(false);
    // Answers from an older render must not overwrite a newer one.
    let render_generation = create_signal(0u64);

    create_effect(move || {
        let v = version.get_clone();
        let body = inputs.body(&data.name.get_clone_untracked(), &v);
        let generation = render_generation.get_untracked() + 1;
        render_generation.set(generation);
        if v.is_empty() {
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::post("/playground/render", body).await;
            if !render_generation.is_alive() || render_generation.get_untracked() != generation {
                return;
            }
            match answer {
                Ok(r) => {
                    deliver(render_error, String::new());
                    deliver(rendered, r);
                }
                Err(f) => {
                    deliver(rendered, Value::Null);
                    deliver(render_error, f.message);
                }
            }
        });
    });

    // The run in flight, aborted by the next run or when the page closes.
    let current: Rc<RefCell<Option<AbortController>>> = Rc::default();
    let on_close = current.clone();
    on_cleanup(move || {
        if let Some(c) = on_close.borrow_mut().take() {
            c.abort();
        }
    });
    // Runs asked for before this pane opened (a second version picked later) are not its.
    let seen = create_signal(runs.get_untracked());
    create_effect(move || {
        let asked = runs.get();
        if asked == seen.get_untracked() {
            return;
        }
        seen.set(asked);
        untrack(|| {
            let mut body = inputs.body(&data.name.get_clone(), &version.get_clone());
            inputs.add_run_settings(&mut body);
            let Ok(controller) = AbortController::new() else { return };
            if let Some(previous) = current.borrow_mut().replace(controller.clone()) {
                previous.abort();
            }
            answer.set(String::new());
            done.set(Value::Null);
            error.set(String::new());
            running.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                let stream = sse::open("POST", "/playground/run", Some(&body), &controller).await;
                match stream {
                    Ok(mut events) => {
                        while let Some(e) = events.next().await {
                            if controller.signal().aborted() || !answer.is_alive() {
                                return;
                            }
                            match PlaygroundEvent::parse(&e.event, &e.data) {
                                Some(PlaygroundEvent::Rendered(r)) => rendered.set(r),
                                Some(PlaygroundEvent::Delta(piece)) => answer.update(|a| a.push_str(&piece)),
                                Some(PlaygroundEvent::Done(d)) => {
                                    answer.set(d["text"].as_str().unwrap_or_default().to_owned());
                                    done.set(d);
                                }
                                Some(PlaygroundEvent::Error(message)) => error.set(message),
                                None => {}
                            }
                        }
                    }
                    Err(f) if !controller.signal().aborted() => deliver(error, f.message),
                    Err(_) => {}
                }
                if !controller.signal().aborted() {
                    deliver(running, false);
                }
            });
        });
    });

    let preview = move || {
        let r = rendered.get_clone();
        if r.is_null() {
            return view! {};
        }
        let messages = rendered_messages(&r)
            .into_iter()
            .map(|(role, content)| {
                view! { li(class="message") { span(class="role") { (role) } pre(class="template") { (content) } } }
            })
            .collect::<Vec<View>>();
        let content = if r["kind"] == "chat" {
            view! { ol(class="messages") { (messages) } }
        } else {
            let t = r["text"].as_str().unwrap_or_default().to_owned();
            view! { pre(class="template") { (t) } }
        };
        let includes = r["includes"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default())).collect::<Vec<_>>())
            .unwrap_or_default();
        let includes = if includes.is_empty() { String::new() } else { format!("Includes: {}.", includes.join(", ")) };
        view! { div("data-testid"=format!("rendered-{side}")) { (content) } p(class="hint") { (includes) } }
    };
    let checks = move || {
        done.get_clone()["checks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let line = check_line(c);
                view! { li(class=if c["passed"] == true { "passed" } else { "failed" }) { (line) } }
            })
            .collect::<Vec<View>>()
    };
    let waiting = move || running.get() && answer.with(String::is_empty);
    view! {
        section(class="pane", "aria-label"=move || format!("Version {}", version.get_clone())) {
            h3 { (move || format!("Rendered: {}", version.get_clone())) }
            p(class="hint error", role="status") { (render_error.get_clone()) }
            (preview())
            h3 { "Answer" }
            (if waiting() { view! { p(class="hint") { "Waiting for the first token…" } } } else { view! {} })
            pre(class="template answer", "aria-live"="polite", "data-testid"=format!("answer-{side}"),
                "aria-busy"=move || running.get().to_string()) { (answer.get_clone()) }
            p(class="hint", "data-testid"=format!("run-facts-{side}")) { (done.with(|d| if d.is_null() { String::new() } else { done_line(d) })) }
            ul(class="checks", "data-testid"=format!("run-checks-{side}")) { (checks()) }
            p(class="error", role="alert") { (error.get_clone()) }
        }
    }
}
