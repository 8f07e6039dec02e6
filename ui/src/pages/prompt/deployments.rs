//! The Deployments tab: what is live in each environment, deploy, roll back with
//! confirmation, and the deployment history. Protected environments are marked, and
//! editors see why they cannot change them.

use super::{text, Data};
use crate::api;
use crate::app::{deliver, Session};
use serde_json::{json, Value};
use sycamore::prelude::*;

#[component(inline_props)]
pub(super) fn Deployments(data: Data) -> View {
    let session = use_context::<Session>();
    let env = create_signal(String::new());
    let version = create_signal(String::new());
    let form_error = create_signal(String::new());
    // Editors deploy where it is not protected; admins anywhere.
    let refusal = move |env_name: &str| -> Option<String> {
        match session.role().as_str() {
            "admin" => None,
            "editor" if !data.is_protected(env_name) => None,
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
        section(class="card") {
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
