//! The cache of compiled prompts and what keeps it exact: fetching from the server,
//! storing answers in the order that matters (not the order they arrive), and applying
//! change messages. The feed and the snapshot work on it; [`crate::Prompts`] is its
//! public face.

use crate::error::{Error, Result, Unreachable};
use crate::template::{Compiled, Template};
use promptos_core::wire::ChangeMessage as Change;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub(crate) type Key = (String, String);
pub(crate) type Listener = Arc<dyn Fn(&Change) + Send + Sync>;

pub(crate) struct Entry {
    pub compiled: Compiled,
    /// When the server last confirmed this entry.
    pub checked: Instant,
    /// Set when a change was announced but the refresh failed: revalidate on next use.
    pub due: AtomicBool,
    /// Not confirmed by the server since it was loaded from the snapshot, or the last
    /// attempt to revalidate it could not reach the server.
    pub unconfirmed: AtomicBool,
    /// When the last attempt to revalidate it could not reach the server.
    unreachable_at: std::sync::Mutex<Option<Instant>>,
    /// When this client started serving this version (epoch ms), for the fleet report.
    applied_at_ms: AtomicI64,
}

/// After an attempt to revalidate an entry could not reach the server, the entry is
/// served as it is for this long before the next attempt: a server that is down, or
/// that accepts connections and never answers, must not make every call wait for the
/// request timeout.
pub(crate) const RETRY_UNREACHABLE_AFTER: Duration = Duration::from_secs(1);

impl Entry {
    fn new(compiled: Compiled, checked: Instant, unconfirmed: bool) -> Self {
        Self {
            compiled,
            checked,
            due: AtomicBool::new(false),
            unconfirmed: AtomicBool::new(unconfirmed),
            unreachable_at: std::sync::Mutex::new(None),
            applied_at_ms: AtomicI64::new(epoch_ms(SystemTime::now())),
        }
    }

    /// When this client started serving this version.
    pub(crate) fn applied_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.applied_at_ms.load(Ordering::Relaxed).max(0) as u64)
    }

    /// Serves the same version (and experiment) as `other`.
    fn same_version(&self, other: &Entry) -> bool {
        let (a, b) = (&self.compiled.template, &other.compiled.template);
        a.version_string == b.version_string
            && a.experiment.as_ref().map(|x| &x.experiment_id) == b.experiment.as_ref().map(|x| &x.experiment_id)
    }

    /// Remembers that revalidating this entry could not reach the server.
    fn unreachable(&self) {
        self.unconfirmed.store(true, Ordering::Relaxed);
        if let Ok(mut at) = self.unreachable_at.lock() {
            *at = Some(Instant::now());
        }
    }

    /// The last attempt to revalidate it could not reach the server, a moment ago.
    fn recently_unreachable(&self) -> bool {
        self.unreachable_at.lock().ok().and_then(|at| *at).is_some_and(|at| at.elapsed() < RETRY_UNREACHABLE_AFTER)
    }

    /// May be served without asking the server: within the TTL and with no change
    /// announced since it was fetched.
    fn is_fresh(&self, ttl: Duration) -> bool {
        self.checked.elapsed() < ttl && !self.due.load(Ordering::Relaxed)
    }

    /// What is served from this entry may be older than what is deployed.
    pub(crate) fn is_stale(&self) -> bool {
        self.due.load(Ordering::Relaxed) || self.unconfirmed.load(Ordering::Relaxed)
    }
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
    /// This process's id in the server's fleet view, and what wakes its reporter (None
    /// when fleet reports are switched off).
    pub instance_id: Option<String>,
    pub report_wake: Option<Arc<tokio::sync::Notify>>,
    pub report_task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in [&self.feed_task, &self.report_task] {
            if let Some(task) = task.lock().ok().and_then(|mut t| t.take()) {
                task.abort();
            }
        }
    }
}

impl Inner {
    /// What this instance serves changed: the fleet report goes out soon.
    fn served_changed(&self) {
        if let Some(wake) = &self.report_wake {
            wake.notify_one();
        }
    }

    /// The cached entry for `name` in `env` if it may be served without asking the
    /// server: within the TTL and with no change announced since it was fetched.
    pub(crate) fn fresh(&self, name: &str, env: &str) -> Option<Arc<Entry>> {
        let entry = self.cache.get(&(name.to_owned(), env.to_owned()))?;
        entry.is_fresh(self.ttl).then_some(entry)
    }

    pub(crate) async fn entry(&self, name: &str, env: &str) -> Result<Arc<Entry>> {
        let key = (name.to_owned(), env.to_owned());
        let cached = self.cache.get(&key);
        if let Some(entry) = &cached {
            // Fresh, or the server was unreachable a moment ago: serve it as it is.
            if entry.is_fresh(self.ttl) || entry.recently_unreachable() {
                return Ok(entry.clone());
            }
        }
        let fetched = self.fetch(name, env, cached.as_deref(), None).await;
        if let Ok(Some(entry)) = &fetched {
            if entry.due.load(Ordering::Relaxed) {
                // A change was announced while this answer was on its way: ask again,
                // as of that change (and serve this answer if that fails).
                let announced = self.marks.get(&key).map(|m| m.position);
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
                    entry.unreachable();
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
        let url = format!("{}/prompts/{}/deployed/", self.base, name);
        // Includes are resolved by the server; a redeploy of an included prompt is
        // announced for every prompt that includes it.
        let mut request = self.http.get(url).query(&[("environment", env), ("resolve", "true")]);
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
                self.stale.store(true, Ordering::Relaxed);
                return Err(FetchError::Unreachable(Unreachable(e.to_string())));
            }
        };
        let status = response.status();
        if status.is_server_error() {
            self.stale.store(true, Ordering::Relaxed);
            return Err(FetchError::Unreachable(Unreachable(format!("server answered {status}"))));
        }
        self.stale.store(false, Ordering::Relaxed);
        match status {
            StatusCode::NOT_MODIFIED => {
                let Some(cached) = cached else {
                    return Err(FetchError::Answer(Error::Protocol("304 without a cached entry".into())));
                };
                let compiled =
                    Compiled::new(cached.compiled.template.clone(), cached.compiled.etag.clone(), self.strict)
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
                self.cache.entry(key).and_compute_with(|existing| match existing {
                    // Stored meanwhile from a newer answer or change: keep it.
                    Some(e) if e.value().compiled.template.position > known_at_send.max(at.unwrap_or(0)) => {
                        moka::ops::compute::Op::Nop
                    }
                    Some(_) => moka::ops::compute::Op::Remove,
                    None => moka::ops::compute::Op::Nop,
                });
                self.snapshot_dirty.store(true, Ordering::Relaxed);
                self.served_changed();
                Ok(None)
            }
            s if s.is_success() => {
                let etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let template: Template =
                    response.json().await.map_err(|e| FetchError::Answer(Error::Protocol(e.to_string())))?;
                let compiled = Compiled::new(template, etag, self.strict).map_err(FetchError::Answer)?;
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
        let fresh = Arc::new(Entry::new(compiled, Instant::now(), false));
        let mut changed = false;
        let result = self.cache.entry(key.clone()).and_compute_with(|existing| {
            // Read under the entry's lock: a change applied meanwhile marks first and
            // then looks at the cache, so one of the two sees the other.
            let mark = self.marks.get(&key);
            match (existing, mark) {
                (Some(old), _) if old.value().compiled.template.position > position => Op::Nop,
                (_, Some(mark)) if mark.gone && mark.position > position => Op::Remove,
                (old, mark) => {
                    if mark.is_some_and(|m| m.position > position) {
                        fresh.due.store(true, Ordering::Relaxed);
                    }
                    match old {
                        // Still the same version: it has been served since then.
                        Some(old) if old.value().same_version(&fresh) => {
                            let since = old.value().applied_at_ms.load(Ordering::Relaxed);
                            fresh.applied_at_ms.store(since, Ordering::Relaxed);
                        }
                        _ => changed = true,
                    }
                    Op::Put(fresh.clone())
                }
            }
        });
        self.snapshot_dirty.store(true, Ordering::Relaxed);
        if changed || matches!(result, CompResult::Removed(_)) {
            self.served_changed();
        }
        match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) | CompResult::Unchanged(e) => Some(e.into_value()),
            CompResult::Removed(_) | CompResult::StillNone(_) => None,
        }
    }

    /// Remembers a change to `key` at `position` (`gone`: it took the prompt away).
    pub(crate) fn mark(&self, key: &Key, position: i64, gone: bool) {
        self.marks.entry(key.clone()).and_compute_with(|existing| match existing {
            Some(m) if m.value().position >= position => moka::ops::compute::Op::Nop,
            _ => moka::ops::compute::Op::Put(Mark { position, gone }),
        });
    }

    /// The newest position this client knows of for `key`: held or announced.
    fn known_position(&self, key: &Key) -> i64 {
        let held = self.cache.get(key).map_or(0, |e| e.compiled.template.position);
        let heard = self.marks.get(key).map_or(0, |m| m.position);
        held.max(heard)
    }

    /// Stores an entry read from the snapshot, marked as due for revalidation.
    pub(crate) async fn store_loaded(&self, compiled: Compiled) {
        let t = &compiled.template;
        let key = (t.prompt_name.clone(), t.environment.clone());
        let checked = Instant::now().checked_sub(self.ttl * 2).unwrap_or_else(Instant::now);
        self.cache.insert(key, Arc::new(Entry::new(compiled, checked, true)));
    }

    /// Applies a change message: refreshes the affected entry if the message is newer
    /// than what is cached, then tells the listeners.
    pub(crate) async fn apply(&self, change: Change) {
        self.last_position.fetch_max(change.position, Ordering::Relaxed);
        let key = (change.prompt.clone(), change.environment.clone());
        // Remembered even when nothing is cached: a first fetch of this key may be on
        // its way with an older answer.
        self.mark(&key, change.position, change.version_string.is_none());
        if let Some(entry) = self.cache.get(&key) {
            if change.position > entry.compiled.template.position {
                match change.version_string {
                    None => {
                        self.cache.invalidate(&key);
                        self.snapshot_dirty.store(true, Ordering::Relaxed);
                        self.served_changed();
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
        let listeners: Vec<Listener> = self.listeners.read().expect("listeners lock").clone();
        for l in listeners {
            l(&change);
        }
    }

    /// Revalidates every cached entry (after a reconnect, when messages may have been
    /// missed).
    pub(crate) async fn revalidate_all(&self) {
        let entries: Vec<Arc<Entry>> = self.cache.iter().map(|(_, v)| v).collect();
        for entry in entries {
            let t = &entry.compiled.template;
            if let Err(FetchError::Unreachable(_)) =
                self.fetch(&t.prompt_name, &t.environment, Some(&entry), None).await
            {
                entry.unreachable();
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum FetchError {
    Unreachable(Unreachable),
    Answer(Error),
}

pub(crate) fn answer_error(status: StatusCode, body: String, prompt: &str, env: &str) -> Error {
    let message = serde_json::from_str::<promptos_core::wire::ErrorBody>(&body)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| format!("HTTP {status}"));
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized(message),
        StatusCode::NOT_FOUND => Error::NotFound { prompt: prompt.into(), environment: env.into() },
        _ => Error::Protocol(message),
    }
}
