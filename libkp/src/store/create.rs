//! Creating loose objects relative to `objects/` and `tmp/` held open.
//!
//! A writer of many small objects (a first commit of 50,000 files) spends its
//! time in the filesystem, not in hashing: so a process keeps `objects/` and
//! `tmp/` open and walks no path from the root per object. A new object is
//! written whole to a file of its own in `tmp/` (created exclusively under a
//! name no other process uses: `kp-obj-<pid>-<n>`, mode given at creation)
//! and renamed into place: the name appears with all of its content, or not
//! at all, and a crash leaves at most that file in `tmp/`, which gc sweeps.
//! (An unnamed `O_TMPFILE` linked into place was tried: on ext4 each one
//! costs about as much as all the other calls of a file together, since the
//! filesystem journals it as an orphan until it is linked.)
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::{set_mode, Error, Result, Store, DIR_MODE};
use crate::hash::ObjectId;
use crate::object::Kind;

/// What a process that writes objects keeps open, and what it learnt.
#[derive(Debug, Default)]
pub(super) struct ObjectDirs {
    objects: OnceLock<OwnedFd>,
    tmp: OnceLock<OwnedFd>,
    /// The fan-out directories (`objects/<2 hex>`) this process made or
    /// found, one bit each: each is made once, not tried per object.
    fanouts: [AtomicU64; 4],
}

/// `<2 hex>/<62 hex>.<kind>`, an object's path relative to `objects/`.
pub(super) fn object_name(kind: Kind, id: &ObjectId) -> String {
    let hex = id.to_hex();
    format!("{}/{}.{}", &hex[..2], &hex[2..], kind)
}

/// The process's umask, read once from `/proc/self/status` (reading it
/// with umask(2) would set it); `None` where that file does not say.
/// Karapace changes its umask only in the sandbox's own processes.
fn umask() -> Option<u32> {
    static UMASK: OnceLock<Option<u32>> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(line.trim(), 8).ok()
    })
}

impl Store {
    /// A directory of the store held open for the life of the process.
    fn held_dir<'a>(&self, cell: &'a OnceLock<OwnedFd>, name: &str) -> Result<BorrowedFd<'a>> {
        if let Some(fd) = cell.get() {
            return Ok(fd.as_fd());
        }
        let path = self.make_dir(&self.path(name))?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = self.open_beneath(&path, flags, 0, "directory")?;
        let _ = cell.set(fd);
        Ok(cell.get().expect("just set").as_fd())
    }

    fn objects_fd(&self) -> Result<BorrowedFd<'_>> {
        self.dirs
            .objects
            .get()
            .map_or_else(|| self.held_dir(&self.dirs.objects, "objects"), |fd| Ok(fd.as_fd()))
    }

    /// `tmp/` held open (checked once, as [`Store::temp_file`] checks it).
    fn tmp_fd(&self) -> Result<BorrowedFd<'_>> {
        self.dirs
            .tmp
            .get()
            .map_or_else(|| self.held_dir(&self.dirs.tmp, "tmp"), |fd| Ok(fd.as_fd()))
    }

    /// Makes `id`'s fan-out directory, once per process.
    pub(super) fn make_fanout(&self, id: &ObjectId) -> Result<()> {
        let fan = id.as_bytes()[0] as usize;
        let (word, bit) = (&self.dirs.fanouts[fan / 64], 1u64 << (fan % 64));
        if word.load(Ordering::Relaxed) & bit != 0 {
            return Ok(());
        }
        let hex = &id.to_hex()[..2];
        match rustix::fs::mkdirat(self.objects_fd()?, hex, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(Error::store("create directory", &self.path("objects").join(hex))(
                    e.into(),
                ))
            }
        }
        word.fetch_or(bit, Ordering::Relaxed);
        Ok(())
    }

    /// The length of the stored object `kind`/`id`, if there is one: one
    /// stat relative to `objects/`.
    pub(crate) fn stored_size(&self, kind: Kind, id: &ObjectId) -> Result<Option<u64>> {
        let name = object_name(kind, id);
        match rustix::fs::statat(self.objects_fd()?, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st.st_size as u64)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::store("stat", &self.path("objects").join(&name))(e.into())),
        }
    }

    /// Stores `data` as object `kind`/`id` (its hash, computed by the
    /// caller, who has looked for it), file mode `mode`. Whatever is at that
    /// name is replaced: a short object left by a crash before a `syncfs`,
    /// or the same bytes from another writer.
    pub(super) fn create_object(&self, kind: Kind, id: &ObjectId, data: &[u8], mode: u32) -> Result<()> {
        self.make_fanout(id)?;
        let name = object_name(kind, id);
        let tmp = self.tmp_fd()?;
        static SEQ: AtomicU64 = AtomicU64::new(0);
        static PID: OnceLock<u32> = OnceLock::new();
        // The pid read once (a call each time otherwise); a child forked
        // since that uses its parent's finds a name taken and moves on.
        let pid = *PID.get_or_init(std::process::id);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let (fd, temp) = loop {
            // A name of a process that died with this pid may be left: skip it.
            let temp = format!("kp-obj-{pid}-{}", SEQ.fetch_add(1, Ordering::Relaxed));
            match rustix::fs::openat(tmp, &temp, flags, Mode::from_raw_mode(mode)) {
                Ok(fd) => break (fd, temp),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(Error::store("create temporary file in", &self.path("tmp"))(e.into())),
            }
        };
        let mut file = File::from(fd);
        let temp_path = self.path("tmp").join(&temp);
        let written = (|| {
            if umask().is_none_or(|m| mode & m != 0) {
                set_mode(&file, mode, &temp_path)?;
            }
            file.write_all(data).map_err(Error::store("write", &temp_path))?;
            rustix::fs::renameat(tmp, &temp, self.objects_fd()?, &name)
                .map_err(|e| Error::store("rename into place", &self.path("objects").join(&name))(e.into()))
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(tmp, &temp, AtFlags::empty());
        }
        written
    }
}
