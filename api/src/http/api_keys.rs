//! `/api-keys/`: read-only credentials for applications (admins only).

use super::error::{ApiError, ApiResult};
use super::extract::Json;
use crate::app::AppState;
use crate::auth::{keys, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptos_core::access::ApiKeyCommand;
use promptos_core::events::api_key_stream;
use promptos_core::names::{EnvironmentName, Role};
use promptos_projector::queries;
use promptos_projector::views::ApiKeyRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for, e.g. the application's name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Environments the key may read, e.g. `["production"]`.
    #[schema(min_items = 1)]
    pub environments: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    pub key_id: String,
    pub name: String,
    pub environments: Vec<String>,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    /// The key itself: shown only in the response that created it. Send it as
    /// `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&ApiKeyRow> for ApiKeyDto {
    fn from(k: &ApiKeyRow) -> Self {
        Self {
            key_id: k.key_id.clone(),
            name: k.name.clone(),
            environments: serde_json::from_str(&k.environments).unwrap_or_default(),
            created_at: k.created_at.clone(),
            created_by: k.created_by.clone(),
            revoked_at: k.revoked_at.clone(),
            revoked_by: k.revoked_by.clone(),
            key: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyDto>,
}

async fn key_dto(state: &AppState, key_id: &str) -> ApiResult<ApiKeyDto> {
    let row = queries::api_key(&state.db, key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("API key {key_id:?} not found")))?;
    Ok(ApiKeyDto::from(&row))
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(create, list))
        .routes_and_twins(utoipa_axum::routes!(revoke))
}

/// Create an API key. The key is in this response only.
#[utoipa::path(post, path = "/api-keys/", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyDto), (status = 403, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, axum::Json<ApiKeyDto>)> {
    caller.require(Role::Admin)?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "give the key a name of 1 to 100 characters"));
    }
    if body.environments.is_empty() {
        return Err(ApiError::invalid("environments", "list at least one environment the key may read"));
    }
    let mut environments = Vec::new();
    for e in &body.environments {
        let env = EnvironmentName::parse_field(e, "environments")?;
        if !state.commands.context().environments.contains(&env) {
            return Err(ApiError::invalid("environments", format!("unknown environment {e:?}")));
        }
        if !environments.contains(&env) {
            environments.push(env);
        }
    }
    let (key_id, key) = keys::generate();
    let command = ApiKeyCommand::Create { key_id: key_id.clone(), name, environments, key_hash: keys::hash(&key) };
    let outcome = state.commands.api_keys.execute(api_key_stream(&key_id), command, caller.meta).await?;
    state.settle(outcome.position).await;
    let mut dto = key_dto(&state, &key_id).await?;
    dto.key = Some(key);
    Ok((StatusCode::CREATED, axum::Json(dto)))
}

/// List API keys (without the keys).
#[utoipa::path(get, path = "/api-keys/", tag = "api-keys", responses((status = 200, body = ApiKeyList), (status = 403, body = super::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<ApiKeyList>> {
    caller.require(Role::Admin)?;
    let items = queries::api_keys(&state.db).await?.iter().map(ApiKeyDto::from).collect();
    Ok(axum::Json(ApiKeyList { items }))
}

/// Revoke an API key: it stops working at once.
#[utoipa::path(delete, path = "/api-keys/{key_id}", tag = "api-keys", params(("key_id" = String, Path)),
    responses((status = 200, body = ApiKeyDto), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<axum::Json<ApiKeyDto>> {
    caller.require(Role::Admin)?;
    if key_id.len() != 12 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound(format!("API key {key_id:?} not found")));
    }
    let outcome = state.commands.api_keys.execute(api_key_stream(&key_id), ApiKeyCommand::Revoke, caller.meta).await?;
    state.settle(outcome.position).await;
    Ok(axum::Json(key_dto(&state, &key_id).await?))
}
