//! Ctrl-C as a request to stop between two steps, not in the middle of one:
//! SIGINT and SIGTERM are blocked and read from a signalfd when asked.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::{Error, Result};
use crate::sys;

pub struct Interrupts {
    fd: OwnedFd,
    old: sys::SigSet,
    seen: std::cell::Cell<bool>,
}

impl Interrupts {
    /// Blocks SIGINT and SIGTERM for this thread until dropped. Take it before
    /// any other thread starts: threads inherit the mask when they are created.
    pub fn catch() -> Result<Interrupts> {
        let set = sys::SigSet::of(&[libc::SIGINT, libc::SIGTERM]);
        let old = sys::block_signals(&set).map_err(|e| Error::store("block signals", Path::new("sigprocmask"))(e))?;
        let fd = match sys::signalfd(&set) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = sys::set_signal_mask(&old);
                return Err(Error::store("create", Path::new("signalfd"))(e));
            }
        };
        Ok(Interrupts {
            fd,
            old,
            seen: std::cell::Cell::new(false),
        })
    }

    /// Whether SIGINT or SIGTERM arrived since `catch`.
    pub fn pending(&self) -> bool {
        if !self.seen.get() {
            if let Ok(Some(_)) = sys::read_signalfd(self.fd.as_fd()) {
                self.seen.set(true);
            }
        }
        self.seen.get()
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        // Drain what arrived so unblocking does not deliver it after all.
        while let Ok(Some(_)) = sys::read_signalfd(self.fd.as_fd()) {}
        let _ = sys::set_signal_mask(&self.old);
    }
}
