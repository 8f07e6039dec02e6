//! What `/change-requests/` reads and answers.

use crate::http::error::{ApiError, ApiResult};
use crate::http::experiments::Variant;
use promptos_core::change_request::{Change, Served};
use promptos_core::experiment::SplitVariant;
use promptos_core::names::{PromptName, VersionString};
use promptos_projector::views::{ActivityRow, ChangeRequestRow, VersionRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::change_requests::Proposed;

/// A new change request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenBody {
    #[schema(example = "production", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
    #[schema(example = "Friendlier greeting for support", min_length = 1, max_length = 200)]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: String,
    /// 1 to 20 changes, one per prompt, applied in this order.
    #[schema(min_items = 1, max_items = 20)]
    pub changes: Vec<ChangeBody>,
    /// Apply at this time (RFC 3339), or as soon as it is approved after it.
    #[schema(example = "2026-12-07T09:00:00Z")]
    pub apply_at: Option<String>,
}

/// One change: `action` says which.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeBody {
    /// Make a version live.
    Deploy { prompt_name: String, version_string: String },
    /// Return to the previous version, or to a named one.
    Rollback { prompt_name: String, to_version_string: Option<String> },
    /// Split the traffic between versions (2 to 10, weights adding up to 100).
    StartExperiment { prompt_name: String, variants: Vec<Variant> },
    /// New weights for the running split's versions.
    ChangeExperimentWeights { prompt_name: String, variants: Vec<Variant> },
    /// End the split, keeping one version.
    StopExperiment { prompt_name: String, version_string: String },
}

fn field_name(index: usize, field: &str) -> String {
    format!("changes[{index}].{field}")
}

fn variants(index: usize, variants: &[Variant]) -> ApiResult<Vec<SplitVariant>> {
    variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let version_string = VersionString::parse(&v.version_string).map_err(|e| {
                ApiError::invalid(&field_name(index, &format!("variants[{i}].version_string")), e.message)
            })?;
            Ok(SplitVariant { version_string, weight: v.weight })
        })
        .collect()
}

impl ChangeBody {
    /// The change, its names checked; errors name `changes[i].field`.
    pub fn parse(&self, index: usize) -> ApiResult<Proposed> {
        let name =
            |n: &str| PromptName::parse(n).map_err(|e| ApiError::invalid(&field_name(index, "prompt_name"), e.message));
        let version =
            |v: &str, f: &str| VersionString::parse(v).map_err(|e| ApiError::invalid(&field_name(index, f), e.message));
        Ok(match self {
            ChangeBody::Deploy { prompt_name, version_string } => Proposed::Deploy {
                prompt_name: name(prompt_name)?,
                version_string: version(version_string, "version_string")?,
            },
            ChangeBody::Rollback { prompt_name, to_version_string } => Proposed::Rollback {
                prompt_name: name(prompt_name)?,
                to: to_version_string.as_deref().map(|v| version(v, "to_version_string")).transpose()?,
            },
            ChangeBody::StartExperiment { prompt_name, variants: v } => {
                Proposed::StartExperiment { prompt_name: name(prompt_name)?, variants: variants(index, v)? }
            }
            ChangeBody::ChangeExperimentWeights { prompt_name, variants: v } => {
                Proposed::ChangeExperimentWeights { prompt_name: name(prompt_name)?, variants: variants(index, v)? }
            }
            ChangeBody::StopExperiment { prompt_name, version_string } => Proposed::StopExperiment {
                prompt_name: name(prompt_name)?,
                keep: version(version_string, "version_string")?,
            },
        })
    }
}

/// A review's words.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    #[schema(example = "Reads well; ship it.", max_length = 4000)]
    pub comment: Option<String>,
}

/// Apply now, or (with `at`) at a time to come.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    /// RFC 3339; the request is applied then (or as soon as it is approved after it).
    #[schema(example = "2026-12-07T09:00:00Z")]
    pub at: Option<String>,
}

/// What an environment serves of one prompt.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServedDto {
    /// The version clients unaware of experiments get (none when nothing is deployed).
    pub version_string: Option<String>,
    /// The running split, if any.
    pub variants: Option<Vec<Variant>>,
    /// `v2`, `split v1 50% / v2 50%` or `nothing`.
    pub summary: String,
}

impl From<&Served> for ServedDto {
    fn from(s: &Served) -> Self {
        Self {
            version_string: s.version_string.as_ref().map(|v| v.to_string()),
            variants: s.experiment.as_ref().map(|x| {
                x.variants
                    .iter()
                    .map(|v| Variant { version_string: v.version_string.to_string(), weight: v.weight })
                    .collect()
            }),
            summary: s.describe(),
        }
    }
}

/// One side of a diff: a version's content.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSide {
    pub version_string: String,
    /// `text` or `chat`.
    pub kind: String,
    pub text: String,
    #[schema(value_type = Option<Vec<Object>>)]
    pub messages: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
}

impl From<VersionRow> for VersionSide {
    fn from(v: VersionRow) -> Self {
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Self {
            version_string: v.version_string,
            kind: v.kind,
            text: v.text,
            messages: json(v.messages),
            config: json(v.config),
        }
    }
}

impl VersionSide {
    /// The version as lines to compare: the text (or each message), then the config.
    fn lines(&self) -> String {
        let mut out = match self.messages.as_ref().and_then(|m| m.as_array()) {
            Some(messages) => messages
                .iter()
                .map(|m| format!("[{}]\n{}\n", m["role"].as_str().unwrap_or(""), m["content"].as_str().unwrap_or("")))
                .collect(),
            None => format!("{}\n", self.text),
        };
        if let Some(config) = &self.config {
            out.push_str("[config]\n");
            out.push_str(&serde_json::to_string_pretty(config).unwrap_or_default());
            out.push('\n');
        }
        out
    }
}

/// The proposed version against the one live now.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffDto {
    /// Live now (absent when nothing is deployed).
    pub live: Option<VersionSide>,
    pub proposed: VersionSide,
    /// A unified diff of the two (text or messages, then the model config).
    pub unified: String,
}

impl DiffDto {
    pub fn new(prompt: &str, live: Option<VersionSide>, proposed: VersionSide) -> Self {
        let old = live.as_ref().map(VersionSide::lines).unwrap_or_default();
        let new = proposed.lines();
        let old_name = live.as_ref().map_or("nothing".to_owned(), |l| format!("{prompt} {} (live)", l.version_string));
        let new_name = format!("{prompt} {} (proposed)", proposed.version_string);
        let unified = similar::TextDiff::from_lines(&old, &new).unified_diff().header(&old_name, &new_name).to_string();
        Self { live, proposed, unified }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeDto {
    /// `deploy`, `rollback`, `start_experiment`, `change_experiment_weights` or
    /// `stop_experiment`.
    pub action: String,
    pub prompt_name: String,
    /// `deploy v2 of bot`.
    pub summary: String,
    /// The version the change makes live (the first variant of a split).
    pub version_string: String,
    pub variants: Option<Vec<Variant>>,
    /// What the environment served when the request was opened.
    pub opened_against: ServedDto,
    /// What it serves now.
    pub live: ServedDto,
    /// The version that goes live against the one live now (absent for a request
    /// that is no longer open).
    pub diff: Option<DiffDto>,
}

impl ChangeDto {
    pub fn new(change: &Change, opened: &Served, live: &Served, diff: Option<DiffDto>) -> Self {
        let json = serde_json::to_value(change).unwrap_or_default();
        let variants = match change {
            Change::StartExperiment { variants, .. } | Change::ChangeExperimentWeights { variants, .. } => Some(
                variants
                    .iter()
                    .map(|v| Variant { version_string: v.version_string.to_string(), weight: v.weight })
                    .collect(),
            ),
            _ => None,
        };
        Self {
            action: json["action"].as_str().unwrap_or_default().to_owned(),
            prompt_name: change.prompt_name().to_string(),
            summary: change.describe(),
            version_string: change.target().to_string(),
            variants,
            opened_against: opened.into(),
            live: live.into(),
            diff,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalDto {
    /// `user:<name>`.
    pub approver: String,
    pub at: String,
    pub comment: Option<String>,
    /// False when what is served changed since this approval: it no longer counts.
    pub current: bool,
}

/// One step of the request's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityDto {
    pub position: i64,
    /// `opened`, `approved`, `rejected`, `commented`, `scheduled`, `applied`,
    /// `withdrawn` or `expired`.
    pub kind: String,
    pub actor: String,
    pub at: String,
    pub comment: Option<String>,
    /// What an approver saw served, a schedule's time, or what an apply produced
    /// (`produced`, `scheduled_for`, `delay_ms`).
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl From<ActivityRow> for ActivityDto {
    fn from(a: ActivityRow) -> Self {
        Self {
            position: a.position,
            kind: a.kind,
            actor: a.actor,
            at: a.at,
            comment: a.comment,
            detail: a.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

/// A change request as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryDto {
    pub id: String,
    pub environment: String,
    pub title: String,
    pub author: String,
    /// `open`, `applied`, `rejected`, `withdrawn` or `expired`.
    pub status: String,
    pub approvals_required: i64,
    /// One line per change: `deploy v2 of bot`.
    pub summary: Vec<String>,
    pub prompts: Vec<String>,
    pub opened_at: String,
    pub expires_at: String,
    pub scheduled_at: Option<String>,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
}

impl From<ChangeRequestRow> for SummaryDto {
    fn from(r: ChangeRequestRow) -> Self {
        let changes: Vec<Change> = serde_json::from_str(&r.changes).unwrap_or_default();
        Self {
            id: r.request_id,
            environment: r.environment,
            title: r.title,
            author: r.author,
            status: r.status,
            approvals_required: r.approvals_required,
            summary: changes.iter().map(Change::describe).collect(),
            prompts: changes.iter().map(|c| c.prompt_name().to_string()).collect(),
            opened_at: r.opened_at,
            expires_at: r.expires_at,
            scheduled_at: r.scheduled_at,
            closed_at: r.closed_at,
            closed_by: r.closed_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListDto {
    pub items: Vec<SummaryDto>,
}

/// A change request with its reviews, its timeline and every change against what is
/// live now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeRequestDto {
    #[serde(flatten)]
    pub request: SummaryDto,
    pub description: String,
    pub changes: Vec<ChangeDto>,
    pub approvals: Vec<ApprovalDto>,
    /// Approvals that count against what is served now.
    pub approvals_current: usize,
    /// What moved since the latest review ("bot: v2 → v3"): the request is outdated
    /// and needs a fresh approval.
    pub moved: Vec<String>,
    pub outdated: bool,
    /// Open, approved against what is served now, and not expired: it can be applied.
    pub ready: bool,
    pub activity: Vec<ActivityDto>,
    /// Log position the read models include for this answer.
    pub position: i64,
}
