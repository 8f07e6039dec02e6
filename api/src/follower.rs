//! Follows the projector from the API side: knows which log position the read models
//! include (for read-your-writes) and evicts cached entries (deployed prompts, users,
//! API keys) that changed.
//!
//! It learns of progress from the in-process projector when there is one, from
//! PostgreSQL NOTIFY `promptos_projected` when the projector runs apart, and by reading
//! the checkpoint every 250 ms as a safety net.

use crate::caches::Caches;
use promptos_core::names::EnvironmentName;
use promptos_projector::changes::{changes_for, ChangeMessage};
use promptos_projector::queries;
use promptos_store::{Backend, Db, EventLog};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Events read from the log per query while catching up.
const BATCH: i64 = 1000;

#[derive(Clone)]
pub struct Follower {
    visible: watch::Receiver<i64>,
    changes: broadcast::Sender<Arc<ChangeMessage>>,
    /// Subscriptions of the server's own parts, not counted as SSE clients.
    internal: Arc<std::sync::atomic::AtomicUsize>,
}

impl Follower {
    /// Starts following from the current checkpoint.
    pub async fn start(
        db: Db,
        caches: Caches,
        environments: Vec<EnvironmentName>,
        in_process: Option<watch::Receiver<i64>>,
    ) -> Result<Self, sqlx::Error> {
        let start = queries::checkpoint(&db).await?;
        let (tx, visible) = watch::channel(start);
        let (changes, _) = broadcast::channel(4096);
        tokio::spawn(follow(db, caches, environments, in_process, tx, changes.clone()));
        Ok(Self { visible, changes, internal: Arc::default() })
    }

    /// Change messages as the read models (and caches) come to include them.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeMessage>> {
        self.changes.subscribe()
    }

    /// Change messages for a part of this server (not counted as an SSE client).
    pub fn subscribe_internal(&self) -> broadcast::Receiver<Arc<ChangeMessage>> {
        self.internal.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.changes.subscribe()
    }

    /// Number of live change-feed subscribers (SSE clients).
    pub fn subscribers(&self) -> usize {
        self.changes.receiver_count().saturating_sub(self.internal.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The highest position the read models (and this server's caches) include.
    /// The position the read models include, to await its moves.
    pub fn watch_visible(&self) -> watch::Receiver<i64> {
        self.visible.clone()
    }

    pub fn visible(&self) -> i64 {
        *self.visible.borrow()
    }

    /// Waits until the read models include `position`; false if `timeout` passed first.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> bool {
        let mut rx = self.visible.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|v| *v >= position)).await;
        matches!(reached, Ok(Ok(_)))
    }
}

async fn follow(
    db: Db,
    caches: Caches,
    environments: Vec<EnvironmentName>,
    mut in_process: Option<watch::Receiver<i64>>,
    visible: watch::Sender<i64>,
    changes: broadcast::Sender<Arc<ChangeMessage>>,
) {
    let mut listener = None;
    let mut current = *visible.borrow();
    loop {
        if db.backend() == Backend::Postgres && listener.is_none() {
            listener = db.listen("promptos_projected").await;
        }
        let tick = tokio::time::sleep(Duration::from_millis(250));
        tokio::select! {
            _ = tick => {}
            changed = async {
                match in_process.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if !changed { in_process = None; }
            }
            received = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            } => {
                if received.is_err() { listener = None; }
            }
        }
        let checkpoint = match queries::checkpoint(&db).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the projector checkpoint");
                continue;
            }
        };
        if checkpoint == current {
            continue;
        }
        if checkpoint < current {
            // A rebuild reset the checkpoint: everything counts as changed.
            caches.invalidate_all();
            current = checkpoint;
            visible.send_replace(checkpoint);
            continue;
        }
        // Evict what changed, then publish the new position, then tell subscribers:
        // whoever hears of a change can read it at once.
        let mut messages = Vec::new();
        while current < checkpoint {
            let events = match db.read_after(current, BATCH.min(checkpoint - current)).await {
                Ok(events) if !events.is_empty() => events,
                Ok(_) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the log");
                    break;
                }
            };
            let streams: Vec<String> = events.iter().map(|e| e.stream_id.clone()).collect();
            caches.invalidate_streams(&streams, &environments).await;
            let computed = if promptos_store::failpoint::fails("follower.changes") {
                Err(sqlx::Error::Protocol("failpoint follower.changes".into()))
            } else {
                changes_for(&db, &events).await
            };
            match computed {
                Ok(m) => {
                    // Prompts that include a changed prompt serve new resolved text.
                    for change in m.iter().filter(|c| c.event_type == "IncludeChanged") {
                        caches.invalidate_deployed(&change.prompt, &change.environment).await;
                    }
                    messages.extend(m)
                }
                Err(e) => {
                    // Not past this batch: its evictions of includers and its messages
                    // would be lost. The next round tries it again.
                    tracing::warn!(error = %e, "cannot derive change messages; will retry");
                    break;
                }
            }
            current = events.last().map_or(current, |e| e.position);
        }
        visible.send_replace(current);
        for m in messages {
            let _ = changes.send(Arc::new(m));
        }
    }
}
