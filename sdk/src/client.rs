//! The client applications hold: one call per way of getting a prompt (its options are
//! [`crate::PromptsBuilder`]'s). The cache behind it is [`crate::cache`].

use crate::cache::{answer_error, Inner};
use crate::error::{Error, Result};
use crate::feed::Change;
use crate::template::{Compiled, Template};
use minijinja::Value;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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

impl Prompts {
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

    /// This process's id in the server's fleet view (`GET /fleet`), random at start;
    /// None when fleet reports are switched off.
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::Prompts) {
    /// if let Some(id) = prompts.instance_id() { println!("reporting as {id}"); }
    /// # }
    /// ```
    pub fn instance_id(&self) -> Option<&str> {
        self.inner.instance_id.as_deref()
    }
}
