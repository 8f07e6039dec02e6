//! The event log: the only source of truth. [`EventLog`] is what every part of
//! PromptOS asks of it; [`Db`] implements it on a native SQLite or PostgreSQL pool.
//!
//! Appending is in [`crate::append`]; here are reading, checking the hash chain, and
//! importing a log that already carries its positions and hashes.

use crate::append::{AppendError, Appended, Group};
use crate::bulk;
use crate::db::{Db, Pool};
use crate::event::{StoredEvent, EVENT_COLUMNS, GENESIS_HASH};
use promptos_core::catalog::Catalog;
use serde::Serialize;

/// What the log offers. One suite of tests (`store/tests/log.rs`) runs against it on
/// both databases, so they cannot drift.
#[allow(async_fn_in_trait)]
pub trait EventLog {
    /// Appends each group of requests atomically (all of its requests' events, or
    /// none), in one transaction under the append lock, after the catalog admitted them.
    /// Each group succeeds, conflicts or is refused on its own; an error of the database
    /// fails the whole batch and writes nothing.
    async fn append_batch(
        &self,
        groups: &[Group],
        catalog: &mut Catalog,
    ) -> Result<Vec<Result<Vec<Appended>, AppendError>>, sqlx::Error>;

    /// Events with a position above `after`, in order, at most `limit`.
    async fn read_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error>;

    /// One stream's events with a stream version above `after_version`.
    async fn read_stream(&self, stream_id: &str, after_version: i64) -> Result<Vec<StoredEvent>, sqlx::Error>;

    /// The highest position (0 when the log is empty).
    async fn head(&self) -> Result<i64, sqlx::Error>;

    /// Appends events that already carry their positions and hashes (a backup, or a log
    /// generated elsewhere) in one transaction under the append lock. Each must continue
    /// the log exactly. Returns the new head.
    async fn import(&self, events: &[StoredEvent]) -> Result<i64, ImportError>;

    /// Walks the whole log checking positions, back-links and hashes; stops at the first
    /// event that is wrong. `progress` is called with the number of events checked.
    async fn verify_chain(&self, mut progress: impl FnMut(i64)) -> Result<ChainReport, sqlx::Error> {
        let mut expected_prev = GENESIS_HASH.to_owned();
        let mut expected_position = 1;
        let mut checked = 0;
        loop {
            let batch = self.read_after(expected_position - 1, 5000).await?;
            if batch.is_empty() {
                return Ok(ChainReport { events_checked: checked, first_bad: None });
            }
            for e in batch {
                let bad = |reason: String| BadEvent { position: e.position, event_id: e.event_id.clone(), reason };
                let problem = if e.position != expected_position {
                    Some(bad(format!(
                        "position {} follows {}: event(s) {}..{} are missing",
                        e.position,
                        expected_position - 1,
                        expected_position,
                        e.position - 1
                    )))
                } else if e.prev_hash != expected_prev {
                    Some(bad("its prev_hash does not match the hash of the event before it".into()))
                } else if e.hash != e.expected_hash() {
                    Some(bad("its content does not match its hash: the row was edited".into()))
                } else {
                    None
                };
                if let Some(first_bad) = problem {
                    return Ok(ChainReport { events_checked: checked, first_bad: Some(first_bad) });
                }
                expected_prev = e.hash.clone();
                expected_position += 1;
                checked += 1;
            }
            progress(checked);
        }
    }
}

/// What checking the chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub events_checked: i64,
    /// The first event that does not fit the chain, and why.
    pub first_bad: Option<BadEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadEvent {
    pub position: i64,
    pub event_id: String,
    pub reason: String,
}

/// Why a batch of stored events cannot be appended to this log as they are.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {position} does not continue the log: {reason}")]
    Discontinuous { position: i64, reason: String },
}

const READ_AFTER: &str = "SELECT position, stream_id, stream_version, event_id, event_type, payload, metadata, \
     recorded_at, prev_hash, hash FROM events WHERE position > $1 ORDER BY position LIMIT $2";
const READ_STREAM: &str = "SELECT position, stream_id, stream_version, event_id, event_type, payload, metadata, \
     recorded_at, prev_hash, hash FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version";
const HEAD: &str = "SELECT COALESCE(MAX(position), 0) FROM events";
const TAIL: &str = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";

impl EventLog for Db {
    async fn append_batch(
        &self,
        groups: &[Group],
        catalog: &mut Catalog,
    ) -> Result<Vec<Result<Vec<Appended>, AppendError>>, sqlx::Error> {
        crate::append::append_batch(self, groups, catalog).await
    }

    async fn read_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
        crate::on_pool!(self, pool => sqlx::query_as(READ_AFTER).bind(after).bind(limit).fetch_all(pool).await)
    }

    async fn read_stream(&self, stream_id: &str, after_version: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
        crate::on_pool!(self, pool => {
            sqlx::query_as(READ_STREAM).bind(stream_id).bind(after_version).fetch_all(pool).await
        })
    }

    async fn head(&self) -> Result<i64, sqlx::Error> {
        crate::on_pool!(self, pool => sqlx::query_scalar(HEAD).fetch_one(pool).await)
    }

    async fn import(&self, events: &[StoredEvent]) -> Result<i64, ImportError> {
        match self.pool() {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // A bulk load touches index pages all over: give this connection a large
                // page cache for the duration (SQLite's default is 2 MB), and the default
                // back after.
                sqlx::query("PRAGMA cache_size = -262144").execute(&mut *conn).await?;
                let result = async {
                    use sqlx::Connection;
                    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                    let tail: Option<(i64, String)> = sqlx::query_as(TAIL).fetch_optional(&mut *tx).await?;
                    let head = continues(tail, events)?;
                    bulk::insert_sqlite(&mut tx, "events", EVENT_COLUMNS, events.iter().map(StoredEvent::cells), "")
                        .await?;
                    tx.commit().await?;
                    Ok(head)
                }
                .await;
                sqlx::query("PRAGMA cache_size = -2000").execute(&mut *conn).await?;
                result
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                crate::append::lock_postgres(&mut tx).await?;
                let tail: Option<(i64, String)> = sqlx::query_as(TAIL).fetch_optional(&mut *tx).await?;
                let head = continues(tail, events)?;
                bulk::copy_rows(&mut tx, "events", EVENT_COLUMNS, events.iter().map(StoredEvent::cells)).await?;
                if !events.is_empty() {
                    crate::append::notify_appended(&mut tx, head).await?;
                }
                tx.commit().await?;
                Ok(head)
            }
        }
    }
}

/// Checks that `events` continue the log whose last event is `tail` (position, hash):
/// each the next position, linked to the hash before it, with a hash that matches its
/// content. Returns the position of the last one.
fn continues(tail: Option<(i64, String)>, events: &[StoredEvent]) -> Result<i64, ImportError> {
    let (mut position, mut prev) = tail.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
    for e in events {
        let wrong = |reason: String| ImportError::Discontinuous { position: e.position, reason };
        if e.position != position + 1 {
            return Err(wrong(format!("expected position {}", position + 1)));
        }
        if e.prev_hash != prev {
            return Err(wrong("its prev_hash is not the hash of the event before it".into()));
        }
        if e.hash != e.expected_hash() {
            return Err(wrong("its content does not match its hash".into()));
        }
        position = e.position;
        prev = e.hash.clone();
    }
    Ok(position)
}
