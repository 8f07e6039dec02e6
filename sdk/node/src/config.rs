//! The options of `new Prompts({...})` as the Rust SDK's builder, and what `ready()`
//! waits for.

use crate::{errors, Shared};
use napi_derive::napi;
use promptos_sdk::{Error, Prompts, PromptsBuilder};
use std::sync::Arc;
use std::time::Duration;

/// What the JS layer passes to `connect` (its `PromptsOptions`, defaults filled in).
#[napi(object)]
pub struct Options {
    pub url: String,
    pub api_key: Option<String>,
    pub nats_url: Option<String>,
    pub snapshot_path: Option<String>,
    pub ttl_seconds: Option<f64>,
    pub timeout_ms: Option<f64>,
    pub strict: Option<bool>,
    pub change_feed: Option<bool>,
    pub app_name: Option<String>,
    pub heartbeat_seconds: Option<f64>,
    pub fleet_reports: Option<bool>,
    /// The SDK version reported in the fleet view (the npm package's).
    pub sdk_version: Option<String>,
}

fn duration(name: &str, value: f64) -> napi::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| napi::Error::from_reason(format!("{name} must be a positive number, not {value}")))
}

impl Options {
    pub fn ttl(&self) -> napi::Result<Duration> {
        duration("ttlSeconds", self.ttl_seconds.unwrap_or(300.0))
    }

    pub fn builder(&self) -> napi::Result<PromptsBuilder> {
        let timeout = duration("timeoutMs", self.timeout_ms.unwrap_or(5_000.0) / 1_000.0)?;
        let heartbeat = duration("heartbeatSeconds", self.heartbeat_seconds.unwrap_or(15.0))?;
        let mut builder = Prompts::connect(&self.url).ttl(self.ttl()?).request_timeout(timeout).heartbeat(heartbeat);
        if let Some(key) = &self.api_key {
            builder = builder.api_key(key);
        }
        if let Some(nats) = &self.nats_url {
            builder = builder.nats_url(nats);
        }
        if let Some(path) = &self.snapshot_path {
            builder = builder.snapshot_file(path);
        }
        if self.strict == Some(false) {
            builder = builder.lenient();
        }
        if self.change_feed == Some(false) {
            builder = builder.without_change_feed();
        }
        if let Some(app) = &self.app_name {
            builder = builder.app_name(app);
        }
        if self.fleet_reports == Some(false) {
            builder = builder.without_fleet_reports();
        }
        let version = self.sdk_version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").into());
        Ok(builder.reported_sdk("node", version))
    }
}

/// Loads every prompt live in `environment`. When the server cannot be reached and a
/// snapshot was loaded, asks once for each prompt the snapshot holds, so that each is
/// known as unreachable and served from the snapshot by the synchronous calls (the
/// keeper keeps it so); fails with `Unavailable` only when there is no snapshot.
pub async fn ready(shared: Arc<Shared>, environment: String) -> napi::Result<usize> {
    match shared.prompts.prefetch(&environment).await {
        Ok(n) => Ok(n),
        Err(Error::Unavailable { .. }) if shared.snapshot.is_some() => {
            let names = snapshot_names(shared.snapshot.as_deref().expect("checked"), &environment).await;
            for name in &names {
                shared.in_use.note(name, &environment);
            }
            let asks = names.iter().map(|name| shared.prompts.get_template(name, &environment));
            let served = futures::future::join_all(asks).await.into_iter().filter(Result::is_ok).count();
            Ok(served)
        }
        Err(e) => Err(errors::to_js(e)),
    }
}

/// The prompts of `environment` in a snapshot file (`entries[].prompt_name`): read
/// loosely, since its format belongs to the Rust SDK; unreadable means none.
async fn snapshot_names(path: &std::path::Path, environment: &str) -> Vec<String> {
    let Ok(bytes) = tokio::fs::read(path).await else { return Vec::new() };
    let Ok(file) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Vec::new() };
    let entries = file.get("entries").and_then(|e| e.as_array()).cloned().unwrap_or_default();
    entries
        .iter()
        .filter(|e| e.get("environment").and_then(|v| v.as_str()) == Some(environment))
        .filter_map(|e| e.get("prompt_name").and_then(|v| v.as_str()).map(str::to_owned))
        .collect()
}
