//! A terminal for the command when the caller has one: a fresh pseudo-terminal
//! whose slave becomes the command's controlling terminal, relayed to the
//! caller's terminal (set raw meanwhile) with window-size changes followed.
//! The command never gets the caller's own terminal, so it cannot push input
//! into it (TIOCSTI) or signal the caller's job.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::process::Pid;
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, tcsetwinsize, OptionalActions, Termios};

use super::init;
use crate::sys::{self, SigSet};

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a pseudo-terminal when stdin and stdout are both terminals.
pub fn open_if_terminal() -> io::Result<Option<Pty>> {
    let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
    if !(rustix::termios::isatty(stdin) && rustix::termios::isatty(stdout)) {
        return Ok(None);
    }
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if let Ok(modes) = tcgetattr(stdin) {
        let _ = tcsetattr(&slave, OptionalActions::Now, &modes);
    }
    if let Ok(size) = tcgetwinsize(stdin) {
        let _ = tcsetwinsize(&master, size);
    }
    Ok(Some(Pty { master, slave }))
}

/// In the command's process: a new session with the slave as controlling
/// terminal on stdin, stdout and stderr (stderr only if it was a terminal, so
/// `2>file` keeps working).
pub fn attach_slave(slave: &OwnedFd) -> io::Result<()> {
    rustix::process::setsid()?;
    rustix::process::ioctl_tiocsctty(slave)?;
    rustix::stdio::dup2_stdin(slave)?;
    rustix::stdio::dup2_stdout(slave)?;
    if rustix::termios::isatty(rustix::stdio::stderr()) {
        rustix::stdio::dup2_stderr(slave)?;
    }
    Ok(())
}

/// Restores the caller's terminal modes when dropped.
struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = rustix::stdio::stdin();
        let saved = tcgetattr(stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = tcsetattr(stdin, OptionalActions::Now, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(rustix::stdio::stdin(), OptionalActions::Drain, t);
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut p = [PollFd::new(&fd, PollFlags::OUT)];
                let _ = poll(&mut p, None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Relays between the caller's terminal and the pty until `child` exits,
/// forwarding signals; returns the child's status.
pub fn relay(pty: Pty, child: Pid, set: &SigSet) -> io::Result<i32> {
    drop(pty.slave);
    let sigfd = sys::signalfd(set)?;
    let _raw = RawMode::enter();
    let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
    let master = pty.master.as_fd();
    let mut buf = vec![0u8; 16384];
    let mut stdin_open = true;
    let mut status = None;
    loop {
        let mut fds = vec![PollFd::new(&sigfd, PollFlags::IN), PollFd::new(&master, PollFlags::IN)];
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        // Not forever: another thread of the caller may take the SIGCHLD
        // (init.rs, supervise), so the child's exit is also looked for.
        let tick = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match poll(&mut fds, Some(&tick)) {
            Ok(0) if status.is_none() => status = init::reap(child, false),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if !ready[1].is_empty() {
            match rustix::io::read(master, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => {
                    // Every holder of the slave is gone.
                    if let Some(code) = status {
                        return Ok(code);
                    }
                }
                Ok(n) => write_all(stdout, &buf[..n])?,
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if stdin_open && !ready[2].is_empty() {
            match rustix::io::read(stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => write_all(master, &buf[..n])?,
            }
        }
        if !ready[0].is_empty() {
            while let Some(sig) = sys::read_signalfd(sigfd.as_fd())? {
                match sig {
                    libc::SIGCHLD => {
                        if let Some(code) = init::reap(child, false) {
                            status = Some(code);
                        }
                    }
                    libc::SIGWINCH => {
                        if let Ok(size) = tcgetwinsize(stdin) {
                            let _ = tcsetwinsize(master, size);
                        }
                    }
                    sig => init::forward(child, sig),
                }
            }
        }
        if let Some(code) = status {
            // The sandbox is gone: drain what the command wrote last.
            let mut p = [PollFd::new(&master, PollFlags::IN)];
            let timeout = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
            while matches!(poll(&mut p, Some(&timeout)), Ok(1)) {
                match rustix::io::read(master, &mut buf) {
                    Ok(n) if n > 0 => write_all(stdout, &buf[..n])?,
                    _ => break,
                }
            }
            return Ok(code);
        }
    }
}
