//! Rebuilding every read model from the log.

use crate::checkpoints::{self, READ_MODELS};
use crate::projector::ProjectorError;
use crate::views::*;
use promptos_store::bulk::{copy_rows, insert_rows, Cell};
use promptos_store::{Db, EventLog, Pool, StoredEvent, Tx};

/// How often replay reports progress, in events.
const PROGRESS_EVERY: i64 = 10_000;

/// One event as projecting reads it: position, stream id, stream version, type,
/// payload, metadata, recorded at.
type Row = (i64, String, i64, String, String, String, String);

/// Folds the whole log into `model`, calling `progress(done, total)` as it goes. Returns
/// the position of the last event folded.
///
/// The log is read in one streamed query, with a deep row buffer on SQLite (a
/// connection of its own, read-only): a million rows cost more in thread hand-offs
/// than the fold with the default buffer.
pub async fn replay_all(
    db: &Db,
    up_to: Option<i64>,
    model: &mut ReadModel,
    mut progress: impl FnMut(i64, i64),
) -> Result<i64, ProjectorError> {
    use futures::TryStreamExt;
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let total = match up_to {
        Some(p) => p,
        None => db.head().await?,
    };
    const SQL: &str = "SELECT position, stream_id, stream_version, event_type, payload, metadata, recorded_at \
                       FROM events WHERE position <= $1 ORDER BY position";
    let mut position = 0;
    let mut fold = |(pos, stream_id, stream_version, event_type, payload, metadata, recorded_at): Row| {
        let e = StoredEvent {
            position: pos,
            stream_id,
            stream_version,
            event_id: String::new(),
            event_type,
            payload,
            metadata,
            recorded_at,
            prev_hash: String::new(),
            hash: String::new(),
        };
        for op in row_ops(&e).map_err(|source| ProjectorError::Decode { position: pos, source })? {
            model.apply(op);
        }
        position = pos;
        if pos % PROGRESS_EVERY == 0 {
            progress(pos, total);
        }
        Ok::<_, ProjectorError>(())
    };
    match db.pool() {
        Pool::Sqlite(_) => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(db.url())?.read_only(true).row_buffer_size(8192);
            let mut conn = options.connect().await?;
            let mut rows = sqlx::query_as::<_, Row>(SQL).bind(total).fetch(&mut conn);
            while let Some(row) = rows.try_next().await? {
                fold(row)?;
            }
        }
        Pool::Postgres(pool) => {
            let mut rows = sqlx::query_as::<_, Row>(SQL).bind(total).fetch(pool);
            while let Some(row) = rows.try_next().await? {
                fold(row)?;
            }
        }
    }
    progress(position, total);
    Ok(position)
}

/// Replaces every read model with a fresh replay of the log, in one transaction:
/// readers see the old models until the new ones are complete.
pub async fn rebuild(db: &Db, progress: impl FnMut(i64, i64)) -> Result<i64, ProjectorError> {
    let mut model = ReadModel::default();
    let started = std::time::Instant::now();
    let position = replay_all(db, None, &mut model, progress).await?;
    let replayed = started.elapsed();
    match db.pool() {
        Pool::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            // Millions of index inserts: a page cache larger than SQLite's 2 MB default
            // for this transaction, and the default back after.
            sqlx::query("PRAGMA cache_size = -262144").execute(&mut *conn).await?;
            let written = write_models_sqlite(&mut conn, &model, position).await;
            sqlx::query("PRAGMA cache_size = -2000").execute(&mut *conn).await?;
            written?;
        }
        Pool::Postgres(pool) => write_models_postgres(pool, &model, position).await?,
    }
    tracing::info!(
        events = position,
        replay_ms = replayed.as_millis() as u64,
        write_ms = (started.elapsed() - replayed).as_millis() as u64,
        "read models rebuilt"
    );
    Ok(position)
}

/// Every read-model table with its columns and the rows `model` holds for it.
fn tables(model: &ReadModel) -> Vec<(&'static str, &'static str, Box<dyn Iterator<Item = Vec<Cell>> + '_>)> {
    vec![
        (prompts::TABLE, prompts::COLUMNS, Box::new(model.prompts.values().map(|r| r.cells()))),
        (versions::TABLE, versions::COLUMNS, Box::new(model.versions.values().map(|r| r.cells()))),
        (deployments::TABLE, deployments::COLUMNS, Box::new(model.deployments.values().map(|r| r.cells()))),
        (includes::TABLE, includes::COLUMNS, Box::new(model.includes.iter().map(includes::cells))),
        (experiments::TABLE, experiments::COLUMNS, Box::new(model.experiments.values().map(|r| r.cells()))),
        (history::TABLE, history::COLUMNS, Box::new(model.history.values().map(|r| r.cells()))),
        (index::TABLE, index::COLUMNS, Box::new(model.index.values().map(|r| r.cells()))),
        (users::TABLE, users::COLUMNS, Box::new(model.users.values().map(|r| r.cells()))),
        (api_keys::TABLE, api_keys::COLUMNS, Box::new(model.api_keys.values().map(|r| r.cells()))),
    ]
}

/// SQLite: multi-row inserts in one `BEGIN IMMEDIATE` transaction.
async fn write_models_sqlite(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    model: &ReadModel,
    position: i64,
) -> Result<(), ProjectorError> {
    use sqlx::Connection;
    let mut tx = Tx::Sqlite(conn.begin_with("BEGIN IMMEDIATE").await?);
    checkpoints::claim(&mut tx, READ_MODELS, position).await?;
    for table in READ_MODEL_TABLES {
        promptos_store::on_tx!(&mut tx, c => sqlx::query(&format!("DELETE FROM {table}")).execute(c).await.map(|_| ()))?;
    }
    for (table, columns, rows) in tables(model) {
        insert_rows(&mut tx, table, columns, rows).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// PostgreSQL: `COPY`, in one transaction that also tells waiting API servers the new
/// position.
async fn write_models_postgres(pool: &sqlx::PgPool, model: &ReadModel, position: i64) -> Result<(), ProjectorError> {
    let mut tx = Tx::Postgres(pool.begin().await?);
    checkpoints::claim(&mut tx, READ_MODELS, position).await?;
    let Tx::Postgres(t) = &mut tx else { unreachable!("a PostgreSQL transaction") };
    for table in READ_MODEL_TABLES {
        sqlx::query(&format!("DELETE FROM {table}")).execute(&mut **t).await?;
    }
    for (table, columns, rows) in tables(model) {
        copy_rows(&mut **t, table, columns, rows).await?;
    }
    checkpoints::notify_projected(&mut tx, position).await?;
    tx.commit().await?;
    Ok(())
}
