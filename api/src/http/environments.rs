//! `GET /environments`: where prompts can be deployed, which places are protected, and
//! which need approvals or passing evaluations.

use super::error::ApiResult;
use crate::app::AppState;
use crate::auth::Caller;
use axum::extract::State;
use promptos_core::names::Role;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentDto {
    pub name: String,
    /// Only admins may deploy to or roll back a protected environment.
    pub protected: bool,
    /// Set where changes go through change requests (`PROMPTOS_APPROVALS`): the
    /// approvals by distinct admins each request needs.
    pub approvals_required: Option<u8>,
    /// Set where a version goes live only with a passing evaluation
    /// (`PROMPTOS_GATED_ENVIRONMENTS`): the percent of its test cases that must pass.
    pub gate_pass_rate: Option<u8>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentList {
    pub items: Vec<EnvironmentDto>,
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default().routes_and_twins(utoipa_axum::routes!(list))
}

/// The configured environments.
#[utoipa::path(get, path = "/environments", tag = "deployments", responses((status = 200, body = EnvironmentList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<EnvironmentList>> {
    caller.require(Role::Viewer)?;
    let items = state
        .commands
        .context()
        .environments
        .iter()
        .map(|e| EnvironmentDto {
            name: e.to_string(),
            protected: state.settings.protected_environments.contains(e),
            approvals_required: state.settings.change_requests.approvals.get(e).copied(),
            gate_pass_rate: state.commands.context().gate.gates(e).then_some(state.commands.context().gate.pass_rate),
        })
        .collect();
    Ok(axum::Json(EnvironmentList { items }))
}
