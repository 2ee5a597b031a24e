//! The one module allowed to use `unsafe`: thin wrappers over calls that no safe
//! crate API covers. Every block says why it is sound.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Set in a process that `sandbox::rerun` started again as root of a mapped
/// user namespace, to its parent's pid.
pub const PARENT_ENV: &str = "KARAPACE_MAPPED_PARENT";

/// Whether this process is such a re-run.
pub fn is_rerun() -> bool {
    std::env::var_os(PARENT_ENV).is_some()
}

/// Maps `len` bytes of `file` from `offset`, read-only. (Prefaulting with
/// `MAP_POPULATE` was measured slower: it serialises the faults the hashing
/// threads otherwise take in parallel.)
pub fn map_readonly(file: &File, offset: u64, len: usize) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private; memmap2 requires `unsafe` because
    // another process may modify or truncate the file while it is mapped. A change
    // only makes us read other bytes (every stored object is re-hashed before it is
    // named, so a racing writer cannot put a wrong id in the store). Truncation below
    // the mapped range raises SIGBUS; we only map regular files we are reading right
    // now, the same exposure `b3sum` accepts.
    unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map(file) }
}

// ---- Process, signal and mount calls for the sandbox (libkp/src/sandbox/) ----
// rustix covers mounts, pivot_root, prctl and waitpid; what it lacks (fork-like
// clone, execve with prepared arrays, signal masks, signalfd, mount_setattr,
// bringing `lo` up, _exit) is here, over the libc crate.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A NUL-terminated array of C strings prepared before a fork, so the child
/// only passes pointers to `execve` and allocates nothing.
pub struct CStrArray {
    _owned: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrArray {
    pub fn new(items: Vec<CString>) -> CStrArray {
        let mut ptrs: Vec<*const libc::c_char> = items.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStrArray { _owned: items, ptrs }
    }
}

/// Like fork(2), but the child starts in the new namespaces named by `flags`
/// (CLONE_NEW*). Returns 0 in the child and the child's pid in the parent.
pub fn clone_fork(flags: libc::c_int) -> io::Result<libc::pid_t> {
    // SAFETY: clone without CLONE_VM and with a null stack behaves like fork: the
    // child gets a copy of the address space. The caller is single-threaded
    // (documented on sandbox::run), so no lock can be held by a thread that does
    // not exist in the child. The arguments after the flags (stack, parent tid,
    // child tid, tls) are unused for this flag set.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as libc::pid_t)
}

/// fork(2). Returns 0 in the child.
pub fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: see clone_fork; the caller is single-threaded.
    let ret = unsafe { libc::fork() };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// execve(2); returns only on failure.
pub fn execve(path: &CStr, argv: &CStrArray, envp: &CStrArray) -> io::Error {
    // SAFETY: both arrays are NUL-terminated arrays of pointers to live
    // NUL-terminated strings owned by the CStrArray values borrowed here.
    unsafe { libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Ends the process at once, without running atexit handlers or flushing
/// buffers that the forked child shares with its parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// A set of signals.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    pub fn of(signals: &[i32]) -> SigSet {
        // SAFETY: sigemptyset initialises the zeroed set; sigaddset only writes
        // bits of it for valid signal numbers (invalid ones return EINVAL, ignored).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            SigSet(set)
        }
    }
}

/// Blocks `set`, returning the previous mask.
pub fn block_signals(set: &SigSet) -> io::Result<SigSet> {
    // SAFETY: both pointers are to valid sigset_t values owned by this frame.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        if libc::sigprocmask(libc::SIG_BLOCK, &set.0, &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SigSet(old))
    }
}

/// Replaces the signal mask with `set`.
pub fn set_signal_mask(set: &SigSet) -> io::Result<()> {
    // SAFETY: the pointer is to a valid sigset_t; the old mask is not wanted.
    if unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set.0, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for one of the (blocked) signals in `set` and returns its number,
/// or `None` after `ms` milliseconds without one.
pub fn wait_signal_for(set: &SigSet, ms: u64) -> io::Result<Option<i32>> {
    let timeout = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: a null siginfo pointer is allowed; the set and the timeout
        // are valid for the call.
        let ret = unsafe { libc::sigtimedwait(&set.0, std::ptr::null_mut(), &timeout) };
        if ret >= 0 {
            return Ok(Some(ret));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) => return Ok(None),
            Some(libc::EINTR) => {}
            _ => return Err(err),
        }
    }
}

/// A signalfd for the (blocked) signals in `set`, close-on-exec and non-blocking.
pub fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: -1 asks for a new descriptor; the set pointer is valid.
    let fd = unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal from a signalfd; None when none is pending.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    // SAFETY: the buffer is a properly sized and aligned signalfd_siginfo that
    // read(2) fills; a short or failed read is checked before use.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = libc::read(fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size);
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(err);
        }
        if n as usize != size {
            return Ok(None);
        }
        Ok(Some(info.ssi_signo as i32))
    }
}

/// Restores the default action of `signal` (Rust's runtime ignores SIGPIPE, and
/// an ignored signal stays ignored across execve).
pub fn default_signal(signal: i32) {
    // SAFETY: SIG_DFL is a valid disposition for every catchable signal.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// Ignores `signal` (its disposition then survives execve: callers set it
/// after forking the children that must not inherit it).
pub fn ignore_signal(signal: i32) {
    // SAFETY: SIG_IGN is a valid disposition for every catchable signal.
    unsafe { libc::signal(signal, libc::SIG_IGN) };
}

/// Drops all supplementary groups (the host's would show up as nobody).
pub fn clear_groups() -> io::Result<()> {
    // SAFETY: a zero-length list with a null pointer is valid for setgroups.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// mount_setattr(2) on the mount at `fd` (AT_EMPTY_PATH), optionally
/// recursive: sets the MOUNT_ATTR_* bits in `set`, and with `userns` makes it
/// an idmapped mount that maps ids the way that user namespace does
/// (MOUNT_ATTR_IDMAP is added then).
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, userns: Option<BorrowedFd<'_>>, recursive: bool) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    let attr = MountAttr {
        attr_set: set | if userns.is_some() { MOUNT_ATTR_IDMAP } else { 0 },
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is an empty C string, the attr pointer and size describe
    // the MOUNT_ATTR_SIZE_VER0 layout above, which lives for the call; the
    // kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every descriptor from `first` on close-on-exec (close_range(2) with
/// CLOSE_RANGE_CLOEXEC), so none the caller inherited reaches the command,
/// while the ones still needed until execve stay usable.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes plain integers; with CLOSE_RANGE_CLOEXEC it
    // closes nothing, so no descriptor owned elsewhere in this process becomes
    // invalid.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes every descriptor from 3 on but those in `keep`. For a forked
/// child that never returns into its parent's code (it ends with
/// [`exit_now`]): the parent's descriptors it inherited (store locks above
/// all) must not outlive the parent in it.
pub fn close_all_except(keep: &[libc::c_int]) -> io::Result<()> {
    let mut keep: Vec<libc::c_uint> = keep.iter().filter_map(|&fd| libc::c_uint::try_from(fd).ok()).collect();
    keep.sort_unstable();
    let mut from: libc::c_uint = 3;
    for k in keep.into_iter().chain(std::iter::once(libc::c_uint::MAX)) {
        if k > from {
            let to = if k == libc::c_uint::MAX { k } else { k - 1 };
            // SAFETY: close_range takes plain integers. The descriptors it
            // closes belong to objects of the parent's code, which this
            // child never runs again (it exits through exit_now, with no
            // destructor), so nothing uses or closes them after this.
            let ret = unsafe { libc::syscall(libc::SYS_close_range, from, to, 0 as libc::c_uint) };
            if ret < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        from = from.max(k.saturating_add(1));
    }
    Ok(())
}

/// Joins a new anonymous session keyring, leaving the caller's (and the
/// host user's keys reachable through it) behind. ENOSYS on kernels built
/// without keys is no error: there is no keyring to leave.
pub fn join_new_session_keyring() -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for a new anonymous keyring; the kernel reads
    // nothing else.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOSYS) {
            return Ok(());
        }
        return Err(err);
    }
    Ok(())
}

/// Spawns `cmd` so that it gets SIGTERM when this process ends (a daemon
/// tied to the sandbox it serves), with no signal blocked (the sandbox
/// blocks the ones it forwards, and a blocked SIGTERM would never arrive) and
/// no descriptor beyond 0-2 (a daemon holding the caller's pipes would keep
/// them open after the sandbox ends).
pub fn spawn_tied(cmd: &mut std::process::Command) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec; it makes
    // only async-signal-safe system calls (sigprocmask, prctl, close_range)
    // and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0
            {
                return Err(io::Error::last_os_error());
            }
            cloexec_from(3)
        })
    };
    cmd.spawn()
}

/// Moves this process into new namespaces (CLONE_NEW* flags, never
/// CLONE_FILES or CLONE_FS).
pub fn unshare_namespaces(flags: rustix::thread::UnshareFlags) -> io::Result<()> {
    debug_assert!(!flags.intersects(rustix::thread::UnshareFlags::FILES | rustix::thread::UnshareFlags::FS));
    // SAFETY: rustix marks unshare unsafe for CLONE_FILES (descriptor tables
    // other threads would not see); namespace flags only change which
    // namespaces this single-threaded process is in.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    let sock = rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None)?;
    // SAFETY: ifreq is plain data; we write the NUL-terminated name "lo" into its
    // 16-byte name field and let SIOCGIFFLAGS/SIOCSIFFLAGS read and write it.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Moves this process into a copy of its mount namespace.
pub fn unshare_mount_namespace() -> io::Result<()> {
    unshare_namespaces(rustix::thread::UnshareFlags::NEWNS)
}

// ---- Descriptors passed between processes (the progress stream, libkp/src/progress.rs) ----

/// Takes descriptor `fd`, inherited from the process that started this one,
/// as this process's own, marked close-on-exec so nothing this process
/// starts inherits it. Refuses 0-2 and a descriptor that is not open.
pub fn take_inherited_fd(fd: i32) -> io::Result<OwnedFd> {
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "0, 1 and 2 are the standard streams",
        ));
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; an unopened number
    // gives EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EBADF) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an open file descriptor",
            ));
        }
        return Err(err);
    }
    // SAFETY: `fd` is open (F_GETFD succeeded) and was inherited across
    // exec: no object of this process owns it. The caller takes it once,
    // while the process starts, before it opens anything of its own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(owned)
}

/// Makes the child `cmd` starts find `fd` as descriptor `target`, not
/// close-on-exec, whatever number it has here (where it stays
/// close-on-exec, so no other child gets it).
pub fn pass_fd_as(cmd: &mut std::process::Command, fd: OwnedFd, target: libc::c_int) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, after
    // the standard streams are set up; it makes one async-signal-safe call
    // (dup2, or fcntl when the number is already right) and allocates
    // nothing. It owns `fd`, so the descriptor stays open until the Command
    // is dropped.
    unsafe {
        cmd.pre_exec(move || {
            let raw = fd.as_raw_fd();
            let ret = if raw == target {
                libc::fcntl(raw, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, target)
            };
            if ret < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
}
