//! Walking a tree depth-first in name order.

use super::join;
use crate::error::Result;
use crate::hash::ObjectId;
use crate::object::{Entry, EntryKind};
use crate::store::Store;

/// What a walk callback tells the walker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// Go on, into this entry if it is a directory.
    Descend,
    /// Go on, but not into this entry.
    Skip,
}

/// Calls `f(path, entry)` for every entry below `tree`, parents before children.
pub fn walk_tree(
    store: &Store,
    tree: &ObjectId,
    prefix: &[u8],
    f: &mut dyn FnMut(&[u8], &Entry) -> Result<Visit>,
) -> Result<()> {
    for e in store.read_tree(tree)?.entries {
        let path = join(prefix, &e.name);
        if f(&path, &e)? == Visit::Descend {
            if let EntryKind::Dir { tree } = &e.kind {
                walk_tree(store, tree, &path, f)?;
            }
        }
    }
    Ok(())
}
