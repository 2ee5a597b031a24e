//! Exporting an environment: its drift (the writable layer, with deletions
//! and replaced directories) or its whole merged filesystem, as a directory or
//! a deterministic tar.
//!
//! Both go through trees: the writable layer is written into the store as
//! `commit` writes it (without recording a snapshot: unless committed, gc
//! removes it), and `--full` merges the layers' trees and that one as
//! overlayfs would, writing only the directories more than one layer has.
//! A directory export is a copying checkout; a tar lists every entry in tree
//! order with mtime 0, numeric owners and no user or group names, so the same
//! content always gives the same bytes.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Error, Result};
use crate::env::EnvRecord;
use crate::hash::ObjectId;
use crate::layer::{checkout_tree, write_dir_as, CheckoutOptions};
use crate::object::{Entry, EntryKind, Kind, RootMeta, Tree};
use crate::store::Store;

use super::ustar;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Dir,
    Tar,
}

impl ExportFormat {
    /// A path ending in `.tar` is a tar file; anything else a directory.
    pub fn for_path(p: &Path) -> ExportFormat {
        if p.extension().is_some_and(|e| e == "tar") {
            ExportFormat::Tar
        } else {
            ExportFormat::Dir
        }
    }
}

#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The whole merged filesystem instead of the drift.
    pub full: bool,
    pub format: ExportFormat,
}

#[derive(Clone, Debug, Default)]
pub struct ExportReport {
    /// The exported tree (the drift's, or the merged one).
    pub tree: Option<ObjectId>,
    pub entries: u64,
    pub warnings: Vec<String>,
}

pub fn export(store: &Store, rec: &EnvRecord, dest: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    let guard = store.write_guard()?;
    let upper = super::checked_upper(store, &rec.env_id)?;
    let hashes = super::hash_cache(store, &rec.env_id);
    let written = write_dir_as(store, &upper, Some(super::exec_ids()?), Some(hashes.clone()))?;
    super::save_hash_cache(store, &hashes);
    // The writable layer's root directory always exists, so overlayfs shows
    // its mode and owner for the merged root too.
    let root = written.root;
    let tree = if opts.full {
        let mut stack = vec![store.read_tree(&written.tree)?];
        let layers = super::layer_ids(store, rec)?;
        for id in layers.iter().rev() {
            if stack.last().is_some_and(|t| t.opaque) {
                break;
            }
            let l = store.read_layer(id)?;
            stack.push(store.read_tree(&l.tree)?);
        }
        merge(store, &stack)?
    } else {
        written.tree
    };
    let mut report = ExportReport {
        tree: Some(tree),
        ..ExportReport::default()
    };
    match opts.format {
        ExportFormat::Dir => {
            let r = checkout_tree(
                store,
                &tree,
                root,
                dest,
                &CheckoutOptions {
                    copy: true,
                    ..CheckoutOptions::default()
                },
            )?;
            report.entries = r.files;
            report.warnings = r.warnings;
        }
        ExportFormat::Tar => {
            (report.entries, report.warnings) = write_tar(store, &tree, root, dest)?;
        }
    }
    drop(guard);
    Ok(report)
}

/// One tree that is what overlayfs shows for `stack` (top first): the first
/// layer with a name decides; whiteouts hide; directories merge down to the
/// first opaque one. A directory only one layer has keeps its tree id.
fn merge(store: &Store, stack: &[Tree]) -> Result<ObjectId> {
    let mut names: BTreeMap<&[u8], Vec<&Entry>> = BTreeMap::new();
    for t in stack {
        for e in &t.entries {
            names.entry(&e.name).or_default().push(e);
        }
    }
    let mut out = Tree::default();
    for (_, found) in names {
        let top = found[0];
        match &top.kind {
            EntryKind::Whiteout => {}
            EntryKind::Dir { tree } => {
                let mut sub = Vec::new();
                for e in &found {
                    let EntryKind::Dir { tree } = &e.kind else { break };
                    let t = store.read_tree(tree)?;
                    let opaque = t.opaque;
                    sub.push(t);
                    if opaque {
                        break;
                    }
                }
                let merged = if sub.len() == 1 && !has_whiteouts(store, tree)? {
                    *tree
                } else {
                    merge(store, &sub)?
                };
                out.entries.push(Entry {
                    kind: EntryKind::Dir { tree: merged },
                    ..top.clone()
                });
            }
            _ => out.entries.push(top.clone()),
        }
    }
    Ok(store.write_tree(&out)?)
}

/// Whether a tree holds whiteouts or opaque flags anywhere (then it must be
/// merged even alone, so the overlay facts are applied and dropped).
fn has_whiteouts(store: &Store, tree: &ObjectId) -> Result<bool> {
    let t = store.read_tree(tree)?;
    if t.opaque {
        return Ok(true);
    }
    for e in &t.entries {
        match &e.kind {
            EntryKind::Whiteout => return Ok(true),
            EntryKind::Dir { tree } if has_whiteouts(store, tree)? => return Ok(true),
            _ => {}
        }
    }
    Ok(false)
}

/// Writes `tree` as a tar at `dest`, atomically (temporary file beside it,
/// then rename). Overlay facts become OCI layer conventions: a whiteout is an
/// empty `.wh.NAME`, an opaque directory holds an empty `.wh..wh..opq`.
fn write_tar(store: &Store, tree: &ObjectId, root: RootMeta, dest: &Path) -> Result<(u64, Vec<String>)> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".karapace-export-")
        .tempfile_in(&parent)
        .map_err(Error::input("create temporary file in", &parent))?;
    let (entries, warnings) = tree_tar(store, tree, root, BufWriter::new(tmp.as_file()), dest)?;
    tmp.as_file().sync_all().map_err(Error::input("write", dest))?;
    tmp.persist(dest).map_err(|e| Error::input("write", dest)(e.error))?;
    Ok((entries, warnings))
}

/// Writes `tree` (with `root` as its top directory's metadata) to `out` as a
/// deterministic tar: the root as `./`, then every entry depth first in name
/// order, mtime 0, numeric owners, kept xattrs as `SCHILY.xattr.` PAX records,
/// whiteouts as empty `.wh.NAME` files and opaque directories holding an
/// empty `.wh..wh..opq` (the OCI layer conventions). `dest` names the output
/// in errors. Returns the members written and what could not be written.
pub fn tree_tar(
    store: &Store,
    tree: &ObjectId,
    root: RootMeta,
    out: impl Write,
    dest: &Path,
) -> Result<(u64, Vec<String>)> {
    let root_entry = Entry {
        name: Vec::new(),
        kind: EntryKind::Dir { tree: *tree },
        mode: root.mode,
        uid: root.uid,
        gid: root.gid,
        xattrs: Vec::new(),
    };
    let mut t = TarOut {
        store,
        dest,
        out,
        entries: 0,
        warnings: Vec::new(),
    };
    t.entry(&root_entry, b"", b"./")?;
    t.write(&ustar::END)?;
    t.out.flush().map_err(Error::input("write", dest))?;
    Ok((t.entries, t.warnings))
}

/// A tar being written: the members of a tree, depth first in name order.
struct TarOut<'a, W> {
    store: &'a Store,
    dest: &'a Path,
    out: W,
    entries: u64,
    warnings: Vec<String>,
}

impl<W: Write> TarOut<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(Error::input("write", self.dest))
    }

    /// Writes `e`, whose member name is `dir` then `name` (a directory's ends
    /// in `/`), and everything below it.
    fn entry(&mut self, e: &Entry, dir: &[u8], path: &[u8]) -> Result<()> {
        self.entries += 1;
        let xattrs = self.xattr_records(e, path);
        let member = |kind, link, size, dev| ustar::Member {
            path,
            kind,
            link,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            size,
            dev,
            records: &xattrs,
        };
        match &e.kind {
            EntryKind::File { blob, size } => {
                self.write(&ustar::headers(&member(ustar::kind::FILE, b"", *size, (0, 0))))?;
                self.blob(blob, *size, path)?;
            }
            EntryKind::Dir { tree } => {
                self.write(&ustar::headers(&member(ustar::kind::DIR, b"", 0, (0, 0))))?;
                let t = self.store.read_tree(tree)?;
                let dir: &[u8] = if path == b"./" { b"" } else { path };
                if t.opaque {
                    self.marker(&[dir, b".wh..wh..opq"].concat())?;
                }
                for c in &t.entries {
                    let mut child = [dir, &c.name].concat();
                    if matches!(c.kind, EntryKind::Dir { .. }) {
                        child.push(b'/');
                    }
                    self.entry(c, dir, &child)?;
                }
            }
            EntryKind::Symlink { target } => {
                self.write(&ustar::headers(&member(ustar::kind::SYMLINK, target, 0, (0, 0))))?;
            }
            EntryKind::Whiteout => {
                self.marker(&[dir, b".wh.", &e.name].concat())?;
            }
            EntryKind::Fifo => {
                self.write(&ustar::headers(&member(ustar::kind::FIFO, b"", 0, (0, 0))))?;
            }
            EntryKind::CharDevice { major, minor } => {
                self.write(&ustar::headers(&member(ustar::kind::CHAR, b"", 0, (*major, *minor))))?;
            }
            EntryKind::BlockDevice { major, minor } => {
                self.write(&ustar::headers(&member(ustar::kind::BLOCK, b"", 0, (*major, *minor))))?;
            }
        }
        Ok(())
    }

    /// An empty regular file with no metadata: an OCI whiteout or opaque marker.
    fn marker(&mut self, path: &[u8]) -> Result<()> {
        self.write(&ustar::headers(&ustar::Member {
            path,
            kind: ustar::kind::FILE,
            link: b"",
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            dev: (0, 0),
            records: &[],
        }))
    }

    /// `SCHILY.xattr.NAME` records for the kept xattrs. A name holding `=`
    /// cannot be one (a reader ends the keyword there): it is left out, with
    /// a warning.
    fn xattr_records<'e>(&mut self, e: &'e Entry, path: &[u8]) -> Vec<(Vec<u8>, &'e [u8])> {
        let mut out = Vec::new();
        for x in &e.xattrs {
            if x.name.contains(&b'=') {
                self.warnings.push(format!(
                    "{}: xattr {:?} not exported (a tar's SCHILY.xattr keyword cannot hold '=')",
                    String::from_utf8_lossy(path),
                    String::from_utf8_lossy(&x.name)
                ));
                continue;
            }
            out.push(([b"SCHILY.xattr.".as_slice(), &x.name].concat(), x.value.as_slice()));
        }
        out
    }

    /// Copies a blob's `size` bytes, refusing a blob of another size (cut
    /// short or grown behind the store's back): the archive would be wrong.
    fn blob(&mut self, blob: &ObjectId, size: u64, path: &[u8]) -> Result<()> {
        let obj = self.store.object_path(Kind::Blob, blob);
        let mut f = self.store.open_blob(blob)?;
        let corrupt = |found| {
            self.store
                .blob_size_error(blob, found, size, Path::new(OsStr::from_bytes(path)))
        };
        let len = f.metadata().map_err(Error::store("stat", &obj))?.len();
        if len != size {
            return Err(corrupt(len).into());
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut copied = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(Error::store("read", &obj))?;
            if n == 0 {
                break;
            }
            copied += n as u64;
            if copied > size {
                return Err(corrupt(copied).into());
            }
            self.write(&buf[..n])?;
        }
        if copied != size {
            return Err(corrupt(copied).into());
        }
        self.write(&vec![0; ustar::padding(size)])
    }
}
