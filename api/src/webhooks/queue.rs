//! The outbox as the dispatcher works it: what is due, and what each attempt did.

use promptos_store::{on_pool, Db};

/// A delivery whose turn it is: the oldest pending one of its webhook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub delivery_id: String,
    pub webhook_id: String,
    pub position: i64,
    pub event_type: String,
    pub body: String,
    pub attempts: i64,
    pub created_ms: i64,
}

/// The first pending delivery of every enabled webhook, where it is due by `now_ms`.
/// Deliveries to one webhook go out in log order: the next waits for the one before.
pub async fn due(db: &Db, now_ms: i64) -> Result<Vec<Due>, sqlx::Error> {
    const SQL: &str = "SELECT d.delivery_id, d.webhook_id, d.position, d.event_type, d.body, d.attempts, d.created_ms \
         FROM webhook_deliveries d JOIN rm_webhooks w ON w.webhook_id = d.webhook_id \
         WHERE d.status = 'pending' AND w.enabled = 1 AND w.deleted = 0 AND d.next_attempt_ms <= $1 \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
               AND e.status = 'pending' \
               AND (e.position < d.position OR (e.position = d.position AND e.delivery_id < d.delivery_id))) \
         LIMIT 200";
    on_pool!(db, pool => sqlx::query_as(SQL).bind(now_ms).fetch_all(pool).await)
}

/// When the next pending delivery of an enabled webhook falls due, if any does.
pub async fn next_due_ms(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "SELECT MIN(d.next_attempt_ms) FROM webhook_deliveries d \
         JOIN rm_webhooks w ON w.webhook_id = d.webhook_id \
         WHERE d.status = 'pending' AND w.enabled = 1 AND w.deleted = 0";
    on_pool!(db, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)
}

/// One attempt at a delivery.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at_ms: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The start of the response body.
    pub response: Option<String>,
}

/// What becomes of the delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    Retry {
        at_ms: i64,
    },
    /// Given up (the receiver said 410, or it failed for too long).
    Failed,
}

/// Records an attempt and its consequence, in one transaction.
pub async fn record(db: &Db, delivery_id: &str, attempt: &Attempt, next: Next) -> Result<(), sqlx::Error> {
    let (status, next_ms, finished) = match next {
        Next::Delivered => ("delivered", attempt.at_ms, Some(attempt.at_ms + attempt.latency_ms)),
        Next::Retry { at_ms } => ("pending", at_ms, None),
        Next::Failed => ("failed", attempt.at_ms, Some(attempt.at_ms + attempt.latency_ms)),
    };
    let mut tx = db.begin_write().await?;
    promptos_store::on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, at_ms, status_code, latency_ms, error, response) \
             SELECT $1, attempts + 1, $2, $3, $4, $5, $6 FROM webhook_deliveries WHERE delivery_id = $7",
        )
        .bind(delivery_id)
        .bind(attempt.at_ms)
        .bind(attempt.status_code)
        .bind(attempt.latency_ms)
        .bind(&attempt.error)
        .bind(&attempt.response)
        .bind(delivery_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1, next_attempt_ms = $2, \
             finished_ms = $3, last_status = $4, last_error = $5 WHERE delivery_id = $6",
        )
        .bind(status)
        .bind(next_ms)
        .bind(finished)
        .bind(attempt.status_code)
        .bind(&attempt.error)
        .bind(delivery_id)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await
}

/// Pending deliveries of enabled webhooks, and the age of the oldest (for metrics).
pub async fn depth(db: &Db, now_ms: i64) -> Result<(i64, i64), sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*), COALESCE(MIN(d.created_ms), 0) FROM webhook_deliveries d \
         JOIN rm_webhooks w ON w.webhook_id = d.webhook_id \
         WHERE d.status = 'pending' AND w.enabled = 1 AND w.deleted = 0";
    let (count, oldest): (i64, i64) = on_pool!(db, pool => sqlx::query_as(SQL).fetch_one(pool).await)?;
    Ok((count, if count == 0 { 0 } else { now_ms - oldest }))
}
