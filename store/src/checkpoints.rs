//! Signed checkpoints kept beside the log (`audit_checkpoints`): each the chain head at a
//! position, signed by a key that is not in the database. Only ever inserted; never
//! exported with the log, never part of a rebuild. The signing and the note format are
//! the API server's (`promptos_api::checkpoint`); here is only where they are kept.

use crate::Db;

/// One stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredCheckpoint {
    pub position: i64,
    /// Hex, as the log stores hashes.
    pub head_hash: String,
    pub origin: String,
    /// RFC 3339 (seconds, UTC): the note's time line.
    pub signed_at: String,
    /// Hex, 4 bytes.
    pub key_id: String,
    /// The signer's verifier key as it was stored (not to be trusted on its own).
    pub verifier_key: String,
    /// The signed note.
    pub note: String,
}

const COLUMNS: &str = "position, head_hash, origin, signed_at, key_id, verifier_key, note";

/// Stores `c` unless the same key already signed that position (then the stored one
/// stays). Returns whether it was inserted.
pub async fn insert(db: &Db, c: &StoredCheckpoint) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO audit_checkpoints ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (position, key_id) DO NOTHING"
    );
    crate::on_pool!(db, pool => {
        Ok(sqlx::query(&sql)
            .bind(c.position)
            .bind(&c.head_hash)
            .bind(&c.origin)
            .bind(&c.signed_at)
            .bind(&c.key_id)
            .bind(&c.verifier_key)
            .bind(&c.note)
            .execute(pool)
            .await?
            .rows_affected()
            == 1)
    })
}

/// Newest first (highest position, then latest time), at most `limit`, below position
/// `before` when given.
pub async fn list(db: &Db, before: Option<i64>, limit: i64) -> Result<Vec<StoredCheckpoint>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_checkpoints WHERE position < $1 \
         ORDER BY position DESC, signed_at DESC, key_id LIMIT $2"
    );
    crate::on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(before.unwrap_or(i64::MAX)).bind(limit).fetch_all(pool).await
    })
}

/// The newest checkpoint, if any.
pub async fn latest(db: &Db) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
    Ok(list(db, None, 1).await?.into_iter().next())
}

/// Every checkpoint, oldest first, each with the hash the log holds at its position now
/// (`None` when the log no longer reaches it): what verification compares.
pub async fn all_with_log_hash(db: &Db) -> Result<Vec<(StoredCheckpoint, Option<String>)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        checkpoint: StoredCheckpoint,
        log_hash: Option<String>,
    }
    let sql = "SELECT c.position, c.head_hash, c.origin, c.signed_at, c.key_id, c.verifier_key, c.note,                e.hash AS log_hash FROM audit_checkpoints c LEFT JOIN events e ON e.position = c.position                ORDER BY c.position, c.signed_at, c.key_id";
    let rows: Vec<Row> = crate::on_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
    Ok(rows.into_iter().map(|r| (r.checkpoint, r.log_hash)).collect())
}

/// The hash the log holds at `position`, if it holds that position.
pub async fn hash_at(db: &Db, position: i64) -> Result<Option<String>, sqlx::Error> {
    crate::on_pool!(db, pool => {
        sqlx::query_scalar("SELECT hash FROM events WHERE position = $1").bind(position).fetch_optional(pool).await
    })
}

/// Per signing key: its id, and the first and last positions it signed.
pub async fn key_spans(db: &Db) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let sql = "SELECT key_id, MIN(position), MAX(position) FROM audit_checkpoints GROUP BY key_id";
    crate::on_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await)
}
