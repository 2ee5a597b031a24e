//! Snapshots: the writable layer saved as a layer (`commit`), and made the
//! writable layer again (`restore`), atomically.
//!
//! Restore checks the snapshot out (copied, never hardlinked: the writable
//! layer is written to) into `envs/<id>/upper.new`, makes it durable, swaps it
//! with `upper` by `renameat2(RENAME_EXCHANGE)` and removes what is then at
//! `upper.new` (the old content). `upper` is therefore always one complete
//! state; a crash leaves at most `upper.new` (before the swap: the partial new
//! state; after it: the old one), which `recover` removes.

use std::collections::{BTreeMap, HashMap, HashSet};

use rustix::fs::{renameat_with, RenameFlags, CWD};

use super::{checked_upper, lock_env, parse_id, DriftError};
use super::{Error, Result};
use crate::env::{remove_leftovers, EnvError, EnvRecord, Snapshot, State};
use crate::hash::ObjectId;
use crate::layer::{checkout_layer, write_layer, CheckoutOptions, WriteOptions};
use crate::object::{EntryKind, LayerKind};
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct CommitReport {
    pub snapshot: Snapshot,
    /// False when the writable layer equals an existing snapshot (which is
    /// returned instead of a duplicate).
    pub new: bool,
    pub files: u64,
    pub bytes: u64,
}

/// Saves `rec`'s writable layer as a snapshot layer whose parent is the
/// environment's top layer, and records it.
pub fn commit(store: &Store, rec: &EnvRecord) -> Result<CommitReport> {
    let _lock = lock_env(store, &rec.env_id, true)?;
    remove_leftovers(store, &rec.env_id)?;
    let layers = super::layer_ids(store, rec)?;
    let top = *layers.last().ok_or_else(|| DriftError::NoLayers(rec.display_name()))?;
    let mut provenance = BTreeMap::new();
    provenance.insert("source".to_string(), "karapace commit".to_string());
    let opts = WriteOptions {
        kind: LayerKind::Snapshot,
        parents: vec![top],
        provenance,
        ids: Some(super::exec_ids()?),
        hashes: Some(super::hash_cache(store, &rec.env_id)),
    };
    // From the first object written to the snapshot recorded, a gc must not
    // run: until the record names the layer, nothing reaches it.
    let _guard = store.write_guard()?;
    let written = write_layer(store, &checked_upper(store, &rec.env_id)?, &opts)?;
    if let Some(h) = &opts.hashes {
        super::save_hash_cache(store, h);
    }
    let layer = written.layer.expect("write_layer writes a layer");
    // The record may have changed since the caller read it (a rename, another
    // commit): update the current one, under the lock.
    let mut fresh = store
        .read_env(&rec.env_id)?
        .ok_or_else(|| EnvError::NotFound(rec.env_id.clone()))?;
    if let Some(s) = fresh.snapshots.iter().find(|s| s.layer == layer.to_hex()) {
        return Ok(CommitReport {
            snapshot: s.clone(),
            new: false,
            files: written.files,
            bytes: written.bytes,
        });
    }
    let mut known = Vec::new();
    for s in fresh.snapshots.iter().rev() {
        known.push(parse_id(store, &fresh, &s.layer)?);
    }
    known.extend(layers.iter().rev());
    let size_added = size_added(store, &written.tree, &known)?;
    fresh.touch();
    let snapshot = Snapshot {
        layer: layer.to_hex(),
        created: fresh.updated,
        size_added,
    };
    // Only commits (one at a time, under the environment's lock) add
    // snapshots; a freeze or rename since `fresh` was read is kept.
    store.update_env(&rec.env_id, |r| {
        r.snapshots.push(snapshot.clone());
        Ok(())
    })?;
    Ok(CommitReport {
        snapshot,
        new: true,
        files: written.files,
        bytes: written.bytes,
    })
}

/// The bytes of distinct file contents `tree` names that no layer in `known`
/// names: what the snapshot costs beyond what the environment already held.
fn size_added(store: &Store, tree: &ObjectId, known: &[ObjectId]) -> Result<u64> {
    let mut mine = HashMap::new();
    let mut seen = HashSet::new();
    blobs(store, tree, &mut seen, &mut |id, size| {
        mine.insert(id, size);
    })?;
    for layer in known {
        if mine.is_empty() {
            break;
        }
        let l = store.read_layer(layer)?;
        blobs(store, &l.tree, &mut seen, &mut |id, _| {
            mine.remove(&id);
        })?;
    }
    Ok(mine.values().sum())
}

/// Calls `f` for every file entry under `tree`, skipping trees in `seen`
/// (a tree already walked names nothing new).
fn blobs(store: &Store, tree: &ObjectId, seen: &mut HashSet<ObjectId>, f: &mut dyn FnMut(ObjectId, u64)) -> Result<()> {
    let mut stack = vec![*tree];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for e in store.read_tree(&id)?.entries {
            match e.kind {
                EntryKind::File { blob, size } => f(blob, size),
                EntryKind::Dir { tree } => stack.push(tree),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The snapshot `arg` names: a full layer id or a unique prefix of one.
pub fn find_snapshot<'a>(rec: &'a EnvRecord, arg: &str) -> Result<&'a Snapshot> {
    let want = arg.to_ascii_lowercase();
    let hits: Vec<&Snapshot> = if crate::hash::is_hex(&want) && !want.is_empty() {
        rec.snapshots.iter().filter(|s| s.layer.starts_with(&want)).collect()
    } else {
        Vec::new()
    };
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(DriftError::NoSnapshot {
            env: rec.display_name(),
            arg: arg.to_string(),
        }
        .into()),
        many if many.iter().all(|s| s.layer == many[0].layer) => Ok(many[0]),
        many => Err(DriftError::AmbiguousSnapshot {
            env: rec.display_name(),
            arg: arg.to_string(),
            candidates: many.iter().map(|s| s.layer[..12].to_string()).collect(),
        }
        .into()),
    }
}

/// Makes `rec`'s writable layer equal to snapshot `arg`, atomically. Refused
/// while the environment runs, and for frozen and archived environments
/// (their writable layer takes no writes).
pub fn restore(store: &Store, rec: &EnvRecord, arg: &str) -> Result<Snapshot> {
    let _lock = lock_env(store, &rec.env_id, true)?;
    store.ensure_stopped(rec, "restore a snapshot")?;
    if rec.state != State::Built {
        return Err(EnvError::WrongState {
            env: rec.display_name(),
            state: rec.state.to_string(),
            action: "restore a snapshot",
            hint: "; its writable layer takes no writes",
        }
        .into());
    }
    let snap = find_snapshot(rec, arg)?.clone();
    let layer = parse_id(store, rec, &snap.layer)?;
    remove_leftovers(store, &rec.env_id)?;
    let dir = store.env_dir(&rec.env_id);
    let new = dir.join("upper.new");
    let upper = checked_upper(store, &rec.env_id)?;
    // Files the writable layer already has exactly are linked, not copied:
    // its old content is discarded after the swap.
    let opts = CheckoutOptions {
        copy: true,
        reuse: Some(upper.clone()),
        hashes: Some(super::hash_cache(store, &rec.env_id)),
    };
    let report = checkout_layer(store, &layer, &new, &opts)?;
    for w in &report.warnings {
        crate::log!(crate::log::Level::Warn, "restore {}: {w}", rec.display_name());
    }
    // The new state is durable before it becomes the state.
    store.sync()?;
    // An exec that started meanwhile would keep running on the old layer: the
    // check and the swap are one step under the run directory's lock, which
    // an exec holds to create its marker (and mounts `upper` only after).
    let run = crate::env::RunDir::make(store, &rec.env_id)?;
    let count = run.held()?.len();
    if count > 0 {
        return Err(EnvError::Running {
            env: rec.display_name(),
            count,
            action: "restore a snapshot",
        }
        .into());
    }
    renameat_with(CWD, &new, CWD, &upper, RenameFlags::EXCHANGE)
        .map_err(|e| Error::store("exchange with upper", &new)(e.into()))?;
    drop(run);
    crate::store::sync_parent(&upper)?;
    crate::store::remove_tree(&new)?;
    Ok(snap)
}
