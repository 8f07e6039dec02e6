//! The API keys page (`/ui/api-keys`, admins only): the keys applications read deployed
//! prompts with, a form to create one (the key is shown once, with a Copy button), and
//! for each its environments, when and by whom it was made, its use, and Revoke.
//!
//! What the server offers decides what the page shows: a key is read-only and limited to
//! the environments it names (it has no role), it does not expire (revoking is how it
//! ends), and the server does not record each call made with it; the use shown is what
//! running SDK instances report with it (`GET /fleet`), asked again every few seconds.

use crate::accounts::KeyUse;
use crate::api;
use crate::app::deliver;
use crate::live;
use crate::pages::admins_only::admins_only;
use crate::pages::prompt::text;
use crate::pages::secret::SecretReveal;
use serde_json::{json, Value};
use sycamore::prelude::*;

/// Instances report every few seconds; the use column follows them.
const REFRESH_MS: i32 = 3_000;

/// The keys and the fleet, as last asked.
#[derive(Clone, Copy)]
struct Keys {
    items: Signal<Option<Vec<Value>>>,
    fleet: Signal<Value>,
    error: Signal<String>,
}

impl Keys {
    async fn load(self) {
        let (keys, fleet) = (api::get("/api-keys/").await, api::get("/fleet").await);
        match keys {
            Ok(list) => {
                let items = Some(list["items"].as_array().cloned().unwrap_or_default());
                if self.items.is_alive() && self.items.with_untracked(|i| *i != items) {
                    self.items.set(items);
                }
                if self.error.is_alive() && !self.error.with_untracked(String::is_empty) {
                    self.error.set(String::new());
                }
            }
            Err(f) => deliver(self.error, f.message),
        }
        // Without the fleet the page still lists the keys; their use is then unknown.
        if let Ok(fleet) = fleet {
            if self.fleet.is_alive() && self.fleet.with_untracked(|f| *f != fleet) {
                self.fleet.set(fleet);
            }
        }
    }

    fn find(self, key_id: &str) -> Value {
        self.items.with(|i| i.iter().flatten().find(|k| k["key_id"] == key_id).cloned().unwrap_or(Value::Null))
    }
}

#[component]
pub fn ApiKeysPage() -> View {
    admins_only("API keys", "Only admins create and revoke API keys.", || view! { ApiKeys {} })
}

#[component]
fn ApiKeys() -> View {
    let keys =
        Keys { items: create_signal(None), fleet: create_signal(Value::Null), error: create_signal(String::new()) };
    live::poll(REFRESH_MS, move || keys.load());
    let ids =
        create_selector(move || keys.items.with(|i| i.iter().flatten().map(|k| text(k, "key_id")).collect::<Vec<_>>()));
    let empty = move || match keys.items.with(|i| i.as_ref().map(Vec::is_empty)) {
        None => view! { p(class="hint") { "Loading…" } },
        Some(true) => view! { p(class="hint", "data-testid"="api-keys-empty") { "No API keys yet." } },
        Some(false) => view! {},
    };
    view! {
        section(class="card") {
            h1 { "API keys" }
            p(class="hint") {
                "Applications read the prompts deployed in an environment with a key, sent as "
                code { "Authorization: Bearer <key>" } " or " code { "X-API-Key: <key>" } ". A key is read-only and "
                "reads only the environments it names. Keys do not expire: revoke one that is no longer needed, "
                "or that may have leaked."
            }
            p(class="error", role="alert", "data-testid"="api-keys-error") { (keys.error.get_clone()) }
        }
        CreateKey(keys=keys)
        section(class="card", "aria-label"="Keys") {
            h2 { "Keys" }
            (empty())
            div(class="scroll") {
                table(class="api-keys") {
                    thead { tr {
                        th { "Name" } th { "Key id" } th { "Environments" } th { "Created" } th { "Use" } th { "Status" } th {}
                    } }
                    tbody { Keyed(list=ids, view=move |id| view! { KeyRow(id=id, keys=keys) }, key=|id| id.clone()) }
                }
            }
            p(class="hint") {
                "Use: the running SDK instances that report with the key (the Fleet page lists them). "
                "The server does not record other calls made with a key."
            }
        }
    }
}

/// The form that creates a key; shows the key once.
#[component(inline_props)]
fn CreateKey(keys: Keys) -> View {
    let name = create_signal(String::new());
    let environments = create_signal(Vec::<String>::new());
    let chosen = create_signal(Vec::<String>::new());
    let form_error = create_signal(String::new());
    let busy = create_signal(false);
    let secret = create_signal(None::<(String, String)>);
    wasm_bindgen_futures::spawn_local(async move {
        match api::get("/environments").await {
            Ok(envs) => {
                let names = envs["items"].as_array().map(|es| es.iter().map(|e| text(e, "name")).collect());
                deliver(environments, names.unwrap_or_default());
            }
            Err(f) => deliver(form_error, f.message),
        }
    });

    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        // In the server's order, whatever the order of the clicks.
        let picked: Vec<String> =
            environments.get_clone().into_iter().filter(|e| chosen.with(|c| c.contains(e))).collect();
        let body = json!({ "name": name.get_clone().trim(), "environments": picked });
        busy.set(true);
        secret.set(None);
        wasm_bindgen_futures::spawn_local(async move {
            match api::post("/api-keys/", body).await {
                Ok(created) => {
                    let heading = format!("API key {} ({})", text(&created, "name"), text(&created, "key_id"));
                    deliver(secret, Some((heading, text(&created, "key"))));
                    deliver(form_error, String::new());
                    deliver(name, String::new());
                    deliver(chosen, Vec::new());
                    keys.load().await;
                }
                Err(f) => deliver(form_error, f.message),
            }
            deliver(busy, false);
        });
    };
    let boxes = move || {
        environments
            .get_clone()
            .into_iter()
            .map(|env| {
                let id = format!("key-env-{env}");
                let (toggle, checked, label_for) = (env.clone(), env.clone(), id.clone());
                view! {
                    label(class="check", r#for=label_for) {
                        input(id=id, r#type="checkbox", checked=move || chosen.with(|c| c.contains(&checked)),
                            on:change=move |_| chosen.update(|c| match c.iter().position(|x| *x == toggle) {
                                Some(i) => { c.remove(i); }
                                None => c.push(toggle.clone()),
                            }))
                        " " (env)
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    let note = "Applications send it as Authorization: Bearer <key>. A lost key cannot be shown again: create \
                another one and revoke this one.";
    view! {
        section(class="card", "aria-label"="Create API key") {
            h2 { "Create API key" }
            form(on:submit=submit, "aria-label"="Create an API key") {
                label(r#for="key-name") { "Name" }
                input(id="key-name", placeholder="support-chatbot", maxlength="100", bind:value=name, required=true)
                fieldset(class="environments") {
                    legend { "Environments it may read" }
                    div(class="actions") { (boxes()) }
                }
                p(class="error", role="alert", "data-testid"="api-key-form-error") { (form_error.get_clone()) }
                button(r#type="submit",
                    disabled=move || busy.get() || name.with(|n| n.trim().is_empty()) || chosen.with(Vec::is_empty)) {
                    "Create key"
                }
            }
            SecretReveal(secret=secret, label="New API key", note=note, testid="api-key-secret")
        }
    }
}

/// One key: its facts, its use, and Revoke while it is active.
#[component(inline_props)]
fn KeyRow(id: String, keys: Keys) -> View {
    let key_id = id.clone();
    let key = create_selector(move || keys.find(&key_id));
    let key_id = id.clone();
    let used = create_selector(move || keys.fleet.with(|f| KeyUse::of(f, &key_id)));
    let revoked = create_selector(move || key.with(|k| !k["revoked_at"].is_null()));
    let busy = create_signal(false);
    let error = create_signal(String::new());
    let path = format!("/api-keys/{}", api::encode(&id));
    let revoke = move |_| {
        let name = key.with_untracked(|k| text(k, "name"));
        let question = format!("Revoke the API key {name}? Applications using it get 401 from now on.");
        if !web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false) {
            return;
        }
        busy.set(true);
        error.set(String::new());
        let path = path.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match api::call("DELETE", &path, None, false).await {
                Ok(_) => keys.load().await,
                Err(f) => deliver(error, f.message),
            }
            deliver(busy, false);
        });
    };
    let facts = move || {
        let k = key.get_clone();
        let environments =
            k["environments"].as_array().map(|es| es.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
        let created = format!("{} by {}", crate::readable_time(&text(&k, "created_at")), text(&k, "created_by"));
        (text(&k, "name"), environments.unwrap_or_default(), created)
    };
    let status = move || {
        let k = key.get_clone();
        if revoked.get() {
            let line =
                format!("revoked {} by {}", crate::readable_time(&text(&k, "revoked_at")), text(&k, "revoked_by"));
            view! { span(class="key-state revoked", "data-testid"="key-state") { (line) } }
        } else {
            view! { span(class="key-state active", "data-testid"="key-state") { "active" } }
        }
    };
    let use_line =
        move || used.get_clone().map_or_else(|| "No running instance reports with it.".to_owned(), |u| u.line());
    let label = move || format!("Revoke {}", key.with(|k| text(k, "name")));
    let shown = id.clone();
    view! {
        tr("data-key-id"=id) {
            td(class="key-name") { (facts().0) }
            td { code { (shown) } }
            td(class="key-environments") { (facts().1) }
            td { (facts().2) }
            td(class="key-use", "data-testid"="key-use") { (use_line()) }
            td { (status()) p(class="error", role="alert") { (error.get_clone()) } }
            td {
                (if revoked.get() {
                    view! {}
                } else {
                    view! {
                        button(r#type="button", class="danger", "aria-label"=label, disabled=move || busy.get(), on:click=revoke.clone()) {
                            "Revoke"
                        }
                    }
                })
            }
        }
    }
}
