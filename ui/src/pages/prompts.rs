use crate::api;
use crate::app::{deliver, Session};
use serde_json::{json, Value};
use sycamore::prelude::*;

#[component]
pub fn PromptsPage() -> View {
    let session = use_context::<Session>();
    let prompts = create_signal(Vec::<Value>::new());
    let search = create_signal(String::new());
    let tag = create_signal(String::new());
    let load_error = create_signal(String::new());
    let name = create_signal(String::new());
    let description = create_signal(String::new());
    let form_error = create_signal(String::new());

    let load = move || {
        let mut path = format!("/prompts/?limit=500&prefix={}", api::encode(&search.get_clone()));
        let t = tag.get_clone();
        if !t.trim().is_empty() {
            path.push_str(&format!("&tag={}", api::encode(t.trim())));
        }
        wasm_bindgen_futures::spawn_local(async move {
            match api::get(&path).await {
                Ok(page) => {
                    deliver(load_error, String::new());
                    deliver(prompts, page["items"].as_array().cloned().unwrap_or_default());
                }
                Err(f) => deliver(load_error, f.message),
            }
        });
    };
    load();
    create_effect(move || {
        search.track();
        tag.track();
        load();
    });

    let name_problem = create_memo(move || {
        let n = name.get_clone();
        if n.is_empty() {
            String::new()
        } else {
            crate::prompt_name_problem(&n).unwrap_or_default()
        }
    });

    let create = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        if let Some(problem) = crate::prompt_name_problem(&name.get_clone()) {
            deliver(form_error, problem);
            return;
        }
        let body = json!({"name": name.get_clone(), "description": description.get_clone()});
        wasm_bindgen_futures::spawn_local(async move {
            match api::post("/prompts/", body).await {
                Ok(created) => {
                    deliver(form_error, String::new());
                    let created_name = created["name"].as_str().unwrap_or_default().to_owned();
                    deliver(name, String::new());
                    deliver(description, String::new());
                    session.navigate(&format!("/ui/prompts/{created_name}"));
                }
                Err(f) => deliver(form_error, f.message),
            }
        });
    };

    let rows = move || {
        prompts.get_clone().into_iter().map(|p| {
            let n = p["name"].as_str().unwrap_or_default().to_owned();
            let href = format!("/ui/prompts/{n}");
            let go = href.clone();
            let live: Vec<String> = p["live"].as_object().map(|m| m.iter().map(|(env, v)| format!("{env}: {}", v.as_str().unwrap_or(""))).collect()).unwrap_or_default();
            let live = if live.is_empty() { "not deployed".to_owned() } else { live.join(" · ") };
            let description = p["description"].as_str().unwrap_or_default().to_owned();
            let latest = p["latest_version"].as_str().unwrap_or("—").to_owned();
            let tags = p["tags"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    let t = t.as_str().unwrap_or_default().to_owned();
                    let pick = t.clone();
                    view! { button(class="tag", r#type="button", title="Show only prompts with this tag",
                        on:click=move |_| tag.set(pick.clone())) { (t) } }
                })
                .collect::<Vec<View>>();
            view! {
                tr {
                    td { a(href=href, on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate(&go); }) { (n.clone()) } }
                    td { (description) " " span(class="tags") { (tags) } }
                    td { (latest) }
                    td(class="live") { (live) }
                }
            }
        }).collect::<Vec<View>>()
    };

    view! {
        section(class="card") {
            h1 { "Prompts" }
            div(class="inline-form") {
                input(class="search", r#type="search", placeholder="Search by name…", "aria-label"="Search prompts by name", bind:value=search)
                input(class="search", r#type="search", placeholder="Filter by tag, e.g. team:support", "aria-label"="Filter prompts by tag", bind:value=tag)
            }
            p(class="error", role="alert") { (load_error.get_clone()) }
            table(class="prompts") {
                thead { tr { th { "Name" } th { "Description" } th { "Latest version" } th { "Live" } } }
                tbody { (rows()) }
            }
        }
        (if session.can_edit() {
            view! {
                section(class="card") {
                    h2 { "New prompt" }
                    form(on:submit=create, "aria-label"="Create a prompt") {
                        label(r#for="new-name") { "Name" }
                        input(id="new-name", placeholder="customer-support-agent", bind:value=name, "aria-describedby"="name-help")
                        p(id="name-help", class="hint error") { (name_problem.get_clone()) }
                        label(r#for="new-description") { "Description" }
                        input(id="new-description", bind:value=description)
                        p(class="error", role="alert") { (form_error.get_clone()) }
                        button(r#type="submit", disabled=!name_problem.with(|p| p.is_empty())) { "Create prompt" }
                    }
                }
            }
        } else {
            view! { p(class="hint") { "Viewers can read prompts; ask an editor or admin to create one." } }
        })
    }
}
