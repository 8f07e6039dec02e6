//! The vocabulary of change requests and their events: plain data, as stored in the
//! log (the rules are in [`super::decide`]).

use crate::experiment::SplitVariant;
use crate::names::{Description, EnvironmentName, InvalidInput, PromptName, VersionString};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
