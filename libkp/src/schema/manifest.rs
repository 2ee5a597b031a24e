//! Manifest v1 (`karapace.toml`, docs/manifest.md): strict parsing into raw
//! serde structs, then validation and normalisation into [`Manifest`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{Error, Result};
use super::image::ImageRef;
use super::locate::{Seg, Spans};
use super::normalize;
use super::settings::{
    Backend, Gui, Hardware, Integration, IntegrationDecl, OciRuntime, ResourceLimits, Runtime, Settings, System,
    CPU_SHARES_RANGE,
};

pub const MANIFEST_VERSION: i64 = 1;

/// A valid, normalised manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Where it was read from (error messages, relative mount paths).
    pub file: PathBuf,
    pub base: ImageRef,
    pub settings: Settings,
}

#[derive(Deserialize)]
struct VersionOnly {
    manifest_version: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    // Checked before the full parse; named here so the key is known.
    #[serde(rename = "manifest_version")]
    _version: i64,
    base: RawBase,
    #[serde(default)]
    system: RawSystem,
    #[serde(default)]
    gui: RawGui,
    #[serde(default)]
    hardware: Hardware,
    #[serde(default)]
    integration: IntegrationDecl,
    #[serde(default)]
    mounts: BTreeMap<String, String>,
    #[serde(default)]
    runtime: RawRuntime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    image: String,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    #[serde(default)]
    packages: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGui {
    #[serde(default)]
    apps: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    backend: Option<String>,
    runtime: Option<String>,
    #[serde(default)]
    network_isolation: bool,
    #[serde(default)]
    resource_limits: RawLimits,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    cpu_shares: Option<i64>,
    memory_limit_mb: Option<i64>,
}

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<Manifest> {
    let text = std::fs::read(path).map_err(|source| Error::Read {
        op: "read manifest",
        path: path.into(),
        source,
    })?;
    let text = String::from_utf8(text).map_err(|e| Error::Manifest {
        at: super::error::Location {
            file: path.into(),
            line: 1,
            column: 1,
            key: None,
        },
        message: format!("not UTF-8 (invalid byte at offset {})", e.utf8_error().valid_up_to()),
    })?;
    parse(&text, path)
}

/// Validates manifest `text`; `file` names it in messages and anchors relative
/// mount paths.
pub fn parse(text: &str, file: &Path) -> Result<Manifest> {
    let spans = Spans::new(text);
    let err = |path: &[Seg], message: String| Error::Manifest {
        at: spans.locate_path(file, path),
        message,
    };
    let version: VersionOnly = toml::from_str(text).map_err(|e| toml_error(&spans, file, e))?;
    match version.manifest_version {
        None => {
            return Err(Error::Manifest {
                at: spans.locate(file, None, Some("manifest_version".into())),
                message: format!("missing; expected `manifest_version = {MANIFEST_VERSION}` at the top"),
            })
        }
        Some(toml::Value::Integer(MANIFEST_VERSION)) => {}
        Some(v) => {
            return Err(err(
                &["manifest_version".into()],
                format!("unsupported version {v}; this build reads manifest_version = {MANIFEST_VERSION}"),
            ))
        }
    }
    let raw: Raw = toml::from_str(text).map_err(|e| toml_error(&spans, file, e))?;

    let base = ImageRef::parse(&raw.base.image).map_err(|m| err(&["base".into(), "image".into()], m))?;
    let packages = normalize::names(&raw.system.packages, "package")
        .map_err(|(i, m)| err(&["system".into(), "packages".into(), i.into()], m))?;
    normalize::package_names(&raw.system.packages)
        .map_err(|(i, m)| err(&["system".into(), "packages".into(), i.into()], m))?;
    let apps =
        normalize::names(&raw.gui.apps, "app").map_err(|(i, m)| err(&["gui".into(), "apps".into(), i.into()], m))?;
    normalize::package_names(&raw.gui.apps).map_err(|(i, m)| err(&["gui".into(), "apps".into(), i.into()], m))?;

    let mut mounts = BTreeMap::new();
    let mut targets: BTreeMap<String, String> = BTreeMap::new();
    for (label, spec) in &raw.mounts {
        let at = [Seg::from("mounts"), Seg::from(label.as_str())];
        normalize::mount_label(label).map_err(|m| err(&at, m))?;
        let mount = normalize::mount(spec).map_err(|m| err(&at, m))?;
        if let Some(other) = targets.insert(mount.container.clone(), label.clone()) {
            return Err(err(
                &at,
                format!("mounts.{other} already mounts onto {:?}", mount.container),
            ));
        }
        mounts.insert(label.clone(), mount);
    }

    let backend = match &raw.runtime.backend {
        None => Backend::default(),
        Some(b) => Backend::parse(b).ok_or_else(|| {
            let all: Vec<_> = Backend::ALL.iter().map(|b| b.as_str()).collect();
            err(
                &["runtime".into(), "backend".into()],
                format!("unknown backend {b:?}; expected one of {}", all.join(", ")),
            )
        })?,
    };
    let runtime = match (&raw.runtime.runtime, backend) {
        (None, Backend::Oci) => Some(OciRuntime::Auto),
        (None, _) => None,
        (Some(r), Backend::Oci) => Some(OciRuntime::parse(r).ok_or_else(|| {
            let all: Vec<_> = OciRuntime::ALL.iter().map(|r| r.as_str()).collect();
            err(
                &["runtime".into(), "runtime".into()],
                format!("unknown OCI runtime {r:?}; expected one of {}", all.join(", ")),
            )
        })?),
        (Some(_), b) => {
            return Err(err(
                &["runtime".into(), "runtime".into()],
                format!(
                    "applies only with backend = \"oci\" (this manifest's backend is {:?})",
                    b.as_str()
                ),
            ))
        }
    };
    let limit = |name: &str, v: Option<i64>, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>> {
        match v {
            None => Ok(None),
            Some(n) => u64::try_from(n)
                .ok()
                .filter(|n| range.contains(n))
                .map(Some)
                .ok_or_else(|| {
                    err(
                        &["runtime".into(), "resource_limits".into(), name.into()],
                        format!(
                            "{n} is out of range; expected an integer from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    };
    let resource_limits = ResourceLimits {
        cpu_shares: limit("cpu_shares", raw.runtime.resource_limits.cpu_shares, CPU_SHARES_RANGE)?,
        memory_limit_mb: limit(
            "memory_limit_mb",
            raw.runtime.resource_limits.memory_limit_mb,
            1..=u64::MAX >> 20,
        )?,
    };

    let gui = Gui { apps };
    let integration = Integration::resolve(&raw.integration, &gui, &raw.hardware);
    let settings = Settings {
        system: System { packages },
        gui,
        hardware: raw.hardware,
        integration,
        mounts,
        runtime: Runtime {
            backend,
            runtime,
            network_isolation: raw.runtime.network_isolation,
            resource_limits,
        },
    };
    Ok(Manifest {
        file: file.to_path_buf(),
        base,
        settings,
    })
}

/// A `toml` error as a located manifest error. `toml` says "missing field `x`"
/// with the span of the enclosing table; name the missing key itself.
fn toml_error(spans: &Spans, file: &Path, e: toml::de::Error) -> Error {
    let (at, message) = toml_location(spans, file, e);
    Error::Manifest { at, message }
}

pub(super) fn toml_location(spans: &Spans, file: &Path, e: toml::de::Error) -> (super::error::Location, String) {
    let message = e.message().trim().to_string();
    let mut at = spans.locate(file, e.span(), None);
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        let table = e.span().and_then(|s| spans.table_at(s.start));
        at.key = Some(match table {
            Some(parent) => format!("{parent}.{field}"),
            None => field.to_string(),
        });
    }
    (at, message)
}

impl Manifest {
    /// The manifest in normal form, as TOML: what `parse` would read back as
    /// exactly this manifest (integration switches are written out resolved).
    pub fn to_toml(&self) -> String {
        let s = &self.settings;
        let q = normalize::toml_str;
        let list = |v: &[String]| format!("[{}]", v.iter().map(|x| q(x)).collect::<Vec<_>>().join(", "));
        let mut out = format!(
            "manifest_version = {MANIFEST_VERSION}\n\n[base]\nimage = {}\n",
            q(&self.base.to_string())
        );
        out += &format!("\n[system]\npackages = {}\n", list(&s.system.packages));
        out += &format!("\n[gui]\napps = {}\n", list(&s.gui.apps));
        out += &format!("\n[hardware]\ngpu = {}\naudio = {}\n", s.hardware.gpu, s.hardware.audio);
        out += "\n[integration]\n";
        for (name, on) in s.integration.fields() {
            if name != "gpu_devices" && name != "sound_devices" {
                out += &format!("{name} = {on}\n");
            }
        }
        out += "\n[mounts]\n";
        for (label, m) in &s.mounts {
            let ro = if m.read_only { ":ro" } else { "" };
            out += &format!("{label} = {}\n", q(&format!("{}:{}{ro}", m.host, m.container)));
        }
        let rt = &s.runtime;
        out += &format!("\n[runtime]\nbackend = {}\n", q(rt.backend.as_str()));
        if let Some(r) = rt.runtime {
            out += &format!("runtime = {}\n", q(r.as_str()));
        }
        out += &format!(
            "network_isolation = {}\n\n[runtime.resource_limits]\n",
            rt.network_isolation
        );
        if let Some(n) = rt.resource_limits.cpu_shares {
            out += &format!("cpu_shares = {n}\n");
        }
        if let Some(n) = rt.resource_limits.memory_limit_mb {
            out += &format!("memory_limit_mb = {n}\n");
        }
        out
    }

    /// The normalised manifest as a JSON value (its canonical form is
    /// `canonical::to_string` of this; docs/hash-contract.md).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.settings).expect("settings serialise to JSON");
        v["manifest_version"] = MANIFEST_VERSION.into();
        v["base"] = serde_json::json!({ "image": self.base.reference, "digest": self.base.digest });
        v
    }

    /// The directory that relative host paths in `[mounts]` are relative to.
    pub fn dir(&self) -> &Path {
        self.file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }
}
