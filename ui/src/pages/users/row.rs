//! One account on the Users page: its name, role (changeable), status and when it was
//! added, and its actions: reset the password (typed, or generated and shown once) and
//! disable. The server has no way to enable an account again, so a disabled row says so
//! instead of offering a button.

use super::{Accounts, NewPassword};
use crate::accounts::{password_problem, with_article, ROLES};
use crate::api;
use crate::app::{deliver, Session};
use crate::pages::prompt::text;
use serde_json::{json, Value};
use sycamore::prelude::*;

/// What to do with a successful answer.
type Then = Box<dyn FnOnce(Value)>;

#[component(inline_props)]
pub(super) fn UserRow(name: String, accounts: Accounts) -> View {
    let session = use_context::<Session>();
    let key = name.clone();
    let user = create_selector(move || accounts.find(&key));
    let role = create_signal(String::new());
    // The select follows the role the server knows (after a change, or a reload).
    create_effect(move || role.set(user.with(|u| text(u, "role"))));
    let disabled = create_selector(move || user.with(|u| u["disabled"] == true));
    let is_me = session.actor() == format!("user:{name}");
    let busy = create_signal(false);
    let error = create_signal(String::new());
    let notice = create_signal(String::new());
    let resetting = create_signal(false);
    let new_password = create_signal(String::new());
    let generated = create_signal(None::<(String, String)>);
    let path = format!("/users/{}", api::encode(&name));

    let run = move |method: &'static str, to: String, body: Option<Value>, then: Then| {
        busy.set(true);
        error.set(String::new());
        notice.set(String::new());
        generated.set(None);
        wasm_bindgen_futures::spawn_local(async move {
            match api::call(method, &to, body.map(|b| b.to_string()), false).await {
                Ok(answer) => then(answer),
                Err(f) => deliver(error, f.message),
            }
            deliver(busy, false);
        });
    };
    let (to_role, to_password, to_disable) = (path.clone(), format!("{path}/password"), format!("{path}/disable"));
    let who = name.clone();
    let change_role = move |_| {
        let who = who.clone();
        let then = move |answer: Value| {
            deliver(notice, format!("{who} is now {}.", with_article(&text(&answer, "role"))));
            accounts.reload();
        };
        run("PATCH", to_role.clone(), Some(json!({ "role": role.get_clone() })), Box::new(then))
    };
    let who = name.clone();
    // `None`: let the server generate one.
    let reset = move |password: Option<String>| {
        let who = who.clone();
        let body = password.map_or_else(|| json!({}), |p| json!({ "password": p }));
        let then = move |answer: Value| {
            deliver(notice, format!("The password of {who} is changed; their open sessions have ended."));
            if let Some(p) = answer["password"].as_str() {
                deliver(generated, Some((format!("New password of {who}"), p.to_owned())));
            }
            deliver(new_password, String::new());
            deliver(resetting, false);
        };
        run("POST", to_password.clone(), Some(body), Box::new(then))
    };
    let reset_typed = reset.clone();
    let set_password = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        reset_typed(Some(new_password.get_clone()));
    };
    let who = name.clone();
    let disable = move |_| {
        let question = format!(
            "Disable {who}? They are logged out at once and cannot log in again; an account cannot be enabled again."
        );
        let sure = web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
        if sure {
            let who = who.clone();
            let then = move |_: Value| {
                deliver(notice, format!("{who} is disabled."));
                accounts.reload();
            };
            run("POST", to_disable.clone(), None, Box::new(then));
        }
    };

    let pass_problem =
        create_memo(move || new_password.with(|p| (!p.is_empty()).then(|| password_problem(p)).flatten()));
    let options = ROLES
        .iter()
        .map(|(r, _)| view! { option(value=*r, selected=role.with_untracked(|x| x == r)) { (*r) } })
        .collect::<Vec<View>>();
    let added =
        move || user.with(|u| format!("{} by {}", crate::readable_time(&text(u, "created_at")), text(u, "created_by")));
    let state = move || {
        if disabled.get() {
            view! { span(class="user-state disabled", "data-testid"="user-state") { "disabled" } }
        } else {
            view! { span(class="user-state active", "data-testid"="user-state") { "active" } }
        }
    };
    let id = format!("reset-{}", name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
    let (form_id, input_id, hint_id) = (id.clone(), format!("{id}-password"), format!("{id}-hint"));
    let (label, form_label) = (format!("New password for {name}"), format!("Reset the password of {name}"));
    let reset_form = move || {
        if !resetting.get() {
            return view! {};
        }
        let generate = reset.clone();
        let submit = set_password.clone();
        let (form, name_label, text_label) = (form_id.clone(), form_label.clone(), label.clone());
        let (for_input, input, described_by, hint) =
            (input_id.clone(), input_id.clone(), hint_id.clone(), hint_id.clone());
        view! {
            form(id=form, class="inline-form", "aria-label"=name_label, on:submit=submit) {
                label(r#for=for_input) { (text_label) }
                input(id=input, r#type="password", autocomplete="new-password", bind:value=new_password,
                    "aria-describedby"=described_by)
                button(r#type="submit", disabled=move || busy.get() || new_password.with(String::is_empty) || pass_problem.with(Option::is_some)) {
                    "Set password"
                }
                button(r#type="button", class="secondary", disabled=move || busy.get(), on:click=move |_| generate(None)) {
                    "Generate one"
                }
                button(r#type="button", class="link", on:click=move |_| resetting.set(false)) { "Cancel" }
                p(id=hint, role="status", class="hint error") { (pass_problem.get_clone().unwrap_or_default()) }
            }
        }
    };
    // Under the row: the reset form, what the last action did, a generated password.
    let detail = move || {
        let open = resetting.get()
            || !notice.with(String::is_empty)
            || !error.with(String::is_empty)
            || generated.with(Option::is_some);
        if !open {
            return view! {};
        }
        let form = reset_form.clone();
        view! {
            tr(class="user-detail") {
                td(colspan="5") {
                    (form())
                    p(class="hint", role="status", "data-testid"="user-notice") { (notice.get_clone()) }
                    p(class="error", role="alert", "data-testid"="user-error") { (error.get_clone()) }
                    NewPassword(secret=generated)
                }
            }
        }
    };
    let (me_note, role_label, who) = (if is_me { " (you)" } else { "" }, format!("Role of {name}"), name.clone());
    view! {
        tr("data-username"=name.clone(), class=move || if disabled.get() { "user disabled" } else { "user" }) {
            td(class="username") { (who) span(class="hint") { (me_note) } }
            td(class="role") {
                div(class="actions") {
                    select("aria-label"=role_label, bind:value=role, disabled=move || disabled.get() || is_me) { (options) }
                    button(r#type="button", class="secondary", on:click=change_role,
                        disabled=move || busy.get() || role.with(|r| user.with(|u| u["role"] == r.as_str()))) { "Change role" }
                }
            }
            td { (state()) }
            td(class="added") { (added()) }
            td {
                (if disabled.get() {
                    view! { span(class="hint") { "Cannot be enabled again." } }
                } else if is_me {
                    view! { span(class="hint") { "Your own account: another admin changes it." } }
                } else {
                    view! {
                        div(class="actions") {
                            button(r#type="button", class="secondary", disabled=move || busy.get(),
                                on:click=move |_| { resetting.set(true); notice.set(String::new()); generated.set(None); }) { "Reset password" }
                            button(r#type="button", class="danger", disabled=move || busy.get(), on:click=disable.clone()) { "Disable" }
                        }
                    }
                })
            }
        }
        (detail())
    }
}
