//! The one module allowed to use `unsafe`: thin wrappers over calls that no safe
//! crate API covers. Every block says why it is sound.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Maps `len` bytes of `file` from `offset`, read-only, prefaulted (one
/// `MAP_POPULATE` instead of a page fault per 4 KiB while hashing).
pub fn map_readonly(file: &File, offset: u64, len: usize) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private; memmap2 requires `unsafe` because
    // another process may modify or truncate the file while it is mapped. A change
    // only makes us read other bytes (every stored object is re-hashed before it is
    // named, so a racing writer cannot put a wrong id in the store). Truncation below
    // the mapped range raises SIGBUS; we only map regular files we are reading right
    // now, the same exposure `b3sum` accepts.
    unsafe { memmap2::MmapOptions::new().offset(offset).len(len).populate().map(file) }
}
