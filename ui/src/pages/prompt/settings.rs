//! The Settings tab: the prompt's description, its facts, and a danger zone that deletes
//! it only once the user has typed its name.

use super::{text, when, Data};
use crate::api;
use crate::app::{deliver, Session};
use serde_json::json;
use sycamore::prelude::*;

#[component(inline_props)]
pub(super) fn Settings(data: Data) -> View {
    let session = use_context::<Session>();
    let description = create_signal(String::new());
    let edited = create_signal(false);
    let saved = create_signal(String::new());
    let save_error = create_signal(String::new());
    // Follow the stored description until the user starts editing.
    create_effect(move || {
        let current = data.prompt.with(|p| text(p, "description"));
        if !edited.get_untracked() {
            description.set(current);
        }
    });
    let save = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let path = format!("/prompts/{}", api::encode(&data.name.get_clone()));
        let body = json!({"description": description.get_clone()}).to_string();
        wasm_bindgen_futures::spawn_local(async move {
            match api::call("PATCH", &path, Some(body), false).await {
                Ok(_) => {
                    deliver(save_error, String::new());
                    deliver(saved, "Description saved.".to_owned());
                    deliver(edited, false);
                    data.reload();
                }
                Err(f) => {
                    deliver(saved, String::new());
                    deliver(save_error, f.message);
                }
            }
        });
    };

    // Tags: a comma-separated list, following the stored tags until edited.
    let tags = create_signal(String::new());
    let tags_edited = create_signal(false);
    let tags_status = create_signal(String::new());
    let tags_error = create_signal(String::new());
    create_effect(move || {
        let current = data.prompt.with(|p| {
            p["tags"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t.as_str()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        });
        if !tags_edited.get_untracked() {
            tags.set(current);
        }
    });
    let save_tags = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let list: Vec<String> =
            tags.get_clone().split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
        let path = format!("/prompts/{}/tags", api::encode(&data.name.get_clone()));
        let body = json!({"tags": list}).to_string();
        wasm_bindgen_futures::spawn_local(async move {
            match api::call("PUT", &path, Some(body), false).await {
                Ok(_) => {
                    deliver(tags_error, String::new());
                    deliver(tags_status, "Tags saved.".to_owned());
                    deliver(tags_edited, false);
                    data.reload();
                }
                Err(f) => {
                    deliver(tags_status, String::new());
                    deliver(tags_error, f.message);
                }
            }
        });
    };

    let confirm = create_signal(String::new());
    let delete_error = create_signal(String::new());
    // Protected environments where the prompt is live: only an admin may take it out.
    let protected_live = move || -> Vec<String> {
        data.deployments.with(|d| {
            d["current"]
                .as_object()
                .map(|c| c.keys().filter(|k| data.is_protected(k)).cloned().collect())
                .unwrap_or_default()
        })
    };
    let delete_refusal = move || -> Option<String> {
        match session.role().as_str() {
            "admin" => None,
            "editor" => {
                let live = protected_live();
                (!live.is_empty())
                    .then(|| format!("It is live in {} (protected): only admins may delete it.", live.join(", ")))
            }
            _ => Some("Viewers cannot delete prompts.".to_owned()),
        }
    };
    let delete = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let path = format!("/prompts/{}", api::encode(&data.name.get_clone()));
        wasm_bindgen_futures::spawn_local(async move {
            match api::call("DELETE", &path, None, false).await {
                Ok(_) => session.navigate("/ui/"),
                Err(f) => deliver(delete_error, f.message),
            }
        });
    };
    let facts = move || {
        data.prompt.with(|p| {
            let row = |label: &'static str, value: String| view! { dt { (label) } dd { (value) } };
            vec![
                row("Created", format!("{} by {}", when(&text(p, "created_at")), text(p, "created_by"))),
                row("Last changed", format!("{} by {}", when(&text(p, "updated_at")), text(p, "updated_by"))),
                row("Prompt id", text(p, "prompt_id")),
            ]
        })
    };
    let name = data.name.get_clone();
    let must_type = format!("Type {name} to confirm");
    view! {
        section(class="card") {
            h2 { "Details" }
            form(on:submit=save, "aria-label"="Edit the description") {
                label(r#for="description") { "Description" }
                textarea(id="description", rows="3", bind:value=description, disabled=move || !session.can_edit(),
                    on:input=move |_| { edited.set(true); saved.set(String::new()); })
                (if session.can_edit() {
                    view! {}
                } else {
                    view! { p(class="hint") { "Viewers cannot change the description." } }
                })
                p(class="error", role="alert") { (save_error.get_clone()) }
                p(class="hint", role="status") { (saved.get_clone()) }
                button(r#type="submit", disabled=move || !session.can_edit() || !edited.get()) { "Save description" }
            }
            form(on:submit=save_tags, "aria-label"="Edit the tags") {
                label(r#for="tags") { "Tags (comma-separated, e.g. team:support, pii)" }
                input(id="tags", bind:value=tags, disabled=move || !session.can_edit(),
                    on:input=move |_| { tags_edited.set(true); tags_status.set(String::new()); })
                p(class="error", role="alert") { (tags_error.get_clone()) }
                p(class="hint", role="status") { (tags_status.get_clone()) }
                button(r#type="submit", disabled=move || !session.can_edit() || !tags_edited.get()) { "Save tags" }
            }
            h2 { "About" }
            dl(class="facts") { (facts()) }
        }
        section(class="card danger-zone", "aria-label"="Danger zone") {
            h2 { "Danger zone" }
            p { "Deleting the prompt takes it out of every environment: applications asking for it get “not found”. "
                "Its history stays for auditors, and the name can be used again." }
            form(on:submit=delete, "aria-label"="Delete the prompt") {
                label(r#for="confirm-delete") { (must_type.clone()) }
                input(id="confirm-delete", bind:value=confirm, autocomplete="off", disabled=move || delete_refusal().is_some())
                p(class="hint") { (delete_refusal().unwrap_or_default()) }
                p(class="error", role="alert") { (delete_error.get_clone()) }
                button(r#type="submit", class="danger",
                    disabled=move || delete_refusal().is_some() || confirm.with(|c| c.trim() != data.name.get_clone())) {
                    "Delete this prompt"
                }
            }
        }
    }
}
