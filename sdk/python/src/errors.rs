//! The SDK's errors as the exceptions of `promptos.errors`.

use promptos_sdk::Error;
use pyo3::prelude::*;

/// `error` as an instance of its `promptos.errors` class, with the details as
/// attributes (`prompt`, `environment`, `variable`, `kind`).
pub fn to_py(py: Python<'_>, error: Error) -> PyErr {
    match build(py, &error) {
        Ok(err) => err,
        Err(import_failed) => import_failed,
    }
}

fn build(py: Python<'_>, error: &Error) -> PyResult<PyErr> {
    let (class, attributes): (&str, Vec<(&str, &str)>) = match error {
        Error::NotFound { prompt, environment } => {
            ("PromptNotFound", vec![("prompt", prompt), ("environment", environment)])
        }
        Error::MissingVariable { prompt, name } => ("MissingVariable", vec![("prompt", prompt), ("variable", name)]),
        Error::Render { prompt, .. } => ("RenderError", vec![("prompt", prompt)]),
        Error::Unauthorized(_) => ("Unauthorized", vec![]),
        Error::Unavailable { prompt, environment, .. } => {
            ("Unavailable", vec![("prompt", prompt), ("environment", environment)])
        }
        Error::Protocol(_) => ("ProtocolError", vec![]),
        Error::WrongKind { prompt, kind, .. } => ("WrongKind", vec![("prompt", prompt), ("kind", kind)]),
        Error::Config(_) => ("ConfigurationError", vec![]),
    };
    let module = py.import("promptos.errors")?;
    let instance = module.getattr(class)?.call1((error.to_string(),))?;
    for (name, value) in attributes {
        instance.setattr(name, value)?;
    }
    Ok(PyErr::from_value(instance))
}
