//! `karapace migrate`: the store's format version, and the upgrades from
//! older ones. Format 1 is the first, so there is nothing to upgrade yet; a
//! newer format than this build reads is refused, never touched.

use std::fs;
use std::path::Path;

use super::{Error, Result};
use crate::store::VERSION;

/// The format this build reads and writes.
pub const CURRENT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateReport {
    /// The format found before migrating.
    pub found: u32,
    /// Formats upgraded through, oldest first (none yet).
    pub upgraded: Vec<u32>,
}

/// Reads the store's version and brings it to [`CURRENT`].
pub fn migrate(store: &Path) -> Result<MigrateReport> {
    let path = store.join("version");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(crate::store::Error::NotAStore {
                path: store.to_path_buf(),
            }
            .into())
        }
        Err(e) => return Err(Error::store("read", &path)(e)),
    };
    let line = text.lines().next().unwrap_or("");
    let unsupported = || {
        crate::store::Error::UnsupportedVersion {
            path: store.to_path_buf(),
            found: line.to_string(),
            supported: VERSION,
        }
        .into()
    };
    let found: u32 = line
        .strip_prefix("karapace-store ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(unsupported)?;
    if found != CURRENT {
        // Older formats do not exist; newer ones are for newer builds.
        return Err(unsupported());
    }
    Ok(MigrateReport {
        found,
        upgraded: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_up_to_date_and_newer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        crate::Store::init(&root).unwrap();
        assert_eq!(migrate(&root).unwrap().found, CURRENT);
        let v = root.join("version");
        fs::set_permissions(&v, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        fs::write(&v, "karapace-store 2\n").unwrap();
        let e = migrate(&root).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::STORE);
        assert!(matches!(
            migrate(dir.path()),
            Err(Error::Store(crate::store::Error::NotAStore { .. }))
        ));
    }
}
