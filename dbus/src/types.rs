//! The typed replies (docs/dbus.md, "Types").

use std::collections::HashMap;

use serde::Serialize;
use zvariant::{OwnedValue, Type, Value};

/// An environment as ListEnvironments returns it:
/// `(ssssssssastt)`; empty strings for what the record does not have.
#[derive(Debug, Serialize, Type)]
pub struct Environment {
    pub env_id: String,
    pub short_id: String,
    pub name: String,
    pub state: String,
    pub origin: String,
    pub manifest: String,
    pub image: String,
    pub layers: Vec<String>,
    pub created: u64,
    pub updated: u64,
}

impl Environment {
    pub fn new(rec: &libkp::env::EnvRecord, state: libkp::env::State) -> Self {
        Environment {
            env_id: rec.env_id.clone(),
            short_id: rec.short_id(),
            name: rec.name.clone().unwrap_or_default(),
            state: state.as_str().to_string(),
            origin: rec.origin.as_str().to_string(),
            manifest: rec.manifest.clone().unwrap_or_default(),
            image: rec.image.clone().unwrap_or_default(),
            layers: rec.layers.clone(),
            created: rec.created,
            updated: rec.updated,
        }
    }
}

/// A template for `karapace new --template`: `(sss)`.
#[derive(Debug, Serialize, Type)]
pub struct Preset {
    pub name: String,
    pub description: String,
    pub image: String,
}

/// A snapshot: `(stt)`, the layer id, when it was made, the bytes it added.
#[derive(Debug, Serialize, Type)]
pub struct Snapshot {
    pub layer: String,
    pub created: u64,
    pub size_added: u64,
}

pub type Dict = HashMap<String, OwnedValue>;

/// A `--json` document as D-Bus values: objects as `a{sv}`, arrays of
/// strings as `as`, other arrays as `av`, numbers as `t`, `x` or `d`; a null
/// member is left out (a variant cannot be empty).
pub fn json_value(v: &serde_json::Value) -> Option<Value<'static>> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::from(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::from(s.clone()),
        J::Array(a) if a.iter().all(|x| x.is_string()) => Value::from(
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect::<Vec<_>>(),
        ),
        J::Array(a) => Value::from(
            a.iter()
                .filter_map(json_value)
                .map(|x| Value::Value(Box::new(x)))
                .collect::<Vec<Value<'static>>>(),
        ),
        J::Object(_) => Value::from(json_dict(v)),
    })
}

/// A `--json` object as `a{sv}` (anything else: an empty dict).
pub fn json_dict(v: &serde_json::Value) -> Dict {
    let mut d = Dict::new();
    if let Some(obj) = v.as_object() {
        for (k, x) in obj {
            if let Some(val) = json_value(x).and_then(|x| OwnedValue::try_from(x).ok()) {
                d.insert(k.clone(), val);
            }
        }
    }
    d
}

/// Reads option KEY of an `a{sv}` as T; a value of another type is an error
/// naming the key.
pub fn opt<T>(options: &HashMap<String, OwnedValue>, key: &str) -> crate::error::Result<Option<T>>
where
    T: TryFrom<OwnedValue>,
{
    match options.get(key) {
        None => Ok(None),
        Some(v) => {
            let v = v
                .try_clone()
                .map_err(|e| crate::error::Error::InvalidArgument(format!("option {key:?}: {e}")))?;
            T::try_from(v)
                .map(Some)
                .map_err(|_| crate::error::Error::InvalidArgument(format!("option {key:?} has the wrong type")))
        }
    }
}

/// Refuses options the method does not know, naming the first.
pub fn known_options(options: &HashMap<String, OwnedValue>, known: &[&str]) -> crate::error::Result<()> {
    match options.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(crate::error::Error::InvalidArgument(format!(
            "unknown option {k:?}; expected one of: {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}
