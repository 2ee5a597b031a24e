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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
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
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

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
    if !plan.runtime_cgroups.is_empty() {
        return Err(Error::Limits {
            reason: "the plan's limits are for an OCI runtime to apply (cgroup v1); the native sandbox cannot".into(),
        });
    }
    let prepared = Prepared::new(plan)?;
    let set = init::watched();
    let old = sys::block_signals(&set).map_err(Error::setup("block signals", ""))?;
    let result = match &plan.share {
        Some(dir) => run_shared(plan, &prepared, &set, &old, dir),
        None => run_alone(plan, &prepared, &set, &old, None).map(|outcome| match outcome {
            Outcome::Status(code) => code,
            Outcome::JoinFailed(_) | Outcome::NeedsFuse => unreachable!("run_alone retries these"),
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
    /// Kernel overlayfs refused the root: try again with a mounter for
    /// fuse-overlayfs.
    NeedsFuse,
}

/// Joins the overlay a running sandbox of the same upper directory has, or
/// mounts it (share.rs); a sandbox that ends while we join is skipped.
fn run_shared(plan: &Plan, prepared: &Prepared, set: &SigSet, old: &SigSet, dir: &Path) -> Result<i32> {
    let mut skip = Vec::new();
    loop {
        let mut shared = share::begin(dir, &skip)?;
        match run_alone(plan, prepared, set, old, Some(&mut shared))? {
            Outcome::Status(code) => return Ok(code),
            Outcome::JoinFailed(pid) => skip.push(pid),
            Outcome::NeedsFuse => unreachable!("run_alone retries with a mounter"),
        }
    }
}

/// One sandbox: PID 1 mounts the root itself unless the root needs a
/// fuse-overlayfs daemon (then a mounter runs it, outside the PID namespace).
fn run_alone(
    plan: &Plan,
    prepared: &Prepared,
    set: &SigSet,
    old: &SigSet,
    mut shared: Option<&mut share::Shared>,
) -> Result<Outcome> {
    let fuse = matches!(
        plan.root,
        super::RootMount::Overlay {
            driver: super::OverlayDriver::Fuse,
            ..
        }
    );
    match run_blocked(plan, prepared, set, old, shared.as_deref_mut(), fuse)? {
        Outcome::NeedsFuse => run_blocked(plan, prepared, set, old, shared, true),
        other => Ok(other),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::setup("pipe", "")(e.into()))
}

/// Host root's idmapped mounts for the user namespace `userns`, in the
/// order the mounter and PID 1 take them: the root's host sources (not when
/// joining a mounted overlay), then every bind's source.
fn idmapped_mounts(plan: &Plan, userns: BorrowedFd<'_>, joining: bool) -> Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    let roots = if joining { Vec::new() } else { plan.root.host_sources() };
    for src in roots {
        let ro = matches!(plan.root, super::RootMount::Bind { .. });
        out.push(overlay::clone_idmapped(&src, ro, userns, true).map_err(Error::setup("idmap", src))?);
    }
    for m in &plan.mounts {
        if let Some(Mount::Bind { src, ro, .. }) = m.idmapped_bind() {
            out.push(overlay::clone_idmapped(src, *ro, userns, false).map_err(Error::setup("bind", src))?);
        }
    }
    Ok(out)
}

/// The user and the mount namespace of process `pid`.
fn namespaces_of(pid: i32) -> Result<(OwnedFd, OwnedFd)> {
    let open = |kind: &str| {
        let ns = format!("/proc/{pid}/ns/{kind}");
        rustix::fs::open(&ns, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::setup("open", &ns)(e.into()))
    };
    Ok((open("user")?, open("mnt")?))
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
    with_mounter: bool,
) -> Result<Outcome> {
    let join = match shared.as_deref() {
        Some(share::Shared {
            start: share::Start::Join(ns),
            ..
        }) => Some((ns.user.as_fd(), ns.mnt.as_fd(), ns.caller)),
        _ => None,
    };
    let pty = tty::open_if_terminal().map_err(Error::setup("open pseudo-terminal", "/dev/ptmx"))?;
    let (ready_out, ready_in) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|e| Error::setup("socketpair", "")(e.into()))?;
    let (err_r, err_w) = pipe()?;
    // Without a fuse daemon to keep out of it, or a sandbox to join, the first
    // process is PID 1 and mounts the root itself; otherwise the mounter makes
    // the PID namespace later (see the module doc), and a mounter that joins
    // another sandbox's overlay makes its namespaces itself.
    let first_is_pid1 = join.is_none() && !with_mounter;
    let flags = match join {
        Some(_) => 0,
        None => plan
            .namespaces
            .iter()
            .filter(|ns| first_is_pid1 || **ns != Namespace::Pid)
            .fold(0, |f, ns| f | ns.clone_flag()),
    };
    // Host root's sandbox changes its uid, which clears its parent-death
    // signal; a pidfd tells it afterwards whether the caller is still there.
    let caller = rustix::process::pidfd_open(rustix::process::getpid(), rustix::process::PidfdFlags::empty())
        .map_err(|e| Error::setup("pidfd_open", "")(e.into()))?;
    let pid = sys::clone_fork(flags).map_err(Error::setup("clone namespaces", ""))?;
    if pid == 0 {
        drop((ready_out, err_r));
        let slave = pty.map(|p| p.slave);
        // Nothing of the caller's but what the sandbox needs stays open in
        // it: a store lock held by a sandbox process would outlive a killed
        // caller.
        let mut keep = vec![ready_in.as_raw_fd(), err_w.as_raw_fd(), caller.as_raw_fd()];
        keep.extend(slave.as_ref().map(|s| s.as_raw_fd()));
        keep.extend(join.iter().flat_map(|j| [j.0.as_raw_fd(), j.1.as_raw_fd()]));
        if let Err(e) = sys::close_all_except(&keep) {
            let _ = write_all(&err_w, format!("close inherited descriptors: {e}").as_bytes());
            sys::exit_now(125);
        }
        let first = First {
            plan,
            prepared,
            set,
            old,
            ready: ready_in,
            err: err_w,
            slave,
            caller,
        };
        let code = if first_is_pid1 {
            first_pid1(first)
        } else {
            mounter(first, join.map(|j| (j.0, j.1)))
        };
        sys::exit_now(code);
    }
    drop(caller);
    drop((ready_in, err_w));
    let child = Pid::from_raw(pid).expect("clone returned a positive pid");
    let give_up = || {
        let _ = rustix::process::kill_process(child, Signal::KILL);
        let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
    };
    // PID 1's namespaces, opened while it still waits for us (it turns
    // non-dumpable later), for host root's idmapped mounts and for others
    // to join once the command runs.
    let mut own_ns = None;
    let outside = |own_ns: &mut Option<(OwnedFd, OwnedFd)>| -> Result<(Option<PathBuf>, Vec<OwnedFd>)> {
        if join.is_none() {
            idmap::write(pid, &plan.idmap)?;
        }
        if first_is_pid1 {
            *own_ns = Some(namespaces_of(pid)?);
        }
        let cg = plan.cgroup.as_ref().map(|cg| cgroup::enter(cg, pid)).transpose()?;
        let mounts = if plan.idmap.idmapped {
            let userns = match (join, own_ns.as_ref()) {
                (Some((user, ..)), _) => user.try_clone_to_owned().map_err(Error::setup("dup", ""))?,
                (None, Some((user, _))) => user.try_clone().map_err(Error::setup("dup", ""))?,
                (None, None) => namespaces_of(pid)?.0,
            };
            idmapped_mounts(plan, userns.as_fd(), join.is_some())?
        } else {
            Vec::new()
        };
        Ok((cg, mounts))
    };
    let cgroup_dir = match outside(&mut own_ns) {
        Ok((dir, mounts)) => {
            let _ = send_ready(&ready_out, &mounts);
            dir
        }
        Err(e) => {
            give_up();
            // The sandbox to join may have ended under us: try again without
            // it; a lasting error shows again then.
            return match join {
                Some((.., target)) => Ok(Outcome::JoinFailed(target)),
                None => Err(e),
            };
        }
    };
    if let Some((.., target)) = join {
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
    let joining = join.is_some();
    drop(ready_out);
    let mut msg = Vec::new();
    let _ = File::from(err_r).read_to_end(&mut msg);
    let status = if msg == NEEDS_FUSE.as_bytes() {
        give_up();
        Ok(Outcome::NeedsFuse)
    } else if !msg.is_empty() {
        give_up();
        Err(Error::Inside(String::from_utf8_lossy(&msg).trim_end().to_string()))
    } else {
        // The command runs, so the overlay is mounted: others may join it
        // (a mounter's namespaces are its final ones only now).
        if let Some(s) = shared {
            let owned = match (joining, own_ns) {
                (true, _) => Ok(None),
                (false, Some(ns)) => Ok(Some(ns)),
                (false, None) => namespaces_of(pid).map(Some),
            };
            if let Err(e) = owned.and_then(|ns| s.publish(ns)) {
                crate::log!(crate::log::Level::Warn, "{e}");
            }
        }
        match pty {
            Some(pty) => tty::relay(pty, child, set).map_err(Error::setup("relay terminal", "/dev/ptmx")),
            None => Ok(init::supervise(child, set, false)),
        }
        .map(Outcome::Status)
    };
    if let Some(dir) = cgroup_dir {
        let _ = std::fs::remove_dir(dir);
    }
    status
}

/// What PID 1 reports when kernel overlayfs refused the root and
/// fuse-overlayfs may mount it: the caller starts over with a mounter, whose
/// fuse daemon stays out of the sandbox's PID namespace.
const NEEDS_FUSE: &str = "\0needs fuse-overlayfs";

/// Whether the caller that cloned us is still there (`pidfd` is its pidfd).
fn caller_alive(pidfd: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(pidfd, rustix::event::PollFlags::IN)];
    matches!(
        rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())),
        Ok(0)
    )
}

/// What the sandbox's first process starts with.
struct First<'a> {
    plan: &'a Plan,
    prepared: &'a Prepared,
    set: &'a SigSet,
    old: &'a SigSet,
    /// The go-ahead (with host root's idmapped mounts) comes here.
    ready: OwnedFd,
    /// Setup failures go here.
    err: OwnedFd,
    /// The pty's slave, when the caller has a terminal.
    slave: Option<OwnedFd>,
    /// A pidfd of the caller.
    caller: OwnedFd,
}

/// The sandbox's first process when it is PID 1 itself: mounts the root
/// (kernel overlayfs or a bind), then goes on as [`pid1`].
fn first_pid1(first: First<'_>) -> i32 {
    let plan = first.plan;
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    let expect = if plan.idmap.idmapped {
        plan.root.host_sources().len() + plan.mounts.iter().filter(|m| m.idmapped_bind().is_some()).count()
    } else {
        0
    };
    let Some(mut given) = receive_ready(&first.ready, expect) else {
        return 125; // the caller gave up (its error is reported there)
    };
    drop(first.ready);
    let umask = rustix::process::umask(Mode::empty());
    let root = match mount_root(plan, &mut given, false) {
        Ok(root) => root,
        Err(RootError::NeedsFuse) => return report(&first.err, NEEDS_FUSE),
        Err(RootError::Failed(e)) => return report(&first.err, &e.to_string()),
    };
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if !caller_alive(&first.caller) {
        return 125;
    }
    drop(first.caller);
    let First {
        prepared,
        set,
        old,
        err,
        slave,
        ..
    } = first;
    pid1(plan, prepared, &root, given, err, set, old, umask, slave)
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
fn mounter(first: First<'_>, join: Option<(BorrowedFd<'_>, BorrowedFd<'_>)>) -> i32 {
    let First {
        plan,
        prepared,
        set,
        old,
        ready,
        err,
        slave,
        caller,
    } = first;
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    let binds = plan.mounts.iter().filter(|m| m.idmapped_bind().is_some()).count();
    let expect = match (plan.idmap.idmapped, join) {
        (false, _) => 0,
        (true, Some(_)) => binds,
        (true, None) => plan.root.host_sources().len() + binds,
    };
    let Some(mut given) = receive_ready(&ready, expect) else {
        return 125; // the caller gave up (its error is reported there)
    };
    if let Some((user, mnt)) = join {
        let joined = rustix::thread::move_into_link_name_space(user, Some(LinkNameSpaceType::User))
            .and_then(|()| rustix::thread::move_into_link_name_space(mnt, Some(LinkNameSpaceType::Mount)));
        let _ = rustix::io::write(&ready, if joined.is_ok() { b"J" } else { b"F" });
        if joined.is_err() {
            return 125; // the caller tries again without that sandbox
        }
    }
    drop(ready);
    let umask = rustix::process::umask(Mode::empty());
    let mounted = match join {
        Some(_) => join_root(plan),
        None => mount_root(plan, &mut given, true).map_err(|e| match e {
            RootError::Failed(e) => e,
            RootError::NeedsFuse => unreachable!("the mounter may run fuse-overlayfs"),
        }),
    };
    let root = match mounted {
        Ok(root) => root,
        Err(e) => return report(&err, &e.to_string()),
    };
    // Host root's setresuid cleared the parent-death signal: set it again,
    // and end if the caller died in between.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if !caller_alive(&caller) {
        return 125;
    }
    drop(caller);
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

/// In the namespaces of a sandbox that has the overlay mounted, whose root
/// (where setns put us) is that overlay: a copy of that one mount, without
/// what the other sandbox mounted on it, in namespaces of our own.
fn join_root(plan: &Plan) -> Result<OwnedFd> {
    if plan.idmap.setgroups {
        sys::clear_groups().map_err(Error::setup("setgroups", ""))?;
    }
    if !matches!(plan.root, super::RootMount::Overlay { .. }) {
        return Err(Error::Inside("only overlay roots are shared".into()));
    }
    let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    let root =
        open_tree(rustix::fs::CWD, "/", flags).map_err(|e| Error::setup("copy the shared overlay", "/")(e.into()))?;
    let mut flags = UnshareFlags::NEWNS | UnshareFlags::NEWUTS | UnshareFlags::NEWIPC;
    if plan.namespaces.contains(&Namespace::Net) {
        flags |= UnshareFlags::NEWNET;
    }
    sys::unshare_namespaces(flags).map_err(Error::setup("unshare namespaces after joining", ""))?;
    // On top of the joined root, so pivot_root has a mount to turn into the root.
    let top = rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::setup("open", "/")(e.into()))?;
    overlay::attach(&root, &top).map_err(Error::setup("mount the shared overlay on", "/"))?;
    if plan.idmap.idmapped {
        overlay::become_shifted_root()?;
    }
    Ok(root)
}

/// Why the root could not be mounted.
enum RootError {
    /// Kernel overlayfs refused, and fuse-overlayfs (not allowed here) might not.
    NeedsFuse,
    Failed(Error),
}

fn mount_root(plan: &Plan, given: &mut VecDeque<OwnedFd>, allow_fuse: bool) -> std::result::Result<OwnedFd, RootError> {
    if plan.idmap.setgroups {
        sys::clear_groups().map_err(|e| RootError::Failed(Error::setup("setgroups", "")(e)))?;
    }
    // Our mounts must not propagate back to the host, nor the host's to us.
    mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
        .map_err(|e| RootError::Failed(Error::setup("make mounts private", "/")(e.into())))?;
    if plan.idmap.idmapped {
        overlay::mount_root_idmapped(&plan.root, given).map_err(RootError::Failed)
    } else {
        match overlay::mount_root(&plan.root, allow_fuse) {
            Ok(root) => Ok(root),
            Err(overlay::Refused::NeedsFuse) => Err(RootError::NeedsFuse),
            Err(overlay::Refused::Error(e)) => Err(RootError::Failed(e)),
        }
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
    if let Err(e) = setup(plan, root, &mut given) {
        return report(&err, &e.to_string());
    }
    drop(given);
    let Ok((to_cmd_r, to_cmd_w)) = pipe() else {
        return report(&err, "pipe for the nested user namespace");
    };
    // The command starts in a user namespace below ours, with a copy of the
    // mount table: the kernel locks every mount it copies into a less
    // privileged namespace (read-only flags, and no unmounting what covers
    // something). Its maps are ours to write, so it must be dumpable: we are
    // for the moment of the clone, while nothing else runs inside.
    let dumpable = |on: bool| {
        use rustix::process::DumpableBehavior::{Dumpable, NotDumpable};
        rustix::process::set_dumpable_behavior(if on { Dumpable } else { NotDumpable })
    };
    if let Err(e) = dumpable(true) {
        return report(&err, &format!("prctl PR_SET_DUMPABLE: {e}"));
    }
    let cloned = sys::clone_fork(libc::CLONE_NEWUSER | libc::CLONE_NEWNS);
    if let Ok(0) = cloned {
        drop(to_cmd_w);
        command(plan, prepared, &err, old, umask, slave.as_ref(), to_cmd_r);
    }
    if let Err(e) = dumpable(false) {
        return report(&err, &format!("prctl PR_SET_DUMPABLE: {e}"));
    }
    let pid = match cloned {
        Ok(pid) => pid,
        Err(e) => return report(&err, &format!("clone the command into a nested user namespace: {e}")),
    };
    drop(to_cmd_r);
    let child = Pid::from_raw(pid).expect("clone returned a positive pid");
    // Give it the identity over our ids, then let it go on.
    if let Err(e) = idmap::write(pid, &plan.idmap.nested()) {
        let _ = rustix::process::kill_process(child, Signal::KILL);
        return report(&err, &format!("lock the mounts: {e}"));
    }
    let _ = rustix::io::write(&to_cmd_w, b"1");
    drop((err, slave, to_cmd_w));
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
    from_pid1: OwnedFd,
) -> ! {
    // Nothing before PID 1 has written our maps.
    let mut byte = [0u8];
    if rustix::io::read(&from_pid1, &mut byte) != Ok(1) {
        sys::exit_now(125); // PID 1 reports what went wrong
    }
    drop(from_pid1);
    let session = match slave {
        Some(s) => tty::attach_slave(s),
        // A session of its own keeps the command away from the caller's
        // terminal: it cannot become its controlling terminal or TIOCSTI it.
        None => rustix::process::setsid().map(drop).map_err(io::Error::from),
    };
    if let Err(e) = session {
        fail(err, format!("set up the session: {e}"));
    }
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
        Kind::Dir => ensure_dir(root, r, 0o755).map(Some).map_err(fail),
        Kind::File => {
            let parent = ensure_dir(root, r.parent().unwrap_or(Path::new("")), 0o755).map_err(fail)?;
            let name = r.file_name().unwrap_or_default();
            let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
            match rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(0o644)) {
                Ok(_) | Err(Errno::EXIST) => {}
                Err(e) => return Err(fail(e)),
            }
            open_in(root, r, OFlags::empty()).map(Some).map_err(fail)
        }
    }
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
