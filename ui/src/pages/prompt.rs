//! A prompt, in tabs: Versions (history and a new-version editor that checks the
//! template as you type) and Deployments (what is live where, deploy, roll back).

use crate::api;
use crate::app::{deliver, Session};
use promptos_core::template::Template;
use serde_json::{json, Value};
use sycamore::prelude::*;

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

#[derive(Clone, Copy, PartialEq)]
enum Tab {
    Versions,
    Deployments,
}

/// Everything the page shows, reloaded after each change.
#[derive(Clone, Copy)]
struct Data {
    name: Signal<String>,
    prompt: Signal<Value>,
    deployments: Signal<Value>,
    environments: Signal<Vec<Value>>,
    error: Signal<String>,
}

impl Data {
    fn reload(self) {
        wasm_bindgen_futures::spawn_local(async move {
            let name = api::encode(&self.name.get_clone());
            match api::get(&format!("/prompts/{name}")).await {
                Ok(p) => deliver(self.prompt, p),
                Err(f) => deliver(self.error, f.message),
            }
            if let Ok(d) = api::get(&format!("/prompts/{name}/deployments/")).await {
                deliver(self.deployments, d);
            }
        });
    }

    fn versions(&self) -> Vec<String> {
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
        error: create_signal(String::new()),
    };
    data.reload();
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(envs) = api::get("/environments").await {
            deliver(data.environments, envs["items"].as_array().cloned().unwrap_or_default());
        }
    });
    let tab = create_signal(Tab::Versions);
    let tab_button = move |t: Tab, label: &'static str| {
        view! {
            button(role="tab", class=move || if tab.get() == t { "tab active" } else { "tab" },
                "aria-selected"=move || (tab.get() == t).to_string(), on:click=move |_| tab.set(t)) { (label) }
        }
    };
    view! {
        section(class="card") {
            a(href="/ui/", on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/"); }) { "← All prompts" }
            h1 { (name.clone()) }
            p { (data.prompt.with(|p| text(p, "description"))) }
            p(class="error", role="alert") { (data.error.get_clone()) }
            div(class="tabs", role="tablist") {
                (tab_button(Tab::Versions, "Versions"))
                (tab_button(Tab::Deployments, "Deployments"))
            }
        }
        (match tab.get() {
            Tab::Versions => view! { Versions(data=data) },
            Tab::Deployments => view! { Deployments(data=data) },
        })
    }
}

#[component(inline_props)]
fn Versions(data: Data) -> View {
    let session = use_context::<Session>();
    let version = create_signal(String::new());
    let body = create_signal(String::new());
    let message = create_signal(String::new());
    let form_error = create_signal(String::new());
    // The server's own parser, compiled to WebAssembly: the same errors, as you type.
    let check = create_memo(move || match Template::parse(&body.get_clone()) {
        Ok(t) if t.variables().is_empty() => Ok("No variables.".to_owned()),
        Ok(t) => Ok(format!("Variables: {}", t.variables().join(", "))),
        Err(e) => Err(format!("Line {}, column {}: {}", e.line, e.column, e.message)),
    });
    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        wasm_bindgen_futures::spawn_local(async move {
            let mut payload = json!({"version_string": version.get_clone(), "text": body.get_clone()});
            if !message.with(|m| m.trim().is_empty()) {
                payload["commit_message"] = json!(message.get_clone());
            }
            let path = format!("/prompts/{}/versions/", api::encode(&data.name.get_clone()));
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
    let rows = move || {
        data.prompt
            .with(|p| p["versions"].as_array().cloned().unwrap_or_default())
            .into_iter()
            .rev()
            .map(|v| {
                let [version, author, created, message] =
                    ["version_string", "author", "created_at", "commit_message"].map(|k| text(&v, k));
                view! { tr { td { (version) } td { (author) } td { (created) } td { (message) } } }
            })
            .collect::<Vec<View>>()
    };
    view! {
        section(class="card", role="tabpanel", "aria-label"="Versions") {
            h2 { "Versions" }
            table(class="versions") {
                thead { tr { th { "Version" } th { "Author" } th { "Created" } th { "Message" } } }
                tbody { (rows()) }
            }
        }
        (if session.can_edit() {
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
        } else {
            view! {}
        })
    }
}

#[component(inline_props)]
fn Deployments(data: Data) -> View {
    let session = use_context::<Session>();
    let env = create_signal(String::new());
    let version = create_signal(String::new());
    let form_error = create_signal(String::new());
    let is_protected =
        move |name: &str| data.environments.with(|es| es.iter().any(|e| e["name"] == name && e["protected"] == true));
    // Editors deploy where it is not protected; admins anywhere.
    let refusal = move |env_name: &str| -> Option<String> {
        match session.role().as_str() {
            "admin" => None,
            "editor" if !is_protected(env_name) => None,
            "editor" => Some(format!("{env_name} is protected: only admins may change it.")),
            _ => Some("Viewers cannot deploy.".to_owned()),
        }
    };
    let send = move |path: &'static str, payload: Value| {
        wasm_bindgen_futures::spawn_local(async move {
            match api::post(path, payload).await {
                Ok(_) => {
                    deliver(form_error, String::new());
                    // The options are redrawn with the new data; start the choice afresh.
                    deliver(version, String::new());
                    data.reload();
                }
                Err(f) => deliver(form_error, f.message),
            }
        });
    };
    let deploy = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let (env_name, v) = (env.get_clone(), version.get_clone());
        if env_name.is_empty() || v.is_empty() {
            form_error.set("Pick an environment and a version.".into());
            return;
        }
        send(
            "/deployments/",
            json!({"prompt_name": data.name.get_clone(), "environment": env_name, "version_string": v}),
        );
    };
    let live_rows = move || {
        let current = data.deployments.with(|d| d["current"].clone());
        data.environments
            .get_clone()
            .into_iter()
            .map(|e| {
                let env_name = text(&e, "name");
                let d = &current[env_name.as_str()];
                let (live, by, at) = (text(d, "version_string"), text(d, "deployed_by"), text(d, "deployed_at"));
                let badge = if e["protected"] == true { "protected" } else { "" };
                let can_roll_back = !live.is_empty() && refusal(&env_name).is_none();
                let label = format!("Roll back {env_name}");
                let confirm_env = env_name.clone();
                let roll_back = move |_| {
                    let question = format!(
                        "Roll {confirm_env} back to the version live before {}?",
                        data.deployments.with(|d| text(&d["current"][confirm_env.as_str()], "version_string"))
                    );
                    let confirmed =
                        web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
                    if confirmed {
                        send(
                            "/deployments/rollback",
                            json!({"prompt_name": data.name.get_clone(), "environment": confirm_env.clone()}),
                        );
                    }
                };
                let action = if can_roll_back {
                    view! { button(class="secondary", "aria-label"=label, on:click=roll_back) { "Roll back" } }
                } else {
                    view! {}
                };
                let live_text = if live.is_empty() { "—".to_owned() } else { live };
                let env_attr = env_name.clone();
                view! {
                    tr("data-env"=env_attr) {
                        td { (env_name) " " span(class="badge") { (badge) } }
                        td(class="live-version") { (live_text) }
                        td { (by) } td { (at) }
                        td { (action) }
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    let history_rows = move || {
        data.deployments
            .with(|d| d["history"].as_array().cloned().unwrap_or_default())
            .into_iter()
            .map(|h| {
                let [env_name, action, v, prev, actor, at] =
                    ["environment", "action", "version_string", "previous_version_string", "actor", "at"]
                        .map(|k| text(&h, k));
                view! { tr { td { (at) } td { (env_name) } td { (action) } td { (v) } td { (prev) } td { (actor) } } }
            })
            .collect::<Vec<View>>()
    };
    let env_options = move || {
        data.environments
            .get_clone()
            .into_iter()
            .map(|e| {
                let n = text(&e, "name");
                let label = if e["protected"] == true { format!("{n} (protected)") } else { n.clone() };
                view! { option(value=n) { (label) } }
            })
            .collect::<Vec<View>>()
    };
    let version_options = move || {
        data.versions()
            .into_iter()
            .map(|v| {
                let value = v.clone();
                view! { option(value=value) { (v) } }
            })
            .collect::<Vec<View>>()
    };
    let deploy_refusal = move || if env.with(|e| e.is_empty()) { None } else { refusal(&env.get_clone()) };
    view! {
        section(class="card", role="tabpanel", "aria-label"="Deployments") {
            h2 { "Live" }
            table(class="live-table") {
                thead { tr { th { "Environment" } th { "Version" } th { "Deployed by" } th { "At" } th {} } }
                tbody { (live_rows()) }
            }
            p(class="error", role="alert") { (form_error.get_clone()) }
        }
        (if session.can_edit() {
            view! {
                section(class="card") {
                    h2 { "Deploy a version" }
                    form(on:submit=deploy, "aria-label"="Deploy a version") {
                        label(r#for="deploy-env") { "Environment" }
                        select(id="deploy-env", bind:value=env) { option(value="") { "Choose…" } (env_options()) }
                        label(r#for="deploy-version") { "Version" }
                        select(id="deploy-version", bind:value=version) { option(value="") { "Choose…" } (version_options()) }
                        p(class="hint") { (deploy_refusal().unwrap_or_default()) }
                        button(r#type="submit", disabled=move || deploy_refusal().is_some()) { "Deploy" }
                    }
                }
            }
        } else {
            view! { p(class="hint") { "Viewers can see deployments but not change them." } }
        })
        section(class="card") {
            h2 { "Deployment history" }
            table(class="history") {
                thead { tr { th { "At" } th { "Environment" } th { "Action" } th { "Version" } th { "Before" } th { "By" } } }
                tbody { (history_rows()) }
            }
        }
    }
}
