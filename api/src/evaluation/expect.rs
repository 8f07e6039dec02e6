//! Checking an answer against a test case's expectations. Patterns and schemas are
//! compiled when a case is saved ([`compile`]), so a broken one is refused with a 422
//! that says which expectation, not discovered halfway through an evaluation.

use promptos_core::evaluation::{CheckOutcome, Expectation};
use promptos_core::names::InvalidInput;

/// Most bytes a compiled regular expression may take (a pattern like `(a{1000}){1000}`
/// is refused rather than compiled).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// An expectation ready to check: its pattern or schema compiled.
pub enum Compiled {
    /// Checked on the answer alone.
    Plain(Expectation),
    Regex(regex::Regex),
    Schema(Box<jsonschema::Validator>),
    /// Needs a judge model ([`crate::evaluation::judge`]).
    Judge(String),
}

/// Compiles a case's expectations; the error names the expectation (`expectations[2]`).
pub fn compile(expectations: &[Expectation]) -> Result<Vec<Compiled>, InvalidInput> {
    expectations
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let at = |message: String| InvalidInput::new("expectations", format!("expectations[{i}]: {message}"));
            e.check_shape("expectations").map_err(|e| at(e.message))?;
            Ok(match e {
                Expectation::Regex { pattern } => Compiled::Regex(
                    regex::RegexBuilder::new(pattern)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| at(format!("the pattern does not compile: {e}")))?,
                ),
                Expectation::JsonSchema { schema } => Compiled::Schema(Box::new(
                    jsonschema::validator_for(schema).map_err(|e| at(format!("the JSON Schema is not valid: {e}")))?,
                )),
                Expectation::Judge { rubric } => Compiled::Judge(rubric.clone()),
                other => Compiled::Plain(other.clone()),
            })
        })
        .collect()
}

/// The JSON in an answer: the whole answer, or the body of a fenced ```json block.
fn json_in(answer: &str) -> Result<serde_json::Value, String> {
    let trimmed = answer.trim();
    let body = trimmed
        .strip_prefix("```")
        .and_then(|rest| rest.strip_suffix("```"))
        .map(|inner| {
            inner.split_once('\n').map_or(inner, |(first, body)| if first.trim().contains(' ') { inner } else { body })
        })
        .unwrap_or(trimmed);
    serde_json::from_str(body.trim()).map_err(|e| format!("the answer is not JSON ({e})"))
}

fn outcome(kind: &str, passed: bool, reason: String) -> CheckOutcome {
    CheckOutcome { kind: kind.to_owned(), passed, reason }
}

fn quote(s: &str) -> String {
    let short: String = s.chars().take(80).collect();
    if short.len() < s.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

/// Checks `answer` against an expectation that needs no model (a judge is checked by
/// the caller, which has one).
pub fn check(expectation: &Compiled, answer: &str) -> Option<CheckOutcome> {
    let fold = |s: &str, insensitive: bool| if insensitive { s.to_lowercase() } else { s.to_owned() };
    Some(match expectation {
        Compiled::Plain(Expectation::Contains { value, case_insensitive }) => {
            let found = fold(answer, *case_insensitive).contains(&fold(value, *case_insensitive));
            let reason =
                if found { format!("contains {}", quote(value)) } else { format!("does not contain {}", quote(value)) };
            outcome("contains", found, reason)
        }
        Compiled::Plain(Expectation::NotContains { value, case_insensitive }) => {
            let found = fold(answer, *case_insensitive).contains(&fold(value, *case_insensitive));
            let reason =
                if found { format!("contains {}", quote(value)) } else { format!("does not contain {}", quote(value)) };
            outcome("not_contains", !found, reason)
        }
        Compiled::Plain(Expectation::Equals { value, case_insensitive }) => {
            let equal = fold(answer.trim(), *case_insensitive) == fold(value.trim(), *case_insensitive);
            let reason = if equal {
                "equals the expected answer".into()
            } else {
                format!("expected {}, got {}", quote(value), quote(answer.trim()))
            };
            outcome("equals", equal, reason)
        }
        Compiled::Plain(Expectation::MaxChars { max }) => {
            let n = answer.chars().count();
            outcome("max_chars", n <= *max as usize, format!("{n} characters (at most {max})"))
        }
        Compiled::Plain(Expectation::IsJson) => match json_in(answer) {
            Ok(_) => outcome("is_json", true, "the answer is JSON".into()),
            Err(why) => outcome("is_json", false, why),
        },
        Compiled::Regex(re) => {
            let found = re.is_match(answer);
            let reason =
                if found { format!("matches /{}/", re.as_str()) } else { format!("does not match /{}/", re.as_str()) };
            outcome("regex", found, reason)
        }
        Compiled::Schema(validator) => match json_in(answer) {
            Err(why) => outcome("json_schema", false, why),
            Ok(value) => {
                let errors: Vec<String> =
                    validator.iter_errors(&value).take(3).map(|e| format!("{} at {}", e, e.instance_path())).collect();
                if errors.is_empty() {
                    outcome("json_schema", true, "the answer satisfies the schema".into())
                } else {
                    outcome("json_schema", false, errors.join("; "))
                }
            }
        },
        Compiled::Judge(_) | Compiled::Plain(Expectation::Judge { .. }) => return None,
        Compiled::Plain(Expectation::Regex { .. } | Expectation::JsonSchema { .. }) => {
            unreachable!("compile() turns patterns and schemas into their compiled forms")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(e: Expectation, answer: &str) -> CheckOutcome {
        let compiled = compile(&[e]).unwrap();
        check(&compiled[0], answer).unwrap()
    }

    #[test]
    fn each_kind_passes_and_fails_with_a_reason() {
        let contains = |v: &str, ci| Expectation::Contains { value: v.into(), case_insensitive: ci };
        assert!(one(contains("refund", false), "Your refund is on its way").passed);
        assert!(!one(contains("Refund", false), "your refund").passed);
        assert!(one(contains("Refund", true), "your refund").passed);
        let not = Expectation::NotContains { value: "sorry".into(), case_insensitive: true };
        let failed = one(not.clone(), "Sorry for that");
        assert!(!failed.passed && failed.reason.contains("contains \"sorry\""), "{failed:?}");
        assert!(one(not, "All done").passed);
        let re = Expectation::Regex { pattern: r"order #\d{5}".into() };
        assert!(one(re.clone(), "About order #12345.").passed);
        assert!(!one(re, "About your order.").passed);
        assert!(one(Expectation::MaxChars { max: 5 }, "héllo").passed);
        let long = one(Expectation::MaxChars { max: 4 }, "hello");
        assert!(!long.passed && long.reason == "5 characters (at most 4)");
        assert!(one(Expectation::IsJson, "```json\n{\"a\": 1}\n```").passed);
        assert!(!one(Expectation::IsJson, "{a: 1}").passed);
        let eq = Expectation::Equals { value: "Yes".into(), case_insensitive: true };
        assert!(one(eq.clone(), " yes\n").passed);
        assert!(!one(eq, "yes, sure").passed);
    }

    #[test]
    fn json_schema_names_what_does_not_fit_and_where() {
        let schema = json!({"type": "object", "required": ["sentiment"],
            "properties": {"sentiment": {"enum": ["positive", "negative"]}}});
        let e = Expectation::JsonSchema { schema };
        assert!(one(e.clone(), r#"{"sentiment": "positive"}"#).passed);
        let wrong = one(e.clone(), r#"{"sentiment": "meh"}"#);
        assert!(!wrong.passed && wrong.reason.contains("/sentiment"), "{wrong:?}");
        let prose = one(e, "It is positive.");
        assert!(!prose.passed && prose.reason.contains("not JSON"), "{prose:?}");
    }

    #[test]
    fn broken_patterns_and_schemas_are_refused_with_their_place() {
        let bad = compile(&[Expectation::IsJson, Expectation::Regex { pattern: "(unclosed".into() }]);
        let e = bad.err().expect("refused");
        assert!(e.message.starts_with("expectations[1]: the pattern does not compile"), "{}", e.message);
        let schema = Expectation::JsonSchema { schema: json!({"type": "no-such-type"}) };
        let e = compile(&[schema]).err().expect("refused");
        assert!(e.message.starts_with("expectations[0]: the JSON Schema is not valid"), "{}", e.message);
        assert!(compile(&[Expectation::Regex { pattern: "(a{1000}){1000}".into() }]).is_err());
    }
}
