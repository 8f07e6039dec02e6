//! The Users page (`/ui/users`, admins only): every account with its role and whether it
//! is disabled, a form to add one, and for each its actions ([`row`]): change the role,
//! reset the password, disable. A password the server generates is shown once.

mod row;

use crate::accounts::{password_problem, username_problem, with_article, ROLES};
use crate::api;
use crate::app::deliver;
use crate::pages::admins_only::admins_only;
use crate::pages::prompt::text;
use crate::pages::secret::SecretReveal;
use row::UserRow;
use serde_json::{json, Value};
use sycamore::prelude::*;

/// The accounts as the server lists them, shared by the page and its rows.
#[derive(Clone, Copy)]
pub(super) struct Accounts {
    items: Signal<Option<Vec<Value>>>,
    error: Signal<String>,
}

impl Accounts {
    async fn load(self) {
        match api::get("/users/").await {
            Ok(list) => {
                deliver(self.error, String::new());
                deliver(self.items, Some(list["items"].as_array().cloned().unwrap_or_default()));
            }
            Err(f) => deliver(self.error, f.message),
        }
    }

    fn reload(self) {
        wasm_bindgen_futures::spawn_local(self.load());
    }

    /// The user with this name, as last listed (`Null` if absent).
    fn find(self, username: &str) -> Value {
        self.items.with(|i| i.iter().flatten().find(|u| u["username"] == username).cloned().unwrap_or(Value::Null))
    }
}

#[component]
pub fn UsersPage() -> View {
    admins_only("Users", "Only admins manage users and their roles.", || view! { Users {} })
}

#[component]
fn Users() -> View {
    let accounts = Accounts { items: create_signal(None), error: create_signal(String::new()) };
    accounts.reload();
    let names = create_selector(move || {
        accounts.items.with(|i| i.iter().flatten().map(|u| text(u, "username")).collect::<Vec<_>>())
    });
    let roles =
        ROLES.iter().map(|(role, what)| view! { li { strong { (*role) } ": " (*what) } }).collect::<Vec<View>>();
    let loading = move || {
        if accounts.items.with(Option::is_none) && accounts.error.with(String::is_empty) {
            view! { p(class="hint") { "Loading…" } }
        } else {
            view! {}
        }
    };
    view! {
        section(class="card") {
            h1 { "Users" }
            p(class="hint") {
                "Everyone who logs in to PromptOS. A disabled account is logged out at once and cannot log in "
                "again; the server keeps it (and its name) for the log. Roles:"
            }
            ul(class="hint roles") { (roles) }
            p(class="error", role="alert", "data-testid"="users-error") { (accounts.error.get_clone()) }
            (loading())
            div(class="scroll") {
                table(class="users") {
                    thead { tr { th { "Name" } th { "Role" } th { "Status" } th { "Added" } th { "Actions" } } }
                    tbody {
                        Keyed(list=names, view=move |name| view! { UserRow(name=name, accounts=accounts) }, key=|n| n.clone())
                    }
                }
            }
        }
        AddUser(accounts=accounts)
    }
}

/// The form that adds an account; a password the server generated is shown once.
#[component(inline_props)]
fn AddUser(accounts: Accounts) -> View {
    let username = create_signal(String::new());
    let role = create_signal("viewer".to_owned());
    let password = create_signal(String::new());
    let form_error = create_signal(String::new());
    let notice = create_signal(String::new());
    let busy = create_signal(false);
    let generated = create_signal(None::<(String, String)>);

    let name_problem = create_memo(move || username.with(|n| (!n.is_empty()).then(|| username_problem(n)).flatten()));
    // Empty: the server generates one.
    let pass_problem = create_memo(move || password.with(|p| (!p.is_empty()).then(|| password_problem(p)).flatten()));
    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let name = username.get_clone().trim().to_owned();
        let chosen = password.get_clone();
        let mut body = json!({ "username": name, "role": role.get_clone() });
        if !chosen.is_empty() {
            body["password"] = json!(chosen);
        }
        busy.set(true);
        generated.set(None);
        notice.set(String::new());
        wasm_bindgen_futures::spawn_local(async move {
            match api::post("/users/", body).await {
                Ok(created) => {
                    deliver(form_error, String::new());
                    deliver(
                        notice,
                        format!("Added {} as {}.", text(&created, "username"), with_article(&text(&created, "role"))),
                    );
                    if let Some(p) = created["password"].as_str() {
                        deliver(generated, Some((format!("Password of {}", text(&created, "username")), p.to_owned())));
                    }
                    deliver(username, String::new());
                    deliver(password, String::new());
                    accounts.load().await;
                }
                Err(f) => deliver(form_error, f.message),
            }
            deliver(busy, false);
        });
    };
    let options =
        ROLES.iter().map(|(r, _)| view! { option(value=*r, selected=*r == "viewer") { (*r) } }).collect::<Vec<View>>();
    view! {
        section(class="card", "aria-label"="Add user") {
            h2 { "Add user" }
            form(on:submit=submit, "aria-label"="Add a user") {
                label(r#for="user-name") { "Username" }
                input(id="user-name", autocomplete="off", placeholder="jane.doe", bind:value=username, required=true,
                    "aria-describedby"="user-name-hint")
                p(id="user-name-hint", class="hint error", role="status") { (name_problem.get_clone().unwrap_or_default()) }
                label(r#for="user-role") { "Role" }
                select(id="user-role", bind:value=role) { (options) }
                label(r#for="user-password") { "Password (optional)" }
                input(id="user-password", r#type="password", autocomplete="new-password", bind:value=password,
                    "aria-describedby"="user-password-hint")
                p(id="user-password-hint", role="status",
                    class=move || if pass_problem.with(Option::is_some) { "hint error" } else { "hint" }) {
                    (pass_problem.get_clone().unwrap_or_else(|| "At least 12 characters; leave it empty to have a strong one generated and shown once.".to_owned()))
                }
                p(class="error", role="alert", "data-testid"="user-form-error") { (form_error.get_clone()) }
                button(r#type="submit", disabled=move || busy.get() || username.with(|n| n.trim().is_empty())
                    || name_problem.with(Option::is_some) || pass_problem.with(Option::is_some)) {
                    "Add user"
                }
            }
            p(class="hint", role="status", "data-testid"="user-added") { (notice.get_clone()) }
            NewPassword(secret=generated)
        }
    }
}

/// A password the server generated, shown once.
#[component(inline_props)]
pub(super) fn NewPassword(secret: Signal<Option<(String, String)>>) -> View {
    let note = "Give it to its owner over a safe channel; they can change it after logging in.";
    view! { SecretReveal(secret=secret, label="New password", note=note, testid="user-password") }
}
