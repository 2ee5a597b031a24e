//! Running a plan through an OCI runtime. Three processes:
//!
//! 1. the caller: makes the bundle directory, blocks the forwarded signals,
//!    forks the holder and supervises it as the native caller supervises
//!    its sandbox (init.rs), then removes the bundle;
//! 2. the holder: makes the user namespace the plan's map describes (a
//!    short-lived child creates it and the holder writes its map, then
//!    joins it, so root and rootless take one path), makes host root's
//!    idmapped mounts of the layers and binds before it joins, mounts the
//!    root over the bundle's `rootfs` in a private mount namespace, writes
//!    `config.json` from the plan, and execs `RUNTIME run`;
//! 3. the runtime and the command it starts in the bundle's own namespaces.
//!
//! The runtime runs as root of the holder's user namespace, never as host
//! root (host root's environments run in the `karapace` range, as native
//! ones do), so it runs rootless: the overlay and every mount live in
//! namespaces that end with it, and nothing is left on the host.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{mount_change, MountPropagationFlags};
use rustix::process::Pid;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use super::super::plan::{Mount, Plan, RootMount};
use super::super::{idmap, init, overlay, Error, OverlayDriver, Result};
use super::runtime::Runtime;
use super::spec;
use crate::sys;

/// Runs the plan through `rt` and returns the command's exit status (128+N
/// when killed by signal N, 127 not found, 126 not executable). Like
/// `sandbox::run`, call it from a single-threaded process.
pub fn run(plan: &Plan, rt: &Runtime) -> Result<i32> {
    run_with(plan, rt, true)
}

/// [`run`] with the runtime's own output on failure kept back (the probe).
pub(super) fn run_quiet(plan: &Plan, rt: &Runtime) -> Result<i32> {
    run_with(plan, rt, false)
}

fn run_with(plan: &Plan, rt: &Runtime, loud: bool) -> Result<i32> {
    if plan.cgroup.is_some() {
        // A delegated cgroup v2 is the native sandbox's way; the runtime
        // runs in a user namespace, which cannot apply limits through it.
        return Err(Error::Limits {
            reason: "the oci backend runs the runtime rootless, which cannot apply limits on this host (it applies them for host root with cgroup v1)".into(),
        });
    }
    if let RootMount::Overlay {
        driver: OverlayDriver::Fuse,
        ..
    } = plan.root
    {
        return Err(Error::Invalid {
            what: "--overlay fuse".into(),
            reason: "the oci backend mounts kernel overlayfs only".into(),
        });
    }
    let bundle = tempfile::Builder::new()
        .prefix("karapace-oci-")
        .tempdir()
        .map_err(Error::setup("create bundle directory in", std::env::temp_dir()))?;
    let dir = bundle.path().to_path_buf();
    std::fs::create_dir(dir.join("rootfs")).map_err(Error::setup("create", dir.join("rootfs")))?;
    if plan.idmap.idmapped {
        // Host root's holder is uid 0 of the `karapace` range, which owns
        // the bundle (the runtime writes its state there).
        let (uid, gid) = (plan.idmap.uid[0].outside, plan.idmap.gid[0].outside);
        for p in [dir.clone(), dir.join("rootfs")] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).map_err(Error::setup("chown", &p))?;
        }
    }
    // The container's name, and its cgroups' (the runtime applies the
    // limits of config.json in them: they are its own cgroup's child of
    // that name, made here by host root and given to the namespace's root).
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (uid, gid) = (plan.idmap.uid[0].outside, plan.idmap.gid[0].outside);
    let cgroups = CgroupsMade(super::super::cgroup::make_v1(&plan.runtime_cgroups, &name, uid, gid)?);
    let (err_r, err_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::setup("pipe", "")(e.into()))?;
    // The holder, and so the runtime, start in those cgroups; the caller
    // goes back to its own at once.
    super::super::cgroup::join_v1(&cgroups.0)?;
    let back = || super::super::cgroup::join_v1(plan.runtime_cgroups.iter().map(|c| &c.parent));
    let set = init::watched();
    let old = sys::block_signals(&set).map_err(Error::setup("block signals", ""))?;
    let pid = match sys::fork() {
        Err(e) => {
            let _ = sys::set_signal_mask(&old);
            let _ = back();
            return Err(Error::setup("fork", "")(e));
        }
        Ok(0) => {
            drop(err_r);
            // Nothing of the caller's reaches the bundle's processes.
            let e = match sys::close_all_except(&[0, 1, 2, err_w.as_raw_fd()]) {
                Ok(()) => holder(plan, rt, &dir, &name, &old, loud),
                Err(e) => Error::setup("close the caller's descriptors", "")(e),
            };
            let _ = rustix::io::write(&err_w, e.to_string().as_bytes());
            sys::exit_now(125)
        }
        Ok(pid) => pid,
    };
    drop(err_w);
    if let Err(e) = back() {
        let _ = rustix::process::kill_process(
            Pid::from_raw(pid).expect("a child's pid"),
            rustix::process::Signal::KILL,
        );
        let _ = rustix::process::waitpid(Pid::from_raw(pid), rustix::process::WaitOptions::empty());
        let _ = sys::set_signal_mask(&old);
        return Err(e);
    }
    let child = Pid::from_raw(pid).expect("fork returns a positive pid");
    // A probe passes no signal on: they stay pending until it ends, and
    // then act on the caller as they would have (a `stop` during the probe
    // ends the exec, rather than failing the probe).
    let code = match loud {
        true => init::supervise(child, &set, false),
        false => init::supervise(child, &sys::SigSet::of(&[libc::SIGCHLD]), false),
    };
    let _ = sys::set_signal_mask(&old);
    let mut msg = String::new();
    let _ = std::fs::File::from(err_r).read_to_string(&mut msg);
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    drop(bundle);
    drop(cgroups);
    if !msg.is_empty() {
        return Err(Error::Inside(msg));
    }
    // The runtime logs an error only when it fails itself (the command's
    // status is not one); its last, without the logger's decoration.
    let why = log
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("level=fatal"))
        .filter_map(|l| l.split_once("msg=").map(|(_, m)| m.trim_matches('"').to_string()))
        .next_back();
    if let (true, Some(why)) = (code != 0, why) {
        return Err(Error::Inside(format!(
            "{} failed (exit status {code}): {why}",
            rt.path.display()
        )));
    }
    Ok(code)
}

/// The runtime's cgroups, removed when the run ends, however it ends.
struct CgroupsMade(Vec<PathBuf>);

impl Drop for CgroupsMade {
    fn drop(&mut self) {
        super::super::cgroup::remove_v1(&self.0);
    }
}

/// Creates a user namespace in a short-lived child, writes its map, and
/// returns a descriptor of it.
fn make_userns(plan: &Plan) -> Result<OwnedFd> {
    let pipe =
        || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::setup("pipe", "")(e.into()));
    let ((ready_r, ready_w), (done_r, done_w)) = (pipe()?, pipe()?);
    let donor = sys::fork().map_err(Error::setup("fork", ""))?;
    if donor == 0 {
        drop((ready_r, done_w));
        let ok = sys::unshare_namespaces(UnshareFlags::NEWUSER).is_ok();
        let _ = rustix::io::write(&ready_w, if ok { b"y" } else { b"n" });
        let mut byte = [0u8];
        let _ = rustix::io::read(&done_r, &mut byte);
        sys::exit_now(0);
    }
    drop((ready_w, done_r));
    let result = (|| {
        let mut byte = [0u8];
        if rustix::io::read(&ready_r, &mut byte) != Ok(1) || byte[0] != b'y' {
            return Err(Error::Inside("create a user namespace: refused by the kernel".into()));
        }
        idmap::write(donor, &plan.idmap)?;
        let path = format!("/proc/{donor}/ns/user");
        rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::setup("open", &path)(e.into()))
    })();
    drop(done_w);
    let _ = rustix::process::waitpid(Pid::from_raw(donor), rustix::process::WaitOptions::empty());
    result
}

/// The holder's work; returns only on failure. After the mounts it makes
/// the PID namespace the bundle runs in and forks its PID 1, which mounts
/// that namespace's /proc (bound into the bundle), starts the runtime and reaps; the
/// holder relays signals to it and exits with its status.
fn holder(plan: &Plan, rt: &Runtime, bundle: &Path, name: &str, old: &sys::SigSet, loud: bool) -> Error {
    let mut cmd = match prepare(plan, rt, bundle, name, loud) {
        Err(e) => return e,
        Ok(cmd) => cmd,
    };
    if let Err(e) = sys::unshare_namespaces(UnshareFlags::NEWPID) {
        return Error::setup("unshare PID namespace", "")(e);
    }
    let set = init::watched();
    let pid1 = match sys::fork() {
        Err(e) => return Error::setup("fork", "")(e),
        Ok(0) => {
            // Nothing inside may read this fork of the caller's memory.
            let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
            // Over the host's, in this private mount namespace: the runtime
            // writes its child's maps through /proc by the pid it sees.
            let proc = Path::new("/proc");
            let flags = rustix::mount::MountFlags::NOSUID
                | rustix::mount::MountFlags::NODEV
                | rustix::mount::MountFlags::NOEXEC;
            if let Err(e) = rustix::mount::mount("proc", proc, "proc", flags, None) {
                return Error::setup("mount proc on", proc)(e.into());
            }
            let _ = sys::set_signal_mask(old);
            let spawned = sys::spawn_tied(&mut cmd);
            let _ = sys::block_signals(&set);
            match spawned {
                Err(e) => return Error::setup("run", &rt.path)(e),
                Ok(child) => {
                    let pid = Pid::from_raw(child.id() as i32).expect("a child's pid");
                    sys::exit_now(init::supervise(pid, &set, true))
                }
            }
        }
        Ok(pid) => pid,
    };
    let pid1 = Pid::from_raw(pid1).expect("fork returns a positive pid");
    sys::exit_now(init::supervise(pid1, &set, false))
}

fn prepare(plan: &Plan, rt: &Runtime, bundle: &Path, name: &str, loud: bool) -> Result<std::process::Command> {
    let userns = make_userns(plan)?;
    // Host root's view of the store's owners, for the bundle's namespace:
    // idmapped mounts made while this process is still host root.
    let mut layers = VecDeque::new();
    let mut binds = Vec::new();
    if plan.idmap.idmapped {
        for src in plan.root.host_sources() {
            let mnt =
                overlay::clone_idmapped(&src, false, userns.as_fd(), true).map_err(Error::setup("idmap", &src))?;
            layers.push_back(mnt);
        }
        for m in plan.mounts.iter().filter_map(Mount::idmapped_bind) {
            if let Mount::Bind { src, ro, .. } = m {
                let mnt =
                    overlay::clone_idmapped(src, *ro, userns.as_fd(), false).map_err(Error::setup("idmap", src))?;
                binds.push((src.clone(), mnt));
            }
        }
    }
    rustix::thread::move_into_link_name_space(userns.as_fd(), Some(LinkNameSpaceType::User))
        .map_err(|e| Error::setup("join user namespace", "")(e.into()))?;
    sys::unshare_namespaces(UnshareFlags::NEWNS).map_err(Error::setup("unshare mount namespace", ""))?;
    mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
        .map_err(|e| Error::setup("make mounts private", "/")(e.into()))?;
    for (src, mnt) in &binds {
        let target = overlay::open_host(src).map_err(Error::setup("open", src))?;
        overlay::attach(mnt, &target).map_err(Error::setup("mount idmapped", src))?;
    }
    let rootfs = bundle.join("rootfs");
    let rootfs = match &plan.root {
        RootMount::Bind { src } => {
            if plan.idmap.idmapped {
                overlay::mount_idmapped_by_path(&plan.root, &mut layers, None)?;
            }
            src.clone()
        }
        RootMount::Overlay {
            lowers, upper, work, ..
        } => {
            if plan.idmap.idmapped {
                overlay::mount_idmapped_by_path(&plan.root, &mut layers, Some(&rootfs))?;
            } else {
                overlay::mount_kernel(lowers, upper, work, &rootfs).map_err(|e| {
                    Error::Inside(format!(
                        "{e} (the oci backend needs kernel overlayfs in a user namespace)"
                    ))
                })?;
            }
            rootfs
        }
    };
    let root_fd = rustix::fs::open(
        &rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::setup("open", &rootfs)(e.into()))?;
    check_command(plan, &root_fd)?;
    let present = |dst: &Path| {
        let rel = dst.strip_prefix("/").unwrap_or(dst);
        rustix::fs::openat2(
            &root_fd,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT,
        )
        .is_ok()
    };
    let terminal = rustix::termios::isatty(rustix::stdio::stdin()) && rustix::termios::isatty(rustix::stdio::stdout());
    let config = spec::spec(plan, &rootfs, Path::new("/proc"), terminal, &present)?;
    let path = bundle.join("config.json");
    config
        .save(&path)
        .map_err(|e| Error::Inside(format!("write {}: {e}", path.display())))?;
    let mut cmd = std::process::Command::new(&rt.path);
    // The runtime's log (warnings it prints on every rootless run) goes to
    // the bundle; its errors are shown when it fails.
    cmd.arg("--log")
        .arg(bundle.join("log"))
        .arg("--root")
        .arg(bundle.join("state"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(name);
    if !loud {
        // Nor the caller's input: the runtime relays stdin, and would take it.
        cmd.stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
    }
    Ok(cmd)
}

/// Looks the command up in the root as the native sandbox does, so a
/// missing or non-executable command gets the native statuses (127, 126)
/// and message rather than the runtime's own failure.
fn check_command(plan: &Plan, root: &OwnedFd) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let cmd = plan.argv[0].as_bytes();
    let candidates: Vec<PathBuf> = if cmd.contains(&b'/') {
        vec![PathBuf::from(&plan.argv[0])]
    } else {
        let path = plan
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_bytes())
            .unwrap_or(b"");
        path.split(|&b| b == b':')
            .map(|d| Path::new(std::ffi::OsStr::from_bytes(d)).join(std::ffi::OsStr::from_bytes(cmd)))
            .collect()
    };
    // The runtime would create a missing working directory; the native
    // sandbox refuses it, and so does this one.
    let rel_cwd = plan.cwd.strip_prefix("/").unwrap_or(&plan.cwd);
    if !rel_cwd.as_os_str().is_empty() {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::openat2(root, rel_cwd, flags, Mode::empty(), ResolveFlags::IN_ROOT)
            .map_err(|e| Error::Inside(format!("chdir {}: {}", plan.cwd.display(), std::io::Error::from(e))))?;
    }
    let mut denied = false;
    for c in &candidates {
        let at = if c.is_absolute() { c.clone() } else { plan.cwd.join(c) };
        // Under a bind, the command is the host's file (the runtime binds
        // it after this check); elsewhere it is the root's.
        let bound = plan.mounts.iter().rev().find_map(|m| match m {
            Mount::Bind { src, dst, .. } => at.strip_prefix(dst).ok().map(|rest| src.join(rest)),
            _ => None,
        });
        let rel = at.strip_prefix("/").unwrap_or(&at);
        let flags = OFlags::PATH | OFlags::CLOEXEC;
        let opened = match &bound {
            Some(host) => rustix::fs::open(host, flags, Mode::empty()),
            None => rustix::fs::openat2(root, rel, flags, Mode::empty(), ResolveFlags::IN_ROOT),
        };
        let Ok(fd) = opened else {
            continue;
        };
        match rustix::fs::fstat(&fd) {
            Ok(st)
                if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
                    && st.st_mode & 0o111 != 0 =>
            {
                return Ok(())
            }
            _ => denied = true,
        }
    }
    let name = String::from_utf8_lossy(cmd);
    let (code, reason) = match denied {
        true => (126, "Permission denied"),
        false if cmd.contains(&b'/') => (127, "No such file or directory"),
        false => (127, "command not found"),
    };
    let msg = format!("kp-sandbox: {name}: {reason}\n");
    let _ = rustix::io::write(rustix::stdio::stderr(), msg.as_bytes());
    sys::exit_now(code)
}
