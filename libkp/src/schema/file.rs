//! Replacing a user's file (manifest, lock) atomically: a temporary file in the
//! same directory, fsync, rename over the target, fsync the directory. A crash
//! leaves either the old file or the new one, never a torn one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::{Error, Result};

/// Replaces `target` with `data`.
pub fn write_atomic(target: &Path, data: &[u8]) -> Result<()> {
    write(target, data, true)
}

/// Creates `target` with `data`; fails with [`Error::Exists`] if it exists, even
/// when another process creates it meanwhile (the rename does not clobber).
pub fn write_new(target: &Path, data: &[u8]) -> Result<()> {
    write(target, data, false)
}

fn write(target: &Path, data: &[u8], replace: bool) -> Result<()> {
    let werr = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { op, path, source }
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Keep the mode of the file we replace; a new file gets the usual 0644.
    let mode = fs::metadata(target)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let mut tmp = tempfile::Builder::new()
        .prefix(".karapace-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(werr("create temporary file in", dir))?;
    tmp.write_all(data).map_err(werr("write", tmp.path()))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(werr("chmod", tmp.path()))?;
    tmp.as_file().sync_all().map_err(werr("fsync", tmp.path()))?;
    let persisted = if replace {
        tmp.persist(target)
    } else {
        tmp.persist_noclobber(target)
    };
    persisted.map_err(|e| match e.error.kind() {
        std::io::ErrorKind::AlreadyExists if !replace => Error::Exists { path: target.into() },
        _ => Error::Write {
            op: "rename into place",
            path: target.into(),
            source: e.error,
        },
    })?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(werr("fsync directory", dir))
}
