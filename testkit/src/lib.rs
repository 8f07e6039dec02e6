//! What PromptOS's tests and benchmarks share, kept out of the production crates:
//!
//! - [`scratch`] and [`scratch_db`]: a fresh SQLite file or a fresh PostgreSQL
//!   database per test, so tests never see each other's data;
//! - [`NatsServer`]: a `nats-server` of the test's own on a free loopback port, which
//!   can be stopped and started again;
//! - [`both_backends!`]: one async test body, run once per database;
//! - [`TempDir`]: a folder removed when dropped (the `tempfile` crate's).
//!
//! PostgreSQL is reached through `PROMPTOS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each scratch database is created next to
//! that one with a `promptos_t_` prefix, and `scripts/test` drops old ones before a run.

mod nats;

pub use nats::NatsServer;
pub use promptos_store::{Backend, Db};
pub use tempfile::TempDir;

use sqlx::{Connection, Executor};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A scratch database: its URL, and (for SQLite) the folder that holds it, kept for
/// the test's duration.
pub struct Scratch {
    pub url: String,
    _dir: Option<TempDir>,
}

impl Scratch {
    /// The same database for a second server (the first keeps its files).
    pub fn beside(&self) -> Scratch {
        Scratch { url: self.url.clone(), _dir: None }
    }
}

/// A folder of its own under the system's temporary folder, removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new().prefix("promptos-test-").tempdir().expect("create a temporary folder")
}

fn unique_suffix() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or("x")
    )
}

/// Creates an empty database of the given kind and returns its URL.
pub async fn scratch(backend: Backend) -> Scratch {
    match backend {
        Backend::Sqlite => {
            let dir = temp_dir();
            let url = format!("sqlite://{}", dir.path().join("promptos.db").display());
            Scratch { url, _dir: Some(dir) }
        }
        Backend::Postgres => {
            let base = std::env::var("PROMPTOS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
            let name = format!("promptos_t_{}", unique_suffix());
            let mut conn = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for these tests ({base}): {e}. Start it (scripts/prepare) or set \
                     PROMPTOS_TEST_POSTGRES_URL."
                )
            });
            conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create scratch database");
            let _ = conn.close().await;
            let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
            Scratch { url: format!("{prefix}/{name}"), _dir: None }
        }
    }
}

/// A scratch database, connected and migrated.
pub async fn scratch_db(backend: Backend) -> (Db, Scratch) {
    let s = scratch(backend).await;
    let db = Db::connect_and_migrate(&s.url).await.expect("connect scratch database");
    (db, s)
}

/// Runs an async test body once per backend: `both_backends!(name, |backend| async {..})`
/// expands to `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                ($body)($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                ($body)($crate::Backend::Postgres).await
            }
        }
    };
}
