//! The store: a directory holding objects, refs and metadata (docs/store-format.md).

mod create;
mod error;
mod lock;
mod objects;
mod private;
mod remove;

pub use error::{Error, Result};
pub use lock::{GcGuard, WriteGuard};
pub(crate) use objects::read_dir_sorted;
pub use objects::ObjectInfo;
pub use private::{exposed_paths, make_private, Exposure, DIR_MODE, LOCK_MODE};
pub(crate) use remove::remove_tree;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The first line of the `version` file this build reads and writes.
pub const VERSION: &str = "karapace-store 1";
/// Environment variable that names the store when `--store` is not given.
pub const ENV_STORE: &str = "KARAPACE_STORE";

/// An open store. Cheap to clone; holds no lock while merely open.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    /// Set once `tmp/` was found a directory, not a symlink, in this process.
    tmp_checked: std::sync::Arc<std::sync::OnceLock<PathBuf>>,
    /// `objects/` and `tmp/` held open by a process that writes objects.
    dirs: std::sync::Arc<create::ObjectDirs>,
}

/// Where the store is when the caller did not say: `$KARAPACE_STORE`, else
/// `$XDG_DATA_HOME/karapace`, else `$HOME/.local/share/karapace`.
pub fn default_location() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = env(ENV_STORE) {
        return Some(p);
    }
    if let Some(p) = env("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
        return Some(p.join("karapace"));
    }
    env("HOME").map(|h| h.join(".local/share/karapace"))
}

/// The store path from an explicit `--store`, else the default location.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None => default_location().ok_or_else(|| Error::NotAStore {
            path: PathBuf::from("$HOME/.local/share/karapace (HOME is not set)"),
        }),
    }
}

/// Temporary files and directories of writers holding the writer lock.
const TEMP_PREFIX: &str = "kp-";
/// Temporary files of [`Store::write_atomic`], which takes no lock.
pub(crate) const SMALL_TEMP_PREFIX: &str = "kp.small-";

/// Whether `name` in `tmp/` is one of karapace's temporary files; anything
/// else there was put by someone else and is left alone.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) || name.starts_with(SMALL_TEMP_PREFIX)
}

/// In the name of a `kp.small-*` file whose writer holds its flock until
/// the rename (every one this version writes).
pub(crate) const SMALL_TEMP_LOCKED: &str = ".l.";

/// The pid of the writer of a `kp.small-<pid>.*` file, if its name has one.
pub(crate) fn small_temp_writer(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(SMALL_TEMP_PREFIX)?;
    rest.split_once('.')?.0.parse().ok()
}

const DIRS: &[&str] = &["objects", "refs", "meta", "tmp", "cache", "locks", "run"];

impl Store {
    /// Creates a store at `root`, or checks and completes an existing one. Returns
    /// the store and whether it already existed.
    pub fn init(root: &Path) -> Result<(Store, bool)> {
        let existed = root.join("version").exists();
        if existed {
            let store = Store::open(root)?;
            store.ensure_dirs()?;
            return Ok((store, true));
        }
        // The top directory too is the owner's alone, whatever the umask;
        // its parents (`~/.local/share`...) are the user's business.
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(Error::store("create directory", parent))?;
        }
        match fs::DirBuilder::new().mode(DIR_MODE).create(root) {
            Ok(()) => {
                fs::set_permissions(root, fs::Permissions::from_mode(DIR_MODE)).map_err(Error::store("chmod", root))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::store("create directory", root)(e)),
        }
        let store = Store::at(root);
        store.ensure_dirs()?;
        // The version file goes last: a store is a store once it names its version.
        store.write_atomic(&root.join("version"), format!("{VERSION}\n").as_bytes(), 0o444)?;
        Ok((store, false))
    }

    fn ensure_dirs(&self) -> Result<()> {
        for d in DIRS {
            self.make_dir(&self.path(d))?;
        }
        Ok(())
    }

    fn at(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            tmp_checked: Default::default(),
            dirs: Default::default(),
        }
    }

    /// `tmp/`, checked once per process to be a directory and no symlink.
    fn tmp(&self) -> Result<&Path> {
        if let Some(p) = self.tmp_checked.get() {
            return Ok(p);
        }
        let p = self.make_dir(&self.path("tmp"))?;
        Ok(self.tmp_checked.get_or_init(|| p))
    }

    /// Opens an existing store, checking its format version.
    pub fn open(root: &Path) -> Result<Store> {
        let vpath = root.join("version");
        let text = match fs::read_to_string(&vpath) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotAStore {
                    path: root.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::store("read", &vpath)(e)),
        };
        let found = text.lines().next().unwrap_or("").trim();
        if found != VERSION {
            return Err(Error::UnsupportedVersion {
                path: root.to_path_buf(),
                found: found.to_string(),
                supported: VERSION,
            });
        }
        Ok(Store::at(root))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// A new temporary file on the store's filesystem, removed unless persisted.
    /// Callers hold the writer lock ([`Store::write_guard`]) while it exists:
    /// with the exclusive lock held, gc takes every such file for a crash's
    /// leftover.
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        self.temp_file_named(TEMP_PREFIX)
    }

    fn temp_file_named(&self, prefix: &str) -> Result<tempfile::NamedTempFile> {
        let dir = self.tmp()?;
        tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(dir)
            .map_err(Error::store("create temporary file in", dir))
    }

    /// A new temporary directory on the store's filesystem (under the writer
    /// lock, as [`Store::temp_file`]).
    pub fn temp_dir(&self) -> Result<tempfile::TempDir> {
        let dir = self.tmp()?;
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(dir)
            .map_err(Error::store("create temporary directory in", dir))
    }

    /// Writes small data durably and atomically: temp file, fsync, rename, fsync of
    /// the directory. Refs and records are written without the writer lock, so
    /// their temporary files have their own prefix and gc leaves young ones be.
    pub fn write_atomic(&self, target: &Path, data: &[u8], mode: u32) -> Result<()> {
        self.write_small(target, data, mode, true)
    }

    /// [`Store::write_atomic`] of a derived file nothing depends on for
    /// correctness (a cache its reader checks): atomic, not synced.
    pub fn write_cache(&self, target: &Path, data: &[u8]) -> Result<()> {
        self.write_small(target, data, 0o600, false)
    }

    fn write_small(&self, target: &Path, data: &[u8], mode: u32, durable: bool) -> Result<()> {
        let mut tmp = self.temp_file_named(&format!("{SMALL_TEMP_PREFIX}{}{SMALL_TEMP_LOCKED}", std::process::id()))?;
        // Held until the rename: a sweep removes the file only when nobody
        // holds it (the writer died), however young it is.
        rustix::fs::flock(tmp.as_file(), rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| Error::store("lock", tmp.path())(e.into()))?;
        tmp.write_all(data).map_err(Error::store("write", tmp.path()))?;
        set_mode(tmp.as_file(), mode, tmp.path())?;
        if durable {
            tmp.as_file().sync_all().map_err(Error::store("fsync", tmp.path()))?;
        }
        tmp.persist(target)
            .map_err(|e| Error::store("rename into place", target)(e.error))?;
        if durable {
            sync_parent(target)?;
        }
        Ok(())
    }

    /// Makes everything written so far durable (one `syncfs` for the filesystem;
    /// cheaper than an fsync per object, and called before anything names them).
    pub fn sync(&self) -> Result<()> {
        let dir = fs::File::open(&self.root).map_err(Error::store("open", &self.root))?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::store("syncfs", &self.root)(e.into()))
    }
}

pub(crate) fn set_mode(file: &fs::File, mode: u32, path: &Path) -> Result<()> {
    rustix::fs::fchmod(file, rustix::fs::Mode::from_raw_mode(mode)).map_err(|e| Error::store("chmod", path)(e.into()))
}

pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let dir = fs::File::open(parent).map_err(Error::store("open", parent))?;
    dir.sync_all().map_err(Error::store("fsync", parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_open_and_version_guard() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let (_, existed) = Store::init(&root).unwrap();
        assert!(!existed);
        assert!(Store::init(&root).unwrap().1);
        Store::open(&root).unwrap();
        fs::set_permissions(
            root.join("version"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        fs::write(root.join("version"), "karapace-store 99\n").unwrap();
        assert!(matches!(Store::open(&root), Err(Error::UnsupportedVersion { .. })));
        assert!(matches!(Store::open(dir.path()), Err(Error::NotAStore { .. })));
    }
}
