//! LLM-assisted optimisation: render the goal's meta-prompt around the original text, ask
//! a provider, check the suggestion keeps the original's `{{variables}}` (asking once
//! more with a reminder when it does not), and hand the expert a suggestion to review.
//!
//! Nothing is appended here. Accepting a suggestion is an ordinary version creation that
//! carries the signed suggestion token, so the version's event records its origin.

pub mod goals;

use crate::config::LlmArgs;
use crate::llm::{self, Completion, Message, Policy, Provider, ProviderError};
use promptos_core::events::VersionOrigin;
use promptos_core::names::VersionString;
use promptos_core::template::Template;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Audience of suggestion tokens.
pub const SUGGESTION_AUDIENCE: &str = "promptos:suggestion";
/// How long a suggestion can be accepted after it was made.
const SUGGESTION_LIFETIME_SECS: i64 = 24 * 3600;

/// The configured providers and how to call them.
pub struct Optimizer {
    providers: Vec<Arc<dyn Provider>>,
    default: Option<String>,
    http: reqwest::Client,
    policy: Policy,
}

/// The variable check of a suggestion against the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default, utoipa::ToSchema)]
pub struct VariableCheck {
    /// In both.
    pub kept: Vec<String>,
    /// In the original, dropped by the suggestion.
    pub missing: Vec<String>,
    /// Invented by the suggestion.
    pub added: Vec<String>,
    /// The suggestion is not a valid template (line, column and reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_error: Option<String>,
}

impl VariableCheck {
    pub fn of(original: &[String], suggestion: &str) -> Self {
        match Template::parse(suggestion) {
            Ok(t) => {
                let before: BTreeSet<&String> = original.iter().collect();
                let after: BTreeSet<&String> = t.variables().iter().collect();
                VariableCheck {
                    kept: before.intersection(&after).map(|s| s.to_string()).collect(),
                    missing: before.difference(&after).map(|s| s.to_string()).collect(),
                    added: after.difference(&before).map(|s| s.to_string()).collect(),
                    template_error: None,
                }
            }
            Err(e) => {
                VariableCheck { missing: original.to_vec(), template_error: Some(e.to_string()), ..Default::default() }
            }
        }
    }

    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.added.is_empty() && self.template_error.is_none()
    }
}

/// What a suggestion token vouches for: the prompt, the origin a version made from it
/// records, and a hash of its text (to tell whether the expert edited it before accepting).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuggestionClaims {
    pub aud: String,
    pub exp: i64,
    pub prompt: String,
    pub text_sha256: String,
    /// As suggested (`edited` is false here).
    pub origin: VersionOrigin,
}

impl SuggestionClaims {
    /// The origin a version created from this suggestion records.
    pub fn origin(&self, accepted_text: &str) -> VersionOrigin {
        VersionOrigin { edited: sha256(accepted_text) != self.text_sha256, ..self.origin.clone() }
    }
}

pub fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A suggestion to review.
pub struct Suggestion {
    pub text: String,
    pub variables: VariableCheck,
    /// 1, or 2 when the first answer failed the variable check.
    pub attempts: u32,
    pub claims: SuggestionClaims,
}

/// Models often wrap an answer in a Markdown fence despite being told not to.
fn unfence(answer: &str) -> String {
    let trimmed = answer.trim();
    if let Some(rest) = trimmed.strip_prefix("```") {
        if let Some(inner) = rest.strip_suffix("```") {
            // Drop the fence's language tag line, if any.
            let inner = match inner.split_once('\n') {
                Some((first, body)) if !first.trim().contains(' ') => body,
                _ => inner,
            };
            return inner.trim().to_owned();
        }
    }
    trimmed.to_owned()
}

fn reminder(check: &VariableCheck, original: &[String]) -> String {
    let list = |v: &[String]| v.iter().map(|n| format!("{{{{ {n} }}}}")).collect::<Vec<_>>().join(", ");
    let mut problems = Vec::new();
    if !check.missing.is_empty() {
        problems.push(format!("it dropped {}", list(&check.missing)));
    }
    if !check.added.is_empty() {
        problems.push(format!("it invented {}", list(&check.added)));
    }
    if let Some(e) = &check.template_error {
        problems.push(format!("it is not a valid template ({e})"));
    }
    let keep = if original.is_empty() {
        "Use no {{ placeholders }} at all.".to_owned()
    } else {
        format!("Keep exactly these placeholders, written as they are: {}; add no others.", list(original))
    };
    format!(
        "\n\nIMPORTANT: a previous answer to this request was unusable because {}. {keep} Return ONLY the rewritten prompt text.",
        problems.join(" and ")
    )
}

/// What one optimisation asks for, already resolved to texts.
pub struct Request<'a> {
    pub prompt: &'a str,
    pub original: &'a str,
    pub from_version: Option<VersionString>,
    pub goal: &'a str,
    pub meta_prompt: &'a str,
    pub meta_prompt_version: Option<VersionString>,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
}

/// Why an optimisation could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("no LLM provider is configured on this server (see the README: LLM providers)")]
    NoProvider,
    #[error("unknown provider {0:?}; configured: {1}")]
    UnknownProvider(String, String),
    #[error("the meta-prompt cannot be rendered: {0}")]
    MetaPrompt(String),
}

#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl Optimizer {
    pub fn new(args: &LlmArgs) -> Self {
        Self::with_providers(llm::configured(args), args.llm_default_provider.clone(), Policy::configured(args))
    }

    pub fn with_providers(providers: Vec<Arc<dyn Provider>>, default: Option<String>, policy: Policy) -> Self {
        Self { providers, default, http: llm::client(), policy }
    }

    pub fn configured(&self) -> bool {
        !self.providers.is_empty()
    }

    /// (name, default model) of each provider, the default first.
    pub fn providers(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> =
            self.providers.iter().map(|p| (p.name().to_owned(), p.default_model().to_owned())).collect();
        if let Some(d) = self.default_provider().map(|p| p.name().to_owned()) {
            out.sort_by_key(|(n, _)| *n != d);
        }
        out
    }

    fn default_provider(&self) -> Option<&Arc<dyn Provider>> {
        match &self.default {
            Some(name) => self.providers.iter().find(|p| p.name() == name).or(self.providers.first()),
            None => self.providers.first(),
        }
    }

    /// The provider called `name`, or the default one; for other callers of the LLM
    /// (evaluations, the playground), which share the optimiser's providers.
    pub fn provider(&self, name: Option<&str>) -> Result<&Arc<dyn Provider>, SetupError> {
        if self.providers.is_empty() {
            return Err(SetupError::NoProvider);
        }
        match name {
            None => self.default_provider().ok_or(SetupError::NoProvider),
            Some(n) => self.providers.iter().find(|p| p.name() == n).ok_or_else(|| {
                let known: Vec<_> = self.providers.iter().map(|p| p.name().to_owned()).collect();
                SetupError::UnknownProvider(n.to_owned(), known.join(", "))
            }),
        }
    }

    /// The HTTP client providers are called with (see [`llm::client`]).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The configured timeouts and retries.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Asks the provider for a suggestion; asks once more when it breaks the variables.
    pub async fn suggest(&self, r: Request<'_>) -> Result<Suggestion, OptimizeError> {
        let provider = self.provider(r.provider)?;
        let model = r.model.filter(|m| !m.trim().is_empty()).unwrap_or(provider.default_model()).to_owned();
        let original_vars = Template::parse(r.original).map(|t| t.variables().to_vec()).unwrap_or_default();
        // Meta-prompts are editable prompts: rendering them may not run away.
        let mut env = minijinja::Environment::new();
        env.set_fuel(Some(1_000_000));
        let rendered = env
            .render_str(r.meta_prompt, minijinja::context! { prompt_text => r.original, goal => r.goal })
            .map_err(|e| SetupError::MetaPrompt(e.to_string()))?;
        let mut attempts = 1;
        let mut text = unfence(&self.ask(provider.as_ref(), &model, rendered.clone()).await?);
        let mut check = VariableCheck::of(&original_vars, &text);
        if !check.ok() {
            attempts = 2;
            let again = format!("{rendered}{}", reminder(&check, &original_vars));
            text = unfence(&self.ask(provider.as_ref(), &model, again).await?);
            check = VariableCheck::of(&original_vars, &text);
        }
        let claims = SuggestionClaims {
            aud: SUGGESTION_AUDIENCE.into(),
            exp: chrono::Utc::now().timestamp() + SUGGESTION_LIFETIME_SECS,
            prompt: r.prompt.to_owned(),
            text_sha256: sha256(&text),
            origin: VersionOrigin {
                goal: r.goal.to_owned(),
                provider: provider.name().to_owned(),
                model,
                from_version: r.from_version,
                meta_prompt_version: r.meta_prompt_version,
                edited: false,
            },
        };
        Ok(Suggestion { text, variables: check, attempts, claims })
    }

    /// The model's answer to the meta-prompt, sent as one user message with the
    /// provider's defaults (a meta-prompt has no model configuration of its own).
    async fn ask(&self, provider: &dyn Provider, model: &str, prompt: String) -> Result<String, ProviderError> {
        let messages = [Message::user(prompt)];
        let c = Completion { model, messages: &messages, config: None };
        Ok(llm::complete(provider, &self.http, self.policy, &c).await?.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn variable_check_names_what_was_kept_dropped_and_invented() {
        let c = VariableCheck::of(&vars(&["customer", "order"]), "Hi {{ customer }}, about {{ ticket }}.");
        assert_eq!((c.kept, c.missing, c.added), (vars(&["customer"]), vars(&["order"]), vars(&["ticket"])));
        assert!(VariableCheck::of(&vars(&["a"]), "{{ a }} and {{ a }}").ok());
        let broken = VariableCheck::of(&vars(&["a"]), "{{ a }");
        assert!(!broken.ok() && broken.template_error.is_some());
    }

    #[test]
    fn fences_around_an_answer_are_removed() {
        assert_eq!(unfence("```text\nHello {{ name }}\n```"), "Hello {{ name }}");
        assert_eq!(unfence("```\nHello\nthere\n```"), "Hello\nthere");
        assert_eq!(unfence("  Plain answer \n"), "Plain answer");
    }

    #[test]
    fn the_reminder_lists_the_placeholders_to_keep() {
        let check = VariableCheck::of(&vars(&["customer"]), "Hello there");
        let r = reminder(&check, &vars(&["customer"]));
        assert!(r.contains("dropped {{ customer }}") && r.contains("Keep exactly these placeholders"), "{r}");
    }

    #[test]
    fn an_edited_suggestion_is_recorded_as_edited() {
        let claims = SuggestionClaims {
            aud: SUGGESTION_AUDIENCE.into(),
            exp: 0,
            prompt: "p".into(),
            text_sha256: sha256("Suggested"),
            origin: VersionOrigin {
                goal: "tone".into(),
                provider: "openai".into(),
                model: "m".into(),
                from_version: Some(VersionString::parse("v1").unwrap()),
                meta_prompt_version: Some(VersionString::parse("v1").unwrap()),
                edited: false,
            },
        };
        assert!(!claims.origin("Suggested").edited);
        assert!(claims.origin("Suggested, then edited").edited);
        assert_eq!(claims.origin("x").from_version.unwrap().as_str(), "v1");
    }
}
