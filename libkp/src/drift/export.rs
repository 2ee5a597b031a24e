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
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::env::EnvRecord;
use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::layer::{checkout_tree, write_dir_as, CheckoutOptions};
use crate::object::{Entry, EntryKind, RootMeta, Tree};
use crate::store::Store;

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
            report.entries = write_tar(store, &tree, root, dest)?;
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
    store.write_tree(&out)
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
fn write_tar(store: &Store, tree: &ObjectId, root: RootMeta, dest: &Path) -> Result<u64> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".karapace-export-")
        .tempfile_in(&parent)
        .map_err(Error::input("create temporary file in", &parent))?;
    let werr = |e: io::Error| Error::input("write", dest)(e);
    let mut b = tar::Builder::new(BufWriter::new(tmp.as_file().try_clone().map_err(werr)?));
    b.mode(tar::HeaderMode::Deterministic);
    let mut n = 0;
    let root_entry = Entry {
        name: Vec::new(),
        kind: EntryKind::Dir { tree: *tree },
        mode: root.mode,
        uid: root.uid,
        gid: root.gid,
        xattrs: Vec::new(),
    };
    append(store, &mut b, &root_entry, "./", &mut n).map_err(|e| match e {
        TarErr::Io(e) => werr(e),
        TarErr::Lib(e) => e,
    })?;
    let mut w = b.into_inner().map_err(werr)?;
    w.flush().map_err(werr)?;
    w.get_ref().sync_all().map_err(werr)?;
    tmp.persist(dest).map_err(|e| werr(e.error))?;
    Ok(n)
}

enum TarErr {
    Io(io::Error),
    Lib(Error),
}

impl From<io::Error> for TarErr {
    fn from(e: io::Error) -> Self {
        TarErr::Io(e)
    }
}

impl From<Error> for TarErr {
    fn from(e: Error) -> Self {
        TarErr::Lib(e)
    }
}

fn header(e: &Entry, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(e.mode);
    h.set_uid(e.uid.into());
    h.set_gid(e.gid.into());
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn append(
    store: &Store,
    b: &mut tar::Builder<BufWriter<File>>,
    e: &Entry,
    path: &str,
    n: &mut u64,
) -> Result<(), TarErr> {
    if !e.xattrs.is_empty() {
        let records: Vec<(String, &[u8])> = e
            .xattrs
            .iter()
            .map(|x| {
                (
                    format!("SCHILY.xattr.{}", String::from_utf8_lossy(&x.name)),
                    x.value.as_slice(),
                )
            })
            .collect();
        b.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))?;
    }
    *n += 1;
    match &e.kind {
        EntryKind::File { blob, size } => {
            let mut h = header(e, tar::EntryType::Regular, *size);
            b.append_data(&mut h, path, store.open_blob(blob)?)?;
        }
        EntryKind::Dir { tree } => {
            let t = store.read_tree(tree)?;
            let mut h = header(e, tar::EntryType::Directory, 0);
            b.append_data(&mut h, path, io::empty())?;
            let dir = if path == "./" { String::new() } else { path.to_string() };
            if t.opaque {
                let marker = Entry::whiteout(b".wh..wh..opq".to_vec());
                let mut h = header(&marker, tar::EntryType::Regular, 0);
                b.append_data(&mut h, format!("{dir}.wh..wh..opq"), io::empty())?;
            }
            for c in &t.entries {
                let name = String::from_utf8_lossy(&c.name);
                let child = match c.kind {
                    EntryKind::Dir { .. } => format!("{dir}{name}/"),
                    _ => format!("{dir}{name}"),
                };
                append(store, b, c, &child, n)?;
            }
        }
        EntryKind::Symlink { target } => {
            let mut h = header(e, tar::EntryType::Symlink, 0);
            b.append_link(&mut h, path, Path::new(&*String::from_utf8_lossy(target)))?;
        }
        EntryKind::Whiteout => {
            let (dir, name) = path
                .rsplit_once('/')
                .map(|(d, n)| (format!("{d}/"), n))
                .unwrap_or((String::new(), path));
            let mut h = header(e, tar::EntryType::Regular, 0);
            b.append_data(&mut h, format!("{dir}.wh.{name}"), io::empty())?;
        }
        EntryKind::Fifo => {
            let mut h = header(e, tar::EntryType::Fifo, 0);
            b.append_data(&mut h, path, io::empty())?;
        }
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            let kind = if matches!(e.kind, EntryKind::CharDevice { .. }) {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            let mut h = header(e, kind, 0);
            h.set_device_major(*major)?;
            h.set_device_minor(*minor)?;
            b.append_data(&mut h, path, io::empty())?;
        }
    }
    Ok(())
}
