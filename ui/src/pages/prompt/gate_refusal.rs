//! A deploy (or an A/B test) the evaluation gate refused: the server's reason, the test
//! cases that failed or still have to run, a link to the Tests tab, and for admins the
//! way past it: the same change sent again with `gate_override` and their reason, which
//! the log records with the deploy.

use super::{Data, Tab};
use crate::api::{self, Failure};
use crate::app::{deliver, Session};
use serde_json::{json, Value};
use sycamore::prelude::*;

/// A change the gate refused: where it was sent, what was sent, and why it was refused.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Refusal {
    pub path: &'static str,
    pub payload: Value,
    pub failure: Failure,
}

impl Refusal {
    /// The refusal in `failure`, if the gate is what refused `payload`.
    pub fn of(path: &'static str, payload: &Value, failure: &Failure) -> Option<Self> {
        (failure.code == "evaluation_gate_closed").then(|| Refusal {
            path,
            payload: payload.clone(),
            failure: failure.clone(),
        })
    }
}

#[component(inline_props)]
pub(super) fn GateRefusal(data: Data, refusal: Signal<Option<Refusal>>) -> View {
    let session = use_context::<Session>();
    let reason = create_signal(String::new());
    let error = create_signal(String::new());
    let busy = create_signal(false);
    let override_gate = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let Some(r) = refusal.get_clone() else { return };
        let mut payload = r.payload.clone();
        payload["gate_override"] = json!(reason.get_clone().trim());
        busy.set(true);
        wasm_bindgen_futures::spawn_local(async move {
            let answer = api::post(r.path, payload).await;
            deliver(busy, false);
            match answer {
                Ok(_) => {
                    deliver(error, String::new());
                    deliver(reason, String::new());
                    deliver(refusal, None);
                    data.reload();
                }
                Err(f) => deliver(error, f.message),
            }
        });
    };
    view! {
        (if let Some(r) = refusal.get_clone() {
            let cases = if r.failure.cases.is_empty() {
                view! {}
            } else {
                let items = r.failure.cases.iter().map(|c| {
                    let c = c.clone();
                    view! { li { (c) } }
                });
                let items = items.collect::<Vec<View>>();
                view! {
                    h3 { "Cases that failed or still have to run" }
                    ul(class="refused-cases", "data-testid"="refused-cases") { (items) }
                }
            };
            let message = r.failure.message.clone();
            let admin = if session.role() == "admin" {
                view! {
                    form(class="override", on:submit=override_gate, "aria-label"="Override the gate") {
                        label(r#for="gate-override-reason") { "Override with a reason (recorded in the log)" }
                        textarea(id="gate-override-reason", rows="2", bind:value=reason,
                            placeholder="Hotfix for the outage; evaluated by hand")
                        p(class="error", role="alert") { (error.get_clone()) }
                        button(r#type="submit", class="danger", disabled=move || busy.get() || reason.with(|r| r.trim().is_empty())) {
                            "Override the gate and deploy"
                        }
                    }
                }
            } else {
                view! { p(class="hint") { "Only an admin may override the gate, with a reason." } }
            };
            view! {
                section(class="card gate-refusal", role="alert", "aria-label"="Refused by the evaluation gate", "data-testid"="gate-refusal") {
                    h2 { "Refused by the evaluation gate" }
                    p { (message) }
                    (cases)
                    div(class="actions") {
                        button(class="secondary", on:click=move |_| data.open_tab(session, Tab::Tests)) { "Open the Tests tab" }
                        button(class="secondary", on:click=move |_| refusal.set(None)) { "Dismiss" }
                    }
                    (admin)
                }
            }
        } else {
            view! {}
        })
    }
}
