//! Removing what nothing reaches. Roots are the refs, the layers and
//! snapshots of every environment record, and whatever the caller adds. Prune holds the store's exclusive lock, so no writer
//! is between writing objects and naming them.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use crate::hash::ObjectId;
use crate::object::Kind;
use crate::store::{remove_tree, ObjectInfo, Store};

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
    /// `prune_until` was told to stop before everything was removed.
    pub interrupted: bool,
}

/// What gc and prune returns: its own refusals, or the failure of a module below it,
/// with that module's message (docs/architecture.md, "Errors").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Env(#[from] crate::env::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Meta(#[from] crate::meta::Error),
    #[error(transparent)]
    Refs(#[from] crate::refs::Error),
}

impl Error {
    /// The process exit status this failure gives (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Env(e) => e.exit_code(),
            Error::Store(e) => e.exit_code(),
            Error::Meta(e) => e.exit_code(),
            Error::Refs(e) => e.exit_code(),
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

/// Every object reachable from `roots`, by kind and id. A reachable object that
/// cannot be read stops the walk: without it we cannot know what it names.
pub fn reachable(store: &Store, roots: &[(Kind, ObjectId)]) -> Result<HashSet<(Kind, ObjectId)>> {
    let mut seen = HashSet::new();
    let mut stack: Vec<(Kind, ObjectId)> = roots.to_vec();
    while let Some((kind, id)) = stack.pop() {
        if !seen.insert((kind, id)) {
            continue;
        }
        if kind == Kind::Blob {
            continue;
        }
        match store.children(kind, &id) {
            Ok(c) => stack.extend(c),
            Err(crate::store::Error::Missing { .. }) => {}
            Err(e) => return Err(e.into()),
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
            let id = ObjectId::from_hex(layer).ok_or_else(|| crate::meta::Error::Corrupt {
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
    prune_until(store, extra_roots, opts, &|| false)
}

/// [`prune`], stopping cleanly between two removals once `stop` says so
/// (`report.interrupted`). Objects go in an order that keeps the store
/// consistent at every point: layers, then trees, then blobs, and within a
/// kind an object before those it names, so a crash or a stop never leaves a
/// present object that names a removed one.
pub fn prune_until(
    store: &Store,
    extra_roots: &[(Kind, ObjectId)],
    opts: &PruneOptions,
    stop: &dyn Fn() -> bool,
) -> Result<PruneReport> {
    let lock = store.gc_guard()?;
    crate::progress::phase("mark");
    let mut roots = store_roots(store)?;
    roots.extend_from_slice(extra_roots);
    let keep = reachable(store, &roots)?;
    let (objects, _) = store.list_objects()?;
    let cutoff = SystemTime::now()
        .checked_sub(opts.expire)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut garbage = Vec::new();
    for o in objects {
        if keep.contains(&(o.kind, o.id)) {
            continue;
        }
        let meta = fs::symlink_metadata(&o.path).map_err(Error::store("stat", &o.path))?;
        if !opts.expire.is_zero() && meta.modified().map(|m| m > cutoff).unwrap_or(true) {
            continue;
        }
        garbage.push((o, meta.len()));
    }
    let mut report = PruneReport::default();
    crate::progress::phase("remove");
    let total = Some(garbage.len() as u64);
    for (done, (o, len)) in removal_order(store, garbage).into_iter().enumerate() {
        crate::progress::report(done as u64, total);
        if stop() {
            report.interrupted = true;
            break;
        }
        if !opts.dry_run {
            fs::remove_file(&o.path).map_err(Error::store("remove", &o.path))?;
        }
        report.bytes += len;
        report.removed.push(o);
    }
    report.removed.sort_by_key(|o| (o.id, o.kind));
    if !opts.dry_run && !report.interrupted {
        report.scratch = clean_scratch(store, &keep, &lock)?;
    }
    Ok(report)
}

/// Layers, trees, blobs; within layers and trees, each before what it names
/// (reverse post-order of a depth-first walk over the garbage only). An
/// unreadable object names nothing we could break.
fn removal_order(store: &Store, garbage: Vec<(ObjectInfo, u64)>) -> Vec<(ObjectInfo, u64)> {
    let mut out = Vec::with_capacity(garbage.len());
    for kind in [Kind::Env, Kind::Layer, Kind::Tree, Kind::Blob] {
        let mine: Vec<(ObjectInfo, u64)> = garbage.iter().filter(|(o, _)| o.kind == kind).cloned().collect();
        if kind == Kind::Blob {
            out.extend(mine);
            continue;
        }
        let ids: HashSet<ObjectId> = mine.iter().map(|(o, _)| o.id).collect();
        let names = |id: &ObjectId| -> Vec<ObjectId> {
            let named: Vec<ObjectId> = match kind {
                // An environment names layers only, never another environment.
                Kind::Env => Vec::new(),
                Kind::Layer => store.read_layer(id).map(|l| l.parents).unwrap_or_default(),
                _ => store
                    .read_tree(id)
                    .map(|t| t.children().filter(|(k, _)| *k == Kind::Tree).map(|(_, c)| c).collect())
                    .unwrap_or_default(),
            };
            named.into_iter().filter(|c| ids.contains(c)).collect()
        };
        let mut post = Vec::with_capacity(mine.len());
        let mut done = HashSet::new();
        for (o, _) in &mine {
            if done.contains(&o.id) {
                continue;
            }
            // (node, its children, next child index)
            let mut stack = vec![(o.id, names(&o.id), 0usize)];
            done.insert(o.id);
            while let Some((node, children, i)) = stack.last_mut() {
                if let Some(c) = children.get(*i).copied() {
                    *i += 1;
                    if done.insert(c) {
                        let cc = names(&c);
                        stack.push((c, cc, 0));
                    }
                } else {
                    post.push(*node);
                    stack.pop();
                }
            }
        }
        let mut by_id: std::collections::HashMap<ObjectId, (ObjectInfo, u64)> =
            mine.into_iter().map(|(o, n)| (o.id, (o, n))).collect();
        for id in post.into_iter().rev() {
            if let Some(x) = by_id.remove(&id) {
                out.push(x);
            }
        }
    }
    out
}

/// How long gc leaves a temporary file of [`Store::write_atomic`] alone: those
/// writers take no lock, and live for milliseconds.
const SMALL_TEMP_GRACE: Duration = Duration::from_secs(600);

/// What crashed writers left: every temporary file and directory in `tmp/`
/// (with the exclusive lock held no writer runs, so each is a leftover), and
/// environment directories without a record (an interrupted build or destroy)
/// that no command holds. Needs no reachability walk; a build calls its `tmp/`
/// half on start whenever the store is idle ([`Store::sweep_if_idle`]).
pub(crate) fn sweep_leftovers(store: &Store, held: &crate::store::GcGuard) -> Result<u64> {
    Ok(sweep_tmp(store, held)? + sweep_env_dirs(store, held)?)
}

/// Whether a `kp.small-*` file's writer may still be at work: it holds the
/// file's flock, or the file was written by a Karapace that took no lock (its
/// name has no `.l.` before the random part), is younger than `grace` and the
/// pid in its name runs.
fn small_temp_in_use(path: &std::path::Path, grace: Option<SystemTime>) -> bool {
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return true;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.contains(crate::store::SMALL_TEMP_LOCKED) {
        return false;
    }
    // An earlier version's file: its writer's pid, if gone, says it is a
    // leftover; otherwise the grace period.
    let writer_gone = crate::store::small_temp_writer(name)
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH));
    let modified = file.metadata().and_then(|m| m.modified()).ok();
    !writer_gone && modified.zip(grace).is_none_or(|(m, g)| m > g)
}

/// The `tmp/` half of [`sweep_leftovers`]: as many entries as `tmp/` holds.
fn sweep_tmp(store: &Store, _held: &crate::store::GcGuard) -> Result<u64> {
    let mut n = 0;
    // A symlink at `tmp/` or `envs/` is refused: a sweep never lists, let
    // alone removes, what is outside the store.
    let tmp = store.make_dir(&store.path("tmp"))?;
    let grace = SystemTime::now().checked_sub(SMALL_TEMP_GRACE);
    for (name, path) in crate::store_dir_entries(&tmp)? {
        if !crate::store::is_temp_name(&name) {
            crate::log!(
                crate::log::Level::Warn,
                "leaving {}: not a karapace temporary file (remove it if nobody needs it)",
                path.display()
            );
            continue;
        }
        // A write_atomic writer (which takes no store lock) holds an
        // exclusive flock on its file until the rename: one nobody holds is a
        // dead writer's, however young (a pid in the name would not say:
        // pids are reused). Files of writers from before the lock get the
        // grace period.
        if name.starts_with(crate::store::SMALL_TEMP_PREFIX) && small_temp_in_use(&path, grace) {
            continue;
        }
        // A build that died between an environment's directory and its
        // record: the directory goes too (only if no record came).
        if let Some(id) = name.strip_prefix(crate::env::NEW_ENV_MARKER) {
            let dir = store.env_dir(id);
            if crate::hash::ObjectId::from_hex(id).is_some() && store.existing_dir(&dir)?.is_some() {
                n += u64::from(sweep_env_dir(store, id, &dir)?);
            }
        }
        let removed = if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            remove_tree(&path)
        } else {
            fs::remove_file(&path).map_err(crate::store::Error::store("remove", &path))
        };
        match removed {
            Ok(()) => n += 1,
            // Files a mapped build's other users own: `karapace gc` re-runs
            // mapped and can; nothing names them, so they only cost space.
            Err(e) => crate::log!(crate::log::Level::Warn, "leaving {}: {e}", path.display()),
        }
    }
    Ok(n)
}

/// The environment-directory half of [`sweep_leftovers`]: it looks at every
/// environment's record, so gc runs it, never a build.
fn sweep_env_dirs(store: &Store, _held: &crate::store::GcGuard) -> Result<u64> {
    let mut n = 0;
    if let Some(envs) = store.existing_dir(&store.path("envs"))? {
        for (name, path) in crate::store_dir_entries(&envs)? {
            n += u64::from(sweep_env_dir(store, &name, &path)?);
        }
    }
    Ok(n)
}

/// Removes one environment directory if its record is surely absent and no
/// command holds it.
fn sweep_env_dir(store: &Store, name: &str, path: &std::path::Path) -> Result<bool> {
    // Only directories named like an environment whose record is
    // surely absent (a corrupt record is verify-store's to report).
    if crate::hash::ObjectId::from_hex(name).is_none() || !matches!(store.read_env(name), Ok(None)) {
        return Ok(false);
    }
    // A restore or a command still inside holds one of these.
    let Some(_lock) = crate::env::lock_env(store, name, false)? else {
        return Ok(false);
    };
    if !crate::env::run_markers_held(&path.join("run"))?.is_empty() {
        return Ok(false);
    }
    crate::log!(
        crate::log::Level::Info,
        "removing {}, left by an interrupted build or destroy",
        path.display()
    );
    match remove_tree(path) {
        Ok(()) => Ok(true),
        Err(e) => {
            crate::log!(crate::log::Level::Warn, "leaving {}: {e}", path.display());
            Ok(false)
        }
    }
}

impl Store {
    /// Removes the temporary files crashed writers left in `tmp/` if no
    /// writer or gc holds the store now; otherwise does nothing. Environment
    /// directories without a record are gc's ([`sweep_leftovers`]): finding
    /// them reads every record.
    /// `env_id`: the environment a build is about to build, whose directory
    /// (if an interrupted build or destroy left it) goes too.
    pub fn sweep_if_idle(&self, env_id: Option<&str>) -> Result<u64> {
        let Some(guard) = self.try_gc_guard()? else {
            return Ok(0);
        };
        let mut n = sweep_tmp(self, &guard)?;
        if let Some(id) = env_id {
            let dir = self.env_dir(id);
            if self.existing_dir(&dir)?.is_some() {
                n += u64::from(sweep_env_dir(self, id, &dir)?);
            }
        }
        Ok(n)
    }
}

/// With the exclusive lock held: crashes' leftovers ([`sweep_leftovers`]), and
/// variants, cached installed sets and shared checkouts of what is no longer
/// reachable.
fn clean_scratch(store: &Store, keep: &HashSet<(Kind, ObjectId)>, held: &crate::store::GcGuard) -> Result<u64> {
    let mut n = sweep_leftovers(store, held)?;
    if let Some(variants) = store.existing_dir(&store.path("cache/variants"))? {
        for (fan, dir) in crate::store_dir_entries(&variants)? {
            let Some(dir) = store.existing_dir(&dir)? else { continue };
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
    // build/install.rs's cache of what a base has installed: `<base id>-<query>`.
    if let Some(installed) = store.existing_dir(&store.path("cache/installed/v1"))? {
        for (name, path) in crate::store_dir_entries(&installed)? {
            let base = name.split_once('-').and_then(|(id, _)| ObjectId::from_hex(id));
            if base.is_none_or(|id| !keep.contains(&(Kind::Layer, id))) {
                fs::remove_file(&path).map_err(Error::store("remove", &path))?;
                n += 1;
            }
        }
    }
    if let Some(checkouts) = store.existing_dir(&store.path("cache/checkouts"))? {
        for (name, path) in crate::store_dir_entries(&checkouts)? {
            if ObjectId::from_hex(&name).is_none_or(|id| !keep.contains(&(Kind::Layer, id))) {
                remove_tree(&path)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::layer::{write_layer, WriteOptions};

    /// Stopping after any number of removals leaves a store fsck passes: no
    /// present object ever names a removed one.
    #[test]
    fn every_stop_point_leaves_a_consistent_store() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("a/b/c")).unwrap();
        fs::write(src.join("a/b/c/f"), b"deep").unwrap();
        fs::write(src.join("a/g"), b"shallow").unwrap();
        fs::write(src.join("top"), b"top").unwrap();
        let (store, _) = Store::init(&dir.path().join("s")).unwrap();
        let base = write_layer(&store, &src, &WriteOptions::default())
            .unwrap()
            .layer
            .unwrap();
        fs::write(src.join("a/b/c/f"), b"changed").unwrap();
        let opts = WriteOptions {
            parents: vec![base],
            ..WriteOptions::default()
        };
        write_layer(&store, &src, &opts).unwrap();
        let total = prune(
            &store,
            &[],
            &PruneOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .unwrap()
        .removed
        .len();
        assert!(total >= 8, "{total}");
        let mut left = total;
        while left > 0 {
            let budget = Cell::new(1u32);
            let r = prune_until(&store, &[], &PruneOptions::default(), &|| {
                let stop = budget.get() == 0;
                budget.set(budget.get().saturating_sub(1));
                stop
            })
            .unwrap();
            assert_eq!(r.removed.len(), 1);
            left -= 1;
            assert_eq!(r.interrupted, left > 0);
            let report = crate::fsck::fsck(&store).unwrap();
            assert!(report.ok(), "after a stop: {:?}", report.problems);
        }
    }

    /// A sweep removes what crashed writers left and nothing else; it waits
    /// for nobody and does nothing while a writer holds the store.
    #[test]
    fn sweep_removes_leftovers_only_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join("s")).unwrap();
        let scratch = store.path("tmp/kp-build");
        fs::create_dir_all(scratch.join("work/work")).unwrap();
        fs::set_permissions(
            scratch.join("work/work"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        fs::write(store.path("tmp/kp-blob"), b"x").unwrap();
        // A young file of a writer from before the lock: the grace period.
        fs::write(store.path("tmp/kp.small-ref"), b"x").unwrap();
        let me = std::process::id();
        // A live writer holds its file's lock (pids are reused: only the lock says).
        let live = store.path(&format!("tmp/kp.small-{me}.l.live"));
        fs::write(&live, b"x").unwrap();
        let held_live = fs::File::open(&live).unwrap();
        rustix::fs::flock(&held_live, rustix::fs::FlockOperation::LockExclusive).unwrap();
        // A dead writer's file: nobody holds it, young as it is (our own pid
        // in the name: a live pid does not keep it).
        fs::write(store.path(&format!("tmp/kp.small-{me}.l.dead")), b"x").unwrap();
        let kept = crate::env::EnvRecord::new("a".repeat(64), None);
        store.write_env(&kept).unwrap();
        for id in [kept.env_id.clone(), "b".repeat(64)] {
            fs::create_dir_all(store.env_dir(&id).join("upper")).unwrap();
        }
        let held = crate::env::RunMarker::create(&store, &"c".repeat(64)).unwrap();

        let writer = store.write_guard().unwrap();
        assert_eq!(store.sweep_if_idle(None).unwrap(), 0);
        drop(writer);
        assert_eq!(store.sweep_if_idle(None).unwrap(), 3, "a build's sweep: tmp/ only");
        assert!(store.env_dir(&"b".repeat(64)).exists());
        assert_eq!(
            store.sweep_if_idle(Some(&"b".repeat(64))).unwrap(),
            1,
            "the env a build builds"
        );
        assert!(!store.env_dir(&"b".repeat(64)).exists());
        let sweep = || sweep_leftovers(&store, &store.try_gc_guard().unwrap().unwrap()).unwrap();
        assert_eq!(sweep(), 0);
        let left: Vec<String> = crate::store_dir_entries(&store.path("tmp"))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            left,
            [format!("kp.small-{me}.l.live"), "kp.small-ref".to_string()],
            "a write_atomic file stays while its writer holds it (or, unlocked, while young)"
        );
        assert!(store.env_dir(&kept.env_id).join("upper").is_dir());
        assert!(!store.env_dir(&"b".repeat(64)).exists());
        assert!(store.env_dir(&"c".repeat(64)).exists(), "a command still runs there");
        drop(held);
        assert_eq!(sweep(), 1);
    }

    #[test]
    fn a_build_killed_between_directory_and_record_is_swept_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join("s")).unwrap();
        let (half, whole) = ("d".repeat(64), "e".repeat(64));
        for id in [&half, &whole] {
            fs::create_dir_all(store.env_dir(id).join("upper")).unwrap();
            let marker = format!("tmp/{}{id}", crate::env::NEW_ENV_MARKER);
            fs::write(store.path(&marker), b"").unwrap();
        }
        // The second one's record came: only its marker was left.
        store
            .write_env(&crate::env::EnvRecord::new(whole.clone(), None))
            .unwrap();
        store.sweep_if_idle(None).unwrap();
        assert!(!store.env_dir(&half).exists(), "the half environment goes");
        assert!(store.env_dir(&whole).join("upper").is_dir(), "a recorded one stays");
        assert!(crate::store_dir_entries(&store.path("tmp")).unwrap().is_empty());
    }
}
