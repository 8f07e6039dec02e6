//! Scratch databases for tests: a fresh SQLite file or a fresh PostgreSQL database per
//! test, so tests never see each other's data.
//!
//! PostgreSQL is reached through `PROMPTOS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each scratch database is created next to
//! that one with a `promptos_t_` prefix. `.ci/run` drops old ones before each run.

use crate::db::{Backend, Db};
use sqlx::{Connection, Executor};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Keeps a scratch SQLite file's directory alive for the test's duration.
pub struct Scratch {
    pub url: String,
    _dir: Option<TempDir>,
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("promptos-test-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
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
            let dir = TempDir::new();
            let url = format!("sqlite://{}", dir.0.join("promptos.db").display());
            Scratch { url, _dir: Some(dir) }
        }
        Backend::Postgres => {
            let base = std::env::var("PROMPTOS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
            let name = format!("promptos_t_{}", unique_suffix());
            let mut conn = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for these tests ({base}): {e}. Start it or set PROMPTOS_TEST_POSTGRES_URL."
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
