//! `pin`: rewrite `base.image` to its pinned form in place, keeping every other
//! byte of the manifest — comments, order, spacing — as it was.

use std::path::Path;

use toml_edit::DocumentMut;

use super::error::{Error, Location, Result};
use super::file;
use super::image::ImageRef;
use super::manifest::{self, Manifest};
use super::resolve::ImageResolver;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    /// The reference already carried a digest; the file was not touched.
    Already(ImageRef),
    /// The file now says `to`.
    Rewritten { from: String, to: ImageRef },
}

/// `pin --check`: fails unless the manifest's base image is pinned.
pub fn check(manifest: &Manifest) -> Result<()> {
    match manifest.base.digest {
        Some(_) => Ok(()),
        None => Err(Error::NotPinned {
            file: manifest.file.clone(),
            reference: manifest.base.reference.clone(),
        }),
    }
}

/// Pins the manifest at `path` through `images`, atomically.
pub fn pin(path: &Path, images: &dyn ImageResolver) -> Result<Pinned> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        op: "read manifest",
        path: path.into(),
        source,
    })?;
    let m = manifest::parse(&text, path)?;
    if m.base.digest.is_some() {
        return Ok(Pinned::Already(m.base));
    }
    let digest = images.resolve_image(&m.base.reference)?;
    let to = ImageRef::pinned(&images.exact_reference(&m.base.reference)?, &digest);
    let new_text = rewrite_image(&text, &to.to_string()).map_err(|message| Error::Manifest {
        at: Location {
            file: path.into(),
            line: 1,
            column: 1,
            key: Some("base.image".into()),
        },
        message,
    })?;
    // The rewrite must change nothing but the pin: re-read and compare.
    let again = manifest::parse(&new_text, path)?;
    assert_eq!(
        (&again.base, &again.settings),
        (&to, &m.settings),
        "pin rewrote more than base.image"
    );
    file::write_atomic(path, new_text.as_bytes())?;
    Ok(Pinned::Rewritten {
        from: m.base.reference,
        to,
    })
}

/// Replaces the value of `base.image` in `text` (a `[base]` table, an inline
/// table or a dotted key), keeping its surrounding spaces and comment.
pub fn rewrite_image(text: &str, image: &str) -> std::result::Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| e.to_string())?;
    let base = doc
        .get_mut("base")
        .and_then(|b| b.as_table_like_mut())
        .ok_or("no [base] table")?;
    let value = base
        .get_mut("image")
        .and_then(|i| i.as_value_mut())
        .ok_or("no base.image value")?;
    let decor = value.decor().clone();
    *value = toml_edit::Value::from(image);
    *value.decor_mut() = decor;
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_keeps_layout() {
        let text = "# top\nmanifest_version = 1\n\n[base]   # the base\nimage  =  'debian/bookworm'   # comment\n\n[system]\npackages = [ \"git\" ]\n";
        let out = rewrite_image(text, "debian/bookworm@blake3:x").unwrap();
        assert_eq!(out, text.replace("'debian/bookworm'", "\"debian/bookworm@blake3:x\""));
        let inline = "manifest_version = 1\nbase = { image = \"a\" } # c\n";
        assert_eq!(
            rewrite_image(inline, "b").unwrap(),
            "manifest_version = 1\nbase = { image = \"b\" } # c\n"
        );
        let dotted = "manifest_version = 1\nbase.image = \"a\"\n";
        assert_eq!(
            rewrite_image(dotted, "b").unwrap(),
            "manifest_version = 1\nbase.image = \"b\"\n"
        );
    }
}
