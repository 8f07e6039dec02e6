//! The PromptOS admin UI: a Sycamore app compiled to WebAssembly and served by
//! `promptos serve` at `/ui/`. Build it with `scripts/build-ui`.
//!
//! Pages map one-to-one to routes (`/ui/login`, `/ui/`, `/ui/prompts/{name}/{tab}`,
//! `/ui/fleet`, `/ui/change-requests`, `/ui/change-requests/{id}`, `/ui/webhooks`,
//! `/ui/users`, `/ui/api-keys`, `/ui/environments`, `/ui/audit` and `/ui/time-travel`);
//! the session and the current user go through Sycamore context; every API call goes
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

/// What a `datetime-local` field holds (`2026-12-07T09:00`), read as UTC, as the RFC 3339
/// time the API takes (`2026-12-07T09:00:00Z`); `None` while the field is empty. Anything
/// else is passed on as it is, for the server to explain.
pub fn utc_time_from_input(value: &str) -> Option<String> {
    let value = value.trim();
    // Date and time without an offset: what the field gives.
    let local = value.get(10..11) == Some("T")
        && !value.ends_with(['Z', 'z'])
        && !value.get(19..).unwrap_or_default().contains(['+', '-']);
    match value.len() {
        0 => None,
        16 if local => Some(format!("{value}:00Z")),
        19.. if local => Some(format!("{value}Z")),
        _ => Some(value.to_owned()),
    }
}

/// A duration in milliseconds as people read it: `38 ms`, `4.2 s`, `3 min`, `2 h`.
pub fn readable_duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

/// "v1 50 % · v2 50 %" for a split's variants (`[{version_string, weight}]`).
pub fn split_summary(variants: &serde_json::Value) -> String {
    variants
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| format!("{} {} %", v["version_string"].as_str().unwrap_or_default(), v["weight"]))
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default()
}

/// A version string for the next version made from `from`: its last number goes up by
/// one (`v2` → `v3`, `v1.9` → `v1.10`) until it is not one of `taken`. A string without
/// a number gets `.1`, `.2`, … appended.
pub fn next_version(from: &str, taken: &[String]) -> String {
    let digits_end = from.rfind(|c: char| c.is_ascii_digit()).map(|i| i + 1);
    let (head, number, tail) = match digits_end {
        Some(end) => {
            let start = from[..end].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
            (&from[..start], from[start..end].parse::<u64>().unwrap_or(0), &from[end..])
        }
        None => (from, 0, ""),
    };
    let separator = if digits_end.is_none() { "." } else { "" };
    (number + 1..)
        .map(|n| format!("{head}{separator}{n}{tail}"))
        .find(|candidate| !taken.iter().any(|t| t == candidate))
        .expect("some number is free")
}

/// How a rewritten template's variables compare with the original's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VariableCheck {
    pub kept: Vec<String>,
    /// In the original, gone from the rewrite: the application's values would be ignored.
    pub missing: Vec<String>,
    /// New in the rewrite: the application does not send them.
    pub added: Vec<String>,
}

impl VariableCheck {
    /// Compares `rewrite` with `original`; a rewrite that is not a valid template gives its
    /// parse error as a sentence.
    pub fn of(original: &str, rewrite: &str) -> Result<Self, String> {
        use promptos_core::template::Template;
        let before = Template::parse(original).map(|t| t.variables().to_vec()).unwrap_or_default();
        let after = Template::parse(rewrite)
            .map_err(|e| format!("Line {}, column {}: {}", e.line, e.column, e.message))?
            .variables()
            .to_vec();
        Ok(VariableCheck {
            kept: before.iter().filter(|v| after.contains(v)).cloned().collect(),
            missing: before.iter().filter(|v| !after.contains(v)).cloned().collect(),
            added: after.iter().filter(|v| !before.contains(v)).cloned().collect(),
        })
    }

    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.added.is_empty()
    }

    /// One sentence for the page.
    pub fn sentence(&self) -> String {
        let list = |vs: &[String]| vs.iter().map(|v| format!("{{{{{v}}}}}")).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("Drops {}", list(&self.missing)));
        }
        if !self.added.is_empty() {
            parts.push(format!("Invents {}", list(&self.added)));
        }
        match (parts.is_empty(), self.kept.is_empty()) {
            (true, true) => "No variables, as in the original.".to_owned(),
            (true, false) => format!("Keeps every variable: {}.", list(&self.kept)),
            (false, _) => format!("{}; the application's values would not match.", parts.join("; ")),
        }
    }
}

pub mod accounts;
pub mod audit;
pub mod diff;
pub mod environment_matrix;
pub mod evaluation_report;
pub mod expectation_form;
pub mod export;
pub mod moment;
pub mod playground_run;
pub mod time_travel;
pub mod webhook_form;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod download;
#[cfg(target_arch = "wasm32")]
mod live;
#[cfg(target_arch = "wasm32")]
mod pages;
#[cfg(target_arch = "wasm32")]
mod sse;

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
    fn the_next_version_bumps_the_last_number_and_skips_taken_ones() {
        use super::next_version;
        let taken = |vs: &[&str]| vs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(next_version("v2", &taken(&["v1", "v2"])), "v3");
        assert_eq!(next_version("v2", &taken(&["v1", "v2", "v3"])), "v4");
        assert_eq!(next_version("v1.9", &[]), "v1.10");
        assert_eq!(next_version("1.2.3-rc", &[]), "1.2.4-rc");
        assert_eq!(next_version("draft", &taken(&["draft", "draft.1"])), "draft.2");
    }

    #[test]
    fn a_rewrite_that_drops_or_invents_variables_is_flagged() {
        use super::VariableCheck;
        let original = "Hello {{ name }}, about {{ topic }}:";
        let same = VariableCheck::of(original, "Dear {{name}}. Topic: {{topic}}").unwrap();
        assert!(same.is_ok());
        assert_eq!(same.sentence(), "Keeps every variable: {{name}}, {{topic}}.");
        let bad = VariableCheck::of(original, "Hi {{ user }}").unwrap();
        assert!(!bad.is_ok());
        assert_eq!(bad.missing, ["name", "topic"]);
        assert_eq!(bad.added, ["user"]);
        assert!(bad.sentence().starts_with("Drops {{name}}, {{topic}}; Invents {{user}}"), "{}", bad.sentence());
        assert!(VariableCheck::of(original, "Hi {{ name ").unwrap_err().starts_with("Line 1"));
    }

    #[test]
    fn times_read_like_times() {
        assert_eq!(super::readable_time("2026-11-25T10:04:05.123456Z"), "2026-11-25 10:04:05 UTC");
        assert_eq!(super::readable_time(""), "");
        assert_eq!(super::readable_time("yesterday"), "yesterday");
    }

    #[test]
    fn a_schedule_typed_in_the_browser_is_read_as_utc() {
        use super::utc_time_from_input;
        assert_eq!(utc_time_from_input(""), None);
        assert_eq!(utc_time_from_input("2026-12-07T09:00").as_deref(), Some("2026-12-07T09:00:00Z"));
        assert_eq!(utc_time_from_input("2026-12-07T09:00:30").as_deref(), Some("2026-12-07T09:00:30Z"));
        assert_eq!(utc_time_from_input("2026-12-07T09:00:30.5").as_deref(), Some("2026-12-07T09:00:30.5Z"));
        assert_eq!(utc_time_from_input("2026-12-07T09:00:00+01:00").as_deref(), Some("2026-12-07T09:00:00+01:00"));
        assert_eq!(utc_time_from_input("tomorrow").as_deref(), Some("tomorrow"));
    }

    #[test]
    fn durations_read_like_durations() {
        use super::readable_duration;
        assert_eq!(readable_duration(38), "38 ms");
        assert_eq!(readable_duration(-5), "0 ms");
        assert_eq!(readable_duration(4_200), "4.2 s");
        assert_eq!(readable_duration(185_000), "3 min");
        assert_eq!(readable_duration(7_300_000), "2 h");
    }
}
