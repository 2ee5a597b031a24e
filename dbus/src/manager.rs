//! org.karapace.Manager1 (docs/dbus.md): reads through libkp, everything that
//! needs a single-threaded process or a re-exec through a `karapace` child.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libkp::env::{EnvRecord, State, Transition};
use libkp::Store;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};
use zbus::Connection;

use crate::child;
use crate::error::{Error, Result};
use crate::job::{self, Spec};
use crate::service::Service;
use crate::types::{known_options, opt, Dict, Environment, Preset, Snapshot};

/// The interface's version: bumped when a method's signature changes.
pub const API_VERSION: u32 = 1;

pub struct Manager {
    pub svc: Arc<Service>,
}

type Options = HashMap<String, OwnedValue>;

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

impl Manager {
    /// The store, or None when there is none yet.
    fn store(&self) -> Result<Option<Store>> {
        if !self.svc.store_root.join("version").exists() {
            return Ok(None);
        }
        Ok(Some(Store::open(&self.svc.store_root)?))
    }

    /// ENV (a name, id or unique prefix) and the store holding it.
    fn find(&self, env: &str) -> Result<(Store, EnvRecord)> {
        let Some(store) = self.store()? else {
            return Err(Error::NotFound(format!(
                "no environment {env:?}: there is no store at {}",
                self.svc.store_root.display()
            )));
        };
        let rec = store.find_env(env)?;
        Ok((store, rec))
    }

    /// ENV, refused when it runs or a job of this service holds it.
    fn find_stopped(&self, env: &str, action: &'static str) -> Result<(Store, EnvRecord)> {
        let (store, rec) = self.find(env)?;
        if store.effective_state(&rec)? == State::Running {
            return Err(Error::Busy(format!(
                "environment {} is running: cannot {action}; stop it first",
                rec.display_name()
            )));
        }
        Ok((store, rec))
    }

    /// Runs a short `karapace` command off the bus's thread, holding KEY busy.
    async fn run_child(&self, key: &str, args: Vec<OsString>) -> Result<serde_json::Value> {
        let _guard = self.svc.hold(key)?;
        let root = self.svc.store_root.clone();
        blocking::unblock(move || child::run(&root, args)).await
    }
}

/// A manifest argument: an absolute path to a file or its directory, which
/// must parse; the path `karapace build` is given.
fn checked_manifest(arg: &str) -> Result<PathBuf> {
    let p = Path::new(arg);
    if !p.is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "manifest {arg:?}: give an absolute path"
        )));
    }
    let path = libkp::schema::manifest_path(Some(p));
    if !path.exists() {
        return Err(Error::NotFound(format!("manifest {}: no such file", path.display())));
    }
    libkp::schema::manifest::load(&path).map_err(|e| Error::InvalidManifest(e.to_string()))?;
    Ok(path)
}

fn build_spec(manifest: &str, name: Option<&str>, options: &Options) -> Result<Spec> {
    known_options(options, &["locked", "offline", "require_pinned_image"])?;
    let locked = opt::<bool>(options, "locked")?.unwrap_or(false);
    manifest_spec("build", manifest, name, options, locked)
}

/// `karapace rebuild MANIFEST`: options name (s), offline, require_pinned_image (b).
fn rebuild_spec(manifest: &str, options: &Options) -> Result<Spec> {
    known_options(options, &["name", "offline", "require_pinned_image"])?;
    let name = opt::<String>(options, "name")?;
    manifest_spec("rebuild", manifest, name.as_deref(), options, false)
}

fn manifest_spec(
    verb: &'static str,
    manifest: &str,
    name: Option<&str>,
    options: &Options,
    locked: bool,
) -> Result<Spec> {
    if let Some(n) = name {
        libkp::env::check_name(n)?;
    }
    let path = checked_manifest(manifest)?;
    let mut args = vec![OsString::from(verb), path.clone().into_os_string()];
    if let Some(n) = name {
        args.extend(os(&["--name", n]));
    }
    if locked {
        args.push("--locked".into());
    }
    for (key, flag) in [
        ("offline", "--offline"),
        ("require_pinned_image", "--require-pinned-image"),
    ] {
        if opt::<bool>(options, key)?.unwrap_or(false) {
            args.push(flag.into());
        }
    }
    // A build and a rebuild of one manifest hold the same key.
    Ok(Spec::new(verb, path.display().to_string(), args))
}

#[zbus::interface(name = "org.karapace.Manager1")]
impl Manager {
    #[zbus(property)]
    async fn api_version(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<u32> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(API_VERSION)
    }

    /// The store this service works on ($KARAPACE_STORE, else the default).
    #[zbus(property)]
    async fn store_root(
        &self,
        #[zbus(header)] hdr: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<String> {
        self.svc.check_property_caller(conn, hdr.as_ref()).await?;
        Ok(self.svc.store_root.display().to_string())
    }

    /// Every environment, as `karapace list` sees it; empty without a store.
    #[zbus(out_args("environments"))]
    async fn list_environments(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<Environment>> {
        self.svc.check_caller(conn, &hdr).await?;
        let Some(store) = self.store()? else {
            return Ok(Vec::new());
        };
        let rows = store.list_envs_with_state()?;
        Ok(rows.iter().map(|(rec, state)| Environment::new(rec, *state)).collect())
    }

    /// `built`, `running`, `frozen` or `archived`.
    #[zbus(out_args("state"))]
    async fn get_environment_status(
        &self,
        env: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String> {
        self.svc.check_caller(conn, &hdr).await?;
        let (store, rec) = self.find(env)?;
        Ok(store.effective_state(&rec)?.as_str().to_string())
    }

    /// The full env_id.
    #[zbus(out_args("env_id"))]
    async fn get_environment_hash(
        &self,
        env: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String> {
        self.svc.check_caller(conn, &hdr).await?;
        Ok(self.find(env)?.1.env_id)
    }

    /// `karapace build MANIFEST` as a job. Options: locked, offline,
    /// require_pinned_image (b).
    #[zbus(out_args("job"))]
    async fn build_environment(
        &self,
        manifest: &str,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        job::start(&self.svc, conn, build_spec(manifest, None, &options)?).await
    }

    /// `karapace build MANIFEST --name NAME` as a job.
    #[zbus(out_args("job"))]
    async fn build_named_environment(
        &self,
        manifest: &str,
        name: &str,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        job::start(&self.svc, conn, build_spec(manifest, Some(name), &options)?).await
    }

    /// `karapace rebuild MANIFEST` as a job: resolved afresh, the previous
    /// environment of the manifest destroyed once the new one exists.
    /// Options: name (s), offline, require_pinned_image (b).
    #[zbus(out_args("job"))]
    async fn rebuild_environment(
        &self,
        manifest: &str,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        job::start(&self.svc, conn, rebuild_spec(manifest, &options)?).await
    }

    async fn destroy_environment(
        &self,
        env: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<()> {
        self.svc.check_caller(conn, &hdr).await?;
        let (_, rec) = self.find_stopped(env, "destroy")?;
        self.run_child(&rec.env_id, os(&["destroy", &rec.env_id])).await?;
        Ok(())
    }

    /// `karapace exec ENV -- ARGV...` as a job whose result holds the
    /// command's `exit_status`. Options: cwd (s), env (as of K=V).
    #[zbus(out_args("job"))]
    async fn run_environment(
        &self,
        env: &str,
        argv: Vec<String>,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        known_options(&options, &["cwd", "env"])?;
        if argv.is_empty() {
            return Err(Error::InvalidArgument("argv is empty: give the command to run".into()));
        }
        let (_, rec) = self.find(env)?;
        let mut args = os(&["exec"]);
        if let Some(cwd) = opt::<String>(&options, "cwd")? {
            args.extend(os(&["--cwd", &cwd]));
        }
        for kv in opt::<Vec<String>>(&options, "env")?.unwrap_or_default() {
            if !kv.contains('=') {
                return Err(Error::InvalidArgument(format!("option \"env\": {kv:?} is not K=V")));
            }
            args.extend(os(&["--env", &kv]));
        }
        args.push(rec.env_id.clone().into());
        args.push("--".into());
        args.extend(argv.into_iter().map(OsString::from));
        // Runs may overlap: a run holds nothing busy.
        let spec = Spec::new("run", String::new(), args).exit_status_result();
        job::start(&self.svc, conn, spec).await
    }

    async fn rename_environment(
        &self,
        env: &str,
        new_name: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<()> {
        self.svc.check_caller(conn, &hdr).await?;
        let (store, mut rec) = self.find(env)?;
        let _guard = self.svc.hold(&rec.env_id)?;
        store.rename_env(&mut rec, new_name)?;
        Ok(())
    }

    /// The templates `karapace new --template` writes.
    #[zbus(out_args("presets"))]
    async fn list_presets(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<Preset>> {
        self.svc.check_caller(conn, &hdr).await?;
        use libkp::schema::templates::{description, PRESETS};
        Ok(PRESETS
            .iter()
            .map(|(name, text)| Preset {
                name: name.to_string(),
                description: description(text),
                image: libkp::schema::manifest::parse(text, Path::new(name))
                    .map(|m| m.base.to_string())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// `karapace gc` as a job. Options: dry_run (b).
    #[zbus(out_args("job"))]
    async fn garbage_collect(
        &self,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        known_options(&options, &["dry_run"])?;
        let mut args = os(&["gc"]);
        if opt::<bool>(&options, "dry_run")?.unwrap_or(false) {
            args.push("--dry-run".into());
        }
        let spec = Spec::new("gc", String::new(), args);
        job::start(&self.svc, conn, spec).await
    }

    /// `karapace verify-store` as a job; problems found make it `failed`,
    /// with the document (`ok`, `problems`) in its result.
    #[zbus(out_args("job"))]
    async fn verify_store(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        let spec = Spec::new("verify-store", String::new(), os(&["verify-store"]));
        job::start(&self.svc, conn, spec).await
    }

    async fn freeze(
        &self,
        env: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<()> {
        self.svc.check_caller(conn, &hdr).await?;
        self.transition(env, Transition::Freeze, "freeze")
    }

    async fn archive(
        &self,
        env: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<()> {
        self.svc.check_caller(conn, &hdr).await?;
        self.transition(env, Transition::Archive, "archive")
    }

    /// `karapace commit ENV` as a job; its result is commit's document.
    #[zbus(out_args("job"))]
    async fn commit(
        &self,
        env: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        let (_, rec) = self.find(env)?;
        let spec = Spec::new("commit", rec.env_id.clone(), os(&["commit", &rec.env_id]));
        job::start(&self.svc, conn, spec).await
    }

    /// ENV's snapshots, oldest first.
    #[zbus(out_args("snapshots"))]
    async fn snapshots(
        &self,
        env: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<Snapshot>> {
        self.svc.check_caller(conn, &hdr).await?;
        let (_, rec) = self.find(env)?;
        Ok(rec
            .snapshots
            .iter()
            .map(|s| Snapshot {
                layer: s.layer.clone(),
                created: s.created,
                size_added: s.size_added,
            })
            .collect())
    }

    /// Makes ENV's writable layer equal to SNAPSHOT (an id or unique prefix
    /// of one of ENV's); returns the snapshot's full id.
    #[zbus(out_args("snapshot"))]
    async fn restore(
        &self,
        env: &str,
        snapshot: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String> {
        self.svc.check_caller(conn, &hdr).await?;
        let (_, rec) = self.find_stopped(env, "restore")?;
        let matching: Vec<_> = rec
            .snapshots
            .iter()
            .filter(|s| !snapshot.is_empty() && s.layer.starts_with(snapshot))
            .collect();
        match matching.len() {
            0 => {
                return Err(Error::NotFound(format!(
                    "environment {} has no snapshot {snapshot:?} (see Snapshots)",
                    rec.display_name()
                )))
            }
            1 => {}
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{snapshot:?} matches several snapshots of {}; give more digits",
                    rec.display_name()
                )))
            }
        }
        let layer = matching[0].layer.clone();
        self.run_child(&rec.env_id, os(&["restore", &rec.env_id, &layer]))
            .await?;
        Ok(layer)
    }

    /// SIGTERM to what runs inside ENV, SIGKILL after the timeout. Options:
    /// timeout (d, seconds, default 10). Returns (stopped, killed).
    #[zbus(out_args("stopped", "killed"))]
    async fn stop(
        &self,
        env: &str,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(u32, u32)> {
        self.svc.check_caller(conn, &hdr).await?;
        known_options(&options, &["timeout"])?;
        let (_, rec) = self.find(env)?;
        let mut args = os(&["stop"]);
        if let Some(t) = opt::<f64>(&options, "timeout")? {
            if !(t.is_finite() && t >= 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "option \"timeout\": {t} is not a number of seconds"
                )));
            }
            args.extend(os(&["--timeout", &t.to_string()]));
        }
        args.push(rec.env_id.clone().into());
        let root = self.svc.store_root.clone();
        let doc = blocking::unblock(move || child::run(&root, args)).await?;
        let n = |k: &str| doc.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        Ok((n("stopped"), n("killed")))
    }

    /// `karapace push ENV [REF]` as a job. REF "" pushes as ENV's name with
    /// tag `latest`. Options: remote (s), snapshots (b).
    #[zbus(out_args("job"))]
    async fn push(
        &self,
        env: &str,
        reference: &str,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        known_options(&options, &["remote", "snapshots"])?;
        let (_, rec) = self.find(env)?;
        let mut args = os(&["push", &rec.env_id]);
        if !reference.is_empty() {
            args.push(reference.into());
        }
        if let Some(r) = opt::<String>(&options, "remote")? {
            args.extend(os(&["--remote", &r]));
        }
        if opt::<bool>(&options, "snapshots")?.unwrap_or(false) {
            args.push("--snapshots".into());
        }
        let spec = Spec::new("push", rec.env_id.clone(), args);
        job::start(&self.svc, conn, spec).await
    }

    /// `karapace pull NAME@TAG` as a job. Options: remote (s), name (s).
    #[zbus(out_args("job"))]
    async fn pull(
        &self,
        reference: &str,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        self.svc.check_caller(conn, &hdr).await?;
        known_options(&options, &["remote", "name"])?;
        if reference.is_empty() || reference.starts_with('-') {
            return Err(Error::InvalidArgument(format!(
                "reference {reference:?}: expected NAME@TAG"
            )));
        }
        let mut args = os(&["pull", reference]);
        if let Some(r) = opt::<String>(&options, "remote")? {
            args.extend(os(&["--remote", &r]));
        }
        if let Some(n) = opt::<String>(&options, "name")? {
            libkp::env::check_name(&n)?;
            args.extend(os(&["--name", &n]));
        }
        let spec = Spec::new("pull", format!("pull {reference}"), args);
        job::start(&self.svc, conn, spec).await
    }

    /// An environment record was created, changed, renamed or removed.
    #[zbus(signal)]
    pub async fn environments_changed(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    /// A line of the job's messages (its child's stderr), and its progress.
    #[zbus(signal)]
    pub async fn job_progress(
        emitter: &SignalEmitter<'_>,
        job: ObjectPath<'_>,
        progress: u32,
        message: &str,
    ) -> zbus::Result<()>;

    /// The job ended: its status, its result, and the error when it failed.
    #[zbus(signal)]
    pub async fn job_finished(
        emitter: &SignalEmitter<'_>,
        job: ObjectPath<'_>,
        status: &str,
        result: Dict,
        error_name: &str,
        error_message: &str,
    ) -> zbus::Result<()>;
}

impl Manager {
    fn transition(&self, env: &str, t: Transition, action: &'static str) -> Result<()> {
        let (store, mut rec) = self.find_stopped(env, action)?;
        let _guard = self.svc.hold(&rec.env_id)?;
        store.transition(&mut rec, t)?;
        Ok(())
    }
}
