//! `GET /metrics` and the middleware every API request passes: it counts and times the
//! request by its route template, and fails fast while the database is down
//! ([`crate::gate`]).
//!
//! On the API's own address `/metrics` needs a credential like every endpoint (an API
//! key will do, so a scraper needs no user). `--metrics-bind` serves it without one on a
//! separate address, for a network only the scraper reaches.

use super::error::{ApiError, ApiResult, DatabaseUnavailable};
use crate::app::AppState;
use crate::auth::Caller;
use crate::metrics::Figures;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Middleware: counts and times every request by its route template (not its path, so
/// prompt names do not multiply the series).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Both are cheap clones (a shared string and a method), not copies.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = guarded(&state, request, next).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state.metrics.observe(route, method.as_str(), response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// `/metrics` (no twin: Prometheus scrapers call it exactly).
pub(crate) fn routes() -> super::Routes {
    super::Routes::default().routes(utoipa_axum::routes!(metrics))
}

/// Prometheus metrics (text format). Any credential may read them, API keys included.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    Ok(text(render(&state).await))
}

/// The same without a credential, for the separate `--metrics-bind` address.
pub fn open_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move { text(render(&state).await) }),
        )
        .with_state(state)
}

async fn render(state: &AppState) -> String {
    let projected = state.follower.visible();
    let lag = match promptos_projector::queries::lag(&state.db, projected).await {
        Ok(lag) => Some(lag),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the log head for /metrics");
            None
        }
    };
    let fleet = match super::fleet::view(state, None).await {
        Ok(view) => Some(fleet_counts(&view)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the fleet for /metrics");
            None
        }
    };
    let figures = Figures {
        projected,
        lag,
        cache: state.caches.deployed_stats(),
        sse_clients: state.follower.subscribers(),
        fleet,
    };
    state.metrics.render(figures)
}

/// Live instances and those behind, per (environment, application): an instance
/// serving prompts of two environments counts in both.
fn fleet_counts(view: &super::fleet::FleetDto) -> Vec<crate::metrics::FleetCount> {
    let mut counts: std::collections::BTreeMap<(String, String), (i64, i64)> = Default::default();
    for i in &view.instances {
        let mut envs: Vec<(&str, bool)> = Vec::new();
        for s in &i.serving {
            match envs.iter_mut().find(|(e, _)| *e == s.environment) {
                Some((_, behind)) => *behind |= s.status != "current",
                None => envs.push((&s.environment, s.status != "current")),
            }
        }
        for (env, behind) in envs {
            let c = counts.entry((env.to_owned(), i.app_name.clone().unwrap_or_default())).or_default();
            c.0 += 1;
            c.1 += i64::from(behind);
        }
    }
    counts
        .into_iter()
        .map(|((environment, app), (instances, behind))| crate::metrics::FleetCount {
            environment,
            app,
            instances,
            behind,
        })
        .collect()
}

/// Runs the request unless the gate is closed (then 503 at once), and closes the gate
/// when the handler found the database unreachable. Part of [`track`], so it costs no
/// layer of its own.
async fn guarded(state: &AppState, request: Request, next: Next) -> Response {
    let open_always = matches!(request.uri().path(), "/healthz" | "/healthz/" | "/readyz" | "/readyz/" | "/metrics");
    if !open_always && state.gate.is_closed() {
        return ApiError::Unavailable("gate closed".into()).into_response();
    }
    let response = next.run(request).await;
    if response.extensions().get::<DatabaseUnavailable>().is_some() {
        state.gate.close();
    }
    response
}
