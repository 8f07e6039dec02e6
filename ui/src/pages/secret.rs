//! A secret the server shows once (a webhook's signing secret, a new API key, a
//! generated password), with a Copy button and a warning, until Done forgets it.

use crate::app::deliver;
use sycamore::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `secret` holds a heading and the secret. `label` names the region, `note` says what
/// the secret is for and what to do when it is lost, `testid` marks the region (its
/// value is `{testid}-value`, what Copy did `{testid}-copied`).
#[component(inline_props)]
pub(crate) fn SecretReveal(
    secret: Signal<Option<(String, String)>>,
    label: &'static str,
    note: &'static str,
    testid: &'static str,
) -> View {
    let copied = create_signal(String::new());
    // A new secret clears what was said about the previous one.
    create_effect(move || {
        secret.track();
        copied.set(String::new());
    });
    let body = move || match secret.get_clone() {
        None => view! {},
        Some((heading, value)) => {
            let to_copy = value.clone();
            let copy = move |_| {
                let text = to_copy.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let said = if copy_to_clipboard(&text).await {
                        "Copied to the clipboard."
                    } else {
                        "This browser does not let the page copy: select the secret and copy it by hand."
                    };
                    deliver(copied, said.to_owned());
                });
            };
            view! {
                div(class="secret-reveal", role="region", "aria-label"=label, "data-testid"=testid) {
                    h3 { (heading) }
                    p { strong { "Store it now: you will not see it again." } " " (note) }
                    div(class="actions") {
                        code(class="secret", "data-testid"=format!("{testid}-value")) { (value) }
                        button(r#type="button", class="secondary", on:click=copy) { "Copy" }
                        button(r#type="button", class="link", on:click=move |_| secret.set(None)) { "Done" }
                    }
                    p(class="hint", role="status", "data-testid"=format!("{testid}-copied")) { (copied.get_clone()) }
                }
            }
        }
    };
    view! { (body()) }
}

/// Writes `text` to the clipboard; false where the browser has no clipboard for the page
/// (an insecure origin, an old browser) or refuses.
async fn copy_to_clipboard(text: &str) -> bool {
    // Looked up by name, not called through bindings: where `navigator.clipboard` is
    // missing, a bound call would throw out of the WebAssembly and stop the app.
    let get = |from: &JsValue, key: &str| js_sys::Reflect::get(from, &JsValue::from_str(key)).ok();
    let Some(window) = web_sys::window() else { return false };
    let clipboard = get(&window, "navigator").and_then(|n| get(&n, "clipboard")).filter(|c| c.is_object());
    let Some(clipboard) = clipboard else { return false };
    let Some(write) = get(&clipboard, "writeText").and_then(|w| w.dyn_into::<js_sys::Function>().ok()) else {
        return false;
    };
    match write.call1(&clipboard, &JsValue::from_str(text)) {
        Ok(promise) => match promise.dyn_into::<js_sys::Promise>() {
            Ok(promise) => JsFuture::from(promise).await.is_ok(),
            Err(_) => false,
        },
        Err(_) => false,
    }
}
