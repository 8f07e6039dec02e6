//! A deployed prompt as the SDK holds it: text compiled once per version.

use crate::error::{Error, Result};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};

/// A prompt version as the server sent it (see [`crate::Prompts::get_template`]).
///
/// ```
/// let t: promptos_sdk::Template = serde_json::from_str(r#"{"prompt_name": "greeting",
///     "environment": "production", "version_string": "v1", "prompt_text": "Hello {{ name }}",
///     "variables": ["name"], "position": 7}"#).unwrap();
/// assert_eq!(t.variables, ["name"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub prompt_name: String,
    pub environment: String,
    pub version_string: String,
    /// The raw template text.
    pub prompt_text: String,
    /// Variables the template reads.
    #[serde(default)]
    pub variables: Vec<String>,
    /// Log position of the deployment that made this version live.
    pub position: i64,
}

/// A template with its compiled form.
pub(crate) struct Compiled {
    pub template: Template,
    pub etag: Option<String>,
    env: Environment<'static>,
}

const NAME: &str = "prompt";

impl Compiled {
    pub fn new(template: Template, etag: Option<String>, strict: bool) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(if strict { UndefinedBehavior::Strict } else { UndefinedBehavior::Lenient });
        // Prompts are text, not HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_template_owned(NAME, template.prompt_text.clone())
            .map_err(|e| Error::Render { prompt: template.prompt_name.clone(), message: e.to_string() })?;
        Ok(Self { template, etag, env })
    }

    pub fn render(&self, vars: &Value, strict: bool) -> Result<String> {
        if strict {
            if let Some(missing) =
                self.template.variables.iter().find(|v| vars.get_attr(v).map_or(true, |x| x.is_undefined()))
            {
                return Err(Error::MissingVariable {
                    prompt: self.template.prompt_name.clone(),
                    name: missing.clone(),
                });
            }
        }
        let template = self.env.get_template(NAME).expect("the template was added at construction");
        template
            .render(vars)
            .map_err(|e| Error::Render { prompt: self.template.prompt_name.clone(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(text: &str, variables: &[&str], strict: bool) -> Compiled {
        let t = Template {
            prompt_name: "p".into(),
            environment: "production".into(),
            version_string: "v1".into(),
            prompt_text: text.into(),
            variables: variables.iter().map(|s| s.to_string()).collect(),
            position: 1,
        };
        Compiled::new(t, None, strict).unwrap()
    }

    #[test]
    fn strict_mode_names_the_missing_variable_and_lenient_mode_renders_empty() {
        let c = compiled("Hi {{ name }} from {{ team }}", &["name", "team"], true);
        let err = c.render(&minijinja::context! { name => "Alex" }, true).unwrap_err();
        assert_eq!(err, Error::MissingVariable { prompt: "p".into(), name: "team".into() });
        let c = compiled("Hi {{ name }} from {{ team }}", &["name", "team"], false);
        assert_eq!(c.render(&minijinja::context! { name => "Alex" }, false).unwrap(), "Hi Alex from ");
    }

    #[test]
    fn text_is_not_html_escaped() {
        let c = compiled("Say {{ x }}", &["x"], true);
        assert_eq!(c.render(&minijinja::context! { x => "<b>&</b>" }, true).unwrap(), "Say <b>&</b>");
    }
}
