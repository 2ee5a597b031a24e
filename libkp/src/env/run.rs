//! Run markers: `envs/<id>/run/<pid>`, one per process tree inside an
//! environment, each held with an exclusive `flock` for as long as it runs. The
//! kernel drops the lock when the holder dies, however it dies, so a marker that
//! can be locked is stale and is removed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, Result};

/// Held while a process runs inside an environment; removed on drop.
#[derive(Debug)]
pub struct RunMarker {
    _file: File,
    path: PathBuf,
}

impl RunMarker {
    pub fn create(dir: &Path) -> Result<RunMarker> {
        fs::create_dir_all(dir).map_err(Error::store("create directory", dir))?;
        let pid = std::process::id();
        let path = dir.join(pid.to_string());
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(Error::store("create run marker", &path))?;
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

/// Counts held markers in `dir`, removing stale ones.
pub(super) fn count(dir: &Path) -> Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::store("read directory", dir)(e)),
    };
    let mut held = 0;
    for entry in entries {
        let path = entry.map_err(Error::store("read directory", dir))?.path();
        let Ok(f) = File::open(&path) else { continue };
        match flock(&f, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                let _ = fs::remove_file(&path);
            }
            Err(rustix::io::Errno::WOULDBLOCK) => held += 1,
            Err(e) => return Err(Error::store("lock", &path)(e.into())),
        }
    }
    Ok(held)
}
