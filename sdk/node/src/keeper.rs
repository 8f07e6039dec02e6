//! Keeps what a synchronous `get` needs in the cache.
//!
//! Node's `get` must answer without waiting, so it can only serve what the Rust SDK's
//! `get_cached` serves (cached, within the TTL, no change announced since) or what its
//! async `get` answers on the first poll without I/O (the server was unreachable a
//! moment ago: the last known text). The keeper makes those two cover the life of a
//! process: while the server answers, it reloads every environment in use each half TTL
//! (one request per environment), so entries never expire under a running
//! application; while it does not, it asks for every prompt in use every few hundred
//! milliseconds, which marks each as just found unreachable, so its last known text
//! stays servable (and becomes fresh again the moment the server is back).

use crate::Shared;
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::Duration;

/// How often prompts in use are retried while the server cannot be reached (below the
/// SDK's one-second "unreachable a moment ago" window).
const RETRY_WHILE_DOWN: Duration = Duration::from_millis(300);

/// The (environment, prompt) pairs this process has asked for.
#[derive(Default)]
pub struct InUse {
    by_env: RwLock<HashMap<String, HashSet<String>>>,
}

impl InUse {
    /// Remembers `name` in `env`; a read lock and two lookups when already known (on
    /// every synchronous call).
    pub fn note(&self, name: &str, env: &str) {
        let known = self.by_env.read().map(|m| m.get(env).is_some_and(|names| names.contains(name)));
        if known.unwrap_or(true) {
            return;
        }
        if let Ok(mut m) = self.by_env.write() {
            m.entry(env.to_owned()).or_default().insert(name.to_owned());
        }
    }

    /// Remembers an environment (its prompts are reloaded together).
    pub fn note_env(&self, env: &str) {
        if let Ok(mut m) = self.by_env.write() {
            m.entry(env.to_owned()).or_default();
        }
    }

    fn snapshot(&self) -> Vec<(String, Vec<String>)> {
        self.by_env
            .read()
            .map(|m| m.iter().map(|(env, names)| (env.clone(), names.iter().cloned().collect())).collect())
            .unwrap_or_default()
    }
}

/// Runs until aborted (on `close()`); holds the client only while it works.
pub async fn keep(shared: std::sync::Weak<Shared>, ttl: Duration) {
    let reload_every = (ttl / 2).max(Duration::from_millis(500));
    let mut wait = RETRY_WHILE_DOWN;
    loop {
        tokio::time::sleep(wait).await;
        let Some(shared) = shared.upgrade() else { return };
        let (client, in_use) = (&shared.prompts, &shared.in_use);
        wait = if client.is_stale() {
            let asks = in_use.snapshot().into_iter().flat_map(|(env, names)| {
                names.into_iter().map(move |name| {
                    let env = env.clone();
                    async move { client.get_template(&name, &env).await.map(drop) }
                })
            });
            futures::future::join_all(asks).await;
            RETRY_WHILE_DOWN
        } else {
            for (env, _) in in_use.snapshot() {
                let _ = client.prefetch(&env).await;
            }
            if client.is_stale() {
                RETRY_WHILE_DOWN
            } else {
                reload_every
            }
        };
    }
}
