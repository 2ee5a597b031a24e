//! Run markers: `envs/<id>/run/<pid>`, one per process tree inside an
//! environment, each held with an exclusive `flock` for as long as it runs. The
//! kernel drops the lock when the holder dies, however it dies, so a marker that
//! can be locked is stale and is removed.
//!
//! The `run/` directory itself is `flock`ed exclusively, for microseconds,
//! around every change to it and every look at it: a marker is created and
//! locked, found stale and removed, or removed by its holder under that lock,
//! so nobody sees a marker between its creation and its lock (and takes it for
//! stale), and what a look finds held stays held until the look ends. Work
//! directories of commands no longer running are swept under it too
//! ([`RunDir::sweep_work`]), and a restore or destroy checks that nothing runs
//! and acts under it ([`Store::while_stopped`]).
//!
//! Beside the markers, the store keeps one hint per environment that may be
//! running: `run/<env_id>`, an empty file made (under the run lock) before the
//! first marker and removed (under the same lock) once no marker is left, so
//! whenever a marker exists its hint does. `list` reads `run/` once instead of
//! every environment's `run/` directory; a hint left by a crash only sends it
//! to the markers, which [`RunDir::held`] then clears with the hint.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation, Mode, OFlags};

use super::{Error, Result};
use crate::store::Store;

/// Held while a process runs inside an environment; removed on drop.
#[derive(Debug)]
pub struct RunMarker {
    _file: File,
    path: PathBuf,
}

/// `envs/<id>/run/`, locked exclusively while held.
#[derive(Debug)]
pub(crate) struct RunDir {
    _fd: OwnedFd,
    dir: PathBuf,
}

/// The store-wide directory of "may be running" hints.
pub(crate) const HINTS: &str = "run";

/// `run/<env_id>` for the run directory `<store>/envs/<env_id>/run`.
fn hint_for(run_dir: &Path) -> Option<PathBuf> {
    let env = run_dir.parent()?;
    let root = env.parent()?.parent()?;
    Some(root.join(HINTS).join(env.file_name()?))
}

/// Whether `dir` holds any entry (a marker, held or stale).
fn has_entries(dir: &Path) -> bool {
    fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true)
}

impl RunDir {
    /// Locks `dir`, waiting for the few microseconds another holder needs;
    /// `None` when it does not exist.
    pub(crate) fn lock(dir: &Path) -> Result<Option<RunDir>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(dir, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(Error::store("open directory", dir)(e.into())),
        };
        flock(&fd, FlockOperation::LockExclusive).map_err(|e| Error::store("lock", dir)(e.into()))?;
        Ok(Some(RunDir {
            _fd: fd,
            dir: dir.to_path_buf(),
        }))
    }

    /// [`RunDir::lock`], making the directory first.
    pub(crate) fn make(store: &Store, env_id: &str) -> Result<RunDir> {
        let dir = store.make_dir(&store.env_dir(env_id).join("run"))?;
        Self::lock(&dir)?.ok_or_else(|| Error::store("open directory", &dir)(std::io::ErrorKind::NotFound.into()))
    }

    /// The pids of held markers (the processes that run commands inside),
    /// removing stale markers on the way.
    pub(crate) fn held(&self) -> Result<Vec<i32>> {
        let dir = &self.dir;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::store("read directory", dir)(e)),
        };
        let mut pids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::store("read directory", dir))?;
            let path = entry.path();
            let Ok(f) = File::open(&path) else { continue };
            match flock(&f, FlockOperation::NonBlockingLockShared) {
                Ok(()) => {
                    crate::log!(
                        crate::log::Level::Info,
                        "removing run marker {}: its process is gone",
                        path.display()
                    );
                    let _ = fs::remove_file(&path);
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    pids.extend(entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()));
                }
                Err(e) => return Err(Error::store("lock", &path)(e.into())),
            }
        }
        if pids.is_empty() {
            self.drop_hint();
        }
        Ok(pids)
    }

    /// Removes this environment's hint when no marker is left (called under
    /// the run lock).
    fn drop_hint(&self) {
        if !has_entries(&self.dir) {
            if let Some(hint) = hint_for(&self.dir) {
                let _ = fs::remove_file(hint);
            }
        }
    }

    /// Removes the work directories (`envs/<id>/work/<pid>`) of commands no
    /// longer running, but `keep`'s.
    pub(crate) fn sweep_work(&self, work: &Path, keep: &Path) -> Result<()> {
        let live = self.held()?;
        if let Ok(entries) = fs::read_dir(work) {
            for e in entries.flatten() {
                if e.file_name() == SHARED_WORK {
                    continue;
                }
                let pid = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok());
                if e.path() != keep && pid.is_none_or(|p| !live.contains(&p)) {
                    let _ = crate::store::remove_tree(&e.path());
                }
            }
        }
        Ok(())
    }
}

/// `envs/<id>/work/shared`: the work directory of the overlay the running
/// commands of a (not frozen) environment share (sandbox share.rs); never
/// swept.
pub(crate) const SHARED_WORK: &str = "shared";

impl RunMarker {
    /// Creates and holds `envs/<env_id>/run/<pid>` (mode 0600, no symlink
    /// followed on the way).
    pub fn create(store: &Store, env_id: &str) -> Result<RunMarker> {
        let run = RunDir::make(store, env_id)?;
        store.open_lock(&store.path(HINTS).join(env_id))?;
        let pid = std::process::id();
        let path = run.dir.join(pid.to_string());
        let mut file = store.open_lock(&path)?;
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| Error::store("lock", &path)(e.into()))?;
        let _ = file.set_len(0);
        let _ = writeln!(file, "{pid}");
        Ok(RunMarker { _file: file, path })
    }
}

impl Drop for RunMarker {
    fn drop(&mut self) {
        let run = self.path.parent().and_then(|d| RunDir::lock(d).ok().flatten());
        let _ = fs::remove_file(&self.path);
        if let Some(run) = run {
            run.drop_hint();
        }
    }
}

/// The markers in `dir` nobody holds (left by processes that are gone), for
/// `doctor`: nothing is removed.
pub(crate) fn stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(Some(_run)) = RunDir::lock(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(f) = File::open(&path) else { continue };
        if flock(&f, FlockOperation::NonBlockingLockShared).is_ok() {
            out.push(path);
        }
    }
    out
}

/// The pids of held markers in `dir` (the processes that run commands inside),
/// removing stale markers on the way.
pub(crate) fn held(dir: &Path) -> Result<Vec<i32>> {
    match RunDir::lock(dir)? {
        Some(run) => run.held(),
        None => Ok(Vec::new()),
    }
}

/// Sends `sig` to `pid` and, first, to its children: the sandbox's PID 1 is a
/// child of the process holding the marker, and killing it ends its whole PID
/// namespace.
pub(super) fn signal_tree(pid: i32, sig: rustix::process::Signal) {
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for child in children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
        if let Some(p) = rustix::process::Pid::from_raw(child) {
            let _ = rustix::process::kill_process(p, sig);
        }
    }
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, sig);
    }
}
