//! Database outage: PostgreSQL stopped and started again under load. While it is down
//! the server answers at once with 503 and a clear message; when it is back the server
//! recovers by itself, and no acknowledged write is lost.
//!
//! The test runs a PostgreSQL server of its own (initdb in a temporary folder, on a free
//! port), so stopping it does not disturb the tests that share the main one.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITERS: usize = 8;

/// A throwaway PostgreSQL cluster. Stopped and deleted when dropped.
pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let bin = postgres_bin_dir();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("promptos-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pg = Self { dir, bin, port };
        if is_root() {
            // PostgreSQL refuses to run as root.
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&pg.dir));
        }
        let data = pg.dir.join("data");
        run(pg.command("initdb").arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ]));
        pg.pg_ctl_start();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }

    fn pg_ctl_start(&self) {
        let options = format!("-p {} -h 127.0.0.1 -k {} -F -c max_connections=100", self.port, self.dir.display());
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-l"])
            .arg(self.dir.join("log"))
            .args(["-w", "-o", &options, "start"]));
    }

    /// Starts the stopped server again, on the same port and data.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// Stops the server as an operator's restart does: sessions are terminated, open
    /// transactions roll back.
    pub fn stop(&self) {
        run(self.command("pg_ctl").arg("-D").arg(self.dir.join("data")).args(["-m", "fast", "-w", "stop"]));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "stop"]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run(command: &mut Command) {
    let out = command.output().expect("run a PostgreSQL tool");
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The newest installed PostgreSQL's programs (Debian keeps them out of PATH).
fn postgres_bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server programs are installed (/usr/lib/postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| Path::new(p).join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0));
    versions.pop().expect("initdb is installed")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn postgres_outage_gets_fast_503s_and_the_server_recovers_by_itself() {
    let pg = PrivatePostgres::start();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut server = serve_process(&pg.url(), port, &[]);
    let ok = |path: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        move || {
            let (http, base) = (http.clone(), base.clone());
            async move { http.get(format!("{base}{path}")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) }
        }
    };
    wait_until("the server became ready", Duration::from_secs(30), ok("/readyz")).await;
    let form = [("username", "admin"), ("password", ADMIN_PASSWORD)];
    let login = http.post(format!("{base}/auth/token")).form(&form).send().await.unwrap();
    let token = expect_status(login, StatusCode::OK).await["access_token"].as_str().unwrap().to_owned();
    for w in 0..WRITERS {
        let r = http.post(format!("{base}/prompts/")).bearer_auth(&token).json(&json!({"name": format!("outage-{w}")}));
        expect_status(r.send().await.unwrap(), StatusCode::CREATED).await;
    }

    // Writers keep creating versions through the outage and note every answer.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let refused: Arc<Mutex<Vec<Value>>> = Arc::default();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let (stop, acked, refused) = (stop.clone(), acked.clone(), refused.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let (prompt, version) = (format!("outage-{w}"), format!("n{n}"));
                    let body = json!({"version_string": version, "text": format!("Hello {{{{ who }}}} {n}")});
                    let r = http
                        .post(format!("{base}/prompts/{prompt}/versions/"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .expect("the server stays up through the outage");
                    match r.status() {
                        StatusCode::CREATED => acked.lock().unwrap().push((prompt, version)),
                        StatusCode::SERVICE_UNAVAILABLE => {
                            assert_eq!(r.headers()["retry-after"], "1");
                            let body: Value = r.json().await.unwrap();
                            refused.lock().unwrap().push(body);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        other => panic!("{prompt} {version}: {other}: {}", r.text().await.unwrap_or_default()),
                    }
                }
            })
        })
        .collect();
    let acked_count = || acked.lock().unwrap().len();
    wait_until("writes before the outage", Duration::from_secs(30), || {
        let n = acked_count();
        async move { n >= 50 }
    })
    .await;

    pg.stop();
    // While it is down: a clear 503 at once, not a hang until some timeout.
    wait_until("a 503 after the stop", Duration::from_secs(15), || {
        let n = refused.lock().unwrap().len();
        async move { n > 0 }
    })
    .await;
    for path in ["/prompts/", "/prompts/outage-0/versions/", "/events"] {
        let sent = Instant::now();
        let r = http.get(format!("{base}{path}")).bearer_auth(&token).send().await.unwrap();
        let took = sent.elapsed();
        let error = expect_error(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
        assert!(error["message"].as_str().unwrap().contains("database is unavailable"), "{error}");
        assert!(took < Duration::from_secs(2), "{path} took {took:?} to say the database is down");
    }
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    let ready = expect_status(ready, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(ready["status"], "unavailable", "{ready}");
    assert!(server.0.try_wait().unwrap().is_none(), "the server stays up while the database is down");

    // Back: the same server process serves again, without a restart.
    pg.restart();
    let before = acked_count();
    wait_until("writes after the database came back", Duration::from_secs(30), || {
        let n = acked_count();
        async move { n >= before + 50 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        if let Err(e) = w.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    assert!(server.0.try_wait().unwrap().is_none(), "the same server process recovered");
    wait_until("ready again", Duration::from_secs(10), ok("/readyz")).await;
    for body in refused.lock().unwrap().iter() {
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
    }

    let acked = acked.lock().unwrap().clone();
    for (prompt, version) in &acked {
        let r = http.get(format!("{base}/prompts/{prompt}/versions/{version}")).bearer_auth(&token).send().await;
        assert_eq!(r.unwrap().status(), StatusCode::OK, "acknowledged {prompt} {version} was lost");
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_promptos"))
        .args(["verify"])
        .env("PROMPTOS_DATABASE_URL", pg.url())
        .env("PROMPTOS_LOG", "error")
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
