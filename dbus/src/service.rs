//! What the manager and its jobs share: the store, the user served, the jobs
//! running and the time of the last call (for the idle exit).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Mutex;
use std::time::Instant;

use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::BusName;
use zbus::Connection;

use crate::error::{Error, Result};

pub struct Service {
    pub store_root: PathBuf,
    /// The uid this service serves: its own.
    pub uid: u32,
    pub notify: bool,
    /// Jobs whose child still runs.
    pub jobs: AtomicUsize,
    pub next_job: AtomicU64,
    /// Environments and manifests a job or call of this service is working on.
    pub busy: Mutex<HashSet<String>>,
    last_call: Mutex<Instant>,
    /// Callers' uids by unique bus name (a name is never reused on a bus).
    uids: Mutex<HashMap<String, u32>>,
}

impl Service {
    pub fn new(store_root: PathBuf, notify: bool) -> Service {
        Service {
            store_root,
            uid: rustix::process::getuid().as_raw(),
            notify,
            jobs: AtomicUsize::new(0),
            next_job: AtomicU64::new(1),
            busy: Mutex::new(HashSet::new()),
            last_call: Mutex::new(Instant::now()),
            uids: Mutex::new(HashMap::new()),
        }
    }

    pub fn touch(&self) {
        *self.last_call.lock().unwrap() = Instant::now();
    }

    pub fn idle_since(&self) -> Instant {
        *self.last_call.lock().unwrap()
    }

    /// Refuses a caller that runs as another user (the bus tells its uid).
    pub async fn check_caller(&self, conn: &Connection, hdr: &Header<'_>) -> Result<()> {
        self.touch();
        let Some(sender) = hdr.sender() else {
            return Err(Error::AccessDenied("a call without a sender".into()));
        };
        let cached = self.uids.lock().unwrap().get(sender.as_str()).copied();
        let uid = match cached {
            Some(u) => u,
            None => {
                let u = DBusProxy::new(conn)
                    .await?
                    .get_connection_unix_user(BusName::Unique(sender.to_owned()))
                    .await
                    .map_err(|e| Error::AccessDenied(format!("cannot tell {sender}'s user: {e}")))?;
                self.uids.lock().unwrap().insert(sender.to_string(), u);
                u
            }
        };
        if uid != self.uid {
            return Err(Error::AccessDenied(format!(
                "{sender} runs as uid {uid}; this service serves uid {} only",
                self.uid
            )));
        }
        Ok(())
    }

    /// check_caller for a property read (no header: the service's own
    /// PropertiesChanged, allowed).
    pub async fn check_property_caller(&self, conn: &Connection, hdr: Option<&Header<'_>>) -> zbus::fdo::Result<()> {
        match hdr {
            None => Ok(()),
            Some(h) => self
                .check_caller(conn, h)
                .await
                .map_err(|e| zbus::fdo::Error::AccessDenied(e.message())),
        }
    }

    /// Marks KEY busy for the life of the guard, or refuses when it is.
    pub fn hold(&self, key: &str) -> Result<BusyGuard<'_>> {
        if !self.busy.lock().unwrap().insert(key.to_string()) {
            return Err(Error::Busy(format!("{key} has a job of this service running")));
        }
        Ok(BusyGuard {
            svc: self,
            key: key.to_string(),
        })
    }
}

pub struct BusyGuard<'a> {
    svc: &'a Service,
    key: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.svc.busy.lock().unwrap().remove(&self.key);
    }
}
