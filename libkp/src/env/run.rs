//! Run markers: `envs/<id>/run/<pid>`, one per process tree inside an
//! environment, each held with an exclusive `flock` for as long as it runs. The
//! kernel drops the lock when the holder dies, however it dies, so a marker that
//! can be locked is stale and is removed.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, Result};
use crate::store::Store;

/// Held while a process runs inside an environment; removed on drop.
#[derive(Debug)]
pub struct RunMarker {
    _file: File,
    path: PathBuf,
}

impl RunMarker {
    /// Creates and holds `envs/<env_id>/run/<pid>` (mode 0600, no symlink
    /// followed on the way).
    pub fn create(store: &Store, env_id: &str) -> Result<RunMarker> {
        let dir = store.make_dir(&store.env_dir(env_id).join("run"))?;
        let pid = std::process::id();
        let path = dir.join(pid.to_string());
        let mut file = store.open_lock(&path)?;
        let _ = file.set_len(0);
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| Error::store("lock", &path)(e.into()))?;
        let _ = writeln!(file, "{pid}");
        Ok(RunMarker { _file: file, path })
    }
}

impl Drop for RunMarker {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The pids of held markers in `dir` (the processes that run commands inside),
/// removing stale markers on the way.
pub(crate) fn held(dir: &Path) -> Result<Vec<i32>> {
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
                let _ = fs::remove_file(&path);
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                pids.extend(entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()));
            }
            Err(e) => return Err(Error::store("lock", &path)(e.into())),
        }
    }
    Ok(pids)
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
