//! The real processes a benchmark measures: `promptos serve`, `nats-server`, and the
//! bare axum server used as the read path's yardstick. Each listens on a free loopback
//! port and is killed when dropped.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "bench-admin-password";

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A binary built beside this one (`promptos`), so both come from the same build.
pub fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!("{} is missing: build it first (cargo build --release --bin {name})", path.display());
    }
    Ok(path)
}

/// Polls `check` until it is true; fails after `within`.
pub async fn until<F, Fut>(within: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        if Instant::now() > deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// Resident memory now and at its peak, in KiB (Linux `/proc`).
    fn memory(&self) -> Result<(u64, u64)> {
        let all = self.status_kib(&["VmRSS:", "VmHWM:"])?;
        Ok((all[0], all[1]))
    }

    /// Fields of `/proc/{pid}/status`, in KiB.
    fn status_kib(&self, names: &[&str]) -> Result<Vec<u64>> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(names.iter().map(|n| field(n)).collect())
    }
}

/// The benchmarks' own nats-server (the tests' helper, on a free port).
pub struct Nats {
    _server: promptos_testkit::NatsServer,
    pub url: String,
}

impl Nats {
    pub async fn start() -> Result<Self> {
        let server = tokio::task::spawn_blocking(promptos_testkit::NatsServer::start).await?;
        Ok(Self { url: server.url(), _server: server })
    }
}

pub struct Server {
    process: Process,
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    /// From spawning the process to the first 200 from `/readyz`.
    pub ready_after: Duration,
}

impl Server {
    pub async fn start(database_url: &str, nats_url: Option<&str>) -> Result<Self> {
        Self::start_with(database_url, nats_url, &[]).await
    }

    /// [`Server::start`] with more settings in its environment.
    pub async fn start_with(database_url: &str, nats_url: Option<&str>, env: &[(&str, &str)]) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = Command::new(sibling("promptos")?);
        cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("PROMPTOS_DATABASE_URL", database_url)
            .env("PROMPTOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PROMPTOS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PROMPTOS_LLM_")) {
            cmd.env_remove(key);
        }
        match nats_url {
            Some(url) => cmd.env("PROMPTOS_NATS_URL", url),
            None => cmd.env_remove("PROMPTOS_NATS_URL"),
        };
        cmd.envs(env.iter().copied());
        let started = Instant::now();
        let process = Process(cmd.spawn().context("starting promptos serve")?);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = format!("{base}/readyz");
        until(Duration::from_secs(120), "the server to be ready", || {
            let (http, ready) = (http.clone(), ready.clone());
            async move { http.get(ready).send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await?;
        let ready_after = started.elapsed();
        let form = [("username", "admin"), ("password", ADMIN_PASSWORD)];
        let r = http.post(format!("{base}/auth/token")).form(&form).send().await?;
        let token = ok(r).await?["access_token"].as_str().context("an access token")?.to_owned();
        Ok(Self { process, base, http, token, ready_after })
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let r = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(&body).send().await?;
        ok(r).await.with_context(|| format!("POST {path}"))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await?;
        ok(r).await.with_context(|| format!("GET {path}"))
    }

    /// A prompt with versions `v1..=versions`, `v1` deployed to each of `environments`.
    pub async fn prompt(&self, name: &str, versions: usize, environments: &[&str]) -> Result<()> {
        self.post("/prompts/", json!({"name": name})).await?;
        for i in 1..=versions {
            let text =
                format!("Hello {{{{ customer_name }}}}, this is {name} v{i}. How can I help with {{{{ topic }}}}?");
            self.post(&format!("/prompts/{name}/versions/"), json!({"version_string": format!("v{i}"), "text": text}))
                .await?;
        }
        for env in environments {
            self.deploy(name, env, "v1").await?;
        }
        Ok(())
    }

    pub async fn deploy(&self, name: &str, environment: &str, version: &str) -> Result<Value> {
        self.post("/deployments/", json!({"prompt_name": name, "environment": environment, "version_string": version}))
            .await
    }

    /// A read-only API key for `environments`, as applications use.
    pub async fn api_key(&self, environments: &[&str]) -> Result<String> {
        let v = self.post("/api-keys/", json!({"name": "bench", "environments": environments})).await?;
        Ok(v["key"].as_str().context("a key")?.to_owned())
    }

    /// Resident memory that is the process's own (heap, stacks) and that maps files (the
    /// binary, shared libraries), in MB.
    pub fn memory_split_mb(&self) -> Result<(f64, f64)> {
        let v = self.process.status_kib(&["RssAnon:", "RssFile:"])?;
        Ok((v[0] as f64 * 1024.0 / 1e6, v[1] as f64 * 1024.0 / 1e6))
    }

    /// Resident memory (now, peak) in MB (10^6 bytes).
    pub fn memory_mb(&self) -> Result<(f64, f64)> {
        let (now, peak) = self.process.memory()?;
        Ok((now as f64 * 1024.0 / 1e6, peak as f64 * 1024.0 / 1e6))
    }
}

pub async fn ok(r: reqwest::Response) -> Result<Value> {
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The yardstick for the read path: a separate process (like the server) running a bare
/// axum handler that answers every request with the same bytes and headers.
pub struct BareServer {
    _process: Process,
    pub base: String,
}

impl BareServer {
    pub async fn start(body: &Path) -> Result<Self> {
        let port = free_port()?;
        let child = Command::new(std::env::current_exe()?)
            .args(["bare-server", "--bind", &format!("127.0.0.1:{port}"), "--body"])
            .arg(body)
            .stdout(Stdio::null())
            .spawn()?;
        let process = Process(child);
        until(Duration::from_secs(10), "the bare server", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await?;
        Ok(Self { _process: process, base: format!("http://127.0.0.1:{port}") })
    }
}

/// Runs the bare server (the hidden `bare-server` command).
pub async fn serve_bare(bind: &str, body: &Path) -> Result<()> {
    use axum::http::header;
    let bytes = axum::body::Bytes::from(std::fs::read(body)?);
    let app = axum::Router::new().fallback(move || {
        let bytes = bytes.clone();
        async move {
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::ETAG, "\"1\""),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                bytes,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind(bind).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
