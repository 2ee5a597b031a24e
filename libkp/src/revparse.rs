//! Naming objects: full ids, unique prefixes, refs, and paths inside layers.
//!
//! ```text
//! <64 hex>          an object id
//! <4..63 hex>       a unique prefix of one
//! refs/…            a ref by its full name
//! NAME              refs/NAME, refs/tags/NAME, refs/images/NAME, refs/envs/NAME (first found)
//! REV^{tree}        the root tree of a layer
//! REV:PATH          the object at PATH inside a layer or tree
//! ```

use crate::hash::{self, ObjectId, HEX_LEN};
use crate::object::{EntryKind, Kind};
use crate::store::Store;

/// A revision that names nothing, or names the wrong thing; each carries the
/// revision as given.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown revision {rev:?}: no object, prefix or ref by that name")]
    UnknownRev { rev: String },
    #[error("ambiguous id prefix {prefix:?}; candidates:\n{}", candidates.join("\n"))]
    Ambiguous { prefix: String, candidates: Vec<String> },
    /// `REV:PATH` or `REV^{tree}` on a blob or an env object.
    #[error("object {id} is a {actual}, not a tree")]
    NotATree { id: ObjectId, actual: Kind },
    #[error("path {path:?} not found in {rev}")]
    NoSuchPath { rev: String, path: String },
    /// A ref pointing at an object that is not in the store.
    #[error("corrupt metadata {}: points to {id}, which is not in the store", path.display())]
    BrokenRef { path: std::path::PathBuf, id: ObjectId },
    #[error(transparent)]
    Refs(#[from] crate::refs::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BrokenRef { .. } => crate::exit::STORE,
            Error::Refs(e) => e.exit_code(),
            Error::Store(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortest prefix accepted, as git does.
pub const MIN_PREFIX: usize = 4;

const SEARCH: &[&str] = &["refs/", "refs/tags/", "refs/images/", "refs/envs/"];

/// Resolves a revision to an object and its kind.
pub fn resolve(store: &Store, rev: &str) -> Result<(Kind, ObjectId)> {
    if let Some((base, path)) = rev.split_once(':') {
        let (kind, id) = resolve(store, base)?;
        let tree = root_tree(store, kind, id)?;
        return lookup_path(store, tree, path, rev);
    }
    if let Some(base) = rev.strip_suffix("^{tree}") {
        let (kind, id) = resolve(store, base)?;
        return Ok((Kind::Tree, root_tree(store, kind, id)?));
    }
    resolve_base(store, rev)
}

/// Resolves a revision that names a layer or a tree to the tree, with the
/// layer's root directory metadata (a bare tree gets the default 0755 root).
pub fn resolve_tree(store: &Store, rev: &str) -> Result<(ObjectId, crate::object::RootMeta)> {
    let (kind, id) = resolve(store, rev)?;
    match kind {
        Kind::Layer => {
            let layer = store.read_layer(&id)?;
            Ok((layer.tree, layer.root))
        }
        _ => Ok((root_tree(store, kind, id)?, crate::object::RootMeta::default())),
    }
}

fn root_tree(store: &Store, kind: Kind, id: ObjectId) -> Result<ObjectId> {
    match kind {
        Kind::Layer => Ok(store.read_layer(&id)?.tree),
        Kind::Tree => Ok(id),
        Kind::Blob | Kind::Env => Err(Error::NotATree { id, actual: kind }),
    }
}

fn lookup_path(store: &Store, mut tree: ObjectId, path: &str, rev: &str) -> Result<(Kind, ObjectId)> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if comps.is_empty() {
        return Ok((Kind::Tree, tree));
    }
    let not_found = || Error::NoSuchPath {
        rev: rev.to_string(),
        path: path.to_string(),
    };
    for (i, comp) in comps.iter().enumerate() {
        let t = store.read_tree(&tree)?;
        let e = t.get(comp.as_bytes()).ok_or_else(not_found)?;
        let last = i + 1 == comps.len();
        match (&e.kind, last) {
            (EntryKind::Dir { tree: sub }, _) => tree = *sub,
            (EntryKind::File { blob, .. }, true) => return Ok((Kind::Blob, *blob)),
            _ => return Err(not_found()),
        }
    }
    Ok((Kind::Tree, tree))
}

fn resolve_base(store: &Store, rev: &str) -> Result<(Kind, ObjectId)> {
    if rev.len() == HEX_LEN {
        if let Some(id) = ObjectId::from_hex(rev) {
            return store
                .kind_of(&id)
                .map(|k| (k, id))
                .ok_or_else(|| Error::UnknownRev { rev: rev.to_string() });
        }
    }
    if rev.starts_with("refs/") {
        if let Some(id) = store.read_ref(rev)? {
            return kind_of_ref(store, rev, id);
        }
    } else if crate::refs::check_name(&format!("refs/{rev}")).is_ok() {
        for dir in SEARCH {
            let name = format!("{dir}{rev}");
            if crate::refs::check_name(&name).is_ok() {
                if let Some(id) = store.read_ref(&name)? {
                    return kind_of_ref(store, &name, id);
                }
            }
        }
    }
    if rev.len() >= MIN_PREFIX && hash::is_hex(rev) {
        let found = store.objects_with_prefix(rev)?;
        let mut ids: Vec<_> = found.iter().map(|o| o.id).collect();
        ids.dedup();
        match ids.len() {
            0 => {}
            1 => {
                let id = ids[0];
                return Ok((store.kind_of(&id).expect("just listed"), id));
            }
            _ => {
                return Err(Error::Ambiguous {
                    prefix: rev.to_string(),
                    candidates: found.iter().map(|o| format!("  {} {}", o.id, o.kind)).collect(),
                })
            }
        }
    }
    Err(Error::UnknownRev { rev: rev.to_string() })
}

fn kind_of_ref(store: &Store, name: &str, id: ObjectId) -> Result<(Kind, ObjectId)> {
    match store.kind_of(&id) {
        Some(k) => Ok((k, id)),
        None => Err(Error::BrokenRef {
            path: store.root().join(name),
            id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Entry, Layer, LayerKind, RootMeta, Tree};

    #[test]
    fn forms() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let blob = store.write_bytes(Kind::Blob, b"x").unwrap();
        let sub = store
            .write_tree(&Tree {
                opaque: false,
                entries: vec![Entry {
                    name: b"f".to_vec(),
                    kind: EntryKind::File { blob, size: 1 },
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    xattrs: vec![],
                }],
            })
            .unwrap();
        let top = store
            .write_tree(&Tree {
                opaque: false,
                entries: vec![Entry {
                    name: b"d".to_vec(),
                    kind: EntryKind::Dir { tree: sub },
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    xattrs: vec![],
                }],
            })
            .unwrap();
        let layer = store
            .write_layer_object(&Layer {
                kind: LayerKind::Base,
                tree: top,
                root: RootMeta::default(),
                parents: vec![],
                provenance: Default::default(),
            })
            .unwrap();
        store
            .update_ref("refs/tags/t", Some(layer), crate::refs::Expect::Absent)
            .unwrap();
        assert_eq!(resolve(&store, "t").unwrap(), (Kind::Layer, layer));
        assert_eq!(resolve(&store, "refs/tags/t").unwrap(), (Kind::Layer, layer));
        assert_eq!(resolve(&store, &layer.short(8)).unwrap(), (Kind::Layer, layer));
        assert_eq!(resolve(&store, "t^{tree}").unwrap(), (Kind::Tree, top));
        assert_eq!(resolve(&store, "t:d").unwrap(), (Kind::Tree, sub));
        assert_eq!(resolve(&store, "t:d/f").unwrap(), (Kind::Blob, blob));
        assert!(matches!(resolve(&store, "t:d/g"), Err(Error::NoSuchPath { .. })));
        assert!(matches!(resolve(&store, "nope"), Err(Error::UnknownRev { .. })));
        assert!(matches!(resolve(&store, "abc"), Err(Error::UnknownRev { .. })));
        let e = resolve(&store, &format!("{blob}^{{tree}}")).unwrap_err();
        assert_eq!(e.to_string(), format!("object {blob} is a blob, not a tree"));
        assert_eq!(e.exit_code(), crate::exit::FAILURE);
        // A ref to an object that is not in the store is store damage (exit 3),
        // named by the ref's file.
        std::fs::write(
            dir.path().join("refs/tags/gone"),
            format!("{}\n", ObjectId::of(b"gone")),
        )
        .unwrap();
        let e = resolve(&store, "gone").unwrap_err();
        assert!(matches!(e, Error::BrokenRef { .. }), "{e:?}");
        assert!(e.to_string().starts_with(&format!(
            "corrupt metadata {}: points to ",
            dir.path().join("refs/tags/gone").display()
        )));
        assert_eq!(e.exit_code(), crate::exit::STORE);
        let e = resolve(&store, "refs/a..b").unwrap_err();
        assert!(
            matches!(e, Error::Refs(crate::refs::Error::InvalidName { .. })),
            "{e:?}"
        );
    }
}
