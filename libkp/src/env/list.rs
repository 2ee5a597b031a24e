//! `karapace list`'s one pass: every record read once, in parallel, with the
//! state users see, at a few system calls per environment (docs/store-format.md,
//! "Listing"): `meta/envs/` and `envs/` are opened once and each record is
//! opened relative to them, read in one call and checked with one hash. The
//! store's `run/` hints (env/run.rs) are read once; only an environment with a
//! hint has its markers looked at.

use std::cell::RefCell;
use std::collections::HashSet;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rayon::prelude::*;
use rustix::buffer::spare_capacity;
use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::Errno;

use super::run::HINTS;
use super::Result;
use super::{EnvRecord, Error, State, META_DIR};
use crate::store::Store;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Store {
    /// Every environment with its effective state, sorted as
    /// [`Store::list_envs`] sorts. A run directory with no marker in it is
    /// not locked or looked at further: nothing runs there.
    pub fn list_envs_with_state(&self) -> Result<Vec<(EnvRecord, State)>> {
        let dir = self.root().join("meta").join(META_DIR);
        let Some(dir) = self.existing_dir(&dir)? else {
            return Ok(Vec::new());
        };
        let meta = self.open_beneath(&dir, DIR_FLAGS, 0, "directory")?;
        let mut buf = vec![MaybeUninit::uninit(); 64 << 10];
        let mut ids = Vec::new();
        read_names(&meta, &dir, &mut buf, |n| {
            if let Some(id) = n.strip_suffix(".json") {
                ids.push(id.to_string());
            }
        })?;
        let mut hinted = HashSet::new();
        let hints = self.root().join(HINTS);
        if let Some(d) = self.existing_dir(&hints)? {
            let fd = self.open_beneath(&d, DIR_FLAGS, 0, "directory")?;
            read_names(&fd, &d, &mut buf, |n| {
                hinted.insert(n.to_string());
            })?;
        }
        let mut out: Vec<(EnvRecord, State)> = ids
            .par_iter()
            .map(|id| -> Result<Option<(EnvRecord, State)>> {
                let Some(rec) = read_record(&meta, &dir, id)? else {
                    return Ok(None);
                };
                let state = if hinted.contains(id) {
                    self.effective_state(&rec)?
                } else {
                    rec.state
                };
                Ok(Some((rec, state)))
            })
            .filter_map(|r| r.transpose())
            .collect::<Result<_>>()?;
        out.sort_by(|(a, _), (b, _)| {
            (a.name.as_deref().unwrap_or("~"), &a.env_id).cmp(&(b.name.as_deref().unwrap_or("~"), &b.env_id))
        });
        Ok(out)
    }
}

/// `meta/envs/<id>.json`, opened beneath `meta` (open on that directory):
/// one open, one read for a record of the usual size, one close.
fn read_record(meta: &OwnedFd, dir: &Path, id: &str) -> Result<Option<EnvRecord>> {
    let name = format!("{id}.json");
    let path = dir.join(&name);
    let fd = match rustix::fs::openat(
        meta,
        &name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(Error::store("open", &path)(e.into())),
    };
    // One buffer per thread, grown to the largest record seen and never
    // cleared byte by byte: records are read into its spare capacity.
    thread_local!(static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(8 << 10)));
    BUF.with_borrow_mut(|bytes| {
        bytes.clear();
        loop {
            let n = match rustix::io::read(&fd, spare_capacity(bytes)) {
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::store("read", &path)(e.into())),
            };
            // A read that did not fill the spare room reached the end of this
            // regular file; one that did may have more. A record read short
            // for any reason fails its checksum rather than pass as another.
            if n == 0 || bytes.len() < bytes.capacity() {
                break;
            }
            bytes.reserve(bytes.capacity());
        }
        EnvRecord::from_meta_bytes(bytes, &path).map(Some)
    })
}

/// Calls `each` with the name of every entry of the directory open as `fd`
/// but `.` and `..`.
fn read_names(fd: &OwnedFd, dir: &Path, buf: &mut [MaybeUninit<u8>], mut each: impl FnMut(&str)) -> Result<()> {
    let mut entries = RawDir::new(fd.as_fd(), buf);
    while let Some(e) = entries.next() {
        let e = e.map_err(|e| Error::store("read directory", dir)(e.into()))?;
        match e.file_name().to_str() {
            Ok("." | "..") | Err(_) => {}
            Ok(n) => each(n),
        }
    }
    Ok(())
}
