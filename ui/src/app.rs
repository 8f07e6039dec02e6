//! The application shell: session, routing and the top bar.

use crate::api;
use crate::pages::{
    api_keys::ApiKeysPage,
    audit::AuditPage,
    change_requests::{detail::ChangeRequestPage, Inbox},
    environments::EnvironmentsPage,
    fleet::FleetPage,
    login::Login,
    prompt::PromptPage,
    prompts::PromptsPage,
    time_travel::TimeTravelPage,
    users::UsersPage,
    webhooks::WebhooksPage,
};
use serde_json::Value;
use sycamore::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Who is logged in, shared through context.
#[derive(Clone, Copy)]
pub struct Session {
    pub me: Signal<Option<Value>>,
    pub path: Signal<String>,
}

impl Session {
    pub fn role(&self) -> String {
        self.me.with(|m| m.as_ref().and_then(|m| m["role"].as_str().map(str::to_owned)).unwrap_or_default())
    }

    /// How the current user appears in the log and as a change request's author
    /// (`user:<name>`).
    pub fn actor(&self) -> String {
        self.me.with(|m| m.as_ref().and_then(|m| m["actor"].as_str().map(str::to_owned)).unwrap_or_default())
    }

    pub fn can_edit(&self) -> bool {
        matches!(self.role().as_str(), "editor" | "admin")
    }

    /// Goes to `path` inside the app without reloading the page.
    pub fn navigate(&self, path: &str) {
        if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
            let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
        }
        self.path.set(path.to_owned());
    }

    pub fn logout(&self) {
        api::store_token(None);
        self.me.set(None);
        self.navigate("/ui/login");
    }
}

/// Sets a signal from an async task, unless the page that owns it was closed meanwhile
/// (setting a disposed signal would panic and stop the whole app).
pub fn deliver<T>(signal: Signal<T>, value: T) {
    if signal.is_alive() {
        signal.set(value);
    }
}

/// The pages, one per route.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Route {
    Login,
    Prompts,
    /// `/ui/prompts/{name}` and its tabs, `/ui/prompts/{name}/{tab}`.
    Prompt(String),
    /// `/ui/fleet`: the running SDK instances.
    Fleet,
    /// `/ui/change-requests`: the inbox of change requests.
    ChangeRequests,
    /// `/ui/change-requests/{id}`: one request, to review and apply.
    ChangeRequest(String),
    /// `/ui/webhooks`: the URLs subscribed to the log's events (admins).
    Webhooks,
    /// `/ui/users`: accounts and roles (admins).
    Users,
    /// `/ui/api-keys`: the keys applications read with (admins).
    ApiKeys,
    /// `/ui/environments`: what is live where, prompts × environments.
    Environments,
    /// `/ui/audit`: the whole event log, its export and its verification.
    Audit,
    /// `/ui/time-travel`: what was live at a moment, and what changed since.
    TimeTravel,
}

impl Route {
    fn of(path: &str, logged_in: bool) -> Route {
        if !logged_in || path == "/ui/login" {
            return Route::Login;
        }
        match path.trim_end_matches('/') {
            "/ui/fleet" => return Route::Fleet,
            "/ui/webhooks" => return Route::Webhooks,
            "/ui/users" => return Route::Users,
            "/ui/api-keys" => return Route::ApiKeys,
            "/ui/environments" => return Route::Environments,
            "/ui/audit" => return Route::Audit,
            "/ui/time-travel" => return Route::TimeTravel,
            _ => {}
        }
        if let Some(rest) = path.trim_end_matches('/').strip_prefix("/ui/change-requests") {
            return match rest.strip_prefix('/') {
                Some(id) if !id.is_empty() => Route::ChangeRequest(id.to_owned()),
                _ => Route::ChangeRequests,
            };
        }
        let name = path.strip_prefix("/ui/prompts/").and_then(|rest| rest.split('/').next()).unwrap_or("");
        if name.is_empty() {
            return Route::Prompts;
        }
        Route::Prompt(js_sys::decode_uri_component(name).map(String::from).unwrap_or_else(|_| name.to_owned()))
    }
}

fn current_path() -> String {
    web_sys::window().and_then(|w| w.location().pathname().ok()).unwrap_or_else(|| "/ui/".into())
}

#[component]
pub fn App() -> View {
    let session = Session { me: create_signal(None), path: create_signal(current_path()) };
    provide_context(session);
    // Back and forward buttons.
    let on_pop = Closure::<dyn Fn()>::new(move || session.path.set(current_path()));
    if let Some(w) = web_sys::window() {
        let _ = w.add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
    }
    on_pop.forget();
    // Restore the session of this browser tab.
    if api::stored_token().is_some() {
        wasm_bindgen_futures::spawn_local(async move {
            match api::get("/auth/me").await {
                Ok(me) => session.me.set(Some(me)),
                Err(_) => session.navigate("/ui/login"),
            }
        });
    }

    // Only a change of page rebuilds it; moving between a prompt's tabs does not.
    let route = create_selector(move || Route::of(&session.path.get_clone(), api::stored_token().is_some()));
    let page = move || match route.get_clone() {
        Route::Login => view! { Login {} },
        Route::Prompts => view! { PromptsPage {} },
        Route::Prompt(name) => view! { PromptPage(name=name) },
        Route::Fleet => view! { FleetPage {} },
        Route::ChangeRequests => view! { Inbox {} },
        Route::ChangeRequest(id) => view! { ChangeRequestPage(id=id) },
        Route::Webhooks => view! { WebhooksPage {} },
        Route::Users => view! { UsersPage {} },
        Route::ApiKeys => view! { ApiKeysPage {} },
        Route::Environments => view! { EnvironmentsPage {} },
        Route::Audit => view! { AuditPage {} },
        Route::TimeTravel => view! { TimeTravelPage {} },
    };

    view! {
        header(class="topbar") {
            a(class="brand", href="/ui/", on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/"); }) { "PromptOS" }
            (if session.me.with(|m| m.is_some()) {
                let who = session.me.with(|m| m.as_ref().map(|m| format!("{} ({})", m["name"].as_str().unwrap_or(""), m["role"].as_str().unwrap_or(""))).unwrap_or_default());
                view! {
                    nav(class="nav", "aria-label"="Main") {
                        a(href="/ui/fleet", "aria-current"=move || (route.get_clone() == Route::Fleet).then_some("page"),
                            on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/fleet"); }) { "Fleet" }
                        a(href="/ui/change-requests",
                            "aria-current"=move || matches!(route.get_clone(), Route::ChangeRequests | Route::ChangeRequest(_)).then_some("page"),
                            on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/change-requests"); }) { "Change requests" }
                        a(href="/ui/environments", "aria-current"=move || (route.get_clone() == Route::Environments).then_some("page"),
                            on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/environments"); }) { "Environments" }
                        a(href="/ui/audit", "aria-current"=move || (route.get_clone() == Route::Audit).then_some("page"),
                            on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/audit"); }) { "Audit" }
                        a(href="/ui/time-travel", "aria-current"=move || (route.get_clone() == Route::TimeTravel).then_some("page"),
                            on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/time-travel"); }) { "Time travel" }
                        (if session.role() == "admin" {
                            view! {
                                a(href="/ui/webhooks", "aria-current"=move || (route.get_clone() == Route::Webhooks).then_some("page"),
                                    on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/webhooks"); }) { "Webhooks" }
                                a(href="/ui/users", "aria-current"=move || (route.get_clone() == Route::Users).then_some("page"),
                                    on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/users"); }) { "Users" }
                                a(href="/ui/api-keys", "aria-current"=move || (route.get_clone() == Route::ApiKeys).then_some("page"),
                                    on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate("/ui/api-keys"); }) { "API keys" }
                            }
                        } else {
                            view! {}
                        })
                    }
                    span(class="who", "data-testid"="whoami") { (who) }
                    button(class="link", on:click=move |_| session.logout()) { "Log out" }
                }
            } else {
                view! {}
            })
        }
        main(class="page") { (page()) }
    }
}
