//! Liveness and readiness.

use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// The server's version, e.g. `0.1.0`.
    pub version: &'static str,
    /// The git commit the server was built from (`unknown` outside a git checkout).
    pub commit: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// Log position the read models include.
    pub projected_position: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(healthz))
        .routes_and_twins(utoipa_axum::routes!(readyz))
}

/// The process is up; says which build is running.
#[utoipa::path(get, path = "/healthz", tag = "health", security(), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", version: crate::build_info::VERSION, commit: crate::build_info::GIT_COMMIT })
}

/// The server can answer requests: the database is reachable.
#[utoipa::path(get, path = "/readyz", tag = "health", security(),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let ping = async {
        if state.gate.is_closed() {
            return Err("the server found it unreachable and is waiting for it to come back".to_owned());
        }
        match tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2 s".to_owned()),
        }
    };
    match ping.await {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness { status: "ready", projected_position: state.follower.visible(), reason: None }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "unavailable",
                projected_position: state.follower.visible(),
                reason: Some(format!("database unreachable: {e}")),
            }),
        ),
    }
}
