use crate::api;
use crate::app::{deliver, Session};
use serde_json::Value;
use sycamore::prelude::*;

#[component(inline_props)]
pub fn PromptPage(name: String) -> View {
    let session = use_context::<Session>();
    let prompt = create_signal(Value::Null);
    let error = create_signal(String::new());
    let path = format!("/prompts/{}", api::encode(&name));
    wasm_bindgen_futures::spawn_local(async move {
        match api::get(&path).await {
            Ok(p) => deliver(prompt, p),
            Err(f) => deliver(error, f.message),
        }
    });
    let versions = move || {
        prompt
            .with(|p| p["versions"].as_array().cloned().unwrap_or_default())
            .into_iter()
            .rev()
            .map(|v| {
                let [version, author, created, message] =
                    ["version_string", "author", "created_at", "commit_message"].map(|k| text(&v, k));
                view! {
                    tr {
                        td { (version) }
                        td { (author) }
                        td { (created) }
                        td { (message) }
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    let deployments = move || {
        prompt
            .with(|p| p["deployments"].as_object().cloned().unwrap_or_default())
            .into_iter()
            .map(|(env, d)| {
                let (version, by) = (text(&d, "version_string"), text(&d, "deployed_by"));
                view! {
                    li { strong { (env) } ": " (version) " — deployed by " (by) }
                }
            })
            .collect::<Vec<View>>()
    };
    view! {
        section(class="card") {
            a(href="/ui/", on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/"); }) { "← All prompts" }
            h1 { (name.clone()) }
            p { (prompt.with(|p| p["description"].as_str().unwrap_or_default().to_owned())) }
            p(class="error", role="alert") { (error.get_clone()) }
            h2 { "Live" }
            ul(class="deployments") { (deployments()) }
            h2 { "Versions" }
            table {
                thead { tr { th { "Version" } th { "Author" } th { "Created" } th { "Message" } } }
                tbody { (versions()) }
            }
        }
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}
