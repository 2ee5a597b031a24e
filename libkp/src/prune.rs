//! Removing what nothing reaches. Roots are the refs, the layers of every
//! environment record, and whatever the caller adds. Prune holds the store's exclusive lock, so no writer
//! is between writing objects and naming them.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::object::Kind;
use crate::store::{ObjectInfo, Store};

#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    pub dry_run: bool,
    /// Keep unreachable objects younger than this.
    pub expire: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct PruneReport {
    /// Objects removed (or, in a dry run, that would be), in id order.
    pub removed: Vec<ObjectInfo>,
    pub bytes: u64,
    /// Temporary files and checkout variants cleaned up.
    pub scratch: u64,
}

/// Every object reachable from `roots`, by kind and id. A reachable object that
/// cannot be read stops the walk: without it we cannot know what it names.
pub fn reachable(store: &Store, roots: &[(Kind, ObjectId)]) -> Result<HashSet<(Kind, ObjectId)>> {
    let mut seen = HashSet::new();
    let mut stack: Vec<(Kind, ObjectId)> = roots.to_vec();
    while let Some((kind, id)) = stack.pop() {
        if !seen.insert((kind, id)) {
            continue;
        }
        match kind {
            Kind::Blob => {}
            Kind::Tree => match store.read_tree(&id) {
                Ok(t) => stack.extend(t.children()),
                Err(Error::Missing { .. }) => {}
                Err(e) => return Err(e),
            },
            Kind::Layer => match store.read_layer(&id) {
                Ok(l) => {
                    stack.push((Kind::Tree, l.tree));
                    stack.extend(l.parents.iter().map(|p| (Kind::Layer, *p)));
                }
                Err(Error::Missing { .. }) => {}
                Err(e) => return Err(e),
            },
        }
    }
    Ok(seen)
}

/// The roots every prune keeps: what each ref names, and every layer and
/// snapshot an environment record names (whatever its state: archived ones
/// included).
pub fn store_roots(store: &Store) -> Result<Vec<(Kind, ObjectId)>> {
    let mut roots = Vec::new();
    for (_, id) in store.list_refs("refs/")? {
        if let Some(kind) = store.kind_of(&id) {
            roots.push((kind, id));
        }
    }
    for env in store.list_envs()? {
        for layer in env.layers.iter().chain(env.snapshots.iter().map(|s| &s.layer)) {
            let id = ObjectId::from_hex(layer).ok_or_else(|| Error::CorruptMeta {
                path: store.meta_path(&format!("envs/{}", env.env_id)).unwrap_or_default(),
                reason: format!("layer {layer:?} is not an id"),
            })?;
            roots.push((Kind::Layer, id));
        }
    }
    Ok(roots)
}

/// Removes unreachable objects (or lists them in a dry run).
pub fn prune(store: &Store, extra_roots: &[(Kind, ObjectId)], opts: &PruneOptions) -> Result<PruneReport> {
    let _lock = store.gc_guard()?;
    let mut roots = store_roots(store)?;
    roots.extend_from_slice(extra_roots);
    let keep = reachable(store, &roots)?;
    let (objects, _) = store.list_objects()?;
    let cutoff = SystemTime::now()
        .checked_sub(opts.expire)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = PruneReport::default();
    for o in objects {
        if keep.contains(&(o.kind, o.id)) {
            continue;
        }
        let meta = fs::symlink_metadata(&o.path).map_err(Error::store("stat", &o.path))?;
        if !opts.expire.is_zero() && meta.modified().map(|m| m > cutoff).unwrap_or(true) {
            continue;
        }
        if !opts.dry_run {
            fs::remove_file(&o.path).map_err(Error::store("remove", &o.path))?;
        }
        report.bytes += meta.len();
        report.removed.push(o);
    }
    if !opts.dry_run {
        report.scratch = clean_scratch(store, &keep)?;
    }
    Ok(report)
}

/// With the exclusive lock held no writer runs, so every temporary file is a
/// crash's leftover; variants of unreachable blobs are no longer needed.
fn clean_scratch(store: &Store, keep: &HashSet<(Kind, ObjectId)>) -> Result<u64> {
    let mut n = 0;
    let tmp = store.path("tmp");
    for (_, path) in crate::store_dir_entries(&tmp)? {
        let r = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        r.map_err(Error::store("remove", &path))?;
        n += 1;
    }
    let variants = store.path("cache/variants");
    if variants.exists() {
        for (fan, dir) in crate::store_dir_entries(&variants)? {
            for (name, path) in crate::store_dir_entries(&dir)? {
                let id = name
                    .split_once('.')
                    .and_then(|(rest, _)| ObjectId::from_hex(&format!("{fan}{rest}")));
                if id.is_none_or(|id| !keep.contains(&(Kind::Blob, id))) {
                    fs::remove_file(&path).map_err(Error::store("remove", &path))?;
                    n += 1;
                }
            }
        }
    }
    let checkouts = store.path("cache/checkouts");
    if checkouts.exists() {
        for (name, path) in crate::store_dir_entries(&checkouts)? {
            if ObjectId::from_hex(&name).is_none_or(|id| !keep.contains(&(Kind::Layer, id))) {
                remove_tree(&path)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Removes a directory tree, making read-only directories (a checkout of
/// `/root` is 0700, of some `/usr/share` dirs 0555) writable on the way.
pub(crate) fn remove_tree(path: &std::path::Path) -> Result<()> {
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let _ = fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(&dir) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    fs::remove_dir_all(path).map_err(Error::store("remove", path))
}
