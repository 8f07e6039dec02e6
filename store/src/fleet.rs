//! What running SDK instances last reported they serve: telemetry kept beside the log,
//! not in it (the report's shape is `promptos_core::fleet`). A table, so that a restart
//! or a second server sees the same fleet.

use crate::Db;

/// Whether a report was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Stored,
    /// The instance id belongs to another caller; nothing was changed.
    OwnedByAnother,
}

/// One instance as last reported.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Instance {
    pub instance_id: String,
    pub owner: String,
    /// The report's JSON.
    pub report: String,
    pub last_seen_ms: i64,
    pub expires_at_ms: i64,
}

/// One instance's last report, as [`record_all`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub instance_id: &'a str,
    pub owner: &'a str,
    /// The report's JSON.
    pub report: &'a str,
    pub last_seen_ms: i64,
    pub expires_at_ms: i64,
}

const UPSERT: &str = "INSERT INTO fleet_instances (instance_id, owner, report, last_seen_ms, expires_at_ms) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (instance_id) DO UPDATE SET report = excluded.report, \
         last_seen_ms = excluded.last_seen_ms, expires_at_ms = excluded.expires_at_ms \
     WHERE fleet_instances.owner = excluded.owner";

/// Stores `report` as what `instance_id` serves now, unless another `owner` reported
/// as that instance first.
pub async fn record(
    db: &Db,
    instance_id: &str,
    owner: &str,
    report: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<Recorded, sqlx::Error> {
    let one = Report { instance_id, owner, report, last_seen_ms: now_ms, expires_at_ms };
    Ok(record_all(db, &[one]).await?[0])
}

/// [`record`] for many instances in one transaction (one commit for a whole fleet's
/// reports); the outcome of each, in order.
pub async fn record_all(db: &Db, reports: &[Report<'_>]) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let mut out = Vec::with_capacity(reports.len());
    for r in reports {
        let changed = crate::on_tx!(&mut tx, conn => {
            sqlx::query(UPSERT)
                .bind(r.instance_id)
                .bind(r.owner)
                .bind(r.report)
                .bind(r.last_seen_ms)
                .bind(r.expires_at_ms)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        out.push(if changed == 0 { Recorded::OwnedByAnother } else { Recorded::Stored });
    }
    tx.commit().await?;
    Ok(out)
}

/// The instances whose heartbeat has not lapsed at `now_ms`, oldest report first.
pub async fn live(db: &Db, now_ms: i64) -> Result<Vec<Instance>, sqlx::Error> {
    crate::on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT instance_id, owner, report, last_seen_ms, expires_at_ms FROM fleet_instances \
             WHERE expires_at_ms > $1 ORDER BY last_seen_ms, instance_id",
        )
        .bind(now_ms)
        .fetch_all(pool)
        .await
    })
}

/// Deletes instances gone before `before_ms` (their ids may then be reported again by
/// anyone); returns how many.
pub async fn forget_gone(db: &Db, before_ms: i64) -> Result<u64, sqlx::Error> {
    crate::on_pool!(db, pool => {
        Ok(sqlx::query("DELETE FROM fleet_instances WHERE expires_at_ms < $1")
            .bind(before_ms)
            .execute(pool)
            .await?
            .rows_affected())
    })
}

/// The instance as last stored, gone or not.
pub async fn get(db: &Db, instance_id: &str) -> Result<Option<Instance>, sqlx::Error> {
    crate::on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT instance_id, owner, report, last_seen_ms, expires_at_ms FROM fleet_instances \
             WHERE instance_id = $1",
        )
        .bind(instance_id)
        .fetch_optional(pool)
        .await
    })
}
