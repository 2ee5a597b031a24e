//! Simplestreams, as LXC/Incus image servers publish it: `streams/v1/index.json`
//! names the products files of datatype `image-downloads`; a products file maps
//! product keys (`debian:bookworm:amd64:default`) to products with `os`, `release`,
//! `arch`, `variant`, `aliases` and `versions` (build names such as
//! `20250101_05:24`, newest sorting last), each version listing `items` with
//! `path` (relative to the server), `sha256` and `size`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fetch::Fetcher;
use super::reference::Distro;
use super::ImageError;
use super::Result;

/// A rootfs tarball found on a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub server: String,
    pub product: String,
    pub build: String,
    pub url: String,
    pub sha256: String,
    pub size: Option<u64>,
}

#[derive(Deserialize)]
struct Index {
    index: BTreeMap<String, IndexEntry>,
}

#[derive(Deserialize)]
struct IndexEntry {
    #[serde(default)]
    datatype: String,
    path: String,
}

#[derive(Deserialize)]
struct Products {
    products: BTreeMap<String, Product>,
}

#[derive(Deserialize)]
struct Product {
    #[serde(default)]
    os: String,
    #[serde(default)]
    release: String,
    #[serde(default)]
    arch: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    aliases: Option<String>,
    #[serde(default)]
    versions: BTreeMap<String, Version>,
}

#[derive(Deserialize)]
struct Version {
    #[serde(default)]
    items: BTreeMap<String, Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    ftype: String,
    path: String,
    sha256: Option<String>,
    size: Option<u64>,
}

/// The item names and ftypes taken as a root filesystem tarball.
const ROOTFS: &[&str] = &["rootfs.tar.xz", "root.tar.xz"];

/// Finds the newest build of `distro` for `arch` on the first server that has one.
pub fn find(fetcher: &Fetcher, servers: &[String], distro: &Distro, arch: &str, reference: &str) -> Result<Found> {
    let mut last_err = None;
    for server in servers {
        match find_on(fetcher, server, distro, arch) {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => {}
            Err(e) => {
                if servers.len() > 1 {
                    crate::log!(crate::log::Level::Warn, "{e}");
                }
                last_err = Some(e);
            }
        }
    }
    // With one server, its own error says more than "not found".
    match (last_err, servers.len()) {
        (Some(e), 1) => Err(e),
        _ => Err(ImageError::NotOnServers {
            reference: reference.to_string(),
            arch: arch.to_string(),
            servers: servers.to_vec(),
        }
        .into()),
    }
}

fn parse<'a, T: Deserialize<'a>>(url: &str, bytes: &'a [u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        ImageError::Index {
            url: url.to_string(),
            reason: format!("not a simplestreams document: {e}"),
        }
        .into()
    })
}

fn find_on(fetcher: &Fetcher, server: &str, distro: &Distro, arch: &str) -> Result<Option<Found>> {
    let index_url = format!("{server}/streams/v1/index.json");
    let index: Index = parse(&index_url, &fetcher.get_bytes(&index_url)?)?;
    for entry in index.index.values().filter(|e| e.datatype == "image-downloads") {
        let url = format!("{server}/{}", entry.path.trim_start_matches('/'));
        let products: Products = parse(&url, &fetcher.get_bytes(&url)?)?;
        if let Some((product, build, item)) = pick(&products, distro, arch) {
            let sha256 = item
                .sha256
                .clone()
                .filter(|s| s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()));
            let Some(sha256) = sha256 else {
                return Err(ImageError::Index {
                    url,
                    reason: format!("{product} {build}: rootfs item has no valid sha256"),
                }
                .into());
            };
            return Ok(Some(Found {
                server: server.to_string(),
                product: product.to_string(),
                build: build.to_string(),
                url: format!("{server}/{}", item.path.trim_start_matches('/')),
                sha256: sha256.to_ascii_lowercase(),
                size: item.size,
            }));
        }
    }
    Ok(None)
}

/// The product matching `distro` and `arch` (variant `default`), and its newest
/// build that has a rootfs tarball.
fn pick<'p>(products: &'p Products, distro: &Distro, arch: &str) -> Option<(&'p str, &'p str, &'p Item)> {
    let candidates = products.products.iter().filter(|(key, p)| {
        let os = if p.os.is_empty() {
            key.split(':').next().unwrap_or("")
        } else {
            &p.os
        };
        os.eq_ignore_ascii_case(distro.os)
            && p.arch == arch
            && p.variant.as_deref().unwrap_or("default") == "default"
            && releases(p).iter().any(|r| distro.matcher.matches(r))
    });
    let (key, product) = candidates.min_by_key(|(key, _)| key.as_str())?;
    product.versions.iter().rev().find_map(|(build, v)| {
        let item = v
            .items
            .iter()
            .find(|(name, item)| ROOTFS.contains(&name.as_str()) || ROOTFS.contains(&item.ftype.as_str()))?;
        Some((key.as_str(), build.as_str(), item.1))
    })
}

/// A product's release names: its `release` and the release part of each alias
/// (`ubuntu/24.04` → `24.04`; `ubuntu/24.04/default` counts too).
fn releases(p: &Product) -> Vec<&str> {
    let mut out = vec![p.release.as_str()];
    for alias in p.aliases.as_deref().unwrap_or("").split(',') {
        let mut parts = alias.trim().split('/');
        if let (Some(_), Some(rel)) = (parts.next(), parts.next()) {
            if matches!(parts.next(), None | Some("default")) {
                out.push(rel);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::reference::{parse as parse_ref, Reference};

    const PRODUCTS: &str = r#"{"products":{
      "ubuntu:noble:amd64:default":{"os":"Ubuntu","release":"noble","arch":"amd64","variant":"default",
        "aliases":"ubuntu/noble/default,ubuntu/noble,ubuntu/24.04/default,ubuntu/24.04",
        "versions":{"20250101_07:42":{"items":{"rootfs.tar.xz":{"ftype":"root.tar.xz","path":"images/u/old/rootfs.tar.xz","sha256":"aa","size":1}}},
                    "20250102_07:42":{"items":{"rootfs.tar.xz":{"ftype":"root.tar.xz","path":"images/u/new/rootfs.tar.xz","sha256":"bb","size":2}}},
                    "20250103_07:42":{"items":{"root.squashfs":{"ftype":"squashfs","path":"x","sha256":"cc"}}}}},
      "ubuntu:noble:arm64:default":{"os":"Ubuntu","release":"noble","arch":"arm64","variant":"default","versions":{}},
      "ubuntu:noble:amd64:cloud":{"os":"Ubuntu","release":"noble","arch":"amd64","variant":"cloud","versions":{}},
      "opensuse:15.5:amd64:default":{"os":"openSUSE","release":"15.5","arch":"amd64","versions":{"1":{"items":{"rootfs.tar.xz":{"path":"l155","sha256":"dd"}}}}},
      "opensuse:15.6:amd64:default":{"os":"openSUSE","release":"15.6","arch":"amd64","versions":{"1":{"items":{"rootfs.tar.xz":{"path":"l156","sha256":"ee"}}}}},
      "opensuse:16.0:amd64:default":{"os":"openSUSE","release":"16.0","arch":"amd64","versions":{"1":{"items":{"rootfs.tar.xz":{"path":"l160","sha256":"ab"}}}}},
      "opensuse:tumbleweed:amd64:default":{"os":"openSUSE","release":"tumbleweed","arch":"amd64","versions":{"1":{"items":{"rootfs.tar.xz":{"path":"tw","sha256":"ff"}}}}}
    }}"#;

    fn distro(r: &str) -> Distro {
        match parse_ref(r).unwrap() {
            Reference::Distro(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn picks_newest_build_with_a_rootfs() {
        let p: Products = serde_json::from_str(PRODUCTS).unwrap();
        for r in ["ubuntu/24.04", "ubuntu/noble"] {
            let (key, build, item) = pick(&p, &distro(r), "amd64").unwrap();
            assert_eq!(
                (key, build, item.path.as_str()),
                (
                    "ubuntu:noble:amd64:default",
                    "20250102_07:42",
                    "images/u/new/rootfs.tar.xz"
                )
            );
        }
        assert!(pick(&p, &distro("ubuntu/noble"), "arm64").is_none());
        assert!(pick(&p, &distro("ubuntu/22.04"), "amd64").is_none());
        // Leap is 15.6 as the reference system had it, though 16.0 is listed.
        assert_eq!(pick(&p, &distro("opensuse/leap"), "amd64").unwrap().2.path, "l156");
        assert_eq!(pick(&p, &distro("opensuse/rolling"), "amd64").unwrap().2.path, "tw");
    }
}
