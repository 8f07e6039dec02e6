//! Prompt templates: minijinja syntax (`{{ customer_name }}`), checked when a version
//! is created so that a broken template never reaches production.

use serde::Serialize;
use std::collections::BTreeSet;

/// A template that parsed, with the variables it reads from its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    variables: Vec<String>,
}

/// A syntax error with the place it was found (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("template syntax error at line {line}, column {column}: {message}")]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Names minijinja provides itself; a template that calls `range(3)` does not expect
/// the caller to pass `range`.
const BUILTIN_GLOBALS: &[&str] = &["range", "dict", "namespace", "debug", "loop", "self", "super"];

impl Template {
    /// The largest template accepted, in bytes.
    pub const MAX_BYTES: usize = 256 * 1024;
    /// The most distinct variables a template may use.
    pub const MAX_VARIABLES: usize = 100;

    /// Parses `text` and extracts the variables it uses, sorted by name.
    ///
    /// ```
    /// let t = promptos_core::template::Template::parse("Hello {{ customer_name }}!").unwrap();
    /// assert_eq!(t.variables(), ["customer_name"]);
    /// let err = promptos_core::template::Template::parse("Hi\n{{ oops").unwrap_err();
    /// assert_eq!(err.line, 2);
    /// ```
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.len() > Self::MAX_BYTES {
            return Err(TemplateError {
                line: 1,
                column: 1,
                message: format!("the template is {} bytes; the limit is {} bytes", text.len(), Self::MAX_BYTES),
            });
        }
        let mut env = minijinja::Environment::new();
        env.set_debug(true);
        let template = env.template_from_str(text).map_err(|e| locate(text, &e))?;
        let variables: BTreeSet<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !BUILTIN_GLOBALS.contains(&v.as_str()))
            .collect();
        if variables.len() > Self::MAX_VARIABLES {
            return Err(TemplateError {
                line: 1,
                column: 1,
                message: format!(
                    "the template uses {} variables; the limit is {}",
                    variables.len(),
                    Self::MAX_VARIABLES
                ),
            });
        }
        Ok(Self { text: text.to_owned(), variables: variables.into_iter().collect() })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn variables(&self) -> &[String] {
        &self.variables
    }
}

/// Turns minijinja's byte offset into the line and column a person sees in an editor.
fn locate(source: &str, err: &minijinja::Error) -> TemplateError {
    let message = err.detail().map(str::to_owned).unwrap_or_else(|| err.kind().to_string());
    let (line, column) = match err.range() {
        Some(range) => {
            let offset = range.start.min(source.len());
            let before = &source[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        }
        None => (err.line().unwrap_or(1), 1),
    };
    TemplateError { line, column, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_variables_used_by_the_template() {
        let t =
            Template::parse("Hi {{customer_name}}, {% for i in range(3) %}{{ i }}{% endfor %} {{ order.id }}").unwrap();
        assert_eq!(t.variables(), ["customer_name", "order"]);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = Template::parse("line one\nHello {{ name }\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.column > 1, "{err}");
        let err = Template::parse("{% if x %}never closed").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
    }

    #[test]
    fn refuses_templates_with_too_many_variables() {
        let text = |n: usize| (0..n).map(|i| format!("{{{{ v{i} }}}}")).collect::<String>();
        assert_eq!(Template::parse(&text(Template::MAX_VARIABLES)).unwrap().variables().len(), 100);
        let err = Template::parse(&text(Template::MAX_VARIABLES + 1)).unwrap_err();
        assert_eq!(err.message, "the template uses 101 variables; the limit is 100");
    }

    #[test]
    fn refuses_oversized_templates() {
        let big = "x".repeat(Template::MAX_BYTES + 1);
        assert!(Template::parse(&big).unwrap_err().message.contains("limit"));
    }
}
