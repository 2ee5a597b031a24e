//! Running commands in a built environment: its layers' shared checkouts as
//! overlay lowers, its writable layer as the upper, what its lock says about
//! integration, mounts, network and limits, and a run marker held for as long
//! as the command runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{EnvError, EnvRecord, RunMarker, State};
use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::sandbox::{self, BindRequest, HostFacts, HostSwitches, Limits, Net, Root, SandboxRequest};
use crate::schema::Settings;
use crate::store::Store;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    pub argv: Vec<OsString>,
    /// Extra variables (`KEY=VALUE`), set after the policy's defaults.
    pub env: Vec<(String, OsString)>,
    pub cwd: Option<PathBuf>,
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
    let mut lowers = Vec::with_capacity(rec.layers.len());
    for hex in rec.layers.iter().rev() {
        let id = ObjectId::from_hex(hex).ok_or_else(|| Error::CorruptMeta {
            path: store.meta_path(&format!("envs/{}", rec.env_id)).unwrap_or_default(),
            reason: format!("layer {hex:?} is not an id"),
        })?;
        lowers.push(store.cached_checkout(&id)?);
    }
    let settings = rec.settings.clone().unwrap_or_default();
    if settings.runtime.backend != crate::schema::Backend::Namespace {
        return Err(EnvError::Backend {
            env: rec.display_name(),
            backend: settings.runtime.backend.as_str().to_string(),
        }
        .into());
    }
    let manifest_dir = rec
        .manifest
        .as_deref()
        .map(Path::new)
        .and_then(Path::parent)
        .map(Path::to_path_buf);
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
        binds: binds(&settings, manifest_dir.as_deref()),
        allow: manifest_dir.into_iter().collect(),
        env: opts.env.clone(),
        cwd: opts.cwd.clone(),
        argv: opts.argv.clone(),
        ..SandboxRequest::default()
    };
    if req.argv.is_empty() {
        req.argv.push("/bin/sh".into());
    }
    Ok(req)
}

/// A manifest mount's host side: `~/x` is in the user's home, a relative path
/// is relative to the manifest's directory.
fn binds(settings: &Settings, manifest_dir: Option<&Path>) -> Vec<BindRequest> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    settings
        .mounts
        .values()
        .map(|m| {
            let src = match (m.host.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ if Path::new(&m.host).is_relative() => manifest_dir.unwrap_or(Path::new(".")).join(&m.host),
                _ => PathBuf::from(&m.host),
            };
            BindRequest {
                src,
                dst: PathBuf::from(&m.container),
                ro: m.read_only,
            }
        })
        .collect()
}

/// Runs a command in `rec` and returns its exit status. Frozen environments
/// run over a scratch writable layer that is discarded afterwards, so nothing
/// reaches theirs; archived ones do not run.
pub fn exec(store: &Store, rec: &EnvRecord, opts: &ExecOptions) -> Result<i32> {
    if rec.state == State::Archived {
        return Err(EnvError::WrongState {
            env: rec.display_name(),
            state: rec.state.to_string(),
            action: "run commands",
            hint: "; archived environments keep their content but cannot run",
        }
        .into());
    }
    let dir = store.env_dir(&rec.env_id);
    let _marker = RunMarker::create(store, &rec.env_id)?;
    // A frozen environment's writable layer becomes the top lower under a
    // scratch upper, in this command's own work directory, dropped when the
    // command ends.
    let own = own_work_dir(store, &dir)?;
    let frozen = rec.state == State::Frozen;
    let (upper, work) = if frozen {
        let (u, w) = (own.join("upper"), own.join("work"));
        for d in [&u, &w] {
            std::fs::create_dir(d).map_err(Error::store("create directory", d))?;
        }
        (u, w)
    } else {
        (crate::drift::checked_upper(store, &rec.env_id)?, own.clone())
    };
    let mut req = request(store, rec, upper, work, opts)?;
    if frozen {
        if let Root::Overlay { lowers, .. } = &mut req.root {
            lowers.insert(0, crate::drift::checked_upper(store, &rec.env_id)?);
        }
    }
    let plan = sandbox::plan(&req, &HostFacts::current());
    let status = plan.map_err(Error::from).and_then(|plan| Ok(sandbox::run(&plan)?));
    let _ = crate::prune::remove_tree(&own);
    status
}

/// Each running command gets its own overlay work directory,
/// `envs/<id>/work/<pid>`: overlayfs must never share one between mounts. Work
/// directories of commands no longer running (a crash) are removed here.
fn own_work_dir(store: &Store, env_dir: &Path) -> Result<PathBuf> {
    // Made first, so a symlink planted at `work` is refused before anything
    // below it is read or removed.
    let own = store.make_dir(&env_dir.join("work").join(std::process::id().to_string()))?;
    let root = env_dir.join("work");
    let live = super::run::held(&env_dir.join("run"))?;
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let pid = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok());
            if pid.is_none_or(|p| !live.contains(&p)) {
                let _ = crate::prune::remove_tree(&e.path());
            }
        }
    }
    Ok(own)
}
