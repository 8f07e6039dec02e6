//! The database handle: a native pool of SQLite or PostgreSQL, its migrations, and the
//! two macros that run a statement written once on either pool ([`on_pool!`]) or open
//! transaction ([`on_tx!`]).
//!
//! There is no lowest-common-denominator driver: each backend runs on its own sqlx
//! driver with its own types. SQL that is the same on both is written once (sqlx binds
//! `$1`, `$2` … on both drivers); what differs (the append lock, bulk loads, pragmas,
//! notifications, session locks) is written per backend where it is needed.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The native pool of a database.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open transaction on either backend.
pub enum Tx<'c> {
    Sqlite(Transaction<'c, Sqlite>),
    Postgres(Transaction<'c, Postgres>),
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// Runs `$body` with `$pool` bound to the native pool `$db` holds (`&SqlitePool` or
/// `&PgPool`): the statement is written once and compiled for each driver.
///
/// ```no_run
/// # async fn run(db: promptos_store::Db) -> Result<(), sqlx::Error> {
/// let head: i64 = promptos_store::on_pool!(db, pool => {
///     sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events").fetch_one(pool).await
/// })?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db.pool() {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of the open transaction `$tx`
/// (`&mut SqliteConnection` or `&mut PgConnection`).
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(tx) => {
                let $conn: &mut $crate::sqlx::SqliteConnection = &mut **tx;
                $body
            }
            $crate::Tx::Postgres(tx) => {
                let $conn: &mut $crate::sqlx::PgConnection = &mut **tx;
                $body
            }
        }
    };
}

/// A connected database (migrated by [`Db::connect_and_migrate`]).
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    url: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use sqlite://path/to/file.db or postgres://user@host/db")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Connects to `url` (`sqlite://promptos.db`, created on first use; `postgres://…`).
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        Self::connect_with(url, 16).await
    }

    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, DbError> {
        let acquire = Duration::from_secs(10);
        let pool = match Backend::of_url(url)? {
            Backend::Sqlite => {
                // WAL lets readers run beside the writer; FULL makes every acknowledged
                // append survive a crash of the machine too.
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_with(options)
                        .await?,
                )
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_with(options)
                        .await?,
                )
            }
        };
        Ok(Self { pool, url: url.into() })
    }

    /// Applies the migrations for this backend (idempotent).
    pub async fn migrate(&self) -> Result<(), DbError> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub async fn connect_and_migrate(url: &str) -> Result<Self, DbError> {
        let db = Self::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The URL as given, for opening dedicated connections (LISTEN, session locks).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// A transaction that writes: on SQLite it takes the database's write lock at once
    /// (`BEGIN IMMEDIATE`), so it cannot fail later on a lock upgrade.
    pub async fn begin_write(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Closes the pool: waits for connections in use to come back, then closes them all.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Runs one statement without parameters (tests and tools that poke at the schema).
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        on_pool!(self, pool => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()))
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    /// A PostgreSQL LISTEN connection on `channel` (`None` on SQLite, or if it cannot be
    /// opened now).
    pub async fn listen(&self, channel: &str) -> Option<sqlx::postgres::PgListener> {
        let Pool::Postgres(_) = &self.pool else { return None };
        match sqlx::postgres::PgListener::connect(&self.url).await {
            Ok(mut l) => match l.listen(channel).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, channel, "LISTEN failed");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, channel, "cannot open a LISTEN connection");
                None
            }
        }
    }

    /// Waits until this process holds the session lock `key` (PostgreSQL; `what` names
    /// the role in the log), retrying every second; the lock lasts as long as the
    /// returned connection. On SQLite there is one process: `None` at once.
    pub async fn lead(&self, key: i64, what: &str) -> Option<sqlx::PgConnection> {
        let Pool::Postgres(_) = &self.pool else { return None };
        loop {
            match self.try_session_lock(key).await {
                Ok(Some(conn)) => return Some(conn),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, what, "cannot reach the database for a leadership lock"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// Takes the PostgreSQL session advisory lock `key` on a connection of its own, if
    /// no other session holds it; the lock lasts as long as the returned connection.
    /// `Ok(None)` when another session holds it (always `Ok(None)` on SQLite).
    pub async fn try_session_lock(&self, key: i64) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
        use sqlx::Connection;
        let Pool::Postgres(_) = &self.pool else { return Ok(None) };
        let mut conn = sqlx::PgConnection::connect(&self.url).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut conn).await?;
        if got {
            Ok(Some(conn))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }
}

impl Backend {
    fn of_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }
}

impl FromStr for Backend {
    type Err = DbError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            _ => Err(DbError::UnsupportedUrl(s.to_owned())),
        }
    }
}

/// True when `e` means the database cannot be reached right now (stopped, restarting,
/// refusing connections, busy) rather than that the statement was wrong: the request
/// deserves a 503 and a retry, not a 500.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|code| {
            // PostgreSQL: connection exceptions (08…), shutdown and start-up (57P01–57P03),
            // too many connections (53300). SQLite: busy (5) and its extended codes.
            code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300" | "5" | "261" | "517" | "773")
        }),
        _ => false,
    }
}

/// Replaces the password in a database URL with `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_outages_count_as_unavailable() {
        use super::is_unavailable;
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into())));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(super::redact_url("sqlite://x.db?mode=rwc"), "sqlite://x.db?mode=rwc");
    }
}
