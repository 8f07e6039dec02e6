//! `/deployments/split`: A/B experiments. An environment serves several versions of a
//! prompt, each to a whole-percent share of the traffic; the SDK picks a subject's
//! variant locally (see `promptos_core::experiment`).

use super::error::{ApiError, ApiResult};
use super::extract::Json;
use crate::app::AppState;
use crate::auth::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use promptos_core::events::{prompt_stream, ExperimentOutcome};
use promptos_core::experiment::SplitVariant;
use promptos_core::names::{EnvironmentName, PromptName, Role, VersionString};
use promptos_core::prompt::PromptCommand;
use promptos_core::Event;
use promptos_projector::views::ExperimentRow;
use promptos_store::StoredEvent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[schema(example = "v2", pattern = "^[A-Za-z0-9._+-]+$", min_length = 1, max_length = 50)]
    pub version_string: String,
    /// Whole percent of the traffic, 0–100; the weights of a split add up to 100.
    #[schema(example = 50, maximum = 100)]
    pub weight: u8,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    #[schema(example = "customer-support-agent", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 100)]
    pub prompt_name: String,
    #[schema(example = "production", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
    /// 2 to 10 distinct versions. The first is what clients that know nothing of
    /// experiments are served, so list the current version first.
    #[schema(min_items = 2, max_items = 10)]
    pub variants: Vec<Variant>,
    /// Admins only: bypass a change-request policy on the environment (recorded).
    #[serde(default)]
    pub force: bool,
    /// Admins only: start the split in a gated environment without passing evaluations
    /// of its new versions, for this reason (recorded in the event).
    #[schema(min_length = 1, max_length = 500)]
    pub gate_override: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopSplit {
    #[schema(example = "customer-support-agent", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 100)]
    pub prompt_name: String,
    #[schema(example = "production", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
    /// The version that serves all traffic from now on: a variant (promote the winner)
    /// or the version live before the experiment (revert).
    #[schema(example = "v2", pattern = "^[A-Za-z0-9._+-]+$", min_length = 1, max_length = 50)]
    pub version_string: String,
    /// Admins only: bypass a change-request policy on the environment (recorded).
    #[serde(default)]
    pub force: bool,
}

/// A running experiment.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentDto {
    pub prompt_name: String,
    pub environment: String,
    /// Part of every subject's hash.
    pub experiment_id: String,
    /// In the experiment's order; the first is served to clients unaware of experiments.
    pub variants: Vec<Variant>,
    /// Which variant (index into `variants`) serves each of the 100 buckets.
    pub buckets: Vec<u8>,
    /// The version live before the experiment: stopping with it reverts.
    pub previous_version_string: Option<String>,
    pub started_at: String,
    pub started_by: String,
    /// Log position of the experiment's last change.
    pub position: i64,
}

impl ExperimentDto {
    pub fn from_row(prompt_name: &str, x: ExperimentRow) -> Self {
        Self {
            prompt_name: prompt_name.to_owned(),
            environment: x.environment,
            experiment_id: x.experiment_id,
            variants: serde_json::from_str(&x.variants).unwrap_or_default(),
            buckets: serde_json::from_str(&x.buckets).unwrap_or_default(),
            previous_version_string: x.previous_version_string,
            started_at: x.started_at,
            started_by: x.started_by,
            position: x.position,
        }
    }
}

/// What stopping an experiment did.
#[derive(Debug, Serialize, ToSchema)]
pub struct StopResult {
    pub prompt_name: String,
    pub environment: String,
    pub experiment_id: String,
    /// The version that serves all traffic now.
    pub version_string: String,
    /// `promoted` or `reverted`.
    pub outcome: String,
    pub position: i64,
}

fn parse_split(body: &Split) -> ApiResult<(PromptName, EnvironmentName, Vec<SplitVariant>)> {
    let name = PromptName::parse(&body.prompt_name).map_err(|e| ApiError::invalid("prompt_name", e.message))?;
    let environment = EnvironmentName::parse(&body.environment)?;
    let variants = body
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let version_string = VersionString::parse_field(&v.version_string, "variants")
                .map_err(|e| ApiError::invalid(&format!("variants[{i}].version_string"), e.message))?;
            Ok(SplitVariant { version_string, weight: v.weight })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((name, environment, variants))
}

/// The experiment as the appended events say it is now (right even while the read
/// models lag).
fn from_events(name: &PromptName, events: &[StoredEvent], running: Option<ExperimentDto>) -> ApiResult<ExperimentDto> {
    for stored in events {
        let event = stored.decode().map_err(|e| ApiError::Internal(e.into()))?;
        let at = stored.recorded_at.clone();
        match event {
            Event::ExperimentStarted(e) => {
                return Ok(ExperimentDto {
                    prompt_name: name.to_string(),
                    environment: e.environment.to_string(),
                    experiment_id: e.experiment_id.to_string(),
                    variants: variants(&e.variants),
                    buckets: e.buckets,
                    previous_version_string: e.previous_version_string.map(|v| v.to_string()),
                    started_at: at,
                    started_by: stored.metadata().actor,
                    position: stored.position,
                })
            }
            Event::ExperimentWeightsChanged(e) => {
                let before = running.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no experiment to change")))?;
                return Ok(ExperimentDto {
                    variants: variants(&e.variants),
                    buckets: e.buckets,
                    position: stored.position,
                    ..before
                });
            }
            _ => {}
        }
    }
    running.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the command appended no experiment event")))
}

fn variants(v: &[SplitVariant]) -> Vec<Variant> {
    v.iter().map(|v| Variant { version_string: v.version_string.to_string(), weight: v.weight }).collect()
}

/// The running experiment from the command's resulting state (for no-op re-weights).
fn from_state(
    name: &PromptName,
    environment: &EnvironmentName,
    state: &promptos_core::prompt::PromptState,
    started: Option<(String, String)>,
    position: i64,
) -> Option<ExperimentDto> {
    let running = state.live()?.experiments.get(environment)?;
    let (started_at, started_by) = started.unwrap_or_default();
    Some(ExperimentDto {
        prompt_name: name.to_string(),
        environment: environment.to_string(),
        experiment_id: running.experiment_id.to_string(),
        variants: variants(&running.variants),
        buckets: running.buckets.clone(),
        previous_version_string: running.previous_version_string.as_ref().map(|v| v.to_string()),
        started_at,
        started_by,
        position,
    })
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(start))
        .routes_and_twins(utoipa_axum::routes!(reweight))
        .routes_and_twins(utoipa_axum::routes!(stop))
}

/// Start an A/B experiment: split an environment's traffic between versions.
///
/// A plain deploy or rollback in the environment ends it. Protected environments need
/// an admin, as deploys do.
#[utoipa::path(post, path = "/deployments/split", tag = "deployments", request_body = Split,
    responses((status = 201, body = ExperimentDto),
        (status = 409, description = "An experiment is already running there", body = super::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    mut caller: Caller,
    Json(body): Json<Split>,
) -> ApiResult<(StatusCode, axum::Json<ExperimentDto>)> {
    caller.require(Role::Editor)?;
    let (name, environment, variants) = parse_split(&body)?;
    // A policy speaks first: everyone, editor or admin, is pointed to change requests.
    caller.require_direct_change(&state, &environment, body.force)?;
    caller.require_deploy(&state, &environment)?;
    let gate_override = caller.gate_override(body.gate_override.as_deref())?;
    let command = PromptCommand::StartExperiment {
        environment: environment.clone(),
        experiment_id: uuid::Uuid::now_v7(),
        variants,
        gate_override,
    };
    let outcome = state
        .commands
        .prompts
        .execute(prompt_stream(&name), command, caller.meta)
        .await
        .map_err(|e| ApiError::from(e).on_field("variants"))?;
    state.settle(outcome.position).await;
    Ok((StatusCode::CREATED, axum::Json(from_events(&name, &outcome.events, None)?)))
}

/// Change the weights of the running experiment (same versions). Subjects move only
/// from variants that shrink to variants that grow.
#[utoipa::path(post, path = "/deployments/split/weights", tag = "deployments", request_body = Split,
    responses((status = 200, body = ExperimentDto),
        (status = 409, description = "No experiment is running there", body = super::error::ErrorBody)))]
pub async fn reweight(
    State(state): State<AppState>,
    mut caller: Caller,
    Json(body): Json<Split>,
) -> ApiResult<axum::Json<ExperimentDto>> {
    caller.require(Role::Editor)?;
    let (name, environment, variants) = parse_split(&body)?;
    // A policy speaks first: everyone, editor or admin, is pointed to change requests.
    caller.require_direct_change(&state, &environment, body.force)?;
    caller.require_deploy(&state, &environment)?;
    let command = PromptCommand::ChangeExperimentWeights { environment: environment.clone(), variants };
    let outcome = state.commands.prompts.execute(prompt_stream(&name), command, caller.meta).await?;
    state.settle(outcome.position).await;
    let prompt_id = outcome.state.live().map(|p| p.prompt_id.to_string()).unwrap_or_default();
    let stored = promptos_projector::queries::running_experiments(&state.db, &prompt_id)
        .await?
        .into_iter()
        .find(|x| x.environment == environment.as_str())
        .map(|x| (x.started_at, x.started_by));
    let before = from_state(&name, &environment, &outcome.state, stored, outcome.position);
    Ok(axum::Json(from_events(&name, &outcome.events, before)?))
}

/// Stop the running experiment, keeping one version for all traffic: a variant
/// (`promoted`) or the version live before it started (`reverted`).
#[utoipa::path(post, path = "/deployments/split/stop", tag = "deployments", request_body = StopSplit,
    responses((status = 200, body = StopResult),
        (status = 409, description = "No experiment is running there", body = super::error::ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    mut caller: Caller,
    Json(body): Json<StopSplit>,
) -> ApiResult<axum::Json<StopResult>> {
    caller.require(Role::Editor)?;
    let name = PromptName::parse(&body.prompt_name).map_err(|e| ApiError::invalid("prompt_name", e.message))?;
    let environment = EnvironmentName::parse(&body.environment)?;
    let keep = VersionString::parse(&body.version_string)?;
    // A policy speaks first: everyone, editor or admin, is pointed to change requests.
    caller.require_direct_change(&state, &environment, body.force)?;
    caller.require_deploy(&state, &environment)?;
    let command = PromptCommand::StopExperiment { environment: environment.clone(), keep };
    let outcome = state
        .commands
        .prompts
        .execute(prompt_stream(&name), command, caller.meta)
        .await
        .map_err(|e| ApiError::from(e).on_field("version_string"))?;
    state.settle(outcome.position).await;
    let stopped = outcome.events.iter().filter_map(|e| e.decode().ok()).find_map(|e| match e {
        Event::ExperimentStopped(s) => Some(s),
        _ => None,
    });
    let stopped = stopped.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stopping appended no stop event")))?;
    Ok(axum::Json(StopResult {
        prompt_name: name.to_string(),
        environment: environment.to_string(),
        experiment_id: stopped.experiment_id.to_string(),
        version_string: stopped.version_string.to_string(),
        outcome: match stopped.outcome {
            ExperimentOutcome::Promoted => "promoted",
            ExperimentOutcome::Reverted => "reverted",
            ExperimentOutcome::EndedByDeploy => "ended_by_deploy",
            ExperimentOutcome::EndedByRollback => "ended_by_rollback",
        }
        .into(),
        position: outcome.position,
    }))
}
