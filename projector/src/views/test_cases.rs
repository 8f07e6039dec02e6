//! `rm_test_cases`: each prompt's test cases as they are now (a removed case's row goes).

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::{on_tx, Tx};
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_test_cases";
pub const COLUMNS: &str =
    "case_id, prompt_id, name, body, created_at, created_by, updated_at, updated_by, last_position";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TestCaseRow {
    pub case_id: String,
    pub prompt_id: String,
    pub name: String,
    /// JSON of the whole case (`promptos_core::evaluation::TestCase`).
    pub body: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub last_position: i64,
}

impl TestCaseRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.case_id.clone()),
            Text(self.prompt_id.clone()),
            Text(self.name.clone()),
            Text(self.body.clone()),
            Text(self.created_at.clone()),
            Text(self.created_by.clone()),
            Text(self.updated_at.clone()),
            Text(self.updated_by.clone()),
            Int(self.last_position),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert(TestCaseRow),
    Update { case_id: String, name: String, body: String, at: String, by: String, position: i64 },
    Delete { case_id: String },
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let op = match event {
        Event::TestCaseAdded(t) => Op::Insert(TestCaseRow {
            case_id: t.case.case_id.to_string(),
            prompt_id: e.prompt_id.clone(),
            name: t.case.name.to_string(),
            body: serde_json::to_string(&t.case).expect("a test case serializes"),
            created_at: e.at.clone(),
            created_by: e.actor.clone(),
            updated_at: e.at.clone(),
            updated_by: e.actor.clone(),
            last_position: e.position,
        }),
        Event::TestCaseUpdated(t) => Op::Update {
            case_id: t.case.case_id.to_string(),
            name: t.case.name.to_string(),
            body: serde_json::to_string(&t.case).expect("a test case serializes"),
            at: e.at.clone(),
            by: e.actor.clone(),
            position: e.position,
        },
        Event::TestCaseRemoved(t) => Op::Delete { case_id: t.case_id.to_string() },
        _ => return,
    };
    ops.push(RowOp::TestCases(op));
}

pub fn apply(rows: &mut BTreeMap<String, TestCaseRow>, op: Op) {
    match op {
        Op::Insert(row) => {
            rows.insert(row.case_id.clone(), row);
        }
        Op::Update { case_id, name, body, at, by, position } => {
            if let Some(r) = rows.get_mut(&case_id) {
                (r.name, r.body, r.updated_at, r.updated_by, r.last_position) = (name, body, at, by, position);
            }
        }
        Op::Delete { case_id } => {
            rows.remove(&case_id);
        }
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Insert(row) => insert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells())).await,
        Op::Update { case_id, name, body, at, by, position } => on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE rm_test_cases SET name = $1, body = $2, updated_at = $3, updated_by = $4, last_position = $5 \
                 WHERE case_id = $6",
            )
            .bind(name)
            .bind(body)
            .bind(at)
            .bind(by)
            .bind(position)
            .bind(case_id)
            .execute(conn)
            .await
            .map(|_| ())
        }),
        Op::Delete { case_id } => on_tx!(tx, conn => {
            sqlx::query("DELETE FROM rm_test_cases WHERE case_id = $1").bind(case_id).execute(conn).await.map(|_| ())
        }),
    }
}
