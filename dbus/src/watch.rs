//! EnvironmentsChanged, whoever changed the store: inotify on `meta/envs/`
//! and `meta/names/` (records and names are written there by rename, so
//! every change is one event), or, while they do not exist yet, on the
//! nearest existing ancestor until they do. No polling.

use std::path::{Path, PathBuf};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use zbus::object_server::SignalEmitter;
use zbus::Connection;

use crate::manager::Manager;

/// Changes closer together than this make one signal.
const SETTLE: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 50_000_000,
};

pub fn spawn(conn: Connection, store_root: PathBuf) -> std::io::Result<()> {
    let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
    std::thread::Builder::new().name("watch".into()).spawn(move || {
        let Ok(emitter) = SignalEmitter::new(&conn, "/org/karapace/Manager1") else {
            return;
        };
        let dirs = [store_root.join("meta/envs"), store_root.join("meta/names")];
        let mut wds = Vec::new();
        // What is watched: None for meta/envs itself, else that ancestor.
        let mut current: Option<Option<PathBuf>> = None;
        let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 4096];
        loop {
            // (Re)place the watches when the directories appeared or went,
            // or the nearest existing ancestor moved down.
            let target = if dirs[0].is_dir() {
                None
            } else {
                ancestor(&dirs[0]).map(Path::to_path_buf)
            };
            if current.as_ref() != Some(&target) {
                for wd in wds.drain(..) {
                    let _ = inotify::remove_watch(&fd, wd);
                }
                match &target {
                    None => {
                        let mask = WatchFlags::CREATE
                            | WatchFlags::DELETE
                            | WatchFlags::MOVED_TO
                            | WatchFlags::MOVED_FROM
                            | WatchFlags::CLOSE_WRITE
                            | WatchFlags::DELETE_SELF;
                        wds.extend(dirs.iter().filter_map(|d| inotify::add_watch(&fd, d, mask).ok()));
                        // The records may have come with the directory.
                        if current.is_some() {
                            let _ = zbus::block_on(Manager::environments_changed(&emitter));
                        }
                    }
                    Some(a) => {
                        let mask = WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::DELETE_SELF;
                        wds.extend(inotify::add_watch(&fd, a, mask).ok());
                    }
                }
                if wds.is_empty() {
                    return;
                }
                current = Some(target);
                // Look again: the directory may have appeared meanwhile.
                continue;
            }
            // Wait for a change, then for the burst it belongs to to settle.
            if !wait(&fd, None) {
                return;
            }
            let mut changed = drain(&fd, &mut buf);
            while wait(&fd, Some(&SETTLE)) {
                changed |= drain(&fd, &mut buf);
            }
            if changed && target.is_none() {
                let _ = zbus::block_on(Manager::environments_changed(&emitter));
            }
        }
    })?;
    Ok(())
}

fn ancestor(p: &Path) -> Option<&Path> {
    p.ancestors().skip(1).find(|a| a.is_dir())
}

/// Whether FD became readable within TIMEOUT (None: no limit).
fn wait(fd: &impl rustix::fd::AsFd, timeout: Option<&Timespec>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    loop {
        match poll(&mut fds, timeout) {
            Ok(n) => return n > 0,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Reads the pending events; whether one was a change (a removed watch's
/// IN_IGNORED is not).
fn drain(fd: &impl rustix::fd::AsFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> bool {
    let mut reader = inotify::Reader::new(fd, buf);
    let mut changed = false;
    while let Ok(ev) = reader.next() {
        changed |= !ev.events().contains(inotify::ReadFlags::IGNORED);
    }
    changed
}
