//! The image code as the schema's [`ImageResolver`]: what `build` and `pin` use
//! to turn a manifest's `base.image` into a digest (importing it if needed) and
//! into an exact reference.

use std::path::PathBuf;

use super::{import, reference, resolve, Config, ImportOptions, Reference};
use crate::schema::{self, ImageResolver};
use crate::store::Store;

pub struct StoreImages<'a> {
    pub store: &'a Store,
    pub config: Config,
    /// Relative paths in a manifest are relative to its directory.
    pub base_dir: PathBuf,
    pub progress: bool,
}

impl StoreImages<'_> {
    /// The source to import: the reference, with a relative path made
    /// absolute against the manifest's directory.
    pub fn source(&self, reference: &str) -> String {
        match reference::parse(reference) {
            Ok(Reference::Path(p)) if p.is_relative() => {
                let joined = self.base_dir.join(p);
                std::path::absolute(&joined).unwrap_or(joined).display().to_string()
            }
            _ => reference.to_string(),
        }
    }

    /// Imports the image (a no-op when already imported) and returns its digest.
    pub fn import(&self, reference: &str) -> super::Result<crate::ObjectId> {
        Ok(self.import_at(reference, None)?.digest)
    }

    /// Imports the image; an OCI reference at the manifest digest `oci_digest`
    /// when given (what a lock recorded), under the name the reference itself gets.
    pub fn import_at(&self, reference: &str, oci_digest: Option<&str>) -> super::Result<super::Imported> {
        let mut source = self.source(reference);
        let mut name = None;
        if let (Ok(Reference::Oci(r)), Some(d)) = (reference::parse(reference), oci_digest) {
            source = r.at(d).to_string();
            name = Some(r.default_name());
        }
        let opts = ImportOptions {
            name,
            progress: self.progress,
            config: self.config.clone(),
        };
        import(self.store, &source, &opts)
    }
}

fn unresolved(reference: &str, e: super::Error) -> schema::Error {
    schema::Error::UnresolvedImage {
        reference: reference.to_string(),
        reason: e.to_string(),
    }
}

impl ImageResolver for StoreImages<'_> {
    fn resolve_image(&self, reference: &str) -> schema::error::Result<String> {
        self.import(reference)
            .map(|d| d.to_hex())
            .map_err(|e| unresolved(reference, e))
    }

    fn exact_reference(&self, reference: &str) -> schema::error::Result<String> {
        // A short name no imported image has is its release (parse_in).
        match super::parse_in(self.store, reference) {
            Ok(Reference::Distro(_) | Reference::Url { .. } | Reference::Oci(_)) => resolve(reference, &self.config)
                .map(|r| r.pinned)
                .map_err(|e| unresolved(reference, e)),
            _ => Ok(reference.to_string()),
        }
    }
}
