//! An environment's directory: its writable layer (`upper`), the overlay's
//! work and run directories, and the lock that commits and restores hold
//! (docs/store-format.md). Drift (diff, commit, restore, export) works on it.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{Error, Result};
use crate::store::Store;

/// Leftovers of an interrupted restore.
const LEFTOVERS: [&str; 2] = ["upper.new", "upper.old"];

/// The name, in `tmp/`, of the marker a new environment's directories and
/// record are made under (docs/store-format.md, "Temporary files"): a crash
/// between the two leaves it, and the next sweep of `tmp/` removes the
/// directory if no record came (prune.rs), without looking at any other.
pub const NEW_ENV_MARKER: &str = "kp-new-env-";

/// Makes a new environment's directories and then its record, under a
/// marker in `tmp/` for as long as the two disagree. The caller holds the
/// store's shared lock (as every writer does), so no sweep runs meanwhile.
pub(crate) fn create_env(store: &Store, rec: &super::EnvRecord) -> Result<()> {
    let marker = store
        .make_dir(&store.path("tmp"))?
        .join(format!("{NEW_ENV_MARKER}{}", rec.env_id));
    File::create(&marker).map_err(Error::store("create", &marker))?;
    create_env_dirs(store, &rec.env_id)?;
    store.write_env(rec)?;
    std::fs::remove_file(&marker).map_err(Error::store("remove", &marker))
}

fn create_env_dirs(store: &Store, env_id: &str) -> Result<()> {
    let dir = store.env_dir(env_id);
    for sub in ["work", "run"] {
        store.make_dir(&dir.join(sub))?;
    }
    // The writable layer is the environment's root directory: the mode a
    // root directory has, whatever the umask.
    store.make_dir_mode(&dir.join("upper"), 0o755)?;
    Ok(())
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

/// Removes what an interrupted restore left, unless a commit or restore is
/// running now. Called before verbs act on an environment and by gc.
pub fn recover(store: &Store, env_id: &str) -> Result<bool> {
    let dir = store.env_dir(env_id);
    if !LEFTOVERS.iter().any(|n| dir.join(n).symlink_metadata().is_ok()) {
        return Ok(false);
    }
    let Some(_lock) = lock_env(store, env_id, false)? else {
        return Ok(false);
    };
    remove_leftovers(store, env_id)?;
    Ok(true)
}

pub(crate) fn remove_leftovers(store: &Store, env_id: &str) -> Result<()> {
    let dir = store.env_dir(env_id);
    for name in LEFTOVERS {
        let p = dir.join(name);
        if p.symlink_metadata().is_ok() {
            crate::log!(
                crate::log::Level::Info,
                "removing {} left by an interrupted restore",
                p.display()
            );
            remove(&p)?;
        }
    }
    Ok(())
}

fn remove(p: &Path) -> Result<()> {
    if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        Ok(crate::store::remove_tree(p)?)
    } else {
        std::fs::remove_file(p).map_err(Error::store("remove", p))
    }
}
