//! Real processes for SDK tests: `promptos serve` and `nats-server`, each on a free
//! loopback port, stoppable and restartable on the same port.

#![allow(dead_code)]

pub mod proxy;

use promptos_testkit::Backend;
#[allow(unused_imports)] // not every test binary that includes this module uses it
pub use promptos_testkit::NatsServer as Nats;
use promptos_testkit::{scratch, Scratch};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "sdk-tests-admin-password";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The `promptos` binary built beside this test.
pub fn promptos_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("promptos");
    assert!(bin.exists(), "{} is missing: build it first (cargo build --bin promptos)", bin.display());
    bin
}

/// Polls `check` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    nats_url: Option<String>,
    pub scratch: Scratch,
}

impl Server {
    pub async fn start(nats_url: Option<String>) -> Self {
        let scratch = scratch(Backend::Sqlite).await;
        let port = free_port();
        let mut s = Server {
            child: None,
            port,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            token: String::new(),
            nats_url,
            scratch,
        };
        s.resume().await;
        let form = [("username", "admin"), ("password", ADMIN_PASSWORD)];
        let r = s.http.post(format!("{}/auth/token", s.base)).form(&form).send().await.unwrap();
        s.token = ok(r).await["access_token"].as_str().unwrap().to_owned();
        s
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn resume(&mut self) {
        let mut cmd = Command::new(promptos_binary());
        cmd.args(["serve", "--bind", &format!("127.0.0.1:{}", self.port)])
            .env("PROMPTOS_DATABASE_URL", &self.scratch.url)
            .env("PROMPTOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PROMPTOS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match &self.nats_url {
            Some(url) => cmd.env("PROMPTOS_NATS_URL", url),
            None => cmd.env_remove("PROMPTOS_NATS_URL"),
        };
        self.child = Some(cmd.spawn().unwrap());
        let http = self.http.clone();
        let url = format!("{}/readyz", self.base);
        eventually(Duration::from_secs(30), "the server to be ready", || {
            let http = http.clone();
            let url = url.clone();
            async move { http.get(url).send().await.is_ok_and(|r| r.status() == StatusCode::OK) }
        })
        .await;
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let r =
            self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(&body).send().await.unwrap();
        ok(r).await
    }

    /// A prompt with versions `v1..=n`, texts `"{text} v{i}"`, v1 deployed to `envs`.
    pub async fn prompt(&self, name: &str, text: &str, versions: usize, envs: &[&str]) {
        self.post("/prompts/", json!({"name": name})).await;
        for i in 1..=versions {
            let body = json!({"version_string": format!("v{i}"), "text": format!("{text} v{i}")});
            self.post(&format!("/prompts/{name}/versions/"), body).await;
        }
        for env in envs {
            self.deploy(name, env, "v1").await;
        }
    }

    pub async fn deploy(&self, name: &str, env: &str, version: &str) -> Value {
        self.post("/deployments/", json!({"prompt_name": name, "environment": env, "version_string": version})).await
    }

    pub async fn api_key(&self, envs: &[&str]) -> String {
        let v = self.post("/api-keys/", json!({"name": "sdk test", "environments": envs})).await;
        v["key"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}
