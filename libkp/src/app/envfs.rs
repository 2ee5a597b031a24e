//! Reading an environment's files from the host, as the environment sees them
//! and never further: the writable layer over the layers' checkouts, with
//! overlayfs's whiteouts and opaque directories, and symlinks resolved
//! inside the environment (an absolute target starts again at the
//! environment's root, `..` stops there), as a chroot would.
//!
//! Everything the environment holds is hostile here: every step is an
//! `openat`/`statat` on a directory descriptor with no symlink followed by
//! the kernel, so a symlink to `/etc/shadow` reaches the environment's own
//! `/etc/shadow` (or nothing), and a directory swapped for a symlink by a
//! process running inside fails instead of leading out.

use std::collections::{BTreeSet, VecDeque};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{AppError, Result};
use crate::env::EnvRecord;
use crate::store::Store;

/// Symlinks followed in one lookup before it is refused (the kernel's own
/// limit is 40).
const MAX_LINKS: u32 = 32;
/// Path components of one lookup, symlink targets included.
const MAX_COMPONENTS: usize = 256;

/// An environment's filesystem, read-only, top layer first.
pub struct EnvFs {
    roots: Vec<OwnedFd>,
}

/// What a path names.
enum Node {
    /// A directory: its descriptor in each layer that contributes, top first.
    Dir(Vec<OwnedFd>),
    /// A regular file (not yet opened): the directory holding it and its name.
    File(OwnedFd, Vec<u8>),
    /// Something else: a device, fifo or socket.
    Other,
}

enum Step {
    Missing,
    Node(Node),
    Link(Vec<u8>),
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn bad(path: &str, reason: impl Into<String>) -> super::Error {
    AppError::EnvFile {
        path: path.to_string(),
        reason: reason.into(),
    }
    .into()
}

impl EnvFs {
    /// The environment's writable layer over its layers' checkouts (made
    /// now if a checkout is missing).
    pub fn open(store: &Store, rec: &EnvRecord) -> Result<EnvFs> {
        let mut paths = vec![crate::env::upper_dir(store, &rec.env_id)];
        for hex in rec.layers.iter().rev() {
            let id =
                crate::ObjectId::from_hex(hex).ok_or_else(|| bad("/", format!("layer id {hex:?} is not valid")))?;
            paths.push(store.cached_checkout(&id)?);
        }
        let mut roots = Vec::new();
        for p in paths {
            match rustix::fs::open(&p, dir_flags(), Mode::empty()) {
                Ok(fd) => roots.push(fd),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(crate::store::Error::store("open directory", &p)(e.into()).into()),
            }
        }
        Ok(EnvFs { roots })
    }

    /// The bytes of the regular file at `path` (absolute, inside the
    /// environment), `None` when there is none; refused when larger than
    /// `limit` bytes or not a regular file.
    pub fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let (dir, name) = match self.lookup(path)? {
            None => return Ok(None),
            Some(Node::File(dir, name)) => (dir, name),
            Some(Node::Dir(_)) => return Err(bad(path, "is a directory, not a file")),
            Some(Node::Other) => return Err(bad(path, "is not a regular file")),
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, name.as_slice(), flags, Mode::empty())
            .map_err(|e| bad(path, format!("open: {e}")))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| bad(path, format!("stat: {e}")))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(bad(path, "is not a regular file"));
        }
        if st.st_size as u64 > limit {
            return Err(bad(
                path,
                format!("is {} bytes, more than the {limit} allowed", st.st_size),
            ));
        }
        let mut out = Vec::new();
        std::fs::File::from(fd)
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(path, format!("read: {e}")))?;
        if out.len() as u64 > limit {
            return Err(bad(path, format!("grew past the {limit} bytes allowed while read")));
        }
        Ok(Some(out))
    }

    /// Whether `path` is a regular file (symlinks followed inside).
    pub fn is_file(&self, path: &str) -> Result<bool> {
        Ok(matches!(self.lookup(path)?, Some(Node::File(..))))
    }

    /// The names in the directory at `path` as the environment sees them
    /// (whiteouts applied), sorted; empty when there is no such directory.
    /// At most `max` names are read.
    pub fn list(&self, path: &str, max: usize) -> Result<Vec<Vec<u8>>> {
        let Some(Node::Dir(layers)) = self.lookup(path)? else {
            return Ok(Vec::new());
        };
        let (mut seen, mut hidden) = (BTreeSet::new(), BTreeSet::new());
        for fd in &layers {
            let mut here = Vec::new();
            let dir = rustix::fs::Dir::read_from(fd).map_err(|e| bad(path, format!("read directory: {e}")))?;
            for entry in dir {
                let entry = entry.map_err(|e| bad(path, format!("read directory: {e}")))?;
                let name = entry.file_name().to_bytes().to_vec();
                if name == b"." || name == b".." {
                    continue;
                }
                here.push(name);
                if here.len() + seen.len() > max {
                    return Err(bad(path, format!("has more than {max} entries")));
                }
            }
            for name in here {
                if let Some(gone) = name.strip_prefix(b".wh.") {
                    hidden.insert(gone.to_vec());
                    continue;
                }
                if hidden.contains(&name) || seen.contains(&name) {
                    continue;
                }
                let dev_whiteout = matches!(rustix::fs::statat(fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW),
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0);
                if dev_whiteout || whiteout(fd, &name) {
                    hidden.insert(name);
                } else {
                    seen.insert(name);
                }
            }
        }
        Ok(seen.into_iter().collect())
    }

    fn lookup(&self, path: &str) -> Result<Option<Node>> {
        let mut todo: VecDeque<Vec<u8>> = components(path.as_bytes());
        let mut cur: Vec<Vec<u8>> = Vec::new();
        let mut dirs = self.dup_roots(path)?;
        let (mut links, mut steps) = (0u32, 0usize);
        while let Some(name) = todo.pop_front() {
            steps += 1;
            if steps > MAX_COMPONENTS {
                return Err(bad(path, "has too many components"));
            }
            if name == b".." {
                // Back up from the root: the resolved prefix has no symlinks.
                cur.pop();
                for c in cur.drain(..).rev() {
                    todo.push_front(c);
                }
                dirs = self.dup_roots(path)?;
                continue;
            }
            let last = todo.is_empty();
            match step(&dirs, &name).map_err(|e| bad(path, e))? {
                Step::Missing => return Ok(None),
                Step::Link(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(bad(path, "has too many levels of symbolic links"));
                    }
                    for c in components(&target).into_iter().rev() {
                        todo.push_front(c);
                    }
                    if target.starts_with(b"/") {
                        cur.clear();
                        dirs = self.dup_roots(path)?;
                    }
                }
                Step::Node(Node::Dir(next)) => {
                    cur.push(name);
                    dirs = next;
                }
                Step::Node(node) if last => return Ok(Some(node)),
                Step::Node(_) => return Ok(None),
            }
        }
        Ok(Some(Node::Dir(dirs)))
    }

    fn dup_roots(&self, path: &str) -> Result<Vec<OwnedFd>> {
        self.roots
            .iter()
            .map(|fd| fd.try_clone().map_err(|e| bad(path, format!("dup: {e}"))))
            .collect()
    }
}

/// The components of a path, `.` and empty ones left out.
fn components(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

/// `name` in the merged directory `dirs` (top first).
fn step(dirs: &[OwnedFd], name: &[u8]) -> std::result::Result<Step, String> {
    let mut found: Vec<OwnedFd> = Vec::new();
    for fd in dirs {
        let st = match rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => {
                // fuse-overlayfs's whiteout; opaque directories never
                // reach here, as `dirs` stops at one.
                if rustix::fs::statat(fd, wh_name(name).as_slice(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                    break;
                }
                continue;
            }
            Err(e) => return Err(format!("stat: {e}")),
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if !found.is_empty() && kind != FileType::Directory {
            // A lower non-directory under a directory above is hidden.
            break;
        }
        match kind {
            FileType::CharacterDevice if st.st_rdev == 0 => break,
            FileType::RegularFile if st.st_size == 0 && whiteout(fd, name) => break,
            FileType::RegularFile => {
                let dir = fd.try_clone().map_err(|e| format!("dup: {e}"))?;
                return Ok(Step::Node(Node::File(dir, name.to_vec())));
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(fd, name, Vec::new()).map_err(|e| format!("readlink: {e}"))?;
                return Ok(Step::Link(target.into_bytes()));
            }
            FileType::Directory => {
                let d = rustix::fs::openat(fd, name, dir_flags(), Mode::empty()).map_err(|e| format!("open: {e}"))?;
                let stop = opaque(&d);
                found.push(d);
                if stop {
                    break;
                }
            }
            _ => return Ok(Step::Node(Node::Other)),
        }
    }
    Ok(match found.is_empty() {
        true => Step::Missing,
        false => Step::Node(Node::Dir(found)),
    })
}

fn wh_name(name: &[u8]) -> Vec<u8> {
    [b".wh.".as_slice(), name].concat()
}

fn xattr_is(fd: impl AsFd, name: &str, want: &[u8]) -> bool {
    let mut buf = [0u8; 8];
    matches!(rustix::fs::fgetxattr(fd, name, &mut buf[..]), Ok(n) if &buf[..n] == want)
}

/// An empty regular file marked as an overlayfs "xwhiteout".
fn whiteout(dir: &OwnedFd, name: &[u8]) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::openat(dir, name, flags, Mode::empty()) else {
        return false;
    };
    let Ok(st) = rustix::fs::fstat(&fd) else { return false };
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_size != 0 {
        return false;
    }
    [
        crate::layer::xattr::USER_WHITEOUT,
        crate::layer::xattr::TRUSTED_WHITEOUT,
    ]
    .iter()
    .any(|x| rustix::fs::fgetxattr(&fd, *x, &mut [0u8; 8][..]).is_ok())
}

/// A directory that hides what lower layers have under it.
fn opaque(dir: &OwnedFd) -> bool {
    xattr_is(dir, crate::layer::xattr::USER_OPAQUE, b"y")
        || xattr_is(dir, crate::layer::xattr::TRUSTED_OPAQUE, b"y")
        || rustix::fs::statat(dir, ".wh..wh..opq", AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fs_of(dirs: &[&std::path::Path]) -> EnvFs {
        EnvFs {
            roots: dirs
                .iter()
                .map(|p| rustix::fs::open(*p, dir_flags(), Mode::empty()).unwrap())
                .collect(),
        }
    }

    #[test]
    fn layers_whiteouts_and_symlinks_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let (up, low) = (t.path().join("up"), t.path().join("low"));
        for d in [&up, &low] {
            std::fs::create_dir_all(d.join("usr/share/applications")).unwrap();
            std::fs::create_dir_all(d.join("etc")).unwrap();
        }
        std::fs::write(low.join("usr/share/applications/a.desktop"), "low-a").unwrap();
        std::fs::write(low.join("usr/share/applications/b.desktop"), "low-b").unwrap();
        std::fs::write(up.join("usr/share/applications/a.desktop"), "up-a").unwrap();
        std::fs::write(up.join("usr/share/applications/.wh.b.desktop"), "").unwrap();
        std::fs::write(low.join("etc/shadow"), "env-shadow").unwrap();
        symlink("/etc/shadow", up.join("usr/share/applications/abs.desktop")).unwrap();
        symlink(
            "../../../../../../etc/shadow",
            up.join("usr/share/applications/rel.desktop"),
        )
        .unwrap();
        symlink("/usr/share/applications/loop", up.join("usr/share/applications/loop")).unwrap();
        symlink("usr", up.join("u")).unwrap();
        let fs = fs_of(&[&up, &low]);
        let read = |p: &str| fs.read(p, 100).unwrap().map(|b| String::from_utf8(b).unwrap());
        assert_eq!(read("/usr/share/applications/a.desktop").as_deref(), Some("up-a"));
        assert_eq!(read("/usr/share/applications/b.desktop"), None);
        assert_eq!(
            read("/usr/share/applications/abs.desktop").as_deref(),
            Some("env-shadow")
        );
        assert_eq!(
            read("/usr/share/applications/rel.desktop").as_deref(),
            Some("env-shadow")
        );
        assert_eq!(
            read("/u/share/../share/applications/a.desktop").as_deref(),
            Some("up-a")
        );
        assert!(fs.read("/usr/share/applications/loop", 100).is_err());
        assert!(fs.read("/usr/share/applications/a.desktop", 2).is_err());
        let names = fs.list("/usr/share/applications", 100).unwrap();
        let names: Vec<_> = names.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
        assert_eq!(names, ["a.desktop", "abs.desktop", "loop", "rel.desktop"]);
        assert!(fs.list("/usr/share/applications", 2).is_err());
    }

    #[test]
    fn xwhiteouts_and_opaque_directories_hide_what_is_below() {
        use crate::layer::xattr;
        let t = tempfile::tempdir().unwrap();
        let (up, low) = (t.path().join("up"), t.path().join("low"));
        for d in [&up, &low] {
            std::fs::create_dir_all(d.join("opq")).unwrap();
            std::fs::create_dir_all(d.join("etc")).unwrap();
        }
        std::fs::write(low.join("opq/x"), "x").unwrap();
        std::fs::write(low.join("etc/gone"), "x").unwrap();
        std::fs::write(low.join("etc/kept"), "k").unwrap();
        std::fs::write(up.join("etc/gone"), "").unwrap();
        if xattr::set(&up.join("etc/gone"), xattr::USER_WHITEOUT.as_bytes(), b"").is_err()
            || xattr::set(&up.join("opq"), xattr::USER_OPAQUE.as_bytes(), b"y").is_err()
        {
            eprintln!("no user xattrs here: skipped");
            return;
        }
        let fs = fs_of(&[&up, &low]);
        assert_eq!(fs.read("/opq/x", 10).unwrap(), None);
        assert_eq!(fs.read("/etc/gone", 10).unwrap(), None);
        assert_eq!(fs.read("/etc/kept", 10).unwrap().as_deref(), Some(b"k".as_slice()));
        assert_eq!(fs.list("/etc", 10).unwrap(), [b"kept".to_vec()]);
        assert!(fs.list("/opq", 10).unwrap().is_empty());
    }
}
