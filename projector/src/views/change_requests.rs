//! `rm_change_requests` (one row per request, its state), `rm_change_request_activity`
//! (its timeline: opened, approved, commented, …) and `rm_change_request_prompts` (which
//! prompts each request changes, for a prompt's page).

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::{format_timestamp, on_tx, Tx};
use std::collections::{BTreeMap, BTreeSet};

pub const TABLE: &str = "rm_change_requests";
pub const ACTIVITY_TABLE: &str = "rm_change_request_activity";
pub const PROMPTS_TABLE: &str = "rm_change_request_prompts";
pub const COLUMNS: &str = "request_id, environment, title, description, author, status, approvals_required, \
     changes, opened_at, opened_position, expires_at, scheduled_at, closed_at, closed_by, closed_position, last_position";
pub const ACTIVITY_COLUMNS: &str = "position, request_id, kind, actor, at, comment, detail";
pub const PROMPTS_COLUMNS: &str = "request_id, prompt_name";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChangeRequestRow {
    pub request_id: String,
    pub environment: String,
    pub title: String,
    pub description: String,
    /// `user:<name>`.
    pub author: String,
    /// `open`, `applied`, `rejected`, `withdrawn` or `expired`.
    pub status: String,
    pub approvals_required: i64,
    /// JSON array of the changes, as in the `ChangeRequestOpened` event.
    pub changes: String,
    pub opened_at: String,
    pub opened_position: i64,
    /// Fixed-width UTC text, comparable with [`format_timestamp`].
    pub expires_at: String,
    pub scheduled_at: Option<String>,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    pub closed_position: Option<i64>,
    pub last_position: i64,
}

impl ChangeRequestRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.request_id.clone()),
            Text(self.environment.clone()),
            Text(self.title.clone()),
            Text(self.description.clone()),
            Text(self.author.clone()),
            Text(self.status.clone()),
            Int(self.approvals_required),
            Text(self.changes.clone()),
            Text(self.opened_at.clone()),
            Int(self.opened_position),
            Text(self.expires_at.clone()),
            OptText(self.scheduled_at.clone()),
            OptText(self.closed_at.clone()),
            OptText(self.closed_by.clone()),
            OptInt(self.closed_position),
            Int(self.last_position),
        ]
    }
}

/// One step of a request's timeline.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActivityRow {
    pub position: i64,
    pub request_id: String,
    /// `opened`, `approved`, `rejected`, `commented`, `scheduled`, `applied`,
    /// `withdrawn` or `expired`.
    pub kind: String,
    pub actor: String,
    pub at: String,
    pub comment: Option<String>,
    /// JSON: what an approver saw served, a schedule's time, what an apply produced.
    pub detail: Option<String>,
}

impl ActivityRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Int(self.position),
            Text(self.request_id.clone()),
            Text(self.kind.clone()),
            Text(self.actor.clone()),
            Text(self.at.clone()),
            OptText(self.comment.clone()),
            OptText(self.detail.clone()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Open { row: ChangeRequestRow, prompts: Vec<String> },
    Activity(ActivityRow),
    Schedule { request_id: String, at: Option<String>, position: i64 },
    Close { request_id: String, status: &'static str, at: String, by: String, position: i64 },
}

/// The request tables, in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables {
    pub requests: BTreeMap<String, ChangeRequestRow>,
    pub activity: BTreeMap<i64, ActivityRow>,
    /// (request id, prompt name).
    pub prompts: BTreeSet<(String, String)>,
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("event parts serialize")
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let Some(id) = event.change_request().map(|id| id.to_string()) else { return };
    let activity = |kind: &str, comment: Option<String>, detail: Option<String>| {
        RowOp::ChangeRequests(Op::Activity(ActivityRow {
            position: e.position,
            request_id: id.clone(),
            kind: kind.into(),
            actor: e.actor.clone(),
            at: e.at.clone(),
            comment,
            detail,
        }))
    };
    let close = |status: &'static str| {
        RowOp::ChangeRequests(Op::Close {
            request_id: id.clone(),
            status,
            at: e.at.clone(),
            by: e.actor.clone(),
            position: e.position,
        })
    };
    match event {
        Event::ChangeRequestOpened(o) => {
            let row = ChangeRequestRow {
                request_id: id.clone(),
                environment: o.environment.to_string(),
                title: o.title.as_str().to_owned(),
                description: o.description.as_str().to_owned(),
                author: o.author.clone(),
                status: "open".into(),
                approvals_required: i64::from(o.approvals_required),
                changes: json(&o.changes),
                opened_at: e.at.clone(),
                opened_position: e.position,
                expires_at: format_timestamp(o.expires_at),
                scheduled_at: None,
                closed_at: None,
                closed_by: None,
                closed_position: None,
                last_position: e.position,
            };
            let prompts = o.changes.iter().map(|c| c.prompt_name().to_string()).collect();
            ops.push(RowOp::ChangeRequests(Op::Open { row, prompts }));
            ops.push(activity("opened", None, Some(json(&o.served))));
        }
        Event::ChangeRequestApproved(a) => {
            ops.push(activity("approved", a.comment.as_ref().map(|c| c.as_str().to_owned()), Some(json(&a.served))));
        }
        Event::ChangeRequestRejected(r) => {
            ops.push(activity("rejected", r.comment.as_ref().map(|c| c.as_str().to_owned()), None));
            ops.push(close("rejected"));
        }
        Event::ChangeRequestCommented(c) => ops.push(activity("commented", Some(c.comment.as_str().to_owned()), None)),
        Event::ChangeRequestScheduled(s) => {
            let at = s.at.map(format_timestamp);
            ops.push(activity("scheduled", None, Some(json(&at))));
            ops.push(RowOp::ChangeRequests(Op::Schedule { request_id: id.clone(), at, position: e.position }));
        }
        Event::ChangeRequestApplied(a) => {
            let detail = serde_json::json!({
                "produced": a.produced,
                "scheduled_for": a.scheduled_for.map(format_timestamp),
                "delay_ms": a.delay_ms,
            });
            ops.push(activity("applied", None, Some(detail.to_string())));
            ops.push(close("applied"));
        }
        Event::ChangeRequestWithdrawn(_) => {
            ops.push(activity("withdrawn", None, None));
            ops.push(close("withdrawn"));
        }
        Event::ChangeRequestExpired(_) => {
            ops.push(activity("expired", None, None));
            ops.push(close("expired"));
        }
        _ => {}
    }
}

pub fn apply(tables: &mut Tables, op: Op) {
    match op {
        Op::Open { row, prompts } => {
            for p in prompts {
                tables.prompts.insert((row.request_id.clone(), p));
            }
            tables.requests.insert(row.request_id.clone(), row);
        }
        Op::Activity(row) => {
            tables.activity.insert(row.position, row);
        }
        Op::Schedule { request_id, at, position } => {
            if let Some(r) = tables.requests.get_mut(&request_id) {
                r.scheduled_at = at;
                r.last_position = position;
            }
        }
        Op::Close { request_id, status, at, by, position } => {
            if let Some(r) = tables.requests.get_mut(&request_id) {
                r.status = status.into();
                r.closed_at = Some(at);
                r.closed_by = Some(by);
                r.closed_position = Some(position);
                r.last_position = position;
            }
        }
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Open { row, prompts } => {
            insert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells())).await?;
            let links = prompts.into_iter().map(|p| vec![Cell::Text(row.request_id.clone()), Cell::Text(p)]);
            insert_rows(tx, PROMPTS_TABLE, PROMPTS_COLUMNS, links).await
        }
        Op::Activity(row) => insert_rows(tx, ACTIVITY_TABLE, ACTIVITY_COLUMNS, std::iter::once(row.cells())).await,
        Op::Schedule { request_id, at, position } => on_tx!(tx, conn => {
            sqlx::query("UPDATE rm_change_requests SET scheduled_at = $1, last_position = $2 WHERE request_id = $3")
                .bind(at)
                .bind(position)
                .bind(request_id)
                .execute(conn)
                .await
                .map(|_| ())
        }),
        Op::Close { request_id, status, at, by, position } => on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE rm_change_requests SET status = $1, closed_at = $2, closed_by = $3, closed_position = $4, \
                 last_position = $5 WHERE request_id = $6",
            )
            .bind(status)
            .bind(at)
            .bind(by)
            .bind(position)
            .bind(position)
            .bind(request_id)
            .execute(conn)
            .await
            .map(|_| ())
        }),
    }
}
