//! Writing a directory into the store as trees and blobs, bottom-up, files in
//! parallel. Overlay facts become whiteout entries and opaque trees:
//!
//! - a character device 0/0 is a whiteout (kernel overlayfs);
//! - an empty regular file with `user.overlay.whiteout` or `trusted.overlay.whiteout`
//!   is a whiteout (overlayfs "xwhiteouts", what rootless checkouts write);
//! - `.wh.NAME` is a whiteout of NAME (fuse-overlayfs without mknod, OCI layers);
//! - a directory with `user.overlay.opaque` or `trusted.overlay.opaque` equal to
//!   `y`, or holding `.wh..wh..opq`, is opaque.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::{xattr, HashCache};
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::object::{Entry, EntryKind, Layer, LayerKind, RootMeta, Tree, Xattr};
use crate::store::Store;

const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";

#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub kind: LayerKind,
    pub parents: Vec<ObjectId>,
    pub provenance: BTreeMap<String, String>,
    /// How the sandbox that wrote the directory mapped ids: owners are recorded
    /// as the environment saw them, so the layer does not depend on who built it.
    pub ids: Option<IdShift>,
    /// Hashes of files unchanged since an earlier write of the same directory
    /// (an environment's writable layer), so their bytes are not read again.
    pub hashes: Option<Arc<HashCache>>,
}

/// User-namespace id ranges, `(inside, outside, count)` as in
/// `/proc/PID/uid_map`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdShift {
    pub uid: Vec<(u32, u32, u32)>,
    pub gid: Vec<(u32, u32, u32)>,
}

impl IdShift {
    /// The id inside for a host id; an unmapped id (the overflow id inside) is
    /// kept as it is.
    fn inside(ranges: &[(u32, u32, u32)], id: u32) -> u32 {
        ranges
            .iter()
            .find(|(_, out, n)| id >= *out && id - out < *n)
            .map(|(inside, out, _)| inside + (id - out))
            .unwrap_or(id)
    }

    pub fn map(&self, uid: u32, gid: u32) -> (u32, u32) {
        (Self::inside(&self.uid, uid), Self::inside(&self.gid, gid))
    }
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            kind: LayerKind::Base,
            parents: Vec::new(),
            provenance: BTreeMap::new(),
            ids: None,
            hashes: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct WriteReport {
    pub layer: Option<ObjectId>,
    pub tree: ObjectId,
    pub root: RootMeta,
    pub files: u64,
    pub bytes: u64,
    pub dirs: u64,
    /// Paths left out, with why (sockets: they are endpoints of running
    /// programs, not content).
    pub skipped: Vec<(PathBuf, String)>,
}

#[derive(Default)]
struct Stats {
    files: AtomicU64,
    bytes: AtomicU64,
    dirs: AtomicU64,
    skipped: Mutex<Vec<(PathBuf, String)>>,
    ids: Option<IdShift>,
    hashes: Option<Arc<HashCache>>,
}

impl Stats {
    fn map(&self, uid: u32, gid: u32) -> (u32, u32) {
        match &self.ids {
            Some(ids) => ids.map(uid, gid),
            None => (uid, gid),
        }
    }
}

/// Writes `dir` as a layer object and returns what was written.
pub fn write_layer(store: &Store, dir: &Path, opts: &WriteOptions) -> Result<WriteReport> {
    for p in &opts.parents {
        if !store.has(crate::Kind::Layer, p) {
            return Err(crate::store::Error::Missing {
                kind: crate::Kind::Layer,
                id: *p,
            }
            .into());
        }
    }
    let _guard = store.write_guard()?;
    let mut report = write_dir_as(store, dir, opts.ids.clone(), opts.hashes.clone())?;
    let layer = Layer {
        kind: opts.kind,
        tree: report.tree,
        root: report.root,
        parents: opts.parents.clone(),
        provenance: opts.provenance.clone(),
    };
    report.layer = Some(store.write_layer_object(&layer)?);
    Ok(report)
}

/// Writes `dir`'s content as trees and blobs; the caller holds a write guard.
pub fn write_dir(store: &Store, dir: &Path) -> Result<WriteReport> {
    write_dir_as(store, dir, None, None)
}

pub(crate) fn write_dir_as(
    store: &Store,
    dir: &Path,
    ids: Option<IdShift>,
    hashes: Option<Arc<HashCache>>,
) -> Result<WriteReport> {
    // The directory the caller names may be reached through a symlink;
    // nothing below it is.
    let resolved;
    let dir = if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        resolved = fs::canonicalize(dir).map_err(Error::input("resolve", dir))?;
        resolved.as_path()
    } else {
        dir
    };
    let meta = fs::metadata(dir).map_err(Error::input("stat", dir))?;
    if !meta.is_dir() {
        return Err(Error::Unsupported {
            path: dir.to_path_buf(),
            what: "not a directory".into(),
        });
    }
    let fd =
        rustix::fs::open(dir, DIR_FLAGS, Mode::empty()).map_err(|e| Error::input("open directory", dir)(e.into()))?;
    let stats = Stats {
        ids,
        hashes,
        ..Stats::default()
    };
    let names = xattr::list_on(xattr::On::Fd(fd.as_fd()), meta.dev()).map_err(Error::input("listxattr", dir))?;
    let opaque = opaque_in(xattr::On::Fd(fd.as_fd()), &names, dir)?;
    let tree = write_tree(store, &fd, dir, opaque, &stats)?;
    let (uid, gid) = stats.map(meta.uid(), meta.gid());
    Ok(WriteReport {
        layer: None,
        tree,
        root: RootMeta {
            mode: meta.mode() & 0o7777,
            uid,
            gid,
        },
        files: stats.files.into_inner(),
        bytes: stats.bytes.into_inner(),
        dirs: stats.dirs.into_inner(),
        skipped: stats.skipped.into_inner().expect("no poisoned lock"),
    })
}

/// How the walk opens directories: never through a symlink (the writable
/// layer is environment content, and software in it may swap a directory
/// for a symlink after our stat).
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

enum Child {
    Entry(Entry),
    OpaqueMarker,
    Skip,
}

/// The names in `dir`, which must be a directory and no symlink: one that
/// software in the environment swaps for a symlink after our `lstat` fails
/// here instead of being listed (the writable layer is environment content).
pub(crate) fn read_dir_nofollow(dir: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
    let fd = rustix::fs::open(dir, DIR_FLAGS, Mode::empty())?;
    Ok(names_in(&fd)?.into_iter().map(std::ffi::OsString::from_vec).collect())
}

/// The names in the directory open as `fd`, but `.` and `..`: getdents on
/// that descriptor, nothing opened again.
fn names_in(fd: &OwnedFd) -> std::io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![std::mem::MaybeUninit::uninit(); 32 << 10];
    let mut entries = rustix::fs::RawDir::new(fd.as_fd(), &mut buf);
    let mut names = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Writes the directory open as `fd` (named `dir` in messages): its
/// children are stat'ed and opened relative to it, in parallel.
fn write_tree(store: &Store, fd: &OwnedFd, dir: &Path, opaque: bool, stats: &Stats) -> Result<ObjectId> {
    stats.dirs.fetch_add(1, Ordering::Relaxed);
    let names = names_in(fd).map_err(Error::input("read directory", dir))?;
    let children: Vec<Child> = names
        .par_iter()
        .map(|name| child(store, fd, dir, name, stats))
        .collect::<Result<_>>()?;
    let mut tree = Tree {
        opaque,
        entries: Vec::with_capacity(children.len()),
    };
    for c in children {
        match c {
            Child::Entry(e) => tree.entries.push(e),
            Child::OpaqueMarker => tree.opaque = true,
            Child::Skip => {}
        }
    }
    tree.sort();
    if let Some(w) = tree.entries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Unsupported {
            path: dir.join(OsStr::from_bytes(&w[0].name)),
            what: "both a whiteout (.wh. file) and an entry of the same name".into(),
        });
    }
    Ok(store.write_tree(&tree)?)
}

pub(crate) fn is_opaque_dir(dir: &Path) -> Result<bool> {
    for name in [xattr::USER_OPAQUE, xattr::TRUSTED_OPAQUE] {
        match xattr::get(dir, name.as_bytes()) {
            Ok(Some(v)) if v == b"y" => return Ok(true),
            Ok(_) => {}
            // Reading trusted.* needs privilege; unreadable means not ours to see.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(Error::input("getxattr", dir)(e)),
        }
    }
    Ok(false)
}

/// [`is_opaque_dir`] of a directory whose xattr `names` were just listed:
/// only an opaque xattr listed is read. (trusted.* is listed only to those
/// who may read it.)
fn opaque_in(on: xattr::On<'_>, names: &[Vec<u8>], dir: &Path) -> Result<bool> {
    for name in [xattr::USER_OPAQUE, xattr::TRUSTED_OPAQUE] {
        if !names.iter().any(|n| n == name.as_bytes()) {
            continue;
        }
        match xattr::get_on(on, name.as_bytes()) {
            Ok(Some(v)) if v == b"y" => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(Error::input("getxattr", dir)(e)),
        }
    }
    Ok(false)
}

/// One entry of the directory open as `dirfd`: one stat relative to it; a
/// file is opened (unless the hash cache knows it), read once and its xattrs
/// listed on the open descriptor; a directory is opened and walked.
fn child(store: &Store, dirfd: &OwnedFd, dir: &Path, name: &[u8], stats: &Stats) -> Result<Child> {
    if name == OPAQUE_MARKER {
        return Ok(Child::OpaqueMarker);
    }
    if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
        if !target.is_empty() {
            return Ok(Child::Entry(Entry::whiteout(target.to_vec())));
        }
    }
    let path = dir.join(OsStr::from_bytes(name));
    let cname = OsStr::from_bytes(name);
    let st = rustix::fs::statat(dirfd, cname, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::input("stat", &path)(e.into()))?;
    let whiteout = || Ok(Child::Entry(Entry::whiteout(name.to_vec())));
    let (kind, xattrs) = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let fd = rustix::fs::openat(dirfd, cname, DIR_FLAGS, Mode::empty())
                .map_err(|e| Error::input("open directory", &path)(e.into()))?;
            let on = xattr::On::Fd(fd.as_fd());
            let names = xattr::list_on(on, st.st_dev).map_err(Error::input("listxattr", &path))?;
            let opaque = opaque_in(on, &names, &path)?;
            let xattrs = kept_xattrs_in(on, names, &path)?;
            let tree = write_tree(store, &fd, &path, opaque, stats)?;
            (EntryKind::Dir { tree }, xattrs)
        }
        FileType::RegularFile => {
            let cache = stats.hashes.as_deref();
            let known = cache.and_then(|c| c.lookup(&st));
            let stored = match known {
                Some((id, size)) => store.has_blob_sized(&id, size)?.then_some((id, size)),
                None => None,
            };
            // Unless its blob is known and stored, the file is opened (never
            // through a symlink, never blocking on a fifo swapped in) and all
            // else is asked of the descriptor.
            let file = match stored {
                Some(_) => None,
                None => {
                    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
                    let fd = rustix::fs::openat(dirfd, cname, flags, Mode::empty())
                        .map_err(|e| Error::input("open", &path)(e.into()))?;
                    Some(fs::File::from(fd))
                }
            };
            let on = file
                .as_ref()
                .map_or(xattr::On::Path(&path), |f| xattr::On::Fd(f.as_fd()));
            let names = xattr::list_on(on, st.st_dev).map_err(Error::input("listxattr", &path))?;
            let is_whiteout = [xattr::USER_WHITEOUT, xattr::TRUSTED_WHITEOUT]
                .iter()
                .any(|w| names.iter().any(|n| n == w.as_bytes()));
            if st.st_size == 0 && is_whiteout {
                return whiteout();
            }
            let xattrs = kept_xattrs_in(on, names, &path)?;
            let (blob, size) = match (stored, file) {
                (Some(done), _) => done,
                (None, Some(f)) => store.write_blob_from_file(f, &path, st.st_size as u64, st.st_mode, known)?,
                (None, None) => unreachable!("a file not stored is opened"),
            };
            if let (Some(c), None) = (cache, known) {
                c.record(&st, blob);
            }
            stats.files.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(size, Ordering::Relaxed);
            (EntryKind::File { blob, size }, xattrs)
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dirfd, cname, Vec::new())
                .map_err(|e| Error::input("readlink", &path)(e.into()))?;
            // Linux allows user.* xattrs only on files and directories;
            // symlinks carry none we keep, and asking costs a syscall per link.
            let target = target.into_bytes();
            (EntryKind::Symlink { target }, Vec::new())
        }
        FileType::CharacterDevice => {
            let (major, minor) = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
            if major == 0 && minor == 0 {
                return whiteout();
            }
            (
                EntryKind::CharDevice { major, minor },
                kept_xattrs_on(&path, false, Some(st.st_dev))?,
            )
        }
        FileType::BlockDevice => {
            let (major, minor) = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
            (
                EntryKind::BlockDevice { major, minor },
                kept_xattrs_on(&path, false, Some(st.st_dev))?,
            )
        }
        FileType::Fifo => (EntryKind::Fifo, kept_xattrs_on(&path, false, Some(st.st_dev))?),
        _ => {
            stats
                .skipped
                .lock()
                .expect("no poisoned lock")
                .push((path, "socket: not stored".into()));
            return Ok(Child::Skip);
        }
    };
    let (uid, gid) = stats.map(st.st_uid, st.st_gid);
    Ok(Child::Entry(Entry {
        name: name.to_vec(),
        kind,
        mode: st.st_mode & 0o7777,
        uid,
        gid,
        xattrs,
    }))
}

pub(crate) fn dev_numbers(meta: &Metadata) -> (u32, u32) {
    let rdev = meta.rdev();
    (rustix::fs::major(rdev), rustix::fs::minor(rdev))
}

pub(crate) fn is_xwhiteout(path: &Path) -> Result<bool> {
    for name in [xattr::USER_WHITEOUT, xattr::TRUSTED_WHITEOUT] {
        match xattr::get(path, name.as_bytes()) {
            Ok(Some(_)) => return Ok(true),
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(Error::input("getxattr", path)(e)),
        }
    }
    Ok(false)
}

pub(crate) fn kept_xattrs(path: &Path, symlink: bool) -> Result<Vec<Xattr>> {
    kept_xattrs_on(path, symlink, None)
}

/// [`kept_xattrs`] of a file on device `dev`, when known: a filesystem that
/// keeps no xattrs is asked once, not once per file.
fn kept_xattrs_on(path: &Path, symlink: bool, dev: Option<u64>) -> Result<Vec<Xattr>> {
    // Linux allows user.* xattrs only on files and directories; symlinks carry none
    // we keep, and asking costs a syscall per link.
    if symlink {
        return Ok(Vec::new());
    }
    let on = xattr::On::Path(path);
    let names = match dev {
        Some(dev) => xattr::list_on(on, dev),
        None => xattr::list(path),
    };
    kept_xattrs_in(on, names.map_err(Error::input("listxattr", path))?, path)
}

/// The kept xattrs among `names`, just listed on `on` (named `path`).
fn kept_xattrs_in(on: xattr::On<'_>, names: Vec<Vec<u8>>, path: &Path) -> Result<Vec<Xattr>> {
    let mut out = Vec::new();
    for name in names {
        if !xattr::keep(&name) {
            continue;
        }
        if let Some(value) = xattr::get_on(on, &name).map_err(Error::input("getxattr", path))? {
            out.push(Xattr { name, value });
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::IdShift;

    /// What the writable layer's walks open is never a symlink: a directory
    /// or file swapped for one between lstat and open fails instead.
    #[test]
    fn walks_open_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let (d, f) = (dir.path().join("d"), dir.path().join("f"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("x"), b"x").unwrap();
        std::fs::write(&f, b"secret").unwrap();
        std::os::unix::fs::symlink(&d, dir.path().join("ld")).unwrap();
        std::os::unix::fs::symlink(&f, dir.path().join("lf")).unwrap();
        assert_eq!(super::read_dir_nofollow(&d).unwrap(), ["x"]);
        assert!(super::read_dir_nofollow(&dir.path().join("ld")).is_err());
        assert!(crate::hash::hash_path(&f).is_ok());
        assert!(crate::hash::hash_path(&dir.path().join("lf")).is_err());
    }

    #[test]
    fn id_shift_maps_ranges_and_keeps_unmapped() {
        let ids = IdShift {
            uid: vec![(0, 1000, 1), (1, 100000, 65536)],
            gid: vec![(0, 1000, 1)],
        };
        assert_eq!(ids.map(1000, 1000), (0, 0));
        assert_eq!(ids.map(100041, 5), (42, 5));
        assert_eq!(ids.map(7, 7), (7, 7));
    }
}
