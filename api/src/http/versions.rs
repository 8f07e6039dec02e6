//! `/prompts/{name}/versions/`: immutable versions of a prompt's text.

use super::error::{ApiError, ApiResult};
use super::extract::{Json, Query};
use super::support::{live_prompt, page_size, path_name, position_cursor};
use crate::app::AppState;
use crate::auth::tokens::TokenError;
use crate::auth::Caller;
use crate::optimize::{SuggestionClaims, SUGGESTION_AUDIENCE};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptos_core::content::{check_config, ChatRole, ContentError, VersionContent};
use promptos_core::events::prompt_stream;
use promptos_core::names::Role;
use promptos_core::names::{CommitMessage, VersionString};
use promptos_core::prompt::PromptCommand;
use promptos_core::template::Template;
use promptos_projector::queries;
use promptos_projector::views::{RowOp, VersionRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersion {
    #[schema(example = "v1.0", pattern = "^[A-Za-z0-9._+-]+$", min_length = 1, max_length = 50)]
    pub version_string: String,
    /// A text prompt's template, with `{{ variable }}` placeholders (minijinja syntax)
    /// and `{% include "other-prompt" %}` for shared fragments. Give either `text` or
    /// `messages`.
    #[schema(example = "Hello {{ customer_name }}, how can I help?")]
    pub text: Option<String>,
    /// A chat prompt: its messages in order, each `content` a template.
    #[schema(max_items = 100)]
    pub messages: Option<Vec<MessageDto>>,
    /// Model parameters versioned with the wording (`model`, `temperature`, …): a JSON
    /// object of at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    #[schema(max_length = 4000)]
    pub commit_message: Option<String>,
    /// The `suggestion_token` of an accepted LLM suggestion (`POST /prompts/{name}/optimize`):
    /// the version then records where its text came from.
    pub suggestion_token: Option<String>,
}

/// A chat message; `content` is a template.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageDto {
    /// `system`, `user`, `assistant` or `tool`.
    #[schema(pattern = "^(system|user|assistant|tool)$")]
    pub role: String,
    pub content: String,
}

impl MessageDto {
    /// Messages given beside a version (a test case's, the playground's): each role
    /// checked, the content taken as it is; an error names `messages[i].role`.
    pub fn parse_all(messages: &[MessageDto]) -> ApiResult<Vec<promptos_core::content::ChatMessage>> {
        messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let role = ChatRole::parse(&m.role, "messages")
                    .map_err(|e| ApiError::invalid(&format!("messages[{i}].role"), e.message))?;
                Ok(promptos_core::content::ChatMessage { role, content: m.content.clone() })
            })
            .collect()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDto {
    /// `text` or `chat`.
    pub kind: String,
    pub version_string: String,
    pub text: String,
    /// Variables the template reads, sorted.
    pub variables: Vec<String>,
    pub commit_message: Option<String>,
    pub author: String,
    pub created_at: String,
    pub position: i64,
    /// Set when the text came from an accepted LLM suggestion: goal, provider, model,
    /// the version it came from and whether it was edited before it was accepted.
    #[schema(value_type = Option<Object>)]
    pub origin: Option<serde_json::Value>,
    /// A chat prompt's messages (absent for text prompts, whose `text` holds the template).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageDto>>,
    /// Model parameters, if the version has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// Prompts the templates include.
    pub includes: Vec<String>,
}

impl From<VersionRow> for VersionDto {
    fn from(v: VersionRow) -> Self {
        Self {
            variables: serde_json::from_str(&v.variables).unwrap_or_default(),
            version_string: v.version_string,
            text: v.text,
            commit_message: v.commit_message,
            author: v.author,
            created_at: v.created_at,
            position: v.position,
            origin: v.origin.as_deref().and_then(|o| serde_json::from_str(o).ok()),
            kind: v.kind,
            messages: v.messages.as_deref().and_then(|m| serde_json::from_str(m).ok()),
            config: v.config.as_deref().and_then(|c| serde_json::from_str(c).ok()),
            includes: serde_json::from_str(&v.includes).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionPage {
    pub items: Vec<VersionDto>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionListParams {
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(create, list))
        .routes_and_twins(utoipa_axum::routes!(get))
}

/// Create a version. Its template is checked now: a syntax error is refused with the
/// line and column.
#[utoipa::path(post, path = "/prompts/{name}/versions/", tag = "versions", params(("name" = String, Path)),
    request_body = CreateVersion,
    responses((status = 201, body = VersionDto), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
    Json(body): Json<CreateVersion>,
) -> ApiResult<(StatusCode, axum::Json<VersionDto>)> {
    caller.require(Role::Editor)?;
    let name = path_name(&name)?;
    let version_string = VersionString::parse(&body.version_string)?;
    let content = match (&body.text, &body.messages) {
        (Some(text), None) => VersionContent::Text(Template::parse(text)?),
        (None, Some(messages)) => {
            let parsed = messages
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let role = ChatRole::parse(&m.role, "role")
                        .map_err(|e| ApiError::invalid(&format!("messages[{i}].role"), e.message))?;
                    Ok((role, m.content.clone()))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            VersionContent::chat(&parsed).map_err(|e| match e {
                ContentError::Invalid(e) => ApiError::from(e),
                ContentError::Message(m) => ApiError::MessageTemplate { index: m.index, error: m.error },
            })?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "messages",
                "give either text (a text prompt) or messages (a chat prompt), not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "text",
                "give the template as text (a text prompt) or as messages (a chat prompt)",
            ))
        }
    };
    let config = body.config.clone().map(check_config).transpose()?;
    let content_field = if body.messages.is_some() { "messages" } else { "text" };
    let commit_message = body.commit_message.as_deref().map(CommitMessage::parse).transpose()?;
    let origin = match &body.suggestion_token {
        None => None,
        Some(token) => {
            let claims: SuggestionClaims =
                state.auth.tokens.verify_for(token, SUGGESTION_AUDIENCE).map_err(|e| match e {
                    TokenError::Expired => {
                        ApiError::invalid("suggestion_token", "the suggestion expired; run the optimisation again")
                    }
                    TokenError::Invalid => {
                        ApiError::invalid("suggestion_token", "not a suggestion token of this server")
                    }
                })?;
            if claims.prompt != name.as_str() {
                return Err(ApiError::invalid(
                    "suggestion_token",
                    format!("the suggestion was made for prompt {:?}, not this one", claims.prompt),
                ));
            }
            let VersionContent::Text(template) = &content else {
                return Err(ApiError::invalid("suggestion_token", "LLM suggestions are for text prompts"));
            };
            Some(claims.origin(template.text()))
        }
    };
    let command = PromptCommand::CreateVersion {
        version_string: version_string.clone(),
        content,
        config,
        commit_message,
        origin,
    };
    // Whether its includes exist and form no cycle is decided when it is appended.
    let outcome = state
        .commands
        .prompts
        .execute(prompt_stream(&name), command, caller.meta)
        .await
        .map_err(|e| ApiError::from(e).on_field(content_field))?;
    state.settle(outcome.position).await;
    // The answer is the row the projector derives from the event, so it is right even
    // when the read models lag behind (a projector in another process that is down).
    let row = super::support::projected(&outcome.events, |op| match op {
        RowOp::Versions(row) => Some(row),
        _ => None,
    })?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// A prompt's versions, oldest first.
#[utoipa::path(get, path = "/prompts/{name}/versions/", tag = "versions", params(("name" = String, Path), VersionListParams),
    responses((status = 200, body = VersionPage), (status = 404, body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(p): Query<VersionListParams>,
) -> ApiResult<axum::Json<VersionPage>> {
    caller.require(Role::Viewer)?;
    let prompt = live_prompt(&state, path_name(&name)?.as_str()).await?;
    let limit = page_size(p.limit, 100)?;
    let after = position_cursor(p.cursor.as_deref())?.unwrap_or(0);
    let mut rows = queries::versions(&state.db, &prompt.prompt_id, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| r.position.to_string())).flatten();
    Ok(axum::Json(VersionPage { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

/// One version.
#[utoipa::path(get, path = "/prompts/{name}/versions/{version_string}", tag = "versions",
    params(("name" = String, Path), ("version_string" = String, Path)),
    responses((status = 200, body = VersionDto), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version_string)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionDto>> {
    caller.require(Role::Viewer)?;
    let prompt = live_prompt(&state, path_name(&name)?.as_str()).await?;
    let row = queries::version(&state.db, &prompt.prompt_id, &version_string)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("prompt {name:?} has no version {version_string:?}")))?;
    Ok(axum::Json(row.into()))
}
