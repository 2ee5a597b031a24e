//! Tar archives straight into the store: no extraction to disk. Members become
//! an in-memory directory tree whose files are written as blobs as they stream
//! past; the trees are written bottom-up at the end. Ownership and modes come
//! from the tar headers, so the digest is the same whoever imports.
//!
//! Safety (docs/images.md, "Hostile archives"):
//! - a leading `/` is removed (as GNU tar does) and counted in the report;
//! - a `..` component refuses the archive: lexical clean-up would mean something
//!   else than the filesystem would, and no honest rootfs needs it;
//! - a member whose path goes through an earlier symlink member refuses the
//!   archive: in-store trees never follow links, and silently turning the link
//!   into a directory would change what the image is;
//! - device nodes and fifos are kept as entries (metadata only); character device
//!   0/0 and `.wh.NAME` are whiteouts, `.wh..wh..opq` makes a directory opaque;
//! - a hard link to a member not earlier in the archive refuses it;
//! - an archive that ends before its end-of-archive block, or whose compressed
//!   stream is cut short or corrupt, is refused;
//! - member count and unpacked size are limited ([`Limits`]).
//!
//! A refused archive leaves blobs and trees that nothing names: garbage for prune,
//! never visible as an image.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use super::ImageError;
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::layer::{quote_path, xattr};
use crate::object::{Entry, EntryKind, RootMeta, Tree, Xattr, MAX_NAME, MAX_TARGET};
use crate::store::Store;

/// Bounds on what one archive may unpack to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl Default for Limits {
    /// Two million members (about 300 MB of memory for the tree being built) and
    /// 64 GiB of file content: far beyond any distribution's root filesystem.
    fn default() -> Self {
        Limits {
            max_entries: 2_000_000,
            max_bytes: 64 << 30,
        }
    }
}

/// What an archive turned into.
#[derive(Clone, Debug)]
pub struct TarReport {
    pub tree: ObjectId,
    pub root: RootMeta,
    pub entries: u64,
    pub files: u64,
    pub bytes: u64,
    /// Members whose leading `/` was removed.
    pub absolute: u64,
    /// How the archive was compressed: `plain`, `gzip`, `xz` or `zstd`.
    pub compression: &'static str,
}

/// Files up to this size are read whole and written by a worker thread while the
/// next members decompress; larger ones stream on the reading thread.
const SMALL: u64 = 1 << 20;
/// Small files queued for the writers at once: bounds memory to about 32 MiB.
const QUEUE: usize = 32;
const BLOCK: u64 = 512;

/// How archives are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    /// Whiteouts and opaque markers are applied to what earlier archives
    /// put in the tree (OCI layers, docs/oci.md) instead of being recorded as
    /// whiteout entries.
    pub flatten: bool,
    /// Absolute member paths refuse the archive instead of losing their `/`.
    pub strict: bool,
}

/// Detects the compression from the first bytes, decompresses, and writes the
/// archive's content into the store. The caller holds a write guard.
pub fn import_tar(store: &Store, input: impl Read, source: &str, limits: &Limits) -> Result<TarReport> {
    import_layers(store, vec![(source.to_string(), input)], limits, Mode::default())
}

/// Applies archives in order into one tree, as extracting them one over the
/// other would: a later member replaces an earlier one. With
/// [`Mode::flatten`], `.wh.NAME` removes NAME as earlier archives left it and
/// `.wh..wh..opq` empties its directory of what earlier archives put there
/// (the OCI image layer rules); members of one archive never hide each other.
pub fn import_layers<R: Read>(
    store: &Store,
    layers: Vec<(String, R)>,
    limits: &Limits,
    mode: Mode,
) -> Result<TarReport> {
    let failed = AtomicBool::new(false);
    let mut b = Builder::new(store, *limits, &failed, mode);
    let mut kinds = Vec::new();
    for (source, input) in layers {
        b.layer += 1;
        b.source = source;
        kinds.push(b.read_layer(input)?);
    }
    kinds.dedup();
    let tree = b.write_dir(&b.root_dir)?;
    Ok(TarReport {
        tree,
        root: b.root_meta(),
        entries: b.entries,
        files: b.files,
        bytes: b.bytes,
        absolute: b.absolute,
        compression: if kinds.len() == 1 { kinds[0] } else { "mixed" },
    })
}

impl Builder<'_> {
    /// One archive into the tree; its compression.
    fn read_layer(&mut self, mut input: impl Read) -> Result<&'static str> {
        let source = self.source.clone();
        let source = source.as_str();
        let mut head = Vec::with_capacity(BLOCK as usize);
        (&mut input)
            .take(BLOCK)
            .read_to_end(&mut head)
            .map_err(|e| read_error(source, e))?;
        let compression = detect(&head, source)?;
        let raw = io::Cursor::new(head).chain(input);
        let decoded: Box<dyn Read + '_> = match compression {
            "plain" => Box::new(raw),
            "gzip" => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(raw)),
            "zstd" => Box::new(zstd::stream::read::Decoder::new(raw).map_err(|e| read_error(source, e))?),
            _ => unreachable!("detect names one of these"),
        };
        let mut counted = Counted {
            inner: decoded,
            count: 0,
        };
        let store = self.store;
        let failed = self.failed;
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let rx = Mutex::new(rx);
        std::thread::scope(|scope| -> Result<()> {
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).clamp(1, 4));
            let handles: Vec<_> = (0..workers)
                .map(|_| scope.spawn(|| write_jobs(store, &rx, failed)))
                .collect();
            let read = self.read_archive(&mut counted, tx);
            let mut written = Vec::new();
            let mut first_err = None;
            for h in handles {
                match h.join().expect("blob writer does not panic") {
                    Ok(mut w) => written.append(&mut w),
                    Err(e) => first_err = first_err.or(Some(e)),
                }
            }
            read?;
            if let Some(e) = first_err {
                return Err(e);
            }
            for (slot, blob) in written {
                self.blobs[slot] = Some(blob);
            }
            Ok(())
        })?;
        // Reading to the end makes the decompressor check its trailer and checksum.
        io::copy(&mut counted, &mut io::sink()).map_err(|e| truncated(source, e))?;
        Ok(compression)
    }
}

fn detect(head: &[u8], source: &str) -> Result<&'static str> {
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok("xz");
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok("gzip");
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok("zstd");
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Ok("plain");
    }
    if head.len() == BLOCK as usize && old_tar_checksum_ok(head) {
        return Ok("plain");
    }
    if looks_like_html(head) {
        return Err(ImageError::HtmlAnswer {
            url: source.to_string(),
        }
        .into());
    }
    let start = if head.is_empty() {
        "nothing (empty)".to_string()
    } else {
        format!("{:?}", String::from_utf8_lossy(&head[..head.len().min(16)]))
    };
    Err(ImageError::NotAnArchive {
        source_name: source.to_string(),
        start,
    }
    .into())
}

/// A pre-POSIX (v7) tar header has no magic, only a checksum of its own bytes.
fn old_tar_checksum_ok(h: &[u8]) -> bool {
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(stored) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u32 })
        .sum();
    h[0] != 0 && sum == stored
}

pub(super) fn looks_like_html(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(256)]).to_ascii_lowercase();
    let t = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    t.starts_with("<!doctype html") || t.starts_with("<html") || (t.starts_with('<') && t.contains("<html"))
}

fn read_error(source: &str, e: io::Error) -> Error {
    truncated(source, e)
}

fn truncated(source: &str, e: io::Error) -> Error {
    ImageError::Truncated {
        source_name: source.to_string(),
        reason: e.to_string(),
    }
    .into()
}

/// Counts decompressed bytes, to tell an end-of-archive block from a bare EOF.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// A small file for a writer thread: its slot in `Builder::blobs`, content, mode.
struct Job(usize, Vec<u8>, u32);

/// Writes queued files until the queue closes. After a failure it keeps taking
/// (and dropping) jobs, so the reader never blocks on a full queue.
fn write_jobs(
    store: &Store,
    rx: &Mutex<mpsc::Receiver<Job>>,
    failed: &AtomicBool,
) -> Result<Vec<(usize, (ObjectId, u64))>> {
    let mut done = Vec::new();
    let mut error = None;
    loop {
        let job = rx.lock().expect("no poisoned lock").recv();
        let Ok(Job(slot, data, mode)) = job else {
            break;
        };
        if error.is_some() {
            continue;
        }
        match store.write_blob_from_reader(&data[..], mode) {
            Ok(blob) => done.push((slot, blob)),
            Err(e) => {
                failed.store(true, Ordering::Relaxed);
                error = Some(e);
            }
        }
    }
    error.map_or(Ok(done), |e| Err(e.into()))
}

#[derive(Clone, Copy, Debug)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Directories not listed in the archive get this (and the root, when `./` is
/// not a member).
const IMPLICIT_DIR: Meta = Meta {
    mode: 0o755,
    uid: 0,
    gid: 0,
};

struct Dir {
    meta: Meta,
    xattrs: Vec<Xattr>,
    opaque: bool,
    /// The last archive (1, 2, ...) that named this directory or something in it.
    layer: u32,
    children: BTreeMap<Vec<u8>, Node>,
}

impl Dir {
    fn new(meta: Meta, xattrs: Vec<Xattr>, layer: u32) -> Self {
        Dir {
            meta,
            xattrs,
            opaque: false,
            layer,
            children: BTreeMap::new(),
        }
    }

    /// Removes what archives before `layer` put below this directory, keeping
    /// what `layer` itself put there (an opaque directory in an OCI layer).
    fn drop_lower(&mut self, layer: u32) {
        self.children.retain(|_, node| node.layer() >= layer);
        for node in self.children.values_mut() {
            if let Node::Dir(d) = node {
                d.drop_lower(layer);
            }
        }
    }
}

enum Node {
    Dir(Dir),
    /// A non-directory entry. A file's blob may still be in a writer's hands:
    /// `pending` is then its slot in `Builder::blobs`.
    Leaf {
        entry: Entry,
        pending: Option<usize>,
        layer: u32,
    },
}

impl Node {
    fn layer(&self) -> u32 {
        match self {
            Node::Dir(d) => d.layer,
            Node::Leaf { layer, .. } => *layer,
        }
    }
}

struct Builder<'a> {
    store: &'a Store,
    /// The archive being read, for messages.
    source: String,
    /// Its number, from 1.
    layer: u32,
    mode: Mode,
    limits: Limits,
    root_dir: Dir,
    blobs: Vec<Option<(ObjectId, u64)>>,
    failed: &'a AtomicBool,
    entries: u64,
    files: u64,
    bytes: u64,
    absolute: u64,
}

/// What one member becomes.
enum Member {
    Dir,
    Leaf(EntryKind, Option<usize>),
    HardLink(Vec<u8>),
    Whiteout,
    Opaque,
}

impl<'a> Builder<'a> {
    fn new(store: &'a Store, limits: Limits, failed: &'a AtomicBool, mode: Mode) -> Self {
        Builder {
            store,
            source: String::new(),
            layer: 0,
            mode,
            limits,
            root_dir: Dir::new(IMPLICIT_DIR, Vec::new(), 0),
            blobs: Vec::new(),
            failed,
            entries: 0,
            files: 0,
            bytes: 0,
            absolute: 0,
        }
    }

    fn root_meta(&self) -> RootMeta {
        let m = self.root_dir.meta;
        RootMeta {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
        }
    }

    fn unsafe_member(&self, member: &[u8], reason: impl Into<String>) -> Error {
        ImageError::UnsafeMember {
            source_name: self.source.clone(),
            member: quote_path(member),
            reason: reason.into(),
        }
        .into()
    }

    fn read_archive<R: Read>(&mut self, input: &mut Counted<R>, tx: mpsc::SyncSender<Job>) -> Result<()> {
        let mut archive = tar::Archive::new(&mut *input);
        let mut data_end = 0u64;
        let entries = archive.entries().map_err(|e| truncated(&self.source, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| truncated(&self.source, e))?;
            if self.failed.load(Ordering::Relaxed) {
                break;
            }
            data_end = entry.raw_file_position() + entry.size().div_ceil(BLOCK) * BLOCK;
            self.member(&mut entry, &tx)?;
        }
        drop(tx);
        // The tar reader stops at the first zero block or at EOF alike; only a
        // whole block read past the last member's data is an end-of-archive mark.
        if input.count < data_end + BLOCK {
            return Err(ImageError::Truncated {
                source_name: self.source.clone(),
                reason: "no end-of-archive block after the last member".into(),
            }
            .into());
        }
        Ok(())
    }

    fn member<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, tx: &mpsc::SyncSender<Job>) -> Result<()> {
        use tar::EntryType as T;
        let path = entry.path_bytes().into_owned();
        let header = entry.header();
        let ty = header.entry_type();
        if ty == T::XGlobalHeader {
            return Ok(());
        }
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.too_large("archive members", self.limits.max_entries, "max_entries"));
        }
        let num = |v: io::Result<u64>, what: &str| -> Result<u32> {
            v.ok()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| self.unsafe_member(&path, format!("{what} is not a 32-bit number")))
        };
        let meta = Meta {
            mode: num(header.mode().map(u64::from), "mode")? & 0o7777,
            uid: num(header.uid(), "uid")?,
            gid: num(header.gid(), "gid")?,
        };
        let dev = |h: &tar::Header| -> Result<(u32, u32)> {
            match (h.device_major(), h.device_minor()) {
                (Ok(Some(a)), Ok(Some(b))) => Ok((a, b)),
                _ => Err(self.unsafe_member(&path, "device numbers unreadable")),
            }
        };
        let (comps, absolute) = components(&path).map_err(|r| self.unsafe_member(&path, r))?;
        let xattrs = self.pax_xattrs(entry, &path)?;
        let last = comps.last().copied();
        let member = match ty {
            T::Directory => Member::Dir,
            _ if last == Some(b".wh..wh..opq".as_slice()) => Member::Opaque,
            _ if last.is_some_and(|l| l.starts_with(b".wh.") && l.len() > 4) => Member::Whiteout,
            T::Regular | T::Continuous | T::GNUSparse => {
                let size = entry.size();
                if self.bytes.saturating_add(size) > self.limits.max_bytes {
                    return Err(self.too_large("bytes of file content", self.limits.max_bytes, "max_unpacked_bytes"));
                }
                self.files += 1;
                self.bytes += size;
                if size <= SMALL {
                    let mut data = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut data).map_err(|e| truncated(&self.source, e))?;
                    if data.len() as u64 != size {
                        return Err(truncated(&self.source, io::ErrorKind::UnexpectedEof.into()));
                    }
                    let slot = self.blobs.len();
                    self.blobs.push(None);
                    // A closed channel means a writer failed; its error is reported.
                    let _ = tx.send(Job(slot, data, meta.mode));
                    Member::Leaf(
                        EntryKind::File {
                            blob: ObjectId::from_bytes([0; 32]),
                            size,
                        },
                        Some(slot),
                    )
                } else {
                    let (blob, n) = self
                        .store
                        .write_blob_from_reader(&mut *entry, meta.mode)
                        .map_err(|e| match e {
                            crate::store::Error::Input { source, .. } => truncated(&self.source, source),
                            other => other.into(),
                        })?;
                    if n != size {
                        return Err(truncated(&self.source, io::ErrorKind::UnexpectedEof.into()));
                    }
                    Member::Leaf(EntryKind::File { blob, size }, None)
                }
            }
            T::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                if target.is_empty() || target.len() > MAX_TARGET || target.contains(&0) {
                    return Err(self.unsafe_member(&path, "symlink target is empty, too long or holds a NUL"));
                }
                Member::Leaf(EntryKind::Symlink { target }, None)
            }
            T::Link => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                Member::HardLink(target)
            }
            T::Char => match dev(entry.header())? {
                (0, 0) => Member::Whiteout,
                (major, minor) => Member::Leaf(EntryKind::CharDevice { major, minor }, None),
            },
            T::Block => {
                let (major, minor) = dev(entry.header())?;
                Member::Leaf(EntryKind::BlockDevice { major, minor }, None)
            }
            T::Fifo => Member::Leaf(EntryKind::Fifo, None),
            other => {
                return Err(self.unsafe_member(&path, format!("unsupported member type {:?}", other.as_byte() as char)));
            }
        };
        if absolute {
            if self.mode.strict {
                return Err(self.unsafe_member(&path, "absolute path (a layer's paths are relative to its root)"));
            }
            self.absolute += 1;
        }
        self.place(&path, &comps, member, meta, xattrs)
    }

    fn too_large(&self, what: &'static str, limit: u64, key: &'static str) -> Error {
        ImageError::TooLarge {
            source_name: self.source.clone(),
            what,
            limit,
            key,
        }
        .into()
    }

    /// `SCHILY.xattr.NAME` PAX records (GNU tar `--xattrs`, bsdtar), kept by the
    /// same rule as xattrs read from a directory.
    fn pax_xattrs<R: Read>(&self, entry: &mut tar::Entry<'_, R>, path: &[u8]) -> Result<Vec<Xattr>> {
        let mut out = Vec::new();
        let Some(exts) = entry.pax_extensions().map_err(|e| truncated(&self.source, e))? else {
            return Ok(out);
        };
        for ext in exts {
            let ext = ext.map_err(|_| self.unsafe_member(path, "malformed PAX record"))?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                if xattr::keep(name) {
                    out.push(Xattr {
                        name: name.to_vec(),
                        value: ext.value_bytes().to_vec(),
                    });
                }
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    fn place(&mut self, path: &[u8], comps: &[&[u8]], member: Member, meta: Meta, xattrs: Vec<Xattr>) -> Result<()> {
        let Some((&name, parents)) = comps.split_last() else {
            return match member {
                Member::Dir => {
                    self.root_dir.meta = meta;
                    self.root_dir.xattrs = xattrs;
                    Ok(())
                }
                _ => Err(self.unsafe_member(path, "only a directory can stand for the archive's top")),
            };
        };
        let linked = match &member {
            Member::HardLink(target) => Some(self.link_target(path, target)?),
            _ => None,
        };
        let source = self.source.as_str();
        let (layer, flatten) = (self.layer, self.mode.flatten);
        let unsafe_member = |reason: String| -> Error {
            ImageError::UnsafeMember {
                source_name: source.into(),
                member: quote_path(path),
                reason,
            }
            .into()
        };
        let mut dir = &mut self.root_dir;
        for (i, &comp) in parents.iter().enumerate() {
            let node = dir
                .children
                .entry(comp.to_vec())
                .or_insert_with(|| Node::Dir(Dir::new(IMPLICIT_DIR, Vec::new(), layer)));
            dir = match node {
                Node::Dir(d) => {
                    d.layer = layer;
                    d
                }
                Node::Leaf { entry, .. } => {
                    let at = quote_path(&comps[..=i].join(&b'/'));
                    return Err(unsafe_member(match entry.kind {
                        EntryKind::Symlink { .. } => {
                            format!("goes through the symlink {at} (links are never followed)")
                        }
                        _ => format!("{at} is not a directory"),
                    }));
                }
            };
        }
        let node = match member {
            Member::Opaque if flatten => {
                dir.drop_lower(layer);
                return Ok(());
            }
            Member::Opaque => {
                dir.opaque = true;
                return Ok(());
            }
            Member::Dir => {
                if let Some(Node::Dir(d)) = dir.children.get_mut(name) {
                    // A repeated directory member updates its metadata and keeps
                    // what is below it, as extraction would.
                    d.meta = meta;
                    d.xattrs = xattrs;
                    d.layer = layer;
                    return Ok(());
                }
                Node::Dir(Dir::new(meta, xattrs, layer))
            }
            Member::Whiteout => {
                let target = match name.strip_prefix(b".wh.") {
                    Some(t) if !t.is_empty() => t,
                    _ => name,
                };
                if target == b"." || target == b".." {
                    return Err(unsafe_member(
                        "a whiteout of '.' or '..' points outside its directory".into(),
                    ));
                }
                if flatten {
                    // Only what earlier layers put there is hidden.
                    match dir.children.get_mut(target) {
                        Some(old) if old.layer() < layer => {
                            dir.children.remove(target);
                        }
                        Some(Node::Dir(d)) => d.drop_lower(layer),
                        _ => {}
                    }
                    return Ok(());
                }
                Node::Leaf {
                    entry: Entry::whiteout(target.to_vec()),
                    pending: None,
                    layer,
                }
            }
            Member::Leaf(kind, pending) => Node::Leaf {
                entry: Entry {
                    name: name.to_vec(),
                    kind,
                    mode: meta.mode,
                    uid: meta.uid,
                    gid: meta.gid,
                    xattrs,
                },
                pending,
                layer,
            },
            Member::HardLink(_) => {
                let (mut entry, pending) = linked.expect("resolved above");
                entry.name = name.to_vec();
                Node::Leaf { entry, pending, layer }
            }
        };
        let key = match &node {
            Node::Leaf { entry, .. } => entry.name.clone(),
            Node::Dir(_) => name.to_vec(),
        };
        if let Some(Node::Dir(old)) = dir.children.get(&key) {
            // An earlier layer's directory is replaced whole; within one
            // archive, a non-empty directory never is.
            let replaceable = old.children.is_empty() || (flatten && old.layer < layer);
            if !replaceable {
                return Err(unsafe_member(
                    "would replace a non-empty directory by a non-directory".into(),
                ));
            }
        }
        dir.children.insert(key, node);
        Ok(())
    }

    /// The entry a hard link shares: the link's own header is ignored, since a
    /// hard link is the same inode (same mode and owner) as its target.
    fn link_target(&self, path: &[u8], target: &[u8]) -> Result<(Entry, Option<usize>)> {
        let missing = || -> Error {
            ImageError::HardlinkMissing {
                source_name: self.source.clone(),
                member: quote_path(path),
                target: quote_path(target),
            }
            .into()
        };
        let (comps, _) = components(target).map_err(|r| self.unsafe_member(path, format!("hard link target: {r}")))?;
        let Some((&name, parents)) = comps.split_last() else {
            return Err(missing());
        };
        let mut dir = &self.root_dir;
        for comp in parents {
            match dir.children.get(*comp) {
                Some(Node::Dir(d)) => dir = d,
                _ => return Err(missing()),
            }
        }
        match dir.children.get(name) {
            Some(Node::Leaf { entry, pending, .. }) if entry.kind != EntryKind::Whiteout => {
                Ok((entry.clone(), *pending))
            }
            Some(Node::Dir(_)) => Err(self.unsafe_member(path, "hard link to a directory")),
            _ => Err(missing()),
        }
    }

    fn write_dir(&self, dir: &Dir) -> Result<ObjectId> {
        let mut tree = Tree {
            opaque: dir.opaque,
            entries: Vec::with_capacity(dir.children.len()),
        };
        for (name, node) in &dir.children {
            let entry = match node {
                Node::Dir(d) => Entry {
                    name: name.clone(),
                    kind: EntryKind::Dir {
                        tree: self.write_dir(d)?,
                    },
                    mode: d.meta.mode,
                    uid: d.meta.uid,
                    gid: d.meta.gid,
                    xattrs: d.xattrs.clone(),
                },
                Node::Leaf {
                    entry, pending: None, ..
                } => entry.clone(),
                Node::Leaf {
                    entry,
                    pending: Some(slot),
                    ..
                } => {
                    let (blob, size) = self.blobs[*slot].expect("every queued file was written");
                    Entry {
                        kind: EntryKind::File { blob, size },
                        ..entry.clone()
                    }
                }
            };
            tree.entries.push(entry);
        }
        tree.sort();
        Ok(self.store.write_tree(&tree)?)
    }
}

/// Splits a member path into components: empty and `.` parts dropped, a leading
/// `/` removed (reported as `true`), `..` refused.
fn components(path: &[u8]) -> std::result::Result<(Vec<&[u8]>, bool), String> {
    let absolute = path.starts_with(b"/");
    let mut out = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("path contains '..'".into()),
            c if c.len() > MAX_NAME => return Err(format!("a path component is longer than {MAX_NAME} bytes")),
            c if c.contains(&0) => return Err("path contains a NUL byte".into()),
            c => out.push(c),
        }
    }
    Ok((out, absolute))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tar::{Builder as TarBuilder, EntryType, Header};

    fn header(path: &str, ty: EntryType, size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(ty);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        h
    }

    fn archive(members: &[(&str, EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = TarBuilder::new(Vec::new());
        for (path, ty, data, link) in members {
            let mut h = header(path, *ty, data.len() as u64, 0o644);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
                h.set_cksum();
            }
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn import(bytes: &[u8]) -> Result<(Store, TarReport, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let r = import_tar(&store, bytes, "test.tar", &Limits::default())?;
        Ok((store, r, dir))
    }

    fn err(bytes: &[u8]) -> String {
        match import(bytes) {
            Ok(_) => panic!("imported"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_and_compressed_give_one_tree() {
        use std::io::Write;
        let tar = archive(&[
            ("./", EntryType::Directory, b"", ""),
            ("./bin/", EntryType::Directory, b"", ""),
            ("./bin/sh", EntryType::Regular, b"#!", ""),
            ("./bin/ash", EntryType::Link, b"", "./bin/sh"),
            (
                "./usr/lib/big",
                EntryType::Regular,
                &vec![7u8; (SMALL + 5) as usize],
                "",
            ),
            ("./sbin", EntryType::Symlink, b"", "bin"),
        ]);
        let (store, plain, _d) = import(&tar).unwrap();
        assert_eq!((plain.files, plain.entries, plain.compression), (2, 6, "plain"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        for (data, kind) in [(gz.finish().unwrap(), "gzip"), (xz, "xz"), (zst, "zstd")] {
            let r = import_tar(&store, &data[..], "t", &Limits::default()).unwrap();
            assert_eq!((r.tree, r.compression), (plain.tree, kind));
        }
        let top = store.read_tree(&plain.tree).unwrap();
        let EntryKind::Dir { tree } = top.get(b"bin").unwrap().kind else {
            panic!()
        };
        let bin = store.read_tree(&tree).unwrap();
        assert_eq!(bin.get(b"sh").unwrap().kind, bin.get(b"ash").unwrap().kind);
        assert!(top.get(b"usr").is_some());
    }

    #[test]
    fn hostile_members_are_refused() {
        let dotdot = archive(&[("a/../../etc/x", EntryType::Regular, b"x", "")]);
        assert!(err(&dotdot).contains("'..'"), "{}", err(&dotdot));
        let through = archive(&[
            ("evil", EntryType::Symlink, b"", "/etc"),
            ("evil/passwd", EntryType::Regular, b"x", ""),
        ]);
        assert!(
            err(&through).contains("goes through the symlink evil"),
            "{}",
            err(&through)
        );
        let link = archive(&[("a", EntryType::Link, b"", "missing")]);
        assert!(err(&link).contains("hard link to missing"), "{}", err(&link));
        let mut cut = archive(&[("f", EntryType::Regular, &[1u8; 3000], "")]);
        cut.truncate(1024);
        assert!(err(&cut).contains("truncated"), "{}", err(&cut));
        let full = archive(&[("f", EntryType::Regular, &[1u8; 100], "")]);
        assert!(
            err(&full[..1024]).contains("no end-of-archive"),
            "{}",
            err(&full[..1024])
        );
        assert!(err(b"<!DOCTYPE html><html>").contains("HTML"));
        assert!(err(b"").contains("empty"));
    }

    #[test]
    fn absolute_paths_whiteouts_devices_and_limits() {
        let mut b = TarBuilder::new(Vec::new());
        let mut dev = header("dev/null", EntryType::Char, 0, 0o666);
        dev.set_device_major(1).unwrap();
        dev.set_device_minor(3).unwrap();
        dev.set_cksum();
        b.append(&dev, &b""[..]).unwrap();
        b.append(&header("/etc/hosts", EntryType::Regular, 0, 0o644), &b""[..])
            .unwrap();
        b.append(&header("etc/.wh.gone", EntryType::Regular, 0, 0o644), &b""[..])
            .unwrap();
        let bytes = b.into_inner().unwrap();
        let (store, r, _d) = import(&bytes).unwrap();
        assert_eq!(r.absolute, 1);
        let top = store.read_tree(&r.tree).unwrap();
        let EntryKind::Dir { tree } = top.get(b"dev").unwrap().kind else {
            panic!()
        };
        let devt = store.read_tree(&tree).unwrap();
        assert_eq!(
            devt.get(b"null").unwrap().kind,
            EntryKind::CharDevice { major: 1, minor: 3 }
        );
        let EntryKind::Dir { tree } = top.get(b"etc").unwrap().kind else {
            panic!()
        };
        assert_eq!(
            store.read_tree(&tree).unwrap().get(b"gone").unwrap().kind,
            EntryKind::Whiteout
        );
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let small = Limits {
            max_entries: 2,
            max_bytes: 1 << 20,
        };
        let e = import_tar(&store, &bytes[..], "t", &small).unwrap_err().to_string();
        assert!(e.contains("more than 2 archive members"), "{e}");
    }

    fn names(store: &Store, tree: &ObjectId, dir: &[u8]) -> Vec<String> {
        let top = store.read_tree(tree).unwrap();
        let t = if dir.is_empty() {
            top
        } else {
            let EntryKind::Dir { tree } = top.get(dir).unwrap().kind else {
                panic!()
            };
            store.read_tree(&tree).unwrap()
        };
        t.entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .collect()
    }

    #[test]
    fn layers_flatten_with_oci_whiteouts() {
        let one = archive(&[
            ("a/x", EntryType::Regular, b"x", ""),
            ("a/y", EntryType::Regular, b"y", ""),
            ("b/old", EntryType::Regular, b"o", ""),
            ("b/sub/deep", EntryType::Regular, b"d", ""),
            ("c/1", EntryType::Regular, b"1", ""),
        ]);
        // Within one layer, a whiteout never hides its own layer's files,
        // whichever comes first.
        let two = archive(&[
            ("a/.wh.x", EntryType::Regular, b"", ""),
            ("b/.wh..wh..opq", EntryType::Regular, b"", ""),
            ("b/new", EntryType::Regular, b"n", ""),
            ("b/sub/kept", EntryType::Regular, b"k", ""),
            ("c", EntryType::Regular, b"file now", ""),
            ("e/.wh.f", EntryType::Regular, b"", ""),
            ("e/f", EntryType::Regular, b"f", ""),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let flat = Mode {
            flatten: true,
            strict: true,
        };
        let layers = vec![("1".to_string(), &one[..]), ("2".to_string(), &two[..])];
        let r = import_layers(&store, layers, &Limits::default(), flat).unwrap();
        assert_eq!(names(&store, &r.tree, b""), ["a", "b", "c", "e"]);
        assert_eq!(names(&store, &r.tree, b"a"), ["y"]);
        assert_eq!(names(&store, &r.tree, b"b"), ["new", "sub"]);
        assert_eq!(names(&store, &r.tree, b"e"), ["f"]);
        let top = store.read_tree(&r.tree).unwrap();
        assert!(matches!(top.get(b"c").unwrap().kind, EntryKind::File { .. }));
        let EntryKind::Dir { tree } = top.get(b"b").unwrap().kind else {
            panic!()
        };
        assert!(!store.read_tree(&tree).unwrap().opaque);
        assert_eq!(names(&store, &tree, b"sub"), ["kept"]);

        let refused = |bad: &[u8]| {
            let layers = vec![("1".to_string(), &one[..]), ("bad".to_string(), bad)];
            import_layers(&store, layers, &Limits::default(), flat)
                .map(drop)
                .unwrap_err()
                .to_string()
        };
        let up = archive(&[("a/.wh...", EntryType::Regular, b"", "")]);
        assert!(refused(&up).contains("points outside"), "{}", refused(&up));
        let abs = archive(&[("/etc/x", EntryType::Regular, b"", "")]);
        assert!(refused(&abs).contains("absolute path"), "{}", refused(&abs));
        let through = archive(&[
            ("l", EntryType::Symlink, b"", "/etc"),
            ("l/.wh.passwd", EntryType::Regular, b"", ""),
        ]);
        assert!(
            refused(&through).contains("goes through the symlink l"),
            "{}",
            refused(&through)
        );
    }
}
