//! `karapace verify ENV`: whether a built environment is what its lock should
//! produce (docs/hash-contract.md, "Dependency layers").
//!
//! Without a rebuild it checks what the store records against the lock: the
//! lock names this env_id, the base layer is the locked digest, the dependency
//! layer sits on it, says it installed what the manifest asks for, and holds
//! nothing the normalisation drops. That proves the record is consistent, not
//! that the bytes are what an install gives today. `rebuild` proves that:
//! it installs the locked packages over the base again, in a fresh upper
//! directory, and compares the layer id with the recorded one.

use std::path::{Path, PathBuf};

use super::install::{ID_MAP, RANGE, SINGLE};
use super::normalise::is_left_behind;
use super::Result;
use super::{install_packages, Runner};
use crate::env::EnvRecord;
use crate::hash::ObjectId;
use crate::layer::{diff_trees, quote_path, walk_tree, Visit};
use crate::object::{EntryKind, LayerKind};
use crate::schema::{self, Lock};
use crate::store::Store;

/// One named check and what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// What a fresh install of the lock gave, against what is recorded.
#[derive(Clone, Debug)]
pub struct Rebuilt {
    pub layer: String,
    pub recorded: String,
    /// The id map the rebuild used (`single` or `range`).
    pub id_map: String,
    /// Paths that differ (A added by the rebuild, D only in the recorded
    /// layer, M modified, T type changed), at most [`MAX_DIFFERENCES`].
    pub differences: Vec<String>,
}

pub const MAX_DIFFERENCES: usize = 50;

#[derive(Clone, Debug)]
pub struct Verification {
    pub checks: Vec<Check>,
    /// The id map the dependency layer was built with, as it records it
    /// (None: no dependency layer, or one written before it was recorded).
    pub id_map: Option<String>,
    pub rebuilt: Option<Rebuilt>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Verifies `rec`; with `rebuild`, installs the lock again through it.
pub fn verify(store: &Store, rec: &EnvRecord, rebuild: Option<&dyn Runner>) -> Result<Verification> {
    let mut v = Verification {
        checks: Vec::new(),
        id_map: None,
        rebuilt: None,
    };
    let mut check = |name, ok, detail: String| v.checks.push(Check { name, ok, detail });
    let Some(lock) = find_lock(rec, &mut check)? else {
        return Ok(v);
    };
    let base = rec.layers.first().and_then(|h| ObjectId::from_hex(h));
    let base_ok = rec.layers.first() == Some(&lock.base.digest);
    check(
        "base",
        base_ok,
        if base_ok {
            format!("base layer {} is the locked image digest", lock.base.digest)
        } else {
            format!(
                "base layer {} is not the locked image digest {}",
                rec.layers.first().map_or("(none)", String::as_str),
                lock.base.digest
            )
        },
    );
    let asked = lock.settings.requested_packages().join(" ");
    let dep = match (lock.packages.is_empty(), rec.layers.len()) {
        (true, 1) => {
            check("dependency", true, "no packages locked, no dependency layer".into());
            None
        }
        (false, 2) => Some(rec.layers[1].clone()),
        (empty, n) => {
            let want = if empty { 1 } else { 2 };
            check(
                "dependency",
                false,
                format!("{n} layer(s) recorded, the lock gives {want}"),
            );
            None
        }
    };
    let dep = dep.and_then(|d| match ObjectId::from_hex(&d) {
        Some(id) => Some((d, id)),
        None => {
            check("dependency", false, format!("{d:?} is not a layer id"));
            None
        }
    });
    if let Some((dep, id)) = &dep {
        let id = *id;
        let layer = store.read_layer(&id)?;
        let problems = [
            (layer.kind != LayerKind::Dependency).then(|| format!("its kind is {:?}", layer.kind)),
            (layer.parents.first() != base.as_ref() || layer.parents.len() != 1)
                .then(|| "its parent is not the base layer".to_string()),
            (layer.provenance.get("installed").map(String::as_str) != Some(asked.as_str())).then(|| {
                format!(
                    "it says it installed {:?}, the lock asks for {asked:?}",
                    layer.provenance.get("installed").map_or("", String::as_str)
                )
            }),
        ];
        let problems: Vec<String> = problems.into_iter().flatten().collect();
        check(
            "dependency",
            problems.is_empty(),
            if problems.is_empty() {
                format!("dependency layer {dep} sits on the base and installed {asked:?}")
            } else {
                format!("dependency layer {dep}: {}", problems.join("; "))
            },
        );
        let mut left = Vec::new();
        walk_tree(store, &layer.tree, b"", &mut |path, e| {
            let kept = matches!(e.kind, EntryKind::Dir { .. } | EntryKind::Whiteout);
            if !kept && is_left_behind(path) {
                left.push(quote_path(path));
            }
            Ok(Visit::Descend)
        })?;
        check(
            "normalised",
            left.is_empty(),
            if left.is_empty() {
                "the dependency layer holds nothing a run leaves behind".into()
            } else {
                format!("left behind by the install: {}", left.join(" "))
            },
        );
        v.id_map = layer.provenance.get(ID_MAP).cloned();
        let (ok, detail) = match v.id_map.as_deref() {
            Some(RANGE) => (
                true,
                "built with a subordinate range: the bytes any range build of this lock gives".into(),
            ),
            Some(SINGLE) => (
                true,
                "built with a single-id map: differs from a range build of this lock by apt's \
                 00karapace-single-id-map setting and the owners of apt's partial/ and auxfiles/ \
                 directories (root's, not _apt's) (docs/hash-contract.md, \"Id maps\")"
                    .into(),
            ),
            _ => (
                false,
                "the layer records no id map: written before builds normalised their layers; rebuild it".into(),
            ),
        };
        check("id_map", ok, detail);
        let rebuild = match (rebuild, base) {
            (Some(runner), Some(base)) if base_ok => Some((runner, base)),
            (Some(_), _) => {
                check("rebuild", false, "not run: the base layer is not the locked one".into());
                None
            }
            (None, _) => None,
        };
        if let Some((runner, base)) = rebuild {
            let wanted = super::locked_requests(&lock);
            let _guard = store.write_guard()?;
            let fresh = install_packages(
                store,
                &lock.base.image,
                &lock.settings.requested_packages(),
                base,
                &wanted,
                false,
                runner,
            )?;
            let new = store.read_layer(&fresh.layer)?;
            let mut differences = Vec::new();
            for c in diff_trees(store, &layer.tree, &new.tree)? {
                if differences.len() == MAX_DIFFERENCES {
                    break;
                }
                differences.push(format!("{} {}", c.status.letter(), quote_path(&c.path)));
            }
            let id_map = new.provenance.get(ID_MAP).cloned().unwrap_or_default();
            let same = fresh.layer == id;
            let detail = if same {
                format!("a fresh install of the lock wrote {dep} again")
            } else if v.id_map.as_deref() != Some(id_map.as_str()) {
                format!(
                    "a fresh install wrote {} with a {id_map} id map; this environment was built with {}: not comparable",
                    fresh.layer,
                    v.id_map.as_deref().unwrap_or("an unrecorded one")
                )
            } else {
                format!(
                    "a fresh install of the lock wrote {}, not {dep} ({} path(s) differ)",
                    fresh.layer,
                    differences.len()
                )
            };
            check("rebuild", same, detail);
            v.rebuilt = Some(Rebuilt {
                layer: fresh.layer.to_hex(),
                recorded: dep.clone(),
                id_map,
                differences,
            });
        }
    }
    Ok(v)
}

/// The lock beside the manifest the environment was built from, when it
/// names this environment.
fn find_lock(rec: &EnvRecord, check: &mut dyn FnMut(&'static str, bool, String)) -> Result<Option<Lock>> {
    let Some(manifest) = rec.manifest.as_deref() else {
        check(
            "lock",
            false,
            "no manifest recorded (an environment from elsewhere): no lock to verify against".into(),
        );
        return Ok(None);
    };
    let path: PathBuf = schema::lock::path_for(Path::new(manifest));
    if !path.exists() {
        check("lock", false, format!("{}: no lock", path.display()));
        return Ok(None);
    }
    let lock = Lock::load(&path)?;
    lock.check_integrity(&path)?;
    if lock.env_id != rec.env_id {
        check(
            "lock",
            false,
            format!(
                "{} now names environment {}, not this one",
                path.display(),
                lock.short_id
            ),
        );
        return Ok(None);
    }
    check("lock", true, format!("{} names this environment", path.display()));
    Ok(Some(lock))
}
