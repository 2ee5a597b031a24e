//! The sandbox every environment runs in: user, mount, PID, UTS and IPC
//! namespaces (and a network namespace when isolation is asked), an overlay
//! root over the layers' checkouts, a tiny PID 1, explicit host integration and
//! a policy that checks all of it.
//!
//! Two phases, as bubblewrap does: [`plan()`] turns a [`SandboxRequest`] and the
//! [`HostFacts`] into a [`Plan`] — plain data, printable, unit-tested without
//! privileges — and [`run`] executes a plan and returns the command's exit
//! status. docs/sandbox.md is the user-facing contract.

mod cgroup;
mod exec;
pub mod host;
pub mod idmap;
mod init;
pub mod oci;
mod overlay;
pub mod plan;
pub mod policy;
pub mod rerun;
pub mod seccomp;
pub mod share;
mod tty;

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

pub use exec::run;
pub use host::HostFacts;
pub use idmap::{IdMap, MapRange, MapVia, UidMapMode};
pub use plan::{plan, Mount, Plan, RootMount};
pub use seccomp::Seccomp;

/// What the caller asks for. Everything is off unless switched on.
#[derive(Debug, Clone, Default)]
pub struct SandboxRequest {
    pub root: Root,
    pub hostname: Option<String>,
    pub net: Net,
    pub binds: Vec<BindRequest>,
    /// Extra roots for the mount allowlist (the manifest's directory).
    pub allow: Vec<PathBuf>,
    pub host: HostSwitches,
    /// Variables set explicitly (`--env K=V`).
    pub env: Vec<(String, OsString)>,
    /// Host variables passed by name (`--env-pass NAME`), checked by policy.
    pub env_pass: Vec<String>,
    pub limits: Limits,
    pub uid_map: UidMapMode,
    pub overlay: OverlayDriver,
    pub cwd: Option<PathBuf>,
    pub argv: Vec<OsString>,
    /// The system-call filter: the caller's choice, never a manifest's.
    pub seccomp: Seccomp,
    /// Share the overlay with other sandboxes over the same upper directory
    /// (share.rs): the directory where they register. The overlay's work
    /// directory must then be the same for all of them.
    pub share: Option<PathBuf>,
    /// The plan is for an OCI runtime, which applies the limits itself where
    /// it can (host root, cgroup v1: `Plan::runtime_cgroups`).
    pub runtime_limits: bool,
}

/// The root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A plain directory, mounted read-only.
    Dir(PathBuf),
    /// Lower directories (first is top-most) under a writable upper directory.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
    },
}

impl Default for Root {
    fn default() -> Self {
        Root::Dir(PathBuf::from("/"))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Net {
    /// A network namespace with only loopback.
    #[default]
    None,
    /// The host's network.
    Host,
}

/// `--bind SRC:DST[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindRequest {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub ro: bool,
}

/// Host integration switches (docs/sandbox.md, "Host integration").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostSwitches {
    pub home: bool,
    pub wayland: bool,
    pub x11: bool,
    pub pipewire: bool,
    pub pulseaudio: bool,
    pub dbus_session: bool,
    pub ssh_agent: bool,
    pub gpu: bool,
    pub audio: bool,
    pub fonts: bool,
    pub themes: bool,
}

/// Resource limits, enforced through a delegated cgroup v2 or refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpu_shares: Option<u64>,
    pub memory_mb: Option<u64>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.cpu_shares.is_some() || self.memory_mb.is_some()
    }
}

/// Which overlayfs implementation mounts an overlay root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OverlayDriver {
    /// Kernel overlayfs, else fuse-overlayfs when the kernel refuses.
    #[default]
    Auto,
    Kernel,
    Fuse,
}

impl OverlayDriver {
    pub fn name(self) -> &'static str {
        match self {
            OverlayDriver::Auto => "auto",
            OverlayDriver::Kernel => "kernel",
            OverlayDriver::Fuse => "fuse",
        }
    }
}

/// Why a sandbox was refused or could not start. The binary exits 125 for
/// all of these (docs/sandbox.md), so they never mix with the command's own
/// statuses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("mount policy: {} resolves to {}, outside the allowed roots ({}); add one with --allow", path.display(), resolved.display(), show_paths(allowed))]
    NotAllowed {
        path: PathBuf,
        resolved: PathBuf,
        allowed: Vec<PathBuf>,
    },
    #[error("device policy: {} is a device or under /dev; devices come in only through --gpu and --audio", path.display())]
    Device { path: PathBuf },
    #[error("--{switch}: {reason}")]
    Host { switch: &'static str, reason: String },
    #[error("environment policy: {name}: {reason}")]
    Env { name: String, reason: String },
    #[error("resource limits refused: {reason}")]
    Limits { reason: String },
    #[error("uid map: {reason}")]
    IdMap { reason: String },
    #[error("{step} {}: {source}", path.display())]
    Setup {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A setup step inside the new namespaces failed; the message names it.
    #[error("{0}")]
    Inside(String),
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    pub(crate) fn setup(step: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Setup { step, path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether the OCI backend can have the runtime apply memory and CPU limits
/// here: host root with cgroup v1 `memory` and `cpu` hierarchies (docs/sandbox.md,
/// "Backends").
pub fn runtime_limits_here(host_root: bool) -> bool {
    let both = Limits {
        cpu_shares: Some(1024),
        memory_mb: Some(1),
    };
    matches!(cgroup::prepare_v1(&both, host_root), Ok(Some(_)))
}
