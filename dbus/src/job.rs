//! Long operations as job objects (org.karapace.Job1): each runs a `karapace`
//! child in a thread of its own, relays its stderr lines as JobProgress, and
//! ends with JobFinished on the manager (docs/dbus.md, "Jobs").

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};
use zbus::Connection;

use crate::child;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::service::Service;
use crate::types::{json_dict, Dict};

pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";

/// What a job object shows; written by its thread, read by callers.
#[derive(Default)]
struct JobState {
    status: String,
    result: Dict,
    error_name: String,
    error_message: String,
    /// The child's process group while it runs.
    pgid: Option<rustix::process::Pid>,
}

pub struct Job {
    svc: Arc<Service>,
    kind: String,
    target: String,
    /// Shared with the thread reading the child's progress stream.
    progress: Arc<AtomicU32>,
    cancelled: AtomicBool,
    state: Mutex<JobState>,
}

fn clone_dict(d: &Dict) -> Dict {
    d.iter()
        .filter_map(|(k, v)| v.try_clone().ok().map(|v| (k.clone(), v)))
        .collect()
}

// Every property read counts as a call for the idle exit: a client polling a
// job keeps the service, and so the job object, alive.
#[zbus::interface(name = "org.karapace.Job1")]
impl Job {
    /// Stops the job: SIGTERM to its child's process group, which karapace
    /// handles by stopping cleanly (exit 130). Its status becomes `cancelled`.
    async fn cancel(&self, #[zbus(header)] hdr: Header<'_>, #[zbus(connection)] conn: &Connection) -> Result<()> {
        self.svc.check_caller(conn, &hdr).await?;
        let st = self.state.lock().unwrap();
        let Some(pgid) = st.pgid.filter(|_| st.status == RUNNING) else {
            return Err(Error::WrongState(format!(
                "the {} job has already {}",
                self.kind, st.status
            )));
        };
        self.cancelled.store(true, Ordering::SeqCst);
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM);
        Ok(())
    }

    /// Per cent done: from the child's progress stream while it runs
    /// (never 100, never lower than before), 100 once it has finished.
    #[zbus(property)]
    async fn progress(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<u32> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(self.progress.load(Ordering::SeqCst))
    }

    /// `running`, `succeeded`, `failed` or `cancelled`.
    #[zbus(property)]
    async fn status(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<String> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(self.state.lock().unwrap().status.clone())
    }

    /// The operation: `build`, `gc`, `verify-store`, `commit`, `run`, `push`, `pull`.
    #[zbus(property)]
    async fn kind(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<String> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(self.kind.clone())
    }

    /// The environment, manifest or reference it works on ("" for the store).
    #[zbus(property)]
    async fn target(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<String> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(self.target.clone())
    }

    /// The operation's `--json` document, once finished.
    #[zbus(property)]
    async fn result(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<Dict> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(clone_dict(&self.state.lock().unwrap().result))
    }

    #[zbus(property)]
    async fn error_name(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<String> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(self.state.lock().unwrap().error_name.clone())
    }

    #[zbus(property)]
    async fn error_message(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<String> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(self.state.lock().unwrap().error_message.clone())
    }
}

/// What a job runs and holds.
pub struct Spec {
    pub kind: &'static str,
    /// What is busy while it runs (an env_id or a manifest path); also shown
    /// as the job's Target.
    pub target: String,
    pub args: Vec<std::ffi::OsString>,
    /// `run`: the result is the exit status, not a document.
    pub exit_status_result: bool,
}

impl Spec {
    pub fn new(kind: &'static str, target: String, args: Vec<std::ffi::OsString>) -> Spec {
        Spec {
            kind,
            target,
            args,
            exit_status_result: false,
        }
    }

    pub fn exit_status_result(mut self) -> Spec {
        self.exit_status_result = true;
        self
    }
}

/// Starts SPEC and returns its job object's path at once.
pub async fn start(svc: &Arc<Service>, conn: &Connection, spec: Spec) -> Result<OwnedObjectPath> {
    let busy_key = (!spec.target.is_empty()).then(|| spec.target.clone());
    if let Some(k) = &busy_key {
        if !svc.busy.lock().unwrap().insert(k.clone()) {
            return Err(Error::Busy(format!("{k} has a job of this service running")));
        }
    }
    let release = move |svc: &Service| {
        if let Some(k) = &busy_key {
            svc.busy.lock().unwrap().remove(k);
        }
    };
    let child = match child::spawn(&svc.store_root, &spec.args, true) {
        Ok(c) => c,
        Err(e) => {
            release(svc);
            return Err(e);
        }
    };
    let pgid = rustix::process::Pid::from_child(&child.child);
    let id = svc.next_job.fetch_add(1, Ordering::SeqCst);
    let path = OwnedObjectPath::try_from(format!("/org/karapace/Manager1/jobs/{id}"))
        .map_err(|e| Error::Failed(e.to_string()))?;
    let job = Job {
        svc: svc.clone(),
        kind: spec.kind.to_string(),
        target: spec.target.clone(),
        progress: Arc::new(AtomicU32::new(0)),
        cancelled: AtomicBool::new(false),
        state: Mutex::new(JobState {
            status: RUNNING.into(),
            pgid: Some(pgid),
            ..JobState::default()
        }),
    };
    svc.jobs.fetch_add(1, Ordering::SeqCst);
    conn.object_server().at(path.as_ref(), job).await?;
    let (svc2, conn2, path2) = (svc.clone(), conn.clone(), path.clone());
    std::thread::spawn(move || {
        zbus::block_on(finish(&svc2, &conn2, path2.as_ref(), child, &spec));
        release(&svc2);
        svc2.jobs.fetch_sub(1, Ordering::SeqCst);
        svc2.touch();
    });
    Ok(path)
}

/// Waits for the job's child and publishes how it ended.
async fn finish(svc: &Service, conn: &Connection, path: ObjectPath<'_>, child: child::Spawned, spec: &Spec) {
    let (Ok(emitter), Ok(iface)) = (
        SignalEmitter::new(conn, "/org/karapace/Manager1"),
        conn.object_server().interface::<_, Job>(&path).await,
    ) else {
        // Not reached (a valid path, registered by start); the child is
        // reaped all the same.
        let _ = child::wait(child, |_| {}, |_| {});
        return;
    };
    let progress = iface.get().await.progress.clone();
    // The two readers' signals go out one at a time, so their values never
    // go down on the bus.
    let sending = Mutex::new(());
    let outcome = child::wait(
        child,
        |line| {
            let _one = sending.lock().unwrap();
            let p = progress.load(Ordering::SeqCst);
            let _ = zbus::block_on(Manager::job_progress(&emitter, path.clone(), p, line));
        },
        |line| {
            // Only forward: a phase of several parts may count again.
            let p = line.percent();
            let _one = sending.lock().unwrap();
            if progress.fetch_max(p, Ordering::SeqCst) < p {
                zbus::block_on(async {
                    let _ = iface.get().await.progress_changed(iface.signal_emitter()).await;
                    let _ = Manager::job_progress(&emitter, path.clone(), p, &line.phase).await;
                });
            }
        },
    );
    let job = iface.get().await;
    let (status, result, err) = match outcome {
        Err(e) => (FAILED, Dict::new(), Some(e)),
        Ok(o) => {
            let mut result = o.json.as_ref().map(json_dict).unwrap_or_default();
            if spec.exit_status_result {
                result.insert("exit_status".into(), zbus::zvariant::OwnedValue::from(o.code));
            }
            let cancelled = job.cancelled.load(Ordering::SeqCst);
            // A run's status is the command's own (docs/cli.md, exec): it
            // names no karapace error.
            let o = if spec.exit_status_result && o.code != 0 && !cancelled {
                let why = format!("the command exited with status {}", o.code);
                let msg = if o.last_line.is_empty() {
                    why
                } else {
                    format!("{why}: {}", o.last_line)
                };
                Err(Error::Failed(msg))
            } else {
                o.into_result()
            };
            match o {
                Ok(_) => (SUCCEEDED, result, None),
                Err(_) if cancelled => (CANCELLED, result, Some(Error::Cancelled("cancelled".into()))),
                Err(e) => (FAILED, result, Some(e)),
            }
        }
    };
    let (error_name, error_message) = err.map(|e| (e.dbus_name(), e.message())).unwrap_or_default();
    {
        let mut st = job.state.lock().unwrap();
        st.status = status.into();
        st.result = clone_dict(&result);
        st.error_name = error_name.clone();
        st.error_message = error_message.clone();
        st.pgid = None;
    }
    job.progress.store(100, Ordering::SeqCst);
    let _ = job.status_changed(iface.signal_emitter()).await;
    let _ = job.progress_changed(iface.signal_emitter()).await;
    drop(job);
    let _ = Manager::job_progress(&emitter, path.clone(), 100, status).await;
    let _ = Manager::job_finished(&emitter, path.clone(), status, result, &error_name, &error_message).await;
    if svc.notify {
        crate::notify::job_finished(conn, spec.kind, &spec.target, status, &error_message).await;
    }
}
