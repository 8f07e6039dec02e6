//! What the Users and API keys pages check and say about accounts: the password rule as
//! the server applies it, the roles, and what is known about a key's use. Plain
//! functions, tested without a browser.

use serde_json::Value;

/// The roles, weakest first, with what each may do.
pub const ROLES: [(&str, &str); 3] = [
    ("viewer", "reads prompts, deployments and the log"),
    ("editor", "also writes versions and deploys to unprotected environments"),
    ("admin", "also deploys anywhere, approves change requests and manages users, keys and webhooks"),
];

/// A role with its article, as in "you are logged in as an editor".
pub fn with_article(role: &str) -> String {
    let article = if role.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {role}")
}

/// Why the server would refuse `name` as a username, by the server's own rule, as a
/// sentence; `None` for a good one.
pub fn username_problem(name: &str) -> Option<String> {
    promptos_core::names::Username::parse(name).err().map(|e| {
        let m = e.message;
        format!("{}{}.", m[..1].to_uppercase(), &m[1..])
    })
}

/// Why the server would refuse `password`, as it says it (at least 12 characters, at
/// most 512); `None` for an acceptable one.
pub fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    match n {
        0..12 => Some(format!("A password has at least 12 characters ({n} now).")),
        513.. => Some(format!("A password has at most 512 characters ({n} now).")),
        _ => None,
    }
}

/// What the server shows of a key's use: the running SDK instances that report with it
/// (`GET /fleet`, `reported_by` = `api_key:<id>`). The server does not record other
/// calls made with a key, so a key used only by scripts shows no use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub instances: usize,
    /// The latest report of any of them (RFC 3339).
    pub last_seen: String,
}

impl KeyUse {
    /// The use of key `key_id` in a `GET /fleet` answer; `None` when no running instance
    /// reports with it.
    pub fn of(fleet: &Value, key_id: &str) -> Option<KeyUse> {
        let actor = format!("api_key:{key_id}");
        let seen: Vec<&str> = fleet["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["reported_by"] == actor.as_str())
            .map(|i| i["last_seen"].as_str().unwrap_or_default())
            .collect();
        // The server writes these times in one shape (UTC, milliseconds): the latest sorts last.
        let last_seen = seen.iter().max()?.to_string();
        Some(KeyUse { instances: seen.len(), last_seen })
    }

    /// "In use by 2 running instances; last report 2026-11-25 10:00:00 UTC".
    pub fn line(&self) -> String {
        let s = if self.instances == 1 { "" } else { "s" };
        format!(
            "In use by {} running instance{s}; last report {}",
            self.instances,
            crate::readable_time(&self.last_seen)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_read_with_their_article() {
        assert_eq!(with_article("admin"), "an admin");
        assert_eq!(with_article("editor"), "an editor");
        assert_eq!(with_article("viewer"), "a viewer");
    }

    #[test]
    fn usernames_are_checked_by_the_servers_rule() {
        assert_eq!(username_problem("bob.smith@example"), None);
        let upper = username_problem("Bob").unwrap();
        assert!(upper.starts_with("A username may contain only lowercase letters"), "{upper}");
        assert!(upper.ends_with("found 'B'."), "{upper}");
        assert!(username_problem("").unwrap().contains("1 to 64 characters"));
    }

    #[test]
    fn passwords_are_checked_like_the_server_does() {
        assert_eq!(password_problem("long enough pw"), None);
        assert_eq!(password_problem("short").as_deref(), Some("A password has at least 12 characters (5 now)."));
        assert!(password_problem(&"x".repeat(513)).unwrap().contains("at most 512"));
        // Characters, not bytes.
        assert_eq!(password_problem("ééééééééééé"), Some("A password has at least 12 characters (11 now).".into()));
    }

    #[test]
    fn a_key_is_in_use_when_running_instances_report_with_it() {
        let fleet = json!({"instances": [
            {"reported_by": "api_key:0123456789ab", "last_seen": "2026-11-25T10:00:01.500Z"},
            {"reported_by": "api_key:0123456789ab", "last_seen": "2026-11-25T10:00:03.250Z"},
            {"reported_by": "user:admin", "last_seen": "2026-11-25T11:00:00Z"},
        ]});
        let used = KeyUse::of(&fleet, "0123456789ab").unwrap();
        assert_eq!(used, KeyUse { instances: 2, last_seen: "2026-11-25T10:00:03.250Z".into() });
        assert_eq!(used.line(), "In use by 2 running instances; last report 2026-11-25 10:00:03 UTC");
        assert_eq!(KeyUse::of(&fleet, "ffffffffffff"), None);
        assert_eq!(KeyUse::of(&Value::Null, "0123456789ab"), None);
    }
}
