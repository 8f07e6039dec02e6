//! How the Tests tab and the Deployments tab put evaluations into words: a version's
//! standing at the gate (`GET /prompts/{name}/gate`), a run in one line, a run's
//! progress events, and a comparison's changes. Plain functions, tested without a
//! browser.

use serde_json::Value;

/// The gated environments of a `GET /prompts/{name}/gate` answer.
pub fn gated_environments(gate: &Value) -> Vec<String> {
    gate["environments"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_owned)).collect()
}

/// `production`, `staging and production`, `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A version's standing (an item of the gate answer's `versions`) in one sentence:
/// `v1.2: evaluation passed 14/14, may deploy to production`, or
/// `v2: has not been evaluated; production needs a passing evaluation`.
pub fn gate_sentence(standing: &Value, gate: &Value) -> String {
    let version = standing["version_string"].as_str().unwrap_or_default();
    let reason = standing["reason"].as_str().unwrap_or_default();
    // The server's reason may start with the version ("v2 has not been evaluated").
    let reason = reason.strip_prefix(version).and_then(|r| r.strip_prefix(' ')).unwrap_or(reason);
    let environments = gated_environments(gate);
    if environments.is_empty() {
        return format!("{version}: {reason}; no environment needs a passing evaluation on this server");
    }
    let envs = and_list(&environments);
    if standing["open"] == true {
        return format!("{version}: {reason}, may deploy to {envs}");
    }
    let verb = if environments.len() == 1 { "needs" } else { "need" };
    let rate = gate["pass_rate"].as_u64().unwrap_or(100);
    let what = if rate >= 100 {
        "a passing evaluation".to_owned()
    } else {
        format!("an evaluation in which {rate}% of the cases pass")
    };
    format!("{version}: {reason}; {envs} {verb} {what}")
}

/// The standing of `version` in a gate answer, if the answer lists it.
pub fn standing_of<'a>(gate: &'a Value, version: &str) -> Option<&'a Value> {
    gate["versions"].as_array()?.iter().find(|v| v["version_string"] == version)
}

/// A run in a few words: `3 of 3 cases passed`, `running`, with what limits it.
pub fn run_summary(run: &Value) -> String {
    match run["status"].as_str().unwrap_or_default() {
        "running" => "running…".to_owned(),
        "interrupted" => "interrupted: the server stopped while it ran".to_owned(),
        _ => {
            let (passed, total) = (run["passed"].as_i64().unwrap_or(0), run["total"].as_i64().unwrap_or(0));
            let mut s = format!("{passed} of {total} {} passed", if total == 1 { "case" } else { "cases" });
            if let Some(why) = run["stopped"].as_str() {
                s.push_str(&format!("; stopped early: {why}"));
            }
            if run["current"] == false {
                s.push_str(" (before the test cases last changed)");
            }
            s
        }
    }
}

/// A run as a choice in a list: `v2 · 2026-11-25 10:00:00 UTC · 3 of 3 cases passed`.
pub fn run_label(run: &Value) -> String {
    format!(
        "{} · {} · {}",
        run["version_string"].as_str().unwrap_or_default(),
        crate::readable_time(run["started_at"].as_str().unwrap_or_default()),
        run_summary(run)
    )
}

/// The newest run of `version` among `runs` (newest first, as the server lists them).
pub fn latest_of<'a>(runs: &'a [Value], version: &str) -> Option<&'a Value> {
    runs.iter().find(|r| r["version_string"] == version)
}

/// One step of a run, read from its progress stream (`GET /evaluations/{id}/events`).
#[derive(Debug, Clone, PartialEq)]
pub enum RunProgress {
    /// A case finished: `done` of `total` have; `outcome` as the run records it.
    Case { done: u64, total: u64, outcome: Value },
    /// The run is recorded.
    Completed { passed: u64, total: u64, stopped: Option<String> },
}

impl RunProgress {
    /// The step an event carries; `None` for anything else (a keep-alive, say).
    pub fn parse(event: &str, data: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(data).ok()?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        match event {
            "case" => Some(RunProgress::Case { done: n("done"), total: n("total"), outcome: v["outcome"].clone() }),
            "completed" => Some(RunProgress::Completed {
                passed: n("passed"),
                total: n("total"),
                stopped: v["stopped"].as_str().map(str::to_owned),
            }),
            _ => None,
        }
    }
}

/// `2 of 5 cases done`.
pub fn progress_line(done: u64, total: u64) -> String {
    format!("{done} of {total} {} done", if total == 1 { "case" } else { "cases" })
}

/// A case's `change` between two runs, in words.
pub fn change_label(change: &str) -> &'static str {
    match change {
        "fixed" => "fixed",
        "broke" => "broke",
        "passing" => "passes in both",
        "failing" => "fails in both",
        "added" => "only in the second run",
        "removed" => "only in the first run",
        _ => "",
    }
}

/// An outcome's check (`{kind, passed, reason}`) in one line: `contains: passed — found "refund"`.
pub fn check_line(check: &Value) -> String {
    let verdict = if check["passed"] == true { "passed" } else { "failed" };
    let reason = check["reason"].as_str().unwrap_or_default();
    let kind = check["kind"].as_str().unwrap_or_default();
    if reason.is_empty() {
        format!("{kind}: {verdict}")
    } else {
        format!("{kind}: {verdict} — {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gate(envs: &[&str], rate: u64) -> Value {
        json!({"environments": envs, "pass_rate": rate, "versions": []})
    }

    #[test]
    fn an_open_gate_says_where_the_version_may_go() {
        let open = json!({"version_string": "v1.2", "open": true, "reason": "evaluation passed 14/14", "cases": []});
        assert_eq!(
            gate_sentence(&open, &gate(&["production"], 100)),
            "v1.2: evaluation passed 14/14, may deploy to production"
        );
        assert_eq!(
            gate_sentence(&open, &gate(&["staging", "production"], 100)),
            "v1.2: evaluation passed 14/14, may deploy to staging and production"
        );
    }

    #[test]
    fn a_closed_gate_says_what_is_missing() {
        let never =
            json!({"version_string": "v2", "open": false, "reason": "v2 has not been evaluated", "cases": ["a"]});
        assert_eq!(
            gate_sentence(&never, &gate(&["production"], 100)),
            "v2: has not been evaluated; production needs a passing evaluation"
        );
        assert_eq!(
            gate_sentence(&never, &gate(&["eu", "us"], 80)),
            "v2: has not been evaluated; eu and us need an evaluation in which 80% of the cases pass"
        );
        assert_eq!(
            gate_sentence(&never, &gate(&[], 100)),
            "v2: has not been evaluated; no environment needs a passing evaluation on this server"
        );
        // A version whose name starts like another's is not cut short.
        let v20 = json!({"version_string": "v2", "open": false, "reason": "v20 is odd"});
        assert!(gate_sentence(&v20, &gate(&["production"], 100)).starts_with("v2: v20 is odd;"));
    }

    #[test]
    fn runs_read_in_a_few_words() {
        let done = json!({"status": "completed", "passed": 2, "total": 3, "current": true, "version_string": "v1",
            "started_at": "2026-11-25T10:00:00.5Z"});
        assert_eq!(run_summary(&done), "2 of 3 cases passed");
        assert_eq!(run_label(&done), "v1 · 2026-11-25 10:00:00 UTC · 2 of 3 cases passed");
        let old = json!({"status": "completed", "passed": 1, "total": 1, "current": false, "stopped": "token limit"});
        assert_eq!(
            run_summary(&old),
            "1 of 1 case passed; stopped early: token limit (before the test cases last changed)"
        );
        assert_eq!(run_summary(&json!({"status": "running"})), "running…");
        assert!(run_summary(&json!({"status": "interrupted"})).starts_with("interrupted"));
        let runs = [
            json!({"version_string": "v2", "n": 3}),
            json!({"version_string": "v1", "n": 2}),
            json!({"version_string": "v2", "n": 1}),
        ];
        assert_eq!(latest_of(&runs, "v2").unwrap()["n"], 3);
        assert!(latest_of(&runs, "v3").is_none());
    }

    #[test]
    fn progress_events_are_read_by_their_name() {
        let case = RunProgress::parse(
            "case",
            r#"{"type":"case","done":1,"total":2,"outcome":{"case_name":"a","passed":true}}"#,
        );
        assert_eq!(
            case,
            Some(RunProgress::Case { done: 1, total: 2, outcome: json!({"case_name": "a", "passed": true}) })
        );
        let end = RunProgress::parse("completed", r#"{"type":"completed","passed":1,"total":2,"stopped":null}"#);
        assert_eq!(end, Some(RunProgress::Completed { passed: 1, total: 2, stopped: None }));
        assert_eq!(RunProgress::parse("case", "not json"), None);
        assert_eq!(RunProgress::parse("other", "{}"), None);
        assert_eq!(progress_line(2, 5), "2 of 5 cases done");
        assert_eq!(progress_line(0, 1), "0 of 1 case done");
    }

    #[test]
    fn checks_and_changes_read_as_words() {
        assert_eq!(
            check_line(&json!({"kind": "contains", "passed": false, "reason": "no \"refund\""})),
            "contains: failed — no \"refund\""
        );
        assert_eq!(check_line(&json!({"kind": "is_json", "passed": true, "reason": ""})), "is_json: passed");
        assert_eq!(change_label("broke"), "broke");
        assert_eq!(change_label("added"), "only in the second run");
        assert_eq!(and_list(&["a".into(), "b".into(), "c".into()]), "a, b and c");
    }
}
