//! The webhook outbox: for each event the projector applies, one delivery per enabled
//! webhook that wants it, written in the same transaction as the read models and the
//! checkpoint, so every event is enqueued exactly once (and only by the active
//! projector). Rebuilding the read models does not enqueue anything. The deliveries
//! are sent by the server's dispatcher (`promptos_api::webhooks`).

use promptos_core::events::redact_payload;
use promptos_core::webhook::{webhook_type, WebhookFilter, WebhookFormat};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::{on_tx, StoredEvent, Tx};
use serde_json::{json, Value};

pub const TABLE: &str = "webhook_deliveries";
pub const COLUMNS: &str = "delivery_id, webhook_id, position, event_type, body, status, attempts, created_ms, \
     next_attempt_ms, finished_ms, last_status, last_error";

/// A subscription as the outbox reads it.
struct Hook {
    webhook_id: String,
    format: WebhookFormat,
    filter: WebhookFilter,
    created_position: i64,
}

/// Enqueues the deliveries that `events` (just applied in `tx`) call for.
pub async fn enqueue(tx: &mut Tx<'_>, events: &[StoredEvent], now_ms: i64) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = on_tx!(tx, conn => {
        sqlx::query_as(
            "SELECT webhook_id, format, filter, created_position FROM rm_webhooks WHERE enabled = 1 AND deleted = 0",
        )
        .fetch_all(&mut *conn)
        .await
    })?;
    let hooks: Vec<Hook> = rows
        .into_iter()
        .filter_map(|(webhook_id, format, filter, created_position)| {
            Some(Hook {
                webhook_id,
                format: serde_json::from_value(Value::String(format)).ok()?,
                filter: serde_json::from_str(&filter).ok()?,
                created_position,
            })
        })
        .collect();
    if hooks.is_empty() {
        return Ok(());
    }
    let need_tags = hooks.iter().any(|h| !h.filter.tags.is_empty());
    let mut deliveries = Vec::new();
    for stored in events {
        let (Some(kind), Ok(event)) = (webhook_type(&stored.event_type), stored.decode()) else { continue };
        let environment = event.environment().map(|e| e.to_string());
        let prompt = event.prompt().map(|(id, name)| (id.to_string(), name.to_string()));
        let tags = match (&prompt, need_tags) {
            (Some((prompt_id, _)), true) => prompt_tags(tx, prompt_id).await?,
            _ => Vec::new(),
        };
        let wanted = hooks.iter().filter(|h| {
            stored.position > h.created_position
                && h.filter.matches(kind, environment.as_deref(), prompt.as_ref().map(|(_, n)| n.as_str()), &tags)
        });
        for hook in wanted {
            let body = body(hook.format, kind, stored, &event);
            deliveries.push(vec![
                Cell::Text(format!("msg_{}", uuid::Uuid::now_v7().simple())),
                Cell::Text(hook.webhook_id.clone()),
                Cell::Int(stored.position),
                Cell::Text(kind.to_owned()),
                Cell::Text(body.to_string()),
                Cell::Text("pending".into()),
                Cell::Int(0),
                Cell::Int(now_ms),
                Cell::Int(now_ms),
                Cell::OptInt(None),
                Cell::OptInt(None),
                Cell::OptText(None),
            ]);
        }
    }
    insert_rows(tx, TABLE, COLUMNS, deliveries.into_iter()).await
}

async fn prompt_tags(tx: &mut Tx<'_>, prompt_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let tags: Option<String> = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT tags FROM rm_prompts WHERE prompt_id = $1").bind(prompt_id).fetch_optional(&mut *conn).await
    })?;
    Ok(tags.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
}

/// What a delivery sends: the Standard Webhooks shape `{type, timestamp, data}`, or a
/// Slack-style `{text}`.
pub fn body(format: WebhookFormat, kind: &str, stored: &StoredEvent, event: &Event) -> Value {
    let mut payload: Value = serde_json::from_str(&stored.payload).unwrap_or(Value::Null);
    redact_payload(&mut payload);
    let actor = stored.metadata().actor;
    let (version, previous) = versions(event);
    let prompt = event.prompt().map(|(_, n)| n.to_string());
    let environment = event.environment().map(|e| e.to_string());
    match format {
        WebhookFormat::Standard => json!({
            "type": kind,
            "timestamp": stored.recorded_at,
            "data": {
                "position": stored.position,
                "event_id": stored.event_id,
                "event_type": stored.event_type,
                "stream_id": stored.stream_id,
                "actor": actor,
                "recorded_at": stored.recorded_at,
                "prompt": prompt,
                "environment": environment,
                "version_string": version,
                "previous_version_string": previous,
                "payload": payload,
            },
        }),
        WebhookFormat::Slack => {
            let mut text = format!("PromptOS: {kind}");
            if let Some(p) = &prompt {
                text.push_str(&format!(" — {p}"));
            }
            if let Some(v) = &version {
                text.push_str(&format!(" {v}"));
            }
            if let Some(env) = &environment {
                text.push_str(&format!(" in {env}"));
            }
            if let Some(prev) = &previous {
                text.push_str(&format!(" (was {prev})"));
            }
            text.push_str(&format!(" by {actor}"));
            json!({ "text": text })
        }
    }
}

/// For deployments: the version live after the event, and the one before it.
fn versions(event: &Event) -> (Option<String>, Option<String>) {
    match event {
        Event::VersionDeployed(e) => {
            (Some(e.version_string.to_string()), e.previous_version_string.as_ref().map(|v| v.to_string()))
        }
        Event::DeploymentRolledBack(e) => {
            (Some(e.to_version_string.to_string()), Some(e.from_version_string.to_string()))
        }
        Event::ExperimentStarted(e) => (
            e.variants.first().map(|v| v.version_string.to_string()),
            e.previous_version_string.as_ref().map(|v| v.to_string()),
        ),
        Event::ExperimentWeightsChanged(e) => (e.variants.first().map(|v| v.version_string.to_string()), None),
        Event::ExperimentStopped(e) => (Some(e.version_string.to_string()), None),
        Event::VersionCreated(e) => (Some(e.version_string.to_string()), None),
        _ => (None, None),
    }
}
