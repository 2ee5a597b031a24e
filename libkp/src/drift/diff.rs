//! Comparing an environment's writable layer with the layers below it.
//!
//! The upper directory is walked on disk and each name is looked up in the
//! merged view of the lower layers' trees (top layer first, as overlayfs
//! merges them), so nothing is written to the store. Overlay facts are read as
//! such: whiteouts are deletions, opaque directories are replaced directories,
//! and `user.overlay.*`/`trusted.overlay.*` xattrs are never content. A file
//! that was copied up but whose content, mode, owner and kept xattrs equal the
//! lower one's is not drift.

use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::{Error, Result};
use crate::env::EnvRecord;
use crate::hash;
use crate::layer::{self, IdShift};
use crate::object::{Entry, EntryKind, Tree};
use crate::store::Store;

const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Added,
    Modified,
    Deleted,
    /// A directory whose lower content is hidden: it was removed and made anew.
    Replaced,
    /// The type changed (a file where a directory was, …).
    TypeChanged,
}

impl Status {
    pub fn letter(self) -> char {
        match self {
            Status::Added => 'A',
            Status::Modified => 'M',
            Status::Deleted => 'D',
            Status::Replaced => 'R',
            Status::TypeChanged => 'T',
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Modified => "modified",
            Status::Deleted => "deleted",
            Status::Replaced => "replaced",
            Status::TypeChanged => "type-changed",
        }
    }
}

/// One changed path, absolute inside the environment (`/etc/hosts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub status: Status,
    pub path: Vec<u8>,
    /// What is there now (`file`, `dir`, …); for a deletion, what was.
    pub kind: &'static str,
}

/// Every changed path in `rec`'s writable layer, in path byte order.
pub fn diff(store: &Store, rec: &EnvRecord) -> Result<Vec<Change>> {
    let mut layers = Vec::new();
    for id in super::layer_ids(store, rec)?.iter().rev() {
        layers.push(store.read_layer(id)?);
    }
    let mut trees = Vec::new();
    for l in &layers {
        let t = store.read_tree(&l.tree)?;
        let opaque = t.opaque;
        trees.push(t);
        if opaque {
            break;
        }
    }
    let ids = super::exec_ids()?;
    // A rootless checkout of the lower layers is owned by its user whatever
    // the tree says, so that is the owner a copied-up file keeps (also when
    // this is a rootless command re-run as root of a mapped namespace: the
    // shared checkouts were made outside it).
    let rootless = !rustix::process::geteuid().is_root() || crate::sys::is_rerun();
    let checkout_owner =
        rootless.then(|| ids.map(rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw()));
    let ctx = Ctx {
        store,
        ids,
        checkout_owner,
    };
    let upper = super::checked_upper(store, &rec.env_id)?;
    let mut out = Vec::new();
    if upper.is_dir() {
        ctx.walk(&upper, b"", Some(&Lower { trees }), &mut out)?;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The merged lower view of one directory: the trees that contribute to it,
/// top layer first, ending at the first opaque one.
struct Lower {
    trees: Vec<Tree>,
}

/// What the lower layers have at a name.
enum Found {
    Node(Entry),
    Dir(Entry, Lower),
}

impl Found {
    fn entry(&self) -> &Entry {
        match self {
            Found::Node(e) | Found::Dir(e, _) => e,
        }
    }
}

impl Lower {
    fn lookup(&self, store: &Store, name: &[u8]) -> Result<Option<Found>> {
        let mut top: Option<Entry> = None;
        let mut below = Vec::new();
        for t in &self.trees {
            let Some(e) = t.get(name) else { continue };
            match (&top, &e.kind) {
                (None, EntryKind::Whiteout) => return Ok(None),
                (None, EntryKind::Dir { .. }) => top = Some(e.clone()),
                (None, _) => return Ok(Some(Found::Node(e.clone()))),
                (Some(_), EntryKind::Dir { .. }) => {}
                // Anything but a directory under a directory is hidden by it.
                (Some(_), _) => break,
            }
            let EntryKind::Dir { tree } = &e.kind else {
                unreachable!("matched a directory")
            };
            let sub = store.read_tree(tree)?;
            let opaque = sub.opaque;
            below.push(sub);
            if opaque {
                break;
            }
        }
        Ok(top.map(|e| Found::Dir(e, Lower { trees: below })))
    }
}

struct Ctx<'a> {
    store: &'a Store,
    ids: IdShift,
    /// For a rootless run: the owner every lower file has on disk.
    checkout_owner: Option<(u32, u32)>,
}

impl Ctx<'_> {
    fn walk(&self, dir: &Path, prefix: &[u8], lower: Option<&Lower>, out: &mut Vec<Change>) -> Result<()> {
        let mut names: Vec<Vec<u8>> = layer::read_dir_nofollow(dir)
            .map_err(Error::store("read directory", dir))?
            .into_iter()
            .map(|n| n.into_vec())
            .collect();
        names.sort();
        for name in names {
            if name == OPAQUE_MARKER {
                continue;
            }
            let path = dir.join(OsStr::from_bytes(&name));
            let rel = layer::join(prefix, &name);
            let found = match lower {
                Some(l) => l.lookup(self.store, &name)?,
                None => None,
            };
            if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX).filter(|t| !t.is_empty()) {
                if let Some(l) = lower {
                    if let Some(f) = l.lookup(self.store, target)? {
                        out.push(change(Status::Deleted, &layer::join(prefix, target), f.entry()));
                    }
                }
                continue;
            }
            let meta = fs::symlink_metadata(&path).map_err(Error::store("stat", &path))?;
            if is_whiteout(&path, &meta)? {
                // A whiteout over nothing is overlay bookkeeping, not a change.
                if let Some(f) = found {
                    out.push(change(Status::Deleted, &rel, f.entry()));
                }
                continue;
            }
            if meta.is_dir() {
                let opaque = layer::is_opaque_dir(&path)? || path.join(OsStr::from_bytes(OPAQUE_MARKER)).exists();
                match found {
                    Some(Found::Dir(e, sub)) if !opaque => {
                        if self.dir_meta_differs(&path, &meta, &e)? {
                            out.push(named(Status::Modified, &rel, "dir"));
                        }
                        self.walk(&path, &rel, Some(&sub), out)?;
                    }
                    Some(Found::Dir(..)) => {
                        out.push(named(Status::Replaced, &rel, "dir"));
                        self.walk(&path, &rel, None, out)?;
                    }
                    Some(Found::Node(_)) => {
                        out.push(named(Status::TypeChanged, &rel, "dir"));
                        self.walk(&path, &rel, None, out)?;
                    }
                    None => {
                        out.push(named(Status::Added, &rel, "dir"));
                        self.walk(&path, &rel, None, out)?;
                    }
                }
                continue;
            }
            let Some(now) = self.node(&path, &meta, found.as_ref().map(Found::entry))? else {
                continue;
            };
            match found {
                None => out.push(change(Status::Added, &rel, &now)),
                Some(Found::Dir(..)) => out.push(change(Status::TypeChanged, &rel, &now)),
                Some(Found::Node(e)) => {
                    if std::mem::discriminant(&e.kind) != std::mem::discriminant(&now.kind) {
                        out.push(change(Status::TypeChanged, &rel, &now));
                    } else if !same_node(&e, &now, self.lower_owner(&e)) {
                        out.push(change(Status::Modified, &rel, &now));
                    }
                }
            }
        }
        Ok(())
    }

    fn lower_owner(&self, e: &Entry) -> (u32, u32) {
        self.checkout_owner.unwrap_or((e.uid, e.gid))
    }

    fn dir_meta_differs(&self, path: &Path, meta: &Metadata, e: &Entry) -> Result<bool> {
        let owner = self.ids.map(meta.uid(), meta.gid());
        Ok(meta.mode() & 0o7777 != e.mode
            || owner != self.lower_owner(e)
            || layer::kept_xattrs(path, false)? != e.xattrs)
    }

    /// The upper node as a tree entry would record it. A file is hashed only
    /// when its size equals the lower file's; otherwise it differs anyway.
    /// `None` for sockets, which layers do not keep.
    fn node(&self, path: &Path, meta: &Metadata, lower: Option<&Entry>) -> Result<Option<Entry>> {
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            let size = meta.len();
            let blob = match lower.map(|e| &e.kind) {
                Some(EntryKind::File { size: s, .. }) if *s == size => {
                    hash::hash_path_lean(path).map_err(Error::store("read", path))?.0
                }
                // Not compared by content: any id that is not the lower's will do.
                _ => hash::ObjectId::of(b""),
            };
            EntryKind::File { blob, size }
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(Error::store("readlink", path))?;
            EntryKind::Symlink {
                target: target.into_os_string().into_vec(),
            }
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else if ft.is_char_device() {
            let (major, minor) = layer::dev_numbers(meta);
            EntryKind::CharDevice { major, minor }
        } else if ft.is_block_device() {
            let (major, minor) = layer::dev_numbers(meta);
            EntryKind::BlockDevice { major, minor }
        } else {
            return Ok(None);
        };
        let (uid, gid) = self.ids.map(meta.uid(), meta.gid());
        Ok(Some(Entry {
            name: Vec::new(),
            xattrs: layer::kept_xattrs(path, ft.is_symlink())?,
            kind,
            mode: meta.mode() & 0o7777,
            uid,
            gid,
        }))
    }
}

/// Equal as content: kind with payload, mode, owner (`owner`: the lower's as
/// seen), xattrs. A file whose size differs from the lower one's carries a
/// placeholder blob, so the size alone decides.
fn same_node(lower: &Entry, now: &Entry, owner: (u32, u32)) -> bool {
    let kind_same = match (&lower.kind, &now.kind) {
        (EntryKind::File { blob: a, size: x }, EntryKind::File { blob: b, size: y }) => x == y && a == b,
        (a, b) => a == b,
    };
    kind_same && lower.mode == now.mode && owner == (now.uid, now.gid) && lower.xattrs == now.xattrs
}

fn is_whiteout(path: &Path, meta: &Metadata) -> Result<bool> {
    let ft = meta.file_type();
    if ft.is_char_device() {
        return Ok(layer::dev_numbers(meta) == (0, 0));
    }
    Ok(ft.is_file() && meta.len() == 0 && layer::is_xwhiteout(path)?)
}

fn absolute(rel: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(rel.len() + 1);
    p.push(b'/');
    p.extend_from_slice(rel);
    p
}

fn change(status: Status, rel: &[u8], e: &Entry) -> Change {
    named(status, rel, e.kind.word())
}

fn named(status: Status, rel: &[u8], kind: &'static str) -> Change {
    Change {
        status,
        path: absolute(rel),
        kind,
    }
}
