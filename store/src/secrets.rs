//! Secrets the server keeps beside the log, not in it (e.g. the generated key that signs
//! access tokens): they are not events, so they are never exported with the log.

use crate::Db;

/// The secret called `name`: the one stored, or `candidate`, stored now if none was.
/// Two servers starting together agree on whichever was inserted first.
pub async fn server_secret(db: &Db, name: &str, candidate: &str) -> Result<String, sqlx::Error> {
    crate::on_pool!(db, pool => {
        sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(pool)
            .await?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1").bind(name).fetch_one(pool).await
    })
}
