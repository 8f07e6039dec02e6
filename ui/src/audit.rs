//! What the Audit page asks for and shows, as plain tested functions: the log's filters
//! as a `GET /events` address, what an event concerns (a prompt, an environment, a
//! change request), and `GET /audit/verify` in sentences.

use promptos_core::events::Event;
use serde_json::Value;

/// Percent-encodes a query value as JavaScript's `encodeURIComponent` does.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The log's filters as the page holds them. Empty fields filter nothing; `from` and
/// `to` are RFC 3339 already (see [`crate::moment`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilters {
    /// Any of these types.
    pub types: Vec<String>,
    pub actor: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub prompt: String,
    pub environment: String,
}

impl EventFilters {
    /// The address of a page of `GET /events`: newest first for the page, oldest first
    /// for an export (the order the log was written in).
    pub fn path(&self, cursor: Option<&str>, limit: u32, newest_first: bool) -> String {
        let order = if newest_first { "desc" } else { "asc" };
        let mut path = format!("/events?order={order}&limit={limit}");
        if !self.types.is_empty() {
            let types: Vec<String> = self.types.iter().map(|t| encode(t)).collect();
            path.push_str(&format!("&type={}", types.join(",")));
        }
        let fields = [
            ("actor", self.actor.trim()),
            ("prompt", self.prompt.trim()),
            ("environment", self.environment.trim()),
            ("from", self.from.as_deref().unwrap_or_default()),
            ("to", self.to.as_deref().unwrap_or_default()),
        ];
        for (key, value) in fields {
            if !value.is_empty() {
                path.push_str(&format!("&{key}={}", encode(value)));
            }
        }
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", encode(c)));
        }
        path
    }

    /// True when every event is shown.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
            && [&self.actor, &self.prompt, &self.environment].iter().all(|f| f.trim().is_empty())
            && self.from.is_none()
            && self.to.is_none()
    }

    /// The name of an export file: `promptos-events.jsonl`, or `promptos-events-filtered.csv`.
    pub fn file_name(&self, extension: &str) -> String {
        let filtered = if self.is_empty() { "" } else { "-filtered" };
        format!("promptos-events{filtered}.{extension}")
    }
}

/// Every event type, prompts' first (the ones auditors look for most), for the filter.
pub fn event_types() -> Vec<&'static str> {
    let rest = Event::TYPES.iter().filter(|t| !Event::PROMPT_TYPES.contains(t));
    Event::PROMPT_TYPES.iter().chain(rest).copied().collect()
}

/// The prompt an event concerns: the name in the payload of a prompt's own event.
pub fn event_prompt(e: &Value) -> Option<String> {
    let kind = e["type"].as_str()?;
    if !Event::PROMPT_TYPES.contains(&kind) {
        return None;
    }
    e["payload"]["name"].as_str().filter(|n| !n.is_empty()).map(str::to_owned)
}

/// The environment an event concerns, when it concerns one.
pub fn event_environment(e: &Value) -> Option<String> {
    e["payload"]["environment"].as_str().filter(|n| !n.is_empty()).map(str::to_owned)
}

/// The change request an event belongs to: its own events, or the one whose apply
/// produced it.
pub fn event_change_request(e: &Value) -> Option<String> {
    let kind = e["type"].as_str().unwrap_or_default();
    let own = kind.starts_with("ChangeRequest").then(|| e["payload"]["request_id"].as_str()).flatten();
    own.or_else(|| e["change_request"].as_str()).filter(|id| !id.is_empty()).map(str::to_owned)
}

/// One line of the verification panel: intact or not, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub sentence: String,
}

/// The latest checkpoint that matches the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestCheckpoint {
    pub position: i64,
    pub time: String,
    pub key_id: String,
}

/// `GET /audit/verify` for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub ok: bool,
    pub chain: Finding,
    pub read_models: Finding,
    /// Whether the server signs checkpoints (it has a signing key).
    pub checkpoints_enabled: bool,
    pub checkpoints_ok: bool,
    pub latest: Option<LatestCheckpoint>,
    /// One sentence per checkpoint that does not match the log.
    pub failures: Vec<String>,
    /// The server's own statement of what the checkpoints prove, shown as it is.
    pub statement: String,
    pub checked_at: String,
}

impl Verification {
    pub fn of(report: &Value) -> Verification {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let chain = &report["chain"];
        let checked = chain["events_checked"].as_i64().unwrap_or(0);
        let chain = match &chain["first_bad"] {
            Value::Null => Finding {
                ok: true,
                sentence: format!(
                    "Intact: {checked} event{} checked, each linked to the one before by its hash.",
                    if checked == 1 { "" } else { "s" }
                ),
            },
            bad => Finding {
                ok: false,
                sentence: format!("Broken at position {}: {}", bad["position"], text(&bad["reason"])),
            },
        };
        let models = &report["read_models"];
        let read_models = match (&models["first_difference"], models["ok"] == true) {
            (Value::Null, true) => Finding {
                ok: true,
                sentence: format!(
                    "Intact: they equal a fresh replay of the log up to position {}.",
                    models["checkpoint"].as_i64().unwrap_or(0)
                ),
            },
            (Value::Null, false) => Finding { ok: false, sentence: "They differ from a replay of the log.".into() },
            (d, _) => {
                let at = d["position"].as_i64().map(|p| format!(" (event {p})")).unwrap_or_default();
                Finding {
                    ok: false,
                    sentence: format!(
                        "They differ from a replay of the log: {} {}{at}: expected {}, found {}.",
                        text(&d["table"]),
                        text(&d["key"]),
                        text(&d["expected"]),
                        text(&d["found"])
                    ),
                }
            }
        };
        let checkpoints = &report["checkpoints"];
        let latest = checkpoints["latest"].as_object().map(|l| LatestCheckpoint {
            position: l.get("position").and_then(Value::as_i64).unwrap_or(0),
            time: l.get("time").map(text).unwrap_or_default(),
            key_id: l.get("key_id").map(text).unwrap_or_default(),
        });
        let failures = checkpoints["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| format!("Position {} (key {}): {}", f["position"], text(&f["key_id"]), text(&f["reason"])))
            .collect();
        Verification {
            ok: report["ok"] == true,
            chain,
            read_models,
            checkpoints_enabled: checkpoints["enabled"] == true,
            checkpoints_ok: checkpoints["ok"] == true,
            latest,
            failures,
            statement: text(&checkpoints["statement"]),
            checked_at: text(&report["checked_at"]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_become_the_query_of_get_events() {
        let all = EventFilters::default();
        assert_eq!(all.path(None, 100, true), "/events?order=desc&limit=100");
        assert!(all.is_empty());
        let some = EventFilters {
            types: vec!["VersionDeployed".into(), "ExperimentStarted".into()],
            actor: " user:ann ".into(),
            from: Some("2026-12-07T08:00:00Z".into()),
            to: None,
            prompt: "greeting".into(),
            environment: "".into(),
        };
        assert!(!some.is_empty());
        assert_eq!(
            some.path(Some("42"), 500, false),
            "/events?order=asc&limit=500&type=VersionDeployed,ExperimentStarted&actor=user%3Aann\
             &prompt=greeting&from=2026-12-07T08%3A00%3A00Z&cursor=42"
        );
        assert_eq!(some.file_name("csv"), "promptos-events-filtered.csv");
        assert_eq!(all.file_name("jsonl"), "promptos-events.jsonl");
        // Blank text filters nothing.
        assert!(EventFilters { actor: "  ".into(), ..Default::default() }.is_empty());
    }

    #[test]
    fn values_are_encoded_as_encode_uri_component_does() {
        assert_eq!(encode("a b&c=d+e/ü"), "a%20b%26c%3Dd%2Be%2F%C3%BC");
        assert_eq!(encode("keep-_.!~*'()"), "keep-_.!~*'()");
    }

    #[test]
    fn the_filter_lists_every_event_type_once_prompts_first() {
        let types = event_types();
        assert_eq!(types.len(), Event::TYPES.len());
        assert_eq!(types[0], "PromptCreated");
        assert!(types.contains(&"UserCreated"));
    }

    #[test]
    fn an_event_says_which_prompt_environment_and_change_request_it_concerns() {
        let deploy = json!({"type": "VersionDeployed", "change_request": "cr-1",
            "payload": {"name": "greeting", "environment": "staging", "version_string": "v2"}});
        assert_eq!(event_prompt(&deploy).as_deref(), Some("greeting"));
        assert_eq!(event_environment(&deploy).as_deref(), Some("staging"));
        assert_eq!(event_change_request(&deploy).as_deref(), Some("cr-1"));
        // A user's or an API key's name is not a prompt.
        let user = json!({"type": "UserCreated", "payload": {"username": "ann"}});
        let key = json!({"type": "ApiKeyCreated", "payload": {"name": "bot", "environments": ["staging"]}});
        assert_eq!(event_prompt(&user), None);
        assert_eq!(event_prompt(&key), None);
        assert_eq!(event_environment(&key), None);
        let opened =
            json!({"type": "ChangeRequestOpened", "payload": {"request_id": "cr-9", "environment": "production"}});
        assert_eq!(event_change_request(&opened).as_deref(), Some("cr-9"));
        assert_eq!(event_prompt(&opened), None);
    }

    #[test]
    fn an_intact_log_with_checkpoints_reads_as_such() {
        let v = Verification::of(&json!({"ok": true, "checked_at": "2026-12-07T08:00:00.000000Z",
            "chain": {"events_checked": 12, "first_bad": null},
            "read_models": {"ok": true, "checkpoint": 12, "first_difference": null},
            "checkpoints": {"enabled": true, "ok": true, "checked": 2, "failures": [],
                "latest": {"position": 12, "time": "2026-12-07T07:59:00Z", "key_id": "0a1b2c3d"},
                "statement": "Events 1 to 12 are exactly those signed."}}));
        assert!(v.ok && v.chain.ok && v.read_models.ok && v.checkpoints_enabled && v.checkpoints_ok);
        assert_eq!(v.chain.sentence, "Intact: 12 events checked, each linked to the one before by its hash.");
        assert_eq!(v.read_models.sentence, "Intact: they equal a fresh replay of the log up to position 12.");
        assert_eq!(
            v.latest,
            Some(LatestCheckpoint { position: 12, time: "2026-12-07T07:59:00Z".into(), key_id: "0a1b2c3d".into() })
        );
        assert_eq!(v.statement, "Events 1 to 12 are exactly those signed.");
    }

    #[test]
    fn a_broken_log_says_where() {
        let v = Verification::of(&json!({"ok": false,
            "chain": {"events_checked": 5, "first_bad": {"position": 3, "event_id": "e", "reason": "hash mismatch"}},
            "read_models": {"ok": false, "checkpoint": 5, "first_difference":
                {"table": "rm_prompts", "key": "p1", "position": 4, "expected": "a", "found": "b"}},
            "checkpoints": {"enabled": true, "ok": false, "latest": null,
                "failures": [{"position": 4, "key_id": "0a1b2c3d", "reason": "the head hash differs"}],
                "statement": "1 of 1 checkpoints do not match the log."}}));
        assert!(!v.ok && !v.chain.ok && !v.read_models.ok && !v.checkpoints_ok);
        assert_eq!(v.chain.sentence, "Broken at position 3: hash mismatch");
        assert_eq!(
            v.read_models.sentence,
            "They differ from a replay of the log: rm_prompts p1 (event 4): expected a, found b."
        );
        assert_eq!(v.failures, ["Position 4 (key 0a1b2c3d): the head hash differs"]);
        assert_eq!(v.latest, None);
    }

    #[test]
    fn without_a_signing_key_checkpoints_are_off() {
        let v = Verification::of(&json!({"ok": true, "chain": {"events_checked": 1, "first_bad": null},
            "read_models": {"ok": true, "checkpoint": 1, "first_difference": null},
            "checkpoints": {"enabled": false, "ok": true, "checked": 0, "latest": null, "failures": [],
                "statement": "Checkpoints are off (no PROMPTOS_SIGNING_KEY_FILE)."}}));
        assert!(!v.checkpoints_enabled);
        assert_eq!(v.chain.sentence, "Intact: 1 event checked, each linked to the one before by its hash.");
        assert_eq!(v.statement, "Checkpoints are off (no PROMPTOS_SIGNING_KEY_FILE).");
    }
}
