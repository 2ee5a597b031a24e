//! The schema: manifest v1 (docs/manifest.md), its normal form and canonical
//! JSON, the lock (docs/lock.md), and the environment identity derived from it
//! (docs/hash-contract.md).

pub mod canonical;
pub mod error;
pub mod file;
pub mod identity;
pub mod image;
mod locate;
pub mod lock;
pub mod manifest;
mod normalize;
pub mod pin;
pub mod resolve;
pub mod settings;
pub mod templates;

use std::path::{Path, PathBuf};

pub use error::{Drift, Error, Location};
pub use image::ImageRef;
pub use lock::{Lock, LockedBase, LockedPackage, LOCK_FILE};
pub use manifest::Manifest;
pub use resolve::{ImageResolver, KnownImages, KnownPackages, PackageResolver};
pub use settings::{Backend, Integration, Mount, OciRuntime, Settings};

pub const MANIFEST_FILE: &str = "karapace.toml";

/// The manifest a command means: the given file, `karapace.toml` inside a
/// given directory, or `./karapace.toml`.
pub fn manifest_path(arg: Option<&Path>) -> PathBuf {
    match arg {
        Some(p) if p.is_dir() => p.join(MANIFEST_FILE),
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(MANIFEST_FILE),
    }
}

/// The lock beside `manifest`, if there is one; a lock that is present but
/// invalid or damaged is an error, not silently ignored.
pub fn existing_lock(manifest: &Path) -> Result<Option<Lock>, Error> {
    let path = lock::path_for(manifest);
    match Lock::load(&path) {
        Ok(l) => Ok(Some(l)),
        Err(Error::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
