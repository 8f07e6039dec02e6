//! The HTTP API: routes, OpenAPI document and docs UI.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod deployed;
pub mod deployments;
pub mod environments;
pub mod error;
pub mod experiments;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod optimize;
pub mod prompts;
pub mod support;
pub mod ui;
pub mod users;
pub mod versions;

use crate::app::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use error::ApiError;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PromptOS",
        description = "Prompts as versioned, deployable assets. Every change is an event in an append-only, hash-chained log.\n\nPaths ending in `/` also answer without it, and the other way round."
    ),
    paths(
        prompts::create, prompts::list, prompts::get, prompts::update, prompts::delete, prompts::set_tags,
        versions::create, versions::list, versions::get,
        deployments::deploy, deployments::rollback, deployments::list,
        experiments::start, experiments::reweight, experiments::stop,
        deployed::get, deployed::list, changes::stream, environments::list,
        audit::events, audit::history, audit::export, audit::verify,
        health::healthz, health::readyz, metrics::metrics,
        auth::token, auth::me,
        users::create, users::list, users::get, users::change_role, users::disable, users::change_password,
        api_keys::create, api_keys::list, api_keys::revoke,
        optimize::optimize, optimize::providers,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&SecurityAddon, &CommonResponses),
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

/// Documents the error answers every operation can give, so that clients (and schema
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

/// Registers `path` and its twin with or without the trailing slash.
fn route(router: Router<AppState>, path: &str, handler: MethodRouter<AppState>) -> Router<AppState> {
    let twin = match path.strip_suffix('/') {
        Some(bare) => bare.to_owned(),
        None => format!("{path}/"),
    };
    router.route(path, handler.clone()).route(&twin, handler)
}

pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let ui = ui::router(state.settings.ui.clone());
    let mut api = Router::new();
    api = route(api, "/prompts/", post(prompts::create).get(prompts::list));
    api = route(api, "/prompts/{name}", get(prompts::get).patch(prompts::update).delete(prompts::delete));
    api = route(api, "/prompts/{name}/tags", axum::routing::put(prompts::set_tags));
    api = route(api, "/prompts/{name}/versions/", post(versions::create).get(versions::list));
    api = route(api, "/prompts/{name}/versions/{version_string}", get(versions::get));
    api = route(api, "/prompts/{name}/deployed/", get(deployed::get));
    api = route(api, "/prompts/{name}/deployments/", get(deployments::list));
    api = route(api, "/prompts/{name}/history", get(audit::history));
    api = route(api, "/deployed/", get(deployed::list));
    api = route(api, "/prompts/{name}/optimize", post(optimize::optimize));
    api = route(api, "/optimize/providers", get(optimize::providers));
    api = route(api, "/environments", get(environments::list));
    api = route(api, "/changes/stream", get(changes::stream));
    api = route(api, "/deployments/", post(deployments::deploy));
    api = route(api, "/deployments/rollback", post(deployments::rollback));
    api = route(api, "/deployments/split", post(experiments::start));
    api = route(api, "/deployments/split/weights", post(experiments::reweight));
    api = route(api, "/deployments/split/stop", post(experiments::stop));
    api = route(api, "/events", get(audit::events));
    api = route(api, "/events/export", get(audit::export));
    api = route(api, "/audit/verify", get(audit::verify));
    api = route(api, "/auth/token", post(auth::token));
    api = route(api, "/auth/me", get(auth::me));
    api = route(api, "/users/", post(users::create).get(users::list));
    api = route(api, "/users/{username}", get(users::get).patch(users::change_role));
    api = route(api, "/users/{username}/disable", post(users::disable));
    api = route(api, "/users/{username}/password", post(users::change_password));
    api = route(api, "/api-keys/", post(api_keys::create).get(api_keys::list));
    api = route(api, "/api-keys/{key_id}", axum::routing::delete(api_keys::revoke));
    api = route(api, "/healthz", get(health::healthz));
    api = route(api, "/readyz", get(health::readyz));
    api = api.route("/metrics", get(metrics::metrics));
    api.fallback(|| async { ApiError::NotFound("no such endpoint; see /docs".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .merge(ui)
        // Browsers must not guess a type other than the one sent. No CORS headers are
        // sent: other origins cannot call the API from a browser.
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
}
