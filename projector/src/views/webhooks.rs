//! `rm_webhooks`: webhook subscriptions as they are now (never their secrets).

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::{on_tx, Tx};
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_webhooks";
pub const COLUMNS: &str = "webhook_id, url, description, format, filter, enabled, disabled_reason, deleted, \
     created_at, created_by, created_position, last_position";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookRow {
    pub webhook_id: String,
    pub url: String,
    pub description: String,
    /// `standard` or `slack`.
    pub format: String,
    /// JSON of the filter: `event_types`, `environments`, `prompts`, `tags`.
    pub filter: String,
    pub enabled: i64,
    /// Why the server disabled it, while it stays disabled.
    pub disabled_reason: Option<String>,
    pub deleted: i64,
    pub created_at: String,
    pub created_by: String,
    /// Events after this one are delivered to it.
    pub created_position: i64,
    pub last_position: i64,
}

impl WebhookRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.webhook_id.clone()),
            Text(self.url.clone()),
            Text(self.description.clone()),
            Text(self.format.clone()),
            Text(self.filter.clone()),
            Int(self.enabled),
            OptText(self.disabled_reason.clone()),
            Int(self.deleted),
            Text(self.created_at.clone()),
            Text(self.created_by.clone()),
            Int(self.created_position),
            Int(self.last_position),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert(WebhookRow),
    Update {
        webhook_id: String,
        url: String,
        description: String,
        format: String,
        filter: String,
        enabled: bool,
        position: i64,
    },
    Disable {
        webhook_id: String,
        reason: String,
        position: i64,
    },
    Delete {
        webhook_id: String,
        position: i64,
    },
    Touch {
        webhook_id: String,
        position: i64,
    },
}

fn format_name(f: promptos_core::webhook::WebhookFormat) -> String {
    serde_json::to_value(f).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let op = match event {
        Event::WebhookCreated(w) => Op::Insert(WebhookRow {
            webhook_id: w.webhook_id.to_string(),
            url: w.url.clone(),
            description: w.description.as_str().to_owned(),
            format: format_name(w.format),
            filter: serde_json::to_string(&w.filter).expect("a filter serializes"),
            enabled: i64::from(w.enabled),
            disabled_reason: None,
            deleted: 0,
            created_at: e.at.clone(),
            created_by: e.actor.clone(),
            created_position: e.position,
            last_position: e.position,
        }),
        Event::WebhookUpdated(w) => Op::Update {
            webhook_id: w.webhook_id.to_string(),
            url: w.url.clone(),
            description: w.description.as_str().to_owned(),
            format: format_name(w.format),
            filter: serde_json::to_string(&w.filter).expect("a filter serializes"),
            enabled: w.enabled,
            position: e.position,
        },
        Event::WebhookDisabled(w) => {
            Op::Disable { webhook_id: w.webhook_id.to_string(), reason: w.reason.clone(), position: e.position }
        }
        Event::WebhookDeleted(w) => Op::Delete { webhook_id: w.webhook_id.to_string(), position: e.position },
        Event::WebhookSecretRotated(w) => Op::Touch { webhook_id: w.webhook_id.to_string(), position: e.position },
        _ => return,
    };
    ops.push(RowOp::Webhooks(op));
}

pub fn apply(rows: &mut BTreeMap<String, WebhookRow>, op: Op) {
    match op {
        Op::Insert(row) => {
            rows.insert(row.webhook_id.clone(), row);
        }
        Op::Update { webhook_id, url, description, format, filter, enabled, position } => {
            if let Some(w) = rows.get_mut(&webhook_id) {
                (w.url, w.description, w.format, w.filter) = (url, description, format, filter);
                w.enabled = i64::from(enabled);
                if enabled {
                    w.disabled_reason = None;
                }
                w.last_position = position;
            }
        }
        Op::Disable { webhook_id, reason, position } => {
            if let Some(w) = rows.get_mut(&webhook_id) {
                (w.enabled, w.disabled_reason, w.last_position) = (0, Some(reason), position);
            }
        }
        Op::Delete { webhook_id, position } => {
            if let Some(w) = rows.get_mut(&webhook_id) {
                (w.deleted, w.enabled, w.last_position) = (1, 0, position);
            }
        }
        Op::Touch { webhook_id, position } => {
            if let Some(w) = rows.get_mut(&webhook_id) {
                w.last_position = position;
            }
        }
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Insert(row) => insert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells())).await,
        Op::Update { webhook_id, url, description, format, filter, enabled, position } => on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE rm_webhooks SET url = $1, description = $2, format = $3, filter = $4, enabled = $5, \
                 disabled_reason = CASE WHEN $6 = 1 THEN NULL ELSE disabled_reason END, last_position = $7 \
                 WHERE webhook_id = $8",
            )
            .bind(url)
            .bind(description)
            .bind(format)
            .bind(filter)
            .bind(i64::from(enabled))
            .bind(i64::from(enabled))
            .bind(position)
            .bind(webhook_id)
            .execute(conn)
            .await
            .map(|_| ())
        }),
        Op::Disable { webhook_id, reason, position } => on_tx!(tx, conn => {
            sqlx::query("UPDATE rm_webhooks SET enabled = 0, disabled_reason = $1, last_position = $2 WHERE webhook_id = $3")
                .bind(reason)
                .bind(position)
                .bind(webhook_id)
                .execute(conn)
                .await
                .map(|_| ())
        }),
        Op::Delete { webhook_id, position } => on_tx!(tx, conn => {
            sqlx::query("UPDATE rm_webhooks SET deleted = 1, enabled = 0, last_position = $1 WHERE webhook_id = $2")
                .bind(position)
                .bind(webhook_id)
                .execute(conn)
                .await
                .map(|_| ())
        }),
        Op::Touch { webhook_id, position } => on_tx!(tx, conn => {
            sqlx::query("UPDATE rm_webhooks SET last_position = $1 WHERE webhook_id = $2")
                .bind(position)
                .bind(webhook_id)
                .execute(conn)
                .await
                .map(|_| ())
        }),
    }
}
