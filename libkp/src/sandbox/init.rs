//! Supervision: the sandbox's PID 1 (and the outside parent) wait for
//! signals with everything forwardable blocked, pass each one on to the
//! command, reap every child, and return the command's status the way a
//! shell reports it.

use rustix::process::{kill_process, wait, waitpid, Pid, Signal, WaitOptions, WaitStatus};

use crate::sys::{self, SigSet};

/// Signals passed on to the command. Job-control stops stay with the caller.
pub const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
];

/// The forwarded signals plus SIGCHLD: the set blocked for the whole run.
pub fn watched() -> SigSet {
    let mut all = FORWARDED.to_vec();
    all.push(libc::SIGCHLD);
    SigSet::of(&all)
}

/// A wait status as an exit status: the code, or 128+N for signal N.
pub fn status_code(st: WaitStatus) -> i32 {
    if let Some(code) = st.exit_status() {
        code
    } else if let Some(sig) = st.terminating_signal() {
        128 + sig
    } else {
        1
    }
}

pub fn forward(child: Pid, sig: i32) {
    if let Some(s) = Signal::from_named_raw(sig) {
        let _ = kill_process(child, s);
    }
}

/// Reaps whatever has exited; returns the status of `child` once it has.
/// `any` reaps every child (as PID 1 must), else only `child`.
pub fn reap(child: Pid, any: bool) -> Option<i32> {
    loop {
        // rustix's waitpid(None) is wait4(0): our process group only, and the
        // command has a session of its own; wait() is wait4(-1).
        let reaped = if any {
            wait(WaitOptions::NOHANG)
        } else {
            waitpid(Some(child), WaitOptions::NOHANG)
        };
        match reaped {
            Ok(Some((pid, st))) if pid == child => return Some(status_code(st)),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Waits for `child`, forwarding signals to it, and returns its status.
///
/// A process-directed SIGCHLD goes to any thread that does not block it: in
/// a caller that has started other threads (a thread pool hashing files),
/// one of those may take it and drop it. So the wait also looks for the
/// child's exit every 100 ms without a signal.
pub fn supervise(child: Pid, set: &SigSet, any: bool) -> i32 {
    loop {
        match sys::wait_signal_for(set, 100) {
            Ok(Some(libc::SIGCHLD)) | Ok(None) | Err(_) => {
                if let Some(code) = reap(child, any) {
                    return code;
                }
            }
            Ok(Some(sig)) => forward(child, sig),
        }
    }
}
