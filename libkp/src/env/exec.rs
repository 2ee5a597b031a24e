//! Running commands in a built environment: its layers' shared checkouts as
//! overlay lowers, its writable layer as the upper, what its lock says about
//! integration, mounts, network and limits, and a run marker held for as long
//! as the command runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{EnvError, EnvRecord, Origin, RunMarker, State};
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::sandbox::{self, policy, BindRequest, HostFacts, HostSwitches, Limits, Net, Root, SandboxRequest};
use crate::schema::{OciRuntime, Settings};
use crate::store::Store;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    pub argv: Vec<OsString>,
    /// Extra variables (`KEY=VALUE`), set after the policy's defaults.
    pub env: Vec<(String, OsString)>,
    pub cwd: Option<PathBuf>,
    /// Host paths manifest mounts may use this run (`--allow-mount`), on top
    /// of the configuration's `[sandbox] allow_mounts`; naming a sensitive
    /// path allows it.
    pub allow_mounts: Vec<PathBuf>,
    /// Apply a remote environment's mounts and integration for this run as
    /// if it were trusted (`--trust`).
    pub trust: bool,
    /// The system-call filter for this run (`--seccomp`); `None` takes the
    /// configuration's `[sandbox] seccomp`, else the default filter.
    pub seccomp: Option<crate::sandbox::Seccomp>,
    /// The directory relative mount sources are relative to (and an allowed
    /// root), in place of the manifest's: `quick` gives the caller's working
    /// directory, its manifest being in the store. Local environments only.
    pub mount_base: Option<PathBuf>,
}

/// The sandbox request for running `opts` in `rec`; `upper`/`work` are the
/// writable layer to use.
pub fn request(
    store: &Store,
    rec: &EnvRecord,
    upper: PathBuf,
    work: PathBuf,
    opts: &ExecOptions,
) -> Result<SandboxRequest> {
    let settings = rec.settings.clone().unwrap_or_default();
    if settings.runtime.backend == crate::schema::Backend::Mock {
        return Err(EnvError::Backend {
            env: rec.display_name(),
            backend: settings.runtime.backend.as_str().to_string(),
        }
        .into());
    }
    let remote = rec.origin == Origin::Remote;
    if remote && !opts.trust && !store.is_trusted(&rec.env_id)? {
        let asks = super::host_asks(rec);
        if !asks.is_empty() {
            let name = rec.display_name();
            return Err(sandbox::Error::Invalid {
                what: format!("environment {name} is remote and not trusted"),
                reason: format!(
                    "it asks for {}; `karapace trust {name}` allows that, --trust for one run",
                    asks.join(", ")
                ),
            }
            .into());
        }
    }
    // A remote environment's manifest is not on this machine: relative
    // sources have nothing to resolve against.
    let manifest_dir = match remote {
        true => None,
        false => opts.mount_base.clone().or_else(|| {
            rec.manifest
                .as_deref()
                .map(Path::new)
                .and_then(Path::parent)
                .map(Path::to_path_buf)
        }),
    };
    let config = crate::config::SandboxConfig::load()?;
    let seccomp = opts.seccomp.unwrap_or(config.seccomp);
    let mut explicit = config.allow_mounts;
    explicit.extend(opts.allow_mounts.iter().cloned());
    let (binds, allow) = binds(store, &settings, remote, manifest_dir.as_deref(), &explicit)?;
    let mut lowers = Vec::with_capacity(rec.layers.len());
    for hex in rec.layers.iter().rev() {
        let id = ObjectId::from_hex(hex).ok_or_else(|| crate::meta::Error::Corrupt {
            path: store.meta_path(&format!("envs/{}", rec.env_id)).unwrap_or_default(),
            reason: format!("layer {hex:?} is not an id"),
        })?;
        lowers.push(store.cached_checkout(&id)?);
    }
    let i = settings.integration;
    let mut req = SandboxRequest {
        root: Root::Overlay { lowers, upper, work },
        hostname: Some(rec.name.clone().unwrap_or_else(|| rec.short_id())),
        net: if settings.runtime.network_isolation {
            Net::None
        } else {
            Net::Host
        },
        host: HostSwitches {
            home: i.home,
            wayland: i.wayland,
            x11: i.x11,
            pipewire: i.pipewire,
            pulseaudio: i.pulseaudio,
            dbus_session: i.dbus_session,
            ssh_agent: i.ssh_agent,
            gpu: i.gpu_devices,
            audio: i.sound_devices,
            fonts: i.fonts,
            themes: i.themes,
        },
        limits: Limits {
            cpu_shares: settings.runtime.resource_limits.cpu_shares,
            memory_mb: settings.runtime.resource_limits.memory_limit_mb,
        },
        binds,
        allow,
        env: opts.env.clone(),
        cwd: opts.cwd.clone(),
        argv: opts.argv.clone(),
        seccomp,
        ..SandboxRequest::default()
    };
    if req.argv.is_empty() {
        req.argv.push("/bin/sh".into());
    }
    Ok(req)
}

/// The manifest's mounts as binds of resolved host paths, and the allowlist
/// the sandbox checks them against again (docs/manifest.md, "Mount policy"):
/// `~` is the caller's home, a relative source is relative to the manifest's
/// directory; with `..` and symlinks resolved, a source must lie under the
/// manifest's directory (local environments only), `$HOME`, `/tmp` or an
/// `explicit` root, and must not be, lie under or contain a sensitive path
/// that is not itself explicitly allowed.
fn binds(
    store: &Store,
    settings: &Settings,
    remote: bool,
    manifest_dir: Option<&Path>,
    explicit: &[PathBuf],
) -> Result<(Vec<BindRequest>, Vec<PathBuf>)> {
    if settings.mounts.is_empty() {
        // Nothing to check: no path resolved on the exec path.
        return Ok((Vec::new(), Vec::new()));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute());
    let mut roots: Vec<PathBuf> = manifest_dir.map(Path::to_path_buf).into_iter().collect();
    roots.extend(home.clone());
    roots.push("/tmp".into());
    roots.extend(explicit.iter().cloned());
    let roots: Vec<PathBuf> = roots.iter().map(|r| policy::resolve_existing(r)).collect();
    let sensitive = policy::sensitive_paths(&[store.root().to_path_buf()]);
    let hint = "allow it with --allow-mount PATH or [sandbox] allow_mounts";
    let mut out = Vec::new();
    for (label, m) in &settings.mounts {
        let refuse = |reason: String| -> Error {
            sandbox::Error::Invalid {
                what: format!("mount policy: mounts.{label} {}", m.host),
                reason,
            }
            .into()
        };
        let src = match (m.host.as_str(), &home) {
            ("~", Some(h)) => h.clone(),
            (p, Some(h)) if p.starts_with("~/") => h.join(&p[2..]),
            (p, None) if p == "~" || p.starts_with("~/") => return Err(refuse("HOME is not set".into())),
            (p, _) if Path::new(p).is_absolute() => PathBuf::from(p),
            (p, _) => match (manifest_dir, remote) {
                (Some(dir), _) => dir.join(p),
                (None, false) => PathBuf::from(".").join(p),
                (None, true) => {
                    return Err(refuse(
                        "a relative source needs the manifest's directory, and a remote environment's is not here"
                            .into(),
                    ))
                }
            },
        };
        let dst = PathBuf::from(&m.container);
        // A source that does not resolve is left to the sandbox, which
        // refuses it naming the path.
        let Ok(resolved) = std::fs::canonicalize(&src) else {
            out.push(BindRequest {
                src,
                dst,
                ro: m.read_only,
            });
            continue;
        };
        if !roots.iter().any(|r| resolved.starts_with(r)) {
            let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            return Err(refuse(format!(
                "resolves to {}, outside the allowed roots ({}); {hint}",
                resolved.display(),
                shown.join(", ")
            )));
        }
        let what = format!("mount policy: mounts.{label} {}", m.host);
        policy::check_sensitive(&what, &resolved, explicit, &sensitive, hint)?;
        out.push(BindRequest {
            src: resolved,
            dst,
            ro: m.read_only,
        });
    }
    Ok((out, roots))
}

/// Runs a command in `rec` and returns its exit status. Frozen environments
/// run over a scratch writable layer that is discarded afterwards, so nothing
/// reaches theirs; archived ones do not run.
pub fn exec(store: &Store, rec: &EnvRecord, opts: &ExecOptions) -> Result<i32> {
    refuse_archived(rec)?;
    let dir = store.env_dir(&rec.env_id);
    let _marker = RunMarker::create(store, &rec.env_id)?;
    // The record as it is now that the marker is held: a freeze (or archive)
    // that finished before the marker was made wrote its state before, one
    // that starts after it sees the marker and refuses (Store::transition).
    let rec = &store.current_env(&rec.env_id)?;
    refuse_archived(rec)?;
    if rec.state != State::Frozen {
        return exec_in(store, rec, opts, None);
    }
    // A frozen environment's writable layer becomes the top lower under a
    // scratch upper, in this command's own work directory, dropped when the
    // command ends. (Other execs share the environment's overlay and its
    // work directory, and need none of their own.)
    let own = own_work_dir(store, &dir)?;
    let status = exec_in(store, rec, opts, Some(&own));
    let _ = crate::store::remove_tree(&own);
    status
}

fn refuse_archived(rec: &EnvRecord) -> Result<()> {
    if rec.state != State::Archived {
        return Ok(());
    }
    Err(EnvError::WrongState {
        env: rec.display_name(),
        state: rec.state.to_string(),
        action: "run commands",
        hint: "; archived environments keep their content but cannot run",
    }
    .into())
}

/// `own`: the command's own work directory, for a frozen environment.
fn exec_in(store: &Store, rec: &EnvRecord, opts: &ExecOptions, own: Option<&Path>) -> Result<i32> {
    let (upper, work) = if let Some(own) = own {
        let (u, w) = (own.join("upper"), own.join("work"));
        for d in [&u, &w] {
            std::fs::create_dir(d).map_err(Error::store("create directory", d))?;
        }
        (u, w)
    } else {
        // Every exec of a running environment shares one overlay (sandbox
        // share.rs), so its work directory is the environment's, not ours.
        let shared = store.env_dir(&rec.env_id).join("work").join(super::run::SHARED_WORK);
        (super::checked_upper(store, &rec.env_id)?, shared)
    };
    // Made once the request passed policy, so a refusal changes nothing.
    let mut req = request(store, rec, upper, work.clone(), opts)?;
    let frozen = own.is_some();
    let runtime = rec
        .settings
        .as_ref()
        .filter(|s| s.runtime.backend == crate::schema::Backend::Oci)
        .map(|s| s.runtime.runtime.unwrap_or_default());
    // The OCI backend mounts an overlay of its own for each run, so it runs
    // alone over the environment's upper directory (held until it ends).
    let mut _alone = None;
    if !frozen {
        store.make_dir(&work)?;
        let share = store.make_dir(&store.env_dir(&rec.env_id).join("share"))?;
        match runtime {
            None => req.share = Some(share),
            Some(_) => _alone = Some(oci_alone(&share, rec)?),
        }
    }
    if frozen {
        if let Root::Overlay { lowers, .. } = &mut req.root {
            lowers.insert(0, super::checked_upper(store, &rec.env_id)?);
        }
    }
    req.runtime_limits = runtime.is_some();
    let plan = sandbox::plan(&req, &HostFacts::current())?;
    match runtime {
        None => Ok(sandbox::run(&plan)?),
        Some(want) => {
            let kind = match want {
                OciRuntime::Auto => None,
                OciRuntime::Runc => Some(sandbox::oci::Kind::Runc),
                OciRuntime::Crun => Some(sandbox::oci::Kind::Crun),
                OciRuntime::Youki => Some(sandbox::oci::Kind::Youki),
            };
            let rt = sandbox::oci::choose(kind)?;
            Ok(sandbox::oci::run(&plan, &rt)?)
        }
    }
}

/// The lock an OCI run of `rec` holds on its writable layer: taken without
/// waiting, refused with the reason when another run holds it.
fn oci_alone(share: &Path, rec: &EnvRecord) -> Result<std::fs::File> {
    use rustix::fs::{flock, FlockOperation};
    let path = share.join("oci.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::store("open", &path))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(_) => Err(sandbox::Error::Invalid {
            what: format!("environment {}", rec.display_name()),
            reason: "already runs a command, and the oci backend runs one at a time over its writable layer".into(),
        }
        .into()),
    }
}

/// Each running command gets its own overlay work directory,
/// `envs/<id>/work/<pid>`: overlayfs must never share one between mounts. Work
/// directories of commands no longer running (a crash) are removed here, under
/// the run directory's lock: a command that started meanwhile holds its
/// marker before it makes its work directory, so its directory is never taken
/// for a crash's.
fn own_work_dir(store: &Store, env_dir: &Path) -> Result<PathBuf> {
    // Made first, so a symlink planted at `work` is refused before anything
    // below it is read or removed.
    let own = store.make_dir(&env_dir.join("work").join(std::process::id().to_string()))?;
    if let Some(run) = super::run::RunDir::lock(&env_dir.join("run"))? {
        run.sweep_work(&env_dir.join("work"), &own)?;
    }
    Ok(own)
}
