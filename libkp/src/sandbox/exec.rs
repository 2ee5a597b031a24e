//! Executing a plan. Three processes, as in bubblewrap:
//!
//! 1. the caller (outside): clones the sandbox's first process into new
//!    namespaces, writes its id maps (and cgroup), then supervises it;
//! 2. PID 1 inside: mounts the root and everything on it, pivots, sets the
//!    hostname and `no_new_privs`, forks the command and reaps (init.rs);
//! 3. the command: new session (and pty), cwd, exec.
//!
//! Two pipes tie them: "ready" (maps written, go on) and "errors" (close-on-
//! exec: a setup failure inside is written there; end of file without a byte
//! means the command was exec'd). Every forwardable signal is blocked from
//! before the clone to the exec, so none is lost and PID 1 gets them even
//! though it installs no handler.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, mount_change, FsMountFlags, FsOpenFlags,
    MountAttrFlags, MountPropagationFlags, UnmountFlags,
};
use rustix::process::{Pid, Signal};

use super::plan::{Kind, Missing, Mount, Plan};
use super::{cgroup, idmap, init, overlay, tty, Error, Result};
use crate::sys::{self, CStrArray, SigSet};

/// The command, prepared before forking so the child only makes system calls.
struct Prepared {
    argv: CStrArray,
    envp: CStrArray,
    /// Paths to try in order (PATH search done here, with the sandbox's PATH).
    candidates: Vec<CString>,
    name: String,
}

fn cstring(s: &OsStr, what: &str) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::Invalid {
        what: format!("{what} {s:?}"),
        reason: "contains a NUL byte".into(),
    })
}

impl Prepared {
    fn new(plan: &Plan) -> Result<Prepared> {
        let argv: Vec<CString> = plan
            .argv
            .iter()
            .map(|a| cstring(a, "argument"))
            .collect::<Result<_>>()?;
        let mut envp = Vec::new();
        for (k, v) in &plan.env {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            envp.push(cstring(&kv, "variable")?);
        }
        let cmd = plan.argv[0].as_bytes();
        let candidates = if cmd.contains(&b'/') {
            vec![argv[0].clone()]
        } else {
            let path = plan
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.as_bytes())
                .unwrap_or(b"");
            path.split(|&b| b == b':')
                .map(|dir| {
                    let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
                    let mut full = dir.to_vec();
                    full.push(b'/');
                    full.extend_from_slice(cmd);
                    cstring(OsStr::from_bytes(&full), "command")
                })
                .collect::<Result<_>>()?
        };
        Ok(Prepared {
            argv: CStrArray::new(argv),
            envp: CStrArray::new(envp),
            candidates,
            name: String::from_utf8_lossy(cmd).into_owned(),
        })
    }
}

/// Runs the plan and returns the command's exit status (128+N when killed by
/// signal N, 127 when not found, 126 when not executable).
///
/// The calling process must be single-threaded: the sandbox's processes are
/// forked from it and use the allocator before they exec.
pub fn run(plan: &Plan) -> Result<i32> {
    let prepared = Prepared::new(plan)?;
    let set = init::watched();
    let old = sys::block_signals(&set).map_err(Error::setup("block signals", ""))?;
    let result = run_blocked(plan, &prepared, &set, &old);
    let _ = sys::set_signal_mask(&old);
    result
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::setup("pipe", "")(e.into()))
}

fn run_blocked(plan: &Plan, prepared: &Prepared, set: &SigSet, old: &SigSet) -> Result<i32> {
    let pty = tty::open_if_terminal().map_err(Error::setup("open pseudo-terminal", "/dev/ptmx"))?;
    let (ready_r, ready_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let flags = plan.namespaces.iter().fold(0, |f, ns| f | ns.clone_flag());
    let pid = sys::clone_fork(flags).map_err(Error::setup("clone namespaces", ""))?;
    if pid == 0 {
        drop((ready_w, err_r));
        let slave = pty.map(|p| p.slave);
        let code = inside(plan, prepared, ready_r, err_w, set, old, slave);
        sys::exit_now(code);
    }
    drop((ready_r, err_w));
    let child = Pid::from_raw(pid).expect("clone returned a positive pid");
    let outside = || -> Result<Option<PathBuf>> {
        idmap::write(pid, &plan.idmap)?;
        plan.cgroup.as_ref().map(|cg| cgroup::enter(cg, pid)).transpose()
    };
    let cgroup_dir = match outside() {
        Ok(dir) => dir,
        Err(e) => {
            let _ = rustix::process::kill_process(child, Signal::KILL);
            let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
            return Err(e);
        }
    };
    let _ = rustix::io::write(&ready_w, b"1");
    drop(ready_w);
    let mut msg = Vec::new();
    let _ = File::from(err_r).read_to_end(&mut msg);
    let status = if !msg.is_empty() {
        let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
        Err(Error::Inside(String::from_utf8_lossy(&msg).trim_end().to_string()))
    } else {
        match pty {
            Some(pty) => tty::relay(pty, child, set).map_err(Error::setup("relay terminal", "/dev/ptmx")),
            None => Ok(init::supervise(child, set, false)),
        }
    };
    if let Some(dir) = cgroup_dir {
        let _ = std::fs::remove_dir(dir);
    }
    status
}

/// The sandbox's first process: PID 1 of the new PID namespace.
fn inside(
    plan: &Plan,
    prepared: &Prepared,
    ready: OwnedFd,
    err: OwnedFd,
    set: &SigSet,
    old: &SigSet,
    slave: Option<OwnedFd>,
) -> i32 {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    let mut byte = [0u8];
    if !matches!(rustix::io::read(&ready, &mut byte), Ok(1)) {
        return 125; // the caller gave up (its error is reported there)
    }
    drop(ready);
    let umask = rustix::process::umask(Mode::empty());
    if let Err(e) = setup(plan) {
        let _ = write_all(&err, e.to_string().as_bytes());
        return 125;
    }
    let pid = match sys::fork() {
        Ok(pid) => pid,
        Err(e) => {
            let _ = write_all(&err, format!("fork the command: {e}").as_bytes());
            return 125;
        }
    };
    if pid == 0 {
        command(plan, prepared, &err, old, umask, slave.as_ref());
    }
    drop((err, slave));
    let child = Pid::from_raw(pid).expect("fork returned a positive pid");
    init::supervise(child, set, true)
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = rustix::io::write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

/// The command's process: restore what the sandbox changed, then exec.
fn command(plan: &Plan, p: &Prepared, err: &OwnedFd, old: &SigSet, umask: Mode, slave: Option<&OwnedFd>) -> ! {
    let _ = sys::set_signal_mask(old);
    sys::default_signal(libc::SIGPIPE);
    rustix::process::umask(umask);
    let session = match slave {
        Some(s) => tty::attach_slave(s),
        // A session of its own keeps the command away from the caller's
        // terminal: it cannot become its controlling terminal or TIOCSTI it.
        None => rustix::process::setsid().map(drop).map_err(io::Error::from),
    };
    if let Err(e) = session {
        let _ = write_all(err, format!("set up the session: {e}").as_bytes());
        sys::exit_now(125);
    }
    if let Err(e) = rustix::process::chdir(&plan.cwd) {
        let _ = write_all(
            err,
            format!("chdir {}: {}", plan.cwd.display(), io::Error::from(e)).as_bytes(),
        );
        sys::exit_now(125);
    }
    let mut denied = None;
    let mut last = None;
    for path in &p.candidates {
        let e = sys::execve(path, &p.argv, &p.envp);
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(libc::EACCES) => denied = Some(e),
            _ => last = Some(e),
        }
    }
    let (code, reason) = match last.or(denied) {
        Some(e) => (126, e.to_string()),
        None if p.candidates.len() == 1 && p.name.contains('/') => (127, "No such file or directory".to_string()),
        None => (127, "command not found".to_string()),
    };
    let msg = format!("kp-sandbox: {}: {reason}\n", p.name);
    let _ = rustix::io::write(rustix::stdio::stderr(), msg.as_bytes());
    sys::exit_now(code)
}

fn setup(plan: &Plan) -> Result<()> {
    if plan.idmap.setgroups {
        sys::clear_groups().map_err(Error::setup("setgroups", ""))?;
    }
    // Our mounts must not propagate back to the host, nor the host's to us.
    mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
        .map_err(|e| Error::setup("make mounts private", "/")(e.into()))?;
    let root = overlay::mount_root(&plan.root)?;
    for m in &plan.mounts {
        mount_one(&root, m)?;
    }
    rustix::process::fchdir(&root).map_err(|e| Error::setup("chdir", "new root")(e.into()))?;
    // pivot_root(".", ".") stacks the old root under the new one; detaching it
    // leaves the new root alone, without a directory for the old one.
    rustix::process::pivot_root(".", ".").map_err(|e| Error::setup("pivot_root", "new root")(e.into()))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(|e| Error::setup("detach old root", "/")(e.into()))?;
    rustix::process::chdir("/").map_err(|e| Error::setup("chdir", "/")(e.into()))?;
    rustix::system::sethostname(plan.hostname.as_bytes())
        .map_err(|e| Error::setup("sethostname", &plan.hostname)(e.into()))?;
    if plan.loopback {
        sys::loopback_up().map_err(Error::setup("bring up", "lo"))?;
    }
    rustix::thread::set_no_new_privs(true).map_err(|e| Error::setup("no_new_privs", "")(e.into()))?;
    Ok(())
}

fn rel(dst: &Path) -> &Path {
    dst.strip_prefix("/").unwrap_or(dst)
}

fn open_in(root: &OwnedFd, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let path: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::CLOEXEC | flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
}

/// Opens directory `rel` under `root`, creating it and its parents as needed.
/// Symlinks resolve inside the root, never out to the host.
fn ensure_dir(root: &OwnedFd, rel: &Path, mode: u32) -> rustix::io::Result<OwnedFd> {
    match open_in(root, rel, OFlags::DIRECTORY) {
        Err(Errno::NOENT) => {}
        other => return other,
    }
    let (parent, name) = (
        rel.parent().unwrap_or(Path::new("")),
        rel.file_name().unwrap_or_default(),
    );
    let pfd = ensure_dir(root, parent, 0o755)?;
    match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    open_in(root, rel, OFlags::DIRECTORY)
}

/// The mount point for `dst`, created when missing unless `missing` says skip.
fn mount_point(root: &OwnedFd, dst: &Path, kind: Kind, missing: Missing) -> Result<Option<OwnedFd>> {
    let r = rel(dst);
    let fail = |e: Errno| Error::setup("create mount point", dst)(e.into());
    match open_in(root, r, OFlags::empty()) {
        Ok(fd) => return Ok(Some(fd)),
        Err(Errno::NOENT) if missing == Missing::Skip => return Ok(None),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(fail(e)),
    }
    match kind {
        Kind::Dir => ensure_dir(root, r, 0o755).map_err(fail)?,
        Kind::File => {
            let parent = ensure_dir(root, r.parent().unwrap_or(Path::new("")), 0o755).map_err(fail)?;
            let name = r.file_name().unwrap_or_default();
            let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
            match rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(0o644)) {
                Ok(_) | Err(Errno::EXIST) => {}
                Err(e) => return Err(fail(e)),
            }
            open_in(root, r, OFlags::empty()).map_err(fail)?
        }
    };
    open_in(root, r, OFlags::empty()).map(Some).map_err(fail)
}

/// A fresh kernel file system, detached, with `options` set.
fn new_fs(fstype: &str, options: &[(&str, Option<&str>)], attrs: MountAttrFlags, dst: &Path) -> Result<OwnedFd> {
    let step = |what: &'static str| move |e: Errno| Error::setup(what, dst)(e.into());
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).map_err(step("open file system for"))?;
    for (key, value) in options {
        match value {
            Some(v) => fsconfig_set_string(&fs, *key, *v).map_err(step("configure file system for"))?,
            None => fsconfig_set_flag(&fs, *key).map_err(step("configure file system for"))?,
        }
    }
    fsconfig_create(&fs).map_err(step("create file system for"))?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(step("mount"))
}

fn mount_one(root: &OwnedFd, m: &Mount) -> Result<()> {
    let nosuid = MountAttrFlags::MOUNT_ATTR_NOSUID;
    let (mnt, dst, kind, missing) = match m {
        Mount::Proc { dst } => {
            let attrs = nosuid | MountAttrFlags::MOUNT_ATTR_NODEV | MountAttrFlags::MOUNT_ATTR_NOEXEC;
            (new_fs("proc", &[], attrs, dst)?, dst, Kind::Dir, Missing::Create)
        }
        Mount::Tmpfs { dst, mode } => {
            let mode = format!("{mode:o}");
            let attrs = nosuid | MountAttrFlags::MOUNT_ATTR_NODEV;
            (
                new_fs("tmpfs", &[("mode", Some(&mode))], attrs, dst)?,
                dst,
                Kind::Dir,
                Missing::Create,
            )
        }
        Mount::Devpts { dst } => {
            let opts = [
                ("newinstance", None),
                ("ptmxmode", Some("0666")),
                ("mode", Some("0620")),
            ];
            let attrs = nosuid | MountAttrFlags::MOUNT_ATTR_NOEXEC;
            (new_fs("devpts", &opts, attrs, dst)?, dst, Kind::Dir, Missing::Create)
        }
        Mount::Mkdir { dst, mode } => {
            ensure_dir(root, rel(dst), *mode).map_err(|e| Error::setup("mkdir", dst)(e.into()))?;
            return Ok(());
        }
        Mount::Symlink { target, dst } => {
            let r = rel(dst);
            let parent = ensure_dir(root, r.parent().unwrap_or(Path::new("")), 0o755)
                .map_err(|e| Error::setup("mkdir", dst)(e.into()))?;
            match rustix::fs::symlinkat(target.as_path(), &parent, r.file_name().unwrap_or_default()) {
                Ok(()) | Err(Errno::EXIST) => return Ok(()),
                Err(e) => return Err(Error::setup("symlink", dst)(e.into())),
            }
        }
        Mount::Bind {
            src,
            dst,
            ro,
            kind,
            missing,
        } => {
            let mnt = overlay::clone_tree(src, *ro).map_err(Error::setup("bind", src))?;
            (mnt, dst, *kind, *missing)
        }
    };
    let Some(target) = mount_point(root, dst, kind, missing)? else {
        return Ok(());
    };
    overlay::attach(mnt.as_fd(), &target).map_err(Error::setup("mount on", dst))
}
