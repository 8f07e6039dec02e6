//! Webhook subscriptions as events: plain data, as stored in the log (the rules are in
//! [`super::decide`]).

use crate::names::{Description, EnvironmentName, PromptName, Tag};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A webhook's own stream.
pub fn webhook_stream(id: &Uuid) -> String {
    format!("webhook:{id}")
}

/// How a delivery's body is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"type", "timestamp", "data"}`, signed as the Standard Webhooks specification says.
    #[default]
    Standard,
    /// `{"text": "…"}`, for Slack-compatible incoming-webhook URLs (also signed).
    Slack,
}

/// Which events a webhook receives. Every list that is not empty must match: a type in
/// `event_types` (`prompt.version.deployed`, or a prefix ending in `*` such as
/// `prompt.*`), an event in one of `environments`, about one of `prompts`, or about a
/// prompt carrying one of `tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<EnvironmentName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<PromptName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A signing secret sealed with the server's webhook key (AES-256-GCM): what the log
/// holds instead of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Names the key that sealed it (a fingerprint, not the key).
    pub key_id: String,
    /// Base64.
    pub nonce: String,
    /// Base64.
    pub ciphertext: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookCreated {
    pub webhook_id: Uuid,
    pub url: String,
    pub description: Description,
    pub format: WebhookFormat,
    #[serde(flatten)]
    pub filter: WebhookFilter,
    pub enabled: bool,
    pub secret: SealedSecret,
}

/// The webhook as it is after the update (every field, changed or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookUpdated {
    pub webhook_id: Uuid,
    pub url: String,
    pub description: Description,
    pub format: WebhookFormat,
    #[serde(flatten)]
    pub filter: WebhookFilter,
    pub enabled: bool,
}

/// A new signing secret; the previous one stays valid (deliveries carry both
/// signatures) until `previous_valid_until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSecretRotated {
    pub webhook_id: Uuid,
    pub secret: SealedSecret,
    pub previous_valid_until: DateTime<Utc>,
}

/// The server stopped delivering to the webhook (the receiver answered 410, or failed
/// for a day); an admin enables it again with an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDisabled {
    pub webhook_id: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDeleted {
    pub webhook_id: Uuid,
}

/// The name a receiver sees for each event type of the log.
pub const WEBHOOK_TYPES: &[(&str, &str)] = &[
    ("PromptCreated", "prompt.created"),
    ("PromptUpdated", "prompt.updated"),
    ("PromptTagged", "prompt.tagged"),
    ("PromptDeleted", "prompt.deleted"),
    ("VersionCreated", "prompt.version.created"),
    ("VersionDeployed", "prompt.version.deployed"),
    ("DeploymentRolledBack", "prompt.deployment.rolled_back"),
    ("ExperimentStarted", "prompt.experiment.started"),
    ("ExperimentWeightsChanged", "prompt.experiment.reweighted"),
    ("ExperimentStopped", "prompt.experiment.stopped"),
    ("UserCreated", "user.created"),
    ("UserRoleChanged", "user.role_changed"),
    ("UserDisabled", "user.disabled"),
    ("PasswordChanged", "user.password_changed"),
    ("ApiKeyCreated", "api_key.created"),
    ("ApiKeyRevoked", "api_key.revoked"),
    ("ChangeRequestOpened", "change_request.opened"),
    ("ChangeRequestApproved", "change_request.approved"),
    ("ChangeRequestRejected", "change_request.rejected"),
    ("ChangeRequestCommented", "change_request.commented"),
    ("ChangeRequestScheduled", "change_request.scheduled"),
    ("ChangeRequestApplied", "change_request.applied"),
    ("ChangeRequestWithdrawn", "change_request.withdrawn"),
    ("ChangeRequestExpired", "change_request.expired"),
    ("WebhookCreated", "webhook.created"),
    ("WebhookUpdated", "webhook.updated"),
    ("WebhookSecretRotated", "webhook.secret_rotated"),
    ("WebhookDisabled", "webhook.disabled"),
    ("WebhookDeleted", "webhook.deleted"),
    ("TestCaseAdded", "prompt.test_case.added"),
    ("TestCaseUpdated", "prompt.test_case.updated"),
    ("TestCaseRemoved", "prompt.test_case.removed"),
    ("EvaluationStarted", "prompt.evaluation.started"),
    ("EvaluationCompleted", "prompt.evaluation.completed"),
];

/// The webhook type of a log event type (`VersionDeployed` → `prompt.version.deployed`).
pub fn webhook_type(event_type: &str) -> Option<&'static str> {
    WEBHOOK_TYPES.iter().find(|(e, _)| *e == event_type).map(|(_, w)| *w)
}
