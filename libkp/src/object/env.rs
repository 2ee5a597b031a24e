//! Environment objects: what an environment is, as content, so a ref can name
//! it and a pack can carry it (docs/store-format.md, "Environment object";
//! docs/protocol.md). Serialised as `"kp-env 1\n"` followed by JSON with the
//! fields in the order below, no spaces, `settings` keys sorted.

use serde::{Deserialize, Serialize};

use super::{bad, FormatError};
use crate::hash::ObjectId;

pub const MAGIC: &[u8] = b"kp-env 1\n";

/// A snapshot an environment object carries (pushed with `--snapshots`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSnapshot {
    pub layer: ObjectId,
    pub created: u64,
    pub size_added: u64,
}

/// An environment as content: its identity, its layers (lowest first), the
/// settings its lock fixed, and the snapshots sent with it. Nothing local
/// (name, state, manifest path, times of the record) is in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvObject {
    pub env_id: String,
    pub image: Option<String>,
    pub layers: Vec<ObjectId>,
    /// The record's `settings` (schema::Settings as JSON; this module sits
    /// below schema and keeps it opaque).
    pub settings: serde_json::Value,
    pub snapshots: Vec<EnvSnapshot>,
}

impl EnvObject {
    pub fn serialize(&self) -> Result<Vec<u8>, FormatError> {
        if self.env_id.len() != 64 || !crate::hash::is_hex(&self.env_id) {
            return bad(format!("env_id {:?} is not 64 hex digits", self.env_id));
        }
        if self.layers.is_empty() {
            return bad("an environment has at least its base layer");
        }
        let mut out = MAGIC.to_vec();
        serde_json::to_writer(&mut out, self).map_err(|e| FormatError(e.to_string()))?;
        Ok(out)
    }

    pub fn parse(data: &[u8]) -> Result<EnvObject, FormatError> {
        let Some(json) = data.strip_prefix(MAGIC) else {
            return bad("not an environment object (bad magic)");
        };
        let env: EnvObject = serde_json::from_slice(json).map_err(|e| FormatError(format!("environment JSON: {e}")))?;
        if env.serialize()? != data {
            return bad("environment bytes are not canonical");
        }
        Ok(env)
    }

    /// The layers it names: its own, then its snapshots'.
    pub fn children(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.layers
            .iter()
            .copied()
            .chain(self.snapshots.iter().map(|s| s.layer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EnvObject {
        EnvObject {
            env_id: "ab".repeat(32),
            image: Some("busybox".into()),
            layers: vec![ObjectId::of(b"base"), ObjectId::of(b"dep")],
            settings: serde_json::json!({"z": 1, "a": {"y": [1, 2], "b": "x"}}),
            snapshots: vec![EnvSnapshot {
                layer: ObjectId::of(b"snap"),
                created: 5,
                size_added: 7,
            }],
        }
    }

    #[test]
    fn round_trip_and_canonical() {
        let env = sample();
        let bytes = env.serialize().unwrap();
        assert_eq!(EnvObject::parse(&bytes).unwrap(), env);
        let spaced = String::from_utf8(bytes.clone()).unwrap().replacen(",", ", ", 1);
        assert!(EnvObject::parse(spaced.as_bytes()).is_err());
        assert!(EnvObject::parse(&bytes[1..]).is_err());
        assert_eq!(env.children().count(), 3);
    }

    #[test]
    fn refuses_bad_identity() {
        let mut env = sample();
        env.env_id = "../x".into();
        assert!(env.serialize().is_err());
        let mut env = sample();
        env.layers.clear();
        assert!(env.serialize().is_err());
    }
}
