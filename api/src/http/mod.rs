//! The HTTP API: routes, OpenAPI document and docs UI.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod change_requests;
pub mod changes;
pub mod checkpoints;
pub mod deployed;
pub mod deployments;
pub mod environments;
pub mod error;
pub mod evaluations;
pub mod experiments;
pub mod extract;
pub mod fleet;
pub mod health;
pub mod metrics;
pub mod optimize;
pub mod playground;
pub mod prompts;
pub mod support;
pub mod time_travel;
pub mod ui;
pub mod users;
pub mod versions;
pub mod webhooks;

use crate::app::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::Router;
use error::ApiError;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_swagger_ui::SwaggerUi;

/// What the API description says beyond its operations. The operations come from the
/// resources' routers ([`router`]), each of which registers its handlers together with
/// their `#[utoipa::path]`, so a route cannot be served undocumented or documented
/// unserved.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "PromptOS",
        description = "Prompts as versioned, deployable assets. Every change is an event in an append-only, hash-chained log.\n\nPaths ending in `/` also answer without it, and the other way round."
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&SecurityAddon),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "prompts", description = "Create and manage prompts"),
        (name = "versions", description = "Immutable versions of a prompt's template"),
        (name = "deployments", description = "What is live where, and the hot read path"),
        (name = "audit", description = "The event log for auditors"),
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Log in and find out who you are"),
        (name = "users", description = "Accounts and roles (admins)"),
        (name = "api-keys", description = "Read-only keys for applications (admins)"),
        (name = "optimize", description = "LLM suggestions for a prompt's text, reviewed before they are saved"),
        (name = "change-requests", description = "Four-eyes approval and scheduled changes for environments with a policy (PROMPTOS_APPROVALS)"),
        (name = "webhooks", description = "Every change, signed (Standard Webhooks), delivered at least once to other tools (admins)"),
        (name = "fleet", description = "Which running application instances serve which version, and how fast a rollout converged"),
        (name = "evaluations", description = "Test cases, evaluation runs through an LLM provider, the deploy gate (PROMPTOS_GATED_ENVIRONMENTS) and the playground"),
    )
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate.
struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An access token from POST /auth/token, or an API key"))
                    .build(),
            ),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}

/// Documents the error answers every operation can give (applied once the resources'
/// operations are in), so that clients (and schema
/// checkers) know every status they may see: a malformed request (400), missing or
/// insufficient credentials (401, 403), an unknown name (404), a write that conflicts
/// with the current state (409), a body that stalls, is too large, not JSON or invalid
/// (408, 413, 415, 422), and a database outage (503).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{Operation, ParameterIn};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        let add = |op: &mut Operation, status: &str, description: &str| {
            op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description).into());
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            // Any write can meet a conflicting state or a concurrent change to the same prompt.
            for op in [&mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten() {
                if path != "/auth/token" {
                    add(op, "409", "Conflicts with the current state, e.g. it already exists or changed meanwhile");
                }
            }
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for op in operations.into_iter().flatten() {
                let public = op.security.as_ref().is_some_and(|s| s.iter().all(|r| *r == Default::default()));
                let params = op.parameters.as_deref().unwrap_or_default();
                let has_query = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let has_path = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let has_body = op.request_body.is_some();
                if has_query || has_body {
                    add(
                        op,
                        "400",
                        "The request is malformed: the body is not JSON, or a query parameter has the wrong type",
                    );
                    add(op, "422", "A value is not acceptable; `field` names it");
                }
                if !public {
                    add(op, "401", "No credential, or one that is wrong or expired");
                    add(op, "403", "The credential's role may not do this");
                }
                if has_path || has_body {
                    add(op, "404", "No such prompt, version, user or key");
                }
                if has_body {
                    add(op, "413", "The body is larger than the server accepts (PROMPTOS_MAX_BODY_BYTES)");
                    add(op, "415", "The body was not sent with the documented content type");
                    add(op, "408", "The body did not arrive in time (PROMPTOS_BODY_TIMEOUT_SECS)");
                }
                if !matches!(path.as_str(), "/healthz") {
                    add(op, "503", "The database is unavailable; retry after the `Retry-After` seconds");
                }
            }
        }
    }
}

/// A resource's routes together with their OpenAPI operations.
pub(crate) type Routes = OpenApiRouter<AppState>;

/// Registering handlers (from [`utoipa_axum::routes!`]) at their documented path and at
/// its twin with or without the trailing slash: the seed's clients call both. The twin
/// is served but not documented again (the description says both answer).
pub(crate) trait RoutesExt {
    fn routes_and_twins(self, routes: UtoipaMethodRouter<AppState>) -> Self;
}

impl RoutesExt for Routes {
    fn routes_and_twins(self, routes: UtoipaMethodRouter<AppState>) -> Self {
        let twins: Vec<String> = routes.1.paths.keys().map(|path| twin(path)).collect();
        let handlers = routes.2.clone();
        twins.iter().fold(self.routes(routes), |router, path| router.route(path, handlers.clone()))
    }
}

fn twin(path: &str) -> String {
    match path.strip_suffix('/') {
        Some(bare) => bare.to_owned(),
        None => format!("{path}/"),
    }
}

pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let ui = ui::router(state.settings.ui.clone());
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(prompts::routes())
        .merge(versions::routes())
        .merge(deployments::routes())
        .merge(experiments::routes())
        .merge(deployed::routes())
        .merge(changes::routes())
        .merge(environments::routes())
        .merge(audit::routes())
        .merge(checkpoints::routes())
        .merge(time_travel::routes())
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(auth::routes())
        .merge(users::routes())
        .merge(api_keys::routes())
        .merge(optimize::routes())
        .merge(fleet::routes())
        .merge(change_requests::routes())
        .merge(webhooks::routes())
        .merge(evaluations::routes())
        .merge(playground::routes())
        .split_for_parts();
    CommonResponses.modify(&mut doc);
    api.fallback(|| async { ApiError::NotFound("no such endpoint; see /docs".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .merge(ui)
        // Browsers must not guess a type other than the one sent. No CORS headers are
        // sent: other origins cannot call the API from a browser.
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
}
