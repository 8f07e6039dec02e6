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

use promptos_sdk::blocking;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::RwLock;
use std::time::Duration;

/// A client of one PromptOS server (see `promptos.Prompts`).
#[pyclass(module = "promptos._native", frozen)]
struct Client {
    /// `None` once closed.
    inner: RwLock<Option<blocking::Prompts>>,
}

/// What a call on a closed client answers.
enum Failure {
    Closed,
    Sdk(promptos_sdk::Error),
}

impl Client {
    /// Runs `call` on the SDK client with the GIL released.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        call: impl FnOnce(&blocking::Prompts) -> promptos_sdk::Result<T> + Send,
    ) -> PyResult<T> {
        let result = py.detach(|| {
            let guard = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            match guard.as_ref() {
                Some(client) => call(client).map_err(Failure::Sdk),
                None => Err(Failure::Closed),
            }
        });
        result.map_err(|failure| match failure {
            Failure::Closed => PyRuntimeError::new_err("this PromptOS client is closed"),
            Failure::Sdk(e) => errors::to_py(py, e),
        })
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (url, *, api_key=None, nats_url=None, snapshot_path=None, ttl_seconds=300.0, timeout_seconds=5.0, strict=true, change_feed=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        api_key: Option<String>,
        nats_url: Option<String>,
        snapshot_path: Option<std::path::PathBuf>,
        ttl_seconds: f64,
        timeout_seconds: f64,
        strict: bool,
        change_feed: bool,
    ) -> PyResult<Self> {
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                PyValueError::new_err(format!("{name} must be a positive number of seconds, not {value}"))
            })
        };
        let mut builder = promptos_sdk::Prompts::connect(url)
            .ttl(seconds("ttl_seconds", ttl_seconds)?)
            .request_timeout(seconds("timeout_seconds", timeout_seconds)?);
        if let Some(key) = api_key {
            builder = builder.api_key(key);
        }
        if let Some(nats) = nats_url {
            builder = builder.nats_url(nats);
        }
        if let Some(path) = snapshot_path {
            builder = builder.snapshot_file(path);
        }
        if !strict {
            builder = builder.lenient();
        }
        if !change_feed {
            builder = builder.without_change_feed();
        }
        let client = py.detach(|| blocking::Prompts::build(builder)).map_err(|e| errors::to_py(py, e))?;
        Ok(Client { inner: RwLock::new(Some(client)) })
    }

    /// The text prompt live as `name` in `env`, rendered with `variables`.
    #[pyo3(signature = (name, env, variables=None))]
    fn get(&self, py: Python<'_>, name: &str, env: &str, variables: Option<&Bound<'_, PyDict>>) -> PyResult<String> {
        let vars = convert::variables(variables)?;
        // A cached prompt is served without releasing the GIL: no I/O, and a release and
        // re-acquire would cost more than the render.
        let cached = {
            let guard = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            guard.as_ref().and_then(|client| client.get_cached(name, env, &vars))
        };
        match cached {
            Some(served) => served.map_err(|e| errors::to_py(py, e)),
            None => self.call(py, |c| c.get(name, env, &vars)),
        }
    }

    /// The chat prompt live as `name` in `env`: `(messages, config, version)`.
    #[pyo3(signature = (name, env, variables=None))]
    fn get_chat<'py>(
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
    fn get_for(
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
    fn get_chat_for<'py>(
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

    /// The deployed answer for `name` in `env` as a dict (the server's JSON).
    fn template<'py>(&self, py: Python<'py>, name: &str, env: &str) -> PyResult<Bound<'py, PyAny>> {
        let template = self.call(py, |c| c.get_template(name, env))?;
        let json = serde_json::to_value(&template).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        convert::to_python(py, &json)
    }

    /// Loads every prompt live in `env`; returns how many.
    fn prefetch(&self, py: Python<'_>, env: &str) -> PyResult<usize> {
        self.call(py, |c| c.prefetch(env))
    }

    /// Calls `callback(change: dict)` for every change the feed delivers, on the feed's
    /// thread, after the cache holds the new version.
    fn on_change(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        self.call(py, move |c| {
            c.on_change(move |change| {
                Python::attach(|py| {
                    let delivered = serde_json::to_value(change)
                        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
                        .and_then(|json| convert::to_python(py, &json))
                        .and_then(|arg| callback.call1(py, (arg,)));
                    if let Err(e) = delivered {
                        // An exception in the application's callback must not stop the
                        // feed; Python reports it as unraisable (sys.unraisablehook).
                        e.write_unraisable(py, Some(callback.bind(py)));
                    }
                })
            });
            Ok(())
        })
    }

    /// True when the last attempt to reach the server failed.
    fn is_stale(&self, py: Python<'_>) -> PyResult<bool> {
        self.call(py, |c| Ok(c.is_stale()))
    }

    /// Stops the change feed and releases the client's runtime and connections.
    fn close(&self, py: Python<'_>) {
        let client = py.detach(|| self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
        py.detach(move || drop(client));
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
    m.add_class::<Client>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
