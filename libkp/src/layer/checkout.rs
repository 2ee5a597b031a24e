//! Checking a tree out into a directory.
//!
//! Regular files are hardlinks to the store's objects, so a checkout of a whole
//! base image adds no file data. A hardlink shares its inode's mode, owner and
//! xattrs, so a file is linked to the blob object itself only when those match;
//! otherwise to a *variant* under `cache/variants/`, one copy per (blob, mode,
//! owner, xattrs) made once and shared by every later checkout. Empty files are
//! created, never linked (no data to share, and no link-count limit to hit).
//! Linking falls back to copying on EXDEV, EMLINK and EPERM, as ostree does.
//!
//! Hardlinked files share their inode with the store: write to a checkout only
//! through an overlay (as the sandbox does), or ask for `copy`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode};
use rustix::io::Errno;

use super::xattr;
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::object::{Entry, EntryKind, Kind, RootMeta, Xattr};
use crate::store::Store;

#[derive(Clone, Debug, Default)]
pub struct CheckoutOptions {
    /// Copy every file instead of hardlinking it from the store.
    pub copy: bool,
    /// With `copy`: a directory about to be discarded (a writable layer being
    /// restored over) whose regular files are hardlinked instead of copied
    /// where they already are exactly the entry (same relative path, content,
    /// mode, owner and xattrs), so a restore costs what differs.
    pub reuse: Option<PathBuf>,
    /// `reuse`'s hash cache: files in it known unchanged are not read.
    pub hashes: Option<std::sync::Arc<super::HashCache>>,
}

#[derive(Clone, Debug, Default)]
pub struct CheckoutReport {
    pub files: u64,
    pub linked: u64,
    pub copied: u64,
    /// What could not be reproduced exactly, and why (e.g. a device node without
    /// CAP_MKNOD, ownership without CAP_CHOWN is not listed: it is documented).
    pub warnings: Vec<String>,
}

struct Ctx<'a> {
    store: &'a Store,
    opts: &'a CheckoutOptions,
    dest: &'a Path,
    /// Root on the host: trusted.* xattrs, and owners in the shared variants.
    privileged: bool,
    /// Files can be given their owners: root on the host, or root of the
    /// mapped namespace a rootless command re-runs in (sandbox::rerun).
    owners: bool,
    report: CheckoutReport,
}

/// Checks out a layer's tree into `dest`, which must not exist or be empty.
pub fn checkout_layer(store: &Store, layer: &ObjectId, dest: &Path, opts: &CheckoutOptions) -> Result<CheckoutReport> {
    let layer = store.read_layer(layer)?;
    checkout_tree(store, &layer.tree, layer.root, dest, opts)
}

pub fn checkout_tree(
    store: &Store,
    tree: &ObjectId,
    root: RootMeta,
    dest: &Path,
    opts: &CheckoutOptions,
) -> Result<CheckoutReport> {
    match fs::read_dir(dest) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(Error::Unsupported {
                    path: dest.to_path_buf(),
                    what: "destination is not empty".into(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(dest).map_err(Error::input("create directory", dest))?;
        }
        Err(e) => return Err(Error::input("open directory", dest)(e)),
    }
    let mut ctx = Ctx {
        store,
        opts,
        dest,
        privileged: rustix::process::geteuid().is_root() && !crate::sys::is_rerun(),
        owners: rustix::process::geteuid().is_root(),
        report: CheckoutReport::default(),
    };
    ctx.dir(tree, dest)?;
    ctx.finish_dir(dest, root.mode, root.uid, root.gid, &[])?;
    Ok(ctx.report)
}

fn errno(op: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error + use<> {
    let wrap = Error::input(op, path);
    move |e| wrap(e.into())
}

impl Ctx<'_> {
    fn dir(&mut self, tree_id: &ObjectId, path: &Path) -> Result<()> {
        let tree = self.store.read_tree(tree_id)?;
        if tree.opaque {
            self.set_overlay_xattr(path, "opaque", b"y")?;
        }
        for e in &tree.entries {
            let p = path.join(OsStr::from_bytes(&e.name));
            match &e.kind {
                EntryKind::Dir { tree } => {
                    fs::create_dir(&p).map_err(Error::input("create directory", &p))?;
                    // Owner-writable while we fill it; the real mode comes last.
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).map_err(Error::input("chmod", &p))?;
                    self.dir(tree, &p)?;
                    self.finish_dir(&p, e.mode, e.uid, e.gid, &e.xattrs)?;
                }
                EntryKind::File { blob, size } => self.file(e, blob, *size, &p)?,
                EntryKind::Symlink { target } => {
                    rustix::fs::symlink(OsStr::from_bytes(target), &p).map_err(errno("symlink", &p))?;
                    self.chown(&p, e.uid, e.gid)?;
                }
                EntryKind::Whiteout => self.whiteout(path, &p, tree.opaque)?,
                EntryKind::Fifo => {
                    rustix::fs::mknodat(rustix::fs::CWD, &p, FileType::Fifo, Mode::from_raw_mode(e.mode), 0)
                        .map_err(errno("mkfifo", &p))?;
                    self.finish_node(e, &p)?;
                }
                EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                    let ft = if matches!(e.kind, EntryKind::CharDevice { .. }) {
                        FileType::CharacterDevice
                    } else {
                        FileType::BlockDevice
                    };
                    let dev = rustix::fs::makedev(*major, *minor);
                    match rustix::fs::mknodat(rustix::fs::CWD, &p, ft, Mode::from_raw_mode(e.mode), dev) {
                        Ok(()) => self.finish_node(e, &p)?,
                        Err(Errno::PERM) => self.report.warnings.push(format!(
                            "{}: device node {major}:{minor} not created (needs CAP_MKNOD)",
                            p.display()
                        )),
                        Err(err) => return Err(errno("mknod", &p)(err)),
                    }
                }
            }
        }
        Ok(())
    }

    fn finish_node(&mut self, e: &Entry, p: &Path) -> Result<()> {
        self.chown(p, e.uid, e.gid)?;
        fs::set_permissions(p, fs::Permissions::from_mode(e.mode)).map_err(Error::input("chmod", p))?;
        self.xattrs(p, &e.xattrs)
    }

    fn finish_dir(&mut self, p: &Path, mode: u32, uid: u32, gid: u32, xattrs: &[Xattr]) -> Result<()> {
        self.xattrs(p, xattrs)?;
        self.chown(p, uid, gid)?;
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(Error::input("chmod", p))
    }

    fn chown(&mut self, p: &Path, uid: u32, gid: u32) -> Result<()> {
        // Ownership is reproduced when we may; a rootless checkout is owned by its
        // user (docs/store-format.md), which the sandbox maps as it needs.
        if !self.owners {
            return Ok(());
        }
        match rustix::fs::chownat(
            rustix::fs::CWD,
            p,
            Some(rustix::process::Uid::from_raw(uid)),
            Some(rustix::process::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        ) {
            // An owner outside a mapped namespace's range.
            Err(Errno::INVAL) if !self.privileged => {
                self.report
                    .warnings
                    .push(format!("{}: owner {uid}:{gid} is not mapped here", p.display()));
                Ok(())
            }
            r => r.map_err(errno("chown", p)),
        }
    }

    fn xattrs(&mut self, p: &Path, xattrs: &[Xattr]) -> Result<()> {
        for x in xattrs {
            if let Err(e) = xattr::set(p, &x.name, &x.value) {
                self.report.warnings.push(format!(
                    "{}: xattr {} not set: {e}",
                    p.display(),
                    String::from_utf8_lossy(&x.name)
                ));
            }
        }
        Ok(())
    }

    /// Marks a directory for overlayfs: `user.overlay.*` always (what a rootless
    /// overlay with `userxattr` reads), `trusted.overlay.*` too when privileged.
    fn set_overlay_xattr(&mut self, p: &Path, what: &str, value: &[u8]) -> Result<()> {
        let user = format!("user.overlay.{what}");
        xattr::set(p, user.as_bytes(), value).map_err(Error::input("setxattr", p))?;
        if self.privileged {
            let trusted = format!("trusted.overlay.{what}");
            xattr::set(p, trusted.as_bytes(), value).map_err(Error::input("setxattr", p))?;
        }
        Ok(())
    }

    fn whiteout(&mut self, dir: &Path, p: &Path, dir_opaque: bool) -> Result<()> {
        match rustix::fs::mknodat(rustix::fs::CWD, p, FileType::CharacterDevice, Mode::empty(), 0) {
            Ok(()) => Ok(()),
            Err(Errno::PERM) => {
                // Without CAP_MKNOD: an overlayfs "xwhiteout" (Linux 6.7+), an empty
                // file carrying the whiteout xattr in a directory marked "x".
                File::create(p).map_err(Error::input("create", p))?;
                xattr::set(p, xattr::USER_WHITEOUT.as_bytes(), b"").map_err(Error::input("setxattr", p))?;
                if !dir_opaque {
                    self.set_overlay_xattr(dir, "opaque", b"x")?;
                }
                Ok(())
            }
            Err(e) => Err(errno("mknod", p)(e)),
        }
    }

    fn file(&mut self, e: &Entry, blob: &ObjectId, size: u64, p: &Path) -> Result<()> {
        self.report.files += 1;
        if size == 0 || self.opts.copy {
            if size > 0 && self.link_reused(e, blob, p)? {
                return Ok(());
            }
            return self.copy_file(e, blob, p);
        }
        let source = self.link_source(e, blob, p)?;
        match fs::hard_link(&source, p) {
            Ok(()) => {
                self.report.linked += 1;
                Ok(())
            }
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc_errno::EXDEV | libc_errno::EMLINK | libc_errno::EPERM)
                ) =>
            {
                self.copy_file(e, blob, p)
            }
            Err(err) => Err(Error::input("link", p)(err)),
        }
    }

    /// Links the file at `p`'s place in `opts.reuse` when it is exactly `e`.
    fn link_reused(&mut self, e: &Entry, blob: &ObjectId, p: &Path) -> Result<bool> {
        let (Some(reuse), Ok(rel)) = (&self.opts.reuse, p.strip_prefix(self.dest)) else {
            return Ok(false);
        };
        let cand = reuse.join(rel);
        let Ok(m) = rustix::fs::lstat(&cand) else {
            return Ok(false);
        };
        let owner_ok = !self.owners || (m.st_uid == e.uid && m.st_gid == e.gid);
        let EntryKind::File { size, .. } = e.kind else {
            return Ok(false);
        };
        let is_file = rustix::fs::FileType::from_raw_mode(m.st_mode).is_file();
        if !is_file || m.st_size as u64 != size || m.st_mode & 0o7777 != e.mode || !owner_ok {
            return Ok(false);
        }
        if super::write::kept_xattrs(&cand, false)? != e.xattrs {
            return Ok(false);
        }
        let known = self.opts.hashes.as_deref().and_then(|c| c.lookup(&m));
        match known.map_or_else(|| crate::hash::hash_path(&cand), Ok) {
            Ok((id, n)) if id == *blob && n == size => {}
            _ => return Ok(false),
        }
        match fs::hard_link(&cand, p) {
            Ok(()) => {
                self.report.linked += 1;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    fn copy_file(&mut self, e: &Entry, blob: &ObjectId, p: &Path) -> Result<()> {
        let src = self.store.object_path(Kind::Blob, blob);
        if !src.exists() {
            return Err(crate::store::Error::Missing {
                kind: Kind::Blob,
                id: *blob,
            }
            .into());
        }
        let copied = fs::copy(&src, p).map_err(Error::input("copy to", p))?;
        if let EntryKind::File { size, .. } = e.kind {
            if copied != size {
                return Err(self.store.blob_size_error(blob, copied, size, p).into());
            }
        }
        self.report.copied += 1;
        self.finish_node(e, p)
    }

    /// The store file to hardlink for entry `e` at `p`: the blob itself when
    /// its inode already has the entry's metadata, else a variant made once.
    /// A blob of another size than the entry's is refused.
    fn link_source(&mut self, e: &Entry, blob: &ObjectId, p: &Path) -> Result<PathBuf> {
        let obj = self.store.object_path(Kind::Blob, blob);
        let m = fs::symlink_metadata(&obj).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => crate::store::Error::Missing {
                kind: Kind::Blob,
                id: *blob,
            }
            .into(),
            _ => Error::store("stat", &obj)(err),
        })?;
        if let EntryKind::File { size, .. } = e.kind {
            if m.len() != size {
                return Err(self.store.blob_size_error(blob, m.len(), size, p).into());
            }
        }
        let owner_ok = !self.privileged || (m.uid() == e.uid && m.gid() == e.gid);
        if e.xattrs.is_empty() && m.mode() & 0o7777 == e.mode && owner_ok {
            return Ok(obj);
        }
        let key = variant_key(e, self.privileged);
        let hex = blob.to_hex();
        let variant = self
            .store
            .path("cache/variants")
            .join(&hex[..2])
            .join(format!("{}.{key}", &hex[2..]));
        if variant.exists() {
            return Ok(variant);
        }
        self.store.make_dir(variant.parent().expect("fan-out dir"))?;
        let tmp = self.store.temp_file()?;
        fs::copy(&obj, tmp.path()).map_err(Error::store("copy to", tmp.path()))?;
        let tpath = tmp.path().to_path_buf();
        self.chown(&tpath, e.uid, e.gid)?;
        fs::set_permissions(&tpath, fs::Permissions::from_mode(e.mode)).map_err(Error::store("chmod", &tpath))?;
        self.xattrs(&tpath, &e.xattrs)?;
        tmp.persist(&variant)
            .map_err(|err| Error::store("rename into place", &variant)(err.error))?;
        Ok(variant)
    }
}

/// Names a variant by the metadata it carries.
fn variant_key(e: &Entry, privileged: bool) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&e.mode.to_be_bytes());
    if privileged {
        h.update(&e.uid.to_be_bytes());
        h.update(&e.gid.to_be_bytes());
    }
    for x in &e.xattrs {
        h.update(&(x.name.len() as u32).to_be_bytes());
        h.update(&x.name);
        h.update(&(x.value.len() as u32).to_be_bytes());
        h.update(&x.value);
    }
    h.finalize().to_hex()[..16].to_string()
}

/// The errno values the link fallback needs (std exposes only raw numbers).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EXDEV: i32 = 18;
    pub const EMLINK: i32 = 31;
}
