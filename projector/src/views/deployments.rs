//! `rm_deployments`: the version live per prompt and environment, with who made it live
//! and when (the hot read path joins it).

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::Cell;
use promptos_store::{on_tx, Tx};
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_deployments";
pub const COLUMNS: &str = "prompt_id, environment, prompt_name, version_string, deployed_by, deployed_at, position";
/// The last deploy or rollback of a prompt in an environment wins.
pub const UPSERT: &str = "ON CONFLICT (prompt_id, environment) DO UPDATE SET \
     prompt_name = excluded.prompt_name, version_string = excluded.version_string, \
     deployed_by = excluded.deployed_by, deployed_at = excluded.deployed_at, position = excluded.position";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeploymentRow {
    pub prompt_id: String,
    pub environment: String,
    pub prompt_name: String,
    pub version_string: String,
    pub deployed_by: String,
    pub deployed_at: String,
    pub position: i64,
}

impl DeploymentRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.prompt_id.clone()),
            Text(self.environment.clone()),
            Text(self.prompt_name.clone()),
            Text(self.version_string.clone()),
            Text(self.deployed_by.clone()),
            Text(self.deployed_at.clone()),
            Int(self.position),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Upsert(DeploymentRow),
    /// The prompt was deleted: nothing of it is live any more.
    DeleteFor {
        prompt_id: String,
    },
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let live = |name: &promptos_core::names::PromptName,
                environment: &promptos_core::names::EnvironmentName,
                version: &promptos_core::names::VersionString| DeploymentRow {
        prompt_id: e.prompt_id.clone(),
        environment: environment.to_string(),
        prompt_name: name.to_string(),
        version_string: version.to_string(),
        deployed_by: e.actor.clone(),
        deployed_at: e.at.clone(),
        position: e.position,
    };
    let op = match event {
        Event::VersionDeployed(d) => Op::Upsert(live(&d.name, &d.environment, &d.version_string)),
        Event::DeploymentRolledBack(r) => Op::Upsert(live(&r.name, &r.environment, &r.to_version_string)),
        Event::PromptDeleted(_) => Op::DeleteFor { prompt_id: e.prompt_id.clone() },
        _ => return,
    };
    ops.push(RowOp::Deployments(op));
}

pub fn apply(rows: &mut BTreeMap<(String, String), DeploymentRow>, op: Op) {
    match op {
        Op::Upsert(row) => {
            rows.insert((row.prompt_id.clone(), row.environment.clone()), row);
        }
        Op::DeleteFor { prompt_id } => rows.retain(|(id, _), _| *id != prompt_id),
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Upsert(row) => upsert(tx, std::iter::once(row)).await,
        Op::DeleteFor { prompt_id } => on_tx!(tx, conn => {
            sqlx::query("DELETE FROM rm_deployments WHERE prompt_id = $1").bind(prompt_id).execute(conn).await.map(|_| ())
        }),
    }
}

/// Writes many deployments in a few statements (the projector's end of batch).
pub async fn upsert(tx: &mut Tx<'_>, rows: impl Iterator<Item = DeploymentRow>) -> Result<(), sqlx::Error> {
    promptos_store::bulk::upsert_rows(tx, TABLE, COLUMNS, rows.map(|r| r.cells()), UPSERT).await
}
