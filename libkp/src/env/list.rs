//! `karapace list`'s one pass: every record read once, in parallel, with the
//! state users see, at a few system calls per environment (docs/store-format.md,
//! "Listing"): `meta/envs/` and `envs/` are opened once and each record is
//! opened relative to them, read in one call and checked with one hash; its
//! `run/` directory is only read for a marker, and locked only when it has one.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rayon::prelude::*;
use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::Errno;

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
        let envs = self.root().join("envs");
        let envs_fd = match self.existing_dir(&envs)? {
            Some(d) => Some(self.open_beneath(&d, DIR_FLAGS, 0, "directory")?),
            None => None,
        };
        let mut ids = Vec::new();
        let mut buf = vec![MaybeUninit::uninit(); 64 << 10];
        let mut entries = RawDir::new(meta.as_fd(), &mut buf);
        while let Some(e) = entries.next() {
            let e = e.map_err(|e| Error::store("read directory", &dir)(e.into()))?;
            if let Some(id) = e.file_name().to_str().ok().and_then(|n| n.strip_suffix(".json")) {
                ids.push(id.to_string());
            }
        }
        let mut out: Vec<(EnvRecord, State)> = ids
            .par_iter()
            .map(|id| -> Result<Option<(EnvRecord, State)>> {
                let Some(rec) = read_record(&meta, &dir, id)? else {
                    return Ok(None);
                };
                let state = match &envs_fd {
                    Some(fd) if has_marker(fd, id) => self.effective_state(&rec)?,
                    _ => rec.state,
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
    let mut bytes = vec![0u8; 8 << 10];
    let mut len = 0;
    loop {
        let n = match rustix::io::read(&fd, &mut bytes[len..]) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::store("read", &path)(e.into())),
        };
        len += n;
        // A read that did not fill the buffer reached the end of this regular
        // file; one that did may have more. A record read
        // short for any reason fails its checksum rather than pass as another.
        if n == 0 || len < bytes.len() {
            break;
        }
        bytes.resize(2 * bytes.len(), 0);
    }
    bytes.truncate(len);
    EnvRecord::from_meta_bytes(&bytes, &path).map(Some)
}

/// Whether `envs/<id>/run/` holds anything but `.` and `..`.
fn has_marker(envs: &OwnedFd, id: &str) -> bool {
    let Ok(run) = rustix::fs::openat(envs, format!("{id}/run"), DIR_FLAGS, Mode::empty()) else {
        return false;
    };
    let mut buf = [MaybeUninit::uninit(); 1024];
    let mut entries = RawDir::new(run, &mut buf);
    while let Some(e) = entries.next() {
        match e {
            Ok(e) if matches!(e.file_name().to_bytes(), b"." | b"..") => {}
            _ => return true,
        }
    }
    false
}
