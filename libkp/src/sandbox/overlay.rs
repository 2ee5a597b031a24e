//! The root filesystem: a read-only bind of a directory, or an overlay of the
//! layers' checkouts under the environment's upper directory.
//!
//! Overlays are mounted with `userxattr`, so the layers' rootless whiteouts
//! (`user.overlay.whiteout`, "xwhiteouts" in directories marked
//! `user.overlay.opaque=x`) and opaque directories (`user.overlay.opaque=y`)
//! work inside a user namespace. The mount point is `WORK/root`: an empty
//! directory of our own, so mounting there hides nothing a later step reads.
//! When the kernel refuses (no unprivileged overlayfs, old kernels),
//! fuse-overlayfs does the same job from user space.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree, FsMountFlags,
    FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

use super::plan::RootMount;
use super::{Error, OverlayDriver, Result};
use crate::sys;

/// Opens a host path that `plan` resolved, refusing symlinks anywhere in it, so
/// a path swapped for a symlink after the policy check is not followed.
pub fn open_host(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::openat2(
        CWD,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    )
    .map_err(io::Error::from)
}

/// Mounts a detached mount `mnt` on the object `target` refers to.
pub fn attach(mnt: impl AsFd, target: impl AsFd) -> io::Result<()> {
    let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
    move_mount(mnt, "", target, "", flags).map_err(io::Error::from)
}

/// A recursive bind of the host path `src`, detached, read-only if asked.
pub fn clone_tree(src: &Path, ro: bool) -> io::Result<OwnedFd> {
    let fd = open_host(src)?;
    let flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH
        | OpenTreeFlags::AT_RECURSIVE;
    let mnt = open_tree(&fd, "", flags)?;
    if ro {
        sys::mount_setattr(mnt.as_fd(), MountAttrFlags::MOUNT_ATTR_RDONLY.bits() as u64, true)?;
    }
    Ok(mnt)
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io::Error::from)
}

/// Mounts the root and returns an O_PATH descriptor of it.
pub fn mount_root(root: &RootMount) -> Result<OwnedFd> {
    match root {
        RootMount::Bind { src } => {
            let mnt = clone_tree(src, false).map_err(Error::setup("bind root", src))?;
            let target = open_host(src).map_err(Error::setup("open root", src))?;
            attach(&mnt, &target).map_err(Error::setup("mount root on", src))?;
            let fd = open_dir(src).map_err(Error::setup("open root", src))?;
            // Read-only before anything is mounted on it, so a missing mount
            // point is an error rather than a write into the caller's directory.
            sys::mount_setattr(fd.as_fd(), MountAttrFlags::MOUNT_ATTR_RDONLY.bits() as u64, false)
                .map_err(Error::setup("make read-only", src))?;
            Ok(fd)
        }
        RootMount::Overlay {
            lowers,
            upper,
            work,
            driver,
        } => {
            let target = work.join("root");
            match rustix::fs::mkdir(&target, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Error::setup("create overlay mount point", &target)(e.into())),
            }
            let kernel = match driver {
                OverlayDriver::Fuse => None,
                _ => Some(mount_kernel(lowers, upper, work, &target)),
            };
            match kernel {
                Some(Ok(())) => {}
                Some(Err(e)) if *driver == OverlayDriver::Kernel || !fuse_available() => return Err(e),
                _ => {
                    mount_fuse(lowers, upper, work, &target)?;
                    // pivot_root moves every process whose root is the old root
                    // onto the new one, which for the fuse daemon is its own
                    // mount: it would deadlock on itself. The daemon keeps this
                    // mount namespace; the sandbox continues in a copy of it.
                    sys::unshare_mount_namespace()
                        .map_err(Error::setup("unshare mount namespace after mounting", &target))?;
                }
            }
            open_dir(&target).map_err(Error::setup("open root", target))
        }
    }
}

/// Escapes a path for overlayfs' colon-separated `lowerdir` list.
fn escape_lower(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "\\\\").replace(':', "\\:")
}

fn mount_kernel(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let step = |what: &'static str| Error::setup(what, target);
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| step("open overlayfs for")(e.into()))?;
    // `lowerdir+` (Linux 6.8) takes one layer per call, so neither the page-size
    // limit of the joined option nor `:` and `,` in paths get in the way.
    let mut one_by_one = true;
    for (i, lower) in lowers.iter().enumerate() {
        match fsconfig_set_string(&fs, "lowerdir+", lower) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) if i == 0 => {
                one_by_one = false;
                break;
            }
            Err(e) => return Err(Error::setup("overlay lowerdir", lower)(e.into())),
        }
    }
    if !one_by_one {
        let joined: Vec<String> = lowers.iter().map(|l| escape_lower(l)).collect();
        fsconfig_set_string(&fs, "lowerdir", joined.join(":"))
            .map_err(|e| Error::setup("overlay lowerdir", &lowers[0])(e.into()))?;
    }
    fsconfig_set_string(&fs, "upperdir", upper).map_err(|e| Error::setup("overlay upperdir", upper)(e.into()))?;
    fsconfig_set_string(&fs, "workdir", work).map_err(|e| Error::setup("overlay workdir", work)(e.into()))?;
    fsconfig_set_flag(&fs, "userxattr").map_err(|e| step("overlay userxattr for")(e.into()))?;
    fsconfig_create(&fs).map_err(|e| step("create overlay for")(e.into()))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| step("mount overlay on")(e.into()))?;
    let t = open_dir(target).map_err(step("open"))?;
    attach(&mnt, &t).map_err(step("mount overlay on"))
}

fn fuse_available() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("fuse-overlayfs").is_file()))
        .unwrap_or(false)
}

fn mount_fuse(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let joined: Vec<String> = lowers.iter().map(|l| escape_lower(l)).collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        joined.join(":"),
        upper.display(),
        work.join("fuse").display()
    );
    if let Err(e) = std::fs::create_dir(work.join("fuse")) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(Error::setup("create fuse-overlayfs work directory", work.join("fuse"))(
                e,
            ));
        }
    }
    // fuse-overlayfs daemonises once mounted; the daemon stays in our PID
    // namespace and dies with it.
    let out = Command::new("fuse-overlayfs")
        .arg("-o")
        .arg(opts)
        .arg(target)
        .output()
        .map_err(Error::setup("run fuse-overlayfs for", target))?;
    if !out.status.success() {
        return Err(Error::Inside(format!(
            "fuse-overlayfs on {} failed ({}): {}",
            target.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_escaping() {
        assert_eq!(escape_lower(Path::new("/a:b\\c")), "/a\\:b\\\\c");
    }
}
