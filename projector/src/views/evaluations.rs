//! `rm_evaluations`: every evaluation run, running or completed, with its outcome per
//! case once it completed.

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::{on_tx, Tx};
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_evaluations";
pub const COLUMNS: &str = "evaluation_id, prompt_id, version_string, version_hash, suite_revision, provider, model, \
     environment, cases, status, passed, total, input_tokens, output_tokens, duration_ms, stopped, outcomes, \
     started_at, started_by, completed_at, started_position, last_position";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EvaluationRow {
    pub evaluation_id: String,
    pub prompt_id: String,
    pub version_string: String,
    pub version_hash: String,
    pub suite_revision: i64,
    pub provider: String,
    pub model: String,
    pub environment: String,
    /// Cases the run takes.
    pub cases: i64,
    /// `running` or `completed`.
    pub status: String,
    pub passed: Option<i64>,
    pub total: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub duration_ms: Option<i64>,
    pub stopped: Option<String>,
    /// JSON array of the per-case outcomes, once completed.
    pub outcomes: Option<String>,
    pub started_at: String,
    pub started_by: String,
    pub completed_at: Option<String>,
    pub started_position: i64,
    pub last_position: i64,
}

impl EvaluationRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.evaluation_id.clone()),
            Text(self.prompt_id.clone()),
            Text(self.version_string.clone()),
            Text(self.version_hash.clone()),
            Int(self.suite_revision),
            Text(self.provider.clone()),
            Text(self.model.clone()),
            Text(self.environment.clone()),
            Int(self.cases),
            Text(self.status.clone()),
            OptInt(self.passed),
            OptInt(self.total),
            OptInt(self.input_tokens),
            OptInt(self.output_tokens),
            OptInt(self.duration_ms),
            OptText(self.stopped.clone()),
            OptText(self.outcomes.clone()),
            Text(self.started_at.clone()),
            Text(self.started_by.clone()),
            OptText(self.completed_at.clone()),
            Int(self.started_position),
            Int(self.last_position),
        ]
    }
}

/// A completed run's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub evaluation_id: String,
    pub passed: i64,
    pub total: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub duration_ms: i64,
    pub stopped: Option<String>,
    pub outcomes: String,
    pub at: String,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert(Box<EvaluationRow>),
    Complete(Completion),
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let op = match event {
        Event::EvaluationStarted(s) => Op::Insert(Box::new(EvaluationRow {
            evaluation_id: s.evaluation_id.to_string(),
            prompt_id: e.prompt_id.clone(),
            version_string: s.version_string.to_string(),
            version_hash: s.version_hash.clone(),
            suite_revision: int(s.suite_revision),
            provider: s.provider.clone(),
            model: s.model.clone(),
            environment: s.environment.to_string(),
            cases: i64::from(s.cases),
            status: "running".into(),
            passed: None,
            total: None,
            input_tokens: None,
            output_tokens: None,
            duration_ms: None,
            stopped: None,
            outcomes: None,
            started_at: e.at.clone(),
            started_by: e.actor.clone(),
            completed_at: None,
            started_position: e.position,
            last_position: e.position,
        })),
        Event::EvaluationCompleted(c) => Op::Complete(Completion {
            evaluation_id: c.evaluation_id.to_string(),
            passed: i64::from(c.passed),
            total: i64::from(c.total),
            input_tokens: int(c.input_tokens),
            output_tokens: int(c.output_tokens),
            duration_ms: int(c.duration_ms),
            stopped: c.stopped.clone(),
            outcomes: serde_json::to_string(&c.outcomes).expect("outcomes serialize"),
            at: e.at.clone(),
            position: e.position,
        }),
        _ => return,
    };
    ops.push(RowOp::Evaluations(op));
}

pub fn apply(rows: &mut BTreeMap<String, EvaluationRow>, op: Op) {
    match op {
        Op::Insert(row) => {
            rows.insert(row.evaluation_id.clone(), *row);
        }
        Op::Complete(c) => {
            if let Some(r) = rows.get_mut(&c.evaluation_id) {
                r.status = "completed".into();
                (r.passed, r.total) = (Some(c.passed), Some(c.total));
                (r.input_tokens, r.output_tokens, r.duration_ms) =
                    (Some(c.input_tokens), Some(c.output_tokens), Some(c.duration_ms));
                (r.stopped, r.outcomes, r.completed_at) = (c.stopped, Some(c.outcomes), Some(c.at));
                r.last_position = c.position;
            }
        }
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Insert(row) => insert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells())).await,
        Op::Complete(c) => on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE rm_evaluations SET status = 'completed', passed = $1, total = $2, input_tokens = $3, \
                 output_tokens = $4, duration_ms = $5, stopped = $6, outcomes = $7, completed_at = $8, \
                 last_position = $9 WHERE evaluation_id = $10",
            )
            .bind(c.passed)
            .bind(c.total)
            .bind(c.input_tokens)
            .bind(c.output_tokens)
            .bind(c.duration_ms)
            .bind(c.stopped)
            .bind(c.outcomes)
            .bind(c.at)
            .bind(c.position)
            .bind(c.evaluation_id)
            .execute(conn)
            .await
            .map(|_| ())
        }),
    }
}
