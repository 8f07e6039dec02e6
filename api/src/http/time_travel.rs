//! `GET /audit/diff`: what changed in an environment between two moments, each change
//! with the events that caused it. What was live at one moment is
//! `GET /deployed/?environment=…&as_of=…` (`deployed.rs`).

use super::audit::EventDto;
use super::deployed::{live_at, moment};
use super::error::ApiResult;
use super::extract::Query;
use crate::app::AppState;
use crate::auth::Caller;
use axum::extract::State;
use promptos_core::names::{EnvironmentName, Role};
use promptos_core::time_travel::{diff, ChangeKind};
use promptos_core::wire::DeployedPrompt;
use promptos_projector::queries::{self, EventFilter};
use promptos_store::format_timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// At most this many events are listed per change (the oldest first).
const EVENTS_PER_CHANGE: i64 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// e.g. `production`.
    #[param(pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
    /// The first moment, RFC 3339.
    #[param(format = DateTime)]
    pub from: String,
    /// The second moment, RFC 3339 (default: now).
    #[param(format = DateTime)]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiffDto {
    pub environment: String,
    /// The moments compared, as the log writes times.
    pub from: String,
    pub to: String,
    /// By prompt name; prompts live unchanged at both moments are left out.
    pub changes: Vec<ChangeDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeDto {
    pub prompt_name: String,
    /// `added`, `removed`, `version_changed` or `split_changed`.
    #[schema(value_type = String)]
    pub change: ChangeKind,
    /// What was live at `from` (null when nothing was).
    pub before: Option<DeployedPrompt>,
    /// What was live at `to` (null when nothing is).
    pub after: Option<DeployedPrompt>,
    /// The events after `from` up to `to` that concern this prompt in this environment
    /// (and its deletion), oldest first.
    pub events: Vec<EventDto>,
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default().routes_and_twins(utoipa_axum::routes!(audit_diff))
}

/// What changed in an environment between two moments: prompts added, removed, moved to
/// another version, or split differently, each with the events that caused it.
#[utoipa::path(get, path = "/audit/diff", tag = "audit", params(DiffParams),
    responses((status = 200, body = DiffDto), (status = 422, body = super::error::ErrorBody)))]
pub async fn audit_diff(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<DiffParams>,
) -> ApiResult<axum::Json<DiffDto>> {
    caller.require(Role::Viewer)?;
    let environment = EnvironmentName::parse(&p.environment)?;
    state.commands.context().check_environment(&environment)?;
    let from = moment("from", &p.from)?;
    let to = match &p.to {
        Some(to) => moment("to", to)?,
        None => format_timestamp(chrono::Utc::now()),
    };
    let before = live_at(&state, &environment, &from, false).await?;
    let after = live_at(&state, &environment, &to, false).await?;
    let mut changes = Vec::new();
    for c in diff(&before, &after) {
        let events = causes(&state, c.prompt_name, environment.as_str(), &from, &to).await?;
        changes.push(ChangeDto {
            prompt_name: c.prompt_name.to_owned(),
            change: c.kind,
            before: c.before.cloned(),
            after: c.after.cloned(),
            events,
        });
    }
    Ok(axum::Json(DiffDto { environment: environment.to_string(), from, to, changes }))
}

/// The prompt's events in the environment, and its deletions, after `from` up to `to`.
async fn causes(state: &AppState, prompt: &str, environment: &str, from: &str, to: &str) -> ApiResult<Vec<EventDto>> {
    let base = EventFilter {
        prompt_name: Some(prompt.to_owned()),
        from: Some(from.to_owned()),
        to: Some(to.to_owned()),
        limit: EVENTS_PER_CHANGE,
        ..Default::default()
    };
    let in_environment = EventFilter { environment: Some(environment.to_owned()), ..base.clone() };
    let deletions = EventFilter { event_types: vec!["PromptDeleted".into()], ..base };
    let mut events = queries::events(&state.db, &in_environment).await?;
    events.extend(queries::events(&state.db, &deletions).await?);
    // `from` is inclusive in the filter, but what happened at `from` is already live then.
    events.retain(|e| e.recorded_at.as_str() > from);
    events.sort_by_key(|e| e.position);
    events.dedup_by_key(|e| e.position);
    Ok(events.into_iter().map(Into::into).collect())
}
