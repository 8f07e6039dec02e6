//! How far each follower of the log has got, in `projector_checkpoints`: the read
//! models (`read_models`) and the change feed (`change_feed`, never ahead of the read
//! models). A checkpoint moves by compare-and-set, in the same transaction as what it
//! vouches for.

use promptos_store::{on_pool, on_tx, Db, Tx};

/// The read models' checkpoint.
pub const READ_MODELS: &str = "read_models";
/// The NATS change feed's checkpoint.
pub const CHANGE_FEED: &str = "change_feed";

/// The position a checkpoint has reached.
pub async fn load(db: &Db, name: &str) -> Result<i64, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_scalar("SELECT position FROM projector_checkpoints WHERE name = $1").bind(name).fetch_one(pool).await
    })
}

/// Moves `name` from `from` to `to` inside `tx`; false when it was not at `from` (another
/// projector moved it first).
pub async fn advance(tx: &mut Tx<'_>, name: &str, from: i64, to: i64) -> Result<bool, sqlx::Error> {
    let moved = on_tx!(tx, conn => {
        sqlx::query("UPDATE projector_checkpoints SET position = $1 WHERE name = $2 AND position = $3")
            .bind(to)
            .bind(name)
            .bind(from)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(moved == 1)
}

/// Moves `name` from `from` to `to` outside any transaction (the feed's checkpoint,
/// after NATS has the batch).
pub async fn advance_now(db: &Db, name: &str, from: i64, to: i64) -> Result<bool, sqlx::Error> {
    let moved = on_pool!(db, pool => {
        sqlx::query("UPDATE projector_checkpoints SET position = $1 WHERE name = $2 AND position = $3")
            .bind(to)
            .bind(name)
            .bind(from)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(moved == 1)
}

/// Sets `name` to `position` whatever it was (a rebuild). Its first statement, so that a
/// running projector waits for the rebuild, then fails its compare-and-set and resumes
/// from where the rebuild ended.
pub async fn claim(tx: &mut Tx<'_>, name: &str, position: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query("UPDATE projector_checkpoints SET position = $1 WHERE name = $2")
            .bind(position)
            .bind(name)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Creates the change feed's checkpoint at the read models' position if it does not
/// exist: enabling the feed starts it at the present, not at the beginning of history.
pub async fn start_change_feed(db: &Db) -> Result<(), sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO projector_checkpoints (name, position) \
             SELECT $1, position FROM projector_checkpoints WHERE name = $2 ON CONFLICT (name) DO NOTHING",
        )
        .bind(CHANGE_FEED)
        .bind(READ_MODELS)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Tells API servers in other processes (PostgreSQL `NOTIFY promptos_projected`) that
/// the read models moved to `position`, on commit of `tx`.
pub async fn notify_projected(tx: &mut Tx<'_>, position: i64) -> Result<(), sqlx::Error> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT pg_notify('promptos_projected', $1)").bind(position.to_string()).execute(&mut **t).await?;
    }
    Ok(())
}
