//! Appending a batch to the log, in one transaction under the append lock.
//!
//! # Why a follower never skips an event
//! On PostgreSQL a sequence hands out values before commit, so with sequence-assigned
//! positions transaction B could commit position 11 while A still holds 10; a projector
//! that read "everything after 9", saw 11 and moved its checkpoint to 11 would never see
//! 10. We avoid the race instead of detecting it: every append transaction first takes
//! one global append lock (`pg_advisory_xact_lock` on PostgreSQL, the database write lock
//! taken by `BEGIN IMMEDIATE` on SQLite) and holds it until it commits. Inside the lock it
//! reads the head of the log and numbers its events head+1, head+2, … So positions are
//! assigned and committed strictly in order: when a reader can see position n, every
//! position below n has committed already. The same lock makes the hash chain
//! well-defined: each event's `prev_hash` is the hash of the event that really precedes
//! it.
//!
//! # Rules that span prompts
//! Inside the same lock each request's events are also admitted by the [`Catalog`]
//! (includes resolve where a version is served, a prompt still included is not
//! deleted, …). The catalog is folded from the log; before it decides, it reads
//! whatever other processes appended since it last looked, so it decides on the exact
//! log at that moment and two racing commands on different prompts cannot both pass.

use crate::bulk;
use crate::db::{Db, Tx};
use crate::event::{chain_hash, format_timestamp, Metadata, StoredEvent, EVENT_COLUMNS, GENESIS_HASH};
use chrono::Utc;
use futures::TryStreamExt;
use promptos_core::catalog::{Catalog, Undo};
use promptos_core::{DomainError, Event};
use std::collections::HashMap;

/// Key of the PostgreSQL advisory lock that serialises appends.
const APPEND_LOCK_KEY: i64 = 0x5052_4f4d_5054_0001;

/// Events for one stream, to be appended only if the stream is still at
/// `expected_version` (0 for a stream with no events).
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub stream_id: String,
    pub expected_version: i64,
    pub events: Vec<Event>,
    pub metadata: Metadata,
}

/// What was written, in log order.
#[derive(Debug, Clone)]
pub struct Appended {
    pub events: Vec<StoredEvent>,
}

impl Appended {
    pub fn last_position(&self) -> i64 {
        self.events.last().map_or(0, |e| e.position)
    }
    pub fn stream_version(&self) -> i64 {
        self.events.last().map_or(0, |e| e.stream_version)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("stream {stream_id} changed concurrently: expected version {expected}, found {actual}")]
    Conflict { stream_id: String, expected: i64, actual: i64 },
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// A rule that spans prompts refused the events; nothing was written.
    #[error(transparent)]
    Refused(DomainError),
}

/// Takes the append lock inside a PostgreSQL transaction (held until it ends).
pub(crate) async fn lock_postgres(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(APPEND_LOCK_KEY).execute(conn).await.map(|_| ())
}

/// Tells projectors in other processes, on commit, that the log grew to `head`.
pub(crate) async fn notify_appended(conn: &mut sqlx::PgConnection, head: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify('promptos_events', $1)").bind(head.to_string()).execute(conn).await.map(|_| ())
}

/// A transaction holding the append lock.
async fn begin_locked(db: &Db) -> Result<Tx<'static>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    if let Tx::Postgres(t) = &mut tx {
        lock_postgres(t).await?;
    }
    Ok(tx)
}

/// Folds one event of the log into the catalog (events of other streams than prompts
/// only move its position).
pub(crate) fn fold(catalog: &mut Catalog, e: &StoredEvent) {
    if !e.stream_id.starts_with("prompt:") {
        return;
    }
    match e.decode() {
        Ok(event) => catalog.apply(&event),
        Err(err) => tracing::error!(position = e.position, error = %err, "an event in the log does not decode"),
    }
}

/// Requests appended together or not at all (each on its own stream).
pub type Group = Vec<AppendRequest>;

/// See [`EventLog::append_batch`]. On an error of the database the catalog is left as
/// it was.
pub(crate) async fn append_batch(
    db: &Db,
    groups: &[Group],
    catalog: &mut Catalog,
) -> Result<Vec<Result<Vec<Appended>, AppendError>>, sqlx::Error> {
    let mut admitted = Vec::new();
    let result = append_admitted(db, groups, catalog, &mut admitted).await;
    if result.is_err() {
        for undo in admitted.into_iter().rev() {
            catalog.undo(undo);
        }
    }
    result
}

async fn append_admitted(
    db: &Db,
    groups: &[Group],
    catalog: &mut Catalog,
    admitted: &mut Vec<Undo>,
) -> Result<Vec<Result<Vec<Appended>, AppendError>>, sqlx::Error> {
    let requests: Vec<&AppendRequest> = groups.iter().flatten().collect();
    let mut tx = begin_locked(db).await?;
    let tail: Option<(i64, String, String)> = crate::on_tx!(&mut tx, conn => {
        sqlx::query_as("SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(conn)
            .await
    })?;
    let (mut position, mut prev_hash, last_time) = tail.unwrap_or_else(|| (0, GENESIS_HASH.to_owned(), String::new()));
    // Recorded times never go backwards along the log, even if the clock does, so that
    // "what was live at time t" has one answer.
    let recorded_at = format_timestamp(Utc::now()).max(last_time);

    // The catalog decides only for prompts. When it is behind the log (another process
    // appended, or it was never read), it reads the rest here, under the lock: what it
    // decides on is then exactly the log these events follow.
    let touches_prompts = requests.iter().any(|r| r.stream_id.starts_with("prompt:"));
    if touches_prompts && catalog.position() < position {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position");
        crate::on_tx!(&mut tx, conn => {
            let mut rows = sqlx::query_as::<_, StoredEvent>(&sql).bind(catalog.position()).fetch(conn);
            while let Some(e) = rows.try_next().await? {
                fold(catalog, &e);
            }
        });
        catalog.set_position(position);
    }

    // Every stream's current version in one query, and every event in one insert: a
    // batch costs a few statements, not a few per request.
    let mut streams: Vec<&str> = requests.iter().map(|r| r.stream_id.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let found: Vec<(String, i64)> = crate::on_tx!(&mut tx, conn => {
        let mut q = sqlx::QueryBuilder::new("SELECT stream_id, MAX(stream_version) FROM events WHERE stream_id IN (");
        let mut list = q.separated(", ");
        for s in &streams {
            list.push_bind(*s);
        }
        q.push(") GROUP BY stream_id");
        q.build_query_as().fetch_all(conn).await
    })?;
    let mut versions: HashMap<&str, i64> = streams.iter().map(|s| (*s, 0)).collect();
    for (stream, version) in found {
        if let Some((key, _)) = versions.remove_entry(stream.as_str()) {
            versions.insert(key, version);
        }
    }

    let mut written: Vec<StoredEvent> = Vec::new();
    let mut results = Vec::with_capacity(groups.len());
    for group in groups {
        // All of a group's streams must be where its requests expect them…
        let conflict = group.iter().find(|r| versions[r.stream_id.as_str()] != r.expected_version);
        if let Some(r) = conflict {
            results.push(Err(AppendError::Conflict {
                stream_id: r.stream_id.clone(),
                expected: r.expected_version,
                actual: versions[r.stream_id.as_str()],
            }));
            continue;
        }
        // …and the catalog must admit every request, in order, or none.
        if touches_prompts {
            let mut undos = Vec::new();
            let mut refused = None;
            for request in group {
                match catalog.admit(&request.events) {
                    Ok(undo) => undos.extend(undo),
                    Err(refusal) => {
                        refused = Some(refusal);
                        break;
                    }
                }
            }
            if let Some(refusal) = refused {
                for undo in undos.into_iter().rev() {
                    catalog.undo(undo);
                }
                results.push(Err(AppendError::Refused(refusal)));
                continue;
            }
            admitted.extend(undos);
        }
        let mut appended = Vec::with_capacity(group.len());
        for request in group {
            let metadata = serde_json::to_string(&request.metadata).expect("metadata serializes");
            let mut stream_version = versions[request.stream_id.as_str()];
            let mut stored = Vec::with_capacity(request.events.len());
            for event in &request.events {
                position += 1;
                stream_version += 1;
                let mut e = StoredEvent {
                    position,
                    stream_id: request.stream_id.clone(),
                    stream_version,
                    // Time-ordered ids keep the unique index append-mostly as the log grows.
                    event_id: uuid::Uuid::now_v7().to_string(),
                    event_type: event.event_type().to_owned(),
                    payload: event.payload_json(),
                    metadata: metadata.clone(),
                    recorded_at: recorded_at.clone(),
                    prev_hash: std::mem::take(&mut prev_hash),
                    hash: String::new(),
                };
                e.hash = chain_hash(
                    &e.prev_hash,
                    e.position,
                    &e.stream_id,
                    e.stream_version,
                    &e.event_id,
                    &e.event_type,
                    &e.payload,
                    &e.metadata,
                    &e.recorded_at,
                );
                prev_hash = e.hash.clone();
                stored.push(e);
            }
            versions.insert(&request.stream_id, stream_version);
            written.extend(stored.iter().cloned());
            appended.push(Appended { events: stored });
        }
        results.push(Ok(appended));
    }
    bulk::insert_rows(&mut tx, "events", EVENT_COLUMNS, written.iter().map(StoredEvent::cells)).await?;
    if let Tx::Postgres(t) = &mut tx {
        if results.iter().any(|r| r.is_ok()) {
            // Delivered on commit to projectors running in other processes.
            notify_appended(t, position).await?;
        }
    }
    tx.commit().await?;
    if touches_prompts {
        // Everything up to here is in the catalog now: what others appended before us
        // and what this batch admitted.
        catalog.set_position(position);
    }
    Ok(results)
}
