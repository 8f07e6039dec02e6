//! The events of test cases and evaluations. They live on the prompt's stream, beside
//! its versions and deployments, so the deploy gate is decided on one stream's state.

use super::{CaseOutcome, TestCase};
use crate::names::{EnvironmentName, PromptName, VersionString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCaseAdded {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub case: TestCase,
}

/// The case as it is now (same id; any field may have changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCaseUpdated {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub case: TestCase,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCaseRemoved {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub case_id: Uuid,
    pub case_name: String,
}

/// An evaluation of one version began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationStarted {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub evaluation_id: Uuid,
    pub version_string: VersionString,
    /// SHA-256 of the version's wording and model configuration
    /// ([`crate::evaluation::suite::version_hash`]): what was evaluated, exactly.
    pub version_hash: String,
    /// The test cases' revision when the run began: a completed run counts for the gate
    /// only while no case was added, changed or removed since.
    pub suite_revision: u64,
    /// How many cases the run takes.
    pub cases: u32,
    pub provider: String,
    pub model: String,
    /// Where the version's includes were resolved for the run.
    pub environment: EnvironmentName,
}

/// An evaluation ended: every case's outcome, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationCompleted {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub evaluation_id: Uuid,
    pub version_string: VersionString,
    pub version_hash: String,
    pub suite_revision: u64,
    /// The provider and model that answered (as the start recorded them).
    pub provider: String,
    pub model: String,
    pub passed: u32,
    pub total: u32,
    pub outcomes: Vec<CaseOutcome>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration_ms: u64,
    /// Set when the run ended before every case ran (the cost guard, say); the cases
    /// that did not run count as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Why a version could go live in a gated environment, recorded in the event that made
/// it live, so an auditor sees which evaluation allowed which deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeployGate {
    /// A completed evaluation of the version passed.
    Evaluation { evaluation_id: Uuid, passed: u32, total: u32 },
    /// An admin deployed without a passing evaluation, for this reason.
    Override { reason: String },
}
