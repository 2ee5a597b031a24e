//! Drift: what was changed inside an environment, in its writable layer (the
//! overlay upper directory `envs/<env_id>/upper`), made visible (`diff`),
//! savable (`commit`, a snapshot layer), restorable (`restore`) and shareable
//! (`export`). See docs/environments.md, "Drift".

mod diff;
mod export;
mod snapshot;
mod ustar;

pub use diff::{diff, Change, Status};
pub use export::{export, tree_tar, ExportFormat, ExportOptions, ExportReport};
pub use snapshot::{commit, find_snapshot, restore, CommitReport};

// The writable layer belongs to the environment (env/upper.rs); drift works on it.
pub(crate) use crate::env::{checked_upper, lock_env};
pub use crate::env::{recover, upper_dir};

use crate::env::EnvRecord;
use crate::hash::ObjectId;
use crate::layer::{HashCache, IdShift};
use crate::sandbox::{self, HostFacts, UidMapMode};
use crate::store::Store;

/// What a drift command refused, and what the user can do about it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DriftError {
    #[error("environment {env} has no snapshot {arg:?} (see `karapace snapshots {env}`)")]
    NoSnapshot { env: String, arg: String },
    #[error("{arg:?} matches several snapshots of {env}: {}; give more digits", candidates.join(", "))]
    AmbiguousSnapshot {
        env: String,
        arg: String,
        candidates: Vec<String>,
    },
    #[error("environment {0} has no layers (its record is incomplete; rebuild it)")]
    NoLayers(String),
}

/// What drift returns: its own refusals, or the failure of a module below it,
/// with that module's message (docs/architecture.md, "Errors").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Drift(#[from] DriftError),
    #[error(transparent)]
    Env(#[from] crate::env::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error(transparent)]
    Meta(#[from] crate::meta::Error),
    #[error("sandbox: {0}")]
    Sandbox(#[from] crate::sandbox::Error),
}

impl Error {
    /// The process exit status this failure gives (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Drift(_) => crate::exit::FAILURE,
            Error::Env(e) => e.exit_code(),
            Error::Store(e) => e.exit_code(),
            Error::Layer(e) => e.exit_code(),
            Error::Meta(e) => e.exit_code(),
            Error::Sandbox(_) => crate::exit::SANDBOX,
        }
    }

    /// Wraps an io error on a store path.
    pub fn store(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let wrap = crate::store::Error::store(op, path);
        move |source| Error::Store(wrap(source))
    }

    /// Wraps an io error on a path the user gave.
    pub fn input(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let wrap = crate::store::Error::input(op, path);
        move |source| Error::Store(wrap(source))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::env::EnvError> for Error {
    fn from(e: crate::env::EnvError) -> Self {
        Error::Env(e.into())
    }
}

/// `envs/<env_id>/hashes`: the writable layer's hash cache, so commits and
/// restores do not read files that did not change.
pub(crate) fn hash_cache(store: &Store, env_id: &str) -> std::sync::Arc<HashCache> {
    std::sync::Arc::new(HashCache::load(&store.env_dir(env_id).join("hashes")))
}

/// Saves what a scan of the writable layer learnt; a failure costs only speed.
pub(crate) fn save_hash_cache(store: &Store, cache: &HashCache) {
    if let Err(e) = cache.save(store) {
        crate::log!(crate::log::Level::Warn, "could not save the hash cache: {e}");
    }
}

/// The record's layer ids, lowest first.
pub fn layer_ids(store: &Store, rec: &EnvRecord) -> Result<Vec<ObjectId>> {
    rec.layers.iter().map(|hex| parse_id(store, rec, hex)).collect()
}

pub(crate) fn parse_id(store: &Store, rec: &EnvRecord, hex: &str) -> Result<ObjectId> {
    ObjectId::from_hex(hex).ok_or_else(|| {
        crate::meta::Error::Corrupt {
            path: store.meta_path(&format!("envs/{}", rec.env_id)).unwrap_or_default(),
            reason: format!("layer {hex:?} is not an id"),
        }
        .into()
    })
}

/// How `exec` maps ids (the subordinate range when /etc/subuid grants one),
/// so owners in the writable layer are read as the environment sees them.
pub fn exec_ids() -> Result<IdShift> {
    let map = sandbox::idmap::choose(UidMapMode::Auto, &HostFacts::current())?;
    Ok(map.disk_shift())
}
