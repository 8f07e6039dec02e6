//! The client: a cache of compiled prompts, filled on demand and kept exact by the
//! change feed.

use crate::error::{Error, Result, Unreachable};
use crate::feed::{self, Change};
use crate::snapshot;
use crate::template::{Compiled, Template};
use minijinja::Value;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

type Key = (String, String);
type Listener = Arc<dyn Fn(&Change) + Send + Sync>;

pub(crate) struct Entry {
    pub compiled: Compiled,
    /// When the server last confirmed this entry.
    pub checked: Instant,
    /// Set when a change was announced but the refresh failed: revalidate on next use.
    pub due: AtomicBool,
}

/// The newest thing this client has heard about a key, whether or not it holds the
/// prompt: answers and change messages can arrive in any order, and one that is older
/// than what was heard must not undo it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    /// The log position of the newest change announced (or seen in a 404).
    pub position: i64,
    /// That change took the prompt away (deleted, or nothing deployed).
    pub gone: bool,
}

pub(crate) struct Inner {
    pub base: String,
    pub http: reqwest::Client,
    pub cache: moka::sync::Cache<Key, Arc<Entry>>,
    pub marks: moka::sync::Cache<Key, Mark>,
    pub ttl: Duration,
    pub strict: bool,
    pub stale: AtomicBool,
    /// Highest change-feed position seen.
    pub last_position: AtomicI64,
    pub listeners: RwLock<Vec<Listener>>,
    pub snapshot_dirty: AtomicBool,
    pub feed_task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.feed_task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

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
            snapshot::load(&prompts, path).await;
            tokio::spawn(snapshot::keep_writing(Arc::downgrade(&prompts.inner), path.clone()));
        }
        if self.feed {
            feed::start(&prompts, self.nats_url)?;
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
        let entry = self.entry(name, env).await?;
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
        let entry = self.entry(name, env).await?;
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
        let entry = self.entry(name, env).await?;
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
        let entry = self.entry(name, env).await?;
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
        Ok(self.entry(name, env).await?.compiled.template.clone())
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
            let _ = self.store(compiled).await;
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

    async fn entry(&self, name: &str, env: &str) -> Result<Arc<Entry>> {
        let key = (name.to_owned(), env.to_owned());
        let cached = self.inner.cache.get(&key);
        if let Some(entry) = &cached {
            if entry.checked.elapsed() < self.inner.ttl && !entry.due.load(Ordering::Relaxed) {
                return Ok(entry.clone());
            }
        }
        let fetched = self.fetch(name, env, cached.as_deref(), None).await;
        if let Ok(Some(entry)) = &fetched {
            if entry.due.load(Ordering::Relaxed) {
                // A change was announced while this answer was on its way: ask again,
                // as of that change (and serve this answer if that fails).
                let announced = self.inner.marks.get(&key).map(|m| m.position);
                return match self.fetch(name, env, None, announced).await {
                    Ok(Some(newer)) => Ok(newer),
                    Ok(None) => Err(Error::NotFound { prompt: name.into(), environment: env.into() }),
                    Err(_) => Ok(entry.clone()),
                };
            }
        }
        match fetched {
            Ok(Some(entry)) => Ok(entry),
            Ok(None) => Err(Error::NotFound { prompt: name.into(), environment: env.into() }),
            Err(FetchError::Answer(e)) => Err(e),
            Err(FetchError::Unreachable(why)) => match cached {
                Some(entry) => {
                    tracing::warn!(prompt = name, environment = env, reason = %why, "PromptOS unreachable; serving the last known prompt");
                    Ok(entry)
                }
                None => Err(Error::Unavailable { prompt: name.into(), environment: env.into(), reason: why.0 }),
            },
        }
    }

    /// Asks the server for the prompt (revalidating `cached` with its ETag) and stores
    /// the answer. `Ok(None)`: nothing is deployed.
    pub(crate) async fn fetch(
        &self,
        name: &str,
        env: &str,
        cached: Option<&Entry>,
        min_position: Option<i64>,
    ) -> Result<Option<Arc<Entry>>, FetchError> {
        let url = format!("{}/prompts/{}/deployed/", self.inner.base, name);
        // Includes are resolved by the server; a redeploy of an included prompt is
        // announced for every prompt that includes it.
        let mut request = self.inner.http.get(url).query(&[("environment", env), ("resolve", "true")]);
        if let Some(min) = min_position {
            request = request.query(&[("min_position", min)]);
        }
        if let Some(etag) = cached.and_then(|c| c.compiled.etag.as_deref()) {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let key = (name.to_owned(), env.to_owned());
        // What this client knew when it asked: a 404 can only take away what is not
        // newer than that.
        let known_at_send = self.known_position(&key);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                self.inner.stale.store(true, Ordering::Relaxed);
                return Err(FetchError::Unreachable(Unreachable(e.to_string())));
            }
        };
        let status = response.status();
        if status.is_server_error() {
            self.inner.stale.store(true, Ordering::Relaxed);
            return Err(FetchError::Unreachable(Unreachable(format!("server answered {status}"))));
        }
        self.inner.stale.store(false, Ordering::Relaxed);
        match status {
            StatusCode::NOT_MODIFIED => {
                let Some(cached) = cached else {
                    return Err(FetchError::Answer(Error::Protocol("304 without a cached entry".into())));
                };
                let compiled =
                    Compiled::new(cached.compiled.template.clone(), cached.compiled.etag.clone(), self.inner.strict)
                        .map_err(FetchError::Answer)?;
                Ok(self.store(compiled).await)
            }
            StatusCode::NOT_FOUND => {
                // The server says which position its "nothing there" includes: an
                // older answer still on its way must not bring the prompt back.
                let at = response
                    .headers()
                    .get("x-promptos-position")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i64>().ok());
                if let Some(at) = at {
                    self.mark(&key, at, true);
                }
                self.inner.cache.entry(key).and_compute_with(|existing| match existing {
                    // Stored meanwhile from a newer answer or change: keep it.
                    Some(e) if e.value().compiled.template.position > known_at_send.max(at.unwrap_or(0)) => {
                        moka::ops::compute::Op::Nop
                    }
                    Some(_) => moka::ops::compute::Op::Remove,
                    None => moka::ops::compute::Op::Nop,
                });
                self.inner.snapshot_dirty.store(true, Ordering::Relaxed);
                Ok(None)
            }
            s if s.is_success() => {
                let etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let template: Template =
                    response.json().await.map_err(|e| FetchError::Answer(Error::Protocol(e.to_string())))?;
                let compiled = Compiled::new(template, etag, self.inner.strict).map_err(FetchError::Answer)?;
                Ok(self.store(compiled).await)
            }
            s => Err(FetchError::Answer(answer_error(s, response.text().await.unwrap_or_default(), name, env))),
        }
    }

    /// Stores an answer unless the cache already holds a newer one, or the prompt was
    /// taken away after this answer was made (answers and change messages can arrive
    /// out of order). An answer older than a change already announced is stored but
    /// due for a refresh. Returns what the cache holds afterwards.
    pub(crate) async fn store(&self, compiled: Compiled) -> Option<Arc<Entry>> {
        use moka::ops::compute::{CompResult, Op};
        let t = &compiled.template;
        let key = (t.prompt_name.clone(), t.environment.clone());
        let position = t.position;
        let fresh = Arc::new(Entry { compiled, checked: Instant::now(), due: AtomicBool::new(false) });
        let result = self.inner.cache.entry(key.clone()).and_compute_with(|existing| {
            // Read under the entry's lock: a change applied meanwhile marks first and
            // then looks at the cache, so one of the two sees the other.
            let mark = self.inner.marks.get(&key);
            match (existing, mark) {
                (Some(old), _) if old.value().compiled.template.position > position => Op::Nop,
                (_, Some(mark)) if mark.gone && mark.position > position => Op::Remove,
                (_, mark) => {
                    if mark.is_some_and(|m| m.position > position) {
                        fresh.due.store(true, Ordering::Relaxed);
                    }
                    Op::Put(fresh.clone())
                }
            }
        });
        self.inner.snapshot_dirty.store(true, Ordering::Relaxed);
        match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) | CompResult::Unchanged(e) => Some(e.into_value()),
            CompResult::Removed(_) | CompResult::StillNone(_) => None,
        }
    }

    /// Remembers a change to `key` at `position` (`gone`: it took the prompt away).
    fn mark(&self, key: &Key, position: i64, gone: bool) {
        self.inner.marks.entry(key.clone()).and_compute_with(|existing| match existing {
            Some(m) if m.value().position >= position => moka::ops::compute::Op::Nop,
            _ => moka::ops::compute::Op::Put(Mark { position, gone }),
        });
    }

    /// The newest position this client knows of for `key`: held or announced.
    fn known_position(&self, key: &Key) -> i64 {
        let held = self.inner.cache.get(key).map_or(0, |e| e.compiled.template.position);
        let heard = self.inner.marks.get(key).map_or(0, |m| m.position);
        held.max(heard)
    }

    /// Stores an entry read from the snapshot, marked as due for revalidation.
    pub(crate) async fn store_loaded(&self, compiled: Compiled) {
        let t = &compiled.template;
        let key = (t.prompt_name.clone(), t.environment.clone());
        let checked = Instant::now().checked_sub(self.inner.ttl * 2).unwrap_or_else(Instant::now);
        self.inner.cache.insert(key, Arc::new(Entry { compiled, checked, due: AtomicBool::new(false) }));
    }

    /// Applies a change message: refreshes the affected entry if the message is newer
    /// than what is cached, then tells the listeners.
    pub(crate) async fn apply(&self, change: Change) {
        self.inner.last_position.fetch_max(change.position, Ordering::Relaxed);
        let key = (change.prompt.clone(), change.environment.clone());
        // Remembered even when nothing is cached: a first fetch of this key may be on
        // its way with an older answer.
        self.mark(&key, change.position, change.version_string.is_none());
        if let Some(entry) = self.inner.cache.get(&key) {
            if change.position > entry.compiled.template.position {
                match change.version_string {
                    None => {
                        self.inner.cache.invalidate(&key);
                        self.inner.snapshot_dirty.store(true, Ordering::Relaxed);
                    }
                    Some(_) => {
                        // Fetch the new version as of this change (the server waits until
                        // it includes it); the old one keeps serving until then, and
                        // afterwards too if the server cannot be reached.
                        if let Err(e) =
                            self.fetch(&change.prompt, &change.environment, None, Some(change.position)).await
                        {
                            entry.due.store(true, Ordering::Relaxed);
                            tracing::warn!(prompt = %change.prompt, error = ?e, "refresh after a change failed; the next get revalidates");
                        }
                    }
                }
            }
        }
        let listeners: Vec<Listener> = self.inner.listeners.read().expect("listeners lock").clone();
        for l in listeners {
            l(&change);
        }
    }

    /// Revalidates every cached entry (after a reconnect, when messages may have been
    /// missed).
    pub(crate) async fn revalidate_all(&self) {
        let entries: Vec<Arc<Entry>> = self.inner.cache.iter().map(|(_, v)| v).collect();
        for entry in entries {
            let t = &entry.compiled.template;
            let _ = self.fetch(&t.prompt_name, &t.environment, Some(&entry), None).await;
        }
    }
}

#[derive(Debug)]
pub(crate) enum FetchError {
    Unreachable(Unreachable),
    Answer(Error),
}

fn answer_error(status: StatusCode, body: String, prompt: &str, env: &str) -> Error {
    let message = serde_json::from_str::<promptos_core::wire::ErrorBody>(&body)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| format!("HTTP {status}"));
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized(message),
        StatusCode::NOT_FOUND => Error::NotFound { prompt: prompt.into(), environment: env.into() },
        _ => Error::Protocol(message),
    }
}
