//! Publishes the change feed on NATS, at least once.
//!
//! The publisher follows the log with a checkpoint of its own (`change_feed`), never
//! ahead of the read models: it publishes the messages of a batch the projector has
//! committed, waits until NATS has them (flush), and only then moves its checkpoint. A
//! crash between the two publishes the batch again on restart; while NATS is down it
//! keeps retrying the same batch, and writes go on meanwhile.

use crate::changes::changes_for;
use crate::checkpoints::{self, CHANGE_FEED, READ_MODELS};
use promptos_store::{Db, EventLog};
use std::time::Duration;
use tokio::sync::watch;

const BATCH: i64 = 500;

static PUBLISH_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Failed attempts to publish the change feed in this process (each is retried), for
/// the operator's metrics.
pub fn publish_failures() -> u64 {
    PUBLISH_FAILURES.load(std::sync::atomic::Ordering::Relaxed)
}

pub struct Publisher {
    db: Db,
    nats_url: String,
}

impl Publisher {
    pub fn new(db: Db, nats_url: String) -> Self {
        Self { db, nats_url }
    }

    /// Connects to NATS (retrying in the background when it is down).
    pub async fn connect(url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS disconnected; will publish once it is back")
                    }
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    other => tracing::debug!(?other, "NATS event"),
                }
            })
            .connect(url)
            .await
    }

    /// Creates the feed's checkpoint if it does not exist yet, at the read models'
    /// position: enabling the feed starts it at the present, not at the beginning of
    /// history. Retries until the database answers.
    pub async fn init(&self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let created = checkpoints::start_change_feed(&self.db).await;
            match created {
                Ok(_) => return,
                Err(e) => tracing::warn!(error = %e, "cannot initialise the change feed checkpoint; retrying"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Runs forever, after [`Publisher::init`]. `projected` tells when the read models
    /// moved.
    pub async fn run(self, mut projected: watch::Receiver<i64>) {
        let client = match Self::connect(&self.nats_url).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up the NATS client; the change feed is off");
                return;
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.step(&client).await {
                Ok(true) => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(false) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), projected.changed()).await;
                }
                Err(e) => {
                    PUBLISH_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, "publishing the change feed failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Publishes one batch; false when there is nothing to publish.
    pub async fn step(&self, client: &async_nats::Client) -> anyhow::Result<bool> {
        let published = checkpoints::load(&self.db, CHANGE_FEED).await?;
        let projected = checkpoints::load(&self.db, READ_MODELS).await?;
        if published >= projected {
            return Ok(false);
        }
        let events = self.db.read_after(published, BATCH.min(projected - published)).await?;
        let Some(last) = events.last().map(|e| e.position) else { return Ok(false) };
        for message in changes_for(&self.db, &events).await? {
            let payload = serde_json::to_vec(&message)?;
            client.publish(message.subject(), payload.into()).await?;
        }
        tokio::time::timeout(Duration::from_secs(5), client.flush())
            .await
            .map_err(|_| anyhow::anyhow!("NATS did not acknowledge the batch in time"))??;
        promptos_store::failpoint::hit("publisher.after_flush");
        checkpoints::advance_now(&self.db, CHANGE_FEED, published, last).await?;
        Ok(true)
    }
}
