//! For auditors: the event log, filtered, paged, exported and verified.

use super::error::{ApiError, ApiResult};
use super::extract::Query;
use super::support::{page_size, path_name, position_cursor};
use crate::app::AppState;
use crate::auth::Caller;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use promptos_core::names::Role;
use promptos_projector::queries::{self, EventFilter};
use promptos_projector::verify::VerifyReport;
use promptos_store::format_timestamp;
use promptos_store::StoredEvent;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    pub position: i64,
    pub event_id: String,
    pub stream_id: String,
    pub stream_version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Who caused it: `user:<name>`, `api_key:<id>`, `system` or `anonymous`.
    pub actor: String,
    pub request_id: Option<String>,
    /// The change request whose apply produced the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_request: Option<String>,
    /// True when an admin bypassed a change-request policy with `force`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    pub recorded_at: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<StoredEvent> for EventDto {
    fn from(e: StoredEvent) -> Self {
        let meta = e.metadata();
        Self {
            payload: {
                let mut payload = serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null);
                promptos_core::events::redact_payload(&mut payload);
                payload
            },
            position: e.position,
            event_id: e.event_id,
            stream_id: e.stream_id,
            stream_version: e.stream_version,
            event_type: e.event_type,
            actor: meta.actor,
            request_id: meta.request_id,
            change_request: meta.change_request,
            forced: meta.forced,
            recorded_at: e.recorded_at,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventDto>,
    /// Pass as `cursor` for the next page (same filters and order).
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Prompt name (every incarnation).
    pub prompt: Option<String>,
    pub environment: Option<String>,
    /// Event type, e.g. `VersionDeployed`, or several separated by commas
    /// (`VersionDeployed,RolledBack`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Who caused it, e.g. `user:alice` or `api_key:<id>`.
    pub actor: Option<String>,
    /// Earliest recorded time, RFC 3339 (inclusive).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Latest recorded time, RFC 3339 (inclusive).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only events after this position (ascending order) or before it (descending).
    pub after: Option<i64>,
    /// `asc` (default) or `desc`.
    #[param(pattern = "^(asc|desc)$")]
    pub order: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn time_bound(field: &str, value: Option<&str>) -> ApiResult<Option<String>> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| format_timestamp(t.with_timezone(&chrono::Utc)))
                .map_err(|e| ApiError::bad_query(Some(field.into()), format!("{field} must be an RFC 3339 time: {e}")))
        })
        .transpose()
}

/// `A,B` → `[A, B]`.
fn event_types(list: Option<&str>) -> Vec<String> {
    list.unwrap_or_default().split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

fn filter(p: &EventParams, limit: i64) -> ApiResult<EventFilter> {
    let descending = match p.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::bad_query(Some("order".into()), format!("order must be asc or desc, not {other:?}")))
        }
    };
    let cursor = position_cursor(p.cursor.as_deref())?;
    let bound = cursor.or(p.after);
    Ok(EventFilter {
        prompt_name: p.prompt.clone(),
        prompt_id: None,
        environment: p.environment.clone(),
        event_types: event_types(p.event_type.as_deref()),
        actor: p.actor.clone(),
        from: time_bound("from", p.from.as_deref())?,
        to: time_bound("to", p.to.as_deref())?,
        after_position: if descending { None } else { bound },
        before_position: if descending { bound } else { None },
        descending,
        limit,
    })
}

async fn page(state: &AppState, mut f: EventFilter) -> ApiResult<EventPage> {
    let limit = f.limit;
    f.limit = limit + 1;
    let mut rows = queries::events(&state.db, &f).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|e| e.position.to_string())).flatten();
    Ok(EventPage { items: rows.into_iter().map(Into::into).collect(), next_cursor })
}

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(events))
        .routes_and_twins(utoipa_axum::routes!(export))
        .routes_and_twins(utoipa_axum::routes!(verify))
        .routes_and_twins(utoipa_axum::routes!(history))
}

/// The event log, filtered and paged.
#[utoipa::path(get, path = "/events", tag = "audit", params(EventParams),
    responses((status = 200, body = EventPage), (status = 400, body = super::error::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<EventParams>,
) -> ApiResult<axum::Json<EventPage>> {
    caller.require(Role::Viewer)?;
    let f = filter(&p, page_size(p.limit, 100)?)?;
    Ok(axum::Json(page(&state, f).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// A specific incarnation of the name (see `GET /prompts/?include_deleted=true`);
    /// default: the live one, or the most recently deleted.
    pub prompt_id: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// `asc` (default) or `desc`.
    #[param(pattern = "^(asc|desc)$")]
    pub order: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One prompt's events, for auditors.
#[utoipa::path(get, path = "/prompts/{name}/history", tag = "audit", params(("name" = String, Path), HistoryParams),
    responses((status = 200, body = EventPage), (status = 404, body = super::error::ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(p): Query<HistoryParams>,
) -> ApiResult<axum::Json<EventPage>> {
    caller.require(Role::Viewer)?;
    let name = path_name(&name)?;
    let incarnations = queries::incarnations(&state.db, name.as_str()).await?;
    let prompt = match &p.prompt_id {
        Some(id) => incarnations.into_iter().find(|i| &i.prompt_id == id),
        None => incarnations.into_iter().next(),
    }
    .ok_or_else(|| ApiError::NotFound(format!("prompt {:?} has no history", name.as_str())))?;
    let params = EventParams {
        event_type: p.event_type.clone(),
        order: p.order.clone(),
        cursor: p.cursor.clone(),
        ..Default::default()
    };
    let mut f = filter(&params, page_size(p.limit, 100)?)?;
    f.prompt_id = Some(prompt.prompt_id);
    Ok(axum::Json(page(&state, f).await?))
}

/// Events written per round of the export.
const EXPORT_BATCH: i64 = super::support::MAX_PAGE;

/// The log as JSON Lines, with positions and hashes: unfiltered, a backup that
/// `promptos import` restores and `promptos audit verify` checks; with the filters of
/// `GET /events`, the matching events.
#[utoipa::path(get, path = "/events/export", tag = "audit", params(EventParams),
    responses((status = 200, description = "One stored event per line: every matching event (`limit` only sets how many are read per round)", content_type = "application/x-ndjson")))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<EventParams>,
) -> ApiResult<Response> {
    // Unredacted (password and key hashes included): it is a backup.
    caller.require(Role::Admin)?;
    let filter = filter(&p, page_size(p.limit, EXPORT_BATCH)?)?;
    let stream = futures::stream::unfold((state, filter, false), |(state, mut f, done)| async move {
        if done {
            return None;
        }
        match queries::events(&state.db, &f).await {
            Ok(batch) if batch.is_empty() => None,
            Ok(batch) => {
                let last = batch.last().map(|e| e.position);
                if f.descending {
                    f.before_position = last;
                } else {
                    f.after_position = last;
                }
                let mut out = Vec::new();
                for e in &batch {
                    serde_json::to_writer(&mut out, e).expect("events serialize");
                    out.push(b'\n');
                }
                Some((Ok::<_, std::io::Error>(out), (state, f, false)))
            }
            Err(e) => {
                tracing::error!(error = %e, "export failed part-way");
                Some((Err(std::io::Error::other("export failed; see the server log")), (state, f, true)))
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyDto {
    /// True when the chain is intact, the read models equal a fresh replay and every
    /// signed checkpoint matches the log.
    pub ok: bool,
    #[schema(value_type = Object)]
    pub chain: serde_json::Value,
    #[schema(value_type = Object)]
    pub read_models: serde_json::Value,
    /// Every stored signed checkpoint against the current log (`enabled: false` without
    /// a signing key): `ok`, `checked`, `latest` (position, time, key), `failures`, and a
    /// `statement` of what the result proves.
    #[schema(value_type = Object)]
    pub checkpoints: serde_json::Value,
    /// When this check ran (UTC). A check of an unchanged log is reused for a few
    /// seconds.
    pub checked_at: String,
}

/// Checks the hash chain, that the read models equal a fresh replay of the log, and
/// that every signed checkpoint matches the log.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", responses((status = 200, body = VerifyDto)))]
pub async fn verify(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<VerifyDto>> {
    caller.require(Role::Viewer)?;
    let mut last = state.verify.last.lock().await;
    let head = promptos_store::EventLog::head(&state.db).await?;
    let checkpoint = promptos_projector::queries::checkpoint(&state.db).await?;
    let fresh = last
        .as_ref()
        .filter(|l| (l.head, l.checkpoint) == (head, checkpoint) && l.at.elapsed() < crate::caches::VerifyCache::REUSE);
    if fresh.is_none() {
        let report: VerifyReport = promptos_projector::verify::verify(&state.db, |_, _, _| {})
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let checked_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        *last = Some(crate::caches::VerifiedAt { head, checkpoint, at: std::time::Instant::now(), checked_at, report });
    }
    let last = last.as_ref().expect("a verification was just made");
    // Not cached: a checkpoint may have been signed since, and the check is one query.
    let checkpoints = {
        let trusted = state.checkpointer.as_ref().map(|c| c.trusted());
        crate::checkpoint::check_stored(&state.db, trusted.as_deref()).await?
    };
    let dto = VerifyDto {
        ok: last.report.ok && checkpoints.ok,
        checkpoints: serde_json::to_value(&checkpoints).unwrap_or_default(),
        chain: serde_json::to_value(&last.report.chain).unwrap_or_default(),
        read_models: serde_json::to_value(&last.report.read_models).unwrap_or_default(),
        checked_at: last.checked_at.clone(),
    };
    Ok(axum::Json(dto))
}
