//! What the Time travel page asks for and shows, as plain tested functions: what was
//! live in an environment at a moment (`GET /deployed/?environment=&as_of=`) and what
//! changed between two moments (`GET /audit/diff`), in the product's words.

use crate::audit::encode;
use crate::environment_matrix::Cell;
use serde_json::Value;

/// The address of what was live in `environment` at `as_of` (RFC 3339).
pub fn deployed_path(environment: &str, as_of: &str) -> String {
    format!("/deployed/?environment={}&as_of={}", encode(environment), encode(as_of))
}

/// The address of the changes in `environment` from `from` to `to` (now when `None`).
pub fn diff_path(environment: &str, from: &str, to: Option<&str>) -> String {
    let to = to.map(|t| format!("&to={}", encode(t))).unwrap_or_default();
    format!("/audit/diff?environment={}&from={}{to}", encode(environment), encode(from))
}

/// What a deployed prompt served: its version, or an A/B test's split
/// (`A/B test v1 50 % · v2 50 %`); `—` for nothing (`null`).
pub fn serving(deployed: &Value) -> String {
    match Cell::of(deployed) {
        Cell::Split(s) => format!("A/B test {s}"),
        cell => cell.text(),
    }
}

/// A kind of change, as the page names it.
pub fn change_label(change: &str) -> String {
    match change {
        "added" => "Added".to_owned(),
        "removed" => "Removed".to_owned(),
        "version_changed" => "Version changed".to_owned(),
        "split_changed" => "Split changed".to_owned(),
        other => other.replace('_', " "),
    }
}

/// One change (`{prompt_name, change, before, after}`) in a line: `v1 → v2`,
/// `v1 → A/B test v1 50 % · v2 50 %`, `now v1`, `was v1`.
pub fn describe_change(change: &Value) -> String {
    let (before, after) = (&change["before"], &change["after"]);
    match (before.is_null(), after.is_null()) {
        (true, false) => format!("now {}", serving(after)),
        (false, true) => format!("was {}", serving(before)),
        (false, false) => format!("{} → {}", serving(before), serving(after)),
        (true, true) => String::new(),
    }
}

/// The version a change row opens: the one serving after it, or, for a prompt no
/// longer deployed, the one that served before.
pub fn change_version(change: &Value) -> Option<String> {
    [&change["after"], &change["before"]]
        .into_iter()
        .find_map(|d| d["version_string"].as_str().filter(|v| !v.is_empty()).map(str::to_owned))
}

/// One event behind a change, in a line: `#12 VersionDeployed by user:ann`.
pub fn event_line(e: &Value) -> String {
    format!("#{} {} by {}", e["position"], e["type"].as_str().unwrap_or_default(), e["actor"].as_str().unwrap_or("?"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployed(version: &str) -> Value {
        json!({"prompt_name": "faq", "environment": "staging", "version_string": version, "position": 3})
    }

    fn split() -> Value {
        json!({"prompt_name": "faq", "environment": "staging", "version_string": "v1", "position": 9,
            "experiment": {"experiment_id": "x", "variants": [
                {"version_string": "v1", "weight": 80}, {"version_string": "v2", "weight": 20}]}})
    }

    #[test]
    fn moments_and_environments_are_encoded_into_the_addresses() {
        assert_eq!(
            deployed_path("staging", "2026-12-07T08:00:00Z"),
            "/deployed/?environment=staging&as_of=2026-12-07T08%3A00%3A00Z"
        );
        assert_eq!(
            diff_path("staging", "2026-12-07T08:00:00Z", None),
            "/audit/diff?environment=staging&from=2026-12-07T08%3A00%3A00Z"
        );
        assert_eq!(
            diff_path("prod", "2026-12-07T08:00:00Z", Some("2026-12-08T08:00:00+01:00")),
            "/audit/diff?environment=prod&from=2026-12-07T08%3A00%3A00Z&to=2026-12-08T08%3A00%3A00%2B01%3A00"
        );
    }

    #[test]
    fn a_split_reads_as_an_ab_test() {
        assert_eq!(serving(&deployed("v1")), "v1");
        assert_eq!(serving(&split()), "A/B test v1 80 % · v2 20 %");
        assert_eq!(serving(&Value::Null), "—");
    }

    #[test]
    fn each_kind_of_change_reads_in_one_line() {
        let change = |kind: &str, before: Value, after: Value| json!({"prompt_name": "faq", "change": kind, "before": before, "after": after, "events": []});
        let added = change("added", Value::Null, deployed("v1"));
        assert_eq!((change_label("added"), describe_change(&added)), ("Added".into(), "now v1".into()));
        let removed = change("removed", deployed("v1"), Value::Null);
        assert_eq!((change_label("removed"), describe_change(&removed)), ("Removed".into(), "was v1".into()));
        assert_eq!(change_version(&removed).as_deref(), Some("v1"));
        let bumped = change("version_changed", deployed("v1"), deployed("v2"));
        assert_eq!(describe_change(&bumped), "v1 → v2");
        assert_eq!(change_version(&bumped).as_deref(), Some("v2"));
        let split = change("split_changed", deployed("v1"), split());
        assert_eq!(change_label("split_changed"), "Split changed");
        assert_eq!(describe_change(&split), "v1 → A/B test v1 80 % · v2 20 %");
        assert_eq!(change_label("something_new"), "something new");
    }

    #[test]
    fn an_event_behind_a_change_reads_in_one_line() {
        let e = json!({"position": 12, "type": "VersionDeployed", "actor": "user:ann"});
        assert_eq!(event_line(&e), "#12 VersionDeployed by user:ann");
    }
}
