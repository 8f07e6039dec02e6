//! Reading the event log and checking its hash chain.

use crate::db::Db;
use promptos_core::events::{DecodeError, Event};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The hash the first event in the log points back to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who caused an event and in answer to which request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `user:<name>`, `api_key:<id>`, `system` or `anonymous`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Metadata {
    pub fn new(actor: impl Into<String>) -> Self {
        Self { actor: actor.into(), request_id: None }
    }
}

/// One row of the log, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: String,
    pub prev_hash: String,
    pub hash: String,
}

pub(crate) const EVENT_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
     payload, metadata, recorded_at, prev_hash, hash";

impl StoredEvent {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            position: row.try_get(0)?,
            stream_id: row.try_get(1)?,
            stream_version: row.try_get(2)?,
            event_id: row.try_get(3)?,
            event_type: row.try_get(4)?,
            payload: row.try_get(5)?,
            metadata: row.try_get(6)?,
            recorded_at: row.try_get(7)?,
            prev_hash: row.try_get(8)?,
            hash: row.try_get(9)?,
        })
    }

    pub fn decode(&self) -> Result<Event, DecodeError> {
        Event::decode(&self.event_type, &self.payload)
    }

    pub fn metadata(&self) -> Metadata {
        serde_json::from_str(&self.metadata).unwrap_or_else(|_| Metadata::new("unknown"))
    }

    /// The hash this row should carry, given its content and `prev_hash`.
    pub fn expected_hash(&self) -> String {
        chain_hash(
            &self.prev_hash,
            self.position,
            &self.stream_id,
            self.stream_version,
            &self.event_id,
            &self.event_type,
            &self.payload,
            &self.metadata,
            &self.recorded_at,
        )
    }
}

/// SHA-256 over the previous hash and every stored field, each length-prefixed so that
/// no two different rows hash the same bytes.
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev_hash: &str,
    position: i64,
    stream_id: &str,
    stream_version: i64,
    event_id: &str,
    event_type: &str,
    payload: &str,
    metadata: &str,
    recorded_at: &str,
) -> String {
    let mut h = Sha256::new();
    let position = position.to_string();
    let stream_version = stream_version.to_string();
    for field in
        [prev_hash, &position, stream_id, &stream_version, event_id, event_type, payload, metadata, recorded_at]
    {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Reads events with a position above `after`, in order.
pub async fn read_after(db: &Db, after: i64, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
    let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// Reads one stream's events with a stream version above `after_version`.
pub async fn read_stream(db: &Db, stream_id: &str, after_version: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2 \
         ORDER BY stream_version"
    );
    let rows = sqlx::query(&sql).bind(stream_id).bind(after_version).fetch_all(&db.pool).await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// The highest position in the log (0 when empty).
pub async fn head(db: &Db) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT COALESCE(MAX(position), 0) FROM events").fetch_one(&db.pool).await?;
    row.try_get(0)
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

/// Walks the whole log checking positions, back-links and hashes; stops at the first
/// event that is wrong. `progress` is called with the number of events checked.
pub async fn verify_chain(db: &Db, mut progress: impl FnMut(i64)) -> Result<ChainReport, sqlx::Error> {
    let mut expected_prev = GENESIS_HASH.to_owned();
    let mut expected_position = 1;
    let mut checked = 0;
    loop {
        let batch = read_after(db, expected_position - 1, 5000).await?;
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

/// Why a batch of stored events cannot be appended to this log as they are.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {position} does not continue the log: {reason}")]
    Discontinuous { position: i64, reason: String },
}

/// Appends events that already carry their positions and hashes (a backup, or a log
/// generated elsewhere), many rows per statement, in one transaction under the append
/// lock. Each must continue the log exactly: the next position, the back-link to the
/// hash before it, and a hash that matches its content. Returns the new head.
pub async fn import(db: &Db, events: &[StoredEvent]) -> Result<i64, ImportError> {
    use crate::db::Backend;
    use sqlx::Connection;
    const TAIL: &str = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";
    match db.backend {
        Backend::Sqlite => {
            let mut conn = db.pool.acquire().await?;
            // A bulk load touches index pages all over: give this connection a large page
            // cache for the duration (SQLite's default is 2 MB), and the default back after.
            sqlx::query("PRAGMA cache_size = -262144").execute(&mut *conn).await?;
            let result = async {
                let mut tx = crate::writer::begin_append(db, &mut conn).await?;
                let tail: Option<(i64, String)> = sqlx::query_as(TAIL).fetch_optional(&mut *tx).await?;
                let head = continues(tail, events)?;
                crate::projection::insert_many(&mut tx, "events", EVENT_COLUMNS, events.iter().map(StoredEvent::cells))
                    .await?;
                tx.commit().await?;
                Ok(head)
            }
            .await;
            sqlx::query("PRAGMA cache_size = -2000").execute(&mut *conn).await?;
            result
        }
        Backend::Postgres => {
            // COPY on a native connection: rows stream as text, without a bound
            // parameter per value.
            let mut conn = sqlx::PgConnection::connect(db.url()).await?;
            let mut tx = crate::writer::begin_append_pg(&mut conn).await?;
            let tail: Option<(i64, String)> = sqlx::query_as(TAIL).fetch_optional(&mut *tx).await?;
            let head = continues(tail, events)?;
            crate::projection::copy_many(&mut tx, "events", EVENT_COLUMNS, events.iter().map(StoredEvent::cells))
                .await?;
            if !events.is_empty() {
                sqlx::query("SELECT 1 FROM pg_notify('promptos_events', $1)")
                    .bind(head.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(head)
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

impl StoredEvent {
    pub(crate) fn cells(&self) -> Vec<crate::projection::Cell> {
        use crate::projection::Cell::*;
        vec![
            Int(self.position),
            Text(self.stream_id.clone()),
            Int(self.stream_version),
            Text(self.event_id.clone()),
            Text(self.event_type.clone()),
            Text(self.payload.clone()),
            Text(self.metadata.clone()),
            Text(self.recorded_at.clone()),
            Text(self.prev_hash.clone()),
            Text(self.hash.clone()),
        ]
    }
}
