//! Object kinds and their canonical serialisation (see docs/store-format.md).

mod env;
mod layer;
mod tree;

pub use env::{EnvObject, EnvSnapshot, MAGIC as ENV_MAGIC};
pub use layer::{layer_pretty, Layer, LayerKind, RootMeta, MAGIC as LAYER_MAGIC};
pub use tree::{Entry, EntryKind, Tree, Xattr, MAX_NAME, MAX_TARGET};

use std::fmt;
use std::str::FromStr;

/// The four object kinds. The kind is part of the object's path in the store
/// (`objects/ab/cdef….tree`), never of its bytes, so a blob stays byte-identical to
/// the file it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Blob,
    Tree,
    Layer,
    /// An environment: its identity, layers, settings and snapshots.
    Env,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Blob, Kind::Tree, Kind::Layer, Kind::Env];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Tree => "tree",
            Kind::Layer => "layer",
            Kind::Env => "env",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "blob" => Ok(Kind::Blob),
            "tree" => Ok(Kind::Tree),
            "layer" => Ok(Kind::Layer),
            "env" => Ok(Kind::Env),
            _ => Err(format!("unknown object kind {s:?} (expected blob, tree, layer or env)")),
        }
    }
}

/// Why bytes are not a valid object of their kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

pub(crate) fn bad<T>(msg: impl Into<String>) -> Result<T, FormatError> {
    Err(FormatError(msg.into()))
}

/// What an object of `kind` with bytes `data` names (parsed and checked):
/// a tree its blobs and subtrees, a layer its tree and parents, an
/// environment its layers and snapshots. Blobs name nothing.
pub fn children(kind: Kind, data: &[u8]) -> Result<Vec<(Kind, crate::hash::ObjectId)>, FormatError> {
    Ok(match kind {
        Kind::Blob => Vec::new(),
        Kind::Tree => Tree::parse(data)?.children().collect(),
        Kind::Layer => {
            let l = Layer::parse(data)?;
            std::iter::once((Kind::Tree, l.tree))
                .chain(l.parents.iter().map(|p| (Kind::Layer, *p)))
                .collect()
        }
        Kind::Env => EnvObject::parse(data)?.children().map(|l| (Kind::Layer, l)).collect(),
    })
}
