//! Image references: what `[base] image`, `karapace image import` and
//! `kp-fetch-image` accept, parsed without touching the network or the store.
//!
//! ```text
//! debian/bookworm, ubuntu/24.04, fedora/41, archlinux/current  a distribution release on an image server
//! http://…, https://…                                     a rootfs tarball, URL kept exactly as written
//! oci://REGISTRY/REPO:TAG, …@sha256:HEX, docker://…        an image in an OCI registry
//! https://…#sha256=HEX                                    the same, pinned to a checksum
//! /abs/path, ./rel, ../rel, NAME.tar.xz                   a local tarball or directory
//! anything else that is a valid image name                an image already imported under that name;
//!                                                          failing that, a short name (rolling, debian, …)
//!                                                          stands for a release (see [`short_name`])
//! ```

use std::path::PathBuf;

use super::ImageError;

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A distribution release, resolved through an image server's simplestreams index.
    Distro(Distro),
    /// A rootfs tarball over HTTP(S). `url` is exactly as written, less a
    /// `#sha256=` fragment, which becomes `sha256`.
    Url { url: String, sha256: Option<String> },
    /// A path on this machine: a tarball or a directory (told apart when imported).
    Path(PathBuf),
    /// An image already in the store, under `refs/images/NAME`.
    Named(String),
    /// An image in an OCI registry: `oci://` or `docker://` (docs/oci.md).
    Oci(super::oci::OciRef),
}

/// A distribution release as image servers name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distro {
    /// Lowercase distribution name as servers use it (`debian`, `ubuntu`, …).
    pub os: &'static str,
    /// The release as written by the user, normalised to lowercase.
    pub release: String,
    /// Which server releases match.
    pub matcher: Release,
}

/// How a reference's release matches the releases a server lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// Any of these names (codename and version number of the same release).
    Names(Vec<String>),
}

impl Release {
    /// Whether a server's release name (or one of its aliases) matches.
    pub fn matches(&self, candidate: &str) -> bool {
        match self {
            Release::Names(names) => names.iter().any(|n| n.eq_ignore_ascii_case(candidate)),
        }
    }
}

/// The reference system's short image names and the releases they stand for
/// on image servers, as it resolved them. A bare name is first an image
/// already imported under that name; only when there is none does it mean
/// this release (docs/images.md, "Short names").
pub const SHORT_NAMES: &[(&str, &str)] = &[
    ("rolling", "opensuse/tumbleweed"),
    ("tumbleweed", "opensuse/tumbleweed"),
    ("opensuse", "opensuse/tumbleweed"),
    ("leap", "opensuse/15.6"),
    ("ubuntu", "ubuntu/24.04"),
    ("debian", "debian/bookworm"),
    ("fedora", "fedora/41"),
    ("arch", "archlinux/current"),
    ("archlinux", "archlinux/current"),
];

/// The release a short name stands for (case-insensitive), as a reference.
pub fn short_name(name: &str) -> Option<&'static str> {
    SHORT_NAMES
        .iter()
        .find(|(short, _)| short.eq_ignore_ascii_case(name))
        .map(|(_, full)| *full)
}

struct Known {
    os: &'static str,
    /// Pairs of names for the same release, the server's own name first.
    aliases: &'static [&'static [&'static str]],
    /// The one release of a distribution that has no others (`archlinux`).
    default: Option<&'static str>,
    /// Releases not in `aliases` are still accepted when they look like these.
    open: bool,
}

/// The distributions Karapace knows. Releases outside the alias lists are
/// accepted for `open` distributions (a new Fedora or Debian needs no new build).
const KNOWN: &[Known] = &[
    Known {
        os: "debian",
        aliases: &[
            &["bookworm", "12"],
            &["trixie", "13"],
            &["bullseye", "11"],
            &["sid", "unstable"],
        ],
        default: None,
        open: true,
    },
    Known {
        os: "ubuntu",
        aliases: &[
            &["noble", "24.04"],
            &["jammy", "22.04"],
            &["focal", "20.04"],
            &["oracular", "24.10"],
            &["plucky", "25.04"],
        ],
        default: None,
        open: true,
    },
    Known {
        os: "fedora",
        aliases: &[],
        default: None,
        open: true,
    },
    Known {
        os: "opensuse",
        // Leap is 15.6, as the reference system resolved it: not whatever
        // numbered release is newest.
        aliases: &[&["tumbleweed", "rolling"], &["15.6", "leap"]],
        default: None,
        open: true,
    },
    Known {
        os: "archlinux",
        aliases: &[],
        default: Some("current"),
        open: false,
    },
    Known {
        os: "alpine",
        aliases: &[&["edge"]],
        default: None,
        open: true,
    },
];

/// The distributions and the releases spelled out for them, for messages and docs.
pub fn known_distros() -> String {
    KNOWN.iter().map(|k| k.os).collect::<Vec<_>>().join(", ")
}

const TAR_SUFFIXES: &[&str] = &[
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.xz",
    ".txz",
    ".tar.zst",
    ".tzst",
    ".tar.zstd",
];

/// Whether a file name looks like a tarball (used to tell `rootfs.tar.xz` the
/// path from `rootfs` the image name).
pub fn has_tar_suffix(s: &str) -> bool {
    TAR_SUFFIXES.iter().any(|suf| s.len() > suf.len() && s.ends_with(suf))
}

/// The name without its tarball suffix.
pub fn strip_tar_suffix(s: &str) -> &str {
    TAR_SUFFIXES
        .iter()
        .find_map(|suf| s.strip_suffix(suf).filter(|r| !r.is_empty()))
        .unwrap_or(s)
}

/// Parses a reference. Names are checked for form only; whether they exist is
/// known when they are resolved.
pub fn parse(reference: &str) -> Result<Reference, ImageError> {
    let bad = |reason: &str| ImageError::BadReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    };
    if reference.is_empty() {
        return Err(bad("empty"));
    }
    if reference.trim() != reference {
        return Err(bad("leading or trailing white space"));
    }
    let lower = reference.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return parse_url(reference).map_err(|r| bad(&r));
    }
    if lower.starts_with("oci://") || lower.starts_with("docker://") {
        return super::oci::reference::parse(reference)
            .map(Reference::Oci)
            .map_err(|r| bad(&r));
    }
    if lower.contains("://") {
        return Err(bad(
            "only http://, https://, oci:// and docker:// references are fetched",
        ));
    }
    if reference.starts_with('/') || reference.starts_with("./") || reference.starts_with("../") || reference == "." {
        return Ok(Reference::Path(PathBuf::from(reference)));
    }
    if !reference.contains('/') && has_tar_suffix(reference) {
        return Ok(Reference::Path(PathBuf::from(reference)));
    }
    if let Some(d) = parse_distro(&lower) {
        return Ok(Reference::Distro(d));
    }
    check_image_name(reference).map_err(|r| bad(&r))?;
    Ok(Reference::Named(reference.to_string()))
}

fn parse_url(reference: &str) -> Result<Reference, String> {
    let (url, fragment) = match reference.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (reference, None),
    };
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    if rest.is_empty() || rest.starts_with('/') {
        return Err("the URL names no host".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains white space or control characters".into());
    }
    let sha256 = match fragment {
        None => None,
        Some(f) => {
            let hex = f
                .strip_prefix("sha256=")
                .ok_or("the only fragment understood is #sha256=HEX")?;
            if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err("#sha256= needs 64 hex digits".into());
            }
            Some(hex.to_ascii_lowercase())
        }
    };
    Ok(Reference::Url {
        url: url.to_string(),
        sha256,
    })
}

fn parse_distro(lower: &str) -> Option<Distro> {
    let (os, release) = match lower.split_once('/') {
        Some((os, rel)) => (os, Some(rel)),
        None => (lower, None),
    };
    let known = KNOWN.iter().find(|k| k.os == os)?;
    // A bare name (`archlinux`, `debian`) is an image name first: see short_name.
    let release = match release {
        Some(r) if !r.is_empty() && !r.contains('/') => r.to_string(),
        _ => return None,
    };
    if release
        .bytes()
        .any(|c| !(c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_'))
    {
        return None;
    }
    let names: Vec<String> = match known.aliases.iter().find(|a| a.contains(&release.as_str())) {
        Some(a) => a.iter().map(|s| s.to_string()).collect(),
        None if known.open || known.default == Some(release.as_str()) => vec![release.clone()],
        None => return None,
    };
    Some(Distro {
        os: known.os,
        release,
        matcher: Release::Names(names),
    })
}

/// Image names: what `refs/images/NAME` and `meta/images/NAME` both accept.
pub fn check_image_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 200 {
        return Err("an image name has 1 to 200 characters".into());
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-_./@+".contains(&c))
        || name.contains('@')
    {
        return Err("an image name uses ASCII letters, digits and - _ . / + only".into());
    }
    let ok_parts = name
        .split('/')
        .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock") && !c.ends_with(".json"));
    if !ok_parts || name.contains("..") {
        return Err(
            "each /-separated part is non-empty, does not start with '.' and does not end with .lock or .json".into(),
        );
    }
    if name.len() == 64 && name.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err("64 hex digits would read as an object id".into());
    }
    Ok(())
}

impl Reference {
    /// The name an import gets when the user gives none.
    pub fn default_name(&self) -> Option<String> {
        let name = match self {
            Reference::Distro(d) => format!("{}/{}", d.os, d.release),
            Reference::Named(n) => n.clone(),
            Reference::Oci(r) => r.default_name(),
            Reference::Url { url, .. } => {
                let last = url.split(['?', '#']).next()?.rsplit('/').next()?;
                strip_tar_suffix(last).to_string()
            }
            Reference::Path(p) => {
                let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                strip_tar_suffix(p.file_name()?.to_str()?).to_string()
            }
        };
        check_image_name(&name).ok().map(|_| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &str) -> Vec<String> {
        match parse(r).unwrap() {
            Reference::Distro(Distro {
                matcher: Release::Names(n),
                ..
            }) => n,
            other => panic!("{r}: {other:?}"),
        }
    }

    #[test]
    fn distros_and_aliases() {
        assert_eq!(names("debian/bookworm"), ["bookworm", "12"]);
        assert_eq!(names("ubuntu/24.04"), ["noble", "24.04"]);
        assert_eq!(names("Ubuntu/Noble"), ["noble", "24.04"]);
        assert_eq!(names("ubuntu/jammy"), ["jammy", "22.04"]);
        assert_eq!(names("fedora/42"), ["42"]);
        assert_eq!(names("opensuse/rolling"), ["tumbleweed", "rolling"]);
        assert_eq!(names("archlinux/current"), ["current"]);
        assert_eq!(names("opensuse/leap"), ["15.6", "leap"]);
        assert_eq!(names("opensuse/15.6"), ["15.6", "leap"]);
        assert_eq!(parse("debian").unwrap(), Reference::Named("debian".into()));
        assert_eq!(parse("archlinux").unwrap(), Reference::Named("archlinux".into()));
        assert_eq!(
            parse("archlinux/foo").unwrap(),
            Reference::Named("archlinux/foo".into())
        );
    }

    #[test]
    fn short_names_are_names_that_stand_for_releases() {
        for (short, full, os, release_names) in [
            (
                "rolling",
                "opensuse/tumbleweed",
                "opensuse",
                &["tumbleweed", "rolling"][..],
            ),
            (
                "tumbleweed",
                "opensuse/tumbleweed",
                "opensuse",
                &["tumbleweed", "rolling"],
            ),
            (
                "opensuse",
                "opensuse/tumbleweed",
                "opensuse",
                &["tumbleweed", "rolling"],
            ),
            ("leap", "opensuse/15.6", "opensuse", &["15.6", "leap"]),
            ("ubuntu", "ubuntu/24.04", "ubuntu", &["noble", "24.04"]),
            ("debian", "debian/bookworm", "debian", &["bookworm", "12"]),
            ("fedora", "fedora/41", "fedora", &["41"]),
            ("arch", "archlinux/current", "archlinux", &["current"]),
            ("archlinux", "archlinux/current", "archlinux", &["current"]),
        ] {
            // Parsed, a short name is an image name (looked up first) ...
            assert_eq!(parse(short).unwrap(), Reference::Named(short.into()));
            // ... standing for this release when no image has it.
            assert_eq!(short_name(short), Some(full), "{short}");
            assert_eq!(short_name(&short.to_uppercase()), Some(full));
            match parse(full).unwrap() {
                Reference::Distro(d) => {
                    assert_eq!(d.os, os);
                    assert_eq!(
                        d.matcher,
                        Release::Names(release_names.iter().map(|s| s.to_string()).collect())
                    );
                }
                other => panic!("{full}: {other:?}"),
            }
        }
        // The slash forms the reference system also took are releases already.
        assert_eq!(names("opensuse/tumbleweed"), ["tumbleweed", "rolling"]);
        for other in ["my-base", "centos", "alpine", "debian/bookworm"] {
            assert_eq!(short_name(other), None, "{other}");
        }
    }

    #[test]
    fn urls_are_kept_exactly() {
        let r = parse("https://Example.ORG/Images/RootFS.tar.xz").unwrap();
        assert_eq!(
            r,
            Reference::Url {
                url: "https://Example.ORG/Images/RootFS.tar.xz".into(),
                sha256: None
            }
        );
        let hex = "AB".repeat(32);
        let r = parse(&format!("http://h/x.tar#sha256={hex}")).unwrap();
        assert_eq!(
            r,
            Reference::Url {
                url: "http://h/x.tar".into(),
                sha256: Some(hex.to_lowercase())
            }
        );
        assert!(parse("http://h/x.tar#md5=00").is_err());
        assert!(parse("http:///x").is_err());
        assert!(parse("ftp://h/x.tar").is_err());
        assert_eq!(r.default_name().as_deref(), Some("x"));
    }

    #[test]
    fn paths_and_names() {
        assert_eq!(parse("./r.tar").unwrap(), Reference::Path("./r.tar".into()));
        assert_eq!(parse("rootfs.tar.xz").unwrap(), Reference::Path("rootfs.tar.xz".into()));
        assert_eq!(parse("/srv/root").unwrap(), Reference::Path("/srv/root".into()));
        assert_eq!(parse("my-base").unwrap(), Reference::Named("my-base".into()));
        for bad in [
            "",
            " x",
            "a b",
            "a/../b",
            ".x",
            "a//b",
            "x.lock",
            &"a".repeat(64).replace('a', "f"),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse("debian/bookworm").unwrap().default_name().as_deref(),
            Some("debian/bookworm")
        );
    }
}
