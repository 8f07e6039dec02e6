//! What the Playground reads from a run's stream (`POST /playground/run`, server-sent
//! events), and how it names what it saves. Plain functions, tested without a browser.

use serde_json::Value;

/// One event of a playground run.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaygroundEvent {
    /// What the provider is sent (`{kind, text?, messages, config?, includes}`).
    Rendered(Value),
    /// The next piece of the answer.
    Delta(String),
    /// The whole answer with its provider, model, tokens, latency and checks.
    Done(Value),
    /// The provider failed; the message says why.
    Error(String),
}

impl PlaygroundEvent {
    /// The event a stream event carries; `None` for anything else.
    pub fn parse(event: &str, data: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(data).ok()?;
        match event {
            "rendered" => Some(PlaygroundEvent::Rendered(v)),
            "delta" => Some(PlaygroundEvent::Delta(v["text"].as_str().unwrap_or_default().to_owned())),
            "done" => Some(PlaygroundEvent::Done(v)),
            "error" => {
                let message = v["message"].as_str().unwrap_or("the provider failed");
                let code = v["code"].as_str().unwrap_or_default();
                let lead = if code == "llm_timeout" { "The provider took too long" } else { "The provider failed" };
                Some(PlaygroundEvent::Error(format!("{lead}: {message}")))
            }
            _ => None,
        }
    }
}

/// The facts of a finished run in one line:
/// `compatible · fake-model · 12 tokens in, 5 out · first token after 40 ms · 120 ms in all`.
pub fn done_line(done: &Value) -> String {
    let mut parts = vec![
        done["provider"].as_str().unwrap_or_default().to_owned(),
        done["model"].as_str().unwrap_or_default().to_owned(),
    ];
    match (done["input_tokens"].as_u64(), done["output_tokens"].as_u64()) {
        (Some(i), Some(o)) => parts.push(format!("{i} tokens in, {o} out")),
        (None, Some(o)) => parts.push(format!("{o} tokens out")),
        _ => {}
    }
    if let Some(ms) = done["first_token_ms"].as_i64() {
        parts.push(format!("first token after {}", crate::readable_duration(ms)));
    }
    if let Some(ms) = done["latency_ms"].as_i64() {
        parts.push(format!("{} in all", crate::readable_duration(ms)));
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" · ")
}

/// A name for a case saved from the playground: `playground v2`, then `playground v2
/// (2)`, … so it is not one of `taken`.
pub fn suggested_case_name(version: &str, taken: &[String]) -> String {
    let base = format!("playground {version}");
    std::iter::once(base.clone())
        .chain((2..).map(|n| format!("{base} ({n})")))
        .find(|name| !taken.iter().any(|t| t == name))
        .expect("some name is free")
}

/// What a rendered version shows: each message as (role, content).
pub fn rendered_messages(rendered: &Value) -> Vec<(String, String)> {
    rendered["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (m["role"].as_str().unwrap_or_default().to_owned(), m["content"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_events_are_read_by_their_name() {
        assert_eq!(PlaygroundEvent::parse("delta", r#"{"text":"Hel"}"#), Some(PlaygroundEvent::Delta("Hel".into())));
        let done = PlaygroundEvent::parse("done", r#"{"text":"Hello","checks":[]}"#);
        assert_eq!(done, Some(PlaygroundEvent::Done(json!({"text": "Hello", "checks": []}))));
        assert_eq!(
            PlaygroundEvent::parse("error", r#"{"code":"llm_timeout","message":"no answer in 30 s"}"#),
            Some(PlaygroundEvent::Error("The provider took too long: no answer in 30 s".into()))
        );
        assert!(matches!(PlaygroundEvent::parse("rendered", r#"{"kind":"text"}"#), Some(PlaygroundEvent::Rendered(_))));
        assert_eq!(PlaygroundEvent::parse("ping", "{}"), None);
        assert_eq!(PlaygroundEvent::parse("delta", "not json"), None);
    }

    #[test]
    fn a_finished_run_reads_in_one_line() {
        let done = json!({"provider": "compatible", "model": "fake", "input_tokens": 12, "output_tokens": 5,
            "first_token_ms": 40, "latency_ms": 1200});
        assert_eq!(
            done_line(&done),
            "compatible · fake · 12 tokens in, 5 out · first token after 40 ms · 1.2 s in all"
        );
        assert_eq!(done_line(&json!({"provider": "p", "model": "m", "latency_ms": 5})), "p · m · 5 ms in all");
    }

    #[test]
    fn saved_cases_get_a_free_name() {
        assert_eq!(suggested_case_name("v2", &[]), "playground v2");
        let taken = ["playground v2".to_owned(), "playground v2 (2)".to_owned()];
        assert_eq!(suggested_case_name("v2", &taken), "playground v2 (3)");
    }

    #[test]
    fn rendered_messages_are_listed_in_order() {
        let r = json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]});
        assert_eq!(rendered_messages(&r), [("system".into(), "Be brief.".into()), ("user".into(), "Hi".into())]);
    }
}
