//! What a version holds: one template (a text prompt) or an ordered list of chat
//! messages, each a template (a chat prompt), and the model configuration that is
//! versioned, deployed and rolled back together with the wording.

use crate::names::{InvalidInput, PromptName};
use crate::template::{Template, TemplateError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Text prompts are one template; chat prompts a list of messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    #[default]
    Text,
    Chat,
}

impl PromptKind {
    pub fn is_text(&self) -> bool {
        *self == PromptKind::Text
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PromptKind::Text => "text",
            PromptKind::Chat => "chat",
        }
    }
}

/// Who says a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    System,
    User,
    Assistant,
    Tool,
}

impl ChatRole {
    pub fn parse(s: &str, field: &'static str) -> Result<Self, InvalidInput> {
        match s {
            "system" => Ok(ChatRole::System),
            "user" => Ok(ChatRole::User),
            "assistant" => Ok(ChatRole::Assistant),
            "tool" => Ok(ChatRole::Tool),
            other => {
                Err(InvalidInput::new(field, format!("a role is system, user, assistant or tool (got {other:?})")))
            }
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
            ChatRole::Tool => "tool",
        }
    }
}

/// A chat message as stored: its `content` is a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

/// Model parameters chosen with the wording (`model`, `temperature`, `max_tokens`, …):
/// any JSON object.
pub type ModelConfig = serde_json::Map<String, serde_json::Value>;

/// The largest model configuration accepted, as compact JSON.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024;
/// The most messages a chat prompt may have.
pub const MAX_MESSAGES: usize = 100;

/// Checks a model configuration: a JSON object of at most [`MAX_CONFIG_BYTES`].
pub fn check_config(value: serde_json::Value) -> Result<ModelConfig, InvalidInput> {
    let serde_json::Value::Object(map) = value else {
        return Err(InvalidInput::new(
            "config",
            "the model configuration must be a JSON object, e.g. {\"model\": \"gpt-4o\", \"temperature\": 0.2}",
        ));
    };
    let size = serde_json::to_string(&map).map(|s| s.len()).unwrap_or(usize::MAX);
    if size > MAX_CONFIG_BYTES {
        return Err(InvalidInput::new(
            "config",
            format!("the model configuration is {size} bytes as JSON; the limit is {MAX_CONFIG_BYTES}"),
        ));
    }
    Ok(map)
}

/// A version's wording after parsing: every template checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionContent {
    Text(Template),
    Chat(Vec<(ChatRole, Template)>),
}

/// A template error inside a chat message: which message, and where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message {index}: {error}")]
pub struct MessageError {
    pub index: usize,
    pub error: TemplateError,
}

impl VersionContent {
    /// Parses chat messages (role, template text). At least one message, at most
    /// [`MAX_MESSAGES`], and all of them together no larger than one template may be.
    pub fn chat(messages: &[(ChatRole, String)]) -> Result<Self, ContentError> {
        if messages.is_empty() || messages.len() > MAX_MESSAGES {
            return Err(ContentError::Invalid(InvalidInput::new(
                "messages",
                format!("a chat prompt has 1 to {MAX_MESSAGES} messages (got {})", messages.len()),
            )));
        }
        let total: usize = messages.iter().map(|(_, c)| c.len()).sum();
        if total > Template::MAX_BYTES {
            return Err(ContentError::Invalid(InvalidInput::new(
                "messages",
                format!("the messages are {total} bytes together; the limit is {} bytes", Template::MAX_BYTES),
            )));
        }
        let parsed = messages
            .iter()
            .enumerate()
            .map(|(index, (role, content))| {
                Template::parse(content)
                    .map(|t| (*role, t))
                    .map_err(|error| ContentError::Message(MessageError { index, error }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let content = VersionContent::Chat(parsed);
        let variables = content.variables().len();
        if variables > Template::MAX_VARIABLES {
            return Err(ContentError::Invalid(InvalidInput::new(
                "messages",
                format!("the messages use {variables} variables; the limit is {}", Template::MAX_VARIABLES),
            )));
        }
        Ok(content)
    }

    pub fn kind(&self) -> PromptKind {
        match self {
            VersionContent::Text(_) => PromptKind::Text,
            VersionContent::Chat(_) => PromptKind::Chat,
        }
    }

    fn templates(&self) -> Vec<&Template> {
        match self {
            VersionContent::Text(t) => vec![t],
            VersionContent::Chat(ms) => ms.iter().map(|(_, t)| t).collect(),
        }
    }

    /// Every variable any template reads, sorted.
    pub fn variables(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.templates().into_iter().flat_map(|t| t.variables()).collect();
        all.into_iter().cloned().collect()
    }

    /// Every prompt any template includes, sorted.
    pub fn includes(&self) -> Vec<PromptName> {
        let all: BTreeSet<&PromptName> = self.templates().into_iter().flat_map(|t| t.includes()).collect();
        all.into_iter().cloned().collect()
    }

    /// The template text of a text prompt; empty for a chat prompt.
    pub fn text(&self) -> &str {
        match self {
            VersionContent::Text(t) => t.text(),
            VersionContent::Chat(_) => "",
        }
    }

    /// The messages of a chat prompt as stored.
    pub fn messages(&self) -> Option<Vec<ChatMessage>> {
        match self {
            VersionContent::Text(_) => None,
            VersionContent::Chat(ms) => {
                Some(ms.iter().map(|(role, t)| ChatMessage { role: *role, content: t.text().to_owned() }).collect())
            }
        }
    }
}

/// Why a version's content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error(transparent)]
    Invalid(InvalidInput),
    #[error(transparent)]
    Message(MessageError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_content_unites_variables_and_includes() {
        let c = VersionContent::chat(&[
            (ChatRole::System, "{% include \"company-persona\" %} Be brief.".into()),
            (ChatRole::User, "{{ question }} from {{ customer_name }}".into()),
            (ChatRole::Assistant, "Hello {{ customer_name }}".into()),
        ])
        .unwrap();
        assert_eq!(c.kind(), PromptKind::Chat);
        assert_eq!(c.variables(), ["customer_name", "question"]);
        assert_eq!(c.includes(), [PromptName::parse("company-persona").unwrap()]);
        assert_eq!(c.messages().unwrap()[1].role, ChatRole::User);
        assert_eq!(c.text(), "");
    }

    #[test]
    fn a_broken_message_is_named_by_its_index_and_place() {
        let err = VersionContent::chat(&[(ChatRole::System, "ok".into()), (ChatRole::User, "Hi {{ name }".into())]);
        match err.unwrap_err() {
            ContentError::Message(m) => assert_eq!((m.index, m.error.line), (1, 1)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(VersionContent::chat(&[]), Err(ContentError::Invalid(_))));
    }

    #[test]
    fn config_is_a_bounded_json_object() {
        let ok = check_config(serde_json::json!({"model": "gpt-4o", "temperature": 0.2})).unwrap();
        assert_eq!(ok["model"], "gpt-4o");
        assert!(check_config(serde_json::json!([1, 2])).unwrap_err().message.contains("JSON object"));
        let big = serde_json::json!({"notes": "x".repeat(MAX_CONFIG_BYTES)});
        assert!(check_config(big).unwrap_err().message.contains("limit"));
    }

    #[test]
    fn roles_parse_with_a_clear_error() {
        assert_eq!(ChatRole::parse("tool", "role").unwrap(), ChatRole::Tool);
        assert!(ChatRole::parse("robot", "role").unwrap_err().message.contains("system, user, assistant or tool"));
    }
}
