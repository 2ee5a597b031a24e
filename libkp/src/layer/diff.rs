//! Comparing two trees, skipping every subtree whose id is equal on both sides.

use super::join;
use super::Result;
use crate::hash::ObjectId;
use crate::object::{Entry, EntryKind, Tree};
use crate::store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Added,
    Deleted,
    /// Same type, other content or metadata.
    Modified,
    /// The type changed (file to directory, directory to whiteout, …).
    TypeChanged,
}

impl Status {
    pub fn letter(self) -> char {
        match self {
            Status::Added => 'A',
            Status::Deleted => 'D',
            Status::Modified => 'M',
            Status::TypeChanged => 'T',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub status: Status,
    pub path: Vec<u8>,
    pub old: Option<Entry>,
    pub new: Option<Entry>,
}

/// Every path that differs between trees `a` and `b`, in path order. An added or
/// deleted directory is listed with everything below it. A directory whose opaque
/// flag changed is listed as modified.
pub fn diff_trees(store: &Store, a: &ObjectId, b: &ObjectId) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    if a != b {
        let (ta, tb) = (store.read_tree(a)?, store.read_tree(b)?);
        if ta.opaque != tb.opaque {
            out.push(Change {
                status: Status::Modified,
                path: b"/".to_vec(),
                old: None,
                new: None,
            });
        }
        walk(store, &ta, &tb, b"", &mut out)?;
    }
    Ok(out)
}

fn walk(store: &Store, a: &Tree, b: &Tree, prefix: &[u8], out: &mut Vec<Change>) -> Result<()> {
    let (mut i, mut j) = (0, 0);
    while i < a.entries.len() || j < b.entries.len() {
        let ea = a.entries.get(i);
        let eb = b.entries.get(j);
        let order = match (ea, eb) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let e = ea.expect("left entry");
                one_side(store, e, prefix, Status::Deleted, out)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let e = eb.expect("right entry");
                one_side(store, e, prefix, Status::Added, out)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (ea.expect("left"), eb.expect("right"));
                both(store, x, y, prefix, out)?;
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

fn both(store: &Store, x: &Entry, y: &Entry, prefix: &[u8], out: &mut Vec<Change>) -> Result<()> {
    if x == y {
        return Ok(());
    }
    let path = join(prefix, &x.name);
    match (&x.kind, &y.kind) {
        (EntryKind::Dir { tree: ta }, EntryKind::Dir { tree: tb }) => {
            let (a, b) = (store.read_tree(ta)?, store.read_tree(tb)?);
            let meta_changed = x.mode != y.mode || x.uid != y.uid || x.gid != y.gid || x.xattrs != y.xattrs;
            if meta_changed || a.opaque != b.opaque {
                out.push(Change {
                    status: Status::Modified,
                    path: path.clone(),
                    old: Some(x.clone()),
                    new: Some(y.clone()),
                });
            }
            if ta != tb {
                walk(store, &a, &b, &path, out)?;
            }
        }
        (kx, ky) if std::mem::discriminant(kx) == std::mem::discriminant(ky) => {
            out.push(Change {
                status: Status::Modified,
                path,
                old: Some(x.clone()),
                new: Some(y.clone()),
            });
        }
        _ => {
            out.push(Change {
                status: Status::TypeChanged,
                path: path.clone(),
                old: Some(x.clone()),
                new: Some(y.clone()),
            });
            // What the directory side held appears or disappears with it.
            if let EntryKind::Dir { tree } = &x.kind {
                list_all(store, tree, &path, Status::Deleted, out)?;
            }
            if let EntryKind::Dir { tree } = &y.kind {
                list_all(store, tree, &path, Status::Added, out)?;
            }
        }
    }
    Ok(())
}

fn one_side(store: &Store, e: &Entry, prefix: &[u8], status: Status, out: &mut Vec<Change>) -> Result<()> {
    let path = join(prefix, &e.name);
    let (old, new) = if status == Status::Added {
        (None, Some(e.clone()))
    } else {
        (Some(e.clone()), None)
    };
    out.push(Change {
        status,
        path: path.clone(),
        old,
        new,
    });
    if let EntryKind::Dir { tree } = &e.kind {
        list_all(store, tree, &path, status, out)?;
    }
    Ok(())
}

fn list_all(store: &Store, tree: &ObjectId, prefix: &[u8], status: Status, out: &mut Vec<Change>) -> Result<()> {
    for e in store.read_tree(tree)?.entries {
        one_side(store, &e, prefix, status, out)?;
    }
    Ok(())
}
