//! Walking a tree depth-first in name order.

use super::join;
use super::Result;
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

/// One listing line, as `kp-ls-layer` and `kp-cat-object -p` print it
/// (docs/plumbing.md): `MODE TYPE OBJECT\tPATH`, and with `long`
/// `MODE TYPE OBJECT UID:GID SIZE\tPATH[ -> TARGET]`. `quote` applies C-style
/// quoting to odd paths; without it (for -z) the path's bytes go out as they are.
pub fn format_entry(path: &[u8], e: &Entry, long: bool, quote: bool) -> Vec<u8> {
    let object = match &e.kind {
        EntryKind::File { blob, .. } => blob.to_hex(),
        EntryKind::Dir { tree } => tree.to_hex(),
        _ => "-".to_string(),
    };
    let mut line = format!("{:06o} {} {}", e.full_mode(), e.kind.word(), object).into_bytes();
    if long {
        let size = match &e.kind {
            EntryKind::File { size, .. } => size.to_string(),
            EntryKind::Symlink { target } => target.len().to_string(),
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                format!("{major},{minor}")
            }
            _ => "-".to_string(),
        };
        line.extend_from_slice(format!(" {}:{} {:>10}", e.uid, e.gid, size).as_bytes());
    }
    line.push(b'\t');
    if quote {
        line.extend_from_slice(super::quote_path(path).as_bytes());
    } else {
        line.extend_from_slice(path);
    }
    if long {
        if let EntryKind::Symlink { target } = &e.kind {
            line.extend_from_slice(b" -> ");
            if quote {
                line.extend_from_slice(super::quote_path(target).as_bytes());
            } else {
                line.extend_from_slice(target);
            }
        }
    }
    line
}
