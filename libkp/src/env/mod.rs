//! Environments in the store: their metadata, names, states and run markers
//! (docs/environments.md).
//!
//! An environment's record is checksummed metadata at `meta/envs/<env_id>.json`;
//! its mutable files (the writable upper layer, overlay work directory and run
//! markers) live under `envs/<env_id>/`. `running` is never stored: it is read
//! from run markers, so a crash cannot leave an environment stuck as running.

mod exec;
mod index;
mod list;
mod origin;
mod record;
mod run;
mod upper;

pub use exec::{exec, request, ExecOptions};
pub use index::IndexProblem;
pub(crate) use list::SUMMARY;
pub use origin::{env_object, host_asks, record_pulled, record_remote};
pub use record::{EnvRecord, Origin, Snapshot, State};
pub(crate) use run::held as run_markers_held;
pub(crate) use run::stale as stale_run_markers;
pub(crate) use run::RunDir;
pub use run::RunMarker;
pub use upper::NEW_ENV_MARKER;
pub(crate) use upper::{checked_upper, create_env, lock_env, remove_leftovers};
pub use upper::{recover, upper_dir};

use std::fs;
use std::path::PathBuf;

use crate::store::Store;

const META_DIR: &str = "envs";

/// What a lifecycle command refused, and what the user can do about it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("no environment {0:?} (see `karapace list`)")]
    NotFound(String),
    #[error("{arg:?} matches several environments: {}; give more digits or the name", candidates.join(", "))]
    Ambiguous { arg: String, candidates: Vec<String> },
    #[error("invalid name {0:?}: names are 1 to 64 characters of A-Z a-z 0-9 _ -")]
    BadName(String),
    #[error("the name {name:?} is taken by environment {by}; choose another or rename that one first")]
    NameTaken { name: String, by: String },
    #[error("environment {env} is {state}: cannot {action}{hint}")]
    WrongState {
        env: String,
        state: String,
        action: &'static str,
        hint: &'static str,
    },
    #[error("environment {env} asks for runtime.backend = {backend:?}, which is for tests only; use \"namespace\" or \"oci\" (change the manifest and rebuild)")]
    Backend { env: String, backend: String },
    #[error("environment {env} is running ({count} process(es) inside): cannot {action}; `karapace stop {env}` first")]
    Running {
        env: String,
        count: usize,
        action: &'static str,
    },
}

/// What the env module returns: its own refusals, or the failure of a module below it,
/// with that module's message (docs/architecture.md, "Errors").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error(transparent)]
    Meta(#[from] crate::meta::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error("sandbox: {0}")]
    Sandbox(#[from] crate::sandbox::Error),
    #[error(transparent)]
    Schema(#[from] crate::schema::Error),
}

impl Error {
    /// The process exit status this failure gives (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Env(_) => crate::exit::FAILURE,
            Error::Store(e) => e.exit_code(),
            Error::Layer(e) => e.exit_code(),
            Error::Meta(e) => e.exit_code(),
            Error::Config(e) => e.exit_code(),
            Error::Sandbox(_) => crate::exit::SANDBOX,
            Error::Schema(e) => e.exit_code(),
        }
    }

    /// Wraps an io error on a store path.
    pub fn store(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let wrap = crate::store::Error::store(op, path);
        move |source| Error::Store(wrap(source))
    }

    /// Wraps an io error on a path the user gave.
    pub fn input(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let wrap = crate::store::Error::input(op, path);
        move |source| Error::Store(wrap(source))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks a name: `[A-Za-z0-9_-]{1,64}`.
pub fn check_name(name: &str) -> Result<(), EnvError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(EnvError::BadName(name.to_string()))
    }
}

impl Store {
    /// `envs/<env_id>/`: the environment's writable layer and run markers.
    pub fn env_dir(&self, env_id: &str) -> PathBuf {
        self.root().join("envs").join(env_id)
    }

    /// Every environment, sorted by name then id.
    pub fn list_envs(&self) -> Result<Vec<EnvRecord>> {
        let dir = self.root().join("meta").join(META_DIR);
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::store("read directory", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::store("read directory", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if let Some(rec) = self.read_env(id)? {
                    out.push(rec);
                }
            }
        }
        out.sort_by(|a, b| {
            (a.name.as_deref().unwrap_or("~"), &a.env_id).cmp(&(b.name.as_deref().unwrap_or("~"), &b.env_id))
        });
        Ok(out)
    }

    pub fn read_env(&self, env_id: &str) -> Result<Option<EnvRecord>> {
        let path = self.meta_path(&format!("{META_DIR}/{env_id}"))?;
        match fs::read(&path) {
            Ok(bytes) => EnvRecord::from_meta_bytes(&bytes, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::store("read", &path)(e)),
        }
    }

    pub fn write_env(&self, rec: &EnvRecord) -> Result<()> {
        Ok(self.write_meta(&format!("{META_DIR}/{}", rec.env_id), &rec.to_json())?)
    }

    /// Reads `env_id`'s record as it is now, lets `change` modify it and
    /// writes it back (with a new `updated`), all under the `run/`
    /// directory's lock, which every change of a record's state, name or
    /// snapshots takes: none of them loses another's, and a command that
    /// makes its run marker after one reads what it wrote. Returns the
    /// record written and what `change` returned.
    pub fn update_env<T>(
        &self,
        env_id: &str,
        change: impl FnOnce(&mut EnvRecord) -> Result<T>,
    ) -> Result<(EnvRecord, T)> {
        let _run = run::RunDir::make(self, env_id)?;
        let mut rec = self.current_env(env_id)?;
        let out = change(&mut rec)?;
        rec.touch();
        self.write_env(&rec)?;
        Ok((rec, out))
    }

    /// `env_id`'s record as it is now; gone is an error.
    pub(crate) fn current_env(&self, env_id: &str) -> Result<EnvRecord> {
        self.read_env(env_id)?
            .ok_or_else(|| EnvError::NotFound(env_id.to_string()).into())
    }

    /// Removes an environment's record and files. The record goes first: an
    /// interrupted destroy leaves only unreferenced files, which gc removes.
    pub fn remove_env(&self, env_id: &str) -> Result<()> {
        let name = self.read_env(env_id).ok().flatten().and_then(|r| r.name);
        self.remove_meta(&format!("{META_DIR}/{env_id}"))?;
        if let Some(name) = name {
            self.unindex_name(&name, env_id)?;
        }
        self.untrust_env(env_id)?;
        let dir = self.env_dir(env_id);
        if !dir.exists() {
            return Ok(());
        }
        // overlayfs leaves work/work with mode 000: make directories writable.
        Ok(crate::store::remove_tree(&dir)?)
    }

    /// Finds an environment by full id, name, or unique id prefix (at least 4
    /// hex digits; the 12-digit short id is one).
    /// What an interrupted restore left is removed on the way.
    pub fn find_env(&self, arg: &str) -> Result<EnvRecord> {
        let rec = self.find_env_record(arg)?;
        recover(self, &rec.env_id)?;
        Ok(rec)
    }

    /// By full id: its record; by name: the name index's entry, checked
    /// against the record it names; by prefix: one listing of `meta/envs/`.
    /// Only when the index has no good entry are the records read, and they
    /// decide (with a warning when the index was wrong).
    fn find_env_record(&self, arg: &str) -> Result<EnvRecord> {
        if arg.len() == 64 && crate::hash::is_hex(arg) {
            if let Some(r) = self.read_env(&arg.to_ascii_lowercase())? {
                return Ok(r);
            }
        }
        let stale = match self.index_lookup(arg)? {
            index::Hit::Found(r) => return Ok(*r),
            index::Hit::Absent => None,
            index::Hit::Stale(id) => Some(id),
        };
        if let Some(id) = &stale {
            crate::log!(
                crate::log::Level::Warn,
                "the name index gives {arg:?} to environment {id:.12}, whose record does not have that name; using the records (`karapace doctor --fix` repairs the index)"
            );
            if let Some(r) = self.scan_for_name(arg)? {
                return Ok(r);
            }
        }
        if arg.len() >= 4 && crate::hash::is_hex(arg) {
            let mut hits = self.ids_with_prefix(&arg.to_ascii_lowercase())?;
            hits.sort();
            match hits.len() {
                1 => {
                    if let Some(r) = self.read_env(&hits[0])? {
                        return Ok(r);
                    }
                }
                0 => {}
                _ => {
                    return Err(EnvError::Ambiguous {
                        arg: arg.to_string(),
                        candidates: hits.iter().map(|id| id.chars().take(12).collect()).collect(),
                    }
                    .into())
                }
            }
        }
        if stale.is_none() && check_name(arg).is_ok() {
            if let Some(r) = self.scan_for_name(arg)? {
                crate::log!(
                    crate::log::Level::Warn,
                    "the name index has no entry for {arg:?}, which environment {} has; using the records (`karapace doctor --fix` repairs the index)",
                    r.short_id()
                );
                return Ok(r);
            }
        }
        Err(EnvError::NotFound(arg.to_string()).into())
    }

    /// Gives `rec` the name `name`, refusing a name another environment has.
    /// Serialised by `locks/names`, so two renames cannot take one name.
    pub fn rename_env(&self, rec: &mut EnvRecord, name: &str) -> Result<()> {
        check_name(name)?;
        self.ensure_name_index()?;
        let _lock = self.names_lock()?;
        if let index::Hit::Found(other) = self.index_check(name)? {
            if other.env_id != rec.env_id {
                return Err(EnvError::NameTaken {
                    name: name.to_string(),
                    by: other.short_id(),
                }
                .into());
            }
        }
        // Index first, then the record, then the old name's entry: a crash
        // between them leaves an entry the records contradict, which
        // lookups see and `doctor --fix` removes.
        self.index_put(name, &rec.env_id)?;
        let (fresh, old) = self.update_env(&rec.env_id, |r| Ok(r.name.replace(name.to_string())))?;
        *rec = fresh;
        match old {
            Some(old) if old != name => self.index_forget(&old, &rec.env_id),
            _ => Ok(()),
        }
    }

    /// Removes `name`'s index entry if it names `env_id`.
    fn unindex_name(&self, name: &str, env_id: &str) -> Result<()> {
        let _lock = self.names_lock()?;
        self.index_forget(name, env_id)
    }

    fn names_lock(&self) -> Result<fs::File> {
        let path = self.path("locks/names");
        let f = self.open_lock(&path)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::store("lock", &path)(e.into()))?;
        Ok(f)
    }

    /// How many processes are inside the environment now; stale markers (left
    /// by a crash or SIGKILL) are removed on the way.
    pub fn running_count(&self, env_id: &str) -> Result<usize> {
        Ok(run::held(&self.env_dir(env_id).join("run"))?.len())
    }

    /// The state as users see it: the stored state, or `running` while a run
    /// marker is held.
    pub fn effective_state(&self, rec: &EnvRecord) -> Result<State> {
        if self.running_count(&rec.env_id)? > 0 {
            return Ok(State::Running);
        }
        Ok(rec.state)
    }

    /// Refuses `action` while the environment runs.
    pub fn ensure_stopped(&self, rec: &EnvRecord, action: &'static str) -> Result<()> {
        let count = self.running_count(&rec.env_id)?;
        if count > 0 {
            return Err(EnvError::Running {
                env: rec.display_name(),
                count,
                action,
            }
            .into());
        }
        Ok(())
    }
}

/// Stops everything running in `rec`: SIGTERM to each process tree, then
/// SIGKILL to what still runs after `timeout`. Returns (trees found, trees
/// killed).
pub fn stop(store: &Store, rec: &EnvRecord, timeout: std::time::Duration) -> Result<(usize, usize)> {
    use rustix::process::Signal;
    let dir = store.env_dir(&rec.env_id).join("run");
    let pids = run::held(&dir)?;
    for pid in &pids {
        // The marker's holder forwards SIGTERM to the sandbox's PID 1.
        if let Some(p) = rustix::process::Pid::from_raw(*pid) {
            let _ = rustix::process::kill_process(p, Signal::TERM);
        }
    }
    let deadline = std::time::Instant::now() + timeout;
    while !run::held(&dir)?.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left = run::held(&dir)?;
    for pid in &left {
        run::signal_tree(*pid, Signal::KILL);
    }
    Ok((pids.len(), left.len()))
}

/// A lifecycle transition a user asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// built → frozen: no more writes; exec still runs, read-only.
    Freeze,
    /// built or frozen → archived: kept (and protected from gc), no entry.
    Archive,
    /// any state → gone, unless running.
    Destroy,
}

impl Store {
    /// Applies a transition, or says why it cannot happen and what to do.
    pub fn transition(&self, rec: &mut EnvRecord, t: Transition) -> Result<()> {
        let (action, allowed, hint): (&'static str, &[State], &'static str) = match t {
            Transition::Freeze => ("freeze", &[State::Built], ""),
            Transition::Archive => ("archive", &[State::Built, State::Frozen], ""),
            Transition::Destroy => ("destroy", &[State::Built, State::Frozen, State::Archived], ""),
        };
        // Checked and done under the run directory's lock, on the record as
        // it is then: a command that starts meanwhile makes its marker
        // before (and this refuses) or after (and reads the new state), never
        // between; another transition, commit or rename comes wholly before
        // or after.
        let run = run::RunDir::make(self, &rec.env_id)?;
        *rec = self.current_env(&rec.env_id)?;
        let count = run.held()?.len();
        if count > 0 {
            return Err(EnvError::Running {
                env: rec.display_name(),
                count,
                action,
            }
            .into());
        }
        if !allowed.contains(&rec.state) {
            let hint = match (t, rec.state) {
                (Transition::Freeze, State::Frozen) => "; it is already frozen",
                (_, State::Archived) => "; an archived environment can only be destroyed",
                _ => hint,
            };
            return Err(EnvError::WrongState {
                env: rec.display_name(),
                state: rec.state.to_string(),
                action,
                hint,
            }
            .into());
        }
        match t {
            Transition::Freeze => rec.state = State::Frozen,
            Transition::Archive => rec.state = State::Archived,
            Transition::Destroy => {
                // The record goes under the lock; the directory, which can
                // be large, after it (commands that look wait for the lock).
                // The name index after the lock (a rename takes the names
                // lock, then this one): an entry left by a crash between
                // names no record, which lookups and `doctor --fix` handle.
                self.remove_meta(&format!("{META_DIR}/{}", rec.env_id))?;
                drop(run);
                if let Some(name) = &rec.name {
                    self.unindex_name(name, &rec.env_id)?;
                }
                return self.remove_env(&rec.env_id);
            }
        }
        rec.touch();
        self.write_env(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(store: &Store, id_seed: &str, name: Option<&str>) -> EnvRecord {
        let r = EnvRecord::new(crate::ObjectId::of(id_seed.as_bytes()).to_hex(), name.map(String::from));
        store.write_env(&r).unwrap();
        r
    }

    #[test]
    fn names_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let a = rec(&store, "a", Some("web"));
        let mut b = rec(&store, "b", None);
        assert_eq!(store.find_env("web").unwrap().env_id, a.env_id);
        assert_eq!(store.find_env(&a.env_id).unwrap().env_id, a.env_id);
        assert_eq!(store.find_env(&b.short_id()).unwrap().env_id, b.env_id);
        assert!(matches!(store.find_env("zzz"), Err(Error::Env(EnvError::NotFound(_)))));
        assert!(matches!(
            store.rename_env(&mut b, "web"),
            Err(Error::Env(EnvError::NameTaken { .. }))
        ));
        assert!(matches!(
            store.rename_env(&mut b, "bad name"),
            Err(Error::Env(EnvError::BadName(_)))
        ));
        assert!(matches!(
            store.rename_env(&mut b, &"x".repeat(65)),
            Err(Error::Env(EnvError::BadName(_)))
        ));
        store.rename_env(&mut b, "db").unwrap();
        assert_eq!(store.find_env("db").unwrap().env_id, b.env_id);
        assert_eq!(store.list_envs().unwrap().len(), 2);
        store.remove_env(&a.env_id).unwrap();
        assert!(store.find_env("web").is_err());
    }

    #[test]
    fn transitions() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let mut r = rec(&store, "t", Some("t"));
        store.transition(&mut r, Transition::Freeze).unwrap();
        assert_eq!(store.read_env(&r.env_id).unwrap().unwrap().state, State::Frozen);
        assert!(matches!(
            store.transition(&mut r, Transition::Freeze),
            Err(Error::Env(EnvError::WrongState { .. }))
        ));
        store.transition(&mut r, Transition::Archive).unwrap();
        assert!(store.transition(&mut r, Transition::Freeze).is_err());
        let m = RunMarker::create(&store, &r.env_id).unwrap();
        assert!(matches!(
            store.transition(&mut r, Transition::Destroy),
            Err(Error::Env(EnvError::Running { .. }))
        ));
        drop(m);
        store.transition(&mut r, Transition::Destroy).unwrap();
        assert!(store.read_env(&r.env_id).unwrap().is_none());
    }

    #[test]
    fn record_changes_start_from_the_record_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let mut r = rec(&store, "s", Some("s"));
        let (mut stale_rename, mut stale_freeze) = (r.clone(), r.clone());
        store.transition(&mut r, Transition::Freeze).unwrap();
        // A rename by a command that read the record before the freeze
        // keeps the freeze.
        store.rename_env(&mut stale_rename, "t").unwrap();
        let now = store.read_env(&r.env_id).unwrap().unwrap();
        assert_eq!((now.state, now.name.as_deref()), (State::Frozen, Some("t")));
        // A second freeze that read it before the first sees it frozen.
        assert!(matches!(
            store.transition(&mut stale_freeze, Transition::Freeze),
            Err(Error::Env(EnvError::WrongState { .. }))
        ));
        assert_eq!(stale_freeze.name.as_deref(), Some("t"));
    }

    #[test]
    fn running_follows_markers_and_survives_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let r = rec(&store, "c", Some("x"));
        assert_eq!(store.effective_state(&r).unwrap(), State::Built);
        let marker = RunMarker::create(&store, &r.env_id).unwrap();
        assert_eq!(store.effective_state(&r).unwrap(), State::Running);
        assert!(store.ensure_stopped(&r, "destroy").is_err());
        drop(marker);
        assert_eq!(store.effective_state(&r).unwrap(), State::Built);
        // A marker file nobody holds (its process was killed) is stale.
        std::fs::write(store.env_dir(&r.env_id).join("run/12345"), "").unwrap();
        assert_eq!(store.running_count(&r.env_id).unwrap(), 0);
        assert!(!store.env_dir(&r.env_id).join("run/12345").exists());
    }
}
