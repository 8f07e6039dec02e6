//! `/webhooks/`: subscriptions to the log's events, their secrets and their delivery
//! log (admins only).

pub mod dto;

use super::error::{ApiError, ApiResult};
use super::extract::{Json, JsonOrEmpty, Query};
use crate::app::AppState;
use crate::auth::Caller;
use crate::webhooks::crypto::SigningSecret;
use crate::webhooks::{guard, queue};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use dto::*;
use promptos_core::names::{Description, Role};
use promptos_core::webhook::{webhook_stream, WebhookChanges, WebhookCommand};
use promptos_projector::queries;
use promptos_store::EventLog;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(create, list))
        .routes_and_twins(utoipa_axum::routes!(get, update, delete))
        .routes_and_twins(utoipa_axum::routes!(rotate_secret))
        .routes_and_twins(utoipa_axum::routes!(test))
        .routes_and_twins(utoipa_axum::routes!(deliveries))
        .routes_and_twins(utoipa_axum::routes!(redeliver))
}

fn parse_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("webhook {id:?} not found")))
}

/// Refuses a URL a webhook may not reach: its shape, and where its name resolves now
/// (every connection checks again).
async fn check_url(state: &AppState, url: &str) -> ApiResult<String> {
    let allow_private = state.settings.webhook_allow_private;
    let parsed = guard::check_url(url, allow_private).map_err(|e| ApiError::invalid("url", e.0))?;
    if let (false, Some(host), Some(port)) = (allow_private, parsed.host_str(), parsed.port_or_known_default()) {
        // A name that does not resolve yet is taken; one that resolves somewhere it may
        // not go is not.
        if let Ok(addrs) = tokio::net::lookup_host((host, port)).await {
            if let Some(bad) = addrs.map(|a| a.ip()).find(|ip| guard::forbidden(*ip)) {
                return Err(ApiError::invalid(
                    "url",
                    format!("{host} resolves to {bad}, a loopback, private, link-local or metadata address"),
                ));
            }
        }
    }
    Ok(parsed.to_string())
}

async fn row(state: &AppState, id: &Uuid) -> ApiResult<WebhookDto> {
    let row = queries::webhook(&state.db, &id.to_string()).await?;
    row.map(Into::into).ok_or_else(|| ApiError::Domain(promptos_core::DomainError::WebhookNotFound(id.to_string())))
}

/// Create a webhook. Its signing secret is in the answer, and only there.
#[utoipa::path(post, path = "/webhooks/", tag = "webhooks", request_body = CreateBody,
    responses((status = 201, body = CreatedDto)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateBody>,
) -> ApiResult<(StatusCode, axum::Json<CreatedDto>)> {
    caller.require(Role::Admin)?;
    let url = check_url(&state, &body.url).await?;
    let filter = filter(body.event_types, &body.environments, &body.prompts, &body.tags)?;
    let secret = SigningSecret::generate();
    let webhook_id = Uuid::now_v7();
    let command = WebhookCommand::Create {
        webhook_id,
        url,
        description: Description::parse(&body.description)?,
        format: body.format.unwrap_or_default(),
        filter,
        enabled: body.enabled.unwrap_or(true),
        secret: state.webhook_key.seal(&secret),
    };
    let outcome = state.commands.webhooks.execute(webhook_stream(&webhook_id), command, caller.meta).await?;
    state.settle(outcome.position).await;
    let webhook = row(&state, &webhook_id).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedDto { webhook, secret: secret.expose().to_owned() })))
}

/// Every webhook.
#[utoipa::path(get, path = "/webhooks/", tag = "webhooks", responses((status = 200, body = WebhookList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<WebhookList>> {
    caller.require(Role::Admin)?;
    let items = queries::webhooks(&state.db).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(WebhookList { items }))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookDto)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WebhookDto>> {
    caller.require(Role::Admin)?;
    Ok(axum::Json(row(&state, &parse_id(&id)?).await?))
}

/// Change a webhook; absent fields keep their value. `"enabled": true` resumes a webhook
/// the server disabled, from the delivery where it stopped.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateBody, responses((status = 200, body = WebhookDto)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<UpdateBody>,
) -> ApiResult<axum::Json<WebhookDto>> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    let current = row(&state, &id).await?;
    let url = match &body.url {
        Some(url) => Some(check_url(&state, url).await?),
        None => None,
    };
    let any_filter =
        body.event_types.is_some() || body.environments.is_some() || body.prompts.is_some() || body.tags.is_some();
    let filter = if any_filter {
        Some(filter(
            body.event_types.unwrap_or(current.event_types),
            body.environments.as_deref().unwrap_or(&current.environments),
            body.prompts.as_deref().unwrap_or(&current.prompts),
            body.tags.as_deref().unwrap_or(&current.tags),
        )?)
    } else {
        None
    };
    let changes = WebhookChanges {
        url,
        description: body.description.as_deref().map(Description::parse).transpose()?,
        format: body.format,
        filter,
        enabled: body.enabled,
    };
    let outcome =
        state.commands.webhooks.execute(webhook_stream(&id), WebhookCommand::Update(changes), caller.meta).await?;
    state.settle(outcome.position).await;
    state.webhook_wake.notify_one();
    Ok(axum::Json(row(&state, &id).await?))
}

/// Delete a webhook: nothing more is delivered to it.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    let outcome = state.commands.webhooks.execute(webhook_stream(&id), WebhookCommand::Delete, caller.meta).await?;
    state.settle(outcome.position).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret (shown once). For 24 hours deliveries are signed with both the
/// new and the previous secret, so receivers can switch without losing any.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = RotatedDto)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RotatedDto>> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    let secret = SigningSecret::generate();
    let command = WebhookCommand::RotateSecret { secret: state.webhook_key.seal(&secret), now: Utc::now() };
    let outcome = state.commands.webhooks.execute(webhook_stream(&id), command, caller.meta).await?;
    state.settle(outcome.position).await;
    let until = outcome.state.0.and_then(|w| w.previous.map(|(_, until)| until)).unwrap_or_else(Utc::now);
    Ok(axum::Json(RotatedDto { secret: secret.expose().to_owned(), previous_valid_until: until.to_rfc3339() }))
}

/// Send a `webhook.test` ping, after whatever is queued for the webhook.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, body = QueuedDto)))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<QueuedDto>)> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    let webhook = row(&state, &id).await?;
    let now = Utc::now();
    let body = if webhook.format == "slack" {
        serde_json::json!({ "text": format!("PromptOS: a test of this webhook by {}", caller.meta.actor) })
    } else {
        serde_json::json!({
            "type": "webhook.test",
            "timestamp": promptos_store::format_timestamp(now),
            "data": { "webhook_id": id.to_string(), "actor": caller.meta.actor, "message": "a test of this webhook" },
        })
    };
    let head = state.db.head().await?;
    let delivery_id =
        queue::enqueue_extra(&state.db, &webhook.id, head, "webhook.test", &body.to_string(), now.timestamp_millis())
            .await?;
    state.webhook_wake.notify_one();
    Ok((StatusCode::ACCEPTED, axum::Json(QueuedDto { delivery_id })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// 1–200 (default 50), newest first.
    pub limit: Option<i64>,
}

/// The delivery log: each delivery with its attempts.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path), DeliveryParams),
    responses((status = 200, body = DeliveryList)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> ApiResult<axum::Json<DeliveryList>> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    row(&state, &id).await?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_query(Some("limit".into()), "limit must be 1 to 200"));
    }
    let mut items = Vec::new();
    for d in queue::deliveries(&state.db, &id.to_string(), limit).await? {
        let log = queue::attempts(&state.db, &d.delivery_id).await?.into_iter().map(Into::into).collect();
        items.push(DeliveryDto {
            delivery_id: d.delivery_id,
            position: d.position,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            created_ms: d.created_ms,
            next_attempt_ms: d.next_attempt_ms,
            finished_ms: d.finished_ms,
            last_status: d.last_status,
            last_error: d.last_error,
            log,
        });
    }
    Ok(axum::Json(DeliveryList { items }))
}

/// Send a delivery again, with the same `webhook-id`.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("id" = String, Path), ("delivery" = String, Path)), request_body = Option<Object>,
    responses((status = 202, body = QueuedDto)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery)): Path<(String, String)>,
    JsonOrEmpty(_body): JsonOrEmpty<serde_json::Value>,
) -> ApiResult<(StatusCode, axum::Json<QueuedDto>)> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    row(&state, &id).await?;
    if !queue::redeliver(&state.db, &id.to_string(), &delivery, Utc::now().timestamp_millis()).await? {
        return Err(ApiError::NotFound(format!("webhook {id} has no delivery {delivery:?}")));
    }
    state.webhook_wake.notify_one();
    Ok((StatusCode::ACCEPTED, axum::Json(QueuedDto { delivery_id: delivery })))
}
