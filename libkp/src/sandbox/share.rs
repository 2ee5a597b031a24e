//! One overlay over a writable directory at a time. The kernel leaves two
//! overlays over one upper directory undefined (a write through one may be
//! lost or seen stale through the other), so concurrent sandboxes of one
//! environment share one overlay mount: the first mounts it, later ones join
//! the user and mount namespaces of a sandbox that has it (setns) and copy
//! that namespace's root — the overlay, without what the other sandbox
//! mounted on it — into a mount namespace of their own. The kernel drops the
//! overlay when the last namespace holding it goes; nothing has to tear it
//! down, and a crashed sandbox leaves nothing behind.
//!
//! The share directory (`envs/<id>/share/`) holds one registration file per
//! running sandbox, named by its caller's pid, locked (flock) by the caller
//! for as long as it runs. Once its command has started (so a joiner never
//! finds a half-mounted one) it holds the numbers of two descriptors the
//! caller keeps open: the user and the mount namespace with the overlay at
//! their root. A joiner opens them through `/proc/<caller>/fd/` (PID 1 of a
//! sandbox is not dumpable, so its own /proc entries are closed to the
//! user), and an open namespace descriptor keeps that namespace alive, so
//! the overlay stays joinable after the sandbox that mounted it ended. `lock`
//! there is taken only by a sandbox that finds nobody to join, from its
//! check to its registration, so two never mount side by side. Joining takes
//! no lock: execs never wait for each other while one is running.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::{Error, Result};

/// How this sandbox gets its overlay.
pub enum Start {
    /// Join the namespaces another caller (`caller`, its pid) registered.
    Join(Namespaces),
    /// Mount a new one; others wait on the lock until it is registered.
    Fresh { _mutex: File },
    /// Registered with these namespaces (kept open): others may join.
    Published { user: OwnedFd, mnt: OwnedFd },
}

/// A user and a mount namespace with the shared overlay at the root.
pub struct Namespaces {
    pub user: OwnedFd,
    pub mnt: OwnedFd,
    pub caller: i32,
}

/// This sandbox's place in the share directory.
pub struct Shared {
    pub start: Start,
    file: File,
    path: PathBuf,
}

const LOCK: &str = "lock";

fn setup(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::setup("share overlay", path)(e)
}

/// Registers this caller in `dir` and says whether to join or mount.
/// `skip` lists mounters a failed join already tried.
pub fn begin(dir: &Path, skip: &[i32]) -> Result<Shared> {
    let path = dir.join(std::process::id().to_string());
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .mode(0o600)
        .open(&path)
        .map_err(setup(&path))?;
    flock(&file, FlockOperation::LockExclusive).map_err(|e| setup(&path)(e.into()))?;
    let start = match live(dir, skip)? {
        Some(ns) => Start::Join(ns),
        None => {
            let lock = dir.join(LOCK);
            let mutex = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&lock)
                .map_err(setup(&lock))?;
            flock(&mutex, FlockOperation::LockExclusive).map_err(|e| setup(&lock)(e.into()))?;
            // Someone may have registered while we waited.
            match live(dir, skip)? {
                Some(ns) => Start::Join(ns),
                None => Start::Fresh { _mutex: mutex },
            }
        }
    };
    Ok(Shared { start, file, path })
}

impl Shared {
    /// Registers the namespaces to join (`owned`: this sandbox's, which
    /// are kept open from now on; `None`: the ones this sandbox joined) and
    /// lets others join them; a fresh mount's lock goes.
    pub fn publish(&mut self, owned: Option<(OwnedFd, OwnedFd)>) -> Result<()> {
        if let Some((user, mnt)) = owned {
            self.start = Start::Published { user, mnt };
        }
        let (user, mnt) = match &self.start {
            Start::Join(ns) => (&ns.user, &ns.mnt),
            Start::Published { user, mnt } => (user, mnt),
            Start::Fresh { .. } => return Ok(()),
        };
        self.file
            .write_all(format!("{} {}\n", user.as_raw_fd(), mnt.as_raw_fd()).as_bytes())
            .map_err(setup(&self.path))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The namespaces of another running sandbox: its registration is locked
/// (its caller runs) and names them. Stale registrations (their caller
/// died) are removed on the way.
fn live(dir: &Path, skip: &[i32]) -> Result<Option<Namespaces>> {
    let own = std::process::id().to_string();
    let entries = std::fs::read_dir(dir).map_err(setup(dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == LOCK || name == own.as_str() {
            continue;
        }
        let Some(caller) = name.to_str().and_then(|n| n.parse::<i32>().ok()).filter(|p| *p > 0) else {
            continue;
        };
        if skip.contains(&caller) {
            continue;
        }
        let path = entry.path();
        let Ok(mut f) = File::open(&path) else { continue };
        match flock(&f, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            Err(Errno::WOULDBLOCK) => {}
            Err(_) => continue,
        }
        let mut text = String::new();
        let _ = f.read_to_string(&mut text);
        let fds: Vec<i32> = text.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        let [user, mnt] = fds[..] else {
            continue; // not started yet
        };
        let open = |fd: i32| {
            rustix::fs::open(
                format!("/proc/{caller}/fd/{fd}"),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        // The caller may have ended since the check: the setns that follows
        // refuses what is not a namespace of the right kind.
        if let (Ok(user), Ok(mnt)) = (open(user), open(mnt)) {
            return Ok(Some(Namespaces { user, mnt, caller }));
        }
    }
    Ok(None)
}
