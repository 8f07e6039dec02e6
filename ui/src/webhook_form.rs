//! What the Webhooks page's form reads, and how a webhook's filter reads back: plain
//! functions, tested without a browser.

use promptos_core::webhook::{WebhookFilter, WEBHOOK_TYPES};
use serde_json::Value;

/// The entries of a comma-separated field (`"a, b,,a"` → `["a", "b"]`): trimmed, empty
/// ones dropped, each kept once, in the order typed.
pub fn list_field(field: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in field.split([',', '\n']).map(str::trim).filter(|i| !i.is_empty()) {
        if !items.iter().any(|x| x == item) {
            items.push(item.to_owned());
        }
    }
    items
}

/// The first entry that is neither an event type nor a prefix of some (`prompt.*`), as a
/// sentence; checked by the server's own rule as the admin types.
pub fn event_types_problem(types: &[String]) -> Option<String> {
    types.iter().find_map(|t| {
        let one = WebhookFilter { event_types: vec![t.clone()], ..Default::default() };
        one.check()
            .err()
            .map(|_| format!("{t:?} is not an event type: pick one below, or a prefix ending in * such as prompt.*"))
    })
}

/// The event types a receiver may see, in the order the log names them.
pub fn known_event_types() -> impl Iterator<Item = &'static str> {
    WEBHOOK_TYPES.iter().map(|(_, w)| *w)
}

/// Adds `event_type` to a comma-separated field, unless it is there already.
pub fn with_event_type(field: &str, event_type: &str) -> String {
    let mut items = list_field(field);
    if !items.iter().any(|x| x == event_type) {
        items.push(event_type.to_owned());
    }
    items.join(", ")
}

/// What a webhook (as the API returns it) receives, in one line:
/// `prompt.version.deployed · in production · prompts: bot · tags: billing`.
pub fn filter_summary(webhook: &Value) -> String {
    let list = |key: &str| -> Vec<String> {
        webhook[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let types = list("event_types");
    let mut parts = vec![if types.is_empty() { "Every event".to_owned() } else { types.join(", ") }];
    for (key, label) in [("environments", "in"), ("prompts", "prompts:"), ("tags", "tags:")] {
        let items = list(key);
        if !items.is_empty() {
            parts.push(format!("{label} {}", items.join(", ")));
        }
    }
    parts.join(" · ")
}

/// The start of a receiver's answer, as the attempts table shows it: whitespace folded,
/// at most `max` characters (with `…` when cut).
pub fn response_start(response: &str, max: usize) -> String {
    let folded = response.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= max {
        return folded;
    }
    folded.chars().take(max).chain(['…']).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_comma_separated_field_becomes_its_entries_once_each() {
        assert_eq!(list_field(" prompt.*, ,user.created,prompt.* "), ["prompt.*", "user.created"]);
        assert!(list_field("  ").is_empty());
    }

    #[test]
    fn unknown_event_types_are_named_and_prefixes_are_taken() {
        let ok = list_field("prompt.version.deployed, change_request.*, webhook.*");
        assert_eq!(event_types_problem(&ok), None);
        let bad = list_field("prompt.*, prompt.deployd");
        assert!(event_types_problem(&bad).unwrap().starts_with("\"prompt.deployd\" is not an event type"));
        assert!(event_types_problem(&list_field("nothing.*")).is_some());
        assert!(known_event_types().any(|t| t == "prompt.version.deployed"));
    }

    #[test]
    fn picking_a_type_appends_it_once() {
        assert_eq!(with_event_type("", "prompt.created"), "prompt.created");
        assert_eq!(with_event_type("prompt.created", "user.*"), "prompt.created, user.*");
        assert_eq!(with_event_type("prompt.created, user.*", "user.*"), "prompt.created, user.*");
    }

    #[test]
    fn a_filter_reads_as_one_line() {
        assert_eq!(
            filter_summary(&json!({"event_types": [], "environments": [], "prompts": [], "tags": []})),
            "Every event"
        );
        let narrow = json!({"event_types": ["prompt.version.deployed", "prompt.deployment.rolled_back"],
            "environments": ["production"], "prompts": ["bot"], "tags": ["billing", "eu"]});
        assert_eq!(
            filter_summary(&narrow),
            "prompt.version.deployed, prompt.deployment.rolled_back · in production · prompts: bot · tags: billing, eu"
        );
        assert_eq!(filter_summary(&json!({"tags": ["eu"]})), "Every event · tags: eu");
    }

    #[test]
    fn a_long_answer_is_cut() {
        assert_eq!(response_start("ok", 10), "ok");
        assert_eq!(response_start("{\n  \"fine\": true\n}", 40), "{ \"fine\": true }");
        assert_eq!(response_start("abcdefghij", 4), "abcd…");
    }
}
