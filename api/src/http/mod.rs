//! The HTTP API: routes, OpenAPI document and docs UI.

pub mod audit;
pub mod deployed;
pub mod deployments;
pub mod error;
pub mod extract;
pub mod health;
pub mod prompts;
pub mod versions;

use crate::app::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use error::ApiError;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PromptOS",
        description = "Prompts as versioned, deployable assets. Every change is an event in an append-only, hash-chained log.\n\nPaths ending in `/` also answer without it, and the other way round."
    ),
    paths(
        prompts::create, prompts::list, prompts::get, prompts::update, prompts::delete,
        versions::create, versions::list, versions::get,
        deployments::deploy, deployments::rollback, deployments::list,
        deployed::get,
        audit::events, audit::history, audit::export, audit::verify,
        health::healthz, health::readyz,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    tags(
        (name = "prompts", description = "Create and manage prompts"),
        (name = "versions", description = "Immutable versions of a prompt's template"),
        (name = "deployments", description = "What is live where, and the hot read path"),
        (name = "audit", description = "The event log for auditors"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// Registers `path` and its twin with or without the trailing slash.
fn route(
    router: Router<AppState>,
    path: &str,
    handler: MethodRouter<AppState>,
) -> Router<AppState> {
    let twin = match path.strip_suffix('/') {
        Some(bare) => bare.to_owned(),
        None => format!("{path}/"),
    };
    router.route(path, handler.clone()).route(&twin, handler)
}

pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let mut api = Router::new();
    api = route(api, "/prompts/", post(prompts::create).get(prompts::list));
    api = route(
        api,
        "/prompts/{name}",
        get(prompts::get)
            .patch(prompts::update)
            .delete(prompts::delete),
    );
    api = route(
        api,
        "/prompts/{name}/versions/",
        post(versions::create).get(versions::list),
    );
    api = route(
        api,
        "/prompts/{name}/versions/{version_string}",
        get(versions::get),
    );
    api = route(api, "/prompts/{name}/deployed/", get(deployed::get));
    api = route(api, "/prompts/{name}/deployments/", get(deployments::list));
    api = route(api, "/prompts/{name}/history", get(audit::history));
    api = route(api, "/deployments/", post(deployments::deploy));
    api = route(api, "/deployments/rollback", post(deployments::rollback));
    api = route(api, "/events", get(audit::events));
    api = route(api, "/events/export", get(audit::export));
    api = route(api, "/audit/verify", get(audit::verify));
    api = route(api, "/healthz", get(health::healthz));
    api = route(api, "/readyz", get(health::readyz));
    api.fallback(|| async { ApiError::NotFound("no such endpoint; see /docs".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
