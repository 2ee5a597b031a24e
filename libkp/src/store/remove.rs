//! Removing a tree the store made, whatever modes its directories were left in.

use std::fs;
use std::path::Path;

use super::{Error, Result};

/// Removes a directory tree, making read-only directories (a checkout of
/// `/root` is 0700, of some `/usr/share` dirs 0555) writable on the way.
/// Symlinks are removed, never followed: one at `path` itself goes alone.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return fs::remove_file(path).map_err(Error::store("remove", path));
    }
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let _ = fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(&dir) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    fs::remove_dir_all(path).map_err(Error::store("remove", path))
}
