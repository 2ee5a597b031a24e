//! Where an environment came from, and the user's trust in those that came
//! from elsewhere (docs/environments.md, "Origin and trust").
//!
//! Trust is recorded per env_id as `meta/trust/<env_id>.json`
//! (docs/store-format.md); a remote environment's mounts and host
//! integration apply only while it is trusted, or for one run with `--trust`.

use super::{EnvRecord, Origin};
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::object::Kind;
use crate::schema::Lock;
use crate::store::Store;

const TRUST_DIR: &str = "trust";

impl Store {
    pub fn is_trusted(&self, env_id: &str) -> Result<bool> {
        Ok(self.read_meta(&format!("{TRUST_DIR}/{env_id}"))?.is_some())
    }

    /// Records the user's trust in `rec`; returns false when it was trusted
    /// already.
    pub fn trust_env(&self, rec: &EnvRecord) -> Result<bool> {
        if self.is_trusted(&rec.env_id)? {
            return Ok(false);
        }
        let data = serde_json::json!({ "env_id": rec.env_id, "trusted": super::record::now() });
        self.write_meta(&format!("{TRUST_DIR}/{}", rec.env_id), &data)?;
        Ok(true)
    }

    /// Withdraws trust; returns false when there was none.
    pub fn untrust_env(&self, env_id: &str) -> Result<bool> {
        let trusted = self.is_trusted(env_id)?;
        self.remove_meta(&format!("{TRUST_DIR}/{env_id}"))?;
        Ok(trusted)
    }

    /// The env_ids with recorded trust, sorted.
    pub fn trusted_envs(&self) -> Result<Vec<String>> {
        let dir = self.root().join("meta").join(TRUST_DIR);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::store("read directory", &dir)(e)),
        };
        for e in entries {
            let e = e.map_err(Error::store("read directory", &dir))?;
            if let Some(id) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json")) {
                if self.is_trusted(id)? {
                    out.push(id.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// What `rec` asks of the host that a remote environment gets only once
/// trusted: its mounts (`mount LABEL=HOST:CONTAINER[:ro]`) and integration
/// switches, in the manifest's spelling.
pub fn host_asks(rec: &EnvRecord) -> Vec<String> {
    let Some(s) = &rec.settings else { return Vec::new() };
    let mut asks: Vec<String> = s
        .mounts
        .iter()
        .map(|(label, m)| {
            let ro = if m.read_only { ":ro" } else { "" };
            format!("mount {label}={}:{}{ro}", m.host, m.container)
        })
        .collect();
    let i = &s.integration;
    let switches = [
        ("home", i.home),
        ("ssh_agent", i.ssh_agent),
        ("wayland", i.wayland),
        ("x11", i.x11),
        ("pipewire", i.pipewire),
        ("pulseaudio", i.pulseaudio),
        ("dbus_session", i.dbus_session),
        ("gpu_devices", i.gpu_devices),
        ("sound_devices", i.sound_devices),
        ("fonts", i.fonts),
        ("themes", i.themes),
    ];
    asks.extend(switches.iter().filter(|(_, on)| *on).map(|(n, _)| n.to_string()));
    asks
}

/// Records the environment `lock` describes, over `layers` (lowest first)
/// already in the store, as pulled from elsewhere: origin remote, no
/// manifest, no name. What `karapace pull` does once it has fetched them;
/// `kp-record-env` today. Refuses an env_id the store already has.
pub fn record_remote(store: &Store, lock: &Lock, layers: &[ObjectId]) -> Result<EnvRecord> {
    let _guard = store.write_guard()?;
    if let Some(rec) = store.read_env(&lock.env_id)? {
        return Err(crate::store::Error::Unsupported {
            path: lock.env_id.clone().into(),
            what: format!("already in the store as environment {}", rec.display_name()),
        }
        .into());
    }
    match layers.first() {
        Some(base) if base.to_hex() == lock.base.digest => {}
        _ => {
            return Err(crate::store::Error::Unsupported {
                path: lock.env_id.clone().into(),
                what: format!("the first layer must be the lock's base {}", lock.base.digest),
            }
            .into())
        }
    }
    for id in layers {
        if !store.has(Kind::Layer, id) {
            return Err(crate::store::Error::Missing {
                kind: Kind::Layer,
                id: *id,
            }
            .into());
        }
    }
    let mut rec = EnvRecord::new(lock.env_id.clone(), None);
    rec.origin = Origin::Remote;
    rec.image = Some(lock.base.image.clone());
    rec.layers = layers.iter().map(ObjectId::to_hex).collect();
    rec.settings = Some(lock.settings.clone());
    super::create_env(store, &rec)?;
    Ok(rec)
}

/// Records the environment an environment object describes (its layers and
/// snapshots already in the store) as pulled: origin remote, no manifest,
/// named `name` when given. What `karapace pull` does once the objects are
/// in. Refuses an env_id the store already has and a name that is taken,
/// before anything is written.
pub fn record_pulled(store: &Store, env: &crate::object::EnvObject, name: Option<&str>) -> Result<EnvRecord> {
    let _guard = store.write_guard()?;
    if let Some(rec) = store.read_env(&env.env_id)? {
        return Err(crate::store::Error::Unsupported {
            path: env.env_id.clone().into(),
            what: format!("already in the store as environment {}", rec.display_name()),
        }
        .into());
    }
    if let Some(n) = name {
        super::check_name(n)?;
        if let Ok(other) = store.find_env(n) {
            return Err(super::EnvError::NameTaken {
                name: n.to_string(),
                by: other.short_id(),
            }
            .into());
        }
    }
    for id in env.children() {
        if !store.has(Kind::Layer, &id) {
            return Err(crate::store::Error::Missing { kind: Kind::Layer, id }.into());
        }
    }
    let settings = match &env.settings {
        serde_json::Value::Null => None,
        v => Some(
            serde_json::from_value(v.clone()).map_err(|e| crate::store::Error::Unsupported {
                path: env.env_id.clone().into(),
                what: format!("the environment's settings do not parse: {e}"),
            })?,
        ),
    };
    let mut rec = EnvRecord::new(env.env_id.clone(), None);
    rec.origin = Origin::Remote;
    rec.image = env.image.clone();
    rec.layers = env.layers.iter().map(ObjectId::to_hex).collect();
    rec.settings = settings;
    rec.snapshots = env
        .snapshots
        .iter()
        .map(|s| super::Snapshot {
            layer: s.layer.to_hex(),
            created: s.created,
            size_added: s.size_added,
        })
        .collect();
    super::create_env(store, &rec)?;
    if let Some(n) = name {
        store.rename_env(&mut rec, n)?;
    }
    Ok(rec)
}

/// The environment object for `rec`: what `karapace push` sends, with its
/// snapshots when `snapshots` is set.
pub fn env_object(rec: &EnvRecord, snapshots: bool) -> Result<crate::object::EnvObject> {
    let id = |hex: &str| {
        ObjectId::from_hex(hex).ok_or_else(|| crate::meta::Error::Corrupt {
            path: rec.env_id.clone().into(),
            reason: format!("layer {hex:?} is not an id"),
        })
    };
    Ok(crate::object::EnvObject {
        env_id: rec.env_id.clone(),
        image: rec.image.clone(),
        layers: rec.layers.iter().map(|l| id(l)).collect::<Result<_, _>>()?,
        settings: serde_json::to_value(&rec.settings).unwrap_or(serde_json::Value::Null),
        snapshots: if snapshots {
            rec.snapshots
                .iter()
                .map(|s| {
                    Ok(crate::object::EnvSnapshot {
                        layer: id(&s.layer)?,
                        created: s.created,
                        size_added: s.size_added,
                    })
                })
                .collect::<Result<_, crate::meta::Error>>()?
        } else {
            Vec::new()
        },
    })
}
