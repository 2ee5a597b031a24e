//! OCI image references: `oci://[REGISTRY/]REPO[:TAG][@sha256:HEX]`, with
//! `docker://` as an alias (docs/oci.md, "References").
//!
//! As docker reads them: the first `/`-part is the registry when it has a `.`
//! or a `:` or is `localhost`; otherwise the registry is `docker.io`, where a
//! one-part repository is under `library/`. Without a tag or digest the tag
//! is `latest`.

use std::net::IpAddr;

/// A parsed OCI reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRef {
    /// `host[:port]` as written (lowercase), `docker.io` for Docker Hub.
    pub registry: String,
    /// `a/b/c`, lowercase.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:HEX` (lowercase).
    pub digest: Option<String>,
}

pub const DOCKER_HUB: &str = "docker.io";

/// Parses `reference` (`oci://…` or `docker://…`); the reason when it is malformed.
pub fn parse(reference: &str) -> Result<OciRef, String> {
    let lower = reference.to_ascii_lowercase();
    let rest = ["oci://", "docker://"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| &reference[p.len()..])
        .ok_or("an OCI reference starts with oci:// or docker://")?;
    if rest.is_empty() {
        return Err("names no repository (oci://REGISTRY/REPO:TAG)".into());
    }
    let (name, digest) = match rest.split_once('@') {
        Some((n, d)) => (n, Some(parse_digest(d)?)),
        None => (rest, None),
    };
    let (name, tag) = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    };
    if let Some(t) = tag {
        check_tag(t)?;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let registry = if parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost") {
        check_registry(first)?;
        parts.remove(0);
        first.to_ascii_lowercase()
    } else {
        DOCKER_HUB.to_string()
    };
    if parts.iter().any(|p| !valid_component(p)) {
        return Err(format!(
            "repository {:?}: each /-part is lowercase letters and digits, joined by '.', '_', '__' or dashes",
            parts.join("/")
        ));
    }
    let mut repository = parts.join("/");
    if registry == DOCKER_HUB && parts.len() == 1 {
        repository = format!("library/{repository}");
    }
    if repository.len() > 255 {
        return Err("the repository name is longer than 255 characters".into());
    }
    Ok(OciRef {
        registry,
        repository,
        tag: match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        },
        digest,
    })
}

/// `sha256:HEX` with 64 lowercase hex digits; other algorithms are refused.
pub fn parse_digest(d: &str) -> Result<String, String> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest {d:?}: only sha256:HEX digests are understood"))?;
    if hex.len() != 64 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("digest {d:?}: sha256: needs 64 lowercase hex digits"));
    }
    Ok(d.to_string())
}

fn check_tag(t: &str) -> Result<(), String> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && t.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
        && !t.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {t:?}: 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ))
    }
}

fn check_registry(r: &str) -> Result<(), String> {
    let (host, port) = match r.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| format!("registry {r:?}: unclosed '['"))?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("registry {r:?}: not an IPv6 address"))?;
            (h, p.strip_prefix(':'))
        }
        None => match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        },
    };
    let host_ok = r.starts_with('[')
        || (!host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')));
    if !host_ok {
        return Err(format!("registry {r:?}: not a host name"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("registry {r:?}: the port is not a number from 1 to 65535"));
        }
    }
    Ok(())
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or any number of `-` (the distribution spec).
fn valid_component(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || b"._-".contains(c))
    {
        return false;
    }
    // Separators: one '.', one or two '_', or dashes; never mixed.
    p.split(|c: char| c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .all(|s| s == "." || s == "_" || s == "__" || s.bytes().all(|c| c == b'-'))
}

impl OciRef {
    /// The host the API is on (Docker Hub's is `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The host without its port or brackets.
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        match r.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => r.split(':').next().unwrap_or(r),
        }
    }

    /// Loopback registries (`localhost`, 127.0.0.0/8, `::1`) are spoken to in plain http.
    pub fn is_loopback(&self) -> bool {
        let h = self.host();
        h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The tag, else the digest: what a manifest is asked for by.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .expect("a tag or a digest")
    }

    /// The same image pinned to a manifest digest.
    pub fn at(&self, digest: &str) -> OciRef {
        OciRef {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// A store image name: `REGISTRY/REPO/TAG` (`:` of a port as `_`), or
    /// `…/sha256-HEX` for a digest without a tag.
    pub fn default_name(&self) -> String {
        let last = match (&self.tag, &self.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.replace(':', "-"),
            (None, None) => "latest".into(),
        };
        let registry = self.registry.replace([':', '[', ']'], "_");
        format!("{registry}/{}/{last}", self.repository)
    }
}

impl std::fmt::Display for OciRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let r = parse("oci://127.0.0.1:5000/test/busybox:1.36").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "test/busybox", Some("1.36"))
        );
        assert!(r.is_loopback());
        assert_eq!(r.default_name(), "127.0.0.1_5000/test/busybox/1.36");
        let hub = parse("docker://debian").unwrap();
        assert_eq!(hub.to_string(), "oci://docker.io/library/debian:latest");
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert!(!hub.is_loopback());
        let d = "a".repeat(64);
        let pinned = parse(&format!("oci://ghcr.io/o/r@sha256:{d}")).unwrap();
        assert_eq!(
            (pinned.tag.as_deref(), pinned.reference()),
            (None, format!("sha256:{d}").as_str())
        );
        let both = parse(&format!("oci://localhost/r:t@sha256:{d}")).unwrap();
        assert_eq!(both.reference(), format!("sha256:{d}"));
        assert!(both.is_loopback());
        assert_eq!(parse("oci://[::1]:5000/r").unwrap().host(), "::1");
        assert_eq!(
            parse("oci://quay.io/a/b-c__d.e").unwrap().tag.as_deref(),
            Some("latest")
        );
    }

    #[test]
    fn malformed() {
        for bad in [
            "oci://",
            "oci://Host.io/Repo",
            "oci://h.io/r:",
            "oci://h.io/r:.x",
            "oci://h.io/r@sha256:abc",
            "oci://h.io/r@md5:0123",
            "oci://h.io:99999/r",
            "oci://h.io//r",
            "oci://h.io/r/",
            "oci://h.io/-r",
            "oci://h.io/a/../b",
            "oci://h..io/r",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
