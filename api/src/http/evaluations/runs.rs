//! Evaluation runs: start one (`POST /prompts/{name}/versions/{v}/evaluations`), follow
//! it (`GET /evaluations/{id}/events`, server-sent events), read runs, and compare two
//! runs case by case.

use super::dto::{EvaluationDto, EvaluationList};
use super::{include_environment, version_row, written};
use crate::app::AppState;
use crate::auth::Caller;
use crate::evaluation::run::{self, Job, Limits, Progress, MAX_RUN};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{JsonOrEmpty, Query};
use crate::http::support::{live_prompt, path_name};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use promptos_core::evaluation::{CaseOutcome, EvaluationCommand};
use promptos_core::events::prompt_stream;
use promptos_core::names::{Role, VersionString};
use promptos_core::prompt::PromptCommand;
use promptos_projector::queries;
use promptos_projector::views::{EvaluationRow, RowOp};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub(crate) fn routes() -> crate::http::Routes {
    use crate::http::RoutesExt;
    crate::http::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(start))
        .routes_and_twins(utoipa_axum::routes!(list))
        .routes_and_twins(utoipa_axum::routes!(get))
        .routes_and_twins(utoipa_axum::routes!(events))
        .routes_and_twins(utoipa_axum::routes!(compare))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartEvaluation {
    /// Default: the server's default provider.
    pub provider: Option<String>,
    /// Default: the version's configured `model`, else the provider's default.
    pub model: Option<String>,
    /// The model that grades `judge` expectations. Default: the run's model.
    pub judge_model: Option<String>,
    /// Where the version's includes resolve. Default: the first gated environment,
    /// else the last configured one.
    pub environment: Option<String>,
}

/// Whether a running row was left behind by a server that stopped.
fn interrupted(row: &EvaluationRow) -> bool {
    chrono::DateTime::parse_from_rfc3339(&row.started_at)
        .ok()
        .is_some_and(|at| chrono::Utc::now().signed_duration_since(at).to_std().unwrap_or_default() > MAX_RUN)
}

fn dto(name: &str, row: EvaluationRow, revision: u64) -> ApiResult<EvaluationDto> {
    let current = row.status == "completed" && row.suite_revision as u64 == revision;
    let stale = interrupted(&row);
    EvaluationDto::from_row(name, row, current, stale)
}

/// Run every test case of the prompt against a version (editors). Answers at once with
/// the run (202); follow it at `/evaluations/{id}/events`. The outcome is recorded as
/// `EvaluationStarted` and `EvaluationCompleted` events.
#[utoipa::path(post, path = "/prompts/{name}/versions/{version_string}/evaluations", tag = "evaluations",
    params(("name" = String, Path), ("version_string" = String, Path)), request_body = StartEvaluation,
    responses((status = 202, body = EvaluationDto), (status = 404, body = crate::http::error::ErrorBody),
        (status = 409, description = "The prompt has no test cases", body = crate::http::error::ErrorBody),
        (status = 422, description = "No such provider, or more cases than the cost guard allows", body = crate::http::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
    JsonOrEmpty(body): JsonOrEmpty<StartEvaluation>,
) -> ApiResult<(StatusCode, axum::Json<EvaluationDto>)> {
    caller.require(Role::Editor)?;
    let name = path_name(&name)?;
    let prompt = live_prompt(&state, name.as_str()).await?;
    let row = version_row(&state, &prompt, &version).await?;
    let version_string = VersionString::parse(&version)?;
    let environment = include_environment(&state, body.environment.as_deref())?;
    let provider =
        state.optimizer.provider(body.provider.as_deref()).map_err(|e| ApiError::invalid("provider", e.to_string()))?;
    let config: Option<promptos_core::content::ModelConfig> =
        row.config.as_deref().and_then(|c| serde_json::from_str(c).ok());
    let model =
        crate::evaluation::render::choose_model(body.model.as_deref(), config.as_ref(), provider.default_model());
    let judge_model = body.judge_model.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| model.clone());
    let limits = &state.settings.evaluations;
    let cases = written(&state, &name).await?.suite.cases.len();
    if cases > limits.max_cases {
        return Err(ApiError::invalid(
            "version_string",
            format!(
                "the prompt has {cases} test cases; one evaluation runs at most {} (PROMPTOS_EVAL_MAX_CASES)",
                limits.max_cases
            ),
        ));
    }
    let evaluation_id = Uuid::now_v7();
    let command = EvaluationCommand::Start {
        evaluation_id,
        version_string,
        provider: provider.name().to_owned(),
        model: model.clone(),
        environment: environment.clone(),
    };
    let outcome = state
        .commands
        .prompts
        .execute(prompt_stream(&name), PromptCommand::Evaluation(command), caller.meta.clone())
        .await?;
    let Some(live) = outcome.state.live() else { return Err(ApiError::NotFound(format!("prompt {name:?} not found"))) };
    let cases = live.suite.ordered();
    let revision = live.suite.revision;
    let job = Job {
        evaluation_id,
        prompt: name.to_string(),
        environment: environment.to_string(),
        version: row,
        provider: provider.clone(),
        model,
        judge_model,
        http: state.optimizer.http().clone(),
        policy: state.optimizer.policy(),
        limits: Limits { concurrency: limits.concurrency, max_tokens: limits.max_tokens },
    };
    let background = state.clone();
    let (stream, meta) = (prompt_stream(&name), caller.meta.clone());
    tokio::spawn(async move {
        let finished = run::run(background.db.clone(), background.runs.clone(), job, cases).await;
        let passed = finished.outcomes.iter().filter(|o| o.passed).count() as u32;
        let total = finished.outcomes.len() as u32;
        let stopped = finished.stopped.clone();
        let complete = EvaluationCommand::Complete {
            evaluation_id,
            outcomes: finished.outcomes,
            input_tokens: finished.input_tokens,
            output_tokens: finished.output_tokens,
            duration_ms: finished.duration_ms,
            stopped: finished.stopped,
        };
        match background.commands.prompts.execute(stream, PromptCommand::Evaluation(complete), meta).await {
            Ok(outcome) => {
                background.settle(outcome.position).await;
            }
            Err(e) => tracing::error!(error = %e, %evaluation_id, "the evaluation's outcome could not be recorded"),
        }
        background.runs.end(evaluation_id, Progress::Completed { passed, total, stopped });
    });
    state.settle(outcome.position).await;
    // The answer is the row the start projects to: "running", however fast the run is.
    let started = crate::http::support::projected(&outcome.events, |op| match op {
        RowOp::Evaluations(promptos_projector::views::evaluations::Op::Insert(row)) => Some(*row),
        _ => None,
    })?;
    Ok((StatusCode::ACCEPTED, axum::Json(dto(name.as_str(), started, revision)?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this version's runs.
    pub version_string: Option<String>,
    /// At most this many, newest first (1–500, default 50).
    pub limit: Option<i64>,
}

/// A prompt's evaluation runs, newest first. `current` says whether a run counts for
/// the gate (completed on the test cases as they are now).
#[utoipa::path(get, path = "/prompts/{name}/evaluations/", tag = "evaluations", params(("name" = String, Path), ListParams),
    responses((status = 200, body = EvaluationList), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<EvaluationList>> {
    caller.require(Role::Viewer)?;
    let name = path_name(&name)?;
    let prompt = live_prompt(&state, name.as_str()).await?;
    let limit = crate::http::support::page_size(p.limit, 50)?;
    let revision = written(&state, &name).await?.suite.revision;
    let rows = queries::evaluations(&state.db, &prompt.prompt_id, p.version_string.as_deref(), limit).await?;
    let items = rows.into_iter().map(|r| dto(name.as_str(), r, revision)).collect::<ApiResult<_>>()?;
    Ok(axum::Json(EvaluationList { items }))
}

/// The prompt name and stream revision of a run, or 404.
async fn run_of(state: &AppState, id: &str) -> ApiResult<(String, EvaluationRow, u64)> {
    let not_found = || ApiError::NotFound(format!("evaluation {id:?} not found"));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let row = queries::evaluation(&state.db, &id.to_string()).await?.ok_or_else(not_found)?;
    let prompt = queries::prompt_by_id(&state.db, &row.prompt_id).await?.ok_or_else(not_found)?;
    let revision = match path_name(&prompt.name) {
        Ok(name) => written(state, &name).await.map(|p| p.suite.revision).unwrap_or(u64::MAX),
        Err(_) => u64::MAX,
    };
    Ok((prompt.name, row, revision))
}

/// One evaluation run, with its outcome per case once completed.
#[utoipa::path(get, path = "/evaluations/{id}", tag = "evaluations", params(("id" = String, Path)),
    responses((status = 200, body = EvaluationDto), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<EvaluationDto>> {
    caller.require(Role::Viewer)?;
    let (name, row, revision) = run_of(&state, &id).await?;
    Ok(axum::Json(dto(&name, row, revision)?))
}

fn sse(step: &Progress) -> Event {
    let kind = match step {
        Progress::Case { .. } => "case",
        Progress::Completed { .. } => "completed",
    };
    Event::default().event(kind).json_data(step).expect("progress serializes")
}

/// A run's progress as server-sent events: a `case` event per finished case (with its
/// outcome and `done`/`total`), then `completed`. A run already finished answers its
/// cases and `completed` at once; one another server runs is followed from the log.
#[utoipa::path(get, path = "/evaluations/{id}/events", tag = "evaluations", params(("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of `case` and `completed` events", content_type = "text/event-stream"),
        (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require(Role::Viewer)?;
    let (_, row, _) = run_of(&state, &id).await?;
    let evaluation_id = Uuid::parse_str(&row.evaluation_id).map_err(|e| ApiError::Internal(e.into()))?;
    let followed = state.runs.follow(evaluation_id);
    let state2 = state.clone();
    let stream = async_stream(move |tx| async move {
        if let Some((so_far, mut rx)) = followed {
            for step in so_far {
                if tx.send(sse(&step)).await.is_err() {
                    return;
                }
            }
            while let Ok(step) = rx.recv().await {
                let last = matches!(step, Progress::Completed { .. });
                if tx.send(sse(&step)).await.is_err() || last {
                    return;
                }
            }
            // The sender went away between the last case and the record: read it.
        }
        // Finished, or run by another server: poll the read model until it completes.
        let deadline = tokio::time::Instant::now() + MAX_RUN;
        loop {
            match queries::evaluation(&state2.db, &row.evaluation_id).await {
                Ok(Some(r)) if r.status == "completed" => {
                    let outcomes: Vec<CaseOutcome> =
                        r.outcomes.as_deref().and_then(|o| serde_json::from_str(o).ok()).unwrap_or_default();
                    let total = outcomes.len();
                    for (i, outcome) in outcomes.into_iter().enumerate() {
                        if tx.send(sse(&Progress::Case { done: i + 1, total, outcome })).await.is_err() {
                            return;
                        }
                    }
                    let end = Progress::Completed {
                        passed: r.passed.unwrap_or(0) as u32,
                        total: r.total.unwrap_or(0) as u32,
                        stopped: r.stopped,
                    };
                    let _ = tx.send(sse(&end)).await;
                    return;
                }
                _ if tokio::time::Instant::now() > deadline => return,
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by a task through a small channel.
fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(body(tx));
    tokio_stream_of(rx)
}

fn tokio_stream_of(mut rx: tokio::sync::mpsc::Receiver<Event>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CompareParams {
    /// The run to compare from.
    pub base: String,
    /// The run to compare with.
    pub head: String,
}

/// One test case in two runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseComparison {
    pub case_name: String,
    /// The case's outcome in each run (absent where the run did not have the case).
    pub base: Option<CaseOutcome>,
    pub head: Option<CaseOutcome>,
    /// `fixed`, `broke`, `passing`, `failing`, `added` or `removed`.
    pub change: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Comparison {
    pub base: EvaluationDto,
    pub head: EvaluationDto,
    pub cases: Vec<CaseComparison>,
}

/// Two completed runs case by case (of two versions, say): what got fixed, what broke.
#[utoipa::path(get, path = "/evaluations/compare", tag = "evaluations", params(CompareParams),
    responses((status = 200, body = Comparison), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<CompareParams>,
) -> ApiResult<axum::Json<Comparison>> {
    caller.require(Role::Viewer)?;
    let (base_name, base_row, base_rev) = run_of(&state, &p.base).await?;
    let (head_name, head_row, head_rev) = run_of(&state, &p.head).await?;
    let base = dto(&base_name, base_row, base_rev)?;
    let head = dto(&head_name, head_row, head_rev)?;
    let mut names: Vec<String> = base.outcomes.iter().chain(&head.outcomes).map(|o| o.case_name.clone()).collect();
    names.sort();
    names.dedup();
    let find = |run: &EvaluationDto, n: &str| run.outcomes.iter().find(|o| o.case_name == n).cloned();
    let cases = names
        .into_iter()
        .map(|n| {
            let (b, h) = (find(&base, &n), find(&head, &n));
            let change = match (b.as_ref().map(|o| o.passed), h.as_ref().map(|o| o.passed)) {
                (Some(false), Some(true)) => "fixed",
                (Some(true), Some(false)) => "broke",
                (Some(true), Some(true)) => "passing",
                (Some(false), Some(false)) => "failing",
                (None, _) => "added",
                (_, None) => "removed",
            };
            CaseComparison { case_name: n, base: b, head: h, change: change.into() }
        })
        .collect();
    Ok(axum::Json(Comparison { base, head, cases }))
}
