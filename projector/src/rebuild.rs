//! Rebuilding every read model from the log.
//!
//! The replay and the writing overlap: the history and the event index (append-only,
//! about four rows in five) go to the database in chunks while the log is still being
//! read, on a task of their own, so reading and folding use one core and writing the
//! other. The views that change in place (prompts, versions, deployments …) are folded in
//! memory and written at the end. Secondary indexes are dropped inside the transaction
//! and built once after the rows, a sorted build instead of millions of random B-tree
//! inserts; readers keep seeing the old models, indexes included, until the commit.

use crate::checkpoints::{self, READ_MODELS};
use crate::projector::ProjectorError;
use crate::shadow;
use crate::views::*;
use futures::stream::BoxStream;
use futures::TryStreamExt;
use promptos_store::bulk::{copy_rows, insert_rows, Cell};
use promptos_store::{Db, EventLog, Pool, StoredEvent, Tx};
use tokio::sync::mpsc;

/// How often replay reports progress, in events.
const PROGRESS_EVERY: i64 = 10_000;

/// Rows of the append-only views handed to the writing task at a time.
const CHUNK_ROWS: usize = 25_000;

/// One event as projecting reads it: position, stream id, stream version, type,
/// payload, metadata, recorded at.
type Row = (i64, String, i64, String, String, String, String);

/// The log up to a position, streamed in one query: on SQLite over a read-only
/// connection of its own with a deep row buffer (a million rows cost more in thread
/// hand-offs than the fold with the default buffer), on PostgreSQL from the pool.
struct LogReader<'a> {
    db: &'a Db,
    up_to: i64,
    sqlite: Option<sqlx::SqliteConnection>,
}

impl<'a> LogReader<'a> {
    async fn open(db: &'a Db, up_to: i64) -> Result<Self, ProjectorError> {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        let sqlite = match db.pool() {
            Pool::Sqlite(_) => Some(
                sqlx::sqlite::SqliteConnectOptions::from_str(db.url())?
                    .read_only(true)
                    .row_buffer_size(8192)
                    .connect()
                    .await?,
            ),
            Pool::Postgres(_) => None,
        };
        Ok(Self { db, up_to, sqlite })
    }

    fn rows(&mut self) -> BoxStream<'_, Result<Row, sqlx::Error>> {
        const SQL: &str = "SELECT position, stream_id, stream_version, event_type, payload, metadata, recorded_at \
                           FROM events WHERE position <= $1 ORDER BY position";
        match (self.db.pool(), self.sqlite.as_mut()) {
            (_, Some(conn)) => sqlx::query_as::<_, Row>(SQL).bind(self.up_to).fetch(conn),
            (Pool::Postgres(pool), None) => sqlx::query_as::<_, Row>(SQL).bind(self.up_to).fetch(pool),
            (Pool::Sqlite(pool), None) => sqlx::query_as::<_, Row>(SQL).bind(self.up_to).fetch(pool),
        }
    }
}

/// The row operations one logged event makes.
fn fold_row(
    (position, stream_id, stream_version, event_type, payload, metadata, recorded_at): Row,
) -> Result<Vec<RowOp>, ProjectorError> {
    let e = StoredEvent {
        position,
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
    row_ops(&e).map_err(|source| ProjectorError::Decode { position, source })
}

/// Folds the whole log (or up to `up_to`) into `model`, calling `progress(done, total)`
/// as it goes. Returns the position of the last event folded.
pub async fn replay_all(
    db: &Db,
    up_to: Option<i64>,
    model: &mut ReadModel,
    mut progress: impl FnMut(i64, i64),
) -> Result<i64, ProjectorError> {
    let total = match up_to {
        Some(p) => p,
        None => db.head().await?,
    };
    let mut reader = LogReader::open(db, total).await?;
    let mut rows = reader.rows();
    let mut position = 0;
    while let Some(row) = rows.try_next().await? {
        position = row.0;
        for op in fold_row(row)? {
            model.apply(op);
        }
        if position % PROGRESS_EVERY == 0 {
            progress(position, total);
        }
    }
    progress(position, total);
    Ok(position)
}

/// What the replay hands the writing task.
enum Feed {
    /// The next rows of the history and the event index.
    Rows(Vec<HistoryRow>, Vec<IndexRow>),
    /// The replay is complete: the other views, then commit.
    Finish(Box<ReadModel>),
}

/// Replaces every read model with a fresh replay of the log, in one transaction:
/// readers see the old models until the new ones are complete. Returns the position of
/// the last event folded; `progress(done, total)` reports the replay.
pub async fn rebuild(db: &Db, mut progress: impl FnMut(i64, i64)) -> Result<i64, ProjectorError> {
    let total = db.head().await?;
    let started = std::time::Instant::now();
    let (feed, rx) = mpsc::channel(4);
    let writer = tokio::spawn(write_models(db.clone(), total, rx));
    let replayed = replay_into(db, total, feed, &mut progress).await;
    // The writer ends on its own: committed after `Finish`, rolled back when the
    // replay stopped early (its channel closed).
    let written = writer.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    // A writer that failed closed the channel under the replay: its error is the cause.
    written?;
    let position = replayed?;
    tracing::info!(events = position, ms = started.elapsed().as_millis() as u64, "read models rebuilt");
    Ok(position)
}

/// The reading side of [`rebuild`]: folds the log and feeds the writer.
async fn replay_into(
    db: &Db,
    total: i64,
    feed: mpsc::Sender<Feed>,
    progress: &mut impl FnMut(i64, i64),
) -> Result<i64, ProjectorError> {
    let mut model = ReadModel::default();
    let (mut history, mut index) = (Vec::with_capacity(CHUNK_ROWS), Vec::with_capacity(CHUNK_ROWS));
    let mut reader = LogReader::open(db, total).await?;
    let mut rows = reader.rows();
    let mut position = 0;
    // Only seen when the writer has failed, and then its own error is reported instead.
    let hung_up = || ProjectorError::Database(sqlx::Error::WorkerCrashed);
    while let Some(row) = rows.try_next().await? {
        position = row.0;
        for op in fold_row(row)? {
            match op {
                RowOp::History(row) => history.push(row),
                RowOp::Index(row) => index.push(row),
                op => model.apply(op),
            }
        }
        if history.len() + index.len() >= CHUNK_ROWS {
            let chunk = Feed::Rows(std::mem::take(&mut history), std::mem::take(&mut index));
            // A closed channel means the writer failed; its error is the one reported.
            feed.send(chunk).await.map_err(|_| hung_up())?;
        }
        if position % PROGRESS_EVERY == 0 {
            progress(position, total);
        }
    }
    feed.send(Feed::Rows(history, index)).await.map_err(|_| hung_up())?;
    feed.send(Feed::Finish(Box::new(model))).await.map_err(|_| hung_up())?;
    progress(position, total);
    Ok(position)
}

/// The writing side of [`rebuild`]: one transaction that claims the checkpoint, empties
/// the tables, takes the rows as they come, and commits after `Finish`.
async fn write_models(db: Db, position: i64, mut feed: mpsc::Receiver<Feed>) -> Result<(), ProjectorError> {
    match db.pool() {
        Pool::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            // Millions of rows: a page cache larger than SQLite's 2 MB default for this
            // transaction, and the default back after.
            sqlx::query("PRAGMA cache_size = -262144").execute(&mut *conn).await?;
            let written = write_sqlite(&mut conn, position, &mut feed).await;
            sqlx::query("PRAGMA cache_size = -2000").execute(&mut *conn).await?;
            written
        }
        Pool::Postgres(pool) => write_postgres(pool, position, &mut feed).await,
    }
}

/// Every read-model table with its columns and the rows `model` holds for it.
fn tables(model: &ReadModel) -> Vec<(&'static str, &'static str, Box<dyn Iterator<Item = Vec<Cell>> + Send + '_>)> {
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
        (
            change_requests::TABLE,
            change_requests::COLUMNS,
            Box::new(model.change_requests.requests.values().map(|r| r.cells())),
        ),
        (
            change_requests::ACTIVITY_TABLE,
            change_requests::ACTIVITY_COLUMNS,
            Box::new(model.change_requests.activity.values().map(|r| r.cells())),
        ),
        (webhooks::TABLE, webhooks::COLUMNS, Box::new(model.webhooks.values().map(|r| r.cells()))),
        (test_cases::TABLE, test_cases::COLUMNS, Box::new(model.test_cases.values().map(|r| r.cells()))),
        (evaluations::TABLE, evaluations::COLUMNS, Box::new(model.evaluations.values().map(|r| r.cells()))),
        (
            change_requests::PROMPTS_TABLE,
            change_requests::PROMPTS_COLUMNS,
            Box::new(
                model.change_requests.prompts.iter().map(|(r, p)| vec![Cell::Text(r.clone()), Cell::Text(p.clone())]),
            ),
        ),
    ]
}

/// `READ_MODEL_TABLES` as an SQL list of string literals.
fn table_list() -> String {
    READ_MODEL_TABLES.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
}

/// SQLite: multi-row inserts in one `BEGIN IMMEDIATE` transaction, secondary indexes
/// built after the rows.
async fn write_sqlite(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    position: i64,
    feed: &mut mpsc::Receiver<Feed>,
) -> Result<(), ProjectorError> {
    use sqlx::Connection;
    let mut tx = Tx::Sqlite(conn.begin_with("BEGIN IMMEDIATE").await?);
    checkpoints::claim(&mut tx, READ_MODELS, position).await?;
    let Tx::Sqlite(t) = &mut tx else { unreachable!("a SQLite transaction") };
    for table in READ_MODEL_TABLES {
        sqlx::query(&format!("DELETE FROM {table}")).execute(&mut **t).await?;
    }
    // Indexes declared with CREATE INDEX (those of primary keys and UNIQUE constraints
    // have no SQL and stay).
    let indexes: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({})",
        table_list()
    ))
    .fetch_all(&mut **t)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX \"{name}\"")).execute(&mut **t).await?;
    }
    while let Some(next) = feed.recv().await {
        match next {
            Feed::Rows(history, index) => {
                insert_rows(&mut tx, history::TABLE, history::COLUMNS, history.into_iter().map(|r| r.cells())).await?;
                insert_rows(&mut tx, index::TABLE, index::COLUMNS, index.into_iter().map(|r| r.cells())).await?;
            }
            Feed::Finish(model) => {
                for (table, columns, rows) in tables(&model) {
                    insert_rows(&mut tx, table, columns, rows).await?;
                }
                let Tx::Sqlite(t) = &mut tx else { unreachable!("a SQLite transaction") };
                for (_, sql) in &indexes {
                    sqlx::query(sql).execute(&mut **t).await?;
                }
                tx.commit().await?;
                return Ok(());
            }
        }
    }
    // The replay stopped early: dropping the transaction rolls it back.
    Ok(())
}

/// PostgreSQL: `COPY` into index-less twins of the tables, indexes built once at the end
/// and the twins swapped in ([`crate::shadow`]), in one transaction that also tells
/// waiting API servers the new position.
async fn write_postgres(
    pool: &sqlx::PgPool,
    position: i64,
    feed: &mut mpsc::Receiver<Feed>,
) -> Result<(), ProjectorError> {
    let mut tx = Tx::Postgres(pool.begin().await?);
    checkpoints::claim(&mut tx, READ_MODELS, position).await?;
    let Tx::Postgres(t) = &mut tx else { unreachable!("a PostgreSQL transaction") };
    for table in READ_MODEL_TABLES {
        shadow::create_twin(t, table).await?;
    }
    while let Some(next) = feed.recv().await {
        let Tx::Postgres(t) = &mut tx else { unreachable!("a PostgreSQL transaction") };
        match next {
            Feed::Rows(history, index) => {
                let rows = history.into_iter().map(|r| r.cells());
                copy_rows(t, &shadow::twin(history::TABLE), history::COLUMNS, rows).await?;
                let rows = index.into_iter().map(|r| r.cells());
                copy_rows(t, &shadow::twin(index::TABLE), index::COLUMNS, rows).await?;
            }
            Feed::Finish(model) => {
                for (table, columns, rows) in tables(&model) {
                    copy_rows(t, &shadow::twin(table), columns, rows).await?;
                }
                for table in READ_MODEL_TABLES {
                    shadow::swap_in(t, table).await?;
                }
                checkpoints::notify_projected(&mut tx, position).await?;
                tx.commit().await?;
                return Ok(());
            }
        }
    }
    Ok(())
}
