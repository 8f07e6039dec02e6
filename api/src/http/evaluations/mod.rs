//! `/prompts/{name}/test-cases/`, `/prompts/{name}/gate` and
//! `/prompts/{name}/versions/{v}/checks`: a prompt's test cases, where each version
//! stands at the evaluation gate, and whether every case renders. The runs themselves
//! are in [`runs`].

pub mod dto;
pub mod runs;

use super::error::{ApiError, ApiResult};
use super::extract::{Json, Query};
use super::support::{live_prompt, path_name, projected};
use crate::app::AppState;
use crate::auth::Caller;
use crate::evaluation::render::render;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dto::*;
use promptos_core::evaluation::gate;
use promptos_core::evaluation::{EvaluationCommand, TestCase};
use promptos_core::events::prompt_stream;
use promptos_core::names::{EnvironmentName, PromptName, Role};
use promptos_core::prompt::{PromptCommand, PromptState};
use promptos_projector::queries;
use promptos_projector::views::{PromptRow, RowOp};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(list_cases, add_case))
        .routes_and_twins(utoipa_axum::routes!(get_case, update_case, remove_case))
        .routes_and_twins(utoipa_axum::routes!(gate_status))
        .routes_and_twins(utoipa_axum::routes!(render_checks))
        .merge(runs::routes())
}

fn case_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("test case {id:?} not found")))
}

/// The prompt's stream as the write side holds it: its cases, versions and evaluations,
/// exactly (not a read model that may lag).
pub(crate) async fn written(state: &AppState, name: &PromptName) -> ApiResult<promptos_core::prompt::LivePrompt> {
    match state.commands.prompts.current(prompt_stream(name)).await? {
        PromptState::Live(p) => Ok(p),
        _ => Err(ApiError::NotFound(format!("prompt {:?} not found", name.as_str()))),
    }
}

async fn run_case_command(
    state: &AppState,
    caller: Caller,
    name: &PromptName,
    command: EvaluationCommand,
) -> ApiResult<Vec<promptos_store::StoredEvent>> {
    let outcome =
        state.commands.prompts.execute(prompt_stream(name), PromptCommand::Evaluation(command), caller.meta).await?;
    state.settle(outcome.position).await;
    Ok(outcome.events)
}

fn case_row(events: &[promptos_store::StoredEvent]) -> ApiResult<TestCaseDto> {
    projected(events, |op| match op {
        RowOp::TestCases(promptos_projector::views::test_cases::Op::Insert(row)) => Some(row),
        _ => None,
    })?
    .try_into()
}

/// A prompt's test cases, by name.
#[utoipa::path(get, path = "/prompts/{name}/test-cases/", tag = "evaluations", params(("name" = String, Path)),
    responses((status = 200, body = TestCaseList), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_cases(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<TestCaseList>> {
    caller.require(Role::Viewer)?;
    let prompt = live_prompt(&state, path_name(&name)?.as_str()).await?;
    let rows = queries::test_cases(&state.db, &prompt.prompt_id).await?;
    let items = rows.into_iter().map(TestCaseDto::try_from).collect::<ApiResult<_>>()?;
    Ok(axum::Json(TestCaseList { items }))
}

/// Add a test case (editors). Patterns and JSON Schemas are compiled now: a broken one
/// is a 422 naming the expectation.
#[utoipa::path(post, path = "/prompts/{name}/test-cases/", tag = "evaluations", params(("name" = String, Path)),
    request_body = TestCaseInput,
    responses((status = 201, body = TestCaseDto), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "A case of that name exists", body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)))]
pub async fn add_case(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<TestCaseInput>,
) -> ApiResult<(StatusCode, axum::Json<TestCaseDto>)> {
    caller.require(Role::Editor)?;
    let name = path_name(&name)?;
    let case = body.parse(Uuid::now_v7())?;
    let events = run_case_command(&state, caller, &name, EvaluationCommand::AddTestCase { case }).await?;
    Ok((StatusCode::CREATED, axum::Json(case_row(&events)?)))
}

/// One test case.
#[utoipa::path(get, path = "/prompts/{name}/test-cases/{case_id}", tag = "evaluations",
    params(("name" = String, Path), ("case_id" = String, Path)),
    responses((status = 200, body = TestCaseDto), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_case(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<TestCaseDto>> {
    caller.require(Role::Viewer)?;
    let prompt = live_prompt(&state, path_name(&name)?.as_str()).await?;
    let id = case_id(&id)?;
    let rows = queries::test_cases(&state.db, &prompt.prompt_id).await?;
    let row = rows
        .into_iter()
        .find(|r| r.case_id == id.to_string())
        .ok_or_else(|| ApiError::NotFound(format!("prompt {name:?} has no test case {id}")))?;
    Ok(axum::Json(row.try_into()?))
}

/// Replace a test case (same id). Every evaluation before it no longer opens the gate.
#[utoipa::path(put, path = "/prompts/{name}/test-cases/{case_id}", tag = "evaluations",
    params(("name" = String, Path), ("case_id" = String, Path)), request_body = TestCaseInput,
    responses((status = 200, body = TestCaseDto), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn update_case(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Json(body): Json<TestCaseInput>,
) -> ApiResult<axum::Json<TestCaseDto>> {
    caller.require(Role::Editor)?;
    let name = path_name(&name)?;
    let id = case_id(&id)?;
    let case = body.parse(id)?;
    run_case_command(&state, caller, &name, EvaluationCommand::UpdateTestCase { case }).await?;
    let prompt = live_prompt(&state, name.as_str()).await?;
    let rows = queries::test_cases(&state.db, &prompt.prompt_id).await?;
    let row = rows.into_iter().find(|r| r.case_id == id.to_string()).ok_or_else(|| {
        ApiError::Unavailable("the read models have not caught up with the change yet; read it again".into())
    })?;
    Ok(axum::Json(row.try_into()?))
}

/// Remove a test case. Every evaluation before it no longer opens the gate.
#[utoipa::path(delete, path = "/prompts/{name}/test-cases/{case_id}", tag = "evaluations",
    params(("name" = String, Path), ("case_id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn remove_case(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Editor)?;
    let name = path_name(&name)?;
    let case_id = case_id(&id)?;
    run_case_command(&state, caller, &name, EvaluationCommand::RemoveTestCase { case_id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where each version stands at the evaluation gate, decided on the prompt's stream as
/// the write side holds it (the answer a deploy would get now).
#[utoipa::path(get, path = "/prompts/{name}/gate", tag = "evaluations", params(("name" = String, Path)),
    responses((status = 200, body = GateDto), (status = 404, body = super::error::ErrorBody)))]
pub async fn gate_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<GateDto>> {
    caller.require(Role::Viewer)?;
    let name = path_name(&name)?;
    let prompt = written(&state, &name).await?;
    let policy = &state.commands.context().gate;
    let mut versions: Vec<_> = prompt.suite.version_hashes.keys().collect();
    // Newest first, in the order they were created.
    let order = queries::versions(&state.db, &prompt.prompt_id.to_string(), 0, 10_000).await?;
    let rank: std::collections::HashMap<&str, i64> =
        order.iter().map(|v| (v.version_string.as_str(), v.position)).collect();
    versions.sort_by_key(|v| std::cmp::Reverse(rank.get(v.as_str()).copied().unwrap_or(i64::MAX)));
    let versions = versions
        .into_iter()
        .map(|v| {
            let s = gate::status(&prompt.suite, policy, v);
            VersionGateDto {
                version_string: v.to_string(),
                open: s.open,
                reason: s.reason,
                cases: s.cases,
                evaluation_id: s.evaluation_id.map(|id| id.to_string()),
            }
        })
        .collect();
    Ok(axum::Json(GateDto {
        prompt_name: name.to_string(),
        environments: policy.environments.iter().map(|e| e.to_string()).collect(),
        pass_rate: policy.pass_rate,
        test_cases: prompt.suite.cases.len(),
        versions,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChecksParams {
    /// Where to resolve the version's includes (default: the first gated environment,
    /// else the last configured one).
    pub environment: Option<String>,
}

/// The environment a run or a check resolves includes in.
pub(crate) fn include_environment(state: &AppState, given: Option<&str>) -> ApiResult<EnvironmentName> {
    let ctx = state.commands.context();
    match given {
        Some(e) => {
            let env = EnvironmentName::parse(e)?;
            ctx.check_environment(&env)?;
            Ok(env)
        }
        None => ctx
            .gate
            .environments
            .first()
            .or(ctx.environments.iter().rev().find(|e| e.as_str() != crate::optimize::goals::SYSTEM_ENVIRONMENT))
            .cloned()
            .ok_or_else(|| ApiError::invalid("environment", "no environment is configured")),
    }
}

/// The version row of `prompt`, or 404.
pub(crate) async fn version_row(
    state: &AppState,
    prompt: &PromptRow,
    version: &str,
) -> ApiResult<promptos_projector::views::VersionRow> {
    queries::version(&state.db, &prompt.prompt_id, version).await?.ok_or_else(|| {
        ApiError::Domain(promptos_core::DomainError::VersionNotFound {
            prompt: prompt.name.clone(),
            version: version.to_owned(),
        })
    })
}

/// Whether every test case renders against a version: no missing variable, includes
/// that resolve, a result within the size limit. Instant: no provider is called.
#[utoipa::path(get, path = "/prompts/{name}/versions/{version_string}/checks", tag = "evaluations",
    params(("name" = String, Path), ("version_string" = String, Path), ChecksParams),
    responses((status = 200, body = RenderChecks), (status = 404, body = super::error::ErrorBody)))]
pub async fn render_checks(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
    Query(p): Query<ChecksParams>,
) -> ApiResult<axum::Json<RenderChecks>> {
    caller.require(Role::Viewer)?;
    let prompt = live_prompt(&state, path_name(&name)?.as_str()).await?;
    let environment = include_environment(&state, p.environment.as_deref())?;
    let row = version_row(&state, &prompt, &version).await?;
    let cases = queries::test_cases(&state.db, &prompt.prompt_id).await?;
    let mut items = Vec::with_capacity(cases.len());
    for case in cases {
        let parsed: TestCase = serde_json::from_str(&case.body).map_err(|e| ApiError::Internal(e.into()))?;
        let rendered =
            render(&state.db, &prompt.name, environment.as_str(), &row, &parsed.variables, &parsed.messages).await;
        let (ok, error, chars) = match rendered {
            Ok(r) => (true, None, Some(r.messages.iter().map(|m| m.content.chars().count()).sum())),
            Err(crate::evaluation::render::RenderError::Unavailable(why)) => return Err(ApiError::Unavailable(why)),
            Err(e) => (false, Some(e.to_string()), None),
        };
        items.push(RenderCheckDto { case_id: case.case_id, case_name: case.name, ok, error, rendered_chars: chars });
    }
    Ok(axum::Json(RenderChecks {
        version_string: row.version_string,
        environment: environment.to_string(),
        ok: items.iter().all(|i| i.ok),
        items,
    }))
}
