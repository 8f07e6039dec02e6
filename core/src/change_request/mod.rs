//! Change requests: four-eyes approval (and scheduling) for the environments that need it.
//!
//! A request proposes one or more [`Change`]s to one environment. It records what each
//! prompt served there when it was opened ([`Served`]); every approval records what the
//! approver saw. When it is applied, an approval counts only if what it saw is still what
//! is served: a deploy by someone else in the meantime makes the request *outdated*, and
//! it needs a fresh approval. Applying appends the request's `ChangeRequestApplied` and
//! every change's deployment events in one transaction, all or none.
//!
//! This module holds the vocabulary and the events; [`decide`] and [`evolve`] the rules.
//!
//! ```
//! use promptos_core::change_request::{Change, Served};
//! use promptos_core::names::{PromptName, VersionString};
//! let change = Change::Deploy {
//!     prompt_name: PromptName::parse("bot").unwrap(),
//!     version_string: VersionString::parse("v2").unwrap(),
//! };
//! assert_eq!(change.prompt_name().as_str(), "bot");
//! assert_eq!(Served::nothing(change.prompt_name().clone()).describe(), "nothing");
//! ```

mod decide;

pub use decide::{decide, evolve, Approval, ChangeRequest, ChangeRequestCommand, ChangeRequestState, Status};

use crate::experiment::SplitVariant;
use crate::names::{Description, EnvironmentName, InvalidInput, PromptName, VersionString};
use crate::prompt::{PromptCommand, PromptState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most changes one request may hold.
pub const MAX_CHANGES: usize = 20;

/// A change request's own stream.
pub fn change_request_stream(id: &Uuid) -> String {
    format!("change-request:{id}")
}

/// One change a request proposes, stated concretely: a rollback names the version it
/// returns to, a split carries the experiment id it will start with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    Deploy { prompt_name: PromptName, version_string: VersionString },
    Rollback { prompt_name: PromptName, to_version_string: VersionString },
    StartExperiment { prompt_name: PromptName, experiment_id: Uuid, variants: Vec<SplitVariant> },
    ChangeExperimentWeights { prompt_name: PromptName, variants: Vec<SplitVariant> },
    StopExperiment { prompt_name: PromptName, keep: VersionString },
}

impl Change {
    pub fn prompt_name(&self) -> &PromptName {
        match self {
            Change::Deploy { prompt_name, .. }
            | Change::Rollback { prompt_name, .. }
            | Change::StartExperiment { prompt_name, .. }
            | Change::ChangeExperimentWeights { prompt_name, .. }
            | Change::StopExperiment { prompt_name, .. } => prompt_name,
        }
    }

    /// The prompt command that carries the change out in `environment`.
    pub fn command(&self, environment: &EnvironmentName) -> PromptCommand {
        let environment = environment.clone();
        match self.clone() {
            Change::Deploy { version_string, .. } => PromptCommand::Deploy { environment, version_string },
            Change::Rollback { to_version_string, .. } => {
                PromptCommand::Rollback { environment, to: Some(to_version_string) }
            }
            Change::StartExperiment { experiment_id, variants, .. } => {
                PromptCommand::StartExperiment { environment, experiment_id, variants }
            }
            Change::ChangeExperimentWeights { variants, .. } => {
                PromptCommand::ChangeExperimentWeights { environment, variants }
            }
            Change::StopExperiment { keep, .. } => PromptCommand::StopExperiment { environment, keep },
        }
    }

    /// The version the change makes live for clients unaware of experiments.
    pub fn target(&self) -> &VersionString {
        match self {
            Change::Deploy { version_string, .. } => version_string,
            Change::Rollback { to_version_string, .. } => to_version_string,
            Change::StartExperiment { variants, .. } | Change::ChangeExperimentWeights { variants, .. } => {
                &variants[0].version_string
            }
            Change::StopExperiment { keep, .. } => keep,
        }
    }

    /// One line for people: `deploy v2 of bot`.
    pub fn describe(&self) -> String {
        let split = |variants: &[SplitVariant]| {
            variants.iter().map(|v| format!("{} {}%", v.version_string, v.weight)).collect::<Vec<_>>().join(" / ")
        };
        match self {
            Change::Deploy { prompt_name, version_string } => format!("deploy {version_string} of {prompt_name}"),
            Change::Rollback { prompt_name, to_version_string } => {
                format!("roll {prompt_name} back to {to_version_string}")
            }
            Change::StartExperiment { prompt_name, variants, .. } => {
                format!("split {prompt_name}: {}", split(variants))
            }
            Change::ChangeExperimentWeights { prompt_name, variants } => {
                format!("reweight {prompt_name}: {}", split(variants))
            }
            Change::StopExperiment { prompt_name, keep } => format!("stop {prompt_name}'s split, keeping {keep}"),
        }
    }
}

/// What an environment serves of one prompt: compared between when a request was
/// opened or approved and when it is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub prompt_name: PromptName,
    /// The incarnation of the name (absent when no prompt has it).
    pub prompt_id: Option<Uuid>,
    /// The version served to clients unaware of experiments.
    pub version_string: Option<VersionString>,
    /// The running split, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ServedSplit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedSplit {
    pub experiment_id: Uuid,
    pub variants: Vec<SplitVariant>,
}

impl Served {
    pub fn nothing(prompt_name: PromptName) -> Self {
        Self { prompt_name, prompt_id: None, version_string: None, experiment: None }
    }

    /// What `state` serves in `environment`.
    pub fn of(state: &PromptState, name: &PromptName, environment: &EnvironmentName) -> Self {
        let Some(p) = state.live() else { return Self::nothing(name.clone()) };
        Self {
            prompt_name: name.clone(),
            prompt_id: Some(p.prompt_id),
            version_string: p.live_version(environment).cloned(),
            experiment: p
                .experiments
                .get(environment)
                .map(|x| ServedSplit { experiment_id: x.experiment_id, variants: x.variants.clone() }),
        }
    }

    /// `v2`, `split v1 50% / v2 50%` or `nothing`.
    pub fn describe(&self) -> String {
        match (&self.experiment, &self.version_string) {
            (Some(x), _) => format!(
                "split {}",
                x.variants
                    .iter()
                    .map(|v| format!("{} {}%", v.version_string, v.weight))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
            (None, Some(v)) => v.to_string(),
            (None, None) => "nothing".into(),
        }
    }
}

/// A request's title: 1 to [`Title::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 200;
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let len = s.trim().chars().count();
        if len == 0 || len > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "title",
                format!("a title must be 1 to {} characters long (got {len})", Self::MAX_CHARS),
            ));
        }
        Ok(Self(s.trim().to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reviewer's comment: 1 to [`Comment::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Comment(String);

impl Comment {
    pub const MAX_CHARS: usize = 4000;
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let len = s.trim().chars().count();
        if len == 0 || len > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "comment",
                format!("a comment must be 1 to {} characters long (got {len})", Self::MAX_CHARS),
            ));
        }
        Ok(Self(s.trim().to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event in the log, named by its stream and place in it (known before it is
/// appended, unlike its position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestOpened {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
    pub title: Title,
    pub description: Description,
    /// Who opened it (`user:<name>`): that user may not approve it.
    pub author: String,
    pub changes: Vec<Change>,
    /// What each changed prompt served in the environment when the request was opened.
    pub served: Vec<Served>,
    /// Approvals by distinct admins the request needs (the policy when it was opened).
    pub approvals_required: u8,
    /// After this the request can no longer be applied.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestApproved {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
    pub approver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Comment>,
    /// What the approver saw served; the approval counts while it still is.
    pub served: Vec<Served>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestRejected {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Comment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestCommented {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
    pub comment: Comment,
}

/// The request is to be applied at `at` (or as soon as it is approved after that);
/// `None` takes a schedule back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestScheduled {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestApplied {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
    /// The deployment events the request produced, appended in the same transaction.
    pub produced: Vec<EventRef>,
    /// Set when the scheduler applied it: the time it was scheduled for, and how late
    /// it was applied (a server that was down applies a missed schedule on start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestWithdrawn {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestExpired {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
}
