use crate::api;
use crate::app::{deliver, Session};
use sycamore::prelude::*;

#[component]
pub fn Login() -> View {
    let session = use_context::<Session>();
    let username = create_signal(String::new());
    let password = create_signal(String::new());
    let error = create_signal(String::new());
    let busy = create_signal(false);

    let submit = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        deliver(busy, true);
        deliver(error, String::new());
        // Read the signals now: the page may be gone by the time the task runs.
        let body =
            format!("username={}&password={}", api::encode(&username.get_clone()), api::encode(&password.get_clone()));
        wasm_bindgen_futures::spawn_local(async move {
            match api::call("POST", "/auth/token", Some(body), true).await {
                Ok(token) => {
                    api::store_token(token["access_token"].as_str());
                    match api::get("/auth/me").await {
                        Ok(me) => {
                            session.me.set(Some(me));
                            // Back to the page that asked for a login (a deep link), if any.
                            let path = session.path.get_clone();
                            session.navigate(if path.starts_with("/ui/") && path != "/ui/login" {
                                &path
                            } else {
                                "/ui/"
                            });
                        }
                        Err(f) => deliver(error, f.message),
                    }
                }
                Err(f) => deliver(error, f.message),
            }
            deliver(busy, false);
        });
    };

    view! {
        section(class="card narrow") {
            h1 { "Log in to PromptOS" }
            form(on:submit=submit, "aria-label"="Log in") {
                label(r#for="username") { "Username" }
                input(id="username", name="username", autocomplete="username", bind:value=username, required=true)
                label(r#for="password") { "Password" }
                input(id="password", name="password", r#type="password", autocomplete="current-password", bind:value=password, required=true)
                p(class="error", role="alert") { (error.get_clone()) }
                button(r#type="submit", disabled=busy.get()) { "Log in" }
            }
        }
    }
}
