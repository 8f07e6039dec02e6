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

/// A delivery as the delivery log shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub delivery_id: String,
    pub position: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    pub finished_ms: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(db: &Db, webhook_id: &str, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    const SQL: &str = "SELECT delivery_id, position, event_type, status, attempts, created_ms, next_attempt_ms, \
         finished_ms, last_status, last_error FROM webhook_deliveries WHERE webhook_id = $1 \
         ORDER BY position DESC, delivery_id DESC LIMIT $2";
    on_pool!(db, pool => sqlx::query_as(SQL).bind(webhook_id).bind(limit).fetch_all(pool).await)
}

/// One attempt as the delivery log shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i64,
    pub at_ms: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response: Option<String>,
}

/// The attempts of one delivery, in order.
pub async fn attempts(db: &Db, delivery_id: &str) -> Result<Vec<AttemptRow>, sqlx::Error> {
    const SQL: &str = "SELECT attempt, at_ms, status_code, latency_ms, error, response FROM webhook_attempts \
         WHERE delivery_id = $1 ORDER BY attempt";
    on_pool!(db, pool => sqlx::query_as(SQL).bind(delivery_id).fetch_all(pool).await)
}

/// Queues a delivery that is not an event of the log (a test ping) after everything
/// already queued for the webhook.
pub async fn enqueue_extra(
    db: &Db,
    webhook_id: &str,
    position: i64,
    event_type: &str,
    body: &str,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let delivery_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    const SQL: &str = "INSERT INTO webhook_deliveries (delivery_id, webhook_id, position, event_type, body, status, \
         attempts, created_ms, next_attempt_ms) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7)";
    on_pool!(db, pool => {
        sqlx::query(SQL)
            .bind(&delivery_id)
            .bind(webhook_id)
            .bind(position)
            .bind(event_type)
            .bind(body)
            .bind(now_ms)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(delivery_id)
}

/// Sends a delivery again, with the same `webhook-id`, as soon as its turn comes; false
/// when the webhook has no such delivery.
pub async fn redeliver(db: &Db, webhook_id: &str, delivery_id: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = $1, created_ms = $2, \
         finished_ms = NULL WHERE delivery_id = $3 AND webhook_id = $4";
    let done = on_pool!(db, pool => {
        sqlx::query(SQL).bind(now_ms).bind(now_ms).bind(delivery_id).bind(webhook_id).execute(pool).await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}
