//! A blocking facade for applications without an async runtime.
//!
//! ```no_run
//! let prompts = promptos_sdk::blocking::Prompts::build(
//!     promptos_sdk::Prompts::connect("http://127.0.0.1:8080").api_key("pos_…"),
//! )?;
//! let text = prompts.get("greeting", "production", minijinja::context! { name => "Alex" })?;
//! # Ok::<(), promptos_sdk::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::feed::Change;
use crate::template::Template;
use crate::PromptsBuilder;
use serde::Serialize;
use std::sync::Arc;

/// The same client as [`crate::Prompts`], driven by a runtime of its own.
#[derive(Clone)]
pub struct Prompts {
    inner: crate::Prompts,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Prompts {
    /// Builds the client from a configured builder.
    ///
    /// ```no_run
    /// let prompts = promptos_sdk::blocking::Prompts::build(promptos_sdk::Prompts::connect("http://127.0.0.1:8080"))?;
    /// # Ok::<(), promptos_sdk::Error>(())
    /// ```
    pub fn build(builder: PromptsBuilder) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("promptos-sdk")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the SDK's runtime: {e}")))?;
        let inner = runtime.block_on(builder.build())?;
        Ok(Self { inner, runtime: Arc::new(runtime) })
    }

    /// See [`crate::Prompts::get`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let text = prompts.get("greeting", "production", minijinja::context! { name => "Alex" })?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self, name: &str, env: &str, vars: impl Serialize) -> Result<String> {
        if let Some(served) = self.inner.get_cached(name, env, &vars) {
            return served;
        }
        self.runtime.block_on(self.inner.get(name, env, vars))
    }

    /// See [`crate::Prompts::get_cached`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) {
    /// let cached = prompts.get_cached("greeting", "production", minijinja::context! { name => "Alex" });
    /// # }
    /// ```
    pub fn get_cached(&self, name: &str, env: &str, vars: impl Serialize) -> Option<Result<String>> {
        self.inner.get_cached(name, env, vars)
    }

    /// See [`crate::Prompts::get_for`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let served = prompts.get_for("checkout-copy", "production", "user-4711", minijinja::context! {})?;
    /// # Ok(()) }
    /// ```
    pub fn get_for(&self, name: &str, env: &str, subject_key: &str, vars: impl Serialize) -> Result<crate::Served> {
        self.runtime.block_on(self.inner.get_for(name, env, subject_key, vars))
    }

    /// See [`crate::Prompts::get_chat`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let chat = prompts.get_chat("support-chat", "production", minijinja::context! { question => "Hi" })?;
    /// # Ok(()) }
    /// ```
    pub fn get_chat(&self, name: &str, env: &str, vars: impl Serialize) -> Result<crate::ChatPrompt> {
        self.runtime.block_on(self.inner.get_chat(name, env, vars))
    }

    /// See [`crate::Prompts::get_chat_for`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let chat = prompts.get_chat_for("support-chat", "production", "user-4711", minijinja::context! {})?;
    /// # Ok(()) }
    /// ```
    pub fn get_chat_for(
        &self,
        name: &str,
        env: &str,
        subject_key: &str,
        vars: impl Serialize,
    ) -> Result<crate::ChatPrompt> {
        self.runtime.block_on(self.inner.get_chat_for(name, env, subject_key, vars))
    }

    /// See [`crate::Prompts::get_template`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) -> Result<(), promptos_sdk::Error> {
    /// let template = prompts.get_template("greeting", "production")?;
    /// # Ok(()) }
    /// ```
    pub fn get_template(&self, name: &str, env: &str) -> Result<Template> {
        self.runtime.block_on(self.inner.get_template(name, env))
    }

    /// See [`crate::Prompts::prefetch`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) -> Result<(), promptos_sdk::Error> {
    /// prompts.prefetch("production")?;
    /// # Ok(()) }
    /// ```
    pub fn prefetch(&self, env: &str) -> Result<usize> {
        self.runtime.block_on(self.inner.prefetch(env))
    }

    /// See [`crate::Prompts::on_change`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) {
    /// prompts.on_change(|c| println!("{} changed", c.prompt));
    /// # }
    /// ```
    pub fn on_change(&self, callback: impl Fn(&Change) + Send + Sync + 'static) {
        self.inner.on_change(callback)
    }

    /// See [`crate::Prompts::is_stale`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) { let _ = prompts.is_stale(); }
    /// ```
    pub fn is_stale(&self) -> bool {
        self.inner.is_stale()
    }

    /// See [`crate::Prompts::is_prompt_stale`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) { let _ = prompts.is_prompt_stale("greeting", "production"); }
    /// ```
    pub fn is_prompt_stale(&self, name: &str, env: &str) -> bool {
        self.inner.is_prompt_stale(name, env)
    }

    /// See [`crate::Prompts::instance_id`].
    ///
    /// ```no_run
    /// # fn run(prompts: promptos_sdk::blocking::Prompts) { let _ = prompts.instance_id(); }
    /// ```
    pub fn instance_id(&self) -> Option<&str> {
        self.inner.instance_id()
    }
}
