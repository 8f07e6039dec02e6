//! `promptos._native`: the Rust SDK (`promptos-sdk`) for CPython.
//!
//! One [`Client`] wraps the SDK's blocking client: its cache, its change feed (NATS or
//! SSE, on a Tokio runtime of its own), its renderer and its A/B bucketing, so Python
//! and Rust applications get the same answers. The GIL is released around every call
//! that may wait (a fetch, the first load) and taken on the feed's thread only to call
//! the application's `on_change` callbacks. The idiomatic surface is the pure-Python
//! package around it (`sdk/python/python/promptos`).

mod convert;
mod errors;
mod instance;

use arc_swap::ArcSwap;
use instance::Instance;
use promptos_sdk::{blocking, PromptsBuilder};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A client of one PromptOS server (see `promptos.Prompts`).
///
/// Fork-safe: a client used in a child process after `fork()` is rebuilt there on first
/// use (see [`instance`]), with its `on_change` callbacks, and never touches the
/// parent's runtime or connections.
#[pyclass(module = "promptos._native", frozen, subclass)]
struct Client {
    config: Config,
    /// Where `get` looks when no `env` is given.
    environment: String,
    /// Lock-free, so a lock held by a parent's thread at `fork()` cannot stall the child.
    slot: ArcSwap<Instance>,
    listeners: ArcSwap<Vec<Arc<Py<PyAny>>>>,
}

/// What the client was built with, to build it again in a child process.
struct Config {
    url: String,
    api_key: Option<String>,
    nats_url: Option<String>,
    snapshot_path: Option<PathBuf>,
    ttl: Duration,
    timeout: Duration,
    strict: bool,
    change_feed: bool,
    app_name: Option<String>,
    heartbeat: Duration,
    fleet_reports: bool,
}

impl Config {
    fn builder(&self) -> PromptsBuilder {
        let mut builder = promptos_sdk::Prompts::connect(&self.url).ttl(self.ttl).request_timeout(self.timeout);
        if let Some(key) = &self.api_key {
            builder = builder.api_key(key);
        }
        if let Some(nats) = &self.nats_url {
            builder = builder.nats_url(nats);
        }
        if let Some(path) = &self.snapshot_path {
            builder = builder.snapshot_file(path);
        }
        if !self.strict {
            builder = builder.lenient();
        }
        if !self.change_feed {
            builder = builder.without_change_feed();
        }
        if let Some(app) = &self.app_name {
            builder = builder.app_name(app);
        }
        if !self.fleet_reports {
            builder = builder.without_fleet_reports();
        }
        builder.heartbeat(self.heartbeat).reported_sdk("python", env!("CARGO_PKG_VERSION"))
    }
}

fn closed() -> PyErr {
    PyRuntimeError::new_err("this PromptOS client is closed")
}

impl Client {
    /// The client of this process: the one built here, or a new one if this process was
    /// forked from the one that built it.
    fn current(&self, py: Python<'_>) -> PyResult<Arc<Instance>> {
        let seen = self.slot.load_full();
        if seen.client().is_none() {
            return Err(closed());
        }
        if seen.is_current() {
            return Ok(seen);
        }
        let client = py.detach(|| blocking::Prompts::build(self.config.builder())).map_err(|e| errors::to_py(py, e))?;
        for callback in self.listeners.load().iter() {
            listen(&client, callback.clone());
        }
        let fresh = Arc::new(Instance::new(Some(client)));
        let previous = self.slot.compare_and_swap(&seen, fresh.clone());
        if Arc::ptr_eq(&previous, &seen) {
            Ok(fresh)
        } else {
            // Another thread of this process rebuilt it (or closed it) first.
            drop(previous);
            py.detach(move || drop(fresh));
            self.current(py)
        }
    }

    /// Runs `call` on this process's SDK client with the GIL released.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        call: impl FnOnce(&blocking::Prompts) -> promptos_sdk::Result<T> + Send,
    ) -> PyResult<T> {
        let instance = self.current(py)?;
        py.detach(move || {
            let client = instance.client().expect("current() answers open clients only");
            call(client)
        })
        .map_err(|e| errors::to_py(py, e))
    }

    /// The rendered text if the cache can answer without I/O; `Ok(None)` otherwise
    /// (including in a forked child that has not rebuilt its client yet).
    fn cached(&self, py: Python<'_>, name: &str, env: &str, vars: &convert::Vars) -> PyResult<Option<String>> {
        let instance = self.slot.load();
        let Some(client) = instance.client() else { return Err(closed()) };
        if !instance.is_current() {
            return Ok(None);
        }
        client.get_cached(name, env, vars).transpose().map_err(|e| errors::to_py(py, e))
    }
}

/// Calls `callback(change: dict)` for every change `client` receives, on its feed's
/// thread, after its cache holds the new version.
fn listen(client: &blocking::Prompts, callback: Arc<Py<PyAny>>) {
    client.on_change(move |change| {
        Python::attach(|py| {
            let delivered = serde_json::to_value(change)
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
                .and_then(|json| convert::to_python(py, &json))
                .and_then(|arg| callback.call1(py, (arg,)));
            if let Err(e) = delivered {
                // An exception in the application's callback must not stop the feed;
                // Python reports it as unraisable (sys.unraisablehook).
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        })
    });
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (url, *, api_key=None, environment=None, nats_url=None, snapshot_path=None, ttl_seconds=300.0, timeout_seconds=5.0, strict=true, change_feed=true, app_name=None, heartbeat_seconds=15.0, fleet_reports=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        api_key: Option<String>,
        environment: Option<String>,
        nats_url: Option<String>,
        snapshot_path: Option<PathBuf>,
        ttl_seconds: f64,
        timeout_seconds: f64,
        strict: bool,
        change_feed: bool,
        app_name: Option<String>,
        heartbeat_seconds: f64,
        fleet_reports: bool,
    ) -> PyResult<Self> {
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                PyValueError::new_err(format!("{name} must be a positive number of seconds, not {value}"))
            })
        };
        let config = Config {
            url,
            api_key,
            nats_url,
            snapshot_path,
            ttl: seconds("ttl_seconds", ttl_seconds)?,
            timeout: seconds("timeout_seconds", timeout_seconds)?,
            strict,
            change_feed,
            app_name,
            heartbeat: seconds("heartbeat_seconds", heartbeat_seconds)?,
            fleet_reports,
        };
        let client = py.detach(|| blocking::Prompts::build(config.builder())).map_err(|e| errors::to_py(py, e))?;
        Ok(Client {
            config,
            environment: environment.filter(|e| !e.is_empty()).unwrap_or_else(|| "production".into()),
            slot: ArcSwap::from_pointee(Instance::new(Some(client))),
            listeners: ArcSwap::from_pointee(Vec::new()),
        })
    }

    /// The environment `get` and the others serve from when no `env` is given.
    #[getter]
    fn environment(&self) -> &str {
        &self.environment
    }

    /// The text prompt live as `name` in `env` (default: the client's environment),
    /// rendered with `variables`. Called straight from Python as `Prompts.get`: no
    /// Python frame in between on the cached path.
    #[pyo3(signature = (name, /, env=None, **variables))]
    fn get(
        &self,
        py: Python<'_>,
        name: &str,
        env: Option<&str>,
        variables: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let env = env.unwrap_or(&self.environment);
        let vars = convert::variables(variables)?;
        // A cached prompt is served without releasing the GIL: no I/O, and a release and
        // re-acquire would cost more than the render.
        match self.cached(py, name, env, &vars)? {
            Some(text) => Ok(text),
            None => self.call(py, |c| c.get(name, env, &vars)),
        }
    }

    /// `get` if the cache can answer without I/O (cached, within the TTL, no change
    /// announced since); `None` otherwise. For asyncio: never waits.
    #[pyo3(signature = (name, /, env=None, **variables))]
    fn get_cached(
        &self,
        py: Python<'_>,
        name: &str,
        env: Option<&str>,
        variables: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<String>> {
        let env = env.unwrap_or(&self.environment);
        let vars = convert::variables(variables)?;
        self.cached(py, name, env, &vars)
    }

    /// The chat prompt live as `name` in `env`: `(messages, config, version)`.
    #[pyo3(signature = (name, env, variables=None))]
    fn _get_chat<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        env: &str,
        variables: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let vars = convert::variables(variables)?;
        let chat = self.call(py, |c| c.get_chat(name, env, &vars))?;
        chat_to_python(py, chat)
    }

    /// The variant of the text prompt `name` that `subject` is served:
    /// `(text, version, experiment_id)`.
    #[pyo3(signature = (name, env, subject, variables=None))]
    fn _get_for(
        &self,
        py: Python<'_>,
        name: &str,
        env: &str,
        subject: &str,
        variables: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(String, String, Option<String>)> {
        let vars = convert::variables(variables)?;
        let served = self.call(py, |c| c.get_for(name, env, subject, &vars))?;
        Ok((served.text, served.version_string, served.experiment_id))
    }

    /// The variant of the chat prompt `name` that `subject` is served.
    #[pyo3(signature = (name, env, subject, variables=None))]
    fn _get_chat_for<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        env: &str,
        subject: &str,
        variables: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let vars = convert::variables(variables)?;
        let chat = self.call(py, |c| c.get_chat_for(name, env, subject, &vars))?;
        chat_to_python(py, chat)
    }

    /// The deployed answer for `name` in `env` as a dict (the server's JSON), with
    /// `is_stale` for this prompt.
    fn _template<'py>(&self, py: Python<'py>, name: &str, env: &str) -> PyResult<Bound<'py, PyAny>> {
        let (template, stale) = self.call(py, |c| Ok((c.get_template(name, env)?, c.is_prompt_stale(name, env))))?;
        let mut json = serde_json::to_value(&template).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        json["is_stale"] = serde_json::Value::Bool(stale);
        convert::to_python(py, &json)
    }

    /// Loads every prompt live in `env` (default: the client's environment) into the
    /// cache, so later calls are cache hits; returns how many.
    #[pyo3(signature = (env=None))]
    fn prefetch(&self, py: Python<'_>, env: Option<&str>) -> PyResult<usize> {
        let env = env.unwrap_or(&self.environment);
        self.call(py, |c| c.prefetch(env))
    }

    /// Calls `callback(change: dict)` for every change the feed delivers, on the feed's
    /// thread, after the cache holds the new version.
    fn _on_change(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        let callback = Arc::new(callback);
        self.listeners.rcu(|list| {
            let mut list = Vec::clone(list);
            list.push(callback.clone());
            list
        });
        let instance = self.current(py)?;
        listen(instance.client().expect("current() answers open clients only"), callback);
        Ok(())
    }

    /// Whether what is served may be older than what is deployed. Without `name`: the
    /// last attempt to reach the server failed. With `name` (in `env`, default the
    /// client's environment): also, that prompt came from the snapshot or its last
    /// revalidation failed, and the server has not confirmed it since.
    #[pyo3(signature = (name=None, env=None))]
    fn is_stale(&self, name: Option<&str>, env: Option<&str>) -> PyResult<bool> {
        let instance = self.slot.load();
        let Some(client) = instance.client() else { return Err(closed()) };
        Ok(match name {
            Some(name) => client.is_prompt_stale(name, env.unwrap_or(&self.environment)),
            None => client.is_stale(),
        })
    }

    /// This process's id in the server's fleet view; None when fleet reports are off.
    /// A forked child reports as an instance of its own, with a new id.
    #[getter]
    fn instance_id(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let instance = self.current(py)?;
        Ok(instance.client().and_then(|c| c.instance_id()).map(str::to_owned))
    }

    /// Stops the change feed and releases the client's runtime and connections.
    fn close(&self, py: Python<'_>) {
        let previous = self.slot.swap(Arc::new(Instance::new(None)));
        py.detach(move || drop(previous));
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let previous = self.slot.swap(Arc::new(Instance::new(None)));
        if previous.client().is_some() && previous.is_current() {
            // Dropped while this thread holds the GIL, and the feed's thread may be
            // waiting for it to call a callback: the runtime is shut down on a thread of
            // its own so that neither waits for the other.
            let _ = std::thread::Builder::new().name("promptos-close".into()).spawn(move || drop(previous));
        }
    }
}

fn chat_to_python(py: Python<'_>, chat: promptos_sdk::ChatPrompt) -> PyResult<Bound<'_, PyAny>> {
    let messages: Vec<serde_json::Value> =
        chat.messages.iter().map(|m| serde_json::json!({"role": m.role, "content": m.content})).collect();
    let json = serde_json::json!({
        "messages": messages,
        "config": chat.config,
        "version": chat.version_string,
        "experiment_id": chat.experiment_id,
    });
    convert::to_python(py, &json)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    instance::watch_forks();
    m.add_class::<Client>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
