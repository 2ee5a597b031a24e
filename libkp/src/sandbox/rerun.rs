//! Running this program again, with the same arguments, as root of a user
//! namespace mapped the way environments' sandboxes are (what `podman unshare`
//! does). A rootless user's writable layers hold files that the environment's
//! other users own — subordinate ids on the host, often in mode-0700
//! directories — which the user can neither read nor remove from outside; as
//! root of that namespace, with the same map, it can, and sees the owners the
//! environment sees. docs/sandbox.md, "Mapped store commands".

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use rustix::fd::OwnedFd;
use rustix::process::{Pid, Signal};

use super::{idmap, init, Error, IdMap, Result};
use crate::sys::{self, CStrArray, SigSet};
// Read below the sandbox too (layer checkouts, drift): they live in sys.rs.
pub use crate::sys::{is_rerun, PARENT_ENV};

/// First thing in a re-run process: it dies with the parent that waits for
/// it (so killing the command kills it, as a crash test expects).
pub fn adopt_parent() {
    let Some(parent) = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse::<i32>().ok()) else {
        return;
    };
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if rustix::process::getppid().map(Pid::as_raw_nonzero).map(|p| p.get()) != Some(parent) {
        sys::exit_now(1); // the parent died before we could know
    }
}

fn cstring(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Invalid {
        what: "argument".into(),
        reason: "contains a NUL byte".into(),
    })
}

/// Runs this program again in a new user namespace with `map` and returns its
/// exit status. Signals the terminal sends to the whole process group
/// (SIGINT, SIGQUIT) reach the re-run process directly and are ignored here;
/// others sent to this process are passed on.
///
/// The calling process must be single-threaded (see [`sys::clone_fork`]).
pub fn rerun_mapped(map: &IdMap) -> Result<i32> {
    let exe = cstring(b"/proc/self/exe")?;
    let argv = std::env::args_os()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os().filter(|(k, _)| k != PARENT_ENV) {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        envp.push(cstring(kv.as_bytes())?);
    }
    envp.push(cstring(format!("{PARENT_ENV}={}", std::process::id()).as_bytes())?);
    let (argv, envp) = (CStrArray::new(argv), CStrArray::new(envp));
    let (ready_r, ready_w): (OwnedFd, OwnedFd) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::setup("pipe", "")(e.into()))?;
    let set = SigSet::of(&[
        libc::SIGCHLD,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
    ]);
    let old = sys::block_signals(&set).map_err(Error::setup("block signals", ""))?;
    let pid = match sys::clone_fork(libc::CLONE_NEWUSER) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = sys::set_signal_mask(&old);
            return Err(Error::setup("clone a user namespace", "")(e));
        }
    };
    if pid == 0 {
        drop(ready_w);
        let mut byte = [0u8];
        if !matches!(rustix::io::read(&ready_r, &mut byte), Ok(1)) {
            sys::exit_now(125); // the parent could not map us; it reports why
        }
        let _ = sys::set_signal_mask(&old);
        let err = sys::execve(&exe, &argv, &envp);
        let _ = rustix::io::write(
            rustix::stdio::stderr(),
            format!("karapace: re-run in a user namespace: {err}\n").as_bytes(),
        );
        sys::exit_now(125);
    }
    drop(ready_r);
    let child = Pid::from_raw(pid).expect("clone returned a positive pid");
    if let Err(e) = idmap::write(pid, map) {
        drop(ready_w);
        let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
        let _ = sys::set_signal_mask(&old);
        return Err(e);
    }
    sys::ignore_signal(libc::SIGINT);
    sys::ignore_signal(libc::SIGQUIT);
    let _ = rustix::io::write(&ready_w, b"1");
    drop(ready_w);
    let code = init::supervise(child, &set, false);
    sys::default_signal(libc::SIGINT);
    sys::default_signal(libc::SIGQUIT);
    let _ = sys::set_signal_mask(&old);
    Ok(code)
}
