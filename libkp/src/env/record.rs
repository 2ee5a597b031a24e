//! An environment's record and its states.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Result;

/// The stored states. `Running` is derived from run markers and never stored;
/// `destroyed` is the absence of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Built,
    Running,
    Frozen,
    Archived,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Built => "built",
            State::Running => "running",
            State::Frozen => "frozen",
            State::Archived => "archived",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where an environment came from; not part of its env_id. Records written
/// before the field existed are local.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Built here from a manifest on this machine.
    #[default]
    Local,
    /// Recorded from elsewhere (pulled): its mounts and host integration
    /// apply only once trusted (docs/environments.md, "Origin and trust").
    Remote,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Remote => "remote",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvRecord {
    pub env_id: String,
    pub name: Option<String>,
    pub state: State,
    #[serde(default)]
    pub origin: Origin,
    /// The manifest it was built from (absolute path), if any.
    #[serde(default)]
    pub manifest: Option<String>,
    /// The image reference as the lock has it.
    #[serde(default)]
    pub image: Option<String>,
    /// Layer ids, lowest first: the base, then the dependency layer.
    #[serde(default)]
    pub layers: Vec<String>,
    /// What the lock says shapes it at run time (integration, mounts, network,
    /// limits), kept here so a later edit of the manifest cannot change a
    /// built environment behind its id.
    #[serde(default)]
    pub settings: Option<crate::schema::Settings>,
    /// Saved writable layers (`karapace commit`), oldest first. Their layers
    /// are gc roots like `layers`.
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
    /// Seconds since the epoch.
    pub created: u64,
    pub updated: u64,
}

/// A saved writable layer (docs/environments.md, "Drift").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The snapshot layer's id; its parent is the environment's top layer.
    pub layer: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// Bytes of file content this snapshot names that neither the
    /// environment's layers nor its earlier snapshots name.
    pub size_added: u64,
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl EnvRecord {
    pub fn new(env_id: String, name: Option<String>) -> Self {
        let t = now();
        EnvRecord {
            env_id,
            name,
            state: State::Built,
            origin: Origin::Local,
            manifest: None,
            image: None,
            layers: Vec::new(),
            settings: None,
            snapshots: Vec::new(),
            created: t,
            updated: t,
        }
    }

    pub fn short_id(&self) -> String {
        self.env_id.chars().take(12).collect()
    }

    /// The name if it has one, else the short id: what messages call it.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.short_id())
    }

    pub fn touch(&mut self) {
        self.updated = now();
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a record always serialises")
    }

    pub fn from_json(v: Value, path: &Path) -> Result<Self> {
        let rec: EnvRecord = serde_json::from_value(v).map_err(|e| crate::meta::Error::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        rec.checked(path)
    }

    /// A record from the bytes of its file: as Karapace wrote it, the
    /// checksum over those bytes and one parse; otherwise checked as any
    /// metadata is ([`crate::meta::verify_meta`]).
    pub fn from_meta_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let Some(body) = crate::meta::canonical_body(bytes) else {
            return Self::from_json(crate::meta::verify_meta(path, bytes)?, path);
        };
        Self::from_canonical_body(body, path)
    }

    /// A record from the data of a metadata file whose checksum held.
    pub(super) fn from_canonical_body(body: &[u8], path: &Path) -> Result<Self> {
        let rec: EnvRecord = serde_json::from_slice(body).map_err(|e| crate::meta::Error::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        rec.checked(path)
    }

    /// A record from one line of the listing's summary (a record file's
    /// bytes as Karapace writes them, checked by the summary's own hash of
    /// all its lines: one hash of the whole is several times faster than
    /// one per record); `None` for a line that is not one.
    pub(crate) fn from_summary_line(line: &[u8], path: &Path) -> Option<Self> {
        Self::from_canonical_body(crate::meta::split_canonical(line)?.1, path).ok()
    }

    fn checked(self, path: &Path) -> Result<Self> {
        let rec = self;
        if rec.state == State::Running {
            return Err(crate::meta::Error::Corrupt {
                path: path.to_path_buf(),
                reason: "state \"running\" is never stored".into(),
            }
            .into());
        }
        Ok(rec)
    }
}
