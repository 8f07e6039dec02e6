//! `/change-requests/`: propose changes to an environment, review them, apply them.
//!
//! Where `PROMPTOS_APPROVALS` sets a policy, this is how deploys, rollbacks and splits
//! reach that environment: an editor or admin opens a request, admins other than its
//! author approve it, and the author or an admin applies it (now or at a set time).

pub mod dto;

use super::error::{ApiError, ApiResult};
use super::extract::{Json, JsonOrEmpty, Query};
use crate::app::AppState;
use crate::auth::Caller;
use crate::change_requests::{self as service, Opening};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use dto::*;
use promptos_core::change_request::{change_request_stream, ChangeRequestCommand, Comment, Served, Title};
use promptos_core::names::{Description, EnvironmentName, Role};
use promptos_projector::queries::{self, ChangeRequestFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(open, list))
        .routes_and_twins(utoipa_axum::routes!(get))
        .routes_and_twins(utoipa_axum::routes!(approve))
        .routes_and_twins(utoipa_axum::routes!(reject))
        .routes_and_twins(utoipa_axum::routes!(comment))
        .routes_and_twins(utoipa_axum::routes!(apply))
        .routes_and_twins(utoipa_axum::routes!(withdraw))
}

fn parse_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("change request {id:?} not found")))
}

fn parse_time(s: &str, field: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        ApiError::invalid(field, format!("{s:?} is not an RFC 3339 time such as 2026-12-07T09:00:00Z: {e}"))
    })
}

fn parse_comment(comment: Option<&str>) -> ApiResult<Option<Comment>> {
    comment.filter(|c| !c.trim().is_empty()).map(Comment::parse).transpose().map_err(Into::into)
}

/// Open a change request (editors and admins).
#[utoipa::path(post, path = "/change-requests/", tag = "change-requests", request_body = OpenBody,
    responses((status = 201, body = ChangeRequestDto),
        (status = 409, description = "A change does not apply to its prompt as it is now", body = super::error::ErrorBody)))]
pub async fn open(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<OpenBody>,
) -> ApiResult<(StatusCode, axum::Json<ChangeRequestDto>)> {
    caller.require(Role::Editor)?;
    let environment = EnvironmentName::parse(&body.environment)?;
    let changes = body.changes.iter().enumerate().map(|(i, c)| c.parse(i)).collect::<ApiResult<Vec<_>>>()?;
    let opening = Opening {
        environment,
        title: Title::parse(&body.title)?,
        description: Description::parse(&body.description)?,
        changes,
        schedule: body.apply_at.as_deref().map(|t| parse_time(t, "apply_at")).transpose()?,
    };
    let outcome = service::open(&state.commands, &state.settings.change_requests, opening, caller.meta, Utc::now())
        .await
        .map_err(|e| match e {
            // The body calls the schedule `apply_at`.
            crate::commands::CommandError::Domain(promptos_core::DomainError::InvalidChangeRequest {
                field: "at",
                message,
            }) => ApiError::invalid("apply_at", message),
            e => e.into(),
        })?;
    state.settle(outcome.position).await;
    let id = outcome.state.0.as_ref().map(|r| r.request_id).expect("an opened request");
    Ok((StatusCode::CREATED, axum::Json(detail(&state, &id, outcome.position).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub environment: Option<String>,
    /// `open`, `applied`, `rejected`, `withdrawn` or `expired`.
    pub state: Option<String>,
    /// Only requests that change this prompt.
    pub prompt: Option<String>,
    /// Time travel (RFC 3339): the requests as they stood then.
    pub as_of: Option<String>,
    /// 1–500 (default 100), newest first.
    pub limit: Option<i64>,
}

/// Change requests, newest first.
#[utoipa::path(get, path = "/change-requests/", tag = "change-requests", params(ListParams),
    responses((status = 200, body = ListDto)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<axum::Json<ListDto>> {
    caller.require(Role::Viewer)?;
    const STATES: [&str; 5] = ["open", "applied", "rejected", "withdrawn", "expired"];
    if let Some(s) = params.state.as_deref().filter(|s| !STATES.contains(s)) {
        return Err(ApiError::bad_query(Some("state".into()), format!("{s:?}: use one of {}", STATES.join(", "))));
    }
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_query(Some("limit".into()), "limit must be 1 to 500"));
    }
    let as_of = params
        .as_of
        .as_deref()
        .map(|t| {
            parse_time(t, "as_of")
                .map(promptos_store::format_timestamp)
                .map_err(|e| ApiError::bad_query(Some("as_of".into()), e.to_string()))
        })
        .transpose()?;
    let filter = ChangeRequestFilter {
        environment: params.environment,
        status: params.state,
        prompt_name: params.prompt,
        as_of,
        limit,
    };
    let rows = queries::change_requests(&state.db, &filter).await?;
    Ok(axum::Json(ListDto { items: rows.into_iter().map(Into::into).collect() }))
}

/// One change request: its changes against what is live now (with diffs), its reviews
/// and its timeline.
#[utoipa::path(get, path = "/change-requests/{id}", tag = "change-requests", params(("id" = String, Path)),
    responses((status = 200, body = ChangeRequestDto)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ChangeRequestDto>> {
    caller.require(Role::Viewer)?;
    let id = parse_id(&id)?;
    let position = state.follower.visible();
    Ok(axum::Json(detail(&state, &id, position).await?))
}

/// Approve (admins other than the author). The approval counts as long as what the
/// environment serves stays as it is now.
#[utoipa::path(post, path = "/change-requests/{id}/approve", tag = "change-requests", params(("id" = String, Path)),
    request_body = CommentBody, responses((status = 200, body = ChangeRequestDto)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonOrEmpty(body): JsonOrEmpty<CommentBody>,
) -> ApiResult<axum::Json<ChangeRequestDto>> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    let comment = parse_comment(body.comment.as_deref())?;
    let outcome = service::approve(&state.commands, &id, comment, caller.meta, Utc::now()).await?;
    answer(&state, &id, outcome.position).await
}

/// Reject (admins), which closes the request.
#[utoipa::path(post, path = "/change-requests/{id}/reject", tag = "change-requests", params(("id" = String, Path)),
    request_body = CommentBody, responses((status = 200, body = ChangeRequestDto)))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonOrEmpty(body): JsonOrEmpty<CommentBody>,
) -> ApiResult<axum::Json<ChangeRequestDto>> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    let comment = parse_comment(body.comment.as_deref())?;
    let command = ChangeRequestCommand::Reject { comment, now: Utc::now() };
    let outcome = state.commands.change_requests.execute(change_request_stream(&id), command, caller.meta).await?;
    answer(&state, &id, outcome.position).await
}

/// Comment (editors and admins), in any state.
#[utoipa::path(post, path = "/change-requests/{id}/comment", tag = "change-requests", params(("id" = String, Path)),
    request_body = CommentBody, responses((status = 200, body = ChangeRequestDto)))]
pub async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<CommentBody>,
) -> ApiResult<axum::Json<ChangeRequestDto>> {
    caller.require(Role::Editor)?;
    let id = parse_id(&id)?;
    let comment = Comment::parse(body.comment.as_deref().unwrap_or_default())?;
    let command = ChangeRequestCommand::Comment { comment };
    let outcome = state.commands.change_requests.execute(change_request_stream(&id), command, caller.meta).await?;
    answer(&state, &id, outcome.position).await
}

/// Apply now (the author or an admin), or with `at`, schedule it. Every change is
/// checked again against what is live at that moment, and all of them are appended
/// together, or none.
#[utoipa::path(post, path = "/change-requests/{id}/apply", tag = "change-requests", params(("id" = String, Path)),
    request_body = ApplyBody, responses((status = 200, body = ChangeRequestDto),
        (status = 409, description = "Not approved, outdated, closed, or a change no longer applies", body = super::error::ErrorBody)))]
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonOrEmpty(body): JsonOrEmpty<ApplyBody>,
) -> ApiResult<axum::Json<ChangeRequestDto>> {
    caller.require(Role::Editor)?;
    let id = parse_id(&id)?;
    let by_admin = caller.require(Role::Admin).is_ok();
    let now = Utc::now();
    if let Some(at) = body.at.as_deref() {
        let at = parse_time(at, "at")?;
        let command = ChangeRequestCommand::Schedule { by: caller.meta.actor.clone(), by_admin, at: Some(at), now };
        let outcome = state.commands.change_requests.execute(change_request_stream(&id), command, caller.meta).await?;
        return answer(&state, &id, outcome.position).await;
    }
    let request = service::current(&state.commands, &id).await?;
    if !by_admin && request.author != caller.meta.actor {
        return Err(promptos_core::DomainError::NotYourChangeRequest.into());
    }
    let applied = service::apply(&state.commands, &id, caller.meta, now, false).await?;
    let position = applied.map_or(0, |a| a.position);
    answer(&state, &id, position).await
}

/// Withdraw (the author or an admin), which closes the request.
#[utoipa::path(post, path = "/change-requests/{id}/withdraw", tag = "change-requests", params(("id" = String, Path)),
    responses((status = 200, body = ChangeRequestDto)))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ChangeRequestDto>> {
    caller.require(Role::Editor)?;
    let id = parse_id(&id)?;
    let by_admin = caller.require(Role::Admin).is_ok();
    let command = ChangeRequestCommand::Withdraw { by: caller.meta.actor.clone(), by_admin };
    let outcome = state.commands.change_requests.execute(change_request_stream(&id), command, caller.meta).await?;
    answer(&state, &id, outcome.position).await
}

async fn answer(state: &AppState, id: &Uuid, position: i64) -> ApiResult<axum::Json<ChangeRequestDto>> {
    state.settle(position).await;
    Ok(axum::Json(detail(state, id, position).await?))
}

/// The request as the read models show it, with what is served now (from the write
/// side, exact) and the diffs.
async fn detail(state: &AppState, id: &Uuid, position: i64) -> ApiResult<ChangeRequestDto> {
    let request = service::current(&state.commands, id).await?;
    let row = queries::change_request(&state.db, &id.to_string())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("change request {id} is not in the read models yet; retry")))?;
    let activity = queries::change_request_activity(&state.db, &[id.to_string()]).await?;
    let served = service::served_now(&state.commands, &request).await?;
    let open = request.status == promptos_core::change_request::Status::Open;
    let current = request.current_approvers(&served);
    let approvals = activity
        .iter()
        .filter(|a| a.kind == "approved")
        .filter(|a| request.approvals.iter().any(|r| r.approver == a.actor))
        // An admin who approved again replaced the earlier approval: keep the latest.
        .filter(|a| !activity.iter().any(|b| b.kind == "approved" && b.actor == a.actor && b.position > a.position))
        .map(|a| ApprovalDto {
            approver: a.actor.clone(),
            at: a.at.clone(),
            comment: a.comment.clone(),
            current: current.contains(&a.actor.as_str()),
        })
        .collect();
    let mut changes = Vec::with_capacity(request.changes.len());
    for (i, change) in request.changes.iter().enumerate() {
        let live = &served[i];
        let diff =
            if open { diff(state, change.prompt_name().as_str(), live, change.target().as_str()).await? } else { None };
        changes.push(ChangeDto::new(change, &request.opened_served[i], live, diff));
    }
    let moved = if open { request.moved(&served) } else { vec![] };
    Ok(ChangeRequestDto {
        description: row.description.clone(),
        request: row.into(),
        changes,
        approvals,
        approvals_current: current.len(),
        outdated: !moved.is_empty(),
        moved,
        ready: open && request.approved(&served) && Utc::now() < request.expires_at,
        activity: activity.into_iter().map(Into::into).collect(),
        position,
    })
}

/// The proposed version against the one live now, from the read models.
async fn diff(state: &AppState, prompt: &str, live: &Served, proposed: &str) -> ApiResult<Option<DiffDto>> {
    let Some(prompt_id) = live.prompt_id.map(|id| id.to_string()) else { return Ok(None) };
    let Some(proposed) = queries::version(&state.db, &prompt_id, proposed).await? else { return Ok(None) };
    let live = match &live.version_string {
        Some(v) => queries::version(&state.db, &prompt_id, v.as_str()).await?.map(VersionSide::from),
        None => None,
    };
    Ok(Some(DiffDto::new(prompt, live, proposed.into())))
}
