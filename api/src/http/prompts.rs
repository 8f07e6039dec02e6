//! `/prompts/`: create, list, read, describe and delete prompts.

use super::deployments::DeploymentDto;
use super::error::{ApiError, ApiResult};
use super::extract::{Json, Query};
use super::versions::VersionDto;
use crate::app::AppState;
use crate::auth::Caller;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptos_core::events::prompt_stream;
use promptos_core::names::Role;
use promptos_core::names::{Description, PromptName, Tag};
use promptos_core::prompt::PromptCommand;
use promptos_projector::queries::{self, PromptListFilter};
use promptos_projector::views::{row_ops, PromptRow, RowOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrompt {
    /// Lowercase letters, digits, `-`, `_`, `.`; 1–100 characters.
    #[schema(example = "customer-support-agent", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePrompt {
    #[schema(max_length = 4000)]
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromptDto {
    /// Identifies this incarnation of the name; a prompt deleted and created again
    /// gets a new id.
    pub prompt_id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<String>,
    pub latest_version: Option<String>,
    pub version_count: i64,
    /// Version live in each environment.
    pub live: BTreeMap<String, String>,
    /// Labels for filtering, e.g. `team:support`, sorted.
    pub tags: Vec<String>,
    /// Log position of the last change to this prompt.
    pub position: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTags {
    /// The prompt's tags from now on (at most 20; each lowercase letters, digits, `-`,
    /// `_`, `.`, `:`).
    #[schema(example = json!(["team:support", "pii"]), max_items = 20)]
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromptDetailDto {
    #[serde(flatten)]
    pub prompt: PromptDto,
    /// Every version, oldest first.
    pub versions: Vec<VersionDto>,
    /// The current deployment in each environment.
    pub deployments: BTreeMap<String, DeploymentDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromptPage {
    pub items: Vec<PromptDto>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub name: String,
    pub prompt_id: String,
    pub deleted: bool,
    pub position: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only prompts whose name starts with this.
    pub prefix: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Include deleted prompts (default false).
    pub include_deleted: Option<bool>,
    /// Only prompts carrying this tag, e.g. `team:support`.
    #[param(pattern = "^[a-z0-9._:-]+$", min_length = 1, max_length = 50)]
    pub tag: Option<String>,
}

pub(crate) fn prompt_dto(row: PromptRow, live: BTreeMap<String, String>) -> PromptDto {
    PromptDto {
        prompt_id: row.prompt_id,
        name: row.name,
        description: row.description,
        created_at: row.created_at,
        created_by: row.created_by,
        updated_at: row.updated_at,
        updated_by: row.updated_by,
        deleted_at: row.deleted_at,
        deleted_by: row.deleted_by,
        latest_version: row.latest_version,
        version_count: row.version_count,
        live,
        tags: serde_json::from_str(&row.tags).unwrap_or_default(),
        position: row.last_position,
    }
}

/// The prompt's row as of `position`: the read model's `row`, brought up to `position`
/// from the prompt's stream in the log where it lags behind (an external projector
/// slower than the consistency timeout), applied as the projector applies it; replayed
/// from the stream alone where the read model does not show the prompt yet. So a
/// write's answer includes it. Without lag this reads nothing.
async fn caught_up(state: &AppState, name: &PromptName, row: Option<PromptRow>, position: i64) -> ApiResult<PromptRow> {
    let row = match row {
        Some(row) if row.last_position >= position => return Ok(row),
        other => other,
    };
    let stream = promptos_store::EventLog::read_stream(&state.db, &prompt_stream(name), 0).await?;
    let shown = row.as_ref().map_or(0, |r| r.last_position);
    let mut model = promptos_projector::views::ReadModel::default();
    if let Some(row) = row {
        model.prompts.insert(row.prompt_id.clone(), row);
    }
    for event in stream.iter().filter(|e| e.position > shown && e.position <= position) {
        for op in row_ops(event).map_err(|e| ApiError::Internal(e.into()))? {
            model.apply(op);
        }
    }
    // The stream holds every prompt that had this name; the live one is the newest.
    model
        .prompts
        .into_values()
        .filter(|p| p.deleted_at.is_none())
        .max_by_key(|p| p.first_position)
        .ok_or_else(|| ApiError::NotFound(format!("prompt {:?} not found", name.as_str())))
}

use super::support::{live_prompt, not_our_cursor, page_size, path_name, projected};

async fn detail(state: &AppState, row: PromptRow) -> ApiResult<PromptDetailDto> {
    let versions = queries::versions(&state.db, &row.prompt_id, 0, i64::MAX).await?;
    let deployments = queries::deployments(&state.db, std::slice::from_ref(&row.prompt_id)).await?;
    let live = deployments.iter().map(|d| (d.environment.clone(), d.version_string.clone())).collect();
    Ok(PromptDetailDto {
        prompt: prompt_dto(row, live),
        versions: versions.into_iter().map(VersionDto::from).collect(),
        deployments: deployments.into_iter().map(|d| (d.environment.clone(), DeploymentDto::from(d))).collect(),
    })
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(create, list))
        .routes_and_twins(utoipa_axum::routes!(get, update, delete))
        .routes_and_twins(utoipa_axum::routes!(set_tags))
}

/// Create a prompt.
#[utoipa::path(post, path = "/prompts/", tag = "prompts", request_body = CreatePrompt,
    responses((status = 201, body = PromptDto), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreatePrompt>,
) -> ApiResult<(StatusCode, axum::Json<PromptDto>)> {
    caller.require(Role::Editor)?;
    let name = PromptName::parse(&body.name)?;
    let description = Description::parse(&body.description)?;
    let command = PromptCommand::Create { prompt_id: uuid::Uuid::new_v4(), name: name.clone(), description };
    let outcome = state.commands.prompts.execute(prompt_stream(&name), command, caller.meta).await?;
    state.settle(outcome.position).await;
    // From the event, as the projector derives it: right even while the read models lag.
    let row = projected(&outcome.events, |op| match op {
        RowOp::Prompts(promptos_projector::views::prompts::Op::Insert(row)) => Some(row),
        _ => None,
    })?;
    Ok((StatusCode::CREATED, axum::Json(prompt_dto(row, BTreeMap::new()))))
}

/// List prompts by name, with what is live in each environment.
#[utoipa::path(get, path = "/prompts/", tag = "prompts", params(ListParams),
    responses((status = 200, body = PromptPage), (status = 400, body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<PromptPage>> {
    caller.require(Role::Viewer)?;
    let limit = page_size(p.limit, 50)?;
    let after = match p.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => {
            let parsed = c.rsplit_once(':').and_then(|(n, pos)| Some((n.to_owned(), pos.parse::<i64>().ok()?)));
            Some(parsed.ok_or_else(not_our_cursor)?)
        }
    };
    let filter = PromptListFilter {
        prefix: p.prefix.filter(|s| !s.is_empty()),
        after,
        include_deleted: p.include_deleted.unwrap_or(false),
        tag: p.tag.as_deref().map(Tag::parse).transpose()?.map(|t| t.to_string()),
        limit: limit + 1,
    };
    let mut rows = queries::list_prompts(&state.db, &filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| format!("{}:{}", r.name, r.first_position))).flatten();
    let ids: Vec<String> = rows.iter().map(|r| r.prompt_id.clone()).collect();
    let mut live: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for d in queries::deployments(&state.db, &ids).await? {
        live.entry(d.prompt_id).or_default().insert(d.environment, d.version_string);
    }
    let items = rows
        .into_iter()
        .map(|r| {
            let l = live.remove(&r.prompt_id).unwrap_or_default();
            prompt_dto(r, l)
        })
        .collect();
    Ok(axum::Json(PromptPage { items, next_cursor }))
}

/// A prompt with its versions and current deployments.
#[utoipa::path(get, path = "/prompts/{name}", tag = "prompts", params(("name" = String, Path)),
    responses((status = 200, body = PromptDetailDto), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<PromptDetailDto>> {
    caller.require(Role::Viewer)?;
    let row = live_prompt(&state, path_name(&name)?.as_str()).await?;
    Ok(axum::Json(detail(&state, row).await?))
}

/// Change a prompt's description.
#[utoipa::path(patch, path = "/prompts/{name}", tag = "prompts", params(("name" = String, Path)), request_body = UpdatePrompt,
    responses((status = 200, body = PromptDto), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
    Json(body): Json<UpdatePrompt>,
) -> ApiResult<axum::Json<PromptDto>> {
    caller.require(Role::Editor)?;
    let name = path_name(&name)?;
    let description = Description::parse(&body.description)?;
    let outcome = state
        .commands
        .prompts
        .execute(prompt_stream(&name), PromptCommand::UpdateDescription { description }, caller.meta)
        .await?;
    state.settle(outcome.position).await;
    let row = caught_up(&state, &name, queries::live_prompt(&state.db, name.as_str()).await?, outcome.position).await?;
    Ok(axum::Json(detail(&state, row).await?.prompt))
}

/// Replace a prompt's tags (recorded as a `PromptTagged` event).
#[utoipa::path(put, path = "/prompts/{name}/tags", tag = "prompts", params(("name" = String, Path)), request_body = SetTags,
    responses((status = 200, body = PromptDto), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn set_tags(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
    Json(body): Json<SetTags>,
) -> ApiResult<axum::Json<PromptDto>> {
    caller.require(Role::Editor)?;
    let name = path_name(&name)?;
    let tags = Tag::parse_list(&body.tags)?;
    let outcome =
        state.commands.prompts.execute(prompt_stream(&name), PromptCommand::SetTags { tags }, caller.meta).await?;
    state.settle(outcome.position).await;
    let row = caught_up(&state, &name, queries::live_prompt(&state.db, name.as_str()).await?, outcome.position).await?;
    Ok(axum::Json(detail(&state, row).await?.prompt))
}

/// Delete a prompt. Its history stays queryable; the name can be used again.
#[utoipa::path(delete, path = "/prompts/{name}", tag = "prompts", params(("name" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "Deployed prompts include it", body = super::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> ApiResult<axum::Json<Deleted>> {
    caller.require(Role::Editor)?;
    let name = path_name(&name)?;
    // Taking a prompt out of a protected environment is an admin's decision, decided on
    // the prompt's own stream; a prompt others still include is refused where appends
    // are serialised. Neither reads the read models, which may lag.
    let command = PromptCommand::Delete { by_admin: caller.require(Role::Admin).is_ok() };
    let outcome = state.commands.prompts.execute(prompt_stream(&name), command, caller.meta).await?;
    state.settle(outcome.position).await;
    let prompt_id =
        outcome.events.first().and_then(|e| e.decode().ok()).and_then(|e| e.prompt().map(|(id, _)| id.to_string()));
    Ok(axum::Json(Deleted {
        name: name.to_string(),
        prompt_id: prompt_id.unwrap_or_default(),
        deleted: true,
        position: outcome.position,
    }))
}
