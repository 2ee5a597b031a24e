//! Refs: names for objects, one file each under `refs/`, holding a hex id and a
//! newline. Updates go through `<ref>.lock` (created exclusively, holding the
//! writer's pid), are compared-and-swapped against the expected old value, and land
//! by rename, so a reader sees the old or the new value, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::hash::ObjectId;
use crate::store::Store;

/// What can go wrong reading or updating a ref; each names the ref or its file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// A ref file that does not hold an id and a newline.
    #[error("corrupt metadata {}: a ref holds 64 lowercase hex digits and a newline", path.display())]
    Corrupt { path: PathBuf },
    /// The id a ref would be pointed at is not in the store.
    #[error("unknown revision \"{id}\": no object, prefix or ref by that name")]
    UnknownObject { id: ObjectId },
    #[error("ref {name} is {}, expected {}", show_opt(actual), show_opt(expected))]
    Mismatch {
        name: String,
        expected: Option<ObjectId>,
        actual: Option<ObjectId>,
    },
    /// A name cannot be both a ref and a directory of refs (`a` and `a/b`),
    /// as in git.
    #[error("ref {name} cannot be written: {other} exists, and one name cannot be both a ref and a directory of refs; choose another name or remove {other}")]
    Clash { name: String, other: String },
    #[error("ref {name} is being updated by another process (pid {pid}, lock {}); retry when it is done", lock.display())]
    Locked { name: String, lock: PathBuf, pid: String },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

fn show_opt(id: &Option<ObjectId>) -> String {
    match id {
        Some(id) => format!("at {id}"),
        None => "absent".to_string(),
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Corrupt { .. } => crate::exit::STORE,
            Error::Store(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }

    /// Wraps an io error on a store path.
    pub fn store(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let wrap = crate::store::Error::store(op, path);
        move |source| Error::Store(wrap(source))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the caller expects a ref to be before an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Whatever it is.
    Any,
    /// It must not exist yet.
    Absent,
    /// It must point at this id.
    Is(ObjectId),
}

/// Checks a full ref name such as `refs/tags/v1`, by rules close to git's.
pub fn check_name(name: &str) -> Result<()> {
    let fail = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if !name.starts_with("refs/") {
        return fail("must start with refs/");
    }
    if name.len() > 1024 {
        return fail("longer than 1024 bytes");
    }
    for comp in name.split('/') {
        if comp.is_empty() {
            return fail("empty path component");
        }
        if comp.starts_with('.') {
            return fail("a component starts with '.'");
        }
        if comp.ends_with(".lock") {
            return fail("a component ends with .lock");
        }
    }
    if name.split('/').count() < 2 || name == "refs" {
        return fail("names nothing below refs/");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_./@+".contains(*c)))
    {
        let _ = c;
        return fail("only ASCII letters, digits and - _ . / @ + are allowed");
    }
    if name.contains("..") || name.contains("@{") {
        return fail("contains '..' or '@{'");
    }
    Ok(())
}

impl Store {
    fn ref_path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// The id a ref points at, if it exists.
    pub fn read_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        check_name(name)?;
        let path = self.ref_path(name);
        match fs::read_to_string(&path) {
            Ok(text) => parse_ref(&text).map(Some).ok_or(Error::Corrupt { path }),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
            Err(e) if path.is_dir() => {
                let _ = e;
                Ok(None)
            }
            Err(e) => Err(Error::store("read", &path)(e)),
        }
    }

    /// Every ref whose name starts with `prefix` (e.g. `refs/` or `refs/tags/`),
    /// sorted by name. A ref file that does not parse is an error naming it.
    pub fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        let top = self.root().join("refs");
        walk_refs(&top, "refs", &mut |name, path| {
            if !name.starts_with(prefix) || name.ends_with(".lock") {
                return Ok(());
            }
            let text = fs::read_to_string(path).map_err(Error::store("read", path))?;
            let id = parse_ref(&text).ok_or_else(|| Error::Corrupt {
                path: path.to_path_buf(),
            })?;
            out.push((name.to_string(), id));
            Ok(())
        })?;
        out.sort();
        Ok(out)
    }

    /// Points `name` at `new` (or deletes it when `new` is None) if it is as
    /// `expect` says. The target object must exist.
    pub fn update_ref(&self, name: &str, new: Option<ObjectId>, expect: Expect) -> Result<()> {
        check_name(name)?;
        if let Some(id) = &new {
            if self.kind_of(id).is_none() {
                return Err(Error::UnknownObject { id: *id });
            }
        }
        let path = self.ref_path(name);
        if new.is_some() {
            self.check_clash(name, &path)?;
        }
        let parent = path.parent().expect("refs/ has a parent");
        self.make_dir(parent)?;
        let lock = RefLock::acquire(self, name, &path)?;
        let current = self.read_ref(name)?;
        let ok = match expect {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Is(id) => current == Some(id),
        };
        if !ok {
            let expected = match expect {
                Expect::Is(id) => Some(id),
                _ => None,
            };
            return Err(Error::Mismatch {
                name: name.to_string(),
                expected,
                actual: current,
            });
        }
        match new {
            Some(id) => {
                // What the ref names must be durable before the ref is.
                self.sync()?;
                lock.commit(self, &path, format!("{id}\n").as_bytes())?;
            }
            None => {
                if current.is_some() {
                    fs::remove_file(&path).map_err(Error::store("remove", &path))?;
                    crate::store::sync_parent(&path)?;
                }
                drop(lock);
            }
        }
        Ok(())
    }

    /// Refuses to write `name` (at `path`) where refs below it exist, or where
    /// one of its leading parts is a ref: the rename or directory creation
    /// would fail with a bare "Is a directory" or "Not a directory".
    fn check_clash(&self, name: &str, path: &Path) -> Result<()> {
        let is = |p: &Path, dir: bool| p.symlink_metadata().is_ok_and(|m| m.is_dir() == dir);
        // Directories left empty by deleted refs below the name go first.
        if is(path, true) && !remove_empty_dirs(path) {
            return Err(Error::Clash {
                name: name.to_string(),
                other: format!("{name}/..."),
            });
        }
        let parts: Vec<&str> = name.split('/').collect();
        for end in 2..parts.len() {
            let prefix = parts[..end].join("/");
            if is(&self.ref_path(&prefix), false) {
                return Err(Error::Clash {
                    name: name.to_string(),
                    other: prefix,
                });
            }
        }
        Ok(())
    }
}

/// Removes `dir` if it holds nothing but (nested) empty directories; says
/// whether it is gone. A ref or a lock file below it keeps it.
fn remove_empty_dirs(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    for entry in entries {
        let Ok(entry) = entry else { return false };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !remove_empty_dirs(&entry.path()) {
            return false;
        }
    }
    fs::remove_dir(dir).is_ok()
}

fn parse_ref(text: &str) -> Option<ObjectId> {
    let hex = text.strip_suffix('\n')?;
    if hex.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    ObjectId::from_hex(hex)
}

fn walk_refs(dir: &Path, name: &str, f: &mut dyn FnMut(&str, &Path) -> Result<()>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::store("read directory", dir)(e)),
    };
    let mut list = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::store("read directory", dir))?;
        list.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
    }
    list.sort();
    for (child, path) in list {
        let full = format!("{name}/{child}");
        if path.is_dir() {
            walk_refs(&path, &full, f)?;
        } else {
            f(&full, &path)?;
        }
    }
    Ok(())
}

/// `<ref>.lock`, held with `flock` while one writer updates the ref. The kernel
/// drops a flock when its holder dies, so a crash never leaves a ref locked: a
/// lock file nobody holds is simply taken. The new value goes to a temporary file
/// renamed over the ref; the lock file is removed (while still held) last.
struct RefLock {
    /// Holds the flock until drop.
    _file: File,
    lock: PathBuf,
}

impl RefLock {
    fn acquire(store: &Store, name: &str, target: &Path) -> Result<RefLock> {
        let mut lock = target.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        loop {
            let file = store.open_lock(&lock)?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    let pid = fs::read_to_string(&lock).unwrap_or_default().trim().to_string();
                    return Err(Error::Locked {
                        name: name.to_string(),
                        lock,
                        pid,
                    });
                }
                Err(e) => return Err(Error::store("lock", &lock)(e.into())),
            }
            // The previous holder may have removed the file between our open and
            // our flock: then we hold a lock on a name that no longer exists.
            let held = rustix::fs::fstat(&file).map_err(|e| Error::store("stat", &lock)(e.into()))?;
            match fs::symlink_metadata(&lock) {
                Ok(m) if m.ino() == held.st_ino && m.dev() == held.st_dev => {
                    let mut f = &file;
                    let _ = f.set_len(0);
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(RefLock { _file: file, lock });
                }
                _ => continue,
            }
        }
    }

    fn commit(self, store: &Store, target: &Path, data: &[u8]) -> Result<()> {
        Ok(store.write_atomic(target, data, 0o644)?)
    }
}

impl Drop for RefLock {
    fn drop(&mut self) {
        // Remove the name while we still hold the lock, so a waiter that opened
        // it notices (by inode) that it is stale.
        let _ = fs::remove_file(&self.lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;

    #[test]
    fn names() {
        for ok in ["refs/a", "refs/tags/v1.0", "refs/envs/my-env@latest"] {
            check_name(ok).unwrap();
        }
        for bad in [
            "a",
            "refs/",
            "refs//a",
            "refs/.a",
            "refs/a.lock",
            "refs/a..b",
            "refs/a b",
            "/refs/a",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_ref_and_refs_below_its_name_cannot_both_exist() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let a = store.write_bytes(Kind::Blob, b"a").unwrap();
        store
            .update_ref("refs/images/debian/bookworm", Some(a), Expect::Any)
            .unwrap();
        let e = store
            .update_ref("refs/images/debian", Some(a), Expect::Any)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Clash { other, .. } if other == "refs/images/debian/..."),
            "{e}"
        );
        store.update_ref("refs/images/ubuntu", Some(a), Expect::Any).unwrap();
        let e = store
            .update_ref("refs/images/ubuntu/noble", Some(a), Expect::Any)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Clash { other, .. } if other == "refs/images/ubuntu"),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::exit::FAILURE);
        // Nothing was changed by either refusal.
        assert_eq!(store.read_ref("refs/images/debian/bookworm").unwrap(), Some(a));
        assert_eq!(store.read_ref("refs/images/ubuntu").unwrap(), Some(a));
        assert_eq!(store.read_ref("refs/images/debian").unwrap(), None);
        // Once the refs below a name are deleted, the name is free again.
        store
            .update_ref("refs/images/debian/bookworm", None, Expect::Is(a))
            .unwrap();
        store.update_ref("refs/images/debian", Some(a), Expect::Absent).unwrap();
        assert_eq!(store.read_ref("refs/images/debian").unwrap(), Some(a));
    }

    #[test]
    fn compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let a = store.write_bytes(Kind::Blob, b"a").unwrap();
        let b = store.write_bytes(Kind::Blob, b"b").unwrap();
        store.update_ref("refs/x", Some(a), Expect::Absent).unwrap();
        assert!(matches!(
            store.update_ref("refs/x", Some(b), Expect::Absent),
            Err(Error::Mismatch { .. })
        ));
        assert!(matches!(
            store.update_ref("refs/x", Some(b), Expect::Is(b)),
            Err(Error::Mismatch { .. })
        ));
        store.update_ref("refs/x", Some(b), Expect::Is(a)).unwrap();
        assert_eq!(store.read_ref("refs/x").unwrap(), Some(b));
        assert_eq!(store.list_refs("refs/").unwrap(), vec![("refs/x".to_string(), b)]);
        store.update_ref("refs/x", None, Expect::Is(b)).unwrap();
        assert_eq!(store.read_ref("refs/x").unwrap(), None);
    }

    /// A ref's failures name the ref or its file, with the messages and exit
    /// statuses docs/cli.md and t/ rely on.
    #[test]
    fn errors_name_the_ref_and_keep_their_status() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let e = check_name("refs/a..b").unwrap_err();
        assert_eq!(e.to_string(), "invalid ref name \"refs/a..b\": contains '..' or '@{'");
        assert_eq!(e.exit_code(), crate::exit::FAILURE);
        let absent = ObjectId::of(b"not stored");
        let e = store.update_ref("refs/x", Some(absent), Expect::Any).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("unknown revision \"{absent}\": no object, prefix or ref by that name")
        );
        assert_eq!(e.exit_code(), crate::exit::FAILURE);
        fs::write(dir.path().join("refs/bad"), "xyz\n").unwrap();
        for e in [
            store.read_ref("refs/bad").unwrap_err(),
            store.list_refs("refs/").unwrap_err(),
        ] {
            assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
            assert_eq!(
                e.to_string(),
                format!(
                    "corrupt metadata {}: a ref holds 64 lowercase hex digits and a newline",
                    dir.path().join("refs/bad").display()
                )
            );
            assert_eq!(e.exit_code(), crate::exit::STORE);
        }
    }

    #[test]
    fn stale_lock_is_taken_over_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let a = store.write_bytes(Kind::Blob, b"a").unwrap();
        fs::write(dir.path().join("refs/y.lock"), "999999999\n").unwrap();
        store.update_ref("refs/y", Some(a), Expect::Any).unwrap();
        assert!(!dir.path().join("refs/y.lock").exists());
        let held = RefLock::acquire(&store, "refs/y", &dir.path().join("refs/y")).unwrap();
        assert!(matches!(
            store.update_ref("refs/y", Some(a), Expect::Any),
            Err(Error::Locked { .. })
        ));
        drop(held);
        store.update_ref("refs/y", Some(a), Expect::Any).unwrap();
    }
}
