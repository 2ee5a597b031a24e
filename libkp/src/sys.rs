//! The one module allowed to use `unsafe`: thin wrappers over calls that no safe
//! crate API covers. Every block says why it is sound.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

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

/// Waits for one of the (blocked) signals in `set` and returns its number.
pub fn wait_signal(set: &SigSet) -> io::Result<i32> {
    loop {
        // SAFETY: a null siginfo pointer is allowed; the set is valid.
        let ret = unsafe { libc::sigwaitinfo(&set.0, std::ptr::null_mut()) };
        if ret >= 0 {
            return Ok(ret);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
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

/// mount_setattr(2) on the mount at `fd` (AT_EMPTY_PATH), optionally recursive.
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, recursive: bool) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is an empty C string, the attr pointer and size describe
    // the MOUNT_ATTR_SIZE_VER0 layout above, which lives for the call.
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
    // SAFETY: CLONE_NEWNS only changes which mount table this process sees; no
    // memory or file-descriptor state that Rust code relies on is affected
    // (rustix marks unshare unsafe for CLONE_FILES and CLONE_FS-like flags).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }.map_err(io::Error::from)
}
