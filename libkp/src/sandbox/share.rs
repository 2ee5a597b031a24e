//! One overlay over a writable directory at a time. The kernel leaves two
//! overlays over one upper directory undefined (a write through one may be
//! lost or seen stale through the other), so concurrent sandboxes of one
//! environment share one overlay mount: the first mounts it, later ones join
//! the user and mount namespaces of a sandbox that has it (setns through a
//! pidfd) and take a private copy of that mount table, which holds the same
//! overlay. The kernel drops the overlay when the last sandbox using it ends;
//! nothing has to tear it down, and a crashed sandbox leaves nothing behind.
//!
//! The share directory (`envs/<id>/share/`) holds one registration file per
//! running sandbox, named by its caller's pid, locked (flock) by the caller
//! for as long as it runs and holding the pid of its mounter once its command
//! has started (so a joiner never finds a half-mounted one). `lock` there is
//! taken only by a sandbox that finds nobody to join, from its check to its
//! registration, so two never mount side by side. Joining takes no lock:
//! execs never wait for each other while one is running.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::{Error, Result};

/// How this sandbox gets its overlay.
pub enum Start {
    /// Join the mounter `pid` (a pidfd to it, for setns).
    Join { pidfd: OwnedFd, pid: i32 },
    /// Mount a new one; others wait on the lock until it is registered.
    Fresh { _mutex: File },
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
        Some((pidfd, pid)) => Start::Join { pidfd, pid },
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
                Some((pidfd, pid)) => Start::Join { pidfd, pid },
                None => Start::Fresh { _mutex: mutex },
            }
        }
    };
    Ok(Shared { start, file, path })
}

impl Shared {
    /// Records the mounter (its command has started, so its overlay is
    /// mounted) and lets others join it; a fresh mount's lock goes.
    pub fn publish(&mut self, mounter: i32) -> Result<()> {
        self.file
            .write_all(format!("{mounter}\n").as_bytes())
            .map_err(setup(&self.path))?;
        if let Start::Fresh { .. } = self.start {
            self.start = Start::Join {
                pidfd: pidfd_open(Pid::from_raw(mounter).expect("a mounter pid"), PidfdFlags::empty())
                    .map_err(|e| setup(&self.path)(e.into()))?,
                pid: mounter,
            };
        }
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A running mounter of another sandbox: its registration is locked and
/// names it, and it has not exited. Stale registrations (their caller died)
/// are removed on the way.
fn live(dir: &Path, skip: &[i32]) -> Result<Option<(OwnedFd, i32)>> {
    let own = std::process::id().to_string();
    let entries = std::fs::read_dir(dir).map_err(setup(dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == LOCK || name == own.as_str() {
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
        let Some(pid) = text.trim().parse::<i32>().ok().filter(|p| *p > 0 && !skip.contains(p)) else {
            continue; // not started yet
        };
        let Ok(pidfd) = pidfd_open(Pid::from_raw(pid).expect("positive"), PidfdFlags::empty()) else {
            continue;
        };
        // A pidfd is readable once its process has exited.
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        let running = matches!(poll(&mut [PollFd::new(&pidfd, PollFlags::IN)], Some(&now)), Ok(0));
        if running {
            return Ok(Some((pidfd, pid)));
        }
    }
    Ok(None)
}
