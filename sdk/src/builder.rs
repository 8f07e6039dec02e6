//! Configuring a client: [`Prompts::connect`] starts a [`PromptsBuilder`], whose
//! `build` loads the snapshot and starts the change feed and the fleet reports.

use crate::cache::Inner;
use crate::client::Prompts;
use crate::error::{Error, Result};
use crate::{feed, snapshot};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Configures a [`Prompts`] client; start with [`Prompts::connect`].
///
/// ```no_run
/// # async fn run() -> Result<(), promptos_sdk::Error> {
/// use std::time::Duration;
/// let prompts = promptos_sdk::Prompts::connect("http://127.0.0.1:8080")
///     .api_key("pos_…")
///     .nats_url("nats://127.0.0.1:4222")
///     .ttl(Duration::from_secs(300))
///     .cache_capacity(10_000)
///     .request_timeout(Duration::from_secs(2))
///     .snapshot_file("/var/lib/myapp/prompts.json")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct PromptsBuilder {
    url: String,
    api_key: Option<String>,
    nats_url: Option<String>,
    ttl: Duration,
    capacity: u64,
    timeout: Duration,
    snapshot: Option<PathBuf>,
    strict: bool,
    feed: bool,
    app_name: Option<String>,
    heartbeat: Duration,
    reports: bool,
    sdk: (String, String),
}

impl PromptsBuilder {
    /// The API key (or access token) sent as `Authorization: Bearer …`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").api_key("pos_…").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Subscribe to change events on NATS instead of the server's SSE feed.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").nats_url("nats://127.0.0.1:4222").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn nats_url(mut self, url: impl Into<String>) -> Self {
        self.nats_url = Some(url.into());
        self
    }

    /// How long an entry is trusted without hearing from the server; a safety net
    /// behind push invalidation (default 5 minutes).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").ttl(std::time::Duration::from_secs(600)).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Most (prompt, environment) entries kept (default 10,000).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").cache_capacity(50_000).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Timeout of each request to the server (default 5 seconds).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").request_timeout(std::time::Duration::from_secs(1)).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keep known prompts in this file and load them at start, so an application can
    /// start while the server is down.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").snapshot_file("prompts.json").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn snapshot_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.snapshot = Some(path.into());
        self
    }

    /// Render missing variables as empty text instead of failing with
    /// [`Error::MissingVariable`].
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").lenient().build().await?;
    /// # Ok(()) }
    /// ```
    pub fn lenient(mut self) -> Self {
        self.strict = false;
        self
    }

    /// Do not subscribe to the change feed (rely on the TTL alone).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").without_change_feed().build().await?;
    /// # Ok(()) }
    /// ```
    pub fn without_change_feed(mut self) -> Self {
        self.feed = false;
        self
    }

    /// Names the application in the server's fleet view (`GET /fleet`, the Fleet
    /// page), so that its instances are counted together.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").app_name("support-chatbot").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }

    /// How often this instance reports what it serves when nothing changes (default
    /// 15 seconds, 1 s to 1 h; each heartbeat comes up to a fifth earlier, at random).
    /// The server counts an instance as gone after three missed heartbeats.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").heartbeat(std::time::Duration::from_secs(30)).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.clamp(Duration::from_secs(1), Duration::from_secs(3_600));
        self
    }

    /// Do not report to the server's fleet view. By default the client reports on
    /// start, right after it applies changes, and on every heartbeat: its instance id,
    /// host, process id, `app_name` and, per cached prompt, the version it serves. A
    /// failed report never affects `get`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").without_fleet_reports().build().await?;
    /// # Ok(()) }
    /// ```
    pub fn without_fleet_reports(mut self) -> Self {
        self.reports = false;
        self
    }

    /// The SDK named in fleet reports, for SDKs built on this one (the Python SDK
    /// reports `python` and its own version).
    #[doc(hidden)]
    pub fn reported_sdk(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.sdk = (name.into(), version.into());
        self
    }

    /// Builds the client: loads the snapshot (if any) and starts the change-feed
    /// subscription in the background. It does not need the server to be up.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// use promptos_sdk::Prompts;
    /// let prompts = Prompts::connect("http://127.0.0.1:8080").build().await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<Prompts> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| Error::Config("the API key contains characters not allowed in a header".into()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        let identity = self.reports.then(|| crate::fleet::Identity::new(self.app_name, self.sdk, self.heartbeat));
        let inner = Arc::new(Inner {
            base: self.url.trim_end_matches('/').to_owned(),
            http,
            cache: moka::sync::Cache::new(self.capacity),
            marks: moka::sync::Cache::new(self.capacity.saturating_mul(2).max(1024)),
            ttl: self.ttl,
            strict: self.strict,
            stale: AtomicBool::new(false),
            last_position: AtomicI64::new(0),
            listeners: RwLock::new(Vec::new()),
            snapshot_dirty: AtomicBool::new(false),
            feed_task: std::sync::Mutex::new(None),
            instance_id: identity.as_ref().map(|i| i.instance_id.clone()),
            report_wake: identity.as_ref().map(|_| Arc::new(tokio::sync::Notify::new())),
            report_task: std::sync::Mutex::new(None),
        });
        let prompts = Prompts { inner };
        if let Some(path) = &self.snapshot {
            snapshot::load(&prompts.inner, path).await;
            tokio::spawn(snapshot::keep_writing(Arc::downgrade(&prompts.inner), path.clone()));
        }
        if self.feed {
            feed::start(&prompts.inner, self.nats_url)?;
        }
        if let (Some(identity), Some(wake)) = (identity, &prompts.inner.report_wake) {
            let task =
                tokio::spawn(crate::fleet::keep_reporting(Arc::downgrade(&prompts.inner), identity, wake.clone()));
            *prompts.inner.report_task.lock().expect("report task lock") = Some(task.abort_handle());
        }
        Ok(prompts)
    }
}

impl Prompts {
    /// Starts configuring a client for the server at `url`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), promptos_sdk::Error> {
    /// let prompts = promptos_sdk::Prompts::connect("http://127.0.0.1:8080").api_key("pos_…").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn connect(url: impl Into<String>) -> PromptsBuilder {
        PromptsBuilder {
            url: url.into(),
            api_key: None,
            nats_url: None,
            ttl: Duration::from_secs(300),
            capacity: 10_000,
            timeout: Duration::from_secs(5),
            snapshot: None,
            strict: true,
            feed: true,
            app_name: None,
            heartbeat: Duration::from_secs(15),
            reports: true,
            sdk: ("rust".into(), env!("CARGO_PKG_VERSION").into()),
        }
    }
}
