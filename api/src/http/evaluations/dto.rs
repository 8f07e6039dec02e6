//! The request and response shapes of test cases, evaluations and the gate.

use super::super::error::{ApiError, ApiResult};
use super::super::versions::MessageDto;
use promptos_core::content::ChatMessage;
use promptos_core::evaluation::{CaseName, CaseOutcome, Expectation, TestCase};
use promptos_projector::views::{EvaluationRow, TestCaseRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A test case as sent: the inputs, and what the answer must satisfy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCaseInput {
    /// Unique within the prompt, 1 to 100 characters.
    #[schema(example = "refund request", min_length = 1, max_length = 100)]
    pub name: String,
    /// Values for the template's variables.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"customer_name": "Ada", "question": "Where is my refund?"}))]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// For chat prompts: messages sent after the version's own (a user's turn, say).
    #[serde(default)]
    pub messages: Vec<MessageDto>,
    /// Each passes or fails with a reason; the case passes when all do.
    #[schema(max_items = 20)]
    pub expectations: Vec<Expectation>,
}

impl TestCaseInput {
    /// The case, its expectations compiled to be sure they can be checked.
    pub fn parse(self, case_id: uuid::Uuid) -> ApiResult<TestCase> {
        let name = CaseName::parse(&self.name)?;
        let messages = MessageDto::parse_all(&self.messages)?;
        crate::evaluation::expect::compile(&self.expectations)?;
        let case = TestCase { case_id, name, variables: self.variables, messages, expectations: self.expectations };
        case.check()?;
        Ok(case)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestCaseDto {
    pub case_id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub variables: BTreeMap<String, serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<ChatMessage>,
    pub expectations: Vec<Expectation>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

impl TryFrom<TestCaseRow> for TestCaseDto {
    type Error = ApiError;

    fn try_from(row: TestCaseRow) -> ApiResult<Self> {
        let case: TestCase = serde_json::from_str(&row.body).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Self {
            case_id: row.case_id,
            name: row.name,
            variables: case.variables,
            messages: case.messages,
            expectations: case.expectations,
            created_at: row.created_at,
            created_by: row.created_by,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestCaseList {
    pub items: Vec<TestCaseDto>,
}

/// One evaluation run.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationDto {
    pub evaluation_id: String,
    pub prompt_name: String,
    pub version_string: String,
    /// SHA-256 of the version's wording and configuration: what was evaluated.
    pub version_hash: String,
    pub provider: String,
    pub model: String,
    /// Where the version's includes were resolved.
    pub environment: String,
    /// `running`, `completed`, or `interrupted` (the server stopped while it ran).
    pub status: String,
    pub cases: i64,
    pub passed: Option<i64>,
    pub total: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Why the run ended before every case ran (the cost guard), if it did.
    pub stopped: Option<String>,
    /// Whether the run counts for the gate: completed on the test cases as they are now.
    pub current: bool,
    pub started_at: String,
    pub started_by: String,
    pub completed_at: Option<String>,
    /// Per case, once completed.
    pub outcomes: Vec<CaseOutcome>,
}

impl EvaluationDto {
    pub fn from_row(prompt_name: &str, row: EvaluationRow, current: bool, interrupted: bool) -> ApiResult<Self> {
        let outcomes = match &row.outcomes {
            Some(json) => serde_json::from_str(json).map_err(|e| ApiError::Internal(e.into()))?,
            None => Vec::new(),
        };
        let status = if row.status == "running" && interrupted { "interrupted".into() } else { row.status };
        Ok(Self {
            evaluation_id: row.evaluation_id,
            prompt_name: prompt_name.to_owned(),
            version_string: row.version_string,
            version_hash: row.version_hash,
            provider: row.provider,
            model: row.model,
            environment: row.environment,
            status,
            cases: row.cases,
            passed: row.passed,
            total: row.total,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            duration_ms: row.duration_ms,
            stopped: row.stopped,
            current,
            started_at: row.started_at,
            started_by: row.started_by,
            completed_at: row.completed_at,
            outcomes,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationList {
    pub items: Vec<EvaluationDto>,
}

/// A version's standing at the evaluation gate.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionGateDto {
    pub version_string: String,
    /// May go live in the gated environments now.
    pub open: bool,
    /// "evaluation passed 14/14", "v2 has not been evaluated", …
    pub reason: String,
    /// Cases that failed, or that still have to run.
    pub cases: Vec<String>,
    /// The evaluation the answer rests on.
    pub evaluation_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GateDto {
    pub prompt_name: String,
    /// The gated environments (`PROMPTOS_GATED_ENVIRONMENTS`); empty when none is.
    pub environments: Vec<String>,
    /// Percent of a run's cases that must pass.
    pub pass_rate: u8,
    /// Test cases the prompt has now.
    pub test_cases: usize,
    /// Every version, newest first.
    pub versions: Vec<VersionGateDto>,
}

/// Whether one test case renders against a version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderCheckDto {
    pub case_id: String,
    pub case_name: String,
    pub ok: bool,
    /// Why it does not render: a missing variable, an include that does not resolve, a
    /// result over the size limit.
    pub error: Option<String>,
    /// Characters sent to the provider when it renders.
    pub rendered_chars: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RenderChecks {
    pub version_string: String,
    pub environment: String,
    /// True when every case renders.
    pub ok: bool,
    pub items: Vec<RenderCheckDto>,
}
