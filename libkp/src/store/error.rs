//! The store's error type: its directories, objects and locks. Every variant
//! names what failed, where, and at which step, so a message alone is enough
//! to act on. Modules above (layer, meta, refs, revparse, fsck, and image,
//! env, drift, build, ...) wrap it in their own error.

use std::io;
use std::path::{Path, PathBuf};

use crate::exit;
use crate::hash::ObjectId;
use crate::object::Kind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call on a store path failed.
    #[error("{op} {}: {source}", path.display())]
    Store {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A system call on a path the user gave us failed.
    #[error("{op} {}: {source}", path.display())]
    Input {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A symlink where the store expects its own directory or file: never
    /// followed (docs/store-format.md, "Modes and symlinks").
    #[error("{}: a symlink where the store expects a {expects}; karapace follows no symlink inside its store (remove it; `karapace doctor` lists them)", path.display())]
    Symlink { path: PathBuf, expects: &'static str },
    #[error("{}: not a Karapace store (no version file); create one with `kp-init {}`", path.display(), path.display())]
    NotAStore { path: PathBuf },
    #[error("{}: store format {found:?} is not supported; this build reads {supported:?}", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        supported: &'static str,
    },
    #[error("corrupt {kind} {id} at {}: {reason}", path.display())]
    Corrupt {
        kind: Kind,
        id: ObjectId,
        path: PathBuf,
        reason: String,
    },
    #[error("{kind} {id} is not in the store")]
    Missing { kind: Kind, id: ObjectId },
    #[error("object {id} is a {actual}, not a {expected}")]
    WrongKind { id: ObjectId, expected: Kind, actual: Kind },
    #[error("{}: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    #[error("{}: changed while it was being stored; retry when nothing writes to it", path.display())]
    Changed { path: PathBuf },
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Store { .. }
            | Error::NotAStore { .. }
            | Error::UnsupportedVersion { .. }
            | Error::Corrupt { .. }
            | Error::Missing { .. }
            | Error::Symlink { .. } => exit::STORE,
            Error::Interrupted => 130,
            _ => exit::FAILURE,
        }
    }

    /// Wraps an io error on a store path.
    pub fn store(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let path = path.to_path_buf();
        move |source| Error::Store { op, path, source }
    }

    /// Wraps an io error on a path the user gave.
    pub fn input(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let path = path.to_path_buf();
        move |source| Error::Input { op, path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
