//! Signed checkpoints and the key that signs them, for auditors who keep their own copy.

use super::error::{ApiError, ApiResult};
use super::extract::Query;
use super::support::{page_size, position_cursor};
use crate::app::AppState;
use crate::auth::Caller;
use crate::checkpoint::Checkpointer;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use promptos_core::names::Role;
use promptos_store::checkpoints::{self, StoredCheckpoint};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointDto {
    /// The log held this many events …
    pub position: i64,
    /// … the last with this hash (hex).
    pub head_hash: String,
    /// The log's name.
    pub origin: String,
    /// When it was signed (RFC 3339, seconds).
    pub time: String,
    /// The signing key's id (hex, 4 bytes).
    pub key_id: String,
    /// The signed note (C2SP signed-note format): save it, and verify it offline with
    /// `promptos audit verify`.
    pub note: String,
}

impl From<StoredCheckpoint> for CheckpointDto {
    fn from(c: StoredCheckpoint) -> Self {
        Self {
            position: c.position,
            head_hash: c.head_hash,
            origin: c.origin,
            time: c.signed_at,
            key_id: c.key_id,
            note: c.note,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointPage {
    /// Newest first.
    pub items: Vec<CheckpointDto>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatParams {
    /// `json` (default) or `text`: the note alone (for `latest`), or one verifier key per
    /// line (for `public-key`), ready for `promptos audit verify`.
    #[param(pattern = "^(json|text)$")]
    pub format: Option<String>,
}

impl FormatParams {
    fn text(&self) -> ApiResult<bool> {
        match self.format.as_deref() {
            None | Some("json") => Ok(false),
            Some("text") => Ok(true),
            Some(other) => {
                Err(ApiError::bad_query(Some("format".into()), format!("format must be json or text, not {other:?}")))
            }
        }
    }
}

fn signer(state: &AppState) -> ApiResult<&Checkpointer> {
    state.checkpointer.as_deref().ok_or_else(|| {
        ApiError::NotFound("checkpoints are off: start the server with PROMPTOS_SIGNING_KEY_FILE".into())
    })
}

fn plain(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(list, create))
        .routes_and_twins(utoipa_axum::routes!(latest))
        .routes_and_twins(utoipa_axum::routes!(public_key))
}

/// Signed checkpoints, newest first.
#[utoipa::path(get, path = "/audit/checkpoints", tag = "audit", params(ListParams),
    responses((status = 200, body = CheckpointPage), (status = 404, body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<CheckpointPage>> {
    caller.require(Role::Viewer)?;
    signer(&state)?;
    let limit = page_size(p.limit, 100)?;
    let before = position_cursor(p.cursor.as_deref())?;
    let mut rows = checkpoints::list(&state.db, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|c| c.position.to_string())).flatten();
    Ok(axum::Json(CheckpointPage { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Signs the log's head now (admins); the existing checkpoint when the key already
/// signed it.
#[utoipa::path(post, path = "/audit/checkpoints", tag = "audit",
    responses((status = 201, body = CheckpointDto), (status = 404, body = super::error::ErrorBody)))]
pub async fn create(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Role::Admin)?;
    let made = signer(&state)?.checkpoint().await.map_err(ApiError::Internal)?;
    let made = made.ok_or_else(|| ApiError::Conflict {
        code: "log_empty",
        message: "the log is empty: there is nothing to sign yet".into(),
        field: None,
    })?;
    Ok((StatusCode::CREATED, axum::Json(CheckpointDto::from(made))).into_response())
}

/// The newest checkpoint; `?format=text` gives the note alone.
#[utoipa::path(get, path = "/audit/checkpoints/latest", tag = "audit", params(FormatParams),
    responses((status = 200, body = CheckpointDto), (status = 404, body = super::error::ErrorBody)))]
pub async fn latest(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<FormatParams>,
) -> ApiResult<Response> {
    caller.require(Role::Viewer)?;
    let text = p.text()?;
    signer(&state)?;
    let latest = checkpoints::latest(&state.db).await?.ok_or_else(|| {
        ApiError::NotFound("no checkpoint yet: one is signed within an interval of the first event".into())
    })?;
    Ok(if text { plain(latest.note) } else { axum::Json(CheckpointDto::from(latest)).into_response() })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeys {
    /// The key that signs now.
    pub current: PublicKey,
    /// Keys that signed before a rotation; their checkpoints stay verifiable.
    pub retired: Vec<PublicKey>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    /// `<name>+<key id>+<base64 of 0x01 and the Ed25519 public key>`, as the C2SP
    /// signed-note format writes a verifier key.
    pub verifier_key: String,
    pub key_id: String,
    pub algorithm: &'static str,
    /// The first and last positions it signed (none yet: null).
    pub first_position: Option<i64>,
    pub last_position: Option<i64>,
}

/// The public keys that verify checkpoints; `?format=text` gives one per line, the
/// current key first, ready for `promptos audit verify --public-key`.
#[utoipa::path(get, path = "/audit/public-key", tag = "audit", params(FormatParams),
    responses((status = 200, body = PublicKeys), (status = 404, body = super::error::ErrorBody)))]
pub async fn public_key(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<FormatParams>,
) -> ApiResult<Response> {
    caller.require(Role::Viewer)?;
    let text = p.text()?;
    let signer = signer(&state)?;
    if text {
        return Ok(plain(signer.trusted().iter().map(|k| format!("{k}\n")).collect()));
    }
    let spans = checkpoints::key_spans(&state.db).await?;
    let describe = |verifier_key: &str| {
        let key_id = crate::checkpoint::verifier_key_id(verifier_key).unwrap_or_default().to_owned();
        let span = spans.iter().find(|s| s.0 == key_id);
        PublicKey {
            verifier_key: verifier_key.to_owned(),
            algorithm: "Ed25519",
            first_position: span.map(|s| s.1),
            last_position: span.map(|s| s.2),
            key_id,
        }
    };
    let keys = PublicKeys {
        current: describe(&signer.verifier_key()),
        retired: signer.retired().iter().map(|k| describe(k)).collect(),
    };
    Ok(axum::Json(keys).into_response())
}
