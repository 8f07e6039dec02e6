//! Pages for admins only (Users, API keys): anyone else who opens one, by a link or by
//! typing its address, is told so instead of seeing the server refuse every call.

use crate::accounts::with_article;
use crate::app::Session;
use sycamore::prelude::*;

/// `page` for admins; for other roles a card titled `title` that says `refusal` and who
/// they are logged in as. While the session is still asking who is logged in, "Loading…".
pub(crate) fn admins_only(title: &'static str, refusal: &'static str, page: fn() -> View) -> View {
    let session = use_context::<Session>();
    // None until the session knows who is logged in.
    let role = create_selector(move || session.me.with(|m| m.as_ref().map(|_| session.role())));
    view! {
        (match role.get_clone() {
            None => view! { p(class="hint") { "Loading…" } },
            Some(r) if r == "admin" => page(),
            Some(r) => {
                let who = format!("You are logged in as {}.", with_article(&r));
                view! {
                    section(class="card") {
                        h1 { (title) }
                        p(class="notice", role="alert", "data-testid"="admins-only") { (refusal) " " (who) }
                    }
                }
            }
        })
    }
}
