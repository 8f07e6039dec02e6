//! `/users/`: accounts and roles (admins only, except changing one's own password).

use super::auth::ClientAddress;
use super::error::{ApiError, ApiResult};
use super::extract::Json;
use crate::app::AppState;
use crate::auth::{passwords, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptos_core::access::UserCommand;
use promptos_core::events::user_stream;
use promptos_core::names::{Role, Username};
use promptos_projector::queries;
use promptos_projector::views::UserRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(pattern = "^[a-z0-9._@-]+$", min_length = 1, max_length = 64)]
    pub username: String,
    /// `viewer`, `editor` or `admin`.
    #[schema(pattern = "^(viewer|editor|admin)$")]
    pub role: String,
    /// At least 12 characters; when absent a strong password is generated and returned
    /// once.
    #[schema(min_length = 12, max_length = 512)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// `viewer`, `editor` or `admin`.
    #[schema(pattern = "^(viewer|editor|admin)$")]
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The new password; admins resetting someone else's may leave it out to have one
    /// generated.
    #[schema(min_length = 12, max_length = 512)]
    pub password: Option<String>,
    /// Required when changing your own password.
    pub current_password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    /// A generated password, shown only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl From<&UserRow> for UserDto {
    fn from(u: &UserRow) -> Self {
        Self {
            username: u.username.clone(),
            role: u.role.clone(),
            disabled: u.disabled,
            created_at: u.created_at.clone(),
            created_by: u.created_by.clone(),
            updated_at: u.updated_at.clone(),
            updated_by: u.updated_by.clone(),
            password: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserDto>,
}

fn path_username(name: &str) -> ApiResult<Username> {
    Username::parse(name).map_err(|_| ApiError::NotFound(format!("user {name:?} not found")))
}

async fn user_dto(state: &AppState, username: &str) -> ApiResult<UserDto> {
    let row = queries::user(&state.db, username)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {username:?} not found")))?;
    Ok(UserDto::from(&row))
}

/// Picks the given password (checked against the policy) or generates one.
fn choose_password(given: Option<String>) -> ApiResult<(String, bool)> {
    match given {
        Some(p) => {
            passwords::check_policy(&p).map_err(|m| ApiError::invalid("password", m))?;
            Ok((p, false))
        }
        None => Ok((passwords::generate(), true)),
    }
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(create, list))
        .routes_and_twins(utoipa_axum::routes!(get, change_role))
        .routes_and_twins(utoipa_axum::routes!(disable))
        .routes_and_twins(utoipa_axum::routes!(change_password))
}

/// Create a user.
#[utoipa::path(post, path = "/users/", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserDto), (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateUser>,
) -> ApiResult<(StatusCode, axum::Json<UserDto>)> {
    caller.require(Role::Admin)?;
    let username = Username::parse(&body.username)?;
    let role = Role::parse(&body.role)?;
    let (password, generated) = choose_password(body.password)?;
    let password_hash = passwords::hash(password.clone()).await?;
    let command = UserCommand::Create { username: username.clone(), role, password_hash };
    let outcome = state.commands.users.execute(user_stream(&username), command, caller.meta).await?;
    state.settle(outcome.position).await;
    let mut dto = user_dto(&state, username.as_str()).await?;
    dto.password = generated.then_some(password);
    Ok((StatusCode::CREATED, axum::Json(dto)))
}

/// List users.
#[utoipa::path(get, path = "/users/", tag = "users", responses((status = 200, body = UserList), (status = 403, body = super::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<UserList>> {
    caller.require(Role::Admin)?;
    let items = queries::users(&state.db).await?.iter().map(UserDto::from).collect();
    Ok(axum::Json(UserList { items }))
}

/// One user.
#[utoipa::path(get, path = "/users/{username}", tag = "users", params(("username" = String, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<UserDto>> {
    caller.require(Role::Admin)?;
    Ok(axum::Json(user_dto(&state, path_username(&name)?.as_str()).await?))
}

/// Change a user's role.
#[utoipa::path(patch, path = "/users/{username}", tag = "users", params(("username" = String, Path)), request_body = ChangeRole,
    responses((status = 200, body = UserDto), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<ChangeRole>,
) -> ApiResult<axum::Json<UserDto>> {
    caller.require(Role::Admin)?;
    let username = path_username(&name)?;
    let role = Role::parse(&body.role)?;
    let outcome =
        state.commands.users.execute(user_stream(&username), UserCommand::ChangeRole { role }, caller.meta).await?;
    state.settle(outcome.position).await;
    Ok(axum::Json(user_dto(&state, username.as_str()).await?))
}

/// Disable a user: their tokens stop working at once.
#[utoipa::path(post, path = "/users/{username}/disable", tag = "users", params(("username" = String, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<UserDto>> {
    caller.require(Role::Admin)?;
    let username = path_username(&name)?;
    if caller.username() == Some(username.as_str()) {
        return Err(ApiError::Conflict {
            code: "cannot_disable_self",
            message: "you cannot disable your own account".into(),
            field: None,
        });
    }
    let outcome = state.commands.users.execute(user_stream(&username), UserCommand::Disable, caller.meta).await?;
    state.settle(outcome.position).await;
    Ok(axum::Json(user_dto(&state, username.as_str()).await?))
}

/// Change a password: your own (with the current one), or anyone's as an admin. The
/// user's older tokens stop working; nothing else changes.
#[utoipa::path(post, path = "/users/{username}/password", tag = "users", params(("username" = String, Path)),
    request_body = ChangePassword,
    responses((status = 200, body = UserDto), (status = 403, body = super::error::ErrorBody),
        (status = 409, description = "The user is disabled", body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody),
        (status = 429, description = "Too many wrong current passwords; retry after `Retry-After` seconds",
            body = super::error::ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    Path(name): Path<String>,
    Json(body): Json<ChangePassword>,
) -> ApiResult<axum::Json<UserDto>> {
    let username = path_username(&name)?;
    let own = caller.username() == Some(username.as_str());
    if own {
        let current = body
            .current_password
            .ok_or_else(|| ApiError::invalid("current_password", "give your current password to change it"))?;
        // A stolen token must not become a way around the login throttle.
        let attempt = state
            .auth
            .throttle
            .begin(username.as_str(), &address)
            .map_err(|wait| ApiError::TooManyAttempts(wait.as_secs().max(1)))?;
        let row = queries::user(&state.db, username.as_str()).await?;
        if !passwords::verify(current, row.map(|r| r.password_hash)).await {
            return Err(ApiError::invalid("current_password", "the current password is wrong"));
        }
        state.auth.throttle.succeeded(attempt);
        if body.password.is_none() {
            return Err(ApiError::invalid("password", "give the new password"));
        }
    } else {
        caller.require(Role::Admin)?;
    }
    let (password, generated) = choose_password(body.password)?;
    let command = UserCommand::ChangePassword { password_hash: passwords::hash(password.clone()).await? };
    let outcome = state.commands.users.execute(user_stream(&username), command, caller.meta).await?;
    state.settle(outcome.position).await;
    let mut dto = user_dto(&state, username.as_str()).await?;
    dto.password = generated.then_some(password);
    Ok(axum::Json(dto))
}
