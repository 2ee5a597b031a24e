//! The store belongs to its owner (docs/store-format.md, "Modes and
//! symlinks"): the directories it makes are 0700 whatever the umask, its lock
//! files 0600, and no path inside it is reached through a symlink. Store paths
//! are opened beneath the store's root with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` ([`Store::open_beneath`]), and directories are made
//! one component at a time the same way ([`Store::make_dir`]); a symlink found
//! on the way is an [`Error::Symlink`] naming it.

use std::fs::{self, File};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

use super::Store;
use super::{Error, Result};

/// The mode of every directory the store makes.
pub const DIR_MODE: u32 = 0o700;
/// The mode of its lock files.
pub const LOCK_MODE: u32 = 0o600;

/// Opens `rel` (relative, no `..`) beneath `dir`, following no symlink.
/// Kernels without `openat2` (before 5.6, or behind a seccomp filter that
/// answers ENOSYS) get the same walk by hand, one `O_NOFOLLOW` step at a time.
fn openat_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlags, mode: u32) -> rustix::io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(mode);
    match rustix::fs::openat2(dir, rel, flags, mode, ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS) {
        Err(Errno::NOSYS) => {}
        r => return r,
    }
    let names: Vec<_> = rel.components().collect();
    let mut cur: Option<OwnedFd> = None;
    for (i, c) in names.iter().enumerate() {
        let at = cur.as_ref().map_or(dir, |f| f.as_fd());
        let step = if i + 1 == names.len() {
            flags
        } else {
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        cur = Some(rustix::fs::openat(at, c.as_os_str(), step, mode)?);
    }
    cur.ok_or(Errno::INVAL)
}

impl Store {
    /// `path` (a path under the root, as [`Store::path`] gives) relative to
    /// the root.
    fn relative<'a>(&self, path: &'a Path) -> Result<&'a Path> {
        let rel = path.strip_prefix(&self.root).unwrap_or(Path::new(""));
        if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                what: "not a path inside the store".into(),
            });
        }
        Ok(rel)
    }

    fn root_fd(&self) -> Result<OwnedFd> {
        rustix::fs::open(
            &self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::store("open", &self.root)(e.into()))
    }

    /// The error for a failed open of `rel`: [`Error::Symlink`] when a
    /// component of it is a symlink, else the system's error.
    fn beneath_error(&self, op: &'static str, rel: &Path, e: Errno, expects: &'static str) -> Error {
        let mut at = self.root.clone();
        for c in rel.components() {
            at.push(c);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    let last = at.as_path() == self.root.join(rel);
                    return Error::Symlink {
                        path: at,
                        expects: if last { expects } else { "directory" },
                    };
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Error::store(op, &self.root.join(rel))(e.into())
    }

    /// Opens a store path (under the root, as [`Store::path`] gives) with
    /// `flags`, refusing a symlink anywhere beneath the root. `expects` says
    /// what the path should be ("file", "lock file", ...) for the error.
    pub fn open_beneath(&self, path: &Path, flags: OFlags, mode: u32, expects: &'static str) -> Result<OwnedFd> {
        let rel = self.relative(path)?;
        let root = self.root_fd()?;
        openat_beneath(root.as_fd(), rel, flags, mode).map_err(|e| self.beneath_error("open", rel, e, expects))
    }

    /// Makes the directory `path` and any missing parents beneath the root,
    /// each mode 0700, refusing a symlink on the way. Returns its full path.
    pub fn make_dir(&self, path: &Path) -> Result<PathBuf> {
        self.make_dir_mode(path, DIR_MODE)
    }

    /// [`Store::make_dir`], the last component (when made) `mode` instead.
    pub fn make_dir_mode(&self, path: &Path, mode: u32) -> Result<PathBuf> {
        self.make_dir_rel(self.relative(path)?, mode)
    }

    fn make_dir_rel(&self, rel: &Path, mode: u32) -> Result<PathBuf> {
        let mut cur = self.root_fd()?;
        let mut done = PathBuf::new();
        let n = rel.components().count();
        for (i, c) in rel.components().enumerate() {
            done.push(c);
            let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY;
            let next = match openat_beneath(cur.as_fd(), c.as_ref(), dir_flags, 0) {
                Err(Errno::NOENT) => {
                    let m = if i + 1 == n { mode } else { DIR_MODE };
                    match rustix::fs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(m)) {
                        Ok(()) => {
                            // The umask may have taken bits the mode asks for.
                            let _ = rustix::fs::chmodat(
                                &cur,
                                c.as_os_str(),
                                Mode::from_raw_mode(m),
                                rustix::fs::AtFlags::empty(),
                            );
                        }
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(Error::store("create directory", &self.root.join(&done))(e.into())),
                    }
                    openat_beneath(cur.as_fd(), c.as_ref(), dir_flags, 0)
                }
                r => r,
            };
            cur = next.map_err(|e| self.beneath_error("open directory", &done, e, "directory"))?;
        }
        Ok(self.root.join(rel))
    }

    /// The directory `path` if it exists, refusing a symlink on the way.
    pub fn existing_dir(&self, path: &Path) -> Result<Option<PathBuf>> {
        let rel = self.relative(path)?;
        match openat_beneath(self.root_fd()?.as_fd(), rel, OFlags::RDONLY | OFlags::DIRECTORY, 0) {
            Ok(_) => Ok(Some(self.root.join(rel))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.beneath_error("open directory", rel, e, "directory")),
        }
    }

    /// Opens (creating, mode 0600) the lock file `path`, its directory made
    /// as [`Store::make_dir`] does: nobody but the owner can open it to hold
    /// a lock the owner then waits for.
    pub fn open_lock(&self, path: &Path) -> Result<File> {
        let rel = self.relative(path)?;
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.make_dir_rel(parent, DIR_MODE)?;
        }
        let fd = self.open_beneath(path, OFlags::RDWR | OFlags::CREATE, LOCK_MODE, "lock file")?;
        Ok(File::from(fd))
    }
}

/// What [`private_paths`] found wrong with one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// A store directory or lock file that others may read, enter or write.
    Mode { path: PathBuf, mode: u32 },
    /// A symlink where the store expects a directory or lock file.
    Symlink { path: PathBuf },
}

impl std::fmt::Display for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exposure::Mode { path, mode } => write!(f, "{} is {mode:04o}", path.display()),
            Exposure::Symlink { path } => write!(f, "{} is a symlink", path.display()),
        }
    }
}

/// The store's own directories (the root, `objects/` and its fan-out, `refs/`,
/// `meta/`, `tmp/`, `cache/`, `locks/`, `envs/<id>/` and its `run/` and
/// `work/`, ...) and lock files whose mode gives anything to group or others,
/// and symlinks where those should be. Environment content keeps its modes
/// and is not visited: `envs/<id>/upper`, the checkouts in `cache/checkouts/`,
/// what writers keep in `tmp/`.
pub fn exposed_paths(root: &Path) -> Vec<Exposure> {
    let mut out = Vec::new();
    visit(root, Path::new(""), &mut out);
    out
}

/// What under a store directory is environment content (not visited).
fn is_content(rel: &Path) -> bool {
    let parts: Vec<_> = rel.components().map(|c| c.as_os_str()).collect();
    match parts.as_slice() {
        [top, _] if *top == "tmp" => true,
        [top, sub, _] if *top == "cache" && *sub == "checkouts" => true,
        [top, _, sub] if *top == "envs" => *sub != "run" && *sub != "work" && *sub != "lock",
        _ => false,
    }
}

fn is_lock(rel: &Path) -> bool {
    let parts: Vec<_> = rel.components().map(|c| c.as_os_str()).collect();
    matches!(parts.as_slice(), [top, _] if *top == "locks" || *top == "run")
        || matches!(parts.as_slice(), [top, _, l] if *top == "envs" && *l == "lock")
}

fn visit(root: &Path, rel: &Path, out: &mut Vec<Exposure>) {
    let path = if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let Ok(m) = fs::symlink_metadata(&path) else { return };
    let mode = m.permissions().mode() & 0o7777;
    if m.file_type().is_symlink() {
        if !rel.as_os_str().is_empty() {
            out.push(Exposure::Symlink { path });
        }
        return;
    }
    if m.is_file() {
        if is_lock(rel) && mode & 0o077 != 0 {
            out.push(Exposure::Mode { path, mode });
        }
        return;
    }
    if !m.is_dir() {
        return;
    }
    if mode & 0o077 != 0 {
        out.push(Exposure::Mode {
            path: path.clone(),
            mode,
        });
    }
    let Ok(entries) = fs::read_dir(&path) else { return };
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let child = rel.join(&name);
        if !is_content(&child) {
            visit(root, &child, out);
        } else if fs::symlink_metadata(root.join(&child)).is_ok_and(|m| m.file_type().is_symlink()) {
            out.push(Exposure::Symlink {
                path: root.join(&child),
            });
        }
    }
}

/// Takes group and other bits off every path [`exposed_paths`] reports for
/// its mode (symlinks are left for the user to look at). Returns how many
/// were changed.
pub fn make_private(root: &Path) -> Result<usize> {
    let mut n = 0;
    for e in exposed_paths(root) {
        if let Exposure::Mode { path, mode } = e {
            // The walk saw no symlink here (those are reported, not changed).
            rustix::fs::chmodat(
                CWD,
                &path,
                Mode::from_raw_mode(mode & !0o077),
                rustix::fs::AtFlags::empty(),
            )
            .map_err(|err| Error::store("chmod", &path)(err.into()))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn private_modes_and_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join("s")).unwrap();
        let made = store.make_dir(&store.path("envs/e/work/1")).unwrap();
        assert_eq!(made.metadata().unwrap().permissions().mode() & 0o777, DIR_MODE);
        let lock = store.open_lock(&store.path("envs/e/lock")).unwrap();
        assert_eq!(lock.metadata().unwrap().permissions().mode() & 0o777, LOCK_MODE);
        assert!(exposed_paths(store.root()).is_empty());

        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, store.path("envs/x")).unwrap();
        for r in [
            store.make_dir(&store.path("envs/x/work")).map(|_| ()),
            store.existing_dir(&store.path("envs/x")).map(|_| ()),
            store.open_lock(&store.path("envs/x/lock")).map(|_| ()),
        ] {
            match r {
                Err(Error::Symlink { path, .. }) => assert_eq!(path, store.path("envs/x")),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(
            exposed_paths(store.root()),
            [Exposure::Symlink {
                path: store.path("envs/x")
            }]
        );
        assert!(store.make_dir(Path::new("/elsewhere")).is_err());
    }
}
