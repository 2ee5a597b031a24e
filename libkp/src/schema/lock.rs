//! The lock file `karapace.lock` (docs/lock.md): what a manifest resolved to —
//! base image digest, package closure — and every setting that shapes the
//! environment, with the identity derived from all of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Drift, Error, Location, Result};
use super::image::{is_digest, ImageRef};
use super::locate::{Seg, Spans};
use super::manifest::Manifest;
use super::normalize::{self, toml_str};
use super::settings::{Gui, Hardware, Integration, Mount, Runtime, Settings, System, CPU_SHARES_RANGE};
use super::{file, identity};

pub const LOCK_VERSION: i64 = 1;
pub const LOCK_FILE: &str = "karapace.lock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBase {
    /// The reference as written in the manifest, without a pin suffix.
    pub image: String,
    /// The image digest: blake3 layer id of the imported base, 64 hex digits.
    pub digest: String,
    /// For an OCI image: the manifest digest (`sha256:HEX`) the reference
    /// resolved to, which a build following the lock pulls. Provenance, not
    /// identity: `env_id` does not cover it (docs/lock.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub env_id: String,
    pub short_id: String,
    pub base: LockedBase,
    /// The installed closure, sorted by name, version, arch.
    pub packages: Vec<LockedPackage>,
    pub settings: Settings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    // Checked before the full parse; named here so the key is known.
    #[serde(rename = "lock_version")]
    _version: i64,
    env_id: String,
    short_id: String,
    base: LockedBase,
    #[serde(default)]
    packages: Vec<LockedPackage>,
    system: System,
    gui: Gui,
    hardware: Hardware,
    integration: Integration,
    #[serde(default)]
    mounts: BTreeMap<String, Mount>,
    runtime: Runtime,
}

#[derive(Deserialize)]
struct VersionOnly {
    lock_version: Option<toml::Value>,
}

impl Lock {
    /// A lock for resolved inputs, with its identity computed.
    pub fn new(base: LockedBase, mut packages: Vec<LockedPackage>, settings: Settings) -> Lock {
        packages.sort();
        packages.dedup();
        let mut lock = Lock {
            env_id: String::new(),
            short_id: String::new(),
            base,
            packages,
            settings,
        };
        lock.env_id = identity::env_id(&lock);
        lock.short_id = identity::short_id(&lock.env_id);
        lock
    }

    /// Everything the identity covers, as JSON (docs/hash-contract.md).
    pub fn hashed_value(&self) -> Value {
        let mut v = serde_json::to_value(&self.settings).expect("settings serialise to JSON");
        v["lock_version"] = LOCK_VERSION.into();
        v["base"] = serde_json::json!({ "image": self.base.image, "digest": self.base.digest });
        v["packages"] = serde_json::to_value(&self.packages).expect("packages serialise");
        v
    }

    /// The lock as TOML, in the fixed layout docs/lock.md shows.
    pub fn to_toml(&self) -> String {
        let s = &self.settings;
        let q = toml_str;
        let list = |v: &[String]| format!("[{}]", v.iter().map(|x| q(x)).collect::<Vec<_>>().join(", "));
        let mut out = String::from("# Written by Karapace (kp-resolve). Do not edit: see docs/lock.md.\n");
        out += &format!(
            "lock_version = {LOCK_VERSION}\nenv_id = {}\nshort_id = {}\n",
            q(&self.env_id),
            q(&self.short_id)
        );
        out += &format!(
            "\n[base]\nimage = {}\ndigest = {}\n",
            q(&self.base.image),
            q(&self.base.digest)
        );
        if let Some(d) = &self.base.oci_digest {
            out += &format!("oci_digest = {}\n", q(d));
        }
        out += &format!("\n[system]\npackages = {}\n", list(&s.system.packages));
        out += &format!("\n[gui]\napps = {}\n", list(&s.gui.apps));
        out += &format!("\n[hardware]\ngpu = {}\naudio = {}\n", s.hardware.gpu, s.hardware.audio);
        out += "\n[integration]\n";
        for (name, on) in s.integration.fields() {
            out += &format!("{name} = {on}\n");
        }
        for (label, m) in &s.mounts {
            out += &format!(
                "\n[mounts.{label}]\nhost = {}\ncontainer = {}\nread_only = {}\n",
                q(&m.host),
                q(&m.container),
                m.read_only
            );
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
        for p in &self.packages {
            out += &format!(
                "\n[[packages]]\nname = {}\nversion = {}\narch = {}\n",
                q(&p.name),
                q(&p.version),
                q(&p.arch)
            );
        }
        out
    }

    /// Reads a lock and checks its integrity.
    pub fn load(path: &Path) -> Result<Lock> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            op: "read lock",
            path: path.into(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Lock {
            at: Location {
                file: path.into(),
                line: 1,
                column: 1,
                key: None,
            },
            message: "not UTF-8".into(),
        })?;
        let lock = Lock::parse(&text, path)?;
        lock.check_integrity(path)?;
        Ok(lock)
    }

    /// Strictly parses and normalises lock `text` (no integrity check).
    pub fn parse(text: &str, file: &Path) -> Result<Lock> {
        let spans = Spans::new(text);
        let err = |path: &[Seg], message: String| Error::Lock {
            at: spans.locate_path(file, path),
            message,
        };
        let toml_err = |e: toml::de::Error| {
            let (at, message) = super::manifest::toml_location(&spans, file, e);
            Error::Lock { at, message }
        };
        match toml::from_str::<VersionOnly>(text).map_err(toml_err)?.lock_version {
            Some(toml::Value::Integer(LOCK_VERSION)) => {}
            None => {
                return Err(err(
                    &[],
                    format!("missing lock_version; expected lock_version = {LOCK_VERSION}"),
                ))
            }
            Some(v) => {
                return Err(err(
                    &["lock_version".into()],
                    format!("unsupported lock_version {v}; this build reads {LOCK_VERSION}"),
                ))
            }
        }
        let raw: Raw = toml::from_str(text).map_err(toml_err)?;
        if !is_digest(&raw.env_id) {
            return Err(err(&["env_id".into()], "expected 64 lowercase hex digits".into()));
        }
        if !is_digest(&raw.base.digest) {
            return Err(err(
                &["base".into(), "digest".into()],
                "expected 64 lowercase hex digits".into(),
            ));
        }
        if let Some(d) = &raw.base.oci_digest {
            let hex = d.strip_prefix("sha256:").unwrap_or("");
            if !is_digest(hex) {
                return Err(err(
                    &["base".into(), "oci_digest".into()],
                    "expected sha256: and 64 lowercase hex digits".into(),
                ));
            }
        }
        match ImageRef::parse(&raw.base.image) {
            Ok(r) if r.digest.is_none() => {}
            Ok(_) => {
                return Err(err(
                    &["base".into(), "image".into()],
                    "the digest belongs in base.digest".into(),
                ))
            }
            Err(m) => return Err(err(&["base".into(), "image".into()], m)),
        }
        for (i, p) in raw.packages.iter().enumerate() {
            for (field, v) in [("name", &p.name), ("version", &p.version), ("arch", &p.arch)] {
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(err(
                        &["packages".into(), i.into(), field.into()],
                        format!("invalid {field} {v:?}"),
                    ));
                }
            }
            crate::pkg::check_name(&p.name)
                .map_err(|e| err(&["packages".into(), i.into(), "name".into()], e.to_string()))?;
        }
        let packages = normalize::names(&raw.system.packages, "package")
            .map_err(|(i, m)| err(&["system".into(), "packages".into(), i.into()], m))?;
        normalize::package_names(&raw.system.packages)
            .map_err(|(i, m)| err(&["system".into(), "packages".into(), i.into()], m))?;
        let apps = normalize::names(&raw.gui.apps, "app")
            .map_err(|(i, m)| err(&["gui".into(), "apps".into(), i.into()], m))?;
        normalize::package_names(&raw.gui.apps).map_err(|(i, m)| err(&["gui".into(), "apps".into(), i.into()], m))?;
        let mut mounts = BTreeMap::new();
        for (label, m) in raw.mounts {
            let at = [Seg::from("mounts"), Seg::from(label.as_str())];
            normalize::mount_label(&label).map_err(|e| err(&at, e))?;
            let spec = format!("{}:{}", m.host, m.container);
            let clean = normalize::mount(&spec).map_err(|e| err(&at, e))?;
            mounts.insert(
                label,
                Mount {
                    read_only: m.read_only,
                    ..clean
                },
            );
        }
        if let Some(n) = raw
            .runtime
            .resource_limits
            .cpu_shares
            .filter(|n| !CPU_SHARES_RANGE.contains(n))
        {
            return Err(err(
                &["runtime".into(), "resource_limits".into(), "cpu_shares".into()],
                format!("{n} out of range"),
            ));
        }
        let settings = Settings {
            system: System { packages },
            gui: Gui { apps },
            hardware: raw.hardware,
            integration: raw.integration,
            mounts,
            runtime: raw.runtime,
        };
        let mut lock = Lock::new(raw.base, raw.packages, settings);
        // Keep what the file says; check_integrity compares it with the content.
        lock.env_id = raw.env_id;
        lock.short_id = raw.short_id;
        Ok(lock)
    }

    /// Integrity: the stored identity is the hash of the stored content.
    pub fn check_integrity(&self, file: &Path) -> Result<()> {
        let computed = identity::env_id(self);
        if computed != self.env_id || identity::short_id(&computed) != self.short_id {
            let stored = if computed != self.env_id {
                &self.env_id
            } else {
                &self.short_id
            };
            return Err(Error::Integrity {
                file: file.into(),
                stored: stored.clone(),
                computed,
            });
        }
        Ok(())
    }

    /// Intent: the fields where `manifest` asks for something else than what
    /// was locked. The digest is compared only when the manifest is pinned.
    pub fn drift(&self, manifest: &Manifest) -> Vec<Drift> {
        let mut locked = BTreeMap::new();
        let mut wanted = BTreeMap::new();
        flatten(
            "",
            &serde_json::to_value(&self.settings).expect("settings serialise"),
            &mut locked,
        );
        flatten(
            "",
            &serde_json::to_value(&manifest.settings).expect("settings serialise"),
            &mut wanted,
        );
        locked.insert("base.image".to_string(), Value::from(self.base.image.clone()));
        wanted.insert("base.image".to_string(), Value::from(manifest.base.reference.clone()));
        if let Some(d) = &manifest.base.digest {
            locked.insert("base.digest".to_string(), Value::from(self.base.digest.clone()));
            wanted.insert("base.digest".to_string(), Value::from(d.clone()));
        }
        let mut fields: Vec<&String> = locked.keys().chain(wanted.keys()).collect();
        fields.sort();
        fields.dedup();
        let mut drifts: Vec<Drift> = fields
            .into_iter()
            .filter(|f| locked.get(*f) != wanted.get(*f))
            .map(|f| Drift {
                field: f.clone(),
                locked: locked.get(f).map(Value::to_string),
                manifest: wanted.get(f).map(Value::to_string),
            })
            .collect();
        // Locks written before `gui.apps` were installed name them in the
        // settings but not in the closure: such a lock is stale.
        for app in &manifest.settings.gui.apps {
            if !self.packages.iter().any(|p| &p.name == app) {
                drifts.push(Drift {
                    field: "packages".into(),
                    locked: Some(format!("no package {app:?}")),
                    manifest: Some(format!("gui.apps installs {app:?}")),
                });
            }
        }
        drifts
    }

    /// Fails with the drift list unless the manifest matches this lock.
    pub fn check_intent(&self, manifest: &Manifest, lock_file: &Path) -> Result<()> {
        let drifts = self.drift(manifest);
        if drifts.is_empty() {
            return Ok(());
        }
        Err(Error::Drift {
            manifest: manifest.file.clone(),
            lock: lock_file.into(),
            drifts,
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        file::write_atomic(path, self.to_toml().as_bytes())
    }
}

/// The lock beside a manifest.
pub fn path_for(manifest: &Path) -> PathBuf {
    manifest.with_file_name(LOCK_FILE)
}

/// Objects become dotted leaves; arrays and scalars are compared whole.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        v => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}
