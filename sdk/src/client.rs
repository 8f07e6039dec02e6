//! The client applications hold: a builder for its options, and one call per way of
//! getting a prompt. The cache behind it is [`crate::cache`].

use crate::cache::{answer_error, Inner};
use crate::error::{Error, Result};
use crate::feed::{self, Change};
use crate::snapshot;
use crate::template::{Compiled, Template};
use minijinja::Value;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A PromptOS client. Cheap to clone; clones share one cache and one subscription.
///
/// ```no_run
/// # async fn run() -> Result<(), promptos_sdk::Error> {
/// let prompts = promptos_sdk::Prompts::connect("http://127.0.0.1:8080")
///     .api_key("pos_…")
///     .build()
///     .await?;
/// let text = prompts
///     .get("customer-support-agent", "production", minijinja::context! { customer_name => "Alex" })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Prompts {
    pub(crate) inner: Arc<Inner>,
}

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
        });
        let prompts = Prompts { inner };
        if let Some(path) = &self.snapshot {
            snapshot::load(&prompts.inner, path).await;
            tokio::spawn(snapshot::keep_writing(Arc::downgrade(&prompts.inner), path.clone()));
        }
        if self.feed {
            feed::start(&prompts.inner, self.nats_url)?;
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
        }
    }

    /// [`Prompts::get`] when the cache can answer without waiting (the prompt is cached,
    /// within the TTL, and no change was announced since): never does I/O. `None`
    /// otherwise; then call `get`.
    ///
    /// ```no_run
    /// # async fn run(prompts: promptos_sdk::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let vars = minijinja::context! { name => "Alex" };
    /// let text = match prompts.get_cached("greeting", "production", &vars) {
    ///     Some(served) => served?,
    ///     None => prompts.get("greeting", "production", &vars).await?,
    /// };
    /// # Ok(()) }
    /// ```
    pub fn get_cached(&self, name: &str, env: &str, vars: impl Serialize) -> Option<Result<String>> {
        let entry = self.inner.fresh(name, env)?;
        Some(entry.compiled.render(&Value::from_serialize(&vars), self.inner.strict))
    }

    /// The prompt deployed as `name` in `env`, rendered with `vars` (anything that
    /// serializes to a map: `minijinja::context!{..}`, a `HashMap`, a struct).
    ///
    /// Served from the cache when it holds the prompt (a hash lookup plus rendering);
    /// fetched otherwise. When the server cannot be reached, the last known text is
    /// served and [`Prompts::is_stale`] turns true.
    ///
    /// ```no_run
    /// # async fn run(prompts: promptos_sdk::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let text = prompts.get("greeting", "production", minijinja::context! { name => "Alex" }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, name: &str, env: &str, vars: impl Serialize) -> Result<String> {
        if let Some(served) = self.get_cached(name, env, &vars) {
            return served;
        }
        let entry = self.inner.entry(name, env).await?;
        entry.compiled.render(&Value::from_serialize(&vars), self.inner.strict)
    }

    /// The chat prompt deployed as `name` in `env`: every message rendered with `vars`,
    /// and the model configuration deployed with it. A text prompt is
    /// [`Error::WrongKind`] (use [`Prompts::get`]).
    ///
    /// ```no_run
    /// # async fn run(prompts: promptos_sdk::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let chat = prompts.get_chat("support-chat", "production", minijinja::context! { question => "Where is my order?" }).await?;
    /// for m in &chat.messages {
    ///     println!("{}: {}", m.role, m.content);
    /// }
    /// let model = chat.config.as_ref().and_then(|c| c["model"].as_str());
    /// # Ok(()) }
    /// ```
    pub async fn get_chat(&self, name: &str, env: &str, vars: impl Serialize) -> Result<crate::ChatPrompt> {
        let entry = self.inner.entry(name, env).await?;
        entry.compiled.render_chat(&Value::from_serialize(&vars), self.inner.strict)
    }

    /// [`Prompts::get_chat`] for one subject: while an A/B experiment splits the
    /// environment, the subject's variant (messages and config), chosen as
    /// [`Prompts::get_for`] chooses; `experiment_id` says which experiment chose it.
    ///
    /// ```no_run
    /// # async fn run(prompts: promptos_sdk::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let chat = prompts.get_chat_for("support-chat", "production", "user-4711", minijinja::context! { question => "Hi" }).await?;
    /// println!("served {}", chat.version_string);
    /// # Ok(()) }
    /// ```
    pub async fn get_chat_for(
        &self,
        name: &str,
        env: &str,
        subject_key: &str,
        vars: impl Serialize,
    ) -> Result<crate::ChatPrompt> {
        let entry = self.inner.entry(name, env).await?;
        entry.compiled.render_chat_for(subject_key, &Value::from_serialize(&vars), self.inner.strict)
    }

    /// The prompt deployed as `name` in `env` for one subject (a user or session id),
    /// rendered, with the version it came from. While an A/B experiment splits the
    /// environment, the subject's variant is chosen by a stable hash of the prompt, the
    /// experiment and `subject_key`; otherwise it is the live version.
    ///
    /// ```no_run
    /// # async fn run(prompts: promptos_sdk::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let served = prompts
    ///     .get_for("checkout-copy", "production", "user-4711", minijinja::context! { name => "Alex" })
    ///     .await?;
    /// println!("showing {} ({})", served.text, served.version_string);
    /// // …later, log the outcome with served.version_string
    /// # Ok(()) }
    /// ```
    pub async fn get_for(
        &self,
        name: &str,
        env: &str,
        subject_key: &str,
        vars: impl Serialize,
    ) -> Result<crate::Served> {
        let entry = self.inner.entry(name, env).await?;
        entry.compiled.render_for(subject_key, &Value::from_serialize(&vars), self.inner.strict)
    }

    /// The raw template with its version and position, without rendering.
    ///
    /// ```no_run
    /// # async fn run(prompts: promptos_sdk::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let t = prompts.get_template("greeting", "production").await?;
    /// println!("{} is live: {:?}", t.version_string, t.prompt_text);
    /// # Ok(()) }
    /// ```
    pub async fn get_template(&self, name: &str, env: &str) -> Result<Template> {
        Ok(self.inner.entry(name, env).await?.compiled.template.clone())
    }

    /// Fetches every prompt deployed in `env` in one request, so that later `get`s are
    /// cache hits. Returns how many prompts were loaded.
    ///
    /// ```no_run
    /// # async fn run(prompts: promptos_sdk::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let n = prompts.prefetch("production").await?;
    /// # Ok(()) }
    /// ```
    pub async fn prefetch(&self, env: &str) -> Result<usize> {
        #[derive(serde::Deserialize)]
        struct List {
            items: Vec<Template>,
        }
        let url = format!("{}/deployed/", self.inner.base);
        let response = self.inner.http.get(url).query(&[("environment", env), ("resolve", "true")]).send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                self.inner.stale.store(true, Ordering::Relaxed);
                return Err(Error::Unavailable { prompt: "*".into(), environment: env.into(), reason: e.to_string() });
            }
        };
        let status = response.status();
        if !status.is_success() {
            return Err(answer_error(status, response.text().await.unwrap_or_default(), "*", env));
        }
        let list: List = response.json().await.map_err(|e| Error::Protocol(e.to_string()))?;
        let n = list.items.len();
        for t in list.items {
            let compiled = Compiled::new(t, None, self.inner.strict)?;
            let _ = self.inner.store(compiled).await;
        }
        self.inner.stale.store(false, Ordering::Relaxed);
        Ok(n)
    }

    /// Calls `callback` for every change message this client receives (after its cache
    /// has been updated).
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::Prompts) {
    /// prompts.on_change(|change| println!("{} is now {:?} in {}", change.prompt, change.version_string, change.environment));
    /// # }
    /// ```
    pub fn on_change(&self, callback: impl Fn(&Change) + Send + Sync + 'static) {
        self.inner.listeners.write().expect("listeners lock").push(Arc::new(callback));
    }

    /// True when the last attempt to reach the server failed, so answers may be older
    /// than what is deployed.
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::Prompts) {
    /// if prompts.is_stale() { eprintln!("serving the last known prompts; PromptOS is unreachable"); }
    /// # }
    /// ```
    pub fn is_stale(&self) -> bool {
        self.inner.stale.load(Ordering::Relaxed)
    }

    /// True when what this client serves for `name` in `env` may be older than what is
    /// deployed: the server could not be reached at the last attempt (as
    /// [`Prompts::is_stale`]), or this prompt came from the snapshot and the server has
    /// not confirmed it since, or its last revalidation or the refresh after an
    /// announced change failed. False for a prompt confirmed by the server while the
    /// server is reachable.
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::Prompts) {
    /// if prompts.is_prompt_stale("greeting", "production") {
    ///     eprintln!("serving the last known greeting; it may be out of date");
    /// }
    /// # }
    /// ```
    pub fn is_prompt_stale(&self, name: &str, env: &str) -> bool {
        self.is_stale() || self.inner.cache.get(&(name.to_owned(), env.to_owned())).is_some_and(|e| e.is_stale())
    }
}
