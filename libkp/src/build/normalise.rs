//! What a package manager's run leaves behind that is not the install's
//! result: logs with dates, caches with inode numbers and timestamps, backups
//! of the previous database, snapshots of the mirror's index. Dropped from the
//! upper directory before it is written, so the same lock gives the same
//! dependency layer, whoever builds it and whenever (docs/hash-contract.md,
//! "Dependency layers").

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::{Error, Result};

/// Whether a non-directory entry at `path` (relative to the root, `/`-joined)
/// is left behind by a run rather than installed. Directories and whiteouts
/// are always kept: they are the shape of the tree, not a run's output.
pub fn is_left_behind(path: &[u8]) -> bool {
    let under = |dir: &[u8]| path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/';
    // debconf keeps its database (answers, templates) in /var/cache: state,
    // not a cache.
    if under(b"var/cache/debconf") {
        return false;
    }
    if under(b"var/log") || under(b"var/cache") || under(b"var/lib/apt/lists") || under(b"var/lib/pacman/sync") {
        return true;
    }
    // dpkg's backups of its previous database (status-old, available-old,
    // diversions-old, statoverride-old).
    path.strip_prefix(b"var/lib/dpkg/".as_slice())
        .is_some_and(|name| !name.contains(&b'/') && name.ends_with(b"-old"))
}

/// Removes what [`is_left_behind`] names from `upper`; returns how many
/// entries went. What the base has at those paths shows through again.
pub fn drop_left_behind(upper: &Path) -> Result<usize> {
    let mut dropped = 0;
    walk(upper, &mut Vec::new(), &mut dropped)?;
    Ok(dropped)
}

fn walk(dir: &Path, rel: &mut Vec<u8>, dropped: &mut usize) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::store("read directory", dir)(e)),
    };
    for e in entries {
        let e = e.map_err(Error::store("read directory", dir))?;
        let path = e.path();
        let ty = e.file_type().map_err(Error::store("stat", &path))?;
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(e.file_name().as_bytes());
        if ty.is_dir() {
            // Only these subtrees hold anything to drop.
            let prefix_of = |p: &[u8]| p.starts_with(rel.as_slice()) || rel.starts_with(p);
            if ["var/log", "var/cache", "var/lib"]
                .iter()
                .any(|p| prefix_of(p.as_bytes()))
            {
                walk(&path, rel, dropped)?;
            }
        } else if is_left_behind(rel) && !ty.is_char_device() && !crate::layer::is_xwhiteout(&path)? {
            fs::remove_file(&path).map_err(Error::store("remove", &path))?;
            *dropped += 1;
        }
        rel.truncate(len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        for p in [
            "var/log/dpkg.log",
            "var/log/apt/history.log",
            "var/log/apt/eipp.log.xz",
            "var/cache/apt/pkgcache.bin",
            "var/cache/apt/srcpkgcache.bin",
            "var/cache/apt/archives/lock",
            "var/cache/ldconfig/aux-cache",
            "var/cache/dnf/fedora.solv",
            "var/cache/man/index.db",
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/available-old",
            "var/lib/dpkg/diversions-old",
            "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
            "var/lib/apt/lists/lock",
            "var/lib/pacman/sync/core.db",
        ] {
            assert!(is_left_behind(p.as_bytes()), "{p}");
        }
        for p in [
            "var/log",
            "var/cache",
            "var/cache/debconf/config.dat",
            "var/cache/debconf/templates.dat",
            "var/lib/dpkg/status",
            "var/lib/dpkg/info/jq.list",
            "var/lib/dpkg/info/x-old",
            "var/lib/apt/extended_states",
            "var/lib/apt/lists",
            "var/logfile",
            "usr/var/log/x",
            "etc/ld.so.cache",
        ] {
            assert!(!is_left_behind(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn drops_files_keeps_directories_and_whiteouts() {
        let d = tempfile::tempdir().unwrap();
        let u = d.path();
        for dir in [
            "var/log/apt",
            "var/cache/apt/archives/partial",
            "var/cache/debconf",
            "var/lib/dpkg",
            "usr/bin",
        ] {
            fs::create_dir_all(u.join(dir)).unwrap();
        }
        for f in [
            "var/log/apt/history.log",
            "var/cache/apt/pkgcache.bin",
            "var/cache/debconf/config.dat",
            "var/lib/dpkg/status",
            "var/lib/dpkg/status-old",
            "usr/bin/jq",
        ] {
            fs::write(u.join(f), "x").unwrap();
        }
        std::os::unix::fs::symlink("x", u.join("var/log/link")).unwrap();
        assert_eq!(drop_left_behind(u).unwrap(), 4);
        for gone in [
            "var/log/apt/history.log",
            "var/cache/apt/pkgcache.bin",
            "var/lib/dpkg/status-old",
            "var/log/link",
        ] {
            assert!(u.join(gone).symlink_metadata().is_err(), "{gone}");
        }
        for kept in [
            "var/log/apt",
            "var/cache/apt/archives/partial",
            "var/cache/debconf/config.dat",
            "var/lib/dpkg/status",
            "usr/bin/jq",
        ] {
            assert!(u.join(kept).exists(), "{kept}");
        }
    }
}
