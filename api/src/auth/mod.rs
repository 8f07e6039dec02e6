//! Who is calling, and what they may do.
//!
//! Every request except health, docs and login carries a credential: a user's access
//! token (JWT) or an application's API key, as `Authorization: Bearer …` or
//! `X-API-Key: …`. [`Caller`] turns it into a [`Principal`] (401 when it cannot), and
//! handlers ask the principal for the right they need (403 when it lacks it). Roles and
//! revocations are read from the read models on every request (through an exact cache),
//! so a change takes effect at once, not when a token expires.

pub mod keys;
pub mod passwords;
pub mod throttle;
pub mod tokens;

use crate::app::AppState;
use crate::http::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use promptos_core::names::{EnvironmentName, Role};
use promptos_store::Metadata;
use tokens::TokenError;

#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    User {
        username: String,
        role: Role,
    },
    /// Applications: read-only, and only the deployed prompts of their environments.
    ApiKey {
        key_id: String,
        name: String,
        environments: Vec<String>,
    },
}

impl Principal {
    /// How the principal appears in the log: `user:<name>` or `api_key:<id>`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { username, .. } => format!("user:{username}"),
            Principal::ApiKey { key_id, .. } => format!("api_key:{key_id}"),
        }
    }
}

/// An authenticated request: who, and the metadata its events will carry.
pub struct Caller {
    pub principal: Principal,
    pub meta: Metadata,
}

impl Caller {
    /// A user with at least `role`; API keys never pass.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        match &self.principal {
            Principal::User { role: have, .. } if *have >= role => Ok(()),
            Principal::User { role: have, .. } => {
                Err(ApiError::Forbidden(format!("this needs the {role} role; you are {}", article(*have))))
            }
            Principal::ApiKey { .. } => {
                Err(ApiError::Forbidden("API keys may only read deployed prompts of their environments".into()))
            }
        }
    }

    /// Deploying or rolling back: editors in unprotected environments, admins anywhere.
    pub fn require_deploy(&self, state: &AppState, env: &EnvironmentName) -> Result<(), ApiError> {
        if state.settings.protected_environments.contains(env) {
            self.require(Role::Admin).map_err(|_| {
                ApiError::Forbidden(format!("{env} is a protected environment: only admins may change it"))
            })
        } else {
            self.require(Role::Editor)
        }
    }

    /// An override of the evaluation gate: only admins may give one, with a reason of 1
    /// to 500 characters (recorded in the deploy's event).
    pub fn gate_override(&self, reason: Option<&str>) -> Result<Option<String>, ApiError> {
        let Some(reason) = reason else { return Ok(None) };
        self.require(Role::Admin)
            .map_err(|_| ApiError::Forbidden("only admins may override the evaluation gate".into()))?;
        let reason = reason.trim();
        let len = reason.chars().count();
        if len == 0 || len > 500 {
            return Err(ApiError::invalid(
                "gate_override",
                format!("give a reason of 1 to 500 characters (got {len})"),
            ));
        }
        Ok(Some(reason.to_owned()))
    }

    /// A direct deploy, rollback or split in `env`. Where a change-request policy applies
    /// (`PROMPTOS_APPROVALS`) it answers 409 unless an admin passes `force` and forcing
    /// is allowed; a forced change is marked so in the log.
    pub fn require_direct_change(
        &mut self,
        state: &AppState,
        env: &EnvironmentName,
        force: bool,
    ) -> Result<(), ApiError> {
        let Some(approvals) = state.settings.change_requests.approvals.get(env) else { return Ok(()) };
        let admin = matches!(self.principal, Principal::User { role: Role::Admin, .. });
        if force && admin && state.settings.allow_force {
            self.meta.forced = true;
            return Ok(());
        }
        let why = match (force, admin, state.settings.allow_force) {
            (true, true, false) => " (forcing is turned off on this server: PROMPTOS_APPROVALS_ALLOW_FORCE=false)",
            (true, false, _) => " (only admins may force a change)",
            (false, true, true) => "; an admin may bypass it with \"force\": true, recorded in the log",
            _ => "",
        };
        let s = if *approvals == 1 { "" } else { "s" };
        Err(ApiError::Conflict {
            code: "change_request_required",
            message: format!(
                "{env} changes through change requests approved by {approvals} admin{s}: open one with POST /change-requests/{why}"
            ),
            field: Some("environment".into()),
        })
    }

    /// Reading what is deployed in `env`: any user, or an API key scoped to it.
    pub fn require_read(&self, env: &EnvironmentName) -> Result<(), ApiError> {
        match &self.principal {
            Principal::User { .. } => Ok(()),
            Principal::ApiKey { environments, .. } if environments.iter().any(|e| e == env.as_str()) => Ok(()),
            Principal::ApiKey { .. } => Err(ApiError::Forbidden(format!("this API key may not read {env}"))),
        }
    }

    pub fn username(&self) -> Option<&str> {
        match &self.principal {
            Principal::User { username, .. } => Some(username),
            Principal::ApiKey { .. } => None,
        }
    }
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Viewer => "a viewer",
        Role::Editor => "an editor",
        Role::Admin => "an admin",
    }
}

/// The credential sent with a request, if any.
pub(crate) fn credential(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not valid text"))?;
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(unauthorized("use `Authorization: Bearer <access token or API key>`"));
        }
        return Ok(Some(token.trim()));
    }
    match headers.get("x-api-key") {
        Some(v) => {
            v.to_str().map(|s| Some(s.trim())).map_err(|_| unauthorized("the X-API-Key header is not valid text"))
        }
        None => Ok(None),
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized(message.to_owned())
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Resolves a credential to a principal. Messages never repeat the credential.
pub async fn authenticate(state: &AppState, credential: &str) -> Result<Principal, ApiError> {
    if credential.starts_with(keys::PREFIX) {
        let key_id = keys::key_id(credential).ok_or_else(|| unauthorized("the API key is malformed"))?;
        let row = state.caches.api_key(&state.db, key_id).await?;
        let row = row
            .filter(|r| keys::constant_time_eq(&r.key_hash, &keys::hash(credential)))
            .ok_or_else(|| unauthorized("the API key is not valid"))?;
        if row.revoked_at.is_some() {
            return Err(unauthorized("the API key has been revoked"));
        }
        return Ok(Principal::ApiKey {
            key_id: row.key_id.clone(),
            name: row.name.clone(),
            environments: serde_json::from_str(&row.environments).unwrap_or_default(),
        });
    }
    let claims = state.auth.tokens.verify(credential).map_err(|e| match e {
        TokenError::Expired => unauthorized("the access token has expired; log in again"),
        TokenError::Invalid => unauthorized("the access token is not valid"),
    })?;
    let user = state.caches.user(&state.db, &claims.sub).await?;
    let user = user.ok_or_else(|| unauthorized("the access token is not valid"))?;
    if user.disabled {
        return Err(unauthorized("this account is disabled"));
    }
    if user.password_position != claims.pwp {
        return Err(unauthorized("the password was changed since this token was issued; log in again"));
    }
    let role =
        Role::parse(&user.role).map_err(|e| ApiError::Internal(anyhow::anyhow!("bad role in read model: {e}")))?;
    Ok(Principal::User { username: user.username.clone(), role })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let credential = credential(&parts.headers)?.ok_or_else(|| {
            unauthorized("this endpoint needs a credential: `Authorization: Bearer <access token or API key>`")
        })?;
        let principal = authenticate(state, credential).await?;
        let meta = Metadata { request_id: Some(request_id(&parts.headers)), ..Metadata::new(principal.actor()) };
        Ok(Caller { principal, meta })
    }
}

/// Everything authentication needs, built once.
pub struct Auth {
    pub tokens: tokens::Tokens,
    pub throttle: throttle::LoginThrottle,
}
