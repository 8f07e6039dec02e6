//! What the expectation and test-case forms read, and how an expectation reads back:
//! plain functions, tested without a browser. A form holds one [`ExpectationDraft`] per
//! expectation; [`ExpectationDraft::parse`] turns it into the server's own
//! [`Expectation`], checked with the server's shape rules (patterns and schemas are
//! compiled by the server when the case is saved).

use promptos_core::evaluation::{CaseName, Expectation};
use serde_json::Value;
use std::collections::BTreeMap;

/// Every kind, as the wire names it, with its label in the form.
pub const KINDS: [(&str, &str); 8] = [
    ("contains", "Contains"),
    ("not_contains", "Does not contain"),
    ("equals", "Equals"),
    ("regex", "Matches a regular expression"),
    ("max_chars", "At most N characters"),
    ("is_json", "Is JSON"),
    ("json_schema", "Satisfies a JSON Schema"),
    ("judge", "Judged by a model against a rubric"),
];

/// One expectation as the form holds it: its kind, the one text field every kind but
/// `is_json` has (a value, a pattern, a number, a schema or a rubric), and the
/// case-insensitive box of the text comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectationDraft {
    pub kind: String,
    pub text: String,
    pub case_insensitive: bool,
}

impl Default for ExpectationDraft {
    fn default() -> Self {
        Self { kind: "contains".into(), text: String::new(), case_insensitive: false }
    }
}

impl ExpectationDraft {
    /// The label of the text field for `kind`; `None` where the kind has none.
    pub fn field_label(kind: &str) -> Option<&'static str> {
        match kind {
            "contains" => Some("Text the answer contains"),
            "not_contains" => Some("Text the answer must not contain"),
            "equals" => Some("The whole answer"),
            "regex" => Some("Pattern (Rust regex syntax)"),
            "max_chars" => Some("Most characters"),
            "json_schema" => Some("JSON Schema"),
            "judge" => Some("Rubric"),
            _ => None,
        }
    }

    /// Whether `kind` has the case-insensitive box.
    pub fn compares_text(kind: &str) -> bool {
        matches!(kind, "contains" | "not_contains" | "equals")
    }

    /// Whether the field holds several lines (a schema, a rubric).
    pub fn is_long(kind: &str) -> bool {
        matches!(kind, "json_schema" | "judge")
    }

    /// The expectation the form describes, or what is wrong with it in a sentence.
    pub fn parse(&self) -> Result<Expectation, String> {
        let text = self.text.clone();
        let case_insensitive = self.case_insensitive;
        let expectation = match self.kind.as_str() {
            "contains" => Expectation::Contains { value: text, case_insensitive },
            "not_contains" => Expectation::NotContains { value: text, case_insensitive },
            "equals" => Expectation::Equals { value: text, case_insensitive },
            "regex" => Expectation::Regex { pattern: text },
            "max_chars" => {
                let max = text
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("Most characters: a whole number, such as 400 (not {:?}).", text.trim()))?;
                Expectation::MaxChars { max }
            }
            "is_json" => Expectation::IsJson,
            "json_schema" => {
                let schema: Value =
                    serde_json::from_str(&text).map_err(|e| format!("JSON Schema: not valid JSON ({e})."))?;
                Expectation::JsonSchema { schema }
            }
            "judge" => Expectation::Judge { rubric: text },
            other => return Err(format!("{other:?} is not a kind of expectation.")),
        };
        expectation.check_shape("expectations").map_err(|e| sentence(&e.message))?;
        Ok(expectation)
    }

    /// The form's view of an expectation (to edit a saved case).
    pub fn of(expectation: &Expectation) -> Self {
        let draft = |text: &str, case_insensitive: bool| ExpectationDraft {
            kind: expectation.kind().to_owned(),
            text: text.to_owned(),
            case_insensitive,
        };
        match expectation {
            Expectation::Contains { value, case_insensitive }
            | Expectation::NotContains { value, case_insensitive }
            | Expectation::Equals { value, case_insensitive } => draft(value, *case_insensitive),
            Expectation::Regex { pattern } => draft(pattern, false),
            Expectation::MaxChars { max } => draft(&max.to_string(), false),
            Expectation::IsJson => draft("", false),
            Expectation::JsonSchema { schema } => {
                draft(&serde_json::to_string_pretty(schema).unwrap_or_default(), false)
            }
            Expectation::Judge { rubric } => draft(rubric, false),
        }
    }
}

/// Every draft parsed, or the first problem, numbered as the form shows it.
pub fn parse_all(drafts: &[ExpectationDraft]) -> Result<Vec<Expectation>, String> {
    drafts.iter().enumerate().map(|(i, d)| d.parse().map_err(|e| format!("Expectation {}: {e}", i + 1))).collect()
}

/// A message from the server's rules as a sentence: capital first, full stop last.
fn sentence(message: &str) -> String {
    let mut s = message.to_owned();
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// An expectation in a few words: `contains "refund" (any case)`, `at most 400
/// characters`, `judge: names the company`.
pub fn describe(expectation: &Expectation) -> String {
    let case = |ci: bool| if ci { " (any case)" } else { "" };
    match expectation {
        Expectation::Contains { value, case_insensitive } => format!("contains {value:?}{}", case(*case_insensitive)),
        Expectation::NotContains { value, case_insensitive } => {
            format!("does not contain {value:?}{}", case(*case_insensitive))
        }
        Expectation::Equals { value, case_insensitive } => format!("equals {value:?}{}", case(*case_insensitive)),
        Expectation::Regex { pattern } => format!("matches /{pattern}/"),
        Expectation::MaxChars { max } => format!("at most {max} characters"),
        Expectation::IsJson => "is JSON".to_owned(),
        Expectation::JsonSchema { schema } => format!("satisfies the JSON Schema {schema}"),
        Expectation::Judge { rubric } => format!("judge: {rubric}"),
    }
}

/// A variable's value as typed: text, unless it starts with `[` or `{` and is valid JSON
/// (a list or an object for a template that loops over it).
pub fn variable_value(typed: &str) -> Value {
    let trimmed = typed.trim_start();
    if trimmed.starts_with(['[', '{']) {
        if let Ok(v) = serde_json::from_str::<Value>(typed) {
            return v;
        }
    }
    Value::String(typed.to_owned())
}

/// A variable's value as its field shows it (the inverse of [`variable_value`]).
pub fn variable_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The variables to send from the fields shown (`names`, with what each holds).
pub fn variables(fields: &[(String, String)]) -> BTreeMap<String, Value> {
    fields.iter().map(|(name, typed)| (name.clone(), variable_value(typed))).collect()
}

/// The variables to offer for a prompt: those of its versions (newest first), then any
/// a case already has that no version reads any more; each once.
pub fn variable_names<'a>(
    versions: impl IntoIterator<Item = &'a Value>,
    case_variables: Option<&Value>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    };
    for version in versions {
        for v in version["variables"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            add(v);
        }
    }
    for n in case_variables.and_then(Value::as_object).into_iter().flat_map(|o| o.keys()) {
        add(n);
    }
    names
}

/// A test case's name checked by the server's rule, as a sentence; `None` when it is fine.
pub fn case_name_problem(name: &str) -> Option<String> {
    CaseName::parse(name).err().map(|e| sentence(&e.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(kind: &str, text: &str, ci: bool) -> ExpectationDraft {
        ExpectationDraft { kind: kind.into(), text: text.into(), case_insensitive: ci }
    }

    #[test]
    fn each_kind_of_form_becomes_its_expectation() {
        assert_eq!(
            draft("contains", "refund", true).parse(),
            Ok(Expectation::Contains { value: "refund".into(), case_insensitive: true })
        );
        assert_eq!(
            draft("not_contains", "sorry", false).parse(),
            Ok(Expectation::NotContains { value: "sorry".into(), case_insensitive: false })
        );
        assert_eq!(
            draft("equals", "", false).parse(),
            Ok(Expectation::Equals { value: "".into(), case_insensitive: false })
        );
        assert_eq!(draft("regex", r"#\d+", false).parse(), Ok(Expectation::Regex { pattern: r"#\d+".into() }));
        assert_eq!(draft("max_chars", " 400 ", false).parse(), Ok(Expectation::MaxChars { max: 400 }));
        assert_eq!(draft("is_json", "ignored", false).parse(), Ok(Expectation::IsJson));
        assert_eq!(
            draft("json_schema", r#"{"type": "object"}"#, false).parse(),
            Ok(Expectation::JsonSchema { schema: json!({"type": "object"}) })
        );
        assert_eq!(draft("judge", "is polite", false).parse(), Ok(Expectation::Judge { rubric: "is polite".into() }));
    }

    #[test]
    fn a_form_that_cannot_be_checked_says_why() {
        assert_eq!(draft("contains", "", false).parse().unwrap_err(), "A contains expectation needs a value.");
        assert!(draft("max_chars", "many", false).parse().unwrap_err().starts_with("Most characters: a whole number"));
        let zero = draft("max_chars", "0", false).parse().unwrap_err();
        assert!(zero.starts_with("Max_chars") && zero.ends_with('.'), "{zero}");
        assert!(draft("json_schema", "{type: object}", false)
            .parse()
            .unwrap_err()
            .starts_with("JSON Schema: not valid JSON"));
        assert!(draft("json_schema", "\"string\"", false).parse().unwrap_err().contains("is an object"));
        assert!(draft("judge", "  ", false).parse().unwrap_err().contains("needs a rubric"));
        assert!(draft("sounds_nice", "", false).parse().is_err());
        let all = parse_all(&[draft("is_json", "", false), draft("regex", "", false)]);
        assert_eq!(all.unwrap_err(), "Expectation 2: A regex expectation needs a pattern.");
    }

    #[test]
    fn a_saved_expectation_fills_the_form_it_came_from() {
        for (kind, label) in KINDS {
            let text = match kind {
                "max_chars" => "12",
                "json_schema" => "{\n  \"type\": \"object\"\n}",
                "is_json" => "",
                _ => "some text",
            };
            let original = draft(kind, text, ExpectationDraft::compares_text(kind));
            let parsed = original.parse().unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(ExpectationDraft::of(&parsed), original, "{label}");
            assert_eq!(ExpectationDraft::field_label(kind).is_none(), kind == "is_json");
        }
    }

    #[test]
    fn expectations_read_as_a_few_words() {
        let ci = Expectation::Contains { value: "refund".into(), case_insensitive: true };
        assert_eq!(describe(&ci), "contains \"refund\" (any case)");
        assert_eq!(describe(&Expectation::MaxChars { max: 400 }), "at most 400 characters");
        assert_eq!(describe(&Expectation::Regex { pattern: "^Hi".into() }), "matches /^Hi/");
        assert_eq!(describe(&Expectation::Judge { rubric: "names the company".into() }), "judge: names the company");
    }

    #[test]
    fn variables_are_text_unless_they_are_a_json_list_or_object() {
        assert_eq!(variable_value("Ada"), json!("Ada"));
        assert_eq!(variable_value("42"), json!("42"));
        assert_eq!(variable_value("[1, 2]"), json!([1, 2]));
        assert_eq!(variable_value("{\"a\": 1}"), json!({"a": 1}));
        assert_eq!(variable_value("[not json"), json!("[not json"));
        for v in [json!("Ada"), json!([1, 2]), json!({"a": 1})] {
            assert_eq!(variable_value(&variable_text(&v)), v);
        }
        let fields = [("name".to_owned(), "Ada".to_owned()), ("items".to_owned(), "[\"a\"]".to_owned())];
        assert_eq!(serde_json::to_value(variables(&fields)).unwrap(), json!({"items": ["a"], "name": "Ada"}));
    }

    #[test]
    fn the_variables_offered_are_every_versions_then_the_cases_own() {
        let versions = [json!({"variables": ["customer", "question"]}), json!({"variables": ["customer", "tone"]})];
        let case = json!({"legacy": "x", "customer": "Ada"});
        assert_eq!(variable_names(&versions, Some(&case)), ["customer", "question", "tone", "legacy"]);
        assert!(variable_names(&[], None).is_empty());
    }

    #[test]
    fn case_names_follow_the_servers_rule() {
        assert_eq!(case_name_problem("refund question"), None);
        assert!(case_name_problem("").unwrap().starts_with("A test case's name is 1 to 100 characters"));
        assert!(case_name_problem("a\nb").is_some());
    }
}
