//! A version rendered with a test case's (or the playground's) inputs: its includes
//! resolved as served in an environment, every variable filled (a missing one is an
//! error, not an empty string), the result within the size limit. What a provider is
//! sent, and what the render-only checks look at.

use promptos_core::content::{ChatMessage, ChatRole, ModelConfig};
use promptos_core::template::MAX_RESOLVED_BYTES;
use promptos_projector::views::VersionRow;
use promptos_store::Db;
use serde::Serialize;
use std::collections::BTreeMap;

/// Render steps one template may take (loops included): enough for any prompt, not
/// for a runaway one.
const FUEL: u64 = 1_000_000;

/// A rendered version: the messages to send, and the model configuration it carries.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rendered {
    /// `text` or `chat`.
    pub kind: String,
    /// A text prompt's rendered text (also sent as the one `user` message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What a provider is sent, in order: a text prompt's text as a user message, or a
    /// chat prompt's messages; then a test case's extra messages.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<ChatMessage>,
    /// The version's model configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<ModelConfig>,
    /// Prompts pulled in by includes, and the version of each.
    pub includes: BTreeMap<String, String>,
}

/// Why a version does not render with the given inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Includes(String),
    #[error("{0}")]
    Template(String),
    #[error("the rendered prompt is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env
}

/// Renders one template; `place` says where it sits (`text`, `messages[1]`).
fn fill(
    env: &minijinja::Environment<'_>,
    template: &str,
    variables: &BTreeMap<String, serde_json::Value>,
    place: &str,
) -> Result<String, RenderError> {
    env.render_str(template, variables).map_err(|e| {
        let why = match e.kind() {
            minijinja::ErrorKind::UndefinedError => {
                let missing = e.detail().map(str::to_owned).unwrap_or_else(|| e.to_string());
                format!("a variable has no value ({missing}); give every variable the template uses")
            }
            _ => e.to_string(),
        };
        RenderError::Template(format!("{place}: {why}"))
    })
}

async fn resolved(
    db: &Db,
    environment: &str,
    prompt: &str,
    template: &str,
) -> Result<(String, BTreeMap<String, String>), RenderError> {
    use promptos_projector::includes::IncludeError;
    match promptos_projector::includes::resolve(db, environment, None, prompt, template).await {
        Ok(r) => Ok((r.text, r.includes)),
        Err(IncludeError::Database(e)) => Err(RenderError::Unavailable(e.to_string())),
        Err(e) => Err(RenderError::Includes(e.to_string())),
    }
}

/// Renders `version` of `prompt` with `variables`, its includes resolved as served in
/// `environment`, and `extra` messages appended (as given, not rendered).
pub async fn render(
    db: &Db,
    prompt: &str,
    environment: &str,
    version: &VersionRow,
    variables: &BTreeMap<String, serde_json::Value>,
    extra: &[ChatMessage],
) -> Result<Rendered, RenderError> {
    let env = self::environment();
    let config: Option<ModelConfig> = version.config.as_deref().and_then(|c| serde_json::from_str(c).ok());
    let mut includes = BTreeMap::new();
    let (text, mut messages) = match version.messages.as_deref().filter(|_| version.kind == "chat") {
        Some(stored) => {
            let stored: Vec<ChatMessage> = serde_json::from_str(stored)
                .map_err(|e| RenderError::Template(format!("the stored messages do not read: {e}")))?;
            let mut out = Vec::with_capacity(stored.len());
            for (i, m) in stored.iter().enumerate() {
                let (template, pulled) = resolved(db, environment, prompt, &m.content).await?;
                includes.extend(pulled);
                out.push(ChatMessage {
                    role: m.role,
                    content: fill(&env, &template, variables, &format!("messages[{i}]"))?,
                });
            }
            (None, out)
        }
        None => {
            let (template, pulled) = resolved(db, environment, prompt, &version.text).await?;
            includes = pulled;
            let text = fill(&env, &template, variables, "text")?;
            (Some(text.clone()), vec![ChatMessage { role: ChatRole::User, content: text }])
        }
    };
    messages.extend(extra.iter().cloned());
    let size: usize = messages.iter().map(|m| m.content.len()).sum();
    if size > MAX_RESOLVED_BYTES {
        return Err(RenderError::TooLarge { size, limit: MAX_RESOLVED_BYTES });
    }
    Ok(Rendered { kind: version.kind.clone(), text, messages, config, includes })
}

/// The model a run asks: the one requested, else the version's configured `model`,
/// else the provider's default.
pub fn choose_model(requested: Option<&str>, config: Option<&ModelConfig>, provider_default: &str) -> String {
    requested
        .filter(|m| !m.trim().is_empty())
        .or_else(|| config.and_then(|c| c.get("model")).and_then(|m| m.as_str()))
        .unwrap_or(provider_default)
        .to_owned()
}
