//! Layers as filesystems: writing a directory into the store, checking one out,
//! listing and comparing them.

mod cache;
mod checkout;
mod diff;
mod hashcache;
mod ls;
mod write;
pub mod xattr;

pub use checkout::{checkout_layer, checkout_tree, CheckoutOptions, CheckoutReport};
pub use diff::{diff_trees, Change, Status};
pub use hashcache::HashCache;
pub use ls::{format_entry, walk_tree, Visit};
pub(crate) use write::{dev_numbers, is_opaque_dir, is_xwhiteout, kept_xattrs, read_dir_nofollow, write_dir_as};
pub use write::{write_dir, write_layer, IdShift, WriteOptions, WriteReport};

use std::io;
use std::path::{Path, PathBuf};

/// A directory that cannot be written as a layer or a destination a layer
/// cannot be checked out to, each naming the path; or a failure of the store
/// or of a system call on the user's path, as the store words it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Unsupported { .. } => crate::exit::FAILURE,
            Error::Store(e) => e.exit_code(),
        }
    }

    /// Wraps an io error on a store path.
    pub fn store(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let wrap = crate::store::Error::store(op, path);
        move |source| Error::Store(wrap(source))
    }

    /// Wraps an io error on a path the user gave.
    pub fn input(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let wrap = crate::store::Error::input(op, path);
        move |source| Error::Store(wrap(source))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shows a path the way git does with `core.quotePath`: as is when it is plain
/// printable ASCII or UTF-8, else in double quotes with C escapes.
pub fn quote_path(path: &[u8]) -> String {
    let plain = match std::str::from_utf8(path) {
        Ok(s) => !s.chars().any(|c| c.is_control() || c == '"' || c == '\\'),
        Err(_) => false,
    };
    if plain {
        return String::from_utf8(path.to_vec()).expect("checked utf-8");
    }
    let mut out = String::from("\"");
    for &b in path {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

/// Joins a parent path and a name with '/'.
pub(crate) fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
    if !prefix.is_empty() {
        p.extend_from_slice(prefix);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::quote_path(b"usr/bin"), "usr/bin");
        assert_eq!(super::quote_path("café".as_bytes()), "café");
        assert_eq!(super::quote_path(b"a\nb"), "\"a\\nb\"");
        assert_eq!(super::quote_path(b"\xff"), "\"\\377\"");
    }
}
