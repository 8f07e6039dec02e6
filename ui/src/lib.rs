//! The PromptOS admin UI: a Sycamore app compiled to WebAssembly and served by
//! `promptos serve` at `/ui/`. Build it with `scripts/build-ui`.
//!
//! Pages map one-to-one to routes (`/ui/login`, `/ui/`, `/ui/prompts/{name}/{tab}`); the
//! session and the current user go through Sycamore context; every API call goes
//! through [`api`], which turns error responses into sentences a person can read.

/// Prompt names follow the server's rule; checked as the user types.
pub fn prompt_name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len == 0 {
        return Some("Give the prompt a name.".into());
    }
    if len > 100 {
        return Some(format!("A name has at most 100 characters ({len} now)."));
    }
    name.chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
        .map(|c| format!("Use lowercase letters, digits, '-', '_' and '.' only ({c:?} is not allowed)."))
}

/// A stored timestamp (`2026-11-25T10:00:00.123456Z`) as people read it:
/// `2026-11-25 10:00:00 UTC`. Anything else is shown as it is.
pub fn readable_time(ts: &str) -> String {
    match (ts.get(..10), ts.get(11..19)) {
        (Some(date), Some(time)) if ts.as_bytes().get(10) == Some(&b'T') && ts.ends_with('Z') => {
            format!("{date} {time} UTC")
        }
        _ => ts.to_owned(),
    }
}

pub mod diff;
pub mod export;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod live;
#[cfg(target_arch = "wasm32")]
mod pages;

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // A bug shows up in the browser console with its message, not as "unreachable".
    console_error_panic_hook::set_once();
    sycamore::render(app::App);
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_checked_like_the_server_does() {
        assert_eq!(super::prompt_name_problem("customer-support.v2"), None);
        assert!(super::prompt_name_problem("").is_some());
        assert!(super::prompt_name_problem("Upper").unwrap().contains("'U'"));
        assert!(super::prompt_name_problem(&"a".repeat(101)).is_some());
    }

    #[test]
    fn times_read_like_times() {
        assert_eq!(super::readable_time("2026-11-25T10:04:05.123456Z"), "2026-11-25 10:04:05 UTC");
        assert_eq!(super::readable_time(""), "");
        assert_eq!(super::readable_time("yesterday"), "yesterday");
    }
}
