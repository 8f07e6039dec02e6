//! The dispatcher: sends what the outbox holds, in log order per webhook, signed, with
//! retries. One works at a time (on PostgreSQL the one holding the dispatcher lock), in
//! the process that runs the active projector, woken by each batch it commits. The
//! outbox is a table, so a restart loses nothing: a delivery that was being sent when
//! the process stopped is sent again with the same `webhook-id` (at least once).

use super::crypto::{SealingKey, SigningSecret};
use super::queue::{self, Attempt, Due, Next};
use crate::commands::Commands;
use chrono::Utc;
use promptos_core::webhook::{webhook_stream, WebhookCommand};
use promptos_store::{Db, Metadata};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Key of the PostgreSQL advisory lock held by the working dispatcher.
const DISPATCHER_LOCK_KEY: i64 = 0x5052_4f4d_5054_0004;
/// Longest wait between looks at the outbox (deliveries enqueued by another process).
const IDLE: Duration = Duration::from_secs(1);
/// Bytes of a response body kept in the delivery log.
const KEEP_RESPONSE: usize = 1024;

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub allow_private: bool,
    pub timeout: Duration,
    /// The waits before the 2nd, 3rd, … attempt; the last repeats.
    pub retry_schedule: Vec<Duration>,
    /// A delivery still failing this long after it was enqueued is given up, and its
    /// webhook disabled.
    pub give_up_after: Duration,
}

pub struct Dispatcher {
    db: Db,
    commands: Commands,
    key: Arc<SealingKey>,
    client: reqwest::Client,
    settings: DeliverySettings,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Dispatcher {
    pub fn new(
        db: Db,
        commands: Commands,
        key: Arc<SealingKey>,
        settings: DeliverySettings,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        let client = super::guard::client(settings.allow_private, settings.timeout);
        Self { db, commands, key, client, settings, metrics }
    }

    /// Works the outbox as long as the process runs, woken by `projected` (each batch
    /// the projector commits) and by `wake` (a test ping, a redelivery).
    pub fn start(self, projected: watch::Receiver<i64>, wake: Arc<tokio::sync::Notify>) {
        tokio::spawn(self.run(projected, wake));
    }

    async fn run(self, mut projected: watch::Receiver<i64>, wake: Arc<tokio::sync::Notify>) {
        let _leadership = self.db.lead(DISPATCHER_LOCK_KEY, "webhook dispatcher").await;
        loop {
            let wait = match self.round().await {
                Ok(true) => continue,
                Ok(false) => self.until_next_due().await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the webhook outbox; retrying");
                    IDLE
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = projected.changed() => {}
                _ = wake.notified() => {}
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        let now = Utc::now().timestamp_millis();
        match queue::next_due_ms(&self.db).await {
            Ok(Some(at)) => Duration::from_millis((at - now).clamp(0, IDLE.as_millis() as i64) as u64),
            _ => IDLE,
        }
    }

    /// Sends every delivery whose turn it is, one per webhook, concurrently. True when
    /// something was sent (the next in line may be due at once).
    async fn round(&self) -> Result<bool, sqlx::Error> {
        let now = Utc::now().timestamp_millis();
        let due = queue::due(&self.db, now).await?;
        let (depth, oldest) = queue::depth(&self.db, now).await?;
        self.metrics.webhook_queue(depth, oldest);
        if due.is_empty() {
            return Ok(false);
        }
        let sent = futures::future::join_all(due.iter().map(|d| self.send(d))).await;
        for r in sent {
            r?;
        }
        Ok(true)
    }

    async fn send(&self, d: &Due) -> Result<(), sqlx::Error> {
        let Ok(webhook_id) = Uuid::parse_str(&d.webhook_id) else { return Ok(()) };
        let signatures = match self.signatures(&webhook_id, d).await {
            Ok(s) => s,
            Err(why) => {
                // Without its secret nothing can be signed: stop, and say why.
                tracing::error!(webhook = %webhook_id, "cannot sign deliveries: {why}");
                self.disable(&webhook_id, &format!("cannot sign deliveries: {why}")).await;
                return Ok(());
            }
        };
        let (timestamp, body) = signatures.0;
        let started = std::time::Instant::now();
        let at_ms = Utc::now().timestamp_millis();
        let result = self
            .client
            .post(self.url_of(&webhook_id).await.unwrap_or_default())
            .header("content-type", "application/json")
            .header("webhook-id", &d.delivery_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.1)
            .body(body)
            .send()
            .await;
        let (status_code, error, response) = match result {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (Some(i64::from(status)), None, Some(text.chars().take(KEEP_RESPONSE).collect::<String>()))
            }
            Err(e) => (None, Some(describe(&e)), None),
        };
        let attempt = Attempt { at_ms, status_code, latency_ms: started.elapsed().as_millis() as i64, error, response };
        let next = match status_code {
            Some(200..=299) => Next::Delivered,
            Some(410) => {
                self.disable(&webhook_id, "the receiver answered 410 Gone").await;
                Next::Failed
            }
            _ if at_ms - d.created_ms >= self.settings.give_up_after.as_millis() as i64 => {
                let last = attempt.error.clone().or(status_code.map(|s| format!("HTTP {s}"))).unwrap_or_default();
                let reason =
                    format!("deliveries failed for {:?}; the last answer: {last}", self.settings.give_up_after);
                self.disable(&webhook_id, &reason).await;
                Next::Failed
            }
            _ => Next::Retry { at_ms: at_ms + self.backoff(d.attempts).as_millis() as i64 },
        };
        self.metrics.webhook_delivery(match next {
            Next::Delivered => "delivered",
            Next::Retry { .. } => "retried",
            Next::Failed => "failed",
        });
        queue::record(&self.db, &d.delivery_id, &attempt, next).await
    }

    /// The body with its timestamp, and the `webhook-signature` header: one signature
    /// per valid secret (the new and, for a day after a rotation, the old).
    async fn signatures(&self, id: &Uuid, d: &Due) -> Result<((i64, String), String), String> {
        let state = self.commands.webhooks.current(webhook_stream(id)).await.map_err(|e| e.to_string())?;
        let webhook = state.0.ok_or("the webhook is not in the log")?;
        let mut secrets: Vec<SigningSecret> = vec![self.key.open(&webhook.secret).map_err(|e| e.to_string())?];
        if let Some((previous, until)) = &webhook.previous {
            if *until > Utc::now() {
                secrets.push(self.key.open(previous).map_err(|e| e.to_string())?);
            }
        }
        let timestamp = Utc::now().timestamp();
        let header = secrets.iter().map(|s| s.sign(&d.delivery_id, timestamp, d.body.as_bytes())).collect::<Vec<_>>();
        Ok(((timestamp, d.body.clone()), header.join(" ")))
    }

    async fn url_of(&self, id: &Uuid) -> Option<String> {
        let state = self.commands.webhooks.current(webhook_stream(id)).await.ok()?;
        state.0.map(|w| w.url)
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let schedule = &self.settings.retry_schedule;
        let base = schedule.get(attempts as usize).or(schedule.last()).copied().unwrap_or(Duration::from_secs(5));
        // ±20 % so that many failing deliveries do not retry in step.
        let jitter = 0.8 + 0.4 * (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        base.mul_f64(jitter)
    }

    async fn disable(&self, id: &Uuid, reason: &str) {
        let command = WebhookCommand::Disable { reason: reason.to_owned() };
        if let Err(e) = self.commands.webhooks.execute(webhook_stream(id), command, Metadata::new("system")).await {
            tracing::warn!(webhook = %id, error = %e, "could not disable a failing webhook");
        }
    }
}

/// An error of the HTTP client in words, with its causes (a refused address says so).
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}
