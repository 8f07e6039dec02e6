//! The projector: follows the log from its checkpoint and folds each batch of events
//! into the read models, in one transaction with the checkpoint.
//!
//! A crash at any point leaves either the whole batch and its checkpoint committed or
//! neither, so on restart nothing is lost and nothing is applied twice. The checkpoint
//! is advanced with compare-and-set, so two projectors that race never apply a batch
//! twice either; on PostgreSQL a session advisory lock also keeps all but one of them
//! idle (standby) so they do not waste work.

use crate::checkpoints::{self, READ_MODELS};
use crate::views::{apply_sql, row_ops, Deferred};
use promptos_core::events::DecodeError;
use promptos_store::{Backend, Db, EventLog, StoredEvent};
use std::time::Duration;
use tokio::sync::watch;

const LEADER_LOCK_KEY: i64 = 0x5052_4f4d_5054_0002;

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event at position {position} cannot be projected: {source}")]
    Decode { position: i64, source: DecodeError },
    #[cfg(feature = "failpoints")]
    #[error("injected crash after {0} row operations (test failpoint)")]
    InjectedCrash(usize),
}

/// How the projector learns that the log grew.
pub enum Wakeup {
    /// From this process's writer.
    InProcess(watch::Receiver<i64>),
    /// PostgreSQL LISTEN on `promptos_events` (the writer NOTIFYs on commit).
    Listen,
    /// Neither is available (SQLite written by another process): look every interval.
    Poll(Duration),
}

#[derive(Debug, Clone)]
pub struct ProjectorOptions {
    pub batch_size: i64,
    /// Test failpoint: fail the transaction after this many row operations, as a crash
    /// in the middle of a batch would.
    #[cfg(feature = "failpoints")]
    pub crash_after_ops: Option<usize>,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            #[cfg(feature = "failpoints")]
            crash_after_ops: None,
        }
    }
}

pub struct Projector {
    db: Db,
    options: ProjectorOptions,
    progress: watch::Sender<i64>,
    publisher: Option<crate::publisher::Publisher>,
}

impl Projector {
    pub fn new(db: Db, options: ProjectorOptions) -> Self {
        let (progress, _) = watch::channel(0);
        Self { db, options, progress, publisher: None }
    }

    /// Also publish the change feed on NATS at `nats_url` while this projector is active.
    pub fn with_change_feed(mut self, nats_url: Option<String>) -> Self {
        self.publisher = nats_url.map(|url| crate::publisher::Publisher::new(self.db.clone(), url));
        self
    }

    /// The position the read models include, after each batch this projector commits.
    pub fn progress(&self) -> watch::Receiver<i64> {
        self.progress.subscribe()
    }

    /// Projects one batch. Returns how many events it applied (0 when caught up).
    pub async fn step(&self) -> Result<usize, ProjectorError> {
        let checkpoint = checkpoints::load(&self.db, READ_MODELS).await?;
        self.progress.send_if_modified(|p| {
            let moved = checkpoint > *p;
            *p = (*p).max(checkpoint);
            moved
        });
        let events = self.db.read_after(checkpoint, self.options.batch_size).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(0);
        };
        if self.project(checkpoint, &events).await? {
            self.progress.send_replace(last);
            tracing::debug!(from = checkpoint, to = last, "projected");
        }
        Ok(events.len())
    }

    /// Applies `events` (which follow `checkpoint`) and moves the checkpoint to the last
    /// of them. Returns false if another projector moved the checkpoint first.
    async fn project(&self, checkpoint: i64, events: &[StoredEvent]) -> Result<bool, ProjectorError> {
        let last = events.last().map_or(checkpoint, |e| e.position);
        let mut tx = self.db.begin_write().await?;
        if !checkpoints::advance(&mut tx, READ_MODELS, checkpoint, last).await? {
            return Ok(false);
        }
        #[cfg(feature = "failpoints")]
        let mut applied = 0;
        let mut deferred = Deferred::default();
        for e in events {
            let ops = row_ops(e).map_err(|source| ProjectorError::Decode { position: e.position, source })?;
            for op in ops {
                #[cfg(feature = "failpoints")]
                {
                    if self.options.crash_after_ops == Some(applied) {
                        return Err(ProjectorError::InjectedCrash(applied));
                    }
                    applied += 1;
                }
                if let Some(op) = deferred.defer(op) {
                    apply_sql(&mut tx, op).await?;
                }
            }
        }
        deferred.flush(&mut tx).await?;
        crate::outbox::enqueue(&mut tx, events, chrono::Utc::now().timestamp_millis()).await?;
        checkpoints::notify_projected(&mut tx, last).await?;
        tx.commit().await?;
        promptos_store::failpoint::hit("projector.after_commit");
        Ok(true)
    }

    /// Projects until the log is exhausted (for tests and tools).
    pub async fn catch_up(&self) -> Result<i64, ProjectorError> {
        while self.step().await? > 0 {}
        Ok(*self.progress.borrow())
    }

    /// Runs forever: project, then sleep until woken.
    pub async fn run(mut self, mut wakeup: Wakeup) {
        let _leadership = match self.db.backend() {
            Backend::Postgres => Some(self.become_leader().await),
            Backend::Sqlite => None,
        };
        // Only the active projector publishes, so standbys send no duplicates. The feed's
        // checkpoint is set before the first batch is projected: a batch projected
        // before it existed would otherwise never be published.
        if let Some(publisher) = self.publisher.take() {
            publisher.init().await;
            tokio::spawn(publisher.run(self.progress.subscribe()));
        }
        let mut listener = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.step().await {
                Ok(n) if n > 0 => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::error!(error = %e, "projector step failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            // Caught up: wait for the log to grow. The timeout is a safety net for
            // writes by other processes that we were not told about.
            let safety = Duration::from_secs(1);
            match &mut wakeup {
                Wakeup::InProcess(rx) => {
                    let _ = tokio::time::timeout(safety, rx.changed()).await;
                }
                Wakeup::Poll(every) => tokio::time::sleep(*every).await,
                Wakeup::Listen => {
                    if listener.is_none() {
                        listener = self.db.listen("promptos_events").await;
                    }
                    match listener.as_mut() {
                        Some(l) => {
                            if let Ok(Err(e)) = tokio::time::timeout(safety, l.recv()).await {
                                tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                                listener = None;
                            }
                        }
                        None => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        }
    }

    /// Waits until this process holds the projector lock (PostgreSQL), so that only one
    /// projector works at a time. The returned connection holds the lock until dropped.
    async fn become_leader(&self) -> Option<sqlx::PgConnection> {
        let mut announced = false;
        loop {
            match self.db.try_session_lock(LEADER_LOCK_KEY).await {
                Ok(Some(conn)) => {
                    tracing::info!("projector is active");
                    return Some(conn);
                }
                Ok(None) => {
                    if !announced {
                        tracing::info!("another projector is active; standing by");
                        announced = true;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot reach the database for the projector lock"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
