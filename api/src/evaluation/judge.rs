//! LLM-as-judge: a model reads the rubric, what was asked and the answer, and says pass
//! or fail with its reasoning, which the evaluation keeps.

use crate::llm::{self, Completion, Message, Policy, Provider};
use promptos_core::evaluation::CheckOutcome;
use serde::Deserialize;

/// Most characters of the question and of the answer shown to the judge.
const SHOWN_CHARS: usize = 8_000;

fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(SHOWN_CHARS).collect();
    if out.len() < text.len() {
        out.push_str("\n[…cut]");
    }
    out
}

/// The judge's instructions: the rubric, the question and the answer, and the one
/// shape of reply it must give.
pub fn judge_prompt(rubric: &str, question: &str, answer: &str) -> String {
    format!(
        "You are grading an AI assistant's answer against a rubric. Judge only what the rubric asks.\n\n\
         RUBRIC:\n{rubric}\n\nWHAT THE ASSISTANT WAS ASKED:\n{}\n\nTHE ANSWER:\n{}\n\n\
         Reply with JSON only, no other text: {{\"verdict\": \"pass\" or \"fail\", \"reasoning\": \"one or two sentences\"}}",
        shown(question),
        shown(answer)
    )
}

#[derive(Deserialize)]
struct Verdict {
    verdict: String,
    #[serde(default)]
    reasoning: String,
}

/// Reads a judge's reply: the JSON asked for (also inside a fence or surrounded by
/// text), or a reply that starts with PASS or FAIL. Anything else fails the check, with
/// the reply quoted, rather than passing it.
pub fn read_verdict(reply: &str) -> CheckOutcome {
    let check = |passed: bool, reason: String| CheckOutcome { kind: "judge".into(), passed, reason };
    let json = reply.find('{').zip(reply.rfind('}')).filter(|(a, b)| a < b).map(|(a, b)| &reply[a..=b]);
    if let Some(v) = json.and_then(|j| serde_json::from_str::<Verdict>(j).ok()) {
        match v.verdict.trim().to_ascii_lowercase().as_str() {
            "pass" => return check(true, v.reasoning),
            "fail" => return check(false, v.reasoning),
            _ => {}
        }
    }
    let head = reply.trim_start().to_ascii_uppercase();
    if head.starts_with("PASS") {
        return check(true, reply.trim().to_owned());
    }
    if head.starts_with("FAIL") {
        return check(false, reply.trim().to_owned());
    }
    let quoted: String = reply.chars().take(200).collect();
    check(false, format!("the judge's reply could not be read as pass or fail: {quoted:?}"))
}

/// Asks the judge; the answer and the tokens it used.
pub async fn judge(
    provider: &dyn Provider,
    http: &reqwest::Client,
    policy: Policy,
    model: &str,
    rubric: &str,
    question: &str,
    answer: &str,
) -> (CheckOutcome, u64, u64) {
    let messages = [Message { role: "user".into(), content: judge_prompt(rubric, question, answer) }];
    let completion = Completion { model, messages: &messages, config: None };
    match llm::complete(provider, http, policy, &completion).await {
        Ok(reply) => (read_verdict(&reply.text), reply.input_tokens.unwrap_or(0), reply.output_tokens.unwrap_or(0)),
        Err(e) => (
            CheckOutcome { kind: "judge".into(), passed: false, reason: format!("the judge gave no verdict: {e}") },
            0,
            0,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_from_json_or_a_leading_word_and_anything_else_fails() {
        let v = read_verdict("```json\n{\"verdict\": \"pass\", \"reasoning\": \"Two sentences, names Acme.\"}\n```");
        assert!(v.passed && v.reason == "Two sentences, names Acme.");
        let v = read_verdict("Sure! {\"verdict\": \"FAIL\", \"reasoning\": \"Four sentences.\"}");
        assert!(!v.passed && v.reason == "Four sentences.");
        assert!(read_verdict("PASS - it is short").passed);
        assert!(!read_verdict("fail: too long").passed);
        let unclear = read_verdict("It depends.");
        assert!(!unclear.passed && unclear.reason.contains("could not be read"), "{unclear:?}");
    }

    #[test]
    fn the_prompt_carries_the_rubric_question_and_answer() {
        let p = judge_prompt("names the company", "Who are you?", "We are Acme.");
        assert!(p.contains("RUBRIC:\nnames the company") && p.contains("Who are you?") && p.contains("We are Acme."));
    }
}
