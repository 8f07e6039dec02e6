//! Follows the projector from the API side: knows which log position the read models
//! include (for read-your-writes) and evicts cached deployed prompts that changed.
//!
//! It learns of progress from the in-process projector when there is one, from
//! PostgreSQL NOTIFY `promptos_projected` when the projector runs apart, and by reading
//! the checkpoint every 250 ms as a safety net.

use crate::http::deployed::DeployedCache;
use promptos_core::names::EnvironmentName;
use promptos_projector::{queries, Backend, Db};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Follower {
    visible: watch::Receiver<i64>,
    epoch: Arc<AtomicU64>,
}

impl Follower {
    /// Starts following from the current checkpoint.
    pub async fn start(
        db: Db,
        cache: DeployedCache,
        environments: Vec<EnvironmentName>,
        in_process: Option<watch::Receiver<i64>>,
    ) -> Result<Self, sqlx::Error> {
        let start = queries::checkpoint(&db).await?;
        let (tx, visible) = watch::channel(start);
        let epoch = Arc::new(AtomicU64::new(0));
        tokio::spawn(follow(
            db,
            cache,
            environments,
            in_process,
            tx,
            epoch.clone(),
        ));
        Ok(Self { visible, epoch })
    }

    /// The highest position the read models (and this server's cache) include.
    pub fn visible(&self) -> i64 {
        *self.visible.borrow()
    }

    /// Waits until the read models include `position`; false if `timeout` passed first.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> bool {
        let mut rx = self.visible.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|v| *v >= position)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// Changes whenever cache entries are about to be invalidated. A cache filler reads
    /// it before querying and checks it after inserting, so a value read before a change
    /// and inserted after its invalidation never survives.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}

async fn follow(
    db: Db,
    cache: DeployedCache,
    environments: Vec<EnvironmentName>,
    mut in_process: Option<watch::Receiver<i64>>,
    visible: watch::Sender<i64>,
    epoch: Arc<AtomicU64>,
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
        // A rebuild can move the checkpoint backwards for a moment; treat it as "all
        // changed".
        let streams = if checkpoint > current {
            queries::streams_between(&db, current, checkpoint).await
        } else {
            Ok(vec![])
        };
        epoch.fetch_add(1, Ordering::SeqCst);
        match streams {
            Ok(streams) if checkpoint > current => {
                for stream in streams {
                    if let Some(name) = stream.strip_prefix("prompt:") {
                        for env in &environments {
                            cache.invalidate(&(name.to_owned(), env.to_string())).await;
                        }
                    }
                }
            }
            _ => cache.invalidate_all(),
        }
        current = checkpoint;
        visible.send_replace(checkpoint);
    }
}
