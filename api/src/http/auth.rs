//! `/auth/token` (log in) and `/auth/me`.

use super::error::{ApiError, ApiResult};
use super::extract::parse_json;
use crate::app::AppState;
use crate::auth::{passwords, Caller, Principal};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use promptos_projector::queries;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;

/// OAuth2 password grant, as a form (`application/x-www-form-urlencoded`) or JSON.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `password` if given.
    #[schema(pattern = "^password$")]
    pub grant_type: Option<String>,
    pub username: String,
    pub password: String,
    /// Accepted and ignored.
    pub scope: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// Username, or the API key's name.
    pub name: String,
    /// How the caller appears in the log.
    pub actor: String,
    /// For users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// For API keys: environments it may read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
}

/// The login body in either encoding.
pub struct LoginForm(TokenRequest);

impl<S> FromRequest<S> for LoginForm
where
    S: Send + Sync,
    crate::AppState: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
        if json {
            let bytes = super::extract::read_body(req, state).await?;
            return parse_json(&bytes).map(LoginForm);
        }
        let timeout = <AppState as axum::extract::FromRef<S>>::from_ref(state).settings.body_timeout;
        tokio::time::timeout(timeout, axum::Form::<TokenRequest>::from_request(req, state))
            .await
            .map_err(|_| ApiError::BodyTimeout)?
            .map(|f| LoginForm(f.0))
            .map_err(|e| ApiError::Unprocessable { code: "invalid_body", message: e.body_text(), field: None })
    }
}

/// The peer address, for throttling failed logins per address.
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(ClientAddress(addr.unwrap_or_else(|| "unknown".into())))
    }
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default().routes_and_twins(utoipa_axum::routes!(token)).routes_and_twins(utoipa_axum::routes!(me))
}

/// Log in with a username and password; returns a bearer token.
#[utoipa::path(post, path = "/auth/token", tag = "auth", security(),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 401, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    LoginForm(form): LoginForm,
) -> ApiResult<axum::Json<TokenResponse>> {
    if form.grant_type.as_deref().is_some_and(|g| g != "password") {
        return Err(ApiError::BadRequest {
            code: "unsupported_grant_type",
            message: "only the password grant is supported".into(),
            field: Some("grant_type".into()),
        });
    }
    let username = form.username.trim().to_owned();
    let throttle = &state.auth.throttle;
    // Counted before the password is checked, so parallel guesses cannot race past it.
    let attempt =
        throttle.begin(&username, &address).map_err(|wait| ApiError::TooManyAttempts(wait.as_secs().max(1)))?;
    let user =
        if form.password.len() <= 4 * passwords::MAX_CHARS { queries::user(&state.db, &username).await? } else { None };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let password_ok = passwords::verify(form.password, stored).await;
    match user.filter(|u| password_ok && !u.disabled) {
        Some(user) => {
            throttle.succeeded(attempt);
            let access_token = state.auth.tokens.issue(&user.username, user.password_position);
            Ok(axum::Json(TokenResponse {
                access_token,
                token_type: "bearer",
                expires_in: state.auth.tokens.lifetime.as_secs(),
            }))
        }
        None => {
            drop(attempt);
            // One message for every failure, so that it does not tell whether the user
            // exists.
            Err(ApiError::Unauthorized("wrong username or password".into()))
        }
    }
}

/// Who am I?
#[utoipa::path(get, path = "/auth/me", tag = "auth", responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody)))]
pub async fn me(caller: Caller) -> axum::Json<Me> {
    let actor = caller.principal.actor();
    axum::Json(match caller.principal {
        Principal::User { username, role } => {
            Me { kind: "user", name: username, actor, role: Some(role.to_string()), environments: None }
        }
        Principal::ApiKey { name, environments, .. } => {
            Me { kind: "api_key", name, actor, role: None, environments: Some(environments) }
        }
    })
}
