//! What shapes an environment besides its base and packages: the normalised
//! settings that a manifest asks for and a lock records. The same structs serve
//! both, so "does the manifest still match the lock" is a plain comparison.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Normalised settings: lists sorted and de-duplicated, integration resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub system: System,
    pub gui: Gui,
    pub hardware: Hardware,
    pub integration: Integration,
    pub mounts: BTreeMap<String, Mount>,
    pub runtime: Runtime,
}

impl Settings {
    /// What the package manager is asked to install: `system.packages` and
    /// the `gui.apps` (each app is a package), sorted, unique.
    pub fn requested_packages(&self) -> Vec<String> {
        let mut all: Vec<String> = self.system.packages.iter().chain(&self.gui.apps).cloned().collect();
        all.sort();
        all.dedup();
        all
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    /// The packages asked for (not their closure): sorted, unique.
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gui {
    pub apps: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hardware {
    pub gpu: bool,
    pub audio: bool,
}

/// The effective host-integration switches: what the sandbox exposes from the
/// host. Each is off unless the manifest declares it or a declared feature
/// implies it (docs/manifest.md, "Host integration").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    /// The invoking user's home directory at the same path.
    pub home: bool,
    /// `$WAYLAND_DISPLAY` socket from `$XDG_RUNTIME_DIR`.
    pub wayland: bool,
    /// `/tmp/.X11-unix` and `$DISPLAY` (with `$XAUTHORITY`).
    pub x11: bool,
    /// `$XDG_RUNTIME_DIR/pipewire-0`.
    pub pipewire: bool,
    /// `$XDG_RUNTIME_DIR/pulse/native`.
    pub pulseaudio: bool,
    /// The session bus (`$DBUS_SESSION_BUS_ADDRESS`).
    pub dbus_session: bool,
    /// `$SSH_AUTH_SOCK`.
    pub ssh_agent: bool,
    /// Host fonts and fontconfig, read-only.
    pub fonts: bool,
    /// Host icon and GTK/Qt themes, read-only.
    pub themes: bool,
    /// `/dev/dri` (and the NVIDIA nodes when present).
    pub gpu_devices: bool,
    /// `/dev/snd`.
    pub sound_devices: bool,
}

/// The switches a manifest may set in `[integration]`; `None` = not declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationDecl {
    pub home: Option<bool>,
    pub wayland: Option<bool>,
    pub x11: Option<bool>,
    pub pipewire: Option<bool>,
    pub pulseaudio: Option<bool>,
    pub dbus_session: Option<bool>,
    pub ssh_agent: Option<bool>,
    pub fonts: Option<bool>,
    pub themes: Option<bool>,
}

impl Integration {
    /// Applies the implication rules: a declared value wins (so `x11 = false`
    /// keeps X11 out of a GUI environment); otherwise GUI apps imply the display
    /// sockets, fonts and themes, audio implies the sound servers and
    /// `/dev/snd`, a GPU implies `/dev/dri`; everything else stays off.
    pub fn resolve(decl: &IntegrationDecl, gui: &Gui, hw: &Hardware) -> Integration {
        let gui = !gui.apps.is_empty();
        Integration {
            home: decl.home.unwrap_or(false),
            wayland: decl.wayland.unwrap_or(gui),
            x11: decl.x11.unwrap_or(gui),
            pipewire: decl.pipewire.unwrap_or(hw.audio),
            pulseaudio: decl.pulseaudio.unwrap_or(hw.audio),
            dbus_session: decl.dbus_session.unwrap_or(false),
            ssh_agent: decl.ssh_agent.unwrap_or(false),
            fonts: decl.fonts.unwrap_or(gui),
            themes: decl.themes.unwrap_or(gui),
            gpu_devices: hw.gpu,
            sound_devices: hw.audio,
        }
    }

    /// The switches in document order, for rendering and listing.
    pub fn fields(&self) -> [(&'static str, bool); 11] {
        [
            ("home", self.home),
            ("wayland", self.wayland),
            ("x11", self.x11),
            ("pipewire", self.pipewire),
            ("pulseaudio", self.pulseaudio),
            ("dbus_session", self.dbus_session),
            ("ssh_agent", self.ssh_agent),
            ("fonts", self.fonts),
            ("themes", self.themes),
            ("gpu_devices", self.gpu_devices),
            ("sound_devices", self.sound_devices),
        ]
    }
}

/// A bind mount from the host. `host` is kept as written after lexical
/// clean-up (`~/x` and paths relative to the manifest are expanded when the
/// sandbox starts, so the identity does not depend on who or where).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub host: String,
    pub container: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Namespace,
    Oci,
    Mock,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Namespace, Backend::Oci, Backend::Mock];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Namespace => "namespace",
            Backend::Oci => "oci",
            Backend::Mock => "mock",
        }
    }

    /// Case-insensitive, surrounding blanks ignored.
    pub fn parse(s: &str) -> Option<Backend> {
        let s = s.trim().to_ascii_lowercase();
        Backend::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// Which OCI runtime runs an `oci` environment (`runtime.runtime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OciRuntime {
    /// The first of runc, crun, youki that is installed and passes a probe.
    #[default]
    Auto,
    Runc,
    Crun,
    Youki,
}

impl OciRuntime {
    pub const ALL: [OciRuntime; 4] = [OciRuntime::Runc, OciRuntime::Crun, OciRuntime::Youki, OciRuntime::Auto];

    pub fn as_str(self) -> &'static str {
        match self {
            OciRuntime::Auto => "auto",
            OciRuntime::Runc => "runc",
            OciRuntime::Crun => "crun",
            OciRuntime::Youki => "youki",
        }
    }

    /// Case-insensitive, surrounding blanks ignored.
    pub fn parse(s: &str) -> Option<OciRuntime> {
        let s = s.trim().to_ascii_lowercase();
        OciRuntime::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub backend: Backend,
    /// Set exactly when `backend` is `oci` (absent otherwise, so environments
    /// of the other backends keep the env_id they had before the key existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<OciRuntime>,
    pub network_isolation: bool,
    #[serde(default)]
    pub resource_limits: ResourceLimits,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// Relative CPU weight in cgroup v1 "shares" (2..=262144, 1024 = normal);
    /// the sandbox converts it to cgroup v2 `cpu.weight` as runc and crun do.
    pub cpu_shares: Option<u64>,
    pub memory_limit_mb: Option<u64>,
}

pub const CPU_SHARES_RANGE: std::ops::RangeInclusive<u64> = 2..=262_144;
