//! `rm_event_index`: which prompt, environment and actor each event is about, so the
//! audit log can be filtered by them.

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::Tx;
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_event_index";
pub const COLUMNS: &str = "position, prompt_name, prompt_id, environment, actor";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IndexRow {
    pub position: i64,
    pub prompt_name: Option<String>,
    pub prompt_id: Option<String>,
    pub environment: Option<String>,
    pub actor: String,
}

impl IndexRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Int(self.position),
            OptText(self.prompt_name.clone()),
            OptText(self.prompt_id.clone()),
            OptText(self.environment.clone()),
            Text(self.actor.clone()),
        ]
    }
}

/// What this view does with `event`: every event is indexed.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let prompt = event.prompt();
    ops.push(RowOp::Index(IndexRow {
        position: e.position,
        prompt_name: prompt.map(|(_, name)| name.to_string()),
        prompt_id: prompt.map(|(id, _)| id.to_string()),
        environment: event.environment().map(|env| env.to_string()),
        actor: e.actor.clone(),
    }));
}

pub fn apply(rows: &mut BTreeMap<i64, IndexRow>, row: IndexRow) {
    rows.insert(row.position, row);
}

pub async fn insert(tx: &mut Tx<'_>, rows: impl Iterator<Item = IndexRow>) -> Result<(), sqlx::Error> {
    insert_rows(tx, TABLE, COLUMNS, rows.map(|r| r.cells())).await
}
