//! A prompt, in tabs, each with its own address (`/ui/prompts/{name}/{tab}`):
//! Versions, Playground, Tests, Deployments, Settings and History. The page follows the
//! change feed, so a deploy made elsewhere shows without a reload.

pub(crate) mod compare;
mod deployments;
mod expectations;
mod gate_refusal;
mod history;
mod optimize;
mod playground;
mod request;
mod rollout;
mod settings;
mod tests;
mod versions;

use crate::api;
use crate::app::{deliver, Session};
use crate::live::{self, Status};
use serde_json::Value;
use sycamore::prelude::*;
use wasm_bindgen::JsCast;

pub(crate) use crate::readable_time as when;

pub(crate) fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tab {
    Versions,
    Playground,
    Tests,
    Deployments,
    Settings,
    History,
}

impl Tab {
    /// In the order work goes: write a version, try it, test it, deploy it.
    const ALL: [Tab; 6] = [Tab::Versions, Tab::Playground, Tab::Tests, Tab::Deployments, Tab::Settings, Tab::History];

    pub(crate) fn slug(self) -> &'static str {
        match self {
            Tab::Versions => "versions",
            Tab::Playground => "playground",
            Tab::Tests => "tests",
            Tab::Deployments => "deployments",
            Tab::Settings => "settings",
            Tab::History => "history",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tab::Versions => "Versions",
            Tab::Playground => "Playground",
            Tab::Tests => "Tests",
            Tab::Deployments => "Deployments",
            Tab::Settings => "Settings",
            Tab::History => "History",
        }
    }

    /// The tab named by the segment after the prompt's name; Versions when there is
    /// none (so a prompt named `tests` opens on Versions, not on Tests).
    fn of(path: &str) -> Tab {
        let slug = path.strip_prefix("/ui/prompts/").and_then(|rest| rest.split('/').nth(1)).unwrap_or("");
        Tab::ALL.into_iter().find(|t| t.slug() == slug).unwrap_or(Tab::Versions)
    }
}

/// One version of the prompt, looked up by its version string.
fn version(data: &Data, v: &str) -> Option<Value> {
    data.prompt.with(|p| p["versions"].as_array().and_then(|vs| vs.iter().find(|x| x["version_string"] == v).cloned()))
}

/// Everything the tabs show, reloaded after each change.
#[derive(Clone, Copy)]
pub(crate) struct Data {
    pub name: Signal<String>,
    pub prompt: Signal<Value>,
    pub deployments: Signal<Value>,
    pub environments: Signal<Vec<Value>>,
    /// Where each version stands at the evaluation gate (`GET /prompts/{name}/gate`).
    pub gate: Signal<Value>,
    pub error: Signal<String>,
    /// Bumped by every change seen on the feed; the History tab reloads on it.
    pub changes: Signal<u64>,
    /// Answers from an older reload must not overwrite a newer one.
    generation: Signal<u64>,
}

impl Data {
    pub fn reload(self) {
        if !self.generation.is_alive() {
            return;
        }
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let name = api::encode(&self.name.get_clone());
        wasm_bindgen_futures::spawn_local(async move {
            let prompt = api::get(&format!("/prompts/{name}")).await;
            let deployments = api::get(&format!("/prompts/{name}/deployments/")).await;
            let gate = api::get(&format!("/prompts/{name}/gate")).await;
            if !self.generation.is_alive() || self.generation.get() != generation {
                return;
            }
            match prompt {
                Ok(p) => {
                    deliver(self.error, String::new());
                    deliver(self.prompt, p);
                }
                Err(f) => deliver(self.error, f.message),
            }
            if let Ok(d) = deployments {
                deliver(self.deployments, d);
            }
            if let Ok(g) = gate {
                deliver(self.gate, g);
            }
            deliver(self.changes, self.changes.get_untracked() + 1);
        });
    }

    /// True when only admins may change `environment`.
    pub fn is_protected(&self, environment: &str) -> bool {
        self.environments.with(|es| es.iter().any(|e| e["name"] == environment && e["protected"] == true))
    }

    /// True where a deploy needs a passing evaluation (`PROMPTOS_GATED_ENVIRONMENTS`).
    pub fn is_gated(&self, environment: &str) -> bool {
        self.environments.with(|es| es.iter().any(|e| e["name"] == environment && !e["gate_pass_rate"].is_null()))
    }

    /// Goes to one of the prompt's tabs.
    pub fn open_tab(&self, session: Session, tab: Tab) {
        session.navigate(&format!("/ui/prompts/{}/{}", api::encode(&self.name.get_clone()), tab.slug()));
    }

    /// The approvals a change to `environment` needs, where a policy sends its changes
    /// through change requests; `None` where changes are made directly.
    pub fn approvals_required(&self, environment: &str) -> Option<u64> {
        self.environments
            .with(|es| es.iter().find(|e| e["name"] == environment).and_then(|e| e["approvals_required"].as_u64()))
    }

    /// Version strings, newest first.
    pub fn versions(&self) -> Vec<String> {
        self.prompt.with(|p| {
            p["versions"]
                .as_array()
                .map(|vs| vs.iter().rev().map(|v| text(v, "version_string")).collect())
                .unwrap_or_default()
        })
    }
}

#[component(inline_props)]
pub fn PromptPage(name: String) -> View {
    let session = use_context::<Session>();
    let data = Data {
        name: create_signal(name.clone()),
        prompt: create_signal(Value::Null),
        deployments: create_signal(Value::Null),
        environments: create_signal(Vec::new()),
        gate: create_signal(Value::Null),
        error: create_signal(String::new()),
        changes: create_signal(0),
        generation: create_signal(0),
    };
    data.reload();
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(envs) = api::get("/environments").await {
            deliver(data.environments, envs["items"].as_array().cloned().unwrap_or_default());
        }
    });
    let status = create_signal(Status::Connecting);
    live::follow(name.clone(), status, move || data.reload());

    let tab = create_selector(move || Tab::of(&session.path.get_clone()));
    let base = format!("/ui/prompts/{}", api::encode(&name));
    let go = {
        let base = base.clone();
        move |t: Tab, focus: bool| {
            session.navigate(&format!("{base}/{}", t.slug()));
            if focus {
                let button = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.get_element_by_id(&format!("tab-{}", t.slug())));
                if let Some(b) = button.and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok()) {
                    let _ = b.focus();
                }
            }
        }
    };
    // Arrow keys, Home and End move between tabs (the WAI-ARIA tabs pattern).
    let on_key = {
        let go = go.clone();
        move |e: web_sys::KeyboardEvent| {
            let i = Tab::ALL.iter().position(|t| *t == tab.get()).unwrap_or(0);
            let n = Tab::ALL.len();
            let next = match e.key().as_str() {
                "ArrowRight" => (i + 1) % n,
                "ArrowLeft" => (i + n - 1) % n,
                "Home" => 0,
                "End" => n - 1,
                _ => return,
            };
            e.prevent_default();
            go(Tab::ALL[next], true);
        }
    };
    let tab_buttons = Tab::ALL
        .into_iter()
        .map(|t| {
            let go = go.clone();
            let href = format!("{base}/{}", t.slug());
            view! {
                a(role="tab", id=format!("tab-{}", t.slug()), href=href, "aria-controls"="tab-panel",
                    class=move || if tab.get() == t { "tab active" } else { "tab" },
                    "aria-selected"=move || (tab.get() == t).to_string(),
                    tabindex=move || if tab.get() == t { "0" } else { "-1" },
                    on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); go(t, false); }) { (t.label()) }
            }
        })
        .collect::<Vec<View>>();
    let live_label = move || match status.get() {
        Status::Connecting => "Connecting…",
        Status::Live => "Live",
        Status::Retrying => "Reconnecting…",
    };
    view! {
        section(class="card") {
            a(href="/ui/", on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/"); }) { "← All prompts" }
            div(class="title-row") {
                h1 { (name.clone()) }
                span(class=move || if status.get() == Status::Live { "live-status on" } else { "live-status" },
                    "data-testid"="live-status", title="Changes made elsewhere appear here without a reload") { (live_label()) }
            }
            p(class="description") { (data.prompt.with(|p| text(p, "description"))) }
            p(class="tags", "data-testid"="prompt-tags") {
                (data.prompt.with(|p| {
                    p["tags"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|t| {
                            let t = t.as_str().unwrap_or_default().to_owned();
                            view! { span(class="tag") { (t) } }
                        })
                        .collect::<Vec<View>>()
                }))
            }
            (if data.prompt.with(|p| !p["deleted_at"].is_null()) {
                view! { p(class="notice") { "This prompt was deleted. Its history stays available below." } }
            } else {
                view! {}
            })
            p(class="error", role="alert") { (data.error.get_clone()) }
            div(class="tabs", role="tablist", "aria-label"="Prompt sections", on:keydown=on_key) { (tab_buttons) }
        }
        div(id="tab-panel", role="tabpanel", "aria-labelledby"=move || format!("tab-{}", tab.get().slug()), class="panels") {
            (match tab.get() {
                Tab::Versions => view! { versions::Versions(data=data) },
                Tab::Playground => view! { playground::Playground(data=data) },
                Tab::Tests => view! { tests::Tests(data=data) },
                Tab::Deployments => view! { deployments::Deployments(data=data) },
                Tab::Settings => view! { settings::Settings(data=data) },
                Tab::History => view! { history::History(data=data) },
            })
        }
    }
}
