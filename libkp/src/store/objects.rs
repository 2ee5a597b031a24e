//! Loose objects: `objects/<2 hex>/<62 hex>.<kind>`.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::{set_mode, Store};
use super::{Error, Result};
use crate::hash::{self, ObjectId, HEX_LEN};
use crate::object::{EnvObject, FormatError, Kind, Layer, Tree};

/// An object found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub kind: Kind,
    pub id: ObjectId,
    pub path: PathBuf,
}

thread_local! {
    /// Files up to 1 MiB are read whole into this buffer (one per thread;
    /// its last byte tells a larger file).
    static SMALL_BLOB: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; (1 << 20) + 1]);
}

/// Mode of tree and layer files: nobody edits them in place.
const META_MODE: u32 = 0o444;

impl Store {
    pub fn object_path(&self, kind: Kind, id: &ObjectId) -> PathBuf {
        let hex = id.to_hex();
        self.root
            .join("objects")
            .join(&hex[..2])
            .join(format!("{}.{}", &hex[2..], kind))
    }

    pub fn has(&self, kind: Kind, id: &ObjectId) -> bool {
        self.object_path(kind, id).symlink_metadata().is_ok()
    }

    /// Which kind an id is stored as (env, then layer, then tree, then blob,
    /// should the same bytes be stored under two kinds).
    pub fn kind_of(&self, id: &ObjectId) -> Option<Kind> {
        [Kind::Env, Kind::Layer, Kind::Tree, Kind::Blob]
            .into_iter()
            .find(|k| self.has(*k, id))
    }

    /// Reads a whole object and checks that it hashes to its name.
    pub fn read(&self, kind: Kind, id: &ObjectId) -> Result<Vec<u8>> {
        let path = self.object_path(kind, id);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.missing(kind, id)),
            Err(e) => return Err(Error::store("read", &path)(e)),
        };
        if ObjectId::of(&data) != *id {
            return Err(Error::Corrupt {
                kind,
                id: *id,
                path,
                reason: "content does not hash to its name".into(),
            });
        }
        Ok(data)
    }

    fn missing(&self, kind: Kind, id: &ObjectId) -> Error {
        match self.kind_of(id) {
            Some(actual) => Error::WrongKind {
                id: *id,
                expected: kind,
                actual,
            },
            None => Error::Missing { kind, id: *id },
        }
    }

    fn corrupt(&self, kind: Kind, id: &ObjectId, e: FormatError) -> Error {
        Error::Corrupt {
            kind,
            id: *id,
            path: self.object_path(kind, id),
            reason: e.0,
        }
    }

    pub fn read_tree(&self, id: &ObjectId) -> Result<Tree> {
        let data = self.read(Kind::Tree, id)?;
        Tree::parse(&data).map_err(|e| self.corrupt(Kind::Tree, id, e))
    }

    pub fn read_layer(&self, id: &ObjectId) -> Result<Layer> {
        let data = self.read(Kind::Layer, id)?;
        Layer::parse(&data).map_err(|e| self.corrupt(Kind::Layer, id, e))
    }

    pub fn read_env_object(&self, id: &ObjectId) -> Result<EnvObject> {
        let data = self.read(Kind::Env, id)?;
        EnvObject::parse(&data).map_err(|e| self.corrupt(Kind::Env, id, e))
    }

    /// Stores an environment object after making the layers it names durable.
    pub fn write_env_object(&self, env: &EnvObject) -> Result<ObjectId> {
        let bytes = env.serialize().map_err(|e| Error::Unsupported {
            path: PathBuf::from("<env>"),
            what: e.0,
        })?;
        self.sync()?;
        self.write_bytes(Kind::Env, &bytes)
    }

    /// What a stored object names ([`crate::object::children`]), read and
    /// checked against its id.
    pub fn children(&self, kind: Kind, id: &ObjectId) -> Result<Vec<(Kind, ObjectId)>> {
        if kind == Kind::Blob {
            return Ok(Vec::new());
        }
        let data = self.read(kind, id)?;
        crate::object::children(kind, &data).map_err(|e| self.corrupt(kind, id, e))
    }

    /// Opens a blob for reading. The caller streams it; `verify_blob` re-hashes.
    pub fn open_blob(&self, id: &ObjectId) -> Result<File> {
        let path = self.object_path(Kind::Blob, id);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => self.missing(Kind::Blob, id),
            _ => Error::store("open", &path)(e),
        })
    }

    /// A blob whose length is not the `size` a tree gives it for `path` (cut
    /// short or grown behind the store's back): what reads it must stop
    /// rather than write a short or long file.
    pub fn blob_size_error(&self, id: &ObjectId, found: u64, size: u64, path: &Path) -> Error {
        Error::Corrupt {
            kind: Kind::Blob,
            id: *id,
            path: self.object_path(Kind::Blob, id),
            reason: format!(
                "{found} bytes where the tree says {size} (for {}); `karapace verify-store` lists what is damaged",
                path.display()
            ),
        }
    }

    /// Re-hashes a stored object; `Ok(false)` when its content no longer matches.
    pub fn verify(&self, kind: Kind, id: &ObjectId) -> Result<bool> {
        let path = self.object_path(kind, id);
        let file = File::open(&path).map_err(Error::store("open", &path))?;
        let (actual, _) = hash::hash_file(&file).map_err(Error::store("read", &path))?;
        Ok(actual == *id)
    }

    /// Stores a tree and returns its id. Every object it names must be present:
    /// the caller writes bottom-up.
    pub fn write_tree(&self, tree: &Tree) -> Result<ObjectId> {
        let bytes = tree.serialize().map_err(|e| Error::Unsupported {
            path: PathBuf::from("<tree>"),
            what: e.0,
        })?;
        self.write_bytes(Kind::Tree, &bytes)
    }

    /// Stores a layer after making everything below it durable.
    pub fn write_layer_object(&self, layer: &Layer) -> Result<ObjectId> {
        let bytes = layer.serialize().map_err(|e| Error::Unsupported {
            path: PathBuf::from("<layer>"),
            what: e.0,
        })?;
        // A layer already stored was written after everything it names was
        // made durable: nothing new to sync (a commit of an unchanged
        // environment ends here).
        let id = ObjectId::of(&bytes);
        if self.has(Kind::Layer, &id) {
            return Ok(id);
        }
        self.sync()?;
        self.write_bytes(Kind::Layer, &bytes)
    }

    /// Stores bytes as an object of `kind` (no-op when present).
    pub fn write_bytes(&self, kind: Kind, data: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::of(data);
        if self.stored_size(kind, &id)?.is_some() {
            return Ok(id);
        }
        let mode = if kind == Kind::Blob { 0o644 } else { META_MODE };
        self.create_object(kind, &id, data, mode)?;
        Ok(id)
    }

    fn persist(&self, tmp: tempfile::NamedTempFile, kind: Kind, id: &ObjectId) -> Result<()> {
        let target = self.object_path(kind, id);
        self.make_fanout(id)?;
        tmp.persist(&target)
            .map_err(|e| Error::store("rename into place", &target)(e.error))?;
        Ok(())
    }

    /// Moves a file holding object `kind`/`id` (already verified by the
    /// caller, mode already set) into place; a present object is kept and the
    /// file left. The file must be on the store's filesystem (under `tmp/`).
    pub fn adopt(&self, kind: Kind, id: &ObjectId, file: &Path) -> Result<()> {
        if self.has(kind, id) {
            return Ok(());
        }
        let target = self.object_path(kind, id);
        self.make_fanout(id)?;
        fs::rename(file, &target).map_err(Error::store("rename into place", &target))
    }

    /// Whether a blob of `size` bytes is stored as `id`. One present with
    /// another size was cut short by a crash and is to be stored again.
    pub(crate) fn has_blob_sized(&self, id: &ObjectId, size: u64) -> Result<bool> {
        Ok(self.stored_size(Kind::Blob, id)? == Some(size))
    }

    /// Stores a blob from everything a reader yields, hashing as it copies.
    pub fn write_blob_from_reader(&self, mut reader: impl Read, mode: u32) -> Result<(ObjectId, u64)> {
        let mut tmp = self.temp_file()?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::input("read", Path::new("<stream>"))(e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(Error::store("write", tmp.path()))?;
            size += n as u64;
        }
        let id = ObjectId::from_bytes(*hasher.finalize().as_bytes());
        if !self.has(Kind::Blob, &id) {
            set_mode(tmp.as_file(), mode & 0o777, tmp.path())?;
            self.persist(tmp, Kind::Blob, &id)?;
        }
        Ok((id, size))
    }

    /// Stores the content of the regular file at `src`. `known` is its id when the
    /// caller already hashed it; the stored copy is hashed again, so the name always
    /// matches the bytes even if the file changes meanwhile.
    pub fn write_blob_from_path(
        &self,
        src: &Path,
        mode: u32,
        known: Option<(ObjectId, u64)>,
    ) -> Result<(ObjectId, u64)> {
        if let Some((id, size)) = known {
            if self.has_blob_sized(&id, size)? {
                return Ok((id, size));
            }
        }
        let from = hash::open_nofollow(src).map_err(Error::input("open", src))?;
        self.write_blob_from_file(from, src, 0, mode, known)
    }

    /// [`Store::write_blob_from_path`] of the file open as `from` (named
    /// `src` in messages), which a stat just gave `expect` bytes.
    pub fn write_blob_from_file(
        &self,
        mut from: File,
        src: &Path,
        expect: u64,
        mode: u32,
        known: Option<(ObjectId, u64)>,
    ) -> Result<(ObjectId, u64)> {
        // Small files (most of a tree) are read once into memory, hashed
        // from those bytes and written from them: what is stored is what was
        // hashed, so there is no second read and no re-hash.
        let small = SMALL_BLOB.with_borrow_mut(|buf| -> Result<Option<(ObjectId, u64)>> {
            let mut len = 0;
            loop {
                let n = match from.read(&mut buf[len..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::input("read", src)(e)),
                };
                len += n;
                if len == buf.len() {
                    return Ok(None);
                }
                // A read of a regular file that returns less than it was
                // asked for has met the end of the file: once what the stat
                // said is in, no second read to see 0.
                if n == 0 || len as u64 >= expect {
                    break;
                }
            }
            let data = &buf[..len];
            let id = ObjectId::of(data);
            let size = len as u64;
            if known.is_some_and(|k| k != (id, size)) {
                return Err(Error::Changed {
                    path: src.to_path_buf(),
                });
            }
            if !self.has_blob_sized(&id, size)? {
                self.create_object(Kind::Blob, &id, data, mode & 0o777)?;
            }
            Ok(Some((id, size)))
        })?;
        if let Some(done) = small {
            return Ok(done);
        }
        // A large file: hashed, copied (copy_file_range where it can), and
        // the copy hashed again, so a file changed meanwhile is refused.
        let (id, size) = match known {
            Some(k) => k,
            None => {
                from.rewind().map_err(Error::input("seek", src))?;
                hash::hash_file_lean(&from).map_err(Error::input("read", src))?
            }
        };
        if self.has_blob_sized(&id, size)? {
            return Ok((id, size));
        }
        let tmp = self.temp_file()?;
        from.rewind().map_err(Error::input("seek", src))?;
        io::copy(&mut from, &mut tmp.as_file()).map_err(|e| match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::PermissionDenied => Error::store("write", tmp.path())(e),
            _ => Error::input("copy", src)(e),
        })?;
        let (stored, stored_size) = {
            let f = File::open(tmp.path()).map_err(Error::store("open", tmp.path()))?;
            hash::hash_file_lean(&f).map_err(Error::store("read", tmp.path()))?
        };
        if stored != id || stored_size != size {
            return Err(Error::Changed {
                path: src.to_path_buf(),
            });
        }
        set_mode(tmp.as_file(), mode & 0o777, tmp.path())?;
        // Replaces a short object left by a crash, or races another writer of
        // the same content: both rename identical bytes, so either result is
        // right.
        self.persist(tmp, Kind::Blob, &id)?;
        Ok((id, size))
    }

    /// Every loose object, in id order within each fan-out directory. Names that
    /// are not objects are returned as errors-by-path via `strays`.
    pub fn list_objects(&self) -> Result<(Vec<ObjectInfo>, Vec<PathBuf>)> {
        let mut objects = Vec::new();
        let mut strays = Vec::new();
        let top = self.root.join("objects");
        let mut fans: Vec<_> = read_dir_sorted(&top)?;
        fans.retain(|(name, path)| {
            let ok = name.len() == 2 && hash::is_hex(name) && name.bytes().all(|c| !c.is_ascii_uppercase());
            if !ok {
                strays.push(path.clone());
            }
            ok
        });
        for (fan, dir) in fans {
            for (name, path) in read_dir_sorted(&dir)? {
                match parse_object_name(&fan, &name) {
                    Some((id, kind)) => objects.push(ObjectInfo { kind, id, path }),
                    None => strays.push(path),
                }
            }
        }
        Ok((objects, strays))
    }

    /// Objects whose hex id starts with `prefix` (at least 2 lowercase hex digits).
    pub fn objects_with_prefix(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        if prefix.len() < 2 || prefix.len() > HEX_LEN || !hash::is_hex(prefix) {
            return Ok(out);
        }
        let prefix = prefix.to_ascii_lowercase();
        let dir = self.root.join("objects").join(&prefix[..2]);
        if !dir.exists() {
            return Ok(out);
        }
        for (name, path) in read_dir_sorted(&dir)? {
            if let Some((id, kind)) = parse_object_name(&prefix[..2], &name) {
                if id.to_hex().starts_with(&prefix) {
                    out.push(ObjectInfo { kind, id, path });
                }
            }
        }
        Ok(out)
    }
}

fn parse_object_name(fan: &str, name: &str) -> Option<(ObjectId, Kind)> {
    let (rest, kind) = name.split_once('.')?;
    let kind: Kind = kind.parse().ok()?;
    if rest.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let id = ObjectId::from_hex(&format!("{fan}{rest}"))?;
    Some((id, kind))
}

pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::store("read directory", dir))? {
        let entry = entry.map_err(Error::store("read directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, entry.path()));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let id = store.write_bytes(Kind::Blob, b"hello\n").unwrap();
        assert_eq!(store.read(Kind::Blob, &id).unwrap(), b"hello\n");
        assert_eq!(store.kind_of(&id), Some(Kind::Blob));
        assert!(matches!(store.read(Kind::Tree, &id), Err(Error::WrongKind { .. })));
        let path = store.object_path(Kind::Blob, &id);
        fs::write(&path, b"hellO\n").unwrap();
        assert!(matches!(store.read(Kind::Blob, &id), Err(Error::Corrupt { .. })));
        assert!(!store.verify(Kind::Blob, &id).unwrap());
        let (objs, strays) = store.list_objects().unwrap();
        assert_eq!(objs.len(), 1);
        assert!(strays.is_empty());
    }

    #[test]
    fn blob_from_path_matches_reader_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join("s")).unwrap();
        let src = dir.path().join("f");
        fs::write(&src, b"content").unwrap();
        let (a, n) = store.write_blob_from_path(&src, 0o755, None).unwrap();
        let (b, _) = store.write_blob_from_reader(&b"content"[..], 0o644).unwrap();
        assert_eq!((a, n), (b, 7));
        assert_eq!(a, ObjectId::of(b"content"));
    }

    /// A small file is stored from the bytes hashed, whatever its stat
    /// said; a blob cut short by a crash is replaced whole; nothing is left
    /// in tmp/; a file that is not what the hash cache says is refused.
    #[test]
    fn small_blobs_replace_short_objects_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let (store, _) = Store::init(&root).unwrap();
        let src = dir.path().join("f");
        fs::write(&src, b"content").unwrap();
        let id = ObjectId::of(b"content");
        for expect in [0, 3, 7, 100] {
            let f = File::open(&src).unwrap();
            assert_eq!(
                store.write_blob_from_file(f, &src, expect, 0o644, None).unwrap(),
                (id, 7)
            );
        }
        let object = store.object_path(Kind::Blob, &id);
        assert_eq!(fs::read(&object).unwrap(), b"content");
        fs::write(&object, b"con").unwrap();
        let f = File::open(&src).unwrap();
        assert_eq!(store.write_blob_from_file(f, &src, 7, 0o644, None).unwrap(), (id, 7));
        assert_eq!(fs::read(&object).unwrap(), b"content");
        assert!(store.verify(Kind::Blob, &id).unwrap());
        let tree = store.write_bytes(Kind::Tree, b"kp-tree 1\n").unwrap();
        assert_eq!(store.write_bytes(Kind::Tree, b"kp-tree 1\n").unwrap(), tree);
        assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        let other = ObjectId::of(b"other");
        let f = File::open(&src).unwrap();
        assert!(matches!(
            store.write_blob_from_file(f, &src, 7, 0o644, Some((other, 7))),
            Err(Error::Changed { .. })
        ));
    }
}
