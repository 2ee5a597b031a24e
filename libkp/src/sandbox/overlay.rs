//! The root filesystem: a read-only bind of a directory, or an overlay of the
//! layers' checkouts under the environment's upper directory.
//!
//! Overlays are mounted with `userxattr`, so the layers' rootless whiteouts
//! (`user.overlay.whiteout`, "xwhiteouts" in directories marked
//! `user.overlay.opaque=x`) and opaque directories (`user.overlay.opaque=y`)
//! work inside a user namespace. The mount point is `WORK/root`: an empty
//! directory of our own, so mounting there hides nothing a later step reads
//! (host root's overlay from descriptors goes over `/`, for PID 1 to pivot
//! into at once).
//! When the kernel refuses (no unprivileged overlayfs, old kernels),
//! fuse-overlayfs does the same job from user space.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
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
        sys::mount_setattr(mnt.as_fd(), RDONLY, None, true)?;
    }
    Ok(mnt)
}

const RDONLY: u64 = MountAttrFlags::MOUNT_ATTR_RDONLY.bits() as u64;

/// [`clone_tree`], made by host root for a sandbox whose user namespace is
/// `userns`: an idmapped mount, so ids on disk read inside as they are on
/// disk. `required` says whether a file system that cannot be idmapped
/// (devices, some network file systems) is an error, or gives a plain bind
/// whose owners show as the overflow id inside.
pub fn clone_idmapped(src: &Path, ro: bool, userns: BorrowedFd<'_>, required: bool) -> io::Result<OwnedFd> {
    let mnt = clone_tree(src, false)?;
    let ro_bits = if ro { RDONLY } else { 0 };
    match sys::mount_setattr(mnt.as_fd(), ro_bits, Some(userns), true) {
        Ok(()) => Ok(mnt),
        Err(e) if required => Err(io::Error::new(
            e.kind(),
            format!("idmapped mount (root's environments need Linux 5.19 or later and a file system that supports them): {e}"),
        )),
        Err(_) => {
            if ro {
                sys::mount_setattr(mnt.as_fd(), RDONLY, None, true)?;
            }
            Ok(mnt)
        }
    }
}

/// The nearest directory holding both the upper and the work directory:
/// overlayfs wants them on one mount, so host root idmaps it as one.
pub fn shared_parent(upper: &Path, work: &Path) -> PathBuf {
    let mut common = PathBuf::new();
    for (a, b) in upper.components().zip(work.components()) {
        if a != b {
            break;
        }
        common.push(a);
    }
    common
}

impl RootMount {
    /// The host directories the root is made of, in the order host root
    /// hands their idmapped mounts to the sandbox: the directory, or the
    /// lowers then [`shared_parent`] of upper and work.
    pub fn host_sources(&self) -> Vec<PathBuf> {
        match self {
            RootMount::Bind { src } => vec![src.clone()],
            RootMount::Overlay {
                lowers, upper, work, ..
            } => {
                let mut v = lowers.clone();
                v.push(shared_parent(upper, work));
                v
            }
        }
    }
}

/// A path naming what `fd` refers to through /proc/self/fd, plus `rest`:
/// usable after setresuid, when the sandbox can no longer search host
/// root's directories on the way (the host's /proc is still mounted then).
fn via_fd(fd: &OwnedFd, rest: &Path) -> PathBuf {
    let base = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    if rest.as_os_str().is_empty() {
        base
    } else {
        base.join(rest)
    }
}

/// Host root's sandbox process takes uid and gid 0 of its user namespace (the
/// first ids of the `karapace` range): until then it is still host root's
/// uid, which the namespace does not map.
pub fn become_shifted_root() -> Result<()> {
    let zero = Some(rustix::process::Gid::ROOT);
    rustix::thread::set_thread_res_gid(zero, zero, zero).map_err(|e| Error::setup("setresgid", "0")(e.into()))?;
    let zero = Some(rustix::process::Uid::ROOT);
    rustix::thread::set_thread_res_uid(zero, zero, zero).map_err(|e| Error::setup("setresuid", "0")(e.into()))
}

/// Host root's sandbox: attaches the idmapped mounts of `given` (in
/// [`RootMount::host_sources`] order) over their own paths while this
/// process still has host root's uid, keeps a descriptor of each, takes the
/// shifted uid 0 (so overlayfs copies up as the environment's root), and
/// mounts the root through those descriptors. Kernel overlayfs only.
pub fn mount_root_idmapped(root: &RootMount, given: &mut std::collections::VecDeque<OwnedFd>) -> Result<OwnedFd> {
    if let RootMount::Overlay {
        upper,
        work,
        driver: OverlayDriver::Kernel | OverlayDriver::Auto,
        ..
    } = root
    {
        if let Some(mnt) = mount_idmapped_by_fd(&root.host_sources(), upper, work, given)? {
            return Ok(mnt);
        }
    }
    mount_idmapped_by_path(root, given, None)
}

/// [`mount_root_idmapped`] with the layers taken by path (through
/// /proc/self/fd), the overlay mounted on `target` (default `WORK/root`):
/// the OCI backend (oci/run.rs) mounts it as its bundle's rootfs.
pub fn mount_idmapped_by_path(
    root: &RootMount,
    given: &mut std::collections::VecDeque<OwnedFd>,
    target: Option<&Path>,
) -> Result<OwnedFd> {
    let mut held = Vec::new();
    for src in root.host_sources() {
        let mnt = given
            .pop_front()
            .ok_or_else(|| Error::Inside(format!("no idmapped mount for {}", src.display())))?;
        let target = open_host(&src).map_err(Error::setup("open", &src))?;
        attach(&mnt, &target).map_err(Error::setup("mount idmapped", &src))?;
        held.push(open_dir(&src).map_err(Error::setup("open", &src))?);
    }
    become_shifted_root()?;
    match root {
        RootMount::Bind { .. } => Ok(held.pop().expect("one source")),
        RootMount::Overlay {
            upper, work, driver, ..
        } => {
            if *driver == OverlayDriver::Fuse {
                return Err(Error::Inside(
                    "root's environments run on kernel overlayfs only (fuse-overlayfs cannot use idmapped layers)"
                        .into(),
                ));
            }
            let common = held.pop().expect("shared parent");
            let parent = shared_parent(upper, work);
            let rel = |p: &Path| p.strip_prefix(&parent).unwrap_or(p).to_path_buf();
            let (upper, work) = (via_fd(&common, &rel(upper)), via_fd(&common, &rel(work)));
            let lowers: Vec<PathBuf> = held.iter().map(|fd| via_fd(fd, Path::new(""))).collect();
            let target = target.map_or_else(|| work.join("root"), Path::to_path_buf);
            match rustix::fs::mkdir(&target, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Error::setup("create overlay mount point", &target)(e.into())),
            }
            mount_kernel(&lowers, &upper, &work, &target)?;
            open_dir(&target).map_err(Error::setup("open root", target))
        }
    }
}

/// Linux 6.13 and later take overlayfs layers as descriptors: the overlay is
/// made from host root's idmapped mounts themselves (the first `lowers` of
/// `given`, then the one holding upper and work; `sources` their host
/// paths), each attached over its own path first (the kernel takes a layer
/// only from a mount of a namespace we administer), with no path through
/// /proc, and mounted over `/` for PID 1 to pivot into. `None`, with `given`
/// untouched, when the kernel takes layers by path only.
fn mount_idmapped_by_fd(
    sources: &[PathBuf],
    upper: &Path,
    work: &Path,
    given: &mut std::collections::VecDeque<OwnedFd>,
) -> Result<Option<OwnedFd>> {
    let lowers = sources.len() - 1;
    let step = |what: &'static str| move |e: rustix::io::Errno| Error::setup(what, "overlay")(e.into());
    if given.len() <= lowers {
        return Err(Error::Inside("no idmapped mount for the upper directory".into()));
    }
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(step("open overlayfs for"))?;
    for (i, lower) in given.iter().take(lowers).enumerate() {
        match rustix::mount::fsconfig_set_fd(&fs, "lowerdir+", lower) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) if i == 0 => return Ok(None),
            Err(e) => return Err(step("overlay lowerdir")(e)),
        }
    }
    let held: Vec<OwnedFd> = given.drain(..=lowers).collect();
    for (mnt, src) in held.iter().zip(sources) {
        let target = open_host(src).map_err(Error::setup("open", src))?;
        attach(mnt, &target).map_err(Error::setup("mount idmapped", src))?;
    }
    let common = held.last().expect("the shared parent");
    // As the environment's root from here, so copy-ups are its root's.
    become_shifted_root()?;
    let parent = shared_parent(upper, work);
    let beneath = |p: &Path| {
        let rel = p.strip_prefix(&parent).unwrap_or(p);
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        rustix::fs::openat2(
            common,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )
        .map_err(|e| Error::setup("open", p)(e.into()))
    };
    let (upper_fd, work_fd) = (beneath(upper)?, beneath(work)?);
    rustix::mount::fsconfig_set_fd(&fs, "upperdir", &upper_fd).map_err(step("overlay upperdir"))?;
    rustix::mount::fsconfig_set_fd(&fs, "workdir", &work_fd).map_err(step("overlay workdir"))?;
    fsconfig_set_flag(&fs, "userxattr").map_err(step("overlay userxattr for"))?;
    fsconfig_create(&fs).map_err(step("create"))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).map_err(step("mount"))?;
    let top = open_dir(Path::new("/")).map_err(Error::setup("open", "/"))?;
    attach(&mnt, &top).map_err(Error::setup("mount the overlay on", "/"))?;
    Ok(Some(mnt))
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io::Error::from)
}

/// Why [`mount_root`] did not mount the root.
pub enum Refused {
    /// Only fuse-overlayfs would do, and the caller does not allow it here.
    NeedsFuse,
    Error(Error),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused::Error(e)
    }
}

/// Mounts the root and returns an O_PATH descriptor of it; fuse-overlayfs
/// (as the `driver` asks or as the fallback) only when `allow_fuse`.
pub fn mount_root(root: &RootMount, allow_fuse: bool) -> std::result::Result<OwnedFd, Refused> {
    match root {
        RootMount::Bind { src } => {
            let mnt = clone_tree(src, false).map_err(Error::setup("bind root", src))?;
            let target = open_host(src).map_err(Error::setup("open root", src))?;
            attach(&mnt, &target).map_err(Error::setup("mount root on", src))?;
            let fd = open_dir(src).map_err(Error::setup("open root", src))?;
            // Read-only before anything is mounted on it, so a missing mount
            // point is an error rather than a write into the caller's directory.
            sys::mount_setattr(fd.as_fd(), RDONLY, None, false).map_err(Error::setup("make read-only", src))?;
            Ok(fd)
        }
        RootMount::Overlay {
            lowers,
            upper,
            work,
            driver,
        } => {
            let target = work.join("root");
            match rustix::fs::mkdir(&target, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Error::setup("create overlay mount point", &target)(e.into()).into()),
            }
            let kernel = match driver {
                OverlayDriver::Fuse => None,
                _ => Some(mount_kernel(lowers, upper, work, &target)),
            };
            match kernel {
                Some(Ok(())) => {}
                Some(Err(e)) if *driver == OverlayDriver::Kernel || !fuse_available() => return Err(e.into()),
                _ if !allow_fuse => return Err(Refused::NeedsFuse),
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
            Ok(open_dir(&target).map_err(Error::setup("open root", target))?)
        }
    }
}

/// Escapes a path for overlayfs' colon-separated `lowerdir` list.
fn escape_lower(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "\\\\").replace(':', "\\:")
}

pub(super) fn mount_kernel(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
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
    // The daemon runs in the foreground as the mounter's child, outside the
    // sandbox's PID namespace (nothing inside can reach its /proc entries),
    // with none of the caller's variables, and gets SIGTERM when the mounter
    // ends: it unmounts and exits with the sandbox.
    let mut log = tempfile::tempfile().map_err(Error::setup("create a log for", target))?;
    let mut cmd = Command::new("fuse-overlayfs");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("-f")
        .arg("-o")
        .arg(opts)
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log.try_clone().map_err(Error::setup("create a log for", target))?);
    let mut child = sys::spawn_tied(&mut cmd).map_err(Error::setup("run fuse-overlayfs for", target))?;
    let parent = target.parent().unwrap_or(Path::new("/"));
    let dev = |p: &Path| rustix::fs::stat(p).map(|st| st.st_dev).ok();
    let before = dev(parent);
    // Mounted once the target is on a file system of its own.
    for _ in 0..10_000 {
        if let Ok(Some(status)) = child.try_wait() {
            use std::io::{Read, Seek};
            let mut msg = String::new();
            let _ = log.rewind().and_then(|()| log.read_to_string(&mut msg));
            return Err(Error::Inside(format!(
                "fuse-overlayfs on {} failed ({status}): {}",
                target.display(),
                msg.trim()
            )));
        }
        if dev(target) != before {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _ = child.kill();
    Err(Error::Inside(format!(
        "fuse-overlayfs on {} did not mount within 10 s",
        target.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_escaping() {
        assert_eq!(escape_lower(Path::new("/a:b\\c")), "/a\\:b\\\\c");
    }
}
