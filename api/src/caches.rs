//! In-memory caches on the request path, kept exact by the follower: deployed prompts
//! (the hot read path) and the users and API keys every request is authenticated
//! against.
//!
//! Filling a cache races with invalidation: a value read just before the projector
//! commits a change could be inserted just after the follower evicted that key. Every
//! fill therefore reads the invalidation epoch before querying and, if the epoch moved
//! by the time the value is inserted, evicts what it inserted.

use axum::body::Bytes;
use axum::http::HeaderValue;
use moka::future::Cache;
use promptos_core::names::EnvironmentName;
use promptos_projector::queries;
use promptos_projector::views::{ApiKeyRow, UserRow};
use promptos_store::Db;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A deployed prompt's answer, serialised once: what the hot path sends.
pub struct CachedDeployed {
    pub etag: HeaderValue,
    pub body: Bytes,
}

/// Deployed prompts by (name, environment, includes resolved); `None` remembers that
/// nothing is deployed.
pub type DeployedCache = Cache<(String, String, bool), Option<Arc<CachedDeployed>>>;

#[derive(Clone)]
pub struct Caches {
    pub deployed: DeployedCache,
    users: Cache<String, Option<Arc<UserRow>>>,
    api_keys: Cache<String, Option<Arc<ApiKeyRow>>>,
    epoch: Arc<AtomicU64>,
    /// Deployed-prompt lookups answered from memory, and those that went to the database.
    deployed_hits: Arc<AtomicU64>,
    deployed_misses: Arc<AtomicU64>,
}

impl Caches {
    pub fn new(capacity: u64) -> Self {
        Self {
            deployed: Cache::new(capacity),
            users: Cache::new(10_000),
            api_keys: Cache::new(10_000),
            epoch: Arc::new(AtomicU64::new(0)),
            deployed_hits: Arc::new(AtomicU64::new(0)),
            deployed_misses: Arc::new(AtomicU64::new(0)),
        }
    }

    /// (hits, misses) of the deployed-prompt cache since start.
    pub fn deployed_stats(&self) -> (u64, u64) {
        (self.deployed_hits.load(Ordering::Relaxed), self.deployed_misses.load(Ordering::Relaxed))
    }

    /// A deployed prompt from memory, or loaded with `load` and cached.
    pub async fn deployed_entry<F, E>(
        &self,
        key: (String, String, bool),
        load: F,
    ) -> Result<Option<Arc<CachedDeployed>>, E>
    where
        F: Future<Output = Result<Option<Arc<CachedDeployed>>, E>>,
    {
        if let Some(v) = self.deployed.get(&key).await {
            self.deployed_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v);
        }
        self.deployed_misses.fetch_add(1, Ordering::Relaxed);
        self.load_into(&self.deployed, key, load).await
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Evicts everything the events of these streams may have changed.
    pub async fn invalidate_streams(&self, streams: &[String], environments: &[EnvironmentName]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for stream in streams {
            match stream.split_once(':') {
                Some(("prompt", name)) => {
                    for env in environments {
                        self.invalidate_deployed(name, env.as_str()).await;
                    }
                }
                Some(("user", name)) => self.users.invalidate(name).await,
                Some(("apikey", id)) => self.api_keys.invalidate(id).await,
                _ => {}
            }
        }
    }

    /// Evicts one prompt in one environment (both the raw and the resolved answer).
    pub async fn invalidate_deployed(&self, name: &str, environment: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for resolved in [false, true] {
            self.deployed.invalidate(&(name.to_owned(), environment.to_owned(), resolved)).await;
        }
    }

    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.deployed.invalidate_all();
        self.users.invalidate_all();
        self.api_keys.invalidate_all();
    }

    /// Looks `key` up, or loads and caches it with the epoch guard described above.
    pub async fn fill<K, V, F, E>(&self, cache: &Cache<K, V>, key: K, load: F) -> Result<V, E>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        if let Some(v) = cache.get(&key).await {
            return Ok(v);
        }
        self.load_into(cache, key, load).await
    }

    /// Loads `key` and caches it, evicting it again if an invalidation ran meanwhile.
    async fn load_into<K, V, F, E>(&self, cache: &Cache<K, V>, key: K, load: F) -> Result<V, E>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        let epoch = self.epoch();
        let value = load.await?;
        cache.insert(key.clone(), value.clone()).await;
        if self.epoch() != epoch {
            cache.invalidate(&key).await;
        }
        Ok(value)
    }

    pub async fn user(&self, db: &Db, username: &str) -> Result<Option<Arc<UserRow>>, sqlx::Error> {
        let load = async { Ok(queries::user(db, username).await?.map(Arc::new)) };
        self.fill(&self.users, username.to_owned(), load).await
    }

    pub async fn api_key(&self, db: &Db, key_id: &str) -> Result<Option<Arc<ApiKeyRow>>, sqlx::Error> {
        let load = async { Ok(queries::api_key(db, key_id).await?.map(Arc::new)) };
        self.fill(&self.api_keys, key_id.to_owned(), load).await
    }
}

/// Verification reads the whole log: one runs at a time, and a result is reused while
/// the log and the read models have not moved, for at most [`VerifyCache::REUSE`], so
/// that callers cannot keep the server busy re-reading the log.
#[derive(Default)]
pub struct VerifyCache {
    pub(crate) last: tokio::sync::Mutex<Option<VerifiedAt>>,
}

/// A verification's report, the log head and checkpoint it was made at, and when.
pub(crate) struct VerifiedAt {
    pub head: i64,
    pub checkpoint: i64,
    pub at: std::time::Instant,
    /// When it ran, in RFC 3339 (UTC).
    pub checked_at: String,
    pub report: promptos_projector::verify::VerifyReport,
}

impl VerifyCache {
    pub const REUSE: std::time::Duration = std::time::Duration::from_secs(5);
}
