//! The wire contract shared by the server, the SDKs and the UI, defined once: the
//! deployed-prompt answer (`GET /prompts/{name}/deployed/`), the change message and its
//! NATS subjects, and the error body every 4xx/5xx carries. The bucketing function that
//! picks an experiment's variant is [`crate::experiment::bucket_of`].
//!
//! ```
//! use promptos_core::wire::{ChangeMessage, DeployedPrompt};
//! let change: ChangeMessage = serde_json::from_str(r#"{"position": 42, "event_id": "e",
//!     "type": "VersionDeployed", "prompt": "greeting", "environment": "production",
//!     "version_string": "v2", "at": "2026-01-31T12:00:00.000000Z"}"#).unwrap();
//! assert_eq!(change.subject(), "promptos.changes.production.greeting");
//! let answer: DeployedPrompt = serde_json::from_str(r#"{"prompt_name": "greeting",
//!     "environment": "production", "version_string": "v2", "prompt_text": "Hi {{ name }}",
//!     "variables": ["name"], "position": 42}"#).unwrap();
//! assert_eq!(answer.kind, "text");
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every change message's NATS subject starts with this.
pub const SUBJECT_PREFIX: &str = "promptos.changes";
/// Subscribe to this for every environment and every prompt.
pub const SUBJECT_ALL: &str = "promptos.changes.>";

/// The subject of changes to `prompt` in `environment`: `promptos.changes.<environment>.<prompt>`.
/// A prompt name with dots spans several subject tokens, so subscribe with
/// `promptos.changes.<environment>.>` or [`SUBJECT_ALL`] and read the names from the
/// payload.
pub fn subject(environment: &str, prompt: &str) -> String {
    format!("{SUBJECT_PREFIX}.{environment}.{prompt}")
}

/// One change to what an environment serves, published on NATS and streamed as
/// Server-Sent Events (`GET /changes/stream`). Every message means "fetch this prompt in
/// this environment again". Delivery is at least once: ignore a message whose
/// `position` is not above what you hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeMessage {
    /// Log position of the event: the message's identity and order.
    pub position: i64,
    pub event_id: String,
    /// `VersionDeployed`, `DeploymentRolledBack`, `ExperimentStarted`,
    /// `ExperimentWeightsChanged`, `ExperimentStopped`, `PromptDeleted` (sent for every
    /// environment the prompt was deployed in), or `IncludeChanged` (a prompt this one
    /// includes there changed).
    #[serde(rename = "type")]
    pub event_type: String,
    pub prompt: String,
    pub environment: String,
    /// What clients unaware of experiments are served now; null when nothing is (the
    /// prompt was deleted).
    pub version_string: Option<String>,
    /// When the event was recorded (RFC 3339, UTC).
    pub at: String,
}

impl ChangeMessage {
    pub fn subject(&self) -> String {
        subject(&self.environment, &self.prompt)
    }
}

/// A chat message: a role (`system`, `user`, `assistant`, `tool`) and its content, a
/// template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// The version live as a prompt in an environment: what applications fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeployedPrompt {
    pub prompt_name: String,
    pub environment: String,
    pub version_string: String,
    /// `text` or `chat` (absent from servers older than chat prompts: text).
    #[serde(default = "text_kind")]
    pub kind: String,
    /// A text prompt's template (what the seed's SDK reads). Absent for chat prompts,
    /// which have `messages` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
    /// A chat prompt's messages, in order; each `content` is a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    /// Model parameters versioned with the wording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub config: Option<serde_json::Value>,
    /// With `resolve=true`: every prompt pulled in by includes, with the version used.
    /// The templates above then have their includes replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<BTreeMap<String, String>>,
    /// The variables the templates read.
    #[serde(default)]
    pub variables: Vec<String>,
    #[serde(default)]
    pub deployed_at: String,
    #[serde(default)]
    pub deployed_by: String,
    /// Log position of the last change to this answer: the deploy or rollback that made
    /// the version live, a change to its experiment, or (with `resolve=true`) a deploy of
    /// a prompt it includes. Also the ETag.
    pub position: i64,
    #[serde(default)]
    pub prompt_id: String,
    /// Present while an A/B experiment splits this environment's traffic. The fields
    /// above then describe its first variant, which is what clients that know nothing
    /// of experiments serve. A subject's variant is
    /// `variants[buckets[bucket_of(prompt, experiment_id, subject_key)]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<DeployedExperiment>,
}

fn text_kind() -> String {
    "text".to_owned()
}

/// A running A/B experiment, as the deployed answer carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeployedExperiment {
    pub experiment_id: String,
    pub variants: Vec<DeployedVariant>,
    /// Which variant (index into `variants`) serves each of the 100 buckets.
    pub buckets: Vec<u8>,
}

impl DeployedExperiment {
    /// The index of the variant `subject_key` is served (see
    /// [`crate::experiment::bucket_of`]); 0 for a bucket that names no variant.
    pub fn variant_for(&self, prompt: &str, subject_key: &str) -> usize {
        let bucket = crate::experiment::bucket_of(prompt, &self.experiment_id, subject_key);
        let index = self.buckets.get(bucket).copied().map_or(0, usize::from);
        if index < self.variants.len() {
            index
        } else {
            0
        }
    }
}

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeployedVariant {
    pub version_string: String,
    /// Whole percent of the traffic.
    pub weight: u8,
    /// A text variant's template; absent for a chat variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub variables: Vec<String>,
}

/// The body of every error answer: `{"error": {"code", "message", "field"?, …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_input`.
    pub code: String,
    /// What was wrong, in words a person can act on.
    pub message: String,
    /// The request field the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For template errors: 1-based line of the problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// For template errors: 1-based column of the problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// For a closed evaluation gate: the test cases that failed or still have to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_answer_has_messages_and_no_prompt_text() {
        let answer = DeployedPrompt {
            prompt_name: "p".into(),
            environment: "production".into(),
            version_string: "v1".into(),
            kind: "chat".into(),
            prompt_text: None,
            messages: Some(vec![Message { role: "user".into(), content: "{{ q }}".into() }]),
            config: None,
            includes: None,
            variables: vec!["q".into()],
            deployed_at: String::new(),
            deployed_by: String::new(),
            position: 3,
            prompt_id: String::new(),
            experiment: None,
        };
        let json = serde_json::to_value(&answer).unwrap();
        assert!(json.get("prompt_text").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<DeployedPrompt>(json).unwrap(), answer);
    }

    #[test]
    fn every_subject_matches_the_wildcard_prefix() {
        assert_eq!(subject("staging", "a.b"), "promptos.changes.staging.a.b");
        assert!(subject("staging", "a.b").starts_with(SUBJECT_ALL.trim_end_matches('>')));
    }
}
