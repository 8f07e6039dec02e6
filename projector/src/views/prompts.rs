//! `rm_prompts`: one row per incarnation of a prompt name, live or deleted, with its
//! description, tags, latest version and the positions it spans.

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::{on_tx, Tx};
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_prompts";
pub const COLUMNS: &str = "prompt_id, name, description, created_at, created_by, \
    updated_at, updated_by, deleted_at, deleted_by, latest_version, version_count, first_position, last_position, tags";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PromptRow {
    pub prompt_id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub deleted_at: Option<String>,
    pub deleted_by: Option<String>,
    pub latest_version: Option<String>,
    pub version_count: i64,
    pub first_position: i64,
    pub last_position: i64,
    /// JSON array of tags, sorted.
    pub tags: String,
}

impl PromptRow {
    pub fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.prompt_id.clone()),
            Text(self.name.clone()),
            Text(self.description.clone()),
            Text(self.created_at.clone()),
            Text(self.created_by.clone()),
            Text(self.updated_at.clone()),
            Text(self.updated_by.clone()),
            OptText(self.deleted_at.clone()),
            OptText(self.deleted_by.clone()),
            OptText(self.latest_version.clone()),
            Int(self.version_count),
            Int(self.first_position),
            Int(self.last_position),
            Text(self.tags.clone()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Insert(PromptRow),
    Describe {
        prompt_id: String,
        description: String,
        at: String,
        by: String,
        position: i64,
    },
    Tag {
        prompt_id: String,
        tags: String,
        at: String,
        by: String,
        position: i64,
    },
    /// Marks the prompt deleted (its history stays).
    Delete {
        prompt_id: String,
        at: String,
        by: String,
        position: i64,
    },
    /// A version was created: it is the latest now.
    VersionAdded {
        prompt_id: String,
        version_string: String,
        position: i64,
    },
    /// What the prompt serves changed at `position` (a deployment or an experiment).
    Touch {
        prompt_id: String,
        position: i64,
    },
}

/// What this view does with `event`.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let prompt_id = e.prompt_id.clone();
    let op = match event {
        Event::PromptCreated(c) => Op::Insert(PromptRow {
            prompt_id,
            name: c.name.to_string(),
            description: c.description.to_string(),
            created_at: e.at.clone(),
            created_by: e.actor.clone(),
            updated_at: e.at.clone(),
            updated_by: e.actor.clone(),
            deleted_at: None,
            deleted_by: None,
            latest_version: None,
            version_count: 0,
            first_position: e.position,
            last_position: e.position,
            tags: "[]".into(),
        }),
        Event::PromptTagged(t) => Op::Tag {
            prompt_id,
            tags: serde_json::to_string(&t.tags).expect("tags serialize"),
            at: e.at.clone(),
            by: e.actor.clone(),
            position: e.position,
        },
        Event::PromptUpdated(u) => Op::Describe {
            prompt_id,
            description: u.description.to_string(),
            at: e.at.clone(),
            by: e.actor.clone(),
            position: e.position,
        },
        Event::PromptDeleted(_) => {
            Op::Delete { prompt_id, at: e.at.clone(), by: e.actor.clone(), position: e.position }
        }
        Event::VersionCreated(c) => {
            Op::VersionAdded { prompt_id, version_string: c.version_string.to_string(), position: e.position }
        }
        Event::VersionDeployed(_)
        | Event::DeploymentRolledBack(_)
        | Event::ExperimentStarted(_)
        | Event::ExperimentWeightsChanged(_)
        | Event::ExperimentStopped(_) => Op::Touch { prompt_id, position: e.position },
        _ => return,
    };
    ops.push(RowOp::Prompts(op));
}

pub fn apply(rows: &mut BTreeMap<String, PromptRow>, op: Op) {
    match op {
        Op::Insert(row) => {
            rows.insert(row.prompt_id.clone(), row);
        }
        Op::Describe { prompt_id, description, at, by, position } => {
            if let Some(p) = rows.get_mut(&prompt_id) {
                p.description = description;
                p.updated_at = at;
                p.updated_by = by;
                p.last_position = position;
            }
        }
        Op::Tag { prompt_id, tags, at, by, position } => {
            if let Some(p) = rows.get_mut(&prompt_id) {
                p.tags = tags;
                p.updated_at = at;
                p.updated_by = by;
                p.last_position = position;
            }
        }
        Op::Delete { prompt_id, at, by, position } => {
            if let Some(p) = rows.get_mut(&prompt_id) {
                p.deleted_at = Some(at);
                p.deleted_by = Some(by);
                p.last_position = position;
            }
        }
        Op::VersionAdded { prompt_id, version_string, position } => {
            if let Some(p) = rows.get_mut(&prompt_id) {
                p.latest_version = Some(version_string);
                p.version_count += 1;
                p.last_position = position;
            }
        }
        Op::Touch { prompt_id, position } => {
            if let Some(p) = rows.get_mut(&prompt_id) {
                p.last_position = position;
            }
        }
    }
}

pub async fn apply_sql(tx: &mut Tx<'_>, op: Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Insert(row) => insert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells())).await,
        Op::Describe { prompt_id, description, at, by, position } => on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE rm_prompts SET description = $1, updated_at = $2, updated_by = $3, last_position = $4 \
                 WHERE prompt_id = $5",
            )
            .bind(description)
            .bind(at)
            .bind(by)
            .bind(position)
            .bind(prompt_id)
            .execute(conn)
            .await
            .map(|_| ())
        }),
        Op::Tag { prompt_id, tags, at, by, position } => on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE rm_prompts SET tags = $1, updated_at = $2, updated_by = $3, last_position = $4 \
                 WHERE prompt_id = $5",
            )
            .bind(tags)
            .bind(at)
            .bind(by)
            .bind(position)
            .bind(prompt_id)
            .execute(conn)
            .await
            .map(|_| ())
        }),
        Op::Delete { prompt_id, at, by, position } => on_tx!(tx, conn => {
            sqlx::query("UPDATE rm_prompts SET deleted_at = $1, deleted_by = $2, last_position = $3 WHERE prompt_id = $4")
                .bind(at)
                .bind(by)
                .bind(position)
                .bind(prompt_id)
                .execute(conn)
                .await
                .map(|_| ())
        }),
        Op::VersionAdded { prompt_id, version_string, position } => on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE rm_prompts SET latest_version = $1, version_count = version_count + 1, last_position = $2 \
                 WHERE prompt_id = $3",
            )
            .bind(version_string)
            .bind(position)
            .bind(prompt_id)
            .execute(conn)
            .await
            .map(|_| ())
        }),
        Op::Touch { prompt_id, position } => touch(tx, &prompt_id, position).await,
    }
}

/// Moves the prompt's `last_position` up to `position` (never back).
pub async fn touch(tx: &mut Tx<'_>, prompt_id: &str, position: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE rm_prompts SET last_position = CASE WHEN last_position < $1 THEN $1 ELSE last_position END \
             WHERE prompt_id = $2",
        )
        .bind(position)
        .bind(prompt_id)
        .execute(conn)
        .await
        .map(|_| ())
    })
}
