//! Every change to PromptOS is one of these events. They are stored as a type name and
//! a JSON payload; the actor, time and position live in the log's envelope, not here.

pub use crate::change_request::events::{
    ChangeRequestApplied, ChangeRequestApproved, ChangeRequestCommented, ChangeRequestExpired, ChangeRequestOpened,
    ChangeRequestRejected, ChangeRequestScheduled, ChangeRequestWithdrawn,
};
use crate::content::{ChatMessage, ModelConfig, PromptKind};
pub use crate::evaluation::events::{
    DeployGate, EvaluationCompleted, EvaluationStarted, TestCaseAdded, TestCaseRemoved, TestCaseUpdated,
};
use crate::experiment::SplitVariant;
use crate::names::{CommitMessage, Description, EnvironmentName, PromptName, Role, Tag, Username, VersionString};
pub use crate::webhook::events::{
    WebhookCreated, WebhookDeleted, WebhookDisabled, WebhookSecretRotated, WebhookUpdated,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream a prompt's events belong to. One stream per *name*: every incarnation of
/// the name (created, deleted, created again) shares it, so "names are unique among live
/// prompts" is a single-stream invariant checked under optimistic concurrency. Each
/// incarnation has its own `prompt_id`, which keeps their histories apart.
pub fn prompt_stream(name: &PromptName) -> String {
    format!("prompt:{name}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptCreated {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub description: Description,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptUpdated {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub description: Description,
}

/// The prompt's tags were replaced (sorted, without repeats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptTagged {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub tags: Vec<Tag>,
    pub previous_tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptDeleted {
    pub prompt_id: Uuid,
    pub name: PromptName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionCreated {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub version_string: VersionString,
    /// The template of a text prompt; empty for a chat prompt.
    pub text: String,
    /// The variables the templates read, extracted when the version was created.
    pub variables: Vec<String>,
    /// Absent (text) in events written before chat prompts existed.
    #[serde(default, skip_serializing_if = "PromptKind::is_text")]
    pub kind: PromptKind,
    /// The messages of a chat prompt, in order; each `content` is a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    /// Model parameters versioned with the wording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ModelConfig>,
    /// Prompts the templates include, resolved in the environment they are served in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<PromptName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<CommitMessage>,
    /// Set when the text came from an LLM suggestion the user accepted; absent for text
    /// a person wrote (and in events written before optimisation existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<VersionOrigin>,
}

impl VersionCreated {
    /// A text version as a person writes it, with nothing else: no configuration,
    /// includes, commit message or origin (for seeding logs in tests and benchmarks).
    pub fn plain_text(
        prompt_id: Uuid,
        name: PromptName,
        version_string: VersionString,
        text: String,
        variables: Vec<String>,
    ) -> Self {
        Self {
            prompt_id,
            name,
            version_string,
            text,
            variables,
            kind: PromptKind::Text,
            messages: None,
            config: None,
            includes: Vec::new(),
            commit_message: None,
            origin: None,
        }
    }
}

/// Where an AI-suggested version came from, so auditors can tell it from human text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionOrigin {
    /// The optimisation goal (`clarity_conciseness`, …).
    pub goal: String,
    pub provider: String,
    pub model: String,
    /// The version whose text was optimised (absent when free text was sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<VersionString>,
    /// The version of the goal's meta-prompt that was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_prompt_version: Option<VersionString>,
    /// True when the user changed the suggestion before accepting it.
    pub edited: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDeployed {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub environment: EnvironmentName,
    pub version_string: VersionString,
    /// The version this deployment replaced, if any was live.
    pub previous_version_string: Option<VersionString>,
    /// In a gated environment: the evaluation that let the version go live, or an
    /// admin's override with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<DeployGate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRolledBack {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub environment: EnvironmentName,
    pub from_version_string: VersionString,
    pub to_version_string: VersionString,
}

/// An environment starts serving several versions, each to a share of the traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentStarted {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub environment: EnvironmentName,
    /// Part of every subject's hash: a new experiment shuffles subjects afresh.
    pub experiment_id: Uuid,
    /// In the order given; the first is what clients that know nothing of experiments
    /// are served.
    pub variants: Vec<SplitVariant>,
    /// Which variant (index into `variants`) serves each of the 100 buckets.
    pub buckets: Vec<u8>,
    /// The version live before the split: what stopping with "revert" keeps.
    pub previous_version_string: Option<VersionString>,
    /// In a gated environment: how each version not already served there passed the gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<VersionGate>,
}

/// How one version of a split passed a gated environment's gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionGate {
    pub version_string: VersionString,
    pub gate: DeployGate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentWeightsChanged {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub environment: EnvironmentName,
    pub experiment_id: Uuid,
    /// The same versions in the same order, with their new weights.
    pub variants: Vec<SplitVariant>,
    pub buckets: Vec<u8>,
    /// The weights before the change, in variant order.
    pub previous_weights: Vec<u8>,
}

/// How an experiment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentOutcome {
    /// Stopped, keeping a version other than the one live before it started.
    Promoted,
    /// Stopped, keeping the version live before it started.
    Reverted,
    /// A plain deploy in the environment ended it.
    EndedByDeploy,
    /// A rollback in the environment ended it.
    EndedByRollback,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentStopped {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub environment: EnvironmentName,
    pub experiment_id: Uuid,
    /// The version that serves all traffic from now on.
    pub version_string: VersionString,
    pub outcome: ExperimentOutcome,
}

/// A user's own stream: creation, role changes, password changes, disabling.
pub fn user_stream(username: &Username) -> String {
    format!("user:{username}")
}

/// An API key's stream: creation and revocation.
pub fn api_key_stream(key_id: &str) -> String {
    format!("apikey:{key_id}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCreated {
    pub username: Username,
    pub role: Role,
    /// Argon2id PHC string. Kept in the log so a backup restores logins; the API
    /// redacts it everywhere but the admin-only export.
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRoleChanged {
    pub username: Username,
    pub role: Role,
    pub previous_role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDisabled {
    pub username: Username,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub username: Username,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyCreated {
    pub key_id: String,
    pub name: String,
    /// Environments the key may read.
    pub environments: Vec<EnvironmentName>,
    /// SHA-256 (hex) of the whole key. Keys are 256-bit random, so a fast hash is
    /// enough; the key itself is shown once and never stored.
    pub key_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    pub key_id: String,
}

/// Declares the [`Event`] enum, one variant per payload type of the same name, with
/// the code that stores and reads each variant (the name is the stored type).
macro_rules! events {
    ($($variant:ident),* $(,)?) => {
        /// Every change to PromptOS: the variant's name is the type stored in the log.
        #[derive(Debug, Clone, PartialEq, strum::IntoStaticStr, strum::VariantNames)]
        pub enum Event {
            $($variant($variant),)*
        }

        impl Event {
            /// The payload as compact JSON, exactly as it is stored and hashed.
            pub fn payload_json(&self) -> String {
                let result = match self {
                    $(Event::$variant(e) => serde_json::to_string(e),)*
                };
                result.expect("event payloads are plain data and always serialize")
            }

            pub fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
                fn de<T: for<'de> Deserialize<'de>>(t: &str, p: &str) -> Result<T, DecodeError> {
                    serde_json::from_str(p).map_err(|source| DecodeError::Payload { event_type: t.to_owned(), source })
                }
                Ok(match event_type {
                    $(stringify!($variant) => Event::$variant(de(event_type, payload)?),)*
                    other => return Err(DecodeError::UnknownType(other.to_owned())),
                })
            }
        }
    };
}

events! {
    PromptCreated,
    PromptUpdated,
    PromptTagged,
    PromptDeleted,
    VersionCreated,
    VersionDeployed,
    DeploymentRolledBack,
    ExperimentStarted,
    ExperimentWeightsChanged,
    ExperimentStopped,
    UserCreated,
    UserRoleChanged,
    UserDisabled,
    PasswordChanged,
    ApiKeyCreated,
    ApiKeyRevoked,
    ChangeRequestOpened,
    ChangeRequestApproved,
    ChangeRequestRejected,
    ChangeRequestCommented,
    ChangeRequestScheduled,
    ChangeRequestApplied,
    ChangeRequestWithdrawn,
    ChangeRequestExpired,
    WebhookCreated,
    WebhookUpdated,
    WebhookSecretRotated,
    WebhookDisabled,
    WebhookDeleted,
    TestCaseAdded,
    TestCaseUpdated,
    TestCaseRemoved,
    EvaluationStarted,
    EvaluationCompleted,
}

/// An event type this build does not know, or a payload that does not fit its type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?} (written by a newer PromptOS?)")]
    UnknownType(String),
    #[error("payload of a {event_type} event does not decode: {source}")]
    Payload { event_type: String, source: serde_json::Error },
}

impl Event {
    /// Every event type name this build writes, for filters and documentation: the
    /// variants' names, as stored in the log's `event_type` column (and hashed).
    pub const TYPES: &'static [&'static str] = <Self as strum::VariantNames>::VARIANTS;

    /// The event types of a prompt's own stream (what its History shows).
    pub const PROMPT_TYPES: &'static [&'static str] = &[
        "PromptCreated",
        "PromptUpdated",
        "PromptTagged",
        "VersionCreated",
        "VersionDeployed",
        "DeploymentRolledBack",
        "ExperimentStarted",
        "ExperimentWeightsChanged",
        "ExperimentStopped",
        "TestCaseAdded",
        "TestCaseUpdated",
        "TestCaseRemoved",
        "EvaluationStarted",
        "EvaluationCompleted",
        "PromptDeleted",
    ];

    /// Payload fields that hold credentials; the API shows them as `[redacted]`.
    pub const SECRET_FIELDS: &'static [&'static str] = &["password_hash", "key_hash", "secret"];

    /// The name stored with the event: its variant's name.
    pub fn event_type(&self) -> &'static str {
        self.into()
    }

    /// The prompt the event is about, for prompt events.
    pub fn prompt(&self) -> Option<(&Uuid, &PromptName)> {
        match self {
            Event::PromptCreated(e) => Some((&e.prompt_id, &e.name)),
            Event::PromptUpdated(e) => Some((&e.prompt_id, &e.name)),
            Event::PromptTagged(e) => Some((&e.prompt_id, &e.name)),
            Event::PromptDeleted(e) => Some((&e.prompt_id, &e.name)),
            Event::VersionCreated(e) => Some((&e.prompt_id, &e.name)),
            Event::VersionDeployed(e) => Some((&e.prompt_id, &e.name)),
            Event::DeploymentRolledBack(e) => Some((&e.prompt_id, &e.name)),
            Event::ExperimentStarted(e) => Some((&e.prompt_id, &e.name)),
            Event::ExperimentWeightsChanged(e) => Some((&e.prompt_id, &e.name)),
            Event::ExperimentStopped(e) => Some((&e.prompt_id, &e.name)),
            Event::TestCaseAdded(e) => Some((&e.prompt_id, &e.name)),
            Event::TestCaseUpdated(e) => Some((&e.prompt_id, &e.name)),
            Event::TestCaseRemoved(e) => Some((&e.prompt_id, &e.name)),
            Event::EvaluationStarted(e) => Some((&e.prompt_id, &e.name)),
            Event::EvaluationCompleted(e) => Some((&e.prompt_id, &e.name)),
            _ => None,
        }
    }

    /// The environment the event changes, for deployment events.
    pub fn environment(&self) -> Option<&EnvironmentName> {
        match self {
            Event::VersionDeployed(e) => Some(&e.environment),
            Event::DeploymentRolledBack(e) => Some(&e.environment),
            Event::ExperimentStarted(e) => Some(&e.environment),
            Event::ExperimentWeightsChanged(e) => Some(&e.environment),
            Event::ExperimentStopped(e) => Some(&e.environment),
            Event::ChangeRequestOpened(e) => Some(&e.environment),
            Event::ChangeRequestApproved(e) => Some(&e.environment),
            Event::ChangeRequestRejected(e) => Some(&e.environment),
            Event::ChangeRequestCommented(e) => Some(&e.environment),
            Event::ChangeRequestScheduled(e) => Some(&e.environment),
            Event::ChangeRequestApplied(e) => Some(&e.environment),
            Event::ChangeRequestWithdrawn(e) => Some(&e.environment),
            Event::ChangeRequestExpired(e) => Some(&e.environment),
            _ => None,
        }
    }

    /// The change request the event is about, for change request events.
    pub fn change_request(&self) -> Option<&Uuid> {
        match self {
            Event::ChangeRequestOpened(e) => Some(&e.request_id),
            Event::ChangeRequestApproved(e) => Some(&e.request_id),
            Event::ChangeRequestRejected(e) => Some(&e.request_id),
            Event::ChangeRequestCommented(e) => Some(&e.request_id),
            Event::ChangeRequestScheduled(e) => Some(&e.request_id),
            Event::ChangeRequestApplied(e) => Some(&e.request_id),
            Event::ChangeRequestWithdrawn(e) => Some(&e.request_id),
            Event::ChangeRequestExpired(e) => Some(&e.request_id),
            _ => None,
        }
    }

    pub fn stream_id(&self) -> String {
        match self {
            Event::UserCreated(e) => user_stream(&e.username),
            Event::UserRoleChanged(e) => user_stream(&e.username),
            Event::UserDisabled(e) => user_stream(&e.username),
            Event::PasswordChanged(e) => user_stream(&e.username),
            Event::ApiKeyCreated(e) => api_key_stream(&e.key_id),
            Event::ApiKeyRevoked(e) => api_key_stream(&e.key_id),
            Event::WebhookCreated(e) => crate::webhook::events::webhook_stream(&e.webhook_id),
            Event::WebhookUpdated(e) => crate::webhook::events::webhook_stream(&e.webhook_id),
            Event::WebhookSecretRotated(e) => crate::webhook::events::webhook_stream(&e.webhook_id),
            Event::WebhookDisabled(e) => crate::webhook::events::webhook_stream(&e.webhook_id),
            Event::WebhookDeleted(e) => crate::webhook::events::webhook_stream(&e.webhook_id),
            e if e.change_request().is_some() => {
                crate::change_request::events::change_request_stream(e.change_request().expect("checked"))
            }
            _ => prompt_stream(self.prompt().expect("prompt event").1),
        }
    }
}

/// Replaces credential fields in a JSON payload with `[redacted]`.
pub fn redact_payload(payload: &mut serde_json::Value) {
    if let Some(obj) = payload.as_object_mut() {
        for field in Event::SECRET_FIELDS {
            if let Some(v) = obj.get_mut(*field) {
                *v = serde_json::Value::String("[redacted]".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_through_their_stored_form() {
        let e = Event::VersionDeployed(VersionDeployed {
            prompt_id: Uuid::nil(),
            name: PromptName::parse("p").unwrap(),
            environment: EnvironmentName::parse("production").unwrap(),
            version_string: VersionString::parse("v2").unwrap(),
            previous_version_string: Some(VersionString::parse("v1").unwrap()),
            gate: None,
        });
        let back = Event::decode(e.event_type(), &e.payload_json()).unwrap();
        assert_eq!(back, e);
        assert!(matches!(Event::decode("Nope", "{}"), Err(DecodeError::UnknownType(_))));
    }

    #[test]
    fn version_events_written_before_chat_prompts_read_as_text() {
        let old = r#"{"prompt_id":"00000000-0000-0000-0000-000000000000","name":"p","version_string":"v1","text":"Hi {{ x }}","variables":["x"]}"#;
        let Event::VersionCreated(e) = Event::decode("VersionCreated", old).unwrap() else { panic!() };
        assert_eq!((e.kind, e.messages.clone(), e.config.clone(), e.includes.len()), (PromptKind::Text, None, None, 0));
        // And a text version written today is stored exactly as before.
        assert_eq!(Event::VersionCreated(e).payload_json(), old);
    }

    #[test]
    fn the_stored_type_names_never_change() {
        // They are in every stored row and in its hash: a rename would break old logs.
        assert_eq!(
            Event::TYPES,
            [
                "PromptCreated",
                "PromptUpdated",
                "PromptTagged",
                "PromptDeleted",
                "VersionCreated",
                "VersionDeployed",
                "DeploymentRolledBack",
                "ExperimentStarted",
                "ExperimentWeightsChanged",
                "ExperimentStopped",
                "UserCreated",
                "UserRoleChanged",
                "UserDisabled",
                "PasswordChanged",
                "ApiKeyCreated",
                "ApiKeyRevoked",
                "ChangeRequestOpened",
                "ChangeRequestApproved",
                "ChangeRequestRejected",
                "ChangeRequestCommented",
                "ChangeRequestScheduled",
                "ChangeRequestApplied",
                "ChangeRequestWithdrawn",
                "ChangeRequestExpired",
                "WebhookCreated",
                "WebhookUpdated",
                "WebhookSecretRotated",
                "WebhookDisabled",
                "WebhookDeleted",
                "TestCaseAdded",
                "TestCaseUpdated",
                "TestCaseRemoved",
                "EvaluationStarted",
                "EvaluationCompleted",
            ]
        );
        assert!(Event::TYPES.iter().all(|t| !matches!(Event::decode(t, "{}"), Err(DecodeError::UnknownType(_)))));
    }

    #[test]
    fn prompt_types_are_the_types_a_prompt_stream_holds() {
        assert!(Event::PROMPT_TYPES.iter().all(|t| Event::TYPES.contains(t)));
        let e = Event::PromptDeleted(PromptDeleted { prompt_id: Uuid::nil(), name: PromptName::parse("p").unwrap() });
        assert!(e.prompt().is_some() && Event::PROMPT_TYPES.contains(&e.event_type()));
        assert!(!Event::PROMPT_TYPES.contains(&"UserCreated"));
    }
}
