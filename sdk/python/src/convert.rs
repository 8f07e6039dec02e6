//! Python values to JSON for the renderer, and JSON back to Python.

pub use promptos_sdk::minijinja::Value as Vars;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

/// Deepest nesting accepted in template variables.
const MAX_DEPTH: usize = 64;

/// The variables a template is rendered with: a `dict` of `str`, `int`, `float`,
/// `bool`, `None`, and lists, tuples and dicts of them, as the renderer's own values
/// (no JSON in between: this is on every `get`).
pub fn variables(dict: Option<&Bound<'_, PyDict>>) -> PyResult<Vars> {
    let Some(dict) = dict else { return Ok(Vars::from_iter(std::iter::empty::<(Vars, Vars)>())) };
    let mut pairs = Vec::with_capacity(dict.len());
    for (key, value) in dict.iter() {
        let key = key.cast::<PyString>().map_err(|_| PyTypeError::new_err("variable names must be str"))?;
        // Borrowed from the str object (no copy); short strings need no allocation.
        let key = Vars::from(key.to_str()?);
        let value = to_value(&value, 0).map_err(|e| PyTypeError::new_err(format!("variable {key:?}: {e}")))?;
        pairs.push((key, value));
    }
    Ok(Vars::from_iter(pairs))
}

fn to_value(value: &Bound<'_, PyAny>, depth: usize) -> Result<Vars, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    if value.is_none() {
        return Ok(Vars::from(()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Vars::from(s.to_str().map_err(|e| e.to_string())?));
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Vars::from(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<i64>() {
            return Ok(Vars::from(n));
        }
        if let Ok(n) = value.extract::<u64>() {
            return Ok(Vars::from(n));
        }
        return Err("an int beyond 64 bits".into());
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(Vars::from(f.value()));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return list.iter().map(|item| to_value(&item, depth + 1)).collect::<Result<Vec<_>, _>>().map(Vars::from);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return tuple.iter().map(|item| to_value(&item, depth + 1)).collect::<Result<Vec<_>, _>>().map(Vars::from);
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = std::collections::BTreeMap::new();
        for (k, v) in dict.iter() {
            let k: String = k.extract().map_err(|_| "a dict with a key that is not str".to_owned())?;
            map.insert(k, to_value(&v, depth + 1)?);
        }
        return Ok(Vars::from(map));
    }
    let type_name = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    Err(format!("{type_name} cannot be used in a template (pass str, int, float, bool, None, list or dict)"))
}

/// A JSON value as the equivalent Python object.
pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_python(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
