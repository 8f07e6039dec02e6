//! `/fleet`: what running SDK instances serve (`POST /fleet/reports` from the SDKs,
//! `GET /fleet` for people), and `/prompts/{name}/rollout`: how far the latest change
//! of a prompt has reached them. The state behind it is [`crate::fleet`].

use super::error::{ApiError, ApiResult};
use super::extract::{Json, Query};
use super::support::path_name;
use crate::app::AppState;
use crate::auth::Caller;
use crate::fleet::{epoch_ms, now_ms, rfc3339, Instance, Refused};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptos_core::fleet::FleetReport;
use promptos_core::names::{EnvironmentName, Role};
use promptos_projector::queries;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use utoipa::{IntoParams, ToSchema};

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(report))
        .routes_and_twins(utoipa_axum::routes!(list))
        .routes_and_twins(utoipa_axum::routes!(rollout))
}

/// Take in an SDK instance's report of what it serves (SDKs send it on start, after
/// applying changes, and as a heartbeat). Telemetry: it never enters the event log.
#[utoipa::path(post, path = "/fleet/reports", tag = "fleet", request_body = FleetReport,
    responses((status = 204, description = "Taken in"),
        (status = 403, body = super::error::ErrorBody, description = "The credential may not read an environment in the report"),
        (status = 409, body = super::error::ErrorBody, description = "The instance id is reported by another credential"),
        (status = 422, body = super::error::ErrorBody, description = "`field` names the place in the report"),
        (status = 429, body = super::error::ErrorBody, description = "This instance reports too often; `Retry-After` says when to retry")))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Json(report): Json<FleetReport>,
) -> ApiResult<StatusCode> {
    report.validate().map_err(|e| ApiError::invalid(&e.location, e.message))?;
    for (i, serving) in report.serving.iter().enumerate() {
        let field = format!("serving[{i}].environment");
        let env = EnvironmentName::parse(&serving.environment).map_err(|e| ApiError::invalid(&field, e.message))?;
        if !state.commands.context().environments.contains(&env) {
            return Err(ApiError::invalid(&field, format!("unknown environment {:?}", serving.environment)));
        }
        caller.require_read(&env).map_err(|_| {
            ApiError::Forbidden(format!("this credential may not report for {env} ({field}); it may not read it"))
        })?;
    }
    match state.fleet.report(caller.principal.actor(), report).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(Refused::OwnedByAnother(id)) => Err(ApiError::Conflict {
            code: "instance_taken",
            message: format!("instance {id:?} is reported by another credential; use a new random instance id"),
            field: Some("instance_id".into()),
        }),
        Err(Refused::TooOften(secs)) => Err(ApiError::RateLimited(secs)),
        Err(Refused::Database(e)) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FleetParams {
    /// Only instances serving something in this environment (and only those entries).
    #[param(pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: Option<String>,
}

/// One (prompt, environment) an instance serves, compared with what is deployed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServingDto {
    pub prompt: String,
    pub environment: String,
    pub version_string: String,
    pub experiment_id: Option<String>,
    /// When the instance says it started serving it.
    pub applied_at: String,
    /// When the server first heard that it serves it.
    pub reported_at: String,
    /// `current` (what is deployed), `behind` (something older), or `not_deployed`
    /// (nothing is deployed there any more).
    pub status: String,
    /// What is deployed there now, when it is not what the instance serves.
    pub deployed_version_string: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceDto {
    pub instance_id: String,
    pub app_name: Option<String>,
    pub host: String,
    pub pid: u32,
    pub sdk: String,
    pub sdk_version: String,
    pub started_at: String,
    /// The API key (`api_key:<id>`) or user that reports for it.
    pub reported_by: String,
    pub first_seen: String,
    pub last_seen: String,
    /// When it is gone unless it reports again.
    pub expires_at: String,
    pub heartbeat_seconds: u32,
    /// The highest change-feed position it has applied.
    pub applied_position: i64,
    /// It could not reach the server or its feed at its last attempt.
    pub stale: bool,
    /// `stale`, `behind` (serves something other than what is deployed) or `current`.
    pub status: String,
    pub serving: Vec<ServingDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationDto {
    /// As configured in the SDK; null for instances without a name.
    pub app_name: Option<String>,
    pub instances: usize,
    pub current: usize,
    pub behind: usize,
    pub stale: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FleetDto {
    pub applications: Vec<ApplicationDto>,
    pub instances: Vec<InstanceDto>,
}

/// What is deployed per (prompt, environment): version and experiment.
type Targets = HashMap<(String, String), (String, Option<String>)>;

async fn targets(state: &AppState, environments: &[String]) -> ApiResult<Targets> {
    let mut out = Targets::new();
    for env in environments {
        for d in promptos_projector::deployed::deployed_in(&state.db, env).await? {
            let experiment = d.experiment.as_ref().map(|x| x.experiment_id.clone());
            out.insert((d.prompt_name.clone(), env.clone()), (d.version_string.clone(), experiment));
        }
    }
    Ok(out)
}

/// The live fleet, optionally narrowed to one environment, compared with what is
/// deployed (also what `GET /metrics` counts).
pub(crate) async fn view(state: &AppState, environment: Option<&str>) -> ApiResult<FleetDto> {
    let mut instances = state.fleet.live().await?;
    if let Some(env) = environment {
        instances.retain(|i| i.record.report.serving.iter().any(|s| s.environment == env));
    }
    let mut envs: Vec<String> =
        instances.iter().flat_map(|i| i.record.report.serving.iter().map(|s| s.environment.clone())).collect();
    envs.sort_unstable();
    envs.dedup();
    envs.retain(|e| environment.is_none_or(|only| only == e));
    let targets = targets(state, &envs).await?;
    let instances: Vec<InstanceDto> = instances.iter().map(|i| instance_dto(i, &targets, environment)).collect();
    let mut apps: BTreeMap<Option<String>, ApplicationDto> = BTreeMap::new();
    for i in &instances {
        let app = apps.entry(i.app_name.clone()).or_insert_with(|| ApplicationDto {
            app_name: i.app_name.clone(),
            instances: 0,
            current: 0,
            behind: 0,
            stale: 0,
        });
        app.instances += 1;
        match i.status.as_str() {
            "stale" => app.stale += 1,
            "behind" => app.behind += 1,
            _ => app.current += 1,
        }
    }
    Ok(FleetDto { applications: apps.into_values().collect(), instances })
}

fn instance_dto(i: &Instance, targets: &Targets, environment: Option<&str>) -> InstanceDto {
    let r = &i.record.report;
    let serving: Vec<ServingDto> = r
        .serving
        .iter()
        .filter(|s| environment.is_none_or(|env| env == s.environment))
        .map(|s| {
            let target = targets.get(&(s.prompt.clone(), s.environment.clone()));
            let (status, deployed) = match target {
                None => ("not_deployed", None),
                Some((v, x)) if *v == s.version_string && *x == s.experiment_id => ("current", None),
                Some((v, _)) => ("behind", Some(v.clone())),
            };
            let reported = i.ack(&s.prompt, &s.environment).map_or(i.last_seen_ms, |a| a.since_ms);
            ServingDto {
                prompt: s.prompt.clone(),
                environment: s.environment.clone(),
                version_string: s.version_string.clone(),
                experiment_id: s.experiment_id.clone(),
                applied_at: s.applied_at.clone(),
                reported_at: rfc3339(reported),
                status: status.into(),
                deployed_version_string: deployed,
            }
        })
        .collect();
    let status = if r.stale {
        "stale"
    } else if serving.iter().any(|s| s.status != "current") {
        "behind"
    } else {
        "current"
    };
    InstanceDto {
        instance_id: r.instance_id.clone(),
        app_name: r.app_name.clone(),
        host: r.host.clone(),
        pid: r.pid,
        sdk: r.sdk.clone(),
        sdk_version: r.sdk_version.clone(),
        started_at: r.started_at.clone(),
        reported_by: i.owner.clone(),
        first_seen: rfc3339(i.record.first_seen_ms),
        last_seen: rfc3339(i.last_seen_ms),
        expires_at: rfc3339(i.expires_at_ms),
        heartbeat_seconds: r.heartbeat_seconds,
        applied_position: r.applied_position,
        stale: r.stale,
        status: status.into(),
        serving,
    }
}

/// The running SDK instances (those that reported within three heartbeats), per
/// application, each with what it serves and whether that is what is deployed.
#[utoipa::path(get, path = "/fleet", tag = "fleet", params(FleetParams),
    responses((status = 200, body = FleetDto), (status = 403, body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<FleetParams>,
) -> ApiResult<axum::Json<FleetDto>> {
    caller.require(Role::Viewer)?;
    if let Some(env) = &p.environment {
        let env = EnvironmentName::parse_field(env, "environment")?;
        state.commands.context().check_environment(&env)?;
    }
    Ok(axum::Json(view(&state, p.environment.as_deref()).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RolloutParams {
    /// e.g. `production`.
    #[param(pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
}

/// The change a rollout is about: the latest deploy, rollback or experiment change.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutTarget {
    pub version_string: String,
    pub experiment_id: Option<String>,
    /// Its log position.
    pub position: i64,
    /// `VersionDeployed`, `DeploymentRolledBack`, `ExperimentStarted`, …
    pub event_type: String,
    /// When it was committed to the log.
    pub committed_at: String,
}

/// Commit → each instance's first report serving it, in milliseconds, over the
/// instances that held the prompt before the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct Convergence {
    pub instances: usize,
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutInstance {
    pub instance_id: String,
    pub app_name: Option<String>,
    pub host: String,
    pub pid: u32,
    pub sdk: String,
    pub version_string: String,
    pub experiment_id: Option<String>,
    /// `current` or `behind`.
    pub status: String,
    /// Commit → its report of serving the change; null for an instance that fetched
    /// the prompt for the first time after it (or is behind).
    pub convergence_ms: Option<i64>,
    /// For an instance behind: how long since the change was committed.
    pub behind_ms: Option<i64>,
    /// For an instance behind: changes (log positions) between what it has applied and
    /// the target.
    pub positions_behind: Option<i64>,
    pub stale: bool,
    pub last_seen: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutApplication {
    pub app_name: Option<String>,
    /// Live instances that hold the prompt.
    pub holding: usize,
    /// Of those, the ones serving the target.
    pub serving: usize,
    /// The slowest convergence among them, in milliseconds.
    pub slowest_ms: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutDto {
    pub prompt: String,
    pub environment: String,
    pub target: RolloutTarget,
    /// Live instances that hold the prompt in this environment.
    pub holding: usize,
    /// Of those, the ones serving the target.
    pub serving: usize,
    /// Every instance holding the prompt serves the target.
    pub converged: bool,
    pub convergence: Option<Convergence>,
    pub applications: Vec<RolloutApplication>,
    /// Instances behind first, then the rest by how long they took.
    pub instances: Vec<RolloutInstance>,
}

/// How the latest deploy (or experiment change) of a prompt in an environment has
/// reached the running instances: how many serve it, how fast they converged, and
/// which are still behind.
#[utoipa::path(get, path = "/prompts/{name}/rollout", tag = "fleet",
    params(("name" = String, Path), RolloutParams),
    responses((status = 200, body = RolloutDto), (status = 404, body = super::error::ErrorBody, description = "Nothing deployed there")))]
pub async fn rollout(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(p): Query<RolloutParams>,
) -> ApiResult<axum::Json<RolloutDto>> {
    caller.require(Role::Viewer)?;
    let env = EnvironmentName::parse_field(&p.environment, "environment")?;
    state.commands.context().check_environment(&env)?;
    let name = path_name(&name)?;
    let deployed =
        promptos_projector::deployed::deployed(&state.db, name.as_str(), env.as_str()).await?.ok_or_else(|| {
            ApiError::NotFound(format!("no version of prompt {:?} is deployed in {:?}", name.as_str(), env.as_str()))
        })?;
    let change = queries::events(
        &state.db,
        &queries::EventFilter { after_position: Some(deployed.position - 1), limit: 1, ..Default::default() },
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no event at position {}", deployed.position)))?;
    let committed_ms = epoch_ms(&change.recorded_at).unwrap_or_else(now_ms);
    let target = RolloutTarget {
        version_string: deployed.version_string.clone(),
        experiment_id: deployed.experiment.as_ref().map(|x| x.experiment_id.clone()),
        position: deployed.position,
        event_type: change.event_type.clone(),
        committed_at: rfc3339(committed_ms),
    };
    let now = now_ms();
    let mut instances = Vec::new();
    for i in state.fleet.live().await? {
        let r = &i.record.report;
        let Some(s) = r.serving.iter().find(|s| s.prompt == name.as_str() && s.environment == env.as_str()) else {
            continue;
        };
        let current = s.version_string == target.version_string && s.experiment_id == target.experiment_id;
        let convergence_ms = i
            .ack(&s.prompt, &s.environment)
            .filter(|a| current && !a.first_load && a.since_ms >= committed_ms)
            .map(|a| a.since_ms - committed_ms);
        instances.push(RolloutInstance {
            instance_id: r.instance_id.clone(),
            app_name: r.app_name.clone(),
            host: r.host.clone(),
            pid: r.pid,
            sdk: r.sdk.clone(),
            version_string: s.version_string.clone(),
            experiment_id: s.experiment_id.clone(),
            status: if current { "current" } else { "behind" }.into(),
            convergence_ms,
            behind_ms: (!current).then(|| (now - committed_ms).max(0)),
            positions_behind: (!current).then(|| (target.position - r.applied_position).max(0)),
            stale: r.stale,
            last_seen: rfc3339(i.last_seen_ms),
        });
    }
    instances.sort_by_key(|i| (i.status == "current", i.convergence_ms));
    let mut apps: BTreeMap<Option<String>, RolloutApplication> = BTreeMap::new();
    for i in &instances {
        let app = apps.entry(i.app_name.clone()).or_insert_with(|| RolloutApplication {
            app_name: i.app_name.clone(),
            holding: 0,
            serving: 0,
            slowest_ms: None,
        });
        app.holding += 1;
        if i.status == "current" {
            app.serving += 1;
        }
        app.slowest_ms = app.slowest_ms.max(i.convergence_ms);
    }
    let mut times: Vec<i64> = instances.iter().filter_map(|i| i.convergence_ms).collect();
    times.sort_unstable();
    let convergence = (!times.is_empty()).then(|| Convergence {
        instances: times.len(),
        p50_ms: percentile(&times, 50),
        p99_ms: percentile(&times, 99),
        max_ms: *times.last().expect("not empty"),
    });
    let serving = instances.iter().filter(|i| i.status == "current").count();
    Ok(axum::Json(RolloutDto {
        prompt: name.to_string(),
        environment: env.to_string(),
        target,
        holding: instances.len(),
        serving,
        converged: serving == instances.len(),
        convergence,
        applications: apps.into_values().collect(),
        instances,
    }))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> i64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!((super::percentile(&v, 50), super::percentile(&v, 99)), (50, 99));
        assert_eq!(super::percentile(&[7], 99), 7);
        assert_eq!(super::percentile(&[1, 2], 50), 1);
    }
}
