//! Errors of the schema module. A manifest or lock problem names the file, the
//! line and column, the key, and what was expected, so the message alone says
//! where to look and what to write.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::exit;

/// Where in a TOML file a problem is: 1-based line and column (columns count
/// characters, not bytes), and the dotted key path when one applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        Ok(())
    }
}

/// One field that differs between what the manifest asks and what was locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Dotted field name, e.g. `system.packages` or `mounts.data`.
    pub field: String,
    /// The value in the lock, rendered as TOML; `None` when the lock lacks it.
    pub locked: Option<String>,
    /// The value the manifest now asks for; `None` when the manifest dropped it.
    pub manifest: Option<String>,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        write!(
            f,
            "{}: locked {}, manifest {}",
            self.field,
            show(&self.locked),
            show(&self.manifest)
        )
    }
}

fn drift_list(d: &[Drift]) -> String {
    d.iter().map(|d| format!("\n  {d}")).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest or lock could not be read.
    #[error("{op} {}: {source}", path.display())]
    Read {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A manifest or lock written back could not be stored.
    #[error("{op} {}: {source}", path.display())]
    Write {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Refusing to overwrite an existing file.
    #[error("{} already exists; use --force to overwrite it", path.display())]
    Exists { path: PathBuf },
    /// The manifest is not valid TOML, or not a valid manifest v1.
    #[error("{at}: {message}")]
    Manifest { at: Location, message: String },
    /// The lock is not valid TOML, or not a valid lock v1.
    #[error("{at}: {message}")]
    Lock { at: Location, message: String },
    /// A package closure listing is malformed.
    #[error("{at}: {message}")]
    Closure { at: Location, message: String },
    /// The lock's stored `env_id` does not match its content: it was edited by
    /// hand or damaged.
    #[error(
        "{}: integrity check failed: env_id is {stored} but the locked content hashes to {computed}; \
         the lock was edited or damaged, re-create it with `kp-resolve`",
        file.display()
    )]
    Integrity {
        file: PathBuf,
        stored: String,
        computed: String,
    },
    /// The manifest no longer asks for what the lock records.
    #[error(
        "{}: lock is out of date with {}; these fields drifted:{}\nrun `kp-resolve` to lock the manifest again",
        lock.display(), manifest.display(), drift_list(drifts)
    )]
    Drift {
        manifest: PathBuf,
        lock: PathBuf,
        drifts: Vec<Drift>,
    },
    /// The base image reference cannot be turned into a digest here.
    #[error("cannot resolve base image {reference:?}: {reason}")]
    UnresolvedImage { reference: String, reason: String },
    /// The package closure cannot be computed here.
    #[error("cannot resolve packages {requested:?}: {reason}")]
    UnresolvedPackages { requested: Vec<String>, reason: String },
    /// `pin --check` on a reference without a digest.
    #[error("{}: base.image {reference:?} is not pinned; run `karapace pin` to pin it to its digest", file.display())]
    NotPinned { file: PathBuf, reference: String },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Read { .. }
            | Error::Manifest { .. }
            | Error::Lock { .. }
            | Error::Closure { .. }
            | Error::Integrity { .. } => exit::MANIFEST,
            Error::Write { .. }
            | Error::Exists { .. }
            | Error::Drift { .. }
            | Error::UnresolvedImage { .. }
            | Error::UnresolvedPackages { .. }
            | Error::NotPinned { .. } => exit::FAILURE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
