//! Checking a whole store: every object re-hashed and parsed, every name an object
//! uses present with the right kind, every ref and metadata file valid.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use rayon::prelude::*;

use crate::hash::ObjectId;
use crate::object::{EnvObject, Kind, Layer, Tree};
use crate::store::{ObjectInfo, Store};

/// The check itself could not run (the objects could not be listed); what it
/// finds wrong is in [`FsckReport::problems`], not here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Store(e) => e.exit_code(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    crate::progress::phase("objects");
    let total = Some(objects.len() as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    let checked: Vec<(u64, Checked)> = objects
        .par_iter()
        .map(|o| {
            let c = check_one(store, o);
            if crate::progress::enabled() {
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                crate::progress::report(n, total);
            }
            c
        })
        .collect();
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

/// What is wrong with an object something in use names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Harm {
    /// Not in the store (or stored as another kind).
    Missing,
    /// A blob whose length is not the size its tree gives (cut short, or grown).
    Size { found: u64, want: u64 },
    /// A tree or layer that does not hash to its name or does not parse.
    Corrupt(String),
}

/// One damaged object reachable from a root: which, where its file is, what is
/// wrong, and how the walk reached it.
#[derive(Clone, Debug)]
pub struct Damage {
    pub kind: Kind,
    pub id: ObjectId,
    /// The object's file in the store (`objects/ab/cd….KIND`).
    pub path: std::path::PathBuf,
    pub harm: Harm,
    /// The root it was reached from: an index into the roots given.
    pub root: usize,
    /// The layer that holds it (the root's own layer, or one below it).
    pub layer: Option<ObjectId>,
    /// The file or directory it is, inside that layer (empty for the layer's
    /// root tree and for layers).
    pub name: Vec<u8>,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({}) ", self.kind, self.id, self.path.display())?;
        match &self.harm {
            Harm::Missing => write!(f, "is missing")?,
            Harm::Size { found, want } => write!(f, "has {found} bytes where its tree says {want}")?,
            Harm::Corrupt(why) => write!(f, "is corrupt: {why}")?,
        }
        if !self.name.is_empty() {
            write!(f, ", /{}", String::from_utf8_lossy(&self.name))?;
        }
        if let Some(l) = &self.layer {
            write!(f, " in layer {}", &l.to_hex()[..12])?;
        }
        Ok(())
    }
}

/// The quick check `doctor` runs: every object reachable from `roots` (layers,
/// trees or blobs, each with a label for messages) is present, every tree and
/// layer on the way hashes to its name and parses (they are read to walk
/// them), and every blob has the size its tree gives; blob contents are not
/// re-hashed ([`fsck`] does that). Each object is looked at once, however many
/// roots reach it: a damage's `root` is the first root that reaches it.
pub fn reachable_damage(store: &Store, roots: &[(Kind, ObjectId)]) -> Vec<Damage> {
    let mut walk = Walk {
        store,
        seen: std::collections::HashSet::new(),
        out: Vec::new(),
    };
    for (i, (kind, id)) in roots.iter().enumerate() {
        match kind {
            Kind::Env => walk.env(i, id),
            Kind::Layer => walk.layer(i, id),
            Kind::Tree => walk.tree(i, None, id, Vec::new()),
            Kind::Blob => walk.blob(i, None, id, None, Vec::new()),
        }
    }
    walk.out
}

struct Walk<'a> {
    store: &'a Store,
    seen: std::collections::HashSet<(Kind, ObjectId)>,
    out: Vec<Damage>,
}

impl Walk<'_> {
    fn damage(&mut self, root: usize, layer: Option<ObjectId>, kind: Kind, id: &ObjectId, harm: Harm, name: Vec<u8>) {
        self.out.push(Damage {
            kind,
            id: *id,
            path: self.store.object_path(kind, id),
            harm,
            root,
            layer,
            name,
        });
    }

    /// The harm of a failed read (an unreadable object counts as corrupt,
    /// with the error).
    fn harm(e: crate::store::Error) -> Harm {
        match e {
            crate::store::Error::Missing { .. } | crate::store::Error::WrongKind { .. } => Harm::Missing,
            other => Harm::Corrupt(reason(other)),
        }
    }

    fn env(&mut self, root: usize, id: &ObjectId) {
        if !self.seen.insert((Kind::Env, *id)) {
            return;
        }
        match self.store.read_env_object(id) {
            Ok(env) => {
                for layer in env.children() {
                    self.layer(root, &layer);
                }
            }
            Err(e) => self.damage(root, None, Kind::Env, id, Self::harm(e), Vec::new()),
        }
    }

    fn layer(&mut self, root: usize, id: &ObjectId) {
        if !self.seen.insert((Kind::Layer, *id)) {
            return;
        }
        match self.store.read_layer(id) {
            Ok(l) => {
                self.tree(root, Some(*id), &l.tree, Vec::new());
                for p in &l.parents {
                    self.layer(root, p);
                }
            }
            Err(e) => self.damage(root, None, Kind::Layer, id, Self::harm(e), Vec::new()),
        }
    }

    fn tree(&mut self, root: usize, layer: Option<ObjectId>, id: &ObjectId, name: Vec<u8>) {
        if !self.seen.insert((Kind::Tree, *id)) {
            return;
        }
        let tree = match self.store.read_tree(id) {
            Ok(t) => t,
            Err(e) => return self.damage(root, layer, Kind::Tree, id, Self::harm(e), name),
        };
        for e in &tree.entries {
            let mut path = name.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.name);
            match &e.kind {
                crate::object::EntryKind::File { blob, size } => self.blob(root, layer, blob, Some(*size), path),
                crate::object::EntryKind::Dir { tree } => self.tree(root, layer, tree, path),
                _ => {}
            }
        }
    }

    fn blob(&mut self, root: usize, layer: Option<ObjectId>, id: &ObjectId, size: Option<u64>, name: Vec<u8>) {
        if !self.seen.insert((Kind::Blob, *id)) {
            return;
        }
        let harm = match fs::symlink_metadata(self.store.object_path(Kind::Blob, id)) {
            Ok(m) if !m.is_file() => Harm::Corrupt("not a regular file".into()),
            Ok(m) => match size {
                Some(want) if m.len() != want => Harm::Size { found: m.len(), want },
                _ => return,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Harm::Missing,
            Err(e) => Harm::Corrupt(e.to_string()),
        };
        self.damage(root, layer, Kind::Blob, id, harm, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Entry, EntryKind, LayerKind, RootMeta};

    fn file(name: &str, blob: ObjectId, size: u64) -> Entry {
        Entry {
            name: name.into(),
            kind: EntryKind::File { blob, size },
            mode: 0o644,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn reachable_damage_names_missing_and_cut_short_blobs_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let a = store.write_bytes(Kind::Blob, b"aaaa").unwrap();
        let b = store.write_bytes(Kind::Blob, b"bbbb").unwrap();
        let sub = store
            .write_tree(&Tree {
                opaque: false,
                entries: vec![file("b", b, 4)],
            })
            .unwrap();
        let mut top = Tree {
            opaque: false,
            entries: vec![
                file("a", a, 4),
                Entry {
                    name: b"d".to_vec(),
                    kind: EntryKind::Dir { tree: sub },
                    ..file("d", a, 0)
                },
            ],
        };
        top.sort();
        let tree = store.write_tree(&top).unwrap();
        let layer = Layer {
            kind: LayerKind::Base,
            tree,
            root: RootMeta::default(),
            parents: vec![],
            provenance: Default::default(),
        };
        let l = store.write_layer_object(&layer).unwrap();
        let roots = [(Kind::Layer, l), (Kind::Tree, tree)];
        assert!(reachable_damage(&store, &roots).is_empty());
        fs::write(store.object_path(Kind::Blob, &a), b"a").unwrap();
        fs::remove_file(store.object_path(Kind::Blob, &b)).unwrap();
        let found = reachable_damage(&store, &roots);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].id, &found[0].harm), (a, &Harm::Size { found: 1, want: 4 }));
        assert_eq!(
            (found[1].id, &found[1].harm, &found[1].name[..]),
            (b, &Harm::Missing, &b"d/b"[..])
        );
        assert!(found.iter().all(|d| d.root == 0 && d.layer == Some(l)));
        fs::remove_file(store.object_path(Kind::Layer, &l)).unwrap();
        let found = reachable_damage(&store, &roots[..1]);
        assert_eq!(
            (found.len(), found[0].kind, &found[0].harm),
            (1, Kind::Layer, &Harm::Missing)
        );
    }
}
