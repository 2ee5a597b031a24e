//! Checking a whole store: every object re-hashed and parsed, every name an object
//! uses present with the right kind, every ref and metadata file valid.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use rayon::prelude::*;

use crate::hash::ObjectId;
use crate::object::{EnvObject, Kind, Layer, Tree};
use crate::store::Result;
use crate::store::{ObjectInfo, Store};

#[derive(Clone, Debug, Default)]
pub struct FsckReport {
    pub objects: u64,
    pub bytes: u64,
    /// One line per problem, each naming the object, path or ref.
    pub problems: Vec<String>,
}

impl FsckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

enum Checked {
    Blob,
    Tree(Tree),
    Layer(Layer),
    Env(EnvObject),
    Bad(String),
}

/// Checks everything. Problems are collected, not returned as errors: an error
/// means the check itself could not run.
pub fn fsck(store: &Store) -> Result<FsckReport> {
    let (objects, strays) = store.list_objects()?;
    let mut report = FsckReport::default();
    for s in strays {
        report
            .problems
            .push(format!("stray file {} (not an object name)", s.display()));
    }
    let checked: Vec<(u64, Checked)> = objects.par_iter().map(|o| check_one(store, o)).collect();
    let present: HashMap<(Kind, ObjectId), ()> = objects.iter().map(|o| ((o.kind, o.id), ())).collect();
    for (o, (size, c)) in objects.iter().zip(checked) {
        report.objects += 1;
        report.bytes += size;
        let need = |kind: Kind, id: &ObjectId, report: &mut FsckReport| {
            if !present.contains_key(&(kind, *id)) {
                report
                    .problems
                    .push(format!("missing {kind} {id}, named by {} {}", o.kind, o.id));
            }
        };
        match c {
            Checked::Blob => {}
            Checked::Tree(t) => {
                for (kind, id) in t.children() {
                    need(kind, &id, &mut report);
                }
            }
            Checked::Layer(l) => {
                need(Kind::Tree, &l.tree, &mut report);
                for p in &l.parents {
                    need(Kind::Layer, p, &mut report);
                }
            }
            Checked::Env(e) => {
                for l in e.children() {
                    need(Kind::Layer, &l, &mut report);
                }
            }
            Checked::Bad(why) => report
                .problems
                .push(format!("bad {} {} ({}): {why}", o.kind, o.id, o.path.display())),
        }
    }
    for (name, id) in refs_or_problem(store, &mut report) {
        if store.kind_of(&id).is_none() {
            report
                .problems
                .push(format!("broken ref {name}: points to {id}, which is not in the store"));
        }
    }
    check_meta_dir(&store.path("meta"), &mut report);
    Ok(report)
}

fn refs_or_problem(store: &Store, report: &mut FsckReport) -> Vec<(String, ObjectId)> {
    match store.list_refs("refs/") {
        Ok(r) => r,
        Err(e) => {
            report.problems.push(format!("refs: {e}"));
            Vec::new()
        }
    }
}

fn check_one(store: &Store, o: &ObjectInfo) -> (u64, Checked) {
    let size = fs::symlink_metadata(&o.path).map(|m| m.len()).unwrap_or(0);
    let result = match o.kind {
        Kind::Blob => match store.verify(Kind::Blob, &o.id) {
            Ok(true) => Checked::Blob,
            Ok(false) => Checked::Bad("content does not hash to its name".into()),
            Err(e) => Checked::Bad(e.to_string()),
        },
        Kind::Tree => match store.read_tree(&o.id) {
            Ok(t) => Checked::Tree(t),
            Err(e) => Checked::Bad(reason(e)),
        },
        Kind::Layer => match store.read_layer(&o.id) {
            Ok(l) => Checked::Layer(l),
            Err(e) => Checked::Bad(reason(e)),
        },
        Kind::Env => match store.read_env_object(&o.id) {
            Ok(e) => Checked::Env(e),
            Err(e) => Checked::Bad(reason(e)),
        },
    };
    (size, result)
}

fn reason(e: crate::store::Error) -> String {
    match e {
        crate::store::Error::Corrupt { reason, .. } => reason,
        other => other.to_string(),
    }
}

fn check_meta_dir(dir: &Path, report: &mut FsckReport) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            check_meta_dir(&p, report);
        } else if p.extension().is_some_and(|e| e == "json") {
            match fs::read(&p) {
                Ok(bytes) => {
                    if let Err(e) = crate::meta::verify_meta(&p, &bytes) {
                        report.problems.push(e.to_string());
                    }
                }
                Err(e) => report.problems.push(format!("metadata {}: {e}", p.display())),
            }
        }
    }
}
