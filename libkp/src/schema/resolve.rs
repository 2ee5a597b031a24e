//! Resolution: manifest in, lock out. Two small traits are where the images
//! and package-manager code plug in; this file also holds the offline
//! resolvers, which only use what is already known (docs/lock.md, "Resolvers").

use std::path::Path;

use super::error::{Error, Location, Result};
use super::image::is_digest;
use super::lock::{Lock, LockedBase, LockedPackage};
use super::manifest::Manifest;

/// Turns an unpinned base image reference into its digest (the blake3 id of
/// the layer the image imports as). Pinned references never reach it.
pub trait ImageResolver {
    fn resolve_image(&self, reference: &str) -> Result<String>;

    /// The reference that names exactly this image's source, for `pin`: a
    /// distribution release becomes its build's URL with the checksum, a URL
    /// gains its checksum. Resolvers that know no better keep it as written.
    fn exact_reference(&self, reference: &str) -> Result<String> {
        Ok(reference.to_string())
    }
}

/// Computes the full installed closure of `requested` on `base`.
pub trait PackageResolver {
    fn resolve_packages(&self, base: &LockedBase, requested: &[String]) -> Result<Vec<LockedPackage>>;
}

/// Resolves `manifest` into a lock, identity included.
pub fn resolve(manifest: &Manifest, images: &dyn ImageResolver, packages: &dyn PackageResolver) -> Result<Lock> {
    let digest = match &manifest.base.digest {
        Some(d) => d.clone(),
        None => images.resolve_image(&manifest.base.reference)?,
    };
    let base = LockedBase {
        image: manifest.base.reference.clone(),
        digest,
        oci_digest: None,
    };
    let closure = packages.resolve_packages(&base, &manifest.settings.requested_packages())?;
    Ok(Lock::new(base, closure, manifest.settings.clone()))
}

/// Offline image resolution: a digest given explicitly, else the one a
/// previous lock recorded for the same reference.
#[derive(Debug, Default)]
pub struct KnownImages {
    pub explicit: Option<String>,
    pub previous: Option<LockedBase>,
}

impl ImageResolver for KnownImages {
    fn resolve_image(&self, reference: &str) -> Result<String> {
        if let Some(d) = &self.explicit {
            return Ok(d.clone());
        }
        match &self.previous {
            Some(b) if b.image == reference => Ok(b.digest.clone()),
            _ => Err(Error::UnresolvedImage {
                reference: reference.into(),
                reason: "this build has no image resolver, and the digest is not known: pin the reference \
                         (REF@blake3:DIGEST), keep a karapace.lock that locks it, or pass --image-digest"
                    .into(),
            }),
        }
    }
}

/// Offline package resolution: a closure given explicitly, else nothing to
/// resolve, else the previous lock's closure when it locked the same base and
/// the same request.
#[derive(Debug, Default)]
pub struct KnownPackages {
    pub explicit: Option<Vec<LockedPackage>>,
    pub previous: Option<Lock>,
}

impl PackageResolver for KnownPackages {
    fn resolve_packages(&self, base: &LockedBase, requested: &[String]) -> Result<Vec<LockedPackage>> {
        if let Some(c) = &self.explicit {
            return Ok(c.clone());
        }
        if requested.is_empty() {
            return Ok(Vec::new());
        }
        match &self.previous {
            Some(l) if l.base == *base && l.settings.requested_packages() == requested => Ok(l.packages.clone()),
            _ => Err(Error::UnresolvedPackages {
                requested: requested.to_vec(),
                reason: "this build has no package resolver, and no lock records a closure for this base and \
                         request: pass --closure FILE"
                    .into(),
            }),
        }
    }
}

/// Parses a closure listing: one `NAME VERSION ARCH` per line, blank lines
/// and `#` comments ignored — the shape of
/// `dpkg-query -W -f='${Package} ${Version} ${Architecture}\n'`.
pub fn parse_closure(text: &str, file: &Path) -> Result<Vec<LockedPackage>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, version, arch] = f.as_slice() else {
            return Err(Error::Closure {
                at: Location {
                    file: file.into(),
                    line: i + 1,
                    column: 1,
                    key: None,
                },
                message: format!("expected NAME VERSION ARCH, found {line:?}"),
            });
        };
        out.push(LockedPackage {
            name: name.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
        });
    }
    Ok(out)
}

/// Checks a digest given on a command line.
pub fn check_digest(s: &str) -> std::result::Result<(), String> {
    if is_digest(s) {
        Ok(())
    } else {
        Err(format!("image digest {s:?}: expected 64 lowercase hex digits"))
    }
}
