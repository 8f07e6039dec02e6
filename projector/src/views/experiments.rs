//! `rm_experiments`: the latest A/B experiment per prompt and environment (running or
//! stopped), with its variants and buckets.

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::Cell;
use promptos_store::{on_tx, Tx};
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_experiments";
pub const COLUMNS: &str =
    "prompt_id, environment, experiment_id, running, variants, buckets, previous_version_string, \
     started_at, started_by, position";
const UPSERT: &str = "ON CONFLICT (prompt_id, environment) \
     DO UPDATE SET experiment_id = excluded.experiment_id, running = excluded.running, \
     variants = excluded.variants, buckets = excluded.buckets, \
     previous_version_string = excluded.previous_version_string, started_at = excluded.started_at, \
     started_by = excluded.started_by, position = excluded.position";

/// The latest experiment of a prompt in an environment.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExperimentRow {
    pub prompt_id: String,
    pub environment: String,
    pub experiment_id: String,
    /// 1 while it splits traffic, 0 once stopped.
    pub running: i64,
    /// JSON array of `{version_string, weight}`, in the experiment's order.
    pub variants: String,
    /// JSON array of 100 variant indexes.
    pub buckets: String,
    /// The version live before it started (what "revert" keeps).
    pub previous_version_string: Option<String>,
    pub started_at: String,
    pub started_by: String,
    /// The last event that changed it.
    pub position: i64,
}

impl ExperimentRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.prompt_id.clone()),
            Text(self.environment.clone()),
            Text(self.experiment_id.clone()),
            Int(self.running),
            Text(self.variants.clone()),
            Text(self.buckets.clone()),
            OptText(self.previous_version_string.clone()),
            Text(self.started_at.clone()),
            Text(self.started_by.clone()),
            Int(self.position),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Start(ExperimentRow),
    Reweight {
        prompt_id: String,
        environment: String,
        variants: String,
        buckets: String,
        position: i64,
    },
    /// Marks the running experiment of a prompt in an environment stopped.
    Stop {
        prompt_id: String,
        environment: String,
        position: i64,
    },
    /// The prompt was deleted.
    DeleteFor {
        prompt_id: String,
    },
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let op = match event {
        Event::ExperimentStarted(s) => Op::Start(ExperimentRow {
            prompt_id: e.prompt_id.clone(),
            environment: s.environment.to_string(),
            experiment_id: s.experiment_id.to_string(),
            running: 1,
            variants: serde_json::to_string(&s.variants).expect("variants serialize"),
            buckets: serde_json::to_string(&s.buckets).expect("buckets serialize"),
            previous_version_string: s.previous_version_string.as_ref().map(|v| v.to_string()),
            started_at: e.at.clone(),
            started_by: e.actor.clone(),
            position: e.position,
        }),
        Event::ExperimentWeightsChanged(w) => Op::Reweight {
            prompt_id: e.prompt_id.clone(),
            environment: w.environment.to_string(),
            variants: serde_json::to_string(&w.variants).expect("variants serialize"),
            buckets: serde_json::to_string(&w.buckets).expect("buckets serialize"),
            position: e.position,
        },
        Event::ExperimentStopped(s) => {
            Op::Stop { prompt_id: e.prompt_id.clone(), environment: s.environment.to_string(), position: e.position }
        }
        Event::PromptDeleted(_) => Op::DeleteFor { prompt_id: e.prompt_id.clone() },
        _ => return,
    };
    ops.push(RowOp::Experiments(op));
}

pub fn apply(rows: &mut BTreeMap<(String, String), ExperimentRow>, op: Op) {
    match op {
        Op::Start(row) => {
            rows.insert((row.prompt_id.clone(), row.environment.clone()), row);
        }
        Op::Reweight { prompt_id, environment, variants, buckets, position } => {
            if let Some(x) = rows.get_mut(&(prompt_id, environment)) {
                x.variants = variants;
                x.buckets = buckets;
                x.position = position;
            }
        }
        Op::Stop { prompt_id, environment, position } => {
            if let Some(x) = rows.get_mut(&(prompt_id, environment)) {
                x.running = 0;
                x.position = position;
            }
        }
        Op::DeleteFor { prompt_id } => rows.retain(|(id, _), _| *id != prompt_id),
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Start(row) => {
            promptos_store::bulk::upsert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells()), UPSERT).await
        }
        Op::Reweight { prompt_id, environment, variants, buckets, position } => on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE rm_experiments SET variants = $1, buckets = $2, position = $3 \
                 WHERE prompt_id = $4 AND environment = $5",
            )
            .bind(variants)
            .bind(buckets)
            .bind(position)
            .bind(prompt_id)
            .bind(environment)
            .execute(conn)
            .await
            .map(|_| ())
        }),
        Op::Stop { prompt_id, environment, position } => on_tx!(tx, conn => {
            sqlx::query("UPDATE rm_experiments SET running = 0, position = $1 WHERE prompt_id = $2 AND environment = $3")
                .bind(position)
                .bind(prompt_id)
                .bind(environment)
                .execute(conn)
                .await
                .map(|_| ())
        }),
        Op::DeleteFor { prompt_id } => on_tx!(tx, conn => {
            sqlx::query("DELETE FROM rm_experiments WHERE prompt_id = $1").bind(prompt_id).execute(conn).await.map(|_| ())
        }),
    }
}
