//! The import pipeline: reference → source → base layer → `refs/images/NAME`.
//!
//! Order of writes (nothing half-imported is ever visible): blobs and trees, the
//! layer object (after a syncfs), the image's metadata, then the ref, by
//! compare-and-swap against what was read before. A crash or error before the ref
//! leaves only objects nothing names, which prune removes.
//!
//! Caches, under the store's `cache/` (safe to delete at any time):
//! - `cache/images/v1/sha256-HEX`: the layer an archive with that sha256 became.
//!   A known checksum (from a server's index, a `#sha256=` pin, or hashing a local
//!   tarball) whose layer is still in the store skips download and extraction.
//! - `cache/downloads/url-B3.json`: for a URL without a checksum, the sha256,
//!   ETag and Last-Modified of its last download, so a second import asks the
//!   server "changed since?" and downloads nothing on 304 Not Modified.
//!   Archives themselves are not kept: the layer is the image.

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fetch::{sha256_file, Downloaded, Fetcher, Validators};
use super::reference::{self, Reference};
use super::{simplestreams, tar, Config, ImageError};
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::object::{Kind, Layer, LayerKind, RootMeta};
use crate::refs::Expect;
use crate::store::Store;

/// Bump when the same archive would import to a different tree (a change in how
/// members are turned into entries), so old cache entries are not trusted.
const IMPORT_CACHE: &str = "cache/images/v1";
const DOWNLOAD_CACHE: &str = "cache/downloads";

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The image's name; when absent, one derived from the reference.
    pub name: Option<String>,
    /// Show a progress bar for downloads (only drawn when stderr is a terminal).
    pub progress: bool,
    pub config: Config,
}

/// A reference resolved to a concrete source, without importing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// As written.
    pub reference: String,
    /// `distro`, `url`, `path` or `named`.
    pub kind: &'static str,
    /// The exact URL, absolute path, or image name.
    pub source: String,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// The server's build name, for distribution releases.
    pub build: Option<String>,
    /// A reference that always means this exact source: for releases and URLs
    /// with a known checksum `URL#sha256=HEX`; otherwise the reference itself.
    pub pinned: String,
}

/// What an import produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Imported {
    pub name: String,
    /// The layer id: the image's digest.
    pub digest: ObjectId,
    /// True when nothing was downloaded or extracted (known checksum, or an
    /// already imported image).
    pub reused: bool,
    pub info: ImageInfo,
}

/// An imported image, as `image list` shows it. Fields beyond `name` and
/// `digest` come from metadata and are absent when it is missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub name: String,
    pub digest: ObjectId,
    pub reference: Option<String>,
    pub source: Option<String>,
    pub sha256: Option<String>,
    pub archive_size: Option<u64>,
    pub compression: Option<String>,
    pub files: Option<u64>,
    pub bytes: Option<u64>,
    /// Members whose leading `/` was removed.
    pub absolute_members: Option<u64>,
    /// UTC, RFC 3339.
    pub imported_at: Option<String>,
    /// For an OCI image: the manifest (or index) digest pulled, `sha256:HEX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_digest: Option<String>,
}

fn ref_name(name: &str) -> String {
    format!("refs/images/{name}")
}

fn meta_name(name: &str) -> String {
    format!("images/{name}")
}

fn check_name(name: &str) -> Result<()> {
    reference::check_image_name(name).map_err(|reason| {
        ImageError::BadReference {
            reference: name.to_string(),
            reason: format!("image name: {reason}"),
        }
        .into()
    })
}

/// What `reference` means in `store`: as parsed, except a short name
/// (`rolling`, `debian`, …) that no imported image has, which stands for its
/// release on the image servers (docs/images.md, "Short names").
pub fn parse_in(store: &Store, reference: &str) -> Result<Reference> {
    let r = reference::parse(reference)?;
    if let Reference::Named(name) = &r {
        if let Some(full) = reference::short_name(name) {
            if lookup(store, name)?.is_none() {
                return Ok(reference::parse(full)?);
            }
        }
    }
    Ok(r)
}

/// Resolves a reference to its concrete source (asks image servers for
/// distribution releases; hashes local tarballs). Imports nothing. Without a
/// store to look in, a short name is its release.
pub fn resolve(reference: &str, config: &Config) -> Result<Resolved> {
    let mut r = reference::parse(reference)?;
    if let Reference::Named(name) = &r {
        if let Some(full) = reference::short_name(name) {
            r = reference::parse(full)?;
        }
    }
    let mut out = Resolved {
        reference: reference.to_string(),
        kind: "named",
        source: reference.to_string(),
        sha256: None,
        size: None,
        build: None,
        pinned: reference.to_string(),
    };
    match r {
        Reference::Distro(d) => {
            let fetcher = Fetcher::new(config, false);
            let found = simplestreams::find(&fetcher, &config.servers, &d, super::host_arch(), reference)?;
            out.kind = "distro";
            out.pinned = format!("{}#sha256={}", found.url, found.sha256);
            out.source = found.url;
            out.sha256 = Some(found.sha256);
            out.size = found.size;
            out.build = Some(found.build);
        }
        Reference::Url { url, sha256 } => {
            out.kind = "url";
            out.source = url;
            out.sha256 = sha256;
        }
        Reference::Path(p) => {
            out.kind = "path";
            let abs = fs::canonicalize(&p).map_err(Error::input("resolve", &p))?;
            if abs.is_file() {
                let mut f = File::open(&abs).map_err(Error::input("open", &abs))?;
                let (sha, size) = sha256_file(&mut f, &abs)?;
                out.sha256 = Some(sha);
                out.size = Some(size);
            }
            out.source = abs.display().to_string();
        }
        Reference::Oci(r) => {
            let fetcher = Fetcher::new(config, false);
            let digest = super::oci::resolve(&fetcher, &r, &config.insecure_registries)?;
            out.kind = "oci";
            out.source = r.at(&digest).to_string();
            out.pinned = out.source.clone();
        }
        Reference::Named(_) => {}
    }
    Ok(out)
}

/// Imports what `reference` names and records it as `refs/images/NAME`.
pub fn import(store: &Store, reference: &str, opts: &ImportOptions) -> Result<Imported> {
    let r = parse_in(store, reference)?;
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => r.default_name().ok_or_else(|| ImageError::BadReference {
            reference: reference.to_string(),
            reason: "no image name can be derived from it; give one".into(),
        })?,
    };
    check_name(&name)?;
    let old = store.read_ref(&ref_name(&name))?;
    let _guard = store.write_guard()?;
    let mut info = ImageInfo {
        name: name.clone(),
        digest: ObjectId::from_bytes([0; 32]),
        reference: Some(reference.to_string()),
        source: None,
        sha256: None,
        archive_size: None,
        compression: None,
        files: None,
        bytes: None,
        absolute_members: None,
        imported_at: Some(crate::date::now_utc()),
        oci_digest: None,
    };
    let reused = match r {
        Reference::Named(from) => {
            let src = lookup(store, &from)?.ok_or(ImageError::NoSuchImage { name: from })?;
            info = ImageInfo {
                name: name.clone(),
                imported_at: info.imported_at,
                reference: info.reference,
                ..src
            };
            true
        }
        Reference::Distro(d) => {
            let fetcher = Fetcher::new(&opts.config, opts.progress);
            let found = simplestreams::find(&fetcher, &opts.config.servers, &d, super::host_arch(), reference)?;
            crate::log!(
                crate::log::Level::Info,
                "{reference}: {} build {} ({})",
                found.product,
                found.build,
                found.url
            );
            info.archive_size = found.size;
            from_url(store, &fetcher, &found.url, Some(&found.sha256), opts, &mut info)?
        }
        Reference::Url { url, sha256 } => {
            let fetcher = Fetcher::new(&opts.config, opts.progress);
            from_url(store, &fetcher, &url, sha256.as_deref(), opts, &mut info)?
        }
        Reference::Path(p) => from_path(store, &p, opts, &mut info)?,
        Reference::Oci(r) => {
            let fetcher = Fetcher::new(&opts.config, opts.progress).multi_progress();
            super::oci::pull(store, &fetcher, &r, opts, &mut info)?
        }
    };
    // Metadata first, ref last: metadata without its ref is invisible, and
    // `lookup` trusts metadata only when it names the ref's layer.
    let meta = serde_json::to_value(&info).map_err(|e| crate::store::Error::Unsupported {
        path: meta_name(&name).into(),
        what: e.to_string(),
    })?;
    store.write_meta(&meta_name(&name), &meta)?;
    let expect = old.map_or(Expect::Absent, Expect::Is);
    store.update_ref(&ref_name(&name), Some(info.digest), expect)?;
    Ok(Imported {
        name,
        digest: info.digest,
        reused,
        info,
    })
}

/// The layer recorded under `key` (`sha256-HEX` for an archive, `oci-sha256-HEX` for an OCI manifest).
pub(super) fn cached_layer(store: &Store, key: &str) -> Option<ObjectId> {
    let text = fs::read_to_string(store.path(&format!("{IMPORT_CACHE}/{key}"))).ok()?;
    let id = ObjectId::from_hex(text.trim())?;
    // A present layer implies its whole tree is present (objects are written
    // bottom-up), so the layer file alone is enough to trust it.
    store.has(Kind::Layer, &id).then_some(id)
}

fn remember(store: &Store, rel: &str, data: &[u8]) -> Result<()> {
    let path = store.path(rel);
    store.make_dir(path.parent().expect("cache files live in a directory"))?;
    Ok(store.write_atomic(&path, data, 0o644)?)
}

#[derive(Serialize, Deserialize)]
struct UrlRecord {
    url: String,
    sha256: String,
    size: u64,
    etag: Option<String>,
    last_modified: Option<String>,
}

fn url_record_path(url: &str) -> String {
    format!("{DOWNLOAD_CACHE}/url-{}.json", ObjectId::of(url.as_bytes()))
}

fn from_url(
    store: &Store,
    fetcher: &Fetcher,
    url: &str,
    expected: Option<&str>,
    opts: &ImportOptions,
    info: &mut ImageInfo,
) -> Result<bool> {
    info.source = Some(url.to_string());
    info.sha256 = expected.map(str::to_string);
    if let Some(id) = expected.and_then(|sha| cached_layer(store, &format!("sha256-{sha}"))) {
        return reuse(store, id, info);
    }
    // Without a checksum, ask the server whether the last download is current.
    let record: Option<UrlRecord> = match expected {
        None => fs::read(store.path(&url_record_path(url)))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok()),
        Some(_) => None,
    };
    let since = match &record {
        Some(r) if r.url == url && cached_layer(store, &format!("sha256-{}", r.sha256)).is_some() => Validators {
            etag: r.etag.clone(),
            last_modified: r.last_modified.clone(),
        },
        _ => Validators::default(),
    };
    let mut tmp = store.temp_file()?;
    let got = fetcher.download(url, tmp.as_file_mut(), expected, &since)?;
    let Some(Downloaded {
        sha256,
        size,
        etag,
        last_modified,
    }) = got
    else {
        let r = record.expect("a conditional request was made only with a record");
        crate::log!(crate::log::Level::Info, "{url}: not modified since the last import");
        info.sha256 = Some(r.sha256.clone());
        info.archive_size = Some(r.size);
        let id = cached_layer(store, &format!("sha256-{}", r.sha256)).expect("checked before asking");
        return reuse(store, id, info);
    };
    info.sha256 = Some(sha256.clone());
    info.archive_size = Some(size);
    let id = match cached_layer(store, &format!("sha256-{sha256}")) {
        Some(id) => id,
        None => {
            let report = tar::import_tar(
                store,
                BufReader::with_capacity(1 << 20, tmp.as_file()),
                url,
                &opts.config.limits,
            )?;
            write_base_layer(store, &format!("sha256-{sha256}"), report, info)?
        }
    };
    if expected.is_none() {
        let rec = UrlRecord {
            url: url.to_string(),
            sha256,
            size,
            etag,
            last_modified,
        };
        remember(
            store,
            &url_record_path(url),
            &serde_json::to_vec(&rec).expect("plain data serialises"),
        )?;
    }
    info.digest = id;
    Ok(false)
}

/// Fills what a reused layer can tell: the digest (sizes stay as recorded).
pub(super) fn reuse(store: &Store, id: ObjectId, info: &mut ImageInfo) -> Result<bool> {
    info.digest = id;
    if let Some(prev) = find_by_digest(store, &id)? {
        info.files = prev.files;
        info.bytes = prev.bytes;
        info.compression = prev.compression;
        info.absolute_members = prev.absolute_members;
    }
    Ok(true)
}

fn find_by_digest(store: &Store, id: &ObjectId) -> Result<Option<ImageInfo>> {
    Ok(list(store)?.into_iter().find(|i| i.digest == *id && i.files.is_some()))
}

pub(super) fn write_base_layer(
    store: &Store,
    key: &str,
    report: tar::TarReport,
    info: &mut ImageInfo,
) -> Result<ObjectId> {
    let id = base_layer(store, report.tree, report.root)?;
    info.files = Some(report.files);
    info.bytes = Some(report.bytes);
    info.compression = Some(report.compression.to_string());
    info.absolute_members = Some(report.absolute);
    if report.absolute > 0 {
        crate::log!(
            crate::log::Level::Warn,
            "{}: removed the leading '/' from {} member names",
            info.source.as_deref().unwrap_or("archive"),
            report.absolute
        );
    }
    remember(store, &format!("{IMPORT_CACHE}/{key}"), format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// The layer has no provenance: the digest is a function of the content alone,
/// whatever the archive, its compression or its URL. Where it came from is
/// metadata (`meta/images/NAME.json`).
fn base_layer(store: &Store, tree: ObjectId, root: RootMeta) -> Result<ObjectId> {
    let layer = Layer {
        kind: LayerKind::Base,
        tree,
        root,
        parents: Vec::new(),
        provenance: Default::default(),
    };
    Ok(store.write_layer_object(&layer)?)
}

fn from_path(store: &Store, path: &Path, opts: &ImportOptions, info: &mut ImageInfo) -> Result<bool> {
    let abs: PathBuf = fs::canonicalize(path).map_err(Error::input("open", path))?;
    info.source = Some(abs.display().to_string());
    if abs.is_dir() {
        let report = crate::layer::write_dir(store, &abs)?;
        for (p, why) in &report.skipped {
            crate::log!(crate::log::Level::Warn, "{}: {why}", p.display());
        }
        info.files = Some(report.files);
        info.bytes = Some(report.bytes);
        info.digest = base_layer(store, report.tree, report.root)?;
        return Ok(false);
    }
    let mut file = File::open(&abs).map_err(Error::input("open", &abs))?;
    let (sha256, size) = sha256_file(&mut file, &abs)?;
    info.sha256 = Some(sha256.clone());
    info.archive_size = Some(size);
    if let Some(id) = cached_layer(store, &format!("sha256-{sha256}")) {
        return reuse(store, id, info);
    }
    let source = abs.display().to_string();
    let report = tar::import_tar(
        store,
        BufReader::with_capacity(1 << 20, file),
        &source,
        &opts.config.limits,
    )?;
    info.digest = write_base_layer(store, &format!("sha256-{sha256}"), report, info)?;
    Ok(false)
}

/// The image named `name`, if any.
pub fn lookup(store: &Store, name: &str) -> Result<Option<ImageInfo>> {
    check_name(name)?;
    let Some(digest) = store.read_ref(&ref_name(name))? else {
        return Ok(None);
    };
    let meta = store.read_meta(&meta_name(name))?;
    let recorded = meta
        .and_then(|v: Value| serde_json::from_value::<ImageInfo>(v).ok())
        .filter(|i| i.digest == digest);
    Ok(Some(recorded.unwrap_or(ImageInfo {
        name: name.to_string(),
        digest,
        reference: None,
        source: None,
        sha256: None,
        archive_size: None,
        compression: None,
        files: None,
        bytes: None,
        absolute_members: None,
        imported_at: None,
        oci_digest: None,
    })))
}

/// Every imported image, by name.
pub fn list(store: &Store) -> Result<Vec<ImageInfo>> {
    let mut out = Vec::new();
    for (refname, _) in store.list_refs("refs/images/")? {
        let name = &refname["refs/images/".len()..];
        if let Some(info) = lookup(store, name)? {
            out.push(info);
        }
    }
    Ok(out)
}

/// Removes the name (ref, then metadata). The layer stays until prune finds
/// nothing else uses it.
pub fn remove(store: &Store, name: &str) -> Result<ImageInfo> {
    let info = lookup(store, name)?.ok_or_else(|| ImageError::NoSuchImage { name: name.to_string() })?;
    store.update_ref(&ref_name(name), None, Expect::Is(info.digest))?;
    store.remove_meta(&meta_name(name))?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarball_and_directory_give_one_digest_and_reimport_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join("s")).unwrap();
        let mut b = ::tar::Builder::new(Vec::new());
        let mut h = ::tar::Header::new_gnu();
        h.set_path("hello").unwrap();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, &b"hi\n"[..]).unwrap();
        let tarball = dir.path().join("root.tar");
        fs::write(&tarball, b.into_inner().unwrap()).unwrap();
        let opts = ImportOptions::default();
        let a = import(&store, tarball.to_str().unwrap(), &opts).unwrap();
        assert_eq!((a.name.as_str(), a.reused), ("root", false));
        let again = import(
            &store,
            tarball.to_str().unwrap(),
            &ImportOptions {
                name: Some("other".into()),
                ..opts.clone()
            },
        )
        .unwrap();
        assert_eq!((again.digest, again.reused), (a.digest, true));
        assert_eq!(list(&store).unwrap().len(), 2);
        let alias = import(
            &store,
            "other",
            &ImportOptions {
                name: Some("third".into()),
                ..opts.clone()
            },
        )
        .unwrap();
        assert_eq!(alias.digest, a.digest);
        remove(&store, "third").unwrap();
        assert!(lookup(&store, "third").unwrap().is_none());
        assert!(import(&store, "nope", &opts).is_err());
    }

    #[test]
    fn time_format() {
        let t = crate::date::now_utc();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
