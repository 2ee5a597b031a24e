//! Drift: what was changed inside an environment, in its writable layer (the
//! overlay upper directory `envs/<env_id>/upper`), made visible (`diff`),
//! savable (`commit`, a snapshot layer), restorable (`restore`) and shareable
//! (`export`). See docs/environments.md, "Drift".

mod diff;
mod export;
mod snapshot;
mod ustar;

pub use diff::{diff, Change, Status};
pub use export::{export, ExportFormat, ExportOptions, ExportReport};
pub use snapshot::{commit, find_snapshot, recover, restore, CommitReport};

use std::fs::File;
use std::path::PathBuf;

use crate::env::EnvRecord;
use crate::error::{Error, Result};
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

impl From<DriftError> for Error {
    fn from(e: DriftError) -> Self {
        Error::Drift(e)
    }
}

/// `envs/<env_id>/upper`: the writable layer.
pub fn upper_dir(store: &Store, env_id: &str) -> PathBuf {
    store.env_dir(env_id).join("upper")
}

/// [`upper_dir`], refusing a symlink at it or above it: the writable layer
/// is walked (diff, commit, export, restore) and mounted only where it is.
pub(crate) fn checked_upper(store: &Store, env_id: &str) -> Result<PathBuf> {
    let upper = upper_dir(store, env_id);
    Ok(store.existing_dir(&upper)?.unwrap_or(upper))
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
    ObjectId::from_hex(hex).ok_or_else(|| Error::CorruptMeta {
        path: store.meta_path(&format!("envs/{}", rec.env_id)).unwrap_or_default(),
        reason: format!("layer {hex:?} is not an id"),
    })
}

/// How `exec` maps ids (the subordinate range when /etc/subuid grants one),
/// so owners in the writable layer are read as the environment sees them.
pub fn exec_ids() -> Result<IdShift> {
    let map = sandbox::idmap::choose(UidMapMode::Auto, &HostFacts::current())?;
    Ok(map.disk_shift())
}

/// `envs/<env_id>/lock`, held exclusively while a commit or restore changes
/// the writable layer or the snapshot list. `wait: false` gives `None` when
/// another process holds it.
pub(crate) fn lock_env(store: &Store, env_id: &str, wait: bool) -> Result<Option<File>> {
    use rustix::fs::{flock, FlockOperation};
    let path = store.env_dir(env_id).join("lock");
    let f = store.open_lock(&path)?;
    let op = if wait {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    match flock(&f, op) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) if !wait => Ok(None),
        Err(e) => Err(Error::store("lock", &path)(e.into())),
    }
}
