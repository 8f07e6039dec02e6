//! Rebuilding every read model from the log.

use crate::db::{Backend, Db};
use crate::log::{head, read_after};
use crate::projection::*;
use crate::projector::{ProjectorError, CHECKPOINT};
use sqlx::Connection;

const READ_BATCH: i64 = 10_000;

/// Folds the whole log into `model`, calling `progress(done, total)` as it goes. Returns
/// the position of the last event folded.
pub async fn replay_all(
    db: &Db,
    up_to: Option<i64>,
    model: &mut ReadModel,
    mut progress: impl FnMut(i64, i64),
) -> Result<i64, ProjectorError> {
    let total = match up_to {
        Some(p) => p,
        None => head(db).await?,
    };
    let mut position = 0;
    while position < total {
        let limit = READ_BATCH.min(total - position);
        let batch = read_after(db, position, limit).await?;
        let Some(last) = batch.last() else { break };
        let last = last.position;
        for e in &batch {
            for op in row_ops(e).map_err(|source| ProjectorError::Decode { position: e.position, source })? {
                model.apply(op);
            }
        }
        position = last;
        progress(position, total);
    }
    Ok(position)
}

/// Replaces every read model with a fresh replay of the log, in one transaction:
/// readers see the old models until the new ones are complete.
pub async fn rebuild(db: &Db, progress: impl FnMut(i64, i64)) -> Result<i64, ProjectorError> {
    let mut model = ReadModel::default();
    let position = replay_all(db, None, &mut model, progress).await?;
    let mut conn = db.pool.acquire().await?;
    let mut tx = match db.backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => conn.begin().await?,
    };
    // Lock the checkpoint first so a running projector waits for us, then fails its
    // compare-and-set and resumes from where the rebuild ends.
    sqlx::query("UPDATE projector_checkpoints SET position = $1 WHERE name = $2")
        .bind(position)
        .bind(CHECKPOINT)
        .execute(&mut *tx)
        .await?;
    for table in READ_MODEL_TABLES {
        sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
    }
    insert_many(&mut tx, "rm_prompts", PROMPT_COLUMNS, model.prompts.values().map(|r| r.cells())).await?;
    insert_many(&mut tx, "rm_versions", VERSION_COLUMNS, model.versions.values().map(|r| r.cells())).await?;
    insert_many(&mut tx, "rm_deployments", DEPLOYMENT_COLUMNS, model.deployments.values().map(|r| r.cells())).await?;
    insert_many(&mut tx, "rm_deployment_history", HISTORY_COLUMNS, model.history.values().map(|r| r.cells())).await?;
    insert_many(&mut tx, "rm_event_index", INDEX_COLUMNS, model.index.values().map(|r| r.cells())).await?;
    insert_many(&mut tx, "rm_users", USER_COLUMNS, model.users.values().map(|r| r.cells())).await?;
    insert_many(&mut tx, "rm_api_keys", API_KEY_COLUMNS, model.api_keys.values().map(|r| r.cells())).await?;
    if db.backend == Backend::Postgres {
        sqlx::query("SELECT 1 FROM pg_notify('promptos_projected', $1)")
            .bind(position.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(position)
}
