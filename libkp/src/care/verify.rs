//! `karapace verify-store`: fsck (every object re-hashed and parsed, every
//! name an object uses present, refs and metadata checksums), plus what only
//! environments know: their layers, snapshots and writable layers exist.

use super::Result;
use crate::fsck::{fsck, FsckReport};
use crate::hash::ObjectId;
use crate::object::Kind;
use crate::store::Store;

pub fn verify_store(store: &Store) -> Result<FsckReport> {
    crate::progress::plan(&["objects", "environments"]);
    let mut report = fsck(store)?;
    crate::progress::phase("environments");
    let dir = store.path("meta/envs");
    let names = if dir.is_dir() {
        crate::store_dir_entries(&dir)?
    } else {
        Vec::new()
    };
    let total = Some(names.len() as u64);
    for (done, (name, path)) in names.into_iter().enumerate() {
        crate::progress::report(done as u64, total);
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        let rec = match store.read_env(id) {
            Ok(Some(rec)) => rec,
            Ok(None) => continue,
            Err(e) => {
                // fsck names a checksum mismatch already; add what it cannot see.
                let shown = path.display().to_string();
                if !report.problems.iter().any(|p| p.contains(&shown)) {
                    report.problems.push(format!("environment record {shown}: {e}"));
                }
                continue;
            }
        };
        let who = format!("environment {} ({})", rec.display_name(), rec.env_id);
        let named = rec
            .layers
            .iter()
            .map(|l| ("layer", l))
            .chain(rec.snapshots.iter().map(|s| ("snapshot", &s.layer)));
        for (what, hex) in named {
            match ObjectId::from_hex(hex) {
                Some(l) if store.has(Kind::Layer, &l) => {}
                Some(_) => report.problems.push(format!("{who}: {what} {hex} is not in the store")),
                None => report.problems.push(format!("{who}: {what} {hex:?} is not an id")),
            }
        }
        let upper = crate::drift::upper_dir(store, &rec.env_id);
        if !upper.is_dir() {
            report
                .problems
                .push(format!("{who}: writable layer {} is missing", upper.display()));
        }
    }
    Ok(report)
}
