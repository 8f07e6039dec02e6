//! Appending to the log.
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
//! it. The price is one writer at a time, which [`Writer`] pays back by batching: the
//! requests that queue while one transaction commits go into the next one together
//! (group commit).
//!
//! # Rules that span prompts
//! Inside the same lock each request's events are also admitted by the [`Catalog`]
//! (includes resolve where a version is served, a prompt still included is not
//! deleted, …). The catalog is folded from the log; before it decides, it reads
//! whatever other processes appended since it last looked, so it decides on the exact
//! log at that moment and two racing commands on different prompts cannot both pass.

use crate::db::{Backend, Db};
use crate::log::{chain_hash, Metadata, StoredEvent, GENESIS_HASH};
use chrono::Utc;
use futures::TryStreamExt;
use promptos_core::catalog::{Catalog, Undo};
use promptos_core::{DomainError, Event};
use sqlx::{Connection, Row};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot, watch};

/// Key of the PostgreSQL advisory lock that serialises appends.
const APPEND_LOCK_KEY: i64 = 0x5052_4f4d_5054_0001;
/// Most requests committed in one transaction.
const MAX_BATCH: usize = 256;

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

enum Job {
    Append(AppendRequest, oneshot::Sender<Result<Appended, AppendError>>),
    /// Fold the log into the catalog ahead of the first write.
    Prepare,
}

/// Handle to the task that owns appends for this process.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<i64>,
}

impl Writer {
    /// Starts the writer task. It ends when the last handle is dropped.
    pub fn start(db: Db) -> Self {
        let (jobs, rx) = mpsc::channel(4096);
        let (head_tx, head) = watch::channel(0);
        tokio::spawn(run(db, rx, head_tx));
        Self { jobs, head }
    }

    /// Folds the log into the writer's catalog now, in the background, so that the
    /// first write after a start on a long log does not wait for it (a server calls it
    /// once at start; without it the first write that needs the catalog folds it).
    pub fn prepare(&self) {
        let _ = self.jobs.try_send(Job::Prepare);
    }

    /// Appends the request's events atomically, or none of them.
    pub async fn append(&self, request: AppendRequest) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Append(request, reply))
            .await
            .map_err(|_| AppendError::Unavailable("the writer has stopped".into()))?;
        answer.await.map_err(|_| AppendError::Unavailable("the writer has stopped".into()))?
    }

    /// The highest position this process has appended; changes after every commit.
    pub fn appended(&self) -> watch::Receiver<i64> {
        self.head.clone()
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Job>, head: watch::Sender<i64>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut catalog = Catalog::default();
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let mut requests = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            match job {
                Job::Append(request, reply) => {
                    requests.push(request);
                    replies.push(reply);
                }
                Job::Prepare => {
                    if let Err(e) = prepare(&db, &mut catalog).await {
                        tracing::warn!(error = %e, "could not read the log ahead of the first write; it will be read then");
                    }
                }
            }
        }
        if requests.is_empty() {
            continue;
        }
        match append_batch(&db, &requests, &mut catalog).await {
            Ok(results) => {
                let last = results.iter().filter_map(|r| r.as_ref().ok()).map(Appended::last_position).max();
                if let Some(last) = last {
                    head.send_if_modified(|h| {
                        let moved = last > *h;
                        *h = (*h).max(last);
                        moved
                    });
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "append transaction failed; nothing was written");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// Timestamps are stored as fixed-width UTC text so that they sort and compare the same
/// way on both databases.
pub fn format_timestamp(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Begins a transaction that holds the global append lock until it ends (see the
/// module docs): every write to the log goes through here.
pub(crate) async fn begin_append<'c>(
    db: &Db,
    conn: &'c mut sqlx::AnyConnection,
) -> Result<sqlx::Transaction<'c, sqlx::Any>, sqlx::Error> {
    match db.backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => {
            let mut tx = conn.begin().await?;
            sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)").bind(APPEND_LOCK_KEY).execute(&mut *tx).await?;
            Ok(tx)
        }
    }
}

/// A PostgreSQL transaction on a native connection that holds the append lock, for
/// bulk loads that write with `COPY` (which the generic driver cannot).
pub(crate) async fn begin_append_pg(
    conn: &mut sqlx::PgConnection,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)").bind(APPEND_LOCK_KEY).execute(&mut *tx).await?;
    Ok(tx)
}

/// Events folded into the catalog per read while preparing it.
const PREPARE_PAGE: i64 = 10_000;

/// Folds the log into `catalog` up to its current end, outside the append lock.
async fn prepare(db: &Db, catalog: &mut Catalog) -> Result<(), sqlx::Error> {
    loop {
        let page = crate::log::read_after(db, catalog.position(), PREPARE_PAGE).await?;
        let Some(last) = page.last().map(|e| e.position) else { return Ok(()) };
        for e in &page {
            fold(catalog, e);
        }
        catalog.set_position(last);
    }
}

fn fold(catalog: &mut Catalog, e: &StoredEvent) {
    if !e.stream_id.starts_with("prompt:") {
        return;
    }
    match e.decode() {
        Ok(event) => catalog.apply(&event),
        Err(err) => tracing::error!(position = e.position, error = %err, "an event in the log does not decode"),
    }
}

/// Appends a batch in one transaction. Each request succeeds, conflicts or is refused
/// by the catalog on its own; an error of the database fails the whole batch and writes
/// nothing (and leaves the catalog as it was).
pub async fn append_batch(
    db: &Db,
    requests: &[AppendRequest],
    catalog: &mut Catalog,
) -> Result<Vec<Result<Appended, AppendError>>, sqlx::Error> {
    let mut admitted = Vec::new();
    let result = append_admitted(db, requests, catalog, &mut admitted).await;
    match &result {
        Ok(_) => {}
        Err(_) => {
            for undo in admitted.into_iter().rev() {
                catalog.undo(undo);
            }
        }
    }
    result
}

async fn append_admitted(
    db: &Db,
    requests: &[AppendRequest],
    catalog: &mut Catalog,
    admitted: &mut Vec<Undo>,
) -> Result<Vec<Result<Appended, AppendError>>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    let mut tx = begin_append(db, &mut conn).await?;
    let tail = sqlx::query("SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    let (mut position, mut prev_hash, last_time) = match tail {
        Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?),
        None => (0, GENESIS_HASH.to_owned(), String::new()),
    };
    // The catalog decides only for prompts. When it is behind the log (another process
    // appended, or it was never read), it reads the rest here, under the lock: what it
    // decides on is then exactly the log these events follow.
    let touches_prompts = requests.iter().any(|r| r.stream_id.starts_with("prompt:"));
    if touches_prompts && catalog.position() < position {
        let sql = format!("SELECT {} FROM events WHERE position > $1 ORDER BY position", crate::log::EVENT_COLUMNS);
        let mut rows = sqlx::query(&sql).bind(catalog.position()).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            fold(catalog, &StoredEvent::from_row(&row)?);
        }
        drop(rows);
        catalog.set_position(position);
    }
    // Recorded times never go backwards along the log, even if the clock does, so that
    // "what was live at time t" has one answer.
    let recorded_at = format_timestamp(Utc::now()).max(last_time);

    // Every stream's current version in one query, and every event in one insert: a
    // batch costs a few statements, not a few per request.
    let mut streams: Vec<&str> = requests.iter().map(|r| r.stream_id.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let list: Vec<String> = (1..=streams.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT stream_id, MAX(stream_version) FROM events WHERE stream_id IN ({}) GROUP BY stream_id",
        list.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for s in &streams {
        query = query.bind(*s);
    }
    let mut versions: HashMap<&str, i64> = streams.iter().map(|s| (*s, 0)).collect();
    for row in query.fetch_all(&mut *tx).await? {
        let stream: String = row.try_get(0)?;
        if let Some((key, _)) = versions.remove_entry(stream.as_str()) {
            versions.insert(key, row.try_get(1)?);
        }
    }
    let mut written: Vec<StoredEvent> = Vec::new();
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        let current = versions[request.stream_id.as_str()];
        if current != request.expected_version {
            versions.insert(&request.stream_id, current);
            results.push(Err(AppendError::Conflict {
                stream_id: request.stream_id.clone(),
                expected: request.expected_version,
                actual: current,
            }));
            continue;
        }
        if touches_prompts {
            match catalog.admit(&request.events) {
                Ok(undo) => admitted.extend(undo),
                Err(refusal) => {
                    results.push(Err(AppendError::Refused(refusal)));
                    continue;
                }
            }
        }
        let metadata = serde_json::to_string(&request.metadata).expect("metadata serializes");
        let mut stream_version = current;
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
        results.push(Ok(Appended { events: stored }));
    }
    crate::projection::insert_many(
        &mut tx,
        "events",
        crate::log::EVENT_COLUMNS,
        written.iter().map(StoredEvent::cells),
    )
    .await?;
    if db.backend == Backend::Postgres && results.iter().any(|r| r.is_ok()) {
        // Delivered on commit to projectors running in other processes.
        sqlx::query("SELECT 1 FROM pg_notify('promptos_events', $1)")
            .bind(position.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if touches_prompts {
        // Everything up to here is in the catalog now: what others appended before us
        // and what this batch admitted.
        catalog.set_position(position);
    }
    Ok(results)
}
