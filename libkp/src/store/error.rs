//! The store's error type, shared by the modules that read and write the
//! store's objects, layers, refs and metadata: every variant names what
//! failed, where, and at which step, so a message alone is enough to act on.
//! Modules above (image, env, drift, build, ...) wrap it in their own error.

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
    #[error("corrupt metadata {}: {reason}", path.display())]
    CorruptMeta { path: PathBuf, reason: String },
    #[error("{kind} {id} is not in the store")]
    Missing { kind: Kind, id: ObjectId },
    #[error("object {id} is a {actual}, not a {expected}")]
    WrongKind { id: ObjectId, expected: Kind, actual: Kind },
    #[error("unknown revision {rev:?}: no object, prefix or ref by that name")]
    UnknownRev { rev: String },
    #[error("ambiguous id prefix {prefix:?}; candidates:\n{}", candidates.join("\n"))]
    Ambiguous { prefix: String, candidates: Vec<String> },
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRefName { name: String, reason: &'static str },
    #[error("ref {name} is {}, expected {}", show_opt(actual), show_opt(expected))]
    RefMismatch {
        name: String,
        expected: Option<ObjectId>,
        actual: Option<ObjectId>,
    },
    #[error("ref {name} is being updated by another process (pid {pid}, lock {}); retry when it is done", lock.display())]
    RefLocked { name: String, lock: PathBuf, pid: String },
    #[error("{}: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    #[error("path {path:?} not found in {rev}")]
    NoSuchPath { rev: String, path: String },
    #[error("{}: changed while it was being stored; retry when nothing writes to it", path.display())]
    Changed { path: PathBuf },
    #[error("interrupted")]
    Interrupted,
}

fn show_opt(id: &Option<ObjectId>) -> String {
    match id {
        Some(id) => format!("at {id}"),
        None => "absent".to_string(),
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Store { .. }
            | Error::NotAStore { .. }
            | Error::UnsupportedVersion { .. }
            | Error::Corrupt { .. }
            | Error::CorruptMeta { .. }
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
