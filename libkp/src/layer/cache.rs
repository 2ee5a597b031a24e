//! Shared read-only checkouts of layers, `cache/checkouts/<layer id>`, made once
//! and used as overlay lower directories by every environment on that layer. A
//! checkout is built in `tmp/` and renamed into place, so a half-made one is
//! never visible; two builders racing both finish and one rename wins.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::checkout::{checkout_layer, CheckoutOptions};
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::store::Store;

impl Store {
    pub fn checkout_cache_path(&self, layer: &ObjectId) -> PathBuf {
        self.path("cache/checkouts").join(layer.to_hex())
    }

    /// The shared checkout of `layer`, made now if missing.
    pub fn cached_checkout(&self, layer: &ObjectId) -> Result<PathBuf> {
        let target = self.checkout_cache_path(layer);
        // A symlink planted at the checkout (or above it) is refused, never
        // used as the environment's lower directory.
        if let Some(dir) = self.existing_dir(&target)? {
            return Ok(dir);
        }
        self.make_dir(target.parent().expect("cache/checkouts"))?;
        // The checkout is built in tmp/, which gc sweeps when no writer holds
        // the store.
        let _guard = self.write_guard()?;
        let tmp = self.temp_dir()?;
        let dest = tmp.path().join("root");
        let report = checkout_layer(self, layer, &dest, &CheckoutOptions::default())?;
        for w in &report.warnings {
            crate::log!(crate::log::Level::Debug, "checkout of {}: {w}", layer.short(12));
        }
        match fs::rename(&dest, &target) {
            Ok(()) => Ok(target),
            // Another builder finished first: its checkout is the same tree.
            Err(e)
                if target.is_dir()
                    && matches!(
                        e.kind(),
                        io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
                    ) =>
            {
                Ok(target)
            }
            Err(e) => Err(Error::store("rename into place", &target)(e)),
        }
    }
}
