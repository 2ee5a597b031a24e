//! Base image references and their pinned form (docs/manifest.md, "Pinning").
//! A reference is pinned when it carries the image digest: `REF@blake3:HEX`,
//! with HEX the 64 lowercase hex digits of the imported image's layer id.

use std::fmt;

pub const PIN_SEPARATOR: &str = "@blake3:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// As written, without the pin suffix.
    pub reference: String,
    /// The digest the reference is pinned to, if any.
    pub digest: Option<String>,
}

pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        if s.trim().is_empty() {
            return Err("empty image reference; expected e.g. \"debian/bookworm\" or an https:// URL".into());
        }
        if s.trim() != s {
            return Err(format!("image reference {s:?} has surrounding blanks"));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(format!("image reference {s:?} contains {c:?}"));
        }
        let (reference, digest) = match s.rfind(PIN_SEPARATOR) {
            Some(i) => (&s[..i], Some(&s[i + PIN_SEPARATOR.len()..])),
            None => (s, None),
        };
        if let Some(d) = digest {
            if !is_digest(d) {
                return Err(format!(
                    "image reference {s:?}: expected 64 lowercase hex digits after {PIN_SEPARATOR:?}"
                ));
            }
            if reference.is_empty() {
                return Err(format!("image reference {s:?}: nothing before {PIN_SEPARATOR:?}"));
            }
        }
        Ok(ImageRef {
            reference: reference.to_string(),
            digest: digest.map(str::to_string),
        })
    }

    pub fn pinned(reference: &str, digest: &str) -> ImageRef {
        ImageRef {
            reference: reference.to_string(),
            digest: Some(digest.to_string()),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference)?;
        if let Some(d) = &self.digest {
            write!(f, "{PIN_SEPARATOR}{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_syntax() {
        let d = "ab".repeat(32);
        let r = ImageRef::parse(&format!("https://x/r.tar.xz@blake3:{d}")).unwrap();
        assert_eq!(
            (r.reference.as_str(), r.digest.as_deref()),
            ("https://x/r.tar.xz", Some(d.as_str()))
        );
        assert_eq!(r.to_string(), format!("https://x/r.tar.xz@blake3:{d}"));
        assert_eq!(ImageRef::parse("Debian/Bookworm").unwrap().reference, "Debian/Bookworm");
        for bad in [
            "",
            "  ",
            " debian",
            "x@blake3:12",
            &format!("@blake3:{d}"),
            &format!("x@blake3:{}", d.to_uppercase()),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
