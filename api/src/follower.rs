//! Follows the projector from the API side: knows which log position the read models
//! include (for read-your-writes) and evicts cached entries (deployed prompts, users,
//! API keys) that changed.
//!
//! It learns of progress from the in-process projector when there is one, from
//! PostgreSQL NOTIFY `promptos_projected` when the projector runs apart, and by reading
//! the checkpoint every 250 ms as a safety net.

use crate::caches::Caches;
use promptos_core::names::EnvironmentName;
use promptos_projector::{queries, Backend, Db};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Follower {
    visible: watch::Receiver<i64>,
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
        tokio::spawn(follow(db, caches, environments, in_process, tx));
        Ok(Self { visible })
    }

    /// The highest position the read models (and this server's caches) include.
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
) {
    let mut listener = None;
    let mut current = *visible.borrow();
    loop {
        if db.backend == Backend::Postgres && listener.is_none() {
            listener = promptos_projector::projector::listen(&db, "promptos_projected").await;
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
        // A rebuild can reset the checkpoint; then everything counts as changed.
        let streams =
            if checkpoint > current { queries::streams_between(&db, current, checkpoint).await.ok() } else { None };
        match streams {
            Some(streams) => caches.invalidate_streams(&streams, &environments).await,
            None => caches.invalidate_all(),
        }
        current = checkpoint;
        visible.send_replace(checkpoint);
    }
}
