//! Test cases, evaluation runs and the deploy gate.
//!
//! A prompt keeps its test cases on its own stream: each names the variables to render
//! a version with (and, for a chat prompt, messages to add after the version's own) and
//! what the answer must satisfy. An evaluation runs every case against one version
//! through an LLM provider and records the outcome per case. Where an environment is
//! gated, a version goes live there only with a completed evaluation of that version in
//! which enough cases passed, run against the test cases as they are now.
//!
//! Because cases, evaluations and deploys share the prompt's stream, the gate is
//! decided on the stream's exact state under optimistic concurrency: a test case
//! changed while a deploy is decided makes one of the two appends conflict and be
//! decided again, never both pass against a stale view.
//!
//! ```
//! use promptos_core::evaluation::{Expectation, TestCase, CaseName};
//! let case: TestCase = serde_json::from_str(r#"{
//!     "case_id": "00000000-0000-0000-0000-000000000001",
//!     "name": "refund question",
//!     "variables": {"customer": "Ada"},
//!     "expectations": [{"kind": "contains", "value": "refund", "case_insensitive": true},
//!                      {"kind": "max_chars", "max": 400}]
//! }"#).unwrap();
//! assert_eq!(case.name, CaseName::parse("refund question").unwrap());
//! assert!(matches!(case.expectations[1], Expectation::MaxChars { max: 400 }));
//! ```

pub mod events;
pub mod gate;
pub mod suite;

use crate::content::ChatMessage;
use crate::names::InvalidInput;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub use events::DeployGate;
pub use gate::GatePolicy;
pub use suite::{EvaluationCommand, EvaluationSummary, RunningEvaluation, Suite};

/// Most test cases a prompt may have.
pub const MAX_CASES: usize = 200;
/// Most expectations one case may have.
pub const MAX_EXPECTATIONS: usize = 20;
/// Most bytes of a case's variables and extra messages, as JSON.
pub const MAX_CASE_INPUT_BYTES: usize = 64 * 1024;
/// Most bytes of an expectation's text (a value, a pattern, a rubric, a schema as JSON).
pub const MAX_EXPECTATION_BYTES: usize = 16 * 1024;
/// The largest `max_chars` an expectation may name.
pub const MAX_CHARS_LIMIT: u32 = 1_000_000;
/// Most characters of an answer kept in an evaluation's record.
pub const ANSWER_EXCERPT_CHARS: usize = 500;

/// A test case's name: 1 to 100 characters, no control characters, unique in its prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CaseName(String);

impl CaseName {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let s = s.trim();
        let len = s.chars().count();
        if len == 0 || len > 100 {
            return Err(InvalidInput::new("name", format!("a test case's name is 1 to 100 characters (got {len})")));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidInput::new("name", "a test case's name may not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CaseName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CaseName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CaseName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What an answer must satisfy. Each is checked on its own and passes or fails with a
/// reason; a case passes when all of its expectations do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Expectation {
    /// The answer contains `value`.
    Contains {
        value: String,
        #[serde(default)]
        case_insensitive: bool,
    },
    /// The answer does not contain `value`.
    NotContains {
        value: String,
        #[serde(default)]
        case_insensitive: bool,
    },
    /// The answer matches the regular expression somewhere (Rust `regex` syntax).
    Regex { pattern: String },
    /// The answer is at most `max` characters long (1 to 1,000,000).
    MaxChars {
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
        max: u32,
    },
    /// The answer is a JSON document (a fenced ```json block counts).
    IsJson,
    /// The answer is JSON that satisfies the JSON Schema.
    JsonSchema {
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        schema: serde_json::Value,
    },
    /// The answer equals `value` (surrounding whitespace aside).
    Equals {
        value: String,
        #[serde(default)]
        case_insensitive: bool,
    },
    /// A judge model reads the answer and the rubric and says pass or fail, with why.
    Judge { rubric: String },
}

impl Expectation {
    /// The kind's name as the wire has it.
    pub fn kind(&self) -> &'static str {
        match self {
            Expectation::Contains { .. } => "contains",
            Expectation::NotContains { .. } => "not_contains",
            Expectation::Regex { .. } => "regex",
            Expectation::MaxChars { .. } => "max_chars",
            Expectation::IsJson => "is_json",
            Expectation::JsonSchema { .. } => "json_schema",
            Expectation::Equals { .. } => "equals",
            Expectation::Judge { .. } => "judge",
        }
    }

    /// The shape checks that need no regex engine or schema compiler (the server
    /// compiles patterns and schemas too): `field` is where the expectation sits.
    pub fn check_shape(&self, field: &'static str) -> Result<(), InvalidInput> {
        let text_len = match self {
            Expectation::Contains { value, .. }
            | Expectation::NotContains { value, .. }
            | Expectation::Equals { value, .. } => {
                if value.is_empty() && !matches!(self, Expectation::Equals { .. }) {
                    return Err(InvalidInput::new(field, format!("a {} expectation needs a value", self.kind())));
                }
                value.len()
            }
            Expectation::Regex { pattern } if pattern.is_empty() => {
                return Err(InvalidInput::new(field, "a regex expectation needs a pattern"))
            }
            Expectation::Regex { pattern } => pattern.len(),
            Expectation::MaxChars { max } if !(1..=MAX_CHARS_LIMIT).contains(max) => {
                return Err(InvalidInput::new(field, format!("max_chars is 1 to {MAX_CHARS_LIMIT} (got {max})")));
            }
            Expectation::MaxChars { .. } | Expectation::IsJson => 0,
            Expectation::JsonSchema { schema } => {
                if !schema.is_object() {
                    return Err(InvalidInput::new(field, "a JSON Schema is an object"));
                }
                schema.to_string().len()
            }
            Expectation::Judge { rubric } if rubric.trim().is_empty() => {
                return Err(InvalidInput::new(field, "a judge expectation needs a rubric"));
            }
            Expectation::Judge { rubric } => rubric.len(),
        };
        if text_len > MAX_EXPECTATION_BYTES {
            return Err(InvalidInput::new(
                field,
                format!("an expectation holds at most {MAX_EXPECTATION_BYTES} bytes (got {text_len})"),
            ));
        }
        Ok(())
    }

    /// A judge calls a model; every other kind is checked on the answer alone.
    pub fn needs_model(&self) -> bool {
        matches!(self, Expectation::Judge { .. })
    }
}

/// A test case: the inputs to render a version with, and what its answer must satisfy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Chosen by the server when the case is added.
    pub case_id: Uuid,
    pub name: CaseName,
    /// The template variables (any JSON value; strings in most cases).
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// For a chat prompt: messages sent after the version's own (a user's turn, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<ChatMessage>,
    pub expectations: Vec<Expectation>,
}

impl TestCase {
    /// Checks the limits and each expectation's shape.
    pub fn check(&self) -> Result<(), InvalidInput> {
        if self.expectations.len() > MAX_EXPECTATIONS {
            return Err(InvalidInput::new(
                "expectations",
                format!("a test case has at most {MAX_EXPECTATIONS} expectations (got {})", self.expectations.len()),
            ));
        }
        for e in &self.expectations {
            e.check_shape("expectations")?;
        }
        let input = serde_json::to_string(&self.variables).map(|s| s.len()).unwrap_or(0)
            + serde_json::to_string(&self.messages).map(|s| s.len()).unwrap_or(0);
        if input > MAX_CASE_INPUT_BYTES {
            return Err(InvalidInput::new(
                "variables",
                format!("a test case's variables and messages hold at most {MAX_CASE_INPUT_BYTES} bytes (got {input})"),
            ));
        }
        Ok(())
    }
}

/// How one expectation fared on one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckOutcome {
    /// The expectation's kind (`contains`, `judge`, …).
    pub kind: String,
    pub passed: bool,
    /// Why it passed or failed; for a judge, the judge's own reasoning.
    pub reason: String,
}

/// How one test case fared in an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseOutcome {
    pub case_id: Uuid,
    pub case_name: String,
    pub passed: bool,
    /// The answer's first characters (at most 500).
    pub answer_excerpt: String,
    /// Why the case failed before its expectations were checked: it did not render, or
    /// the provider gave no answer (a timeout, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub checks: Vec<CheckOutcome>,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
}

/// The first [`ANSWER_EXCERPT_CHARS`] characters of an answer, marked when cut.
pub fn excerpt(answer: &str) -> String {
    let mut chars = answer.char_indices();
    match chars.nth(ANSWER_EXCERPT_CHARS) {
        Some((at, _)) => format!("{}…", &answer[..at]),
        None => answer.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_read_their_wire_form_and_refuse_what_cannot_be_checked() {
        let e: Expectation = serde_json::from_str(r#"{"kind": "is_json"}"#).unwrap();
        assert_eq!(e, Expectation::IsJson);
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"kind":"is_json"}"#);
        assert!(serde_json::from_str::<Expectation>(r#"{"kind": "sounds_nice"}"#).is_err());
        let empty = Expectation::Contains { value: String::new(), case_insensitive: false };
        assert!(empty.check_shape("expectations").unwrap_err().message.contains("needs a value"));
        assert!(Expectation::MaxChars { max: 0 }.check_shape("x").is_err());
        let schema = Expectation::JsonSchema { schema: serde_json::json!("string") };
        assert!(schema.check_shape("x").is_err());
        assert!(Expectation::Equals { value: String::new(), case_insensitive: false }.check_shape("x").is_ok());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(CaseName::parse("  refund  ").unwrap().as_str(), "refund");
        assert!(CaseName::parse("").is_err());
        assert!(CaseName::parse(&"x".repeat(101)).is_err());
        assert!(CaseName::parse("a\nb").is_err());
    }

    #[test]
    fn excerpts_cut_long_answers_on_a_character_boundary() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(600);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), ANSWER_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
