//! The name index: `meta/names/<name>.json` holds `{"env_id": ...}` for each
//! named environment, so a lookup by name reads one index entry and one
//! record, whatever the store holds (docs/store-format.md, "Name index").
//!
//! The records are the truth; the index is a cache of their names, written
//! under `locks/names` by rename, build and destroy. A lookup checks the record
//! the entry names; an entry that disagrees with the records (edited by hand,
//! or left by a crash between the two writes) is warned about and the records
//! decide. `karapace doctor` reports disagreements and `doctor --fix` rebuilds
//! the index from the records. A store without `meta/names/` (made before the
//! index existed, or whose index was deleted) has it rebuilt by the first
//! command that needs it: no migration.

use std::collections::BTreeMap;
use std::fs;

use super::{check_name, EnvRecord, META_DIR};
use super::{Error, Result};
use crate::store::Store;

pub(super) const NAMES_DIR: &str = "names";

/// What the index says about a name, checked against the record it names.
pub(super) enum Hit {
    /// The entry names an environment whose record has this name.
    Found(Box<EnvRecord>),
    /// No entry.
    Absent,
    /// An entry whose environment is gone or has another name.
    Stale(String),
}

/// One way the index and the records disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexProblem(pub String);

impl std::fmt::Display for IndexProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn entry(name: &str) -> String {
    format!("{NAMES_DIR}/{name}")
}

impl Store {
    /// The env_id the index gives for `name`, if any (unchecked).
    fn index_get(&self, name: &str) -> Result<Option<String>> {
        let Some(v) = self.read_meta(&entry(name))? else {
            return Ok(None);
        };
        match v.get("env_id").and_then(|v| v.as_str()) {
            Some(id) if id.len() == 64 && crate::hash::is_hex(id) => Ok(Some(id.to_string())),
            _ => Err(crate::meta::Error::Corrupt {
                path: self.meta_path(&entry(name))?,
                reason: "no \"env_id\" of 64 hex digits".into(),
            }
            .into()),
        }
    }

    pub(super) fn index_put(&self, name: &str, env_id: &str) -> Result<()> {
        Ok(self.write_meta(&entry(name), &serde_json::json!({ "env_id": env_id }))?)
    }

    /// Removes `name`'s entry if it names `env_id` (call with `locks/names`
    /// held).
    pub(super) fn index_forget(&self, name: &str, env_id: &str) -> Result<()> {
        match self.index_get(name) {
            Ok(Some(id)) if id != env_id => Ok(()),
            Ok(None) => Ok(()),
            // An entry that names this environment or cannot be read goes.
            _ => Ok(self.remove_meta(&entry(name))?),
        }
    }

    /// Looks `name` up in the index and checks the record it names. A store
    /// without an index has it rebuilt first.
    pub(super) fn index_lookup(&self, name: &str) -> Result<Hit> {
        if check_name(name).is_err() {
            return Ok(Hit::Absent);
        }
        self.ensure_name_index()?;
        self.index_check(name)
    }

    /// [`Store::index_lookup`] without the rebuild (for callers holding
    /// `locks/names`).
    pub(super) fn index_check(&self, name: &str) -> Result<Hit> {
        let id = match self.index_get(name) {
            Ok(Some(id)) => id,
            Ok(None) => return Ok(Hit::Absent),
            Err(e) => {
                crate::log!(crate::log::Level::Warn, "name index: {e}");
                return Ok(Hit::Stale(String::new()));
            }
        };
        match self.read_env(&id)? {
            Some(rec) if rec.name.as_deref() == Some(name) => Ok(Hit::Found(Box::new(rec))),
            _ => Ok(Hit::Stale(id)),
        }
    }

    /// Rebuilds the index from the records when `meta/names/` is absent.
    pub(super) fn ensure_name_index(&self) -> Result<()> {
        let dir = self.root().join("meta").join(NAMES_DIR);
        if dir.symlink_metadata().is_ok() {
            return Ok(());
        }
        let _lock = self.names_lock()?;
        if dir.symlink_metadata().is_ok() {
            return Ok(());
        }
        crate::log!(crate::log::Level::Info, "building the name index {}", dir.display());
        self.write_name_index().map(drop)
    }

    /// Makes the index say exactly what the records say (`locks/names` held).
    /// Returns how many entries it wrote or removed.
    fn write_name_index(&self) -> Result<usize> {
        let dir = self.make_dir(&self.root().join("meta").join(NAMES_DIR))?;
        let want = self.names_from_records()?;
        let mut changed = 0;
        for (name, id) in &want {
            if !matches!(self.index_get(name), Ok(Some(ref got)) if got == id) {
                self.index_put(name, id)?;
                changed += 1;
            }
        }
        for (file, _) in crate::store_dir_entries(&dir)? {
            let name = file.strip_suffix(".json").unwrap_or(&file);
            if !want.contains_key(name) {
                let path = dir.join(&file);
                fs::remove_file(&path).map_err(Error::store("remove", &path))?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// name -> env_id from the records; of two records with one name (only a
    /// hand edit makes them) the first by id.
    fn names_from_records(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mut envs = self.list_envs()?;
        envs.sort_by(|a, b| a.env_id.cmp(&b.env_id));
        for rec in envs {
            if let Some(name) = rec.name {
                out.entry(name).or_insert(rec.env_id);
            }
        }
        Ok(out)
    }

    /// Where the name index and the records disagree (`karapace doctor`).
    pub fn name_index_problems(&self) -> Result<Vec<IndexProblem>> {
        let dir = self.root().join("meta").join(NAMES_DIR);
        let want = self.names_from_records()?;
        let mut out = Vec::new();
        let Some(dir) = self.existing_dir(&dir)? else {
            if !want.is_empty() {
                out.push(IndexProblem(format!(
                    "{} is missing (the next command that looks a name up rebuilds it)",
                    dir.display()
                )));
            }
            return Ok(out);
        };
        let mut seen = BTreeMap::new();
        for (file, path) in crate::store_dir_entries(&dir)? {
            let name = file.strip_suffix(".json").unwrap_or(&file).to_string();
            match (self.index_get(&name), want.get(&name)) {
                (Ok(Some(id)), Some(w)) if &id == w => {}
                (Ok(Some(id)), Some(w)) => out.push(IndexProblem(format!(
                    "{}: names environment {id:.12}, but {name:?} is environment {w:.12}'s",
                    path.display()
                ))),
                (Ok(Some(id)), None) => out.push(IndexProblem(format!(
                    "{}: names environment {id:.12}, but no environment is called {name:?}",
                    path.display()
                ))),
                (Ok(None), _) => {}
                (Err(e), _) => out.push(IndexProblem(e.to_string())),
            }
            seen.insert(name, ());
        }
        for (name, id) in &want {
            if !seen.contains_key(name) {
                out.push(IndexProblem(format!(
                    "no index entry for {name:?} (environment {id:.12})"
                )));
            }
        }
        Ok(out)
    }

    /// Rebuilds the name index from the records (`karapace doctor --fix`).
    /// Returns how many entries changed.
    pub fn repair_name_index(&self) -> Result<usize> {
        let _lock = self.names_lock()?;
        self.write_name_index()
    }

    /// Every record whose name is `name`, by reading them all: the records'
    /// truth, when the index has no good entry.
    pub(super) fn scan_for_name(&self, name: &str) -> Result<Option<EnvRecord>> {
        Ok(self.list_envs()?.into_iter().find(|r| r.name.as_deref() == Some(name)))
    }

    /// The env_ids whose records' file names start with `prefix`: one
    /// directory listing, no record read.
    pub(super) fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = self.root().join("meta").join(META_DIR);
        let Some(dir) = self.existing_dir(&dir)? else {
            return Ok(Vec::new());
        };
        Ok(crate::store_dir_entries(&dir)?
            .into_iter()
            .filter_map(|(n, _)| n.strip_suffix(".json").map(str::to_string))
            .filter(|id| id.starts_with(prefix))
            .collect())
    }
}
