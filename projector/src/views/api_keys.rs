//! `rm_api_keys`: applications' keys (their hashes), environments and revocation.

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::{on_tx, Tx};
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_api_keys";
pub const COLUMNS: &str =
    "key_id, name, environments, key_hash, created_at, created_by, revoked_at, revoked_by, last_position";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub name: String,
    /// JSON array of environment names.
    pub environments: String,
    pub key_hash: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub last_position: i64,
}

impl ApiKeyRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.key_id.clone()),
            Text(self.name.clone()),
            Text(self.environments.clone()),
            Text(self.key_hash.clone()),
            Text(self.created_at.clone()),
            Text(self.created_by.clone()),
            OptText(self.revoked_at.clone()),
            OptText(self.revoked_by.clone()),
            Int(self.last_position),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert(ApiKeyRow),
    Revoke { key_id: String, at: String, by: String, position: i64 },
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let op = match event {
        Event::ApiKeyCreated(k) => Op::Insert(ApiKeyRow {
            key_id: k.key_id.clone(),
            name: k.name.clone(),
            environments: serde_json::to_string(&k.environments).expect("names serialize"),
            key_hash: k.key_hash.clone(),
            created_at: e.at.clone(),
            created_by: e.actor.clone(),
            revoked_at: None,
            revoked_by: None,
            last_position: e.position,
        }),
        Event::ApiKeyRevoked(k) => {
            Op::Revoke { key_id: k.key_id.clone(), at: e.at.clone(), by: e.actor.clone(), position: e.position }
        }
        _ => return,
    };
    ops.push(RowOp::ApiKeys(op));
}

pub fn apply(rows: &mut BTreeMap<String, ApiKeyRow>, op: Op) {
    match op {
        Op::Insert(row) => {
            rows.insert(row.key_id.clone(), row);
        }
        Op::Revoke { key_id, at, by, position } => {
            if let Some(k) = rows.get_mut(&key_id) {
                k.revoked_at = Some(at);
                k.revoked_by = Some(by);
                k.last_position = position;
            }
        }
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Insert(row) => insert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells())).await,
        Op::Revoke { key_id, at, by, position } => on_tx!(tx, conn => {
            sqlx::query("UPDATE rm_api_keys SET revoked_at = $1, revoked_by = $2, last_position = $3 WHERE key_id = $4")
                .bind(at)
                .bind(by)
                .bind(position)
                .bind(key_id)
                .execute(conn)
                .await
                .map(|_| ())
        }),
    }
}
