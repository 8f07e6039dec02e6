//! `POST /prompts/{name}/optimize` and `GET /optimize/providers`: LLM suggestions for a
//! prompt's text, reviewed by a person before anything is saved.

use super::error::{ApiError, ApiResult};
use super::extract::Json;
use super::support::path_name;
use crate::app::AppState;
use crate::auth::Caller;
use crate::optimize::goals::{PREFIX, SYSTEM_ENVIRONMENT};
use crate::optimize::{OptimizeError, Request, SetupError, VariableCheck};
use axum::extract::{Path, State};
use promptos_core::names::Role;
use promptos_core::names::VersionString;
use promptos_core::template::Template;
use promptos_projector::queries::{self, PromptListFilter};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizeRequest {
    /// The version whose text to optimise (or send `text`).
    pub version_string: Option<String>,
    /// Text to optimise instead of a stored version (for example an unsaved draft).
    pub text: Option<String>,
    /// The goal, e.g. `clarity_conciseness` (see `GET /optimize/providers`).
    #[schema(example = "clarity_conciseness")]
    pub goal: String,
    /// Default: the server's default provider.
    pub provider: Option<String>,
    /// Default: the provider's configured model.
    pub model: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptimizeResponse {
    pub original: String,
    pub suggestion: String,
    pub goal: String,
    pub provider: String,
    pub model: String,
    /// The suggestion's `{{variables}}` compared with the original's.
    pub variables: VariableCheck,
    /// False when the suggestion drops or invents variables, or is not a valid template.
    pub variables_ok: bool,
    /// 2 when the first answer broke the variables and the provider was asked again.
    pub attempts: u32,
    pub from_version: Option<String>,
    /// The version of the goal's meta-prompt that was used.
    pub meta_prompt_version: String,
    /// Send with the new version (`POST /prompts/{name}/versions/`) to record that its
    /// text came from this suggestion. Valid for 24 hours.
    pub suggestion_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderDto {
    pub name: String,
    pub default_model: String,
    /// Used when a request names no provider.
    pub default: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GoalDto {
    pub goal: String,
    pub description: String,
    /// The meta-prompt behind it (edit and deploy it to `system` to change the goal).
    pub prompt: String,
    pub version: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersDto {
    /// Configured providers, the default first (no secrets).
    pub providers: Vec<ProviderDto>,
    /// The goals: meta-prompts named `promptos.optimize.*` live in `system`.
    pub goals: Vec<GoalDto>,
}

/// The meta-prompts live in `system`, with their descriptions: two queries in all.
async fn goals(state: &AppState) -> ApiResult<Vec<GoalDto>> {
    let filter =
        PromptListFilter { prefix: Some(PREFIX.into()), after: None, include_deleted: false, tag: None, limit: 1000 };
    let descriptions: HashMap<String, String> =
        queries::list_prompts(&state.db, &filter).await?.into_iter().map(|p| (p.name, p.description)).collect();
    let live = promptos_projector::deployed::deployed_in(&state.db, SYSTEM_ENVIRONMENT).await?;
    Ok(live
        .into_iter()
        .filter_map(|item| {
            let description = descriptions.get(&item.prompt_name)?.clone();
            Some(GoalDto {
                goal: item.prompt_name[PREFIX.len()..].to_owned(),
                description,
                prompt: item.prompt_name,
                version: item.version_string,
            })
        })
        .collect())
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(optimize))
        .routes_and_twins(utoipa_axum::routes!(providers))
}

/// The configured LLM providers and the optimisation goals.
#[utoipa::path(get, path = "/optimize/providers", tag = "optimize", responses((status = 200, body = ProvidersDto)))]
pub async fn providers(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<ProvidersDto>> {
    caller.require(Role::Viewer)?;
    let providers = state
        .optimizer
        .providers()
        .into_iter()
        .enumerate()
        .map(|(i, (name, default_model))| ProviderDto { name, default_model, default: i == 0 })
        .collect();
    Ok(axum::Json(ProvidersDto { providers, goals: goals(&state).await? }))
}

/// Ask an LLM to rewrite a prompt's text towards a goal. Nothing is saved: accept the
/// suggestion by creating a version with its `suggestion_token`.
#[utoipa::path(post, path = "/prompts/{name}/optimize", tag = "optimize", params(("name" = String, Path)),
    request_body = OptimizeRequest,
    responses((status = 200, body = OptimizeResponse), (status = 404, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody),
        (status = 502, description = "The provider failed; the message quotes its reason", body = super::error::ErrorBody),
        (status = 504, description = "The provider did not answer in time", body = super::error::ErrorBody)))]
pub async fn optimize(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
    Json(body): Json<OptimizeRequest>,
) -> ApiResult<axum::Json<OptimizeResponse>> {
    caller.require(Role::Editor)?;
    if !state.optimizer.configured() {
        return Err(ApiError::invalid("provider", SetupError::NoProvider.to_string()));
    }
    let name = path_name(&name)?;
    let prompt = super::support::live_prompt(&state, name.as_str()).await?;
    let (original, from_version) = match (&body.version_string, &body.text) {
        (Some(v), None) => {
            let row = queries::version(&state.db, &prompt.prompt_id, v)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("prompt {:?} has no version {v:?}", name.as_str())))?;
            if row.kind != "text" {
                return Err(ApiError::invalid(
                    "version_string",
                    format!("version {v:?} is a chat prompt; optimisation rewrites text prompts"),
                ));
            }
            (row.text, Some(row.version_string))
        }
        (None, Some(text)) => {
            Template::parse(text)?;
            (text.clone(), None)
        }
        _ => return Err(ApiError::invalid("version_string", "send either version_string or text (one of them)")),
    };
    let goal_prompt = format!("{PREFIX}{}", body.goal);
    let meta = promptos_projector::deployed::deployed(&state.db, &goal_prompt, SYSTEM_ENVIRONMENT).await?;
    let Some(meta) = meta else {
        let known: Vec<String> = goals(&state).await?.into_iter().map(|g| g.goal).collect();
        return Err(ApiError::invalid(
            "goal",
            format!(
                "unknown goal {:?} (no prompt {goal_prompt} live in {SYSTEM_ENVIRONMENT}); goals: {}",
                body.goal,
                known.join(", ")
            ),
        ));
    };
    let request = Request {
        prompt: name.as_str(),
        original: &original,
        from_version: from_version.as_deref().and_then(|v| VersionString::parse(v).ok()),
        goal: &body.goal,
        meta_prompt: &meta.text,
        meta_prompt_version: VersionString::parse(&meta.version_string).ok(),
        provider: body.provider.as_deref(),
        model: body.model.as_deref(),
    };
    let suggestion = state.optimizer.suggest(request).await.map_err(|e| match e {
        OptimizeError::Provider(p) => ApiError::Provider(p),
        OptimizeError::Setup(s @ (SetupError::NoProvider | SetupError::UnknownProvider(..))) => {
            ApiError::invalid("provider", s.to_string())
        }
        OptimizeError::Setup(s @ SetupError::MetaPrompt(_)) => ApiError::invalid("goal", s.to_string()),
    })?;
    let token = state.auth.tokens.sign_for(&suggestion.claims);
    Ok(axum::Json(OptimizeResponse {
        original,
        variables_ok: suggestion.variables.ok(),
        suggestion: suggestion.text,
        goal: body.goal,
        provider: suggestion.claims.origin.provider.clone(),
        model: suggestion.claims.origin.model.clone(),
        variables: suggestion.variables,
        attempts: suggestion.attempts,
        from_version,
        meta_prompt_version: meta.version_string,
        suggestion_token: token,
    }))
}
