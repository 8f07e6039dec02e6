//! `GET /prompts/{name}/deployed/`: the hot path every application calls.
//!
//! Answers come from an in-memory cache of ready-to-send JSON bytes. The follower
//! evicts an entry as soon as the projector has applied a change to its prompt, so the
//! cache is exact, not merely fresh within a TTL.

use super::error::{ApiError, ApiResult};
use super::extract::Query;
use super::support::path_name;
use crate::app::AppState;
use crate::auth::Caller;
use crate::caches::CachedDeployed;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use promptos_core::names::EnvironmentName;
use promptos_core::wire::{DeployedExperiment, DeployedPrompt, DeployedVariant, Message};
use promptos_projector::deployed::{self as queries, DeployedItem};
use promptos_store::format_timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

fn messages(json: Option<&str>) -> Option<Vec<Message>> {
    json.and_then(|m| serde_json::from_str(m).ok())
}

/// A version's wording as answered, from its stored JSON: `prompt_text` for a text
/// prompt, `messages` for a chat prompt.
fn answer(d: DeployedItem) -> DeployedPrompt {
    let text = |kind: &str, text: String| (kind == "text").then_some(text);
    DeployedPrompt {
        experiment: d.experiment.map(|x| DeployedExperiment {
            experiment_id: x.experiment_id,
            variants: x
                .variants
                .into_iter()
                .map(|v| DeployedVariant {
                    version_string: v.version_string,
                    weight: v.weight,
                    prompt_text: text(&v.kind, v.text),
                    messages: messages(v.messages.as_deref()),
                    config: v.config.as_deref().and_then(|c| serde_json::from_str(c).ok()),
                    variables: serde_json::from_str(&v.variables).unwrap_or_default(),
                })
                .collect(),
            buckets: x.buckets,
        }),
        prompt_name: d.prompt_name,
        environment: d.environment,
        version_string: d.version_string,
        prompt_text: text(&d.kind, d.text),
        messages: messages(d.messages.as_deref()),
        config: d.config.as_deref().and_then(|c| serde_json::from_str(c).ok()),
        includes: d.resolved_includes,
        kind: d.kind,
        variables: serde_json::from_str(&d.variables).unwrap_or_default(),
        deployed_at: d.deployed_at,
        deployed_by: d.deployed_by,
        position: d.position,
        prompt_id: d.prompt_id,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeployedParams {
    /// e.g. `production`.
    #[param(pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
    /// RFC 3339 time: answer what was live at that moment (use `Z` or `%2B` for `+`).
    pub as_of: Option<String>,
    /// Answer only once this server includes this log position (the `position` of a
    /// change message), waiting up to the consistency timeout.
    pub min_position: Option<i64>,
    /// Replace `{% include "…" %}` with the texts deployed in this environment (with
    /// `as_of`: deployed there at that moment) and list the versions pulled in (the SDK
    /// asks for this).
    pub resolve: Option<bool>,
}

/// Resolves the item's includes; one that no longer resolves (an included prompt was
/// deleted since) is a 409 that says why.
async fn resolve(state: &AppState, d: DeployedItem, as_of: Option<&str>) -> ApiResult<DeployedItem> {
    promptos_projector::includes::resolve_item(&state.db, d, as_of)
        .await
        .map_err(|e| ApiError::include(e, StatusCode::CONFLICT, "resolve"))
}

fn encode(d: DeployedItem) -> CachedDeployed {
    let dto = answer(d);
    let etag = HeaderValue::from_str(&format!("\"{}\"", dto.position)).expect("digits are a valid header");
    let body = Bytes::from(serde_json::to_vec(&dto).expect("plain data serializes"));
    CachedDeployed { etag, body }
}

fn respond(entry: &CachedDeployed, headers: &HeaderMap) -> Response {
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == entry.etag || t.trim() == "*"));
    let common = [(header::ETAG, entry.etag.clone()), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], entry.body.clone()).into_response()
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default().routes_and_twins(utoipa_axum::routes!(get)).routes_and_twins(utoipa_axum::routes!(list))
}

/// The version live in an environment (or at a past moment with `as_of`).
#[utoipa::path(get, path = "/prompts/{name}/deployed/", tag = "deployments",
    params(("name" = String, Path), DeployedParams),
    responses((status = 200, body = DeployedPrompt, headers(("ETag" = String))), (status = 304, description = "Not modified"),
        (status = 404, body = super::error::ErrorBody,
            description = "Nothing deployed there; `X-PromptOS-Position` names the log position this answer includes",
            headers(("X-PromptOS-Position" = i64))),
        (status = 422, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(p): Query<DeployedParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let environment = EnvironmentName::parse(&p.environment)?;
    caller.require_read(&environment)?;
    state.commands.context().check_environment(&environment)?;
    let not_found = || ApiError::NotFound(format!("no version of prompt {name:?} is deployed in {:?}", p.environment));
    if let Some(as_of) = &p.as_of {
        let at = moment("as_of", as_of)?;
        let found =
            queries::deployed_as_of(&state.db, &name, environment.as_str(), &at).await?.ok_or_else(not_found)?;
        let found = if p.resolve == Some(true) { resolve(&state, found, Some(&at)).await? } else { found };
        return Ok(respond(&encode(found), &headers));
    }
    let resolved = p.resolve == Some(true);
    if let Some(min) = p.min_position {
        state.settle(min).await;
    }
    let key = (path_name(&name)?.to_string(), environment.to_string(), resolved);
    // What is read below includes at least this position (the cache is evicted before
    // the position is published); a 404 says so, so that a client can tell it from an
    // older answer still on its way.
    let seen = state.follower.visible();
    let load = async {
        let Some(d) = queries::deployed(&state.db, &key.0, &key.1).await? else { return Ok(None) };
        let d = if resolved { resolve(&state, d, None).await? } else { d };
        Ok::<_, ApiError>(Some(Arc::new(encode(d))))
    };
    match state.caches.deployed_entry(key.clone(), load).await? {
        Some(entry) => Ok(respond(&entry, &headers)),
        None => {
            let mut response = not_found().into_response();
            response.headers_mut().insert(POSITION_HEADER, HeaderValue::from(seen));
            Ok(response)
        }
    }
}

/// A moment given in the query (`field`), as the log's fixed-width UTC text.
pub(crate) fn moment(field: &str, value: &str) -> ApiResult<String> {
    let at = chrono::DateTime::parse_from_rfc3339(value).map_err(|e| {
        ApiError::bad_query(
            Some(field.into()),
            format!("{field} must be an RFC 3339 time such as 2026-01-31T12:00:00Z (use %2B for +): {e}"),
        )
    })?;
    Ok(format_timestamp(at.with_timezone(&chrono::Utc)))
}

/// What was live in `environment` at `at` (every prompt, by name), as answered.
pub(crate) async fn live_at(
    state: &AppState,
    environment: &EnvironmentName,
    at: &str,
    resolved: bool,
) -> ApiResult<Vec<DeployedPrompt>> {
    let mut items = Vec::new();
    for d in queries::deployed_in_as_of(&state.db, environment.as_str(), at).await? {
        let d = if resolved { resolve(state, d, Some(at)).await? } else { d };
        items.push(answer(d));
    }
    Ok(items)
}

/// On a 404 of `GET /prompts/{name}/deployed/`: the log position the answer includes.
pub const POSITION_HEADER: &str = "x-promptos-position";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvironmentParams {
    /// e.g. `production`.
    #[param(pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: String,
    /// Resolve includes, as for one prompt.
    pub resolve: Option<bool>,
    /// RFC 3339 time: every prompt live at that moment (each exactly as
    /// `GET /prompts/{name}/deployed/?as_of=` answers it).
    pub as_of: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeployedList {
    pub environment: String,
    /// The moment asked for (`as_of`), as the log writes times; absent for now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// Log position the answer includes: resume the change feed after it.
    pub position: i64,
    pub items: Vec<DeployedPrompt>,
}

/// Every prompt deployed in an environment, in one response (to warm a cache), or at a
/// moment in the past (`as_of`).
#[utoipa::path(get, path = "/deployed/", tag = "deployments", params(EnvironmentParams),
    responses((status = 200, body = DeployedList), (status = 403, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<EnvironmentParams>,
) -> ApiResult<axum::Json<DeployedList>> {
    let environment = EnvironmentName::parse(&p.environment)?;
    caller.require_read(&environment)?;
    state.commands.context().check_environment(&environment)?;
    let position = state.follower.visible();
    if let Some(as_of) = &p.as_of {
        let at = moment("as_of", as_of)?;
        let items = live_at(&state, &environment, &at, p.resolve == Some(true)).await?;
        return Ok(axum::Json(DeployedList { environment: environment.to_string(), as_of: Some(at), position, items }));
    }
    let mut items = Vec::new();
    for d in queries::deployed_in(&state.db, environment.as_str()).await? {
        let d = if p.resolve == Some(true) { resolve(&state, d, None).await? } else { d };
        items.push(answer(d));
    }
    Ok(axum::Json(DeployedList { environment: environment.to_string(), as_of: None, position, items }))
}
