//! Object kinds and their canonical serialisation (see docs/store-format.md).

mod layer;
mod tree;

pub use layer::{layer_pretty, Layer, LayerKind, RootMeta};
pub use tree::{Entry, EntryKind, Tree, Xattr, MAX_NAME, MAX_TARGET};

use std::fmt;
use std::str::FromStr;

/// The three object kinds. The kind is part of the object's path in the store
/// (`objects/ab/cdef….tree`), never of its bytes, so a blob stays byte-identical to
/// the file it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Blob,
    Tree,
    Layer,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Blob, Kind::Tree, Kind::Layer];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Tree => "tree",
            Kind::Layer => "layer",
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
            _ => Err(format!("unknown object kind {s:?} (expected blob, tree or layer)")),
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
