//! `/deployments/`: point an environment at a version, or roll it back.

use super::error::ApiResult;
use super::extract::Json;
use super::support::{live_prompt, path_name};
use crate::app::AppState;
use crate::auth::Caller;
use axum::extract::{Path, State};
use promptos_core::events::prompt_stream;
use promptos_core::names::Role;
use promptos_core::names::{EnvironmentName, PromptName, VersionString};
use promptos_core::prompt::PromptCommand;
use promptos_core::Event;
use promptos_projector::queries;
use promptos_projector::views::{DeploymentRow, HistoryRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    #[schema(example = "customer-support-agent", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 100)]
    pub prompt_name: String,
    #[schema(example = "production", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
    #[schema(example = "v1.0", pattern = "^[A-Za-z0-9._+-]+$", min_length = 1, max_length = 50)]
    pub version_string: String,
    /// Admins only: bypass a change-request policy on the environment (recorded).
    #[serde(default)]
    pub force: bool,
    /// Admins only: deploy to a gated environment (`PROMPTOS_GATED_ENVIRONMENTS`)
    /// without a passing evaluation, for this reason (recorded in the event).
    #[schema(min_length = 1, max_length = 500)]
    pub gate_override: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    #[schema(pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 100)]
    pub prompt_name: String,
    #[schema(pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
    /// Version to return to; without it, the version live before the current one.
    #[schema(pattern = "^[A-Za-z0-9._+-]+$", min_length = 1, max_length = 50)]
    pub to_version_string: Option<String>,
    /// Admins only: bypass a change-request policy on the environment (recorded).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentDto {
    pub prompt_name: String,
    pub environment: String,
    pub version_string: String,
    pub deployed_by: String,
    pub deployed_at: String,
    /// Position of the deploy or rollback that made this version live.
    pub position: i64,
}

impl From<DeploymentRow> for DeploymentDto {
    fn from(d: DeploymentRow) -> Self {
        Self {
            prompt_name: d.prompt_name,
            environment: d.environment,
            version_string: d.version_string,
            deployed_by: d.deployed_by,
            deployed_at: d.deployed_at,
            position: d.position,
        }
    }
}

/// What a deploy or rollback did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeployResult {
    pub prompt_name: String,
    pub environment: String,
    /// The version live now.
    pub version_string: String,
    /// The version live before, if any.
    pub previous_version_string: Option<String>,
    /// `deploy` or `rollback`.
    pub action: String,
    /// False when the version was already live and nothing was recorded.
    pub changed: bool,
    /// True when this deploy or rollback ended an A/B experiment in the environment.
    pub ended_experiment: bool,
    /// Log position the read models include for this answer.
    pub position: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDto {
    pub position: i64,
    pub environment: String,
    /// `deploy`, `rollback`, `experiment_started`, `experiment_reweighted` or
    /// `experiment_stopped`.
    pub action: String,
    /// The version served to clients unaware of experiments after this change.
    pub version_string: String,
    pub previous_version_string: Option<String>,
    pub actor: String,
    pub at: String,
}

impl From<HistoryRow> for HistoryDto {
    fn from(h: HistoryRow) -> Self {
        Self {
            position: h.position,
            environment: h.environment,
            action: h.action,
            version_string: h.version_string,
            previous_version_string: h.previous_version_string,
            actor: h.actor,
            at: h.at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentsDto {
    pub prompt_name: String,
    /// The current deployment per environment.
    pub current: BTreeMap<String, DeploymentDto>,
    /// The A/B experiment running per environment, if any.
    pub experiments: BTreeMap<String, super::experiments::ExperimentDto>,
    /// Every deploy and rollback, and every experiment change, newest first.
    pub history: Vec<HistoryDto>,
}

async fn run(
    state: &AppState,
    name: PromptName,
    environment: EnvironmentName,
    command: PromptCommand,
    meta: promptos_store::Metadata,
) -> ApiResult<axum::Json<DeployResult>> {
    let outcome = state.commands.prompts.execute(prompt_stream(&name), command, meta).await?;
    state.settle(outcome.position).await;
    let events: Vec<Event> = outcome.events.iter().filter_map(|e| e.decode().ok()).collect();
    let ended_experiment = events.iter().any(|e| matches!(e, Event::ExperimentStopped(_)));
    let event = events.into_iter().find(|e| matches!(e, Event::VersionDeployed(_) | Event::DeploymentRolledBack(_)));
    let result = match event {
        Some(Event::VersionDeployed(e)) => DeployResult {
            prompt_name: name.to_string(),
            environment: environment.to_string(),
            version_string: e.version_string.to_string(),
            previous_version_string: e.previous_version_string.map(|v| v.to_string()),
            action: "deploy".into(),
            changed: true,
            ended_experiment,
            position: outcome.position,
        },
        Some(Event::DeploymentRolledBack(e)) => DeployResult {
            prompt_name: name.to_string(),
            environment: environment.to_string(),
            version_string: e.to_version_string.to_string(),
            previous_version_string: Some(e.from_version_string.to_string()),
            action: "rollback".into(),
            changed: true,
            ended_experiment,
            position: outcome.position,
        },
        _ => {
            // Nothing changed: the requested version was already live.
            let live = outcome.state.live().and_then(|p| p.live_version(&environment)).map(|v| v.to_string());
            DeployResult {
                prompt_name: name.to_string(),
                environment: environment.to_string(),
                version_string: live.clone().unwrap_or_default(),
                previous_version_string: live,
                action: "deploy".into(),
                changed: ended_experiment,
                ended_experiment,
                position: outcome.position,
            }
        }
    };
    Ok(axum::Json(result))
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(deploy))
        .routes_and_twins(utoipa_axum::routes!(rollback))
        .routes_and_twins(utoipa_axum::routes!(list))
}

/// Deploy a version to an environment (moves the environment's pointer).
#[utoipa::path(post, path = "/deployments/", tag = "deployments", request_body = Deploy,
    responses((status = 200, body = DeployResult), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "A gated environment needs a passing evaluation of the version (`evaluation_gate_closed`, with the `cases` that failed or must run)", body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)))]
pub async fn deploy(
    State(state): State<AppState>,
    mut caller: Caller,
    Json(body): Json<Deploy>,
) -> ApiResult<axum::Json<DeployResult>> {
    caller.require(Role::Editor)?;
    let name =
        PromptName::parse(&body.prompt_name).map_err(|e| super::error::ApiError::invalid("prompt_name", e.message))?;
    let environment = EnvironmentName::parse(&body.environment)?;
    let version_string = VersionString::parse(&body.version_string)?;
    // A policy speaks first: everyone, editor or admin, is pointed to change requests.
    caller.require_direct_change(&state, &environment, body.force)?;
    caller.require_deploy(&state, &environment)?;
    let gate_override = caller.gate_override(body.gate_override.as_deref())?;
    let command = PromptCommand::Deploy { environment: environment.clone(), version_string, gate_override };
    run(&state, name, environment, command, caller.meta).await.map_err(|e| e.on_field("version_string"))
}

/// Roll an environment back to the previous (or a named) version.
#[utoipa::path(post, path = "/deployments/rollback", tag = "deployments", request_body = Rollback,
    responses((status = 200, body = DeployResult), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    mut caller: Caller,
    Json(body): Json<Rollback>,
) -> ApiResult<axum::Json<DeployResult>> {
    caller.require(Role::Editor)?;
    let name =
        PromptName::parse(&body.prompt_name).map_err(|e| super::error::ApiError::invalid("prompt_name", e.message))?;
    let environment = EnvironmentName::parse(&body.environment)?;
    let to =
        body.to_version_string.as_deref().map(|v| VersionString::parse_field(v, "to_version_string")).transpose()?;
    // A policy speaks first: everyone, editor or admin, is pointed to change requests.
    caller.require_direct_change(&state, &environment, body.force)?;
    caller.require_deploy(&state, &environment)?;
    // The version a rollback returns to must still resolve its includes there: the
    // write side checks it when the rollback is appended.
    let command = PromptCommand::Rollback { environment: environment.clone(), to };
    run(&state, name, environment, command, caller.meta).await.map_err(|e| e.on_field("to_version_string"))
}

/// Current version per environment, and the deployment history.
#[utoipa::path(get, path = "/prompts/{name}/deployments/", tag = "deployments", params(("name" = String, Path)),
    responses((status = 200, body = DeploymentsDto), (status = 404, body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<DeploymentsDto>> {
    caller.require(Role::Viewer)?;
    let prompt = live_prompt(&state, path_name(&name)?.as_str()).await?;
    let current = queries::deployments(&state.db, std::slice::from_ref(&prompt.prompt_id)).await?;
    let history = queries::deployment_history(&state.db, &prompt.prompt_id, None, 1000).await?;
    let experiments = queries::running_experiments(&state.db, &prompt.prompt_id).await?;
    Ok(axum::Json(DeploymentsDto {
        experiments: experiments
            .into_iter()
            .map(|x| (x.environment.clone(), super::experiments::ExperimentDto::from_row(&prompt.name, x)))
            .collect(),
        prompt_name: prompt.name,
        current: current.into_iter().map(|d| (d.environment.clone(), d.into())).collect(),
        history: history.into_iter().map(Into::into).collect(),
    }))
}
