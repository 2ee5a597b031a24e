//! Layers: a root tree plus what the layer is, where it came from and what it
//! stands on. Serialised as `"kp-layer 1\n"` followed by canonical JSON (fields in
//! the order below, no spaces, provenance keys sorted, no timestamps).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{bad, FormatError};
use crate::hash::ObjectId;

pub const MAGIC: &[u8] = b"kp-layer 1\n";

/// What a layer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// A base image's root filesystem.
    Base,
    /// What installing an environment's packages added on top of its base.
    Dependency,
    /// A saved state of an environment's writable layer.
    Snapshot,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Base => "base",
            LayerKind::Dependency => "dependency",
            LayerKind::Snapshot => "snapshot",
        }
    }
}

impl std::str::FromStr for LayerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "base" => Ok(LayerKind::Base),
            "dependency" => Ok(LayerKind::Dependency),
            "snapshot" => Ok(LayerKind::Snapshot),
            _ => Err(format!(
                "unknown layer kind {s:?} (expected base, dependency or snapshot)"
            )),
        }
    }
}

/// The metadata of the layer's top directory, which no tree entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Default for RootMeta {
    fn default() -> Self {
        RootMeta {
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub kind: LayerKind,
    pub tree: ObjectId,
    pub root: RootMeta,
    /// The layers this one sits on, lowest first.
    pub parents: Vec<ObjectId>,
    /// Where the content came from (`source`, `tool`, …): free text, part of the id.
    pub provenance: BTreeMap<String, String>,
}

impl Layer {
    pub fn serialize(&self) -> Result<Vec<u8>, FormatError> {
        if self.root.mode & !0o7777 != 0 {
            return bad(format!("root mode {:o} has bits outside 07777", self.root.mode));
        }
        let mut out = MAGIC.to_vec();
        serde_json::to_writer(&mut out, self).map_err(|e| FormatError(e.to_string()))?;
        Ok(out)
    }

    pub fn parse(data: &[u8]) -> Result<Layer, FormatError> {
        let Some(json) = data.strip_prefix(MAGIC) else {
            return bad("not a layer (bad magic)");
        };
        let layer: Layer = serde_json::from_slice(json).map_err(|e| FormatError(format!("layer JSON: {e}")))?;
        if layer.serialize()? != data {
            return bad("layer bytes are not canonical");
        }
        Ok(layer)
    }
}

/// The layer as indented JSON, for people (`kp-cat-object -p`).
pub fn layer_pretty(layer: &Layer) -> String {
    serde_json::to_string_pretty(layer).expect("a layer always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(tree in any::<[u8; 32]>(), parents in proptest::collection::vec(any::<[u8; 32]>(), 0..3),
                      prov in proptest::collection::btree_map(".*", ".*", 0..4), mode in 0u32..0o7777,
                      kind in prop_oneof![Just(LayerKind::Base), Just(LayerKind::Dependency), Just(LayerKind::Snapshot)]) {
            let layer = Layer {
                kind,
                tree: ObjectId::from_bytes(tree),
                root: RootMeta { mode, uid: 1, gid: 2 },
                parents: parents.into_iter().map(ObjectId::from_bytes).collect(),
                provenance: prov,
            };
            let bytes = layer.serialize().unwrap();
            prop_assert_eq!(Layer::parse(&bytes).unwrap(), layer);
        }
    }

    #[test]
    fn refuses_non_canonical_json() {
        let layer = Layer {
            kind: LayerKind::Base,
            tree: ObjectId::of(b"t"),
            root: RootMeta::default(),
            parents: vec![],
            provenance: BTreeMap::new(),
        };
        let bytes = layer.serialize().unwrap();
        let spaced = String::from_utf8(bytes.clone()).unwrap().replacen(",", ", ", 1);
        assert!(Layer::parse(spaced.as_bytes()).is_err());
        assert!(Layer::parse(&bytes[1..]).is_err());
    }
}
