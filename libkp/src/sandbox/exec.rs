//! Executing a plan. Four processes:
//!
//! 1. the caller (outside): clones the sandbox's first process into new user,
//!    mount, UTS, IPC (and network) namespaces, writes its id maps (and
//!    cgroup) and, for host root, hands it idmapped mounts; then supervises;
//! 2. the mounter, still in the caller's PID namespace: mounts the root (a
//!    fuse-overlayfs daemon it starts stays out of the sandbox's PID
//!    namespace, where nothing inside can reach its /proc entries), then
//!    creates the PID namespace and relays the status of
//! 3. PID 1 inside: mounts everything on the root (with /proc's writable and
//!    revealing parts read-only or masked), pivots, sets the hostname,
//!    `no_new_privs` and a fresh session keyring, turns itself non-dumpable
//!    (so /proc/1 shows nothing of the caller's environment), forks the
//!    command and reaps (init.rs);
//! 4. the command: moves into a nested user and mount namespace, whose map
//!    PID 1 writes (the identity over the sandbox's ids) — every mount made so
//!    far is then locked by the kernel, so read-only stays read-only and no
//!    mask can be lifted, while mounting a tmpfs still works — then a new
//!    session (and pty), cwd, descriptors 3 and up close-on-exec, the seccomp
//!    filter, exec.
//!
//! Pipes tie them: "ready" (a socket: maps written, go on, with host root's
//! mounts attached), "errors" (close-on-exec: a setup failure anywhere inside
//! is written there; end of file without a byte means the command was
//! exec'd) and two between PID 1 and the command for the nested map. Every
//! forwardable signal is blocked from before the clone to the exec, so none
//! is lost; each process passes them on to the next.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, mount_change, open_tree, FsMountFlags,
    FsOpenFlags, MountAttrFlags, MountPropagationFlags, OpenTreeFlags, UnmountFlags,
};
use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::process::{Pid, Signal};
use rustix::thread::{ThreadNameSpaceType, UnshareFlags};

use super::plan::{Kind, Missing, Mount, Namespace, Plan};
use super::seccomp::{self, Seccomp};
use super::{cgroup, idmap, init, overlay, share, tty, Error, Result};
use crate::sys::{self, CStrArray, SigSet};

/// The command, prepared before forking so the child only makes system calls.
struct Prepared {
    argv: CStrArray,
    envp: CStrArray,
    /// Paths to try in order (PATH search done here, with the sandbox's PATH).
    candidates: Vec<CString>,
    name: String,
    /// The compiled seccomp filter, when one applies.
    filter: Option<seccompiler::BpfProgram>,
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
        let filter = match plan.seccomp {
            Seccomp::Default => Some(seccomp::program()?),
            Seccomp::Off => None,
        };
        Ok(Prepared {
            argv: CStrArray::new(argv),
            envp: CStrArray::new(envp),
            candidates,
            name: String::from_utf8_lossy(cmd).into_owned(),
            filter,
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
    let result = match &plan.share {
        Some(dir) => run_shared(plan, &prepared, &set, &old, dir),
        None => run_blocked(plan, &prepared, &set, &old, None).map(|outcome| match outcome {
            Outcome::Status(code) => code,
            Outcome::JoinFailed(_) => unreachable!("only a joining sandbox fails to join"),
        }),
    };
    let _ = sys::set_signal_mask(&old);
    result
}

/// How one attempt ended.
enum Outcome {
    Status(i32),
    /// The mounter to join exited before the setns: try again without it.
    JoinFailed(i32),
}

/// Joins the overlay a running sandbox of the same upper directory has, or
/// mounts it (share.rs); a sandbox that ends while we join is skipped.
fn run_shared(plan: &Plan, prepared: &Prepared, set: &SigSet, old: &SigSet, dir: &Path) -> Result<i32> {
    let mut skip = Vec::new();
    loop {
        let mut shared = share::begin(dir, &skip)?;
        match run_blocked(plan, prepared, set, old, Some(&mut shared))? {
            Outcome::Status(code) => return Ok(code),
            Outcome::JoinFailed(pid) => skip.push(pid),
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::setup("pipe", "")(e.into()))
}

/// Host root's idmapped mounts for the user namespace of process `pid`, in
/// the order the mounter and PID 1 take them: the root's host sources (not
/// when joining a mounted overlay), then every bind's source.
fn idmapped_mounts(plan: &Plan, pid: i32, joining: bool) -> Result<Vec<OwnedFd>> {
    let ns = format!("/proc/{pid}/ns/user");
    let userns = rustix::fs::open(&ns, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::setup("open", &ns)(e.into()))?;
    let mut out = Vec::new();
    let roots = if joining { Vec::new() } else { plan.root.host_sources() };
    for src in roots {
        let ro = matches!(plan.root, super::RootMount::Bind { .. });
        out.push(overlay::clone_idmapped(&src, ro, userns.as_fd(), true).map_err(Error::setup("idmap", src))?);
    }
    for m in &plan.mounts {
        if let Some(Mount::Bind { src, ro, .. }) = m.idmapped_bind() {
            out.push(overlay::clone_idmapped(src, *ro, userns.as_fd(), false).map_err(Error::setup("bind", src))?);
        }
    }
    Ok(out)
}

/// Sends the go-ahead byte, with `fds` attached.
fn send_ready(sock: &OwnedFd, fds: &[OwnedFd]) -> io::Result<()> {
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len().max(1)))];
    let mut buf = SendAncillaryBuffer::new(&mut space);
    if !borrowed.is_empty() && !buf.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    sendmsg(sock, &[io::IoSlice::new(b"1")], &mut buf, SendFlags::empty())?;
    Ok(())
}

/// Waits for the go-ahead; `None` when the caller gave up.
fn receive_ready(sock: &OwnedFd, expect: usize) -> Option<VecDeque<OwnedFd>> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(expect.max(1)))];
    let mut buf = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8];
    let got = recvmsg(
        sock,
        &mut [io::IoSliceMut::new(&mut byte)],
        &mut buf,
        RecvFlags::CMSG_CLOEXEC,
    )
    .ok()?;
    if got.bytes != 1 {
        return None;
    }
    let mut fds = VecDeque::new();
    for msg in buf.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            fds.extend(rights);
        }
    }
    (fds.len() == expect).then_some(fds)
}

fn run_blocked(
    plan: &Plan,
    prepared: &Prepared,
    set: &SigSet,
    old: &SigSet,
    shared: Option<&mut share::Shared>,
) -> Result<Outcome> {
    let join = match shared.as_deref() {
        Some(share::Shared {
            start: share::Start::Join { pidfd, pid },
            ..
        }) => Some((pidfd.as_fd(), *pid)),
        _ => None,
    };
    let pty = tty::open_if_terminal().map_err(Error::setup("open pseudo-terminal", "/dev/ptmx"))?;
    let (ready_out, ready_in) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|e| Error::setup("socketpair", "")(e.into()))?;
    let (err_r, err_w) = pipe()?;
    // The PID namespace comes later, from the mounter (see the module doc); a
    // mounter that joins another sandbox's overlay makes its namespaces itself.
    let flags = match join {
        Some(_) => 0,
        None => plan
            .namespaces
            .iter()
            .filter(|ns| **ns != Namespace::Pid)
            .fold(0, |f, ns| f | ns.clone_flag()),
    };
    let pid = sys::clone_fork(flags).map_err(Error::setup("clone namespaces", ""))?;
    if pid == 0 {
        drop((ready_out, err_r));
        let slave = pty.map(|p| p.slave);
        let code = mounter(plan, prepared, ready_in, err_w, set, old, slave, join.map(|j| j.0));
        sys::exit_now(code);
    }
    drop((ready_in, err_w));
    let child = Pid::from_raw(pid).expect("clone returned a positive pid");
    let give_up = || {
        let _ = rustix::process::kill_process(child, Signal::KILL);
        let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
    };
    let outside = || -> Result<(Option<PathBuf>, Vec<OwnedFd>)> {
        if join.is_none() {
            idmap::write(pid, &plan.idmap)?;
        }
        let cg = plan.cgroup.as_ref().map(|cg| cgroup::enter(cg, pid)).transpose()?;
        let mounts = if plan.idmap.idmapped {
            idmapped_mounts(plan, join.map_or(pid, |j| j.1), join.is_some())?
        } else {
            Vec::new()
        };
        Ok((cg, mounts))
    };
    let cgroup_dir = match outside() {
        Ok((dir, mounts)) => {
            let _ = send_ready(&ready_out, &mounts);
            dir
        }
        Err(e) => {
            give_up();
            // The sandbox to join may have ended under us (its /proc entry
            // gone): try again without it; a lasting error shows again then.
            return match join {
                Some((_, target)) => Ok(Outcome::JoinFailed(target)),
                None => Err(e),
            };
        }
    };
    if let Some((_, target)) = join {
        // The mounter says whether it got into the other sandbox's namespaces.
        let mut ack = [0u8];
        if rustix::io::read(&ready_out, &mut ack) != Ok(1) || ack[0] != b'J' {
            give_up();
            if let Some(dir) = cgroup_dir {
                let _ = std::fs::remove_dir(dir);
            }
            return Ok(Outcome::JoinFailed(target));
        }
    }
    drop(ready_out);
    let mut msg = Vec::new();
    let _ = File::from(err_r).read_to_end(&mut msg);
    let status = if !msg.is_empty() {
        give_up();
        Err(Error::Inside(String::from_utf8_lossy(&msg).trim_end().to_string()))
    } else {
        // The command runs, so the overlay is mounted: others may join it.
        if let Some(s) = shared {
            if let Err(e) = s.publish(pid) {
                crate::log!(crate::log::Level::Warn, "{e}");
            }
        }
        match pty {
            Some(pty) => tty::relay(pty, child, set).map_err(Error::setup("relay terminal", "/dev/ptmx")),
            None => Ok(init::supervise(child, set, false)),
        }
    };
    if let Some(dir) = cgroup_dir {
        let _ = std::fs::remove_dir(dir);
    }
    status.map(Outcome::Status)
}

/// Writes a setup failure to the error pipe (the caller prints it) and gives
/// the sandbox's own exit status.
fn report(err: &OwnedFd, msg: &str) -> i32 {
    let _ = write_all(err, msg.as_bytes());
    125
}

/// The sandbox's first process: mounts the root (or joins a sandbox that
/// has it mounted), then starts PID 1 in a new PID namespace and relays its
/// status.
#[allow(clippy::too_many_arguments)]
fn mounter(
    plan: &Plan,
    prepared: &Prepared,
    ready: OwnedFd,
    err: OwnedFd,
    set: &SigSet,
    old: &SigSet,
    slave: Option<OwnedFd>,
    join: Option<BorrowedFd<'_>>,
) -> i32 {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    let caller = rustix::process::getppid();
    let binds = plan.mounts.iter().filter(|m| m.idmapped_bind().is_some()).count();
    let expect = match (plan.idmap.idmapped, join) {
        (false, _) => 0,
        (true, Some(_)) => binds,
        (true, None) => plan.root.host_sources().len() + binds,
    };
    let Some(mut given) = receive_ready(&ready, expect) else {
        return 125; // the caller gave up (its error is reported there)
    };
    if let Some(pidfd) = join {
        let joined =
            rustix::thread::move_into_thread_name_spaces(pidfd, ThreadNameSpaceType::USER | ThreadNameSpaceType::MOUNT);
        let _ = rustix::io::write(&ready, if joined.is_ok() { b"J" } else { b"F" });
        if joined.is_err() {
            return 125; // the caller tries again without that sandbox
        }
    }
    drop(ready);
    let umask = rustix::process::umask(Mode::empty());
    let mounted = match join {
        Some(_) => join_root(plan),
        None => mount_root(plan, &mut given),
    };
    let root = match mounted {
        Ok(root) => root,
        Err(e) => return report(&err, &e.to_string()),
    };
    // Host root's setresuid cleared the parent-death signal: set it again,
    // and end if the caller died in between.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if rustix::process::getppid() != caller {
        return 125;
    }
    if let Err(e) = sys::unshare_namespaces(UnshareFlags::NEWPID) {
        return report(&err, &format!("unshare the PID namespace: {e}"));
    }
    let pid = match sys::fork() {
        Ok(pid) => pid,
        Err(e) => return report(&err, &format!("fork PID 1: {e}")),
    };
    if pid == 0 {
        let code = pid1(plan, prepared, &root, given, err, set, old, umask, slave);
        sys::exit_now(code);
    }
    drop((err, slave, root, given));
    init::supervise(Pid::from_raw(pid).expect("fork returned a positive pid"), set, false)
}

/// In the namespaces of a sandbox that has the overlay mounted: a private
/// copy of its mount table (and namespaces of our own for the rest), and the
/// overlay's root from it.
fn join_root(plan: &Plan) -> Result<OwnedFd> {
    if plan.idmap.setgroups {
        sys::clear_groups().map_err(Error::setup("setgroups", ""))?;
    }
    let mut flags = UnshareFlags::NEWNS | UnshareFlags::NEWUTS | UnshareFlags::NEWIPC;
    if plan.namespaces.contains(&Namespace::Net) {
        flags |= UnshareFlags::NEWNET;
    }
    sys::unshare_namespaces(flags).map_err(Error::setup("unshare namespaces after joining", ""))?;
    let super::RootMount::Overlay { work, .. } = &plan.root else {
        return Err(Error::Inside("only overlay roots are shared".into()));
    };
    let target = work.join("root");
    let root = rustix::fs::open(
        &target,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::setup("open the shared overlay", &target)(e.into()))?;
    if plan.idmap.idmapped {
        overlay::become_shifted_root()?;
    }
    Ok(root)
}

fn mount_root(plan: &Plan, given: &mut VecDeque<OwnedFd>) -> Result<OwnedFd> {
    if plan.idmap.setgroups {
        sys::clear_groups().map_err(Error::setup("setgroups", ""))?;
    }
    // Our mounts must not propagate back to the host, nor the host's to us.
    mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
        .map_err(|e| Error::setup("make mounts private", "/")(e.into()))?;
    if plan.idmap.idmapped {
        overlay::mount_root_idmapped(&plan.root, given)
    } else {
        overlay::mount_root(&plan.root)
    }
}

/// PID 1 of the sandbox.
#[allow(clippy::too_many_arguments)]
fn pid1(
    plan: &Plan,
    prepared: &Prepared,
    root: &OwnedFd,
    mut given: VecDeque<OwnedFd>,
    err: OwnedFd,
    set: &SigSet,
    old: &SigSet,
    umask: Mode,
    slave: Option<OwnedFd>,
) -> i32 {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    // Nothing inside may read this process's memory or descriptors through
    // /proc/1 (its environment is the caller's, copied by fork).
    if let Err(e) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
        return report(&err, &format!("prctl PR_SET_DUMPABLE: {e}"));
    }
    // A mount table of our own for what follows (pivot_root included): the
    // mounter's keeps the overlay over the host's tree, for the next sandbox
    // of this environment to join. The copy keeps our working directory, so
    // the root is found again in it.
    // (Only when the overlay is shared: otherwise nobody joins the mounter,
    // and copying the host's mount table costs time on every exec.)
    let own_root;
    let root = match plan.share {
        None => root,
        Some(_) => {
            own_root = match rustix::process::fchdir(root)
                .map_err(io::Error::from)
                .and_then(|()| sys::unshare_mount_namespace())
                .and_then(|()| {
                    rustix::fs::open(".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                        .map_err(io::Error::from)
                }) {
                Ok(fd) => fd,
                Err(e) => return report(&err, &format!("unshare the mount namespace of PID 1: {e}")),
            };
            &own_root
        }
    };
    if let Err(e) = setup(plan, root, &mut given) {
        return report(&err, &e.to_string());
    }
    drop(given);
    let Ok((to_pid1_r, to_pid1_w)) = pipe() else {
        return report(&err, "pipe for the nested user namespace");
    };
    let Ok((to_cmd_r, to_cmd_w)) = pipe() else {
        return report(&err, "pipe for the nested user namespace");
    };
    let pid = match sys::fork() {
        Ok(pid) => pid,
        Err(e) => return report(&err, &format!("fork the command: {e}")),
    };
    if pid == 0 {
        drop((to_pid1_r, to_cmd_w));
        command(plan, prepared, &err, old, umask, slave.as_ref(), (to_pid1_w, to_cmd_r));
    }
    drop((to_pid1_w, to_cmd_r));
    let child = Pid::from_raw(pid).expect("fork returned a positive pid");
    // The command has unshared its user namespace: give it the identity over
    // ours, then let it go on.
    let mut byte = [0u8];
    let locked = match rustix::io::read(&to_pid1_r, &mut byte) {
        Ok(1) => idmap::write(pid, &plan.idmap.nested()).map_err(|e| e.to_string()),
        _ => Err("the command did not reach its nested user namespace".to_string()),
    };
    if let Err(e) = locked {
        let _ = rustix::process::kill_process(child, Signal::KILL);
        return report(&err, &format!("lock the mounts: {e}"));
    }
    let _ = rustix::io::write(&to_cmd_w, b"1");
    drop((err, slave, to_pid1_r, to_cmd_w));
    init::supervise(child, set, true)
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = rustix::io::write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

fn fail(err: &OwnedFd, msg: String) -> ! {
    sys::exit_now(report(err, &msg))
}

/// The command's process: lock the mounts, restore what the sandbox changed,
/// then exec.
fn command(
    plan: &Plan,
    p: &Prepared,
    err: &OwnedFd,
    old: &SigSet,
    umask: Mode,
    slave: Option<&OwnedFd>,
    (to_pid1, from_pid1): (OwnedFd, OwnedFd),
) -> ! {
    // PID 1 is non-dumpable, and so is this copy of it until it execs; PID 1
    // must be able to write our maps.
    if let Err(e) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable) {
        fail(err, format!("prctl PR_SET_DUMPABLE: {e}"));
    }
    let session = match slave {
        Some(s) => tty::attach_slave(s),
        // A session of its own keeps the command away from the caller's
        // terminal: it cannot become its controlling terminal or TIOCSTI it.
        None => rustix::process::setsid().map(drop).map_err(io::Error::from),
    };
    if let Err(e) = session {
        fail(err, format!("set up the session: {e}"));
    }
    // A user namespace below the one that made the mounts, with a copy of
    // the mount table: the kernel locks every mount it copies into a less
    // privileged namespace (read-only flags, and no unmounting what covers
    // something).
    if let Err(e) = sys::unshare_namespaces(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) {
        fail(err, format!("unshare a nested user namespace: {e}"));
    }
    let mut byte = [0u8];
    if rustix::io::write(&to_pid1, b"1") != Ok(1) || rustix::io::read(&from_pid1, &mut byte) != Ok(1) {
        sys::exit_now(125); // PID 1 reports what went wrong
    }
    drop((to_pid1, from_pid1));
    let _ = sys::set_signal_mask(old);
    sys::default_signal(libc::SIGPIPE);
    rustix::process::umask(umask);
    if let Err(e) = rustix::process::chdir(&plan.cwd) {
        fail(err, format!("chdir {}: {}", plan.cwd.display(), io::Error::from(e)));
    }
    // Only 0, 1 and 2 reach the command; the error pipe closes on exec.
    if let Err(e) = sys::cloexec_from(3) {
        fail(err, format!("close_range: {e}"));
    }
    if let Some(filter) = &p.filter {
        if let Err(e) = seccompiler::apply_filter(filter) {
            fail(err, format!("install the seccomp filter: {e}"));
        }
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

fn setup(plan: &Plan, root: &OwnedFd, given: &mut VecDeque<OwnedFd>) -> Result<()> {
    for m in &plan.mounts {
        mount_one(root, m, given)?;
    }
    rustix::process::fchdir(root).map_err(|e| Error::setup("chdir", "new root")(e.into()))?;
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
    sys::join_new_session_keyring().map_err(Error::setup("join a new session keyring", ""))?;
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

/// Binds `dst` (a path of the new root) onto itself read-only, or hides it;
/// `None` when the root does not have it.
fn protect(root: &OwnedFd, dst: &Path, mask: bool) -> Result<Option<(OwnedFd, OwnedFd)>> {
    let step = |what: &'static str| move |e: Errno| Error::setup(what, dst)(e.into());
    let target = match open_in(root, rel(dst), OFlags::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(step("open")(e)),
    };
    let ro = MountAttrFlags::MOUNT_ATTR_RDONLY.bits() as u64;
    let mnt = if !mask {
        let flags = OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::AT_RECURSIVE;
        let mnt = open_tree(&target, "", flags).map_err(step("bind"))?;
        sys::mount_setattr(mnt.as_fd(), ro, None, true).map_err(Error::setup("make read-only", dst))?;
        mnt
    } else if rustix::fs::fstat(&target).map_err(step("stat"))?.st_mode & libc::S_IFMT
        == FileType::Directory.as_raw_mode()
    {
        let attrs =
            MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV;
        new_fs("tmpfs", &[("mode", Some("555"))], attrs, dst)?
    } else {
        overlay::clone_tree(Path::new("/dev/null"), true).map_err(Error::setup("mask with /dev/null", dst))?
    };
    Ok(Some((mnt, target)))
}

fn mount_one(root: &OwnedFd, m: &Mount, given: &mut VecDeque<OwnedFd>) -> Result<()> {
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
            // Host root's binds come idmapped from the caller, in plan order.
            let from_caller = m.idmapped_bind().and_then(|_| given.pop_front());
            let mnt = match from_caller {
                Some(mnt) => mnt,
                None => overlay::clone_tree(src, *ro).map_err(Error::setup("bind", src))?,
            };
            (mnt, dst, *kind, *missing)
        }
        Mount::ReadOnly { dst } | Mount::Mask { dst } => {
            if let Some((mnt, target)) = protect(root, dst, matches!(m, Mount::Mask { .. }))? {
                overlay::attach(mnt.as_fd(), &target).map_err(Error::setup("mount on", dst))?;
            }
            return Ok(());
        }
    };
    let Some(target) = mount_point(root, dst, kind, missing)? else {
        return Ok(());
    };
    overlay::attach(mnt.as_fd(), &target).map_err(Error::setup("mount on", dst))
}
