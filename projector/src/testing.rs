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

/// A `nats-server` of the test's own on a free loopback port (Debian's package, where
/// `.ci/run` installs it). It can be stopped and started again on the same port, to
/// test what happens while the broker is away. Killed when dropped.
pub struct NatsServer {
    child: Option<std::process::Child>,
    pub port: u16,
}

impl NatsServer {
    /// Starts it and waits (up to 10 s) until it accepts connections.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("bound").port();
        let mut server = NatsServer { child: None, port };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it; connected clients see the broker go away.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn resume(&mut self) {
        use std::time::{Duration, Instant};
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = std::process::Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server is installed (apt-get install nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
