//! OCI registries as image sources (docs/oci.md): the distribution protocol's
//! pull side. A reference resolves to a manifest digest (an image index
//! picks the host's platform); the layers are downloaded in parallel, each
//! verified against its sha256 while it streams into `cache/oci/blobs/`, and
//! applied in order with the OCI whiteout rules into one base layer.

mod auth;
pub mod reference;
mod upload;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use reference::OciRef;
pub use upload::{BlobSource, Pushed};

use super::fetch::{Answer, Fetcher, Validators};
use super::import::{self, ImageInfo, ImportOptions};
use super::tar::{self, Mode};
use super::{Error, ImageError, Result};
use crate::hash::hex;
use crate::store::Store;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// Layer media types applied; compression is told by magic bytes anyway.
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];
/// Verified layer blobs, by digest: a blob downloaded once is not fetched again.
pub const BLOB_CACHE: &str = "cache/oci/blobs/sha256";
/// Downloads at once.
const PARALLEL: usize = 4;

#[derive(Clone, Debug, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// The host's platform in the OCI (Go) names, and the variant it runs
/// without asking (`arm64` is `v8`, `arm` is taken as `v7`).
pub fn host_platform() -> (&'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    }
}

fn runs_here(p: &Platform) -> bool {
    let (arch, variant) = host_platform();
    p.os == "linux" && p.architecture == arch && (p.variant.is_none() || p.variant.as_deref() == variant)
}

/// A registry session for one repository: the base URL and the
/// `Authorization` a challenge asked for.
pub struct Registry<'a> {
    fetcher: &'a Fetcher,
    pub r: &'a OciRef,
    base: String,
    plain_http: bool,
    authorization: Mutex<Option<String>>,
    /// Tokens ask for push too (and pull of `also`, for mounts).
    push: bool,
    also: Vec<String>,
}

impl<'a> Registry<'a> {
    /// Plain http for loopback registries and those in `insecure`
    /// (`host` or `host:port`); https otherwise.
    pub fn new(fetcher: &'a Fetcher, r: &'a OciRef, insecure: &[String]) -> Registry<'a> {
        let plain_http = r.is_loopback()
            || insecure
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&r.registry) || h.eq_ignore_ascii_case(r.host()));
        let scheme = if plain_http { "http" } else { "https" };
        Registry {
            fetcher,
            r,
            base: format!("{scheme}://{}/v2/{}", r.api_host(), r.repository),
            plain_http,
            authorization: Mutex::new(None),
            push: false,
            also: Vec::new(),
        }
    }

    /// A session that pushes: tokens are asked for `pull,push` on the
    /// repository, and `pull` on `also` (the repositories blobs are mounted from).
    pub fn for_push(mut self, also: Vec<String>) -> Self {
        self.push = true;
        self.also = also;
        self
    }

    fn fail(&self, reason: impl Into<String>) -> Error {
        ImageError::Registry {
            reference: self.r.to_string(),
            reason: reason.into(),
        }
        .into()
    }

    fn auth_header(&self) -> Vec<(&'static str, String)> {
        let auth = self.authorization.lock().expect("no poisoned lock");
        auth.iter().map(|a| ("Authorization", a.clone())).collect()
    }

    /// A small GET (manifest, config), answering one `401` by its challenge.
    fn get(&self, url: &str, accept: Option<&str>) -> Result<Answer> {
        let mut tried_auth = false;
        loop {
            let mut headers = self.auth_header();
            if let Some(a) = accept {
                headers.push(("Accept", a.to_string()));
            }
            let answer = self.fetcher.answer(url, &headers)?;
            match answer.status {
                200 => return Ok(answer),
                401 if !tried_auth => {
                    tried_auth = true;
                    self.authenticate(url, &answer)?;
                }
                401 => return Err(self.unauthorized(url, &answer, true)),
                status => {
                    return Err(ImageError::Http {
                        url: url.to_string(),
                        status,
                        reason: answer.reason,
                    }
                    .into())
                }
            }
        }
    }

    fn unauthorized(&self, url: &str, answer: &Answer, sent: bool) -> Error {
        let files = auth::auth_files();
        let how = match auth::find(&self.r.registry, &files) {
            Some(c) if sent => format!("the credentials for {} in {} were refused", self.r.registry, c.source()),
            Some(c) => format!(
                "the credentials in {} are not sent over plain http to another machine",
                c.source()
            ),
            None => format!(
                "no credentials for {} in {}",
                self.r.registry,
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        ImageError::Http {
            url: url.to_string(),
            status: 401,
            reason: format!("{} ({how})", answer.reason),
        }
        .into()
    }

    /// Follows a `WWW-Authenticate` challenge: a bearer token from its realm
    /// (anonymous, or with the user's credentials), or basic credentials.
    fn authenticate(&self, url: &str, answer: &Answer) -> Result<()> {
        let creds = auth::find(&self.r.registry, &auth::auth_files());
        let challenge = answer.header("WWW-Authenticate").and_then(auth::parse_challenge);
        let value = match challenge {
            Some(auth::Challenge::Basic) => match &creds {
                Some(c) if !self.plain_http || self.r.is_loopback() => c.basic(),
                _ => return Err(self.unauthorized(url, answer, false)),
            },
            Some(auth::Challenge::Bearer { realm, service, scope }) => {
                let own = format!(
                    "repository:{}:{}",
                    self.r.repository,
                    if self.push { "pull,push" } else { "pull" }
                );
                let mut scopes = vec![scope.unwrap_or_else(|| own.clone())];
                if self.push && scopes[0] != own {
                    scopes.push(own);
                }
                scopes.extend(self.also.iter().map(|r| format!("repository:{r}:pull")));
                let query: Vec<String> = scopes
                    .iter()
                    .map(|s| format!("scope={}", auth::query_escape(s)))
                    .collect();
                let mut token_url = format!(
                    "{realm}{}{}",
                    if realm.contains('?') { '&' } else { '?' },
                    query.join("&")
                );
                if let Some(s) = service {
                    token_url += &format!("&service={}", auth::query_escape(&s));
                }
                // Credentials go only over https (or to this machine).
                let safe = token_url.starts_with("https://") || self.r.is_loopback();
                let headers: Vec<(&str, String)> = match &creds {
                    Some(c) if safe => vec![("Authorization", c.basic())],
                    _ => Vec::new(),
                };
                let got = self.fetcher.answer(&token_url, &headers)?;
                if got.status != 200 {
                    return Err(if got.status == 401 {
                        self.unauthorized(&token_url, &got, !headers.is_empty())
                    } else {
                        ImageError::Http {
                            url: token_url,
                            status: got.status,
                            reason: got.reason,
                        }
                        .into()
                    });
                }
                #[derive(Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: Token = serde_json::from_slice(&got.body).map_err(|e| ImageError::Index {
                    url: token_url.clone(),
                    reason: format!("not a token answer: {e}"),
                })?;
                let t = t
                    .token
                    .or(t.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ImageError::Index {
                        url: token_url.clone(),
                        reason: "the answer holds no token".into(),
                    })?;
                format!("Bearer {t}")
            }
            None => return Err(self.unauthorized(url, answer, false)),
        };
        *self.authorization.lock().expect("no poisoned lock") = Some(value);
        Ok(())
    }

    fn blob_url(&self, digest: &str) -> String {
        format!("{}/blobs/{digest}", self.base)
    }

    /// The manifest `reference` (a tag or a digest) names: its digest (the
    /// sha256 of the bytes served, checked against a digest asked for), media
    /// type and document.
    fn manifest(&self, reference: &str) -> Result<(String, String, Document)> {
        let url = format!("{}/manifests/{reference}", self.base);
        let answer = self.get(&url, Some(ACCEPT))?;
        let digest = format!("sha256:{}", hex(&Sha256::digest(&answer.body)));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(ImageError::ChecksumMismatch {
                source_name: url,
                expected: reference.to_string(),
                actual: digest,
            }
            .into());
        }
        let doc: Document = serde_json::from_slice(&answer.body).map_err(|e| ImageError::Index {
            url: url.clone(),
            reason: format!("not a manifest: {e}"),
        })?;
        let header = answer
            .header("Content-Type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&c.as_str()));
        let media_type = doc.media_type.clone().or(header).unwrap_or_else(|| {
            if doc.manifests.is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        });
        if doc.schema_version != 2 {
            return Err(self.fail(format!(
                "manifest schema version {} (only version 2, OCI or Docker, is understood)",
                doc.schema_version
            )));
        }
        Ok((digest, media_type, doc))
    }

    /// Resolves the reference to the digest it names and the host platform's image manifest.
    fn resolve(&self) -> Result<(String, Document)> {
        let (digest, media_type, doc) = self.manifest(self.r.reference())?;
        match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => {
                let entries = doc.manifests.unwrap_or_default();
                let (arch, _) = host_platform();
                let chosen = entries
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(runs_here))
                    .ok_or_else(|| {
                        let have: Vec<String> = entries
                            .iter()
                            .filter_map(|d| d.platform.as_ref())
                            .filter(|p| p.os != "unknown")
                            .map(|p| p.to_string())
                            .collect();
                        self.fail(format!(
                            "no linux/{arch} image; the index has {}",
                            if have.is_empty() {
                                "no platform".into()
                            } else {
                                have.join(", ")
                            }
                        ))
                    })?;
                let (_, inner_type, inner) = self.manifest(&chosen.digest)?;
                if ![OCI_MANIFEST, DOCKER_MANIFEST].contains(&inner_type.as_str()) {
                    return Err(self.fail(format!(
                        "the index's entry {} is a {inner_type}, not an image manifest",
                        chosen.digest
                    )));
                }
                Ok((digest, inner))
            }
            OCI_MANIFEST | DOCKER_MANIFEST => Ok((digest, doc)),
            other => Err(self.fail(format!("media type {other} is not an image manifest or index"))),
        }
    }

    /// The image's configuration, checked against its digest.
    fn config_bytes(&self, config: &Descriptor) -> Result<Vec<u8>> {
        let url = self.blob_url(&config.digest);
        let bytes = self.fetcher.get_bytes_with(&url, &self.auth_header())?;
        let actual = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        if actual != config.digest {
            return Err(ImageError::ChecksumMismatch {
                source_name: url,
                expected: config.digest.clone(),
                actual,
            }
            .into());
        }
        Ok(bytes)
    }

    /// Checks that the image's configuration is for this host; its bytes.
    fn check_config(&self, config: &Descriptor) -> Result<Vec<u8>> {
        let url = self.blob_url(&config.digest);
        let bytes = self.config_bytes(config)?;
        let p: Platform = serde_json::from_slice(&bytes).map_err(|e| ImageError::Index {
            url,
            reason: format!("not an image configuration: {e}"),
        })?;
        if !runs_here(&p) {
            let (arch, _) = host_platform();
            return Err(self.fail(format!("the image is for {p}, not linux/{arch}")));
        }
        Ok(bytes)
    }

    /// Resolves the reference to the host platform's image: the digest it
    /// resolved to, the configuration's bytes (checked against their digest
    /// and the platform) and the layers, each a tar layer with a sha256 digest.
    pub fn image(&self) -> Result<(String, Vec<u8>, Vec<Descriptor>)> {
        let (digest, manifest) = self.resolve()?;
        let (Some(config), Some(layers)) = (manifest.config, manifest.layers) else {
            return Err(self.fail("the manifest names no config or no layers"));
        };
        self.check_layers(&layers)?;
        reference::parse_digest(&config.digest).map_err(|e| self.fail(format!("config: {e}")))?;
        Ok((digest, self.check_config(&config)?, layers))
    }

    fn check_layers(&self, layers: &[Descriptor]) -> Result<()> {
        for l in layers {
            reference::parse_digest(&l.digest).map_err(|e| self.fail(format!("layer: {e}")))?;
            if !LAYER_TYPES.contains(&l.media_type.as_str()) {
                return Err(self.fail(format!(
                    "layer {} has media type {:?}, not a tar layer (foreign and non-distributable layers are not fetched)",
                    l.digest, l.media_type
                )));
            }
        }
        Ok(())
    }

    /// Downloads the blobs `layers` name that are not in the blob cache yet,
    /// each checked against its digest ([`blob_path`] then has them).
    pub fn fetch_blobs(&self, store: &Store, layers: &[Descriptor]) -> Result<()> {
        self.download(store, layers)
    }

    /// Downloads what is not in the blob cache yet, `PARALLEL` at a time.
    fn download(&self, store: &Store, layers: &[Descriptor]) -> Result<()> {
        let missing: Vec<&Descriptor> = layers
            .iter()
            .filter(|l| !blob_path(store, &l.digest).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        store.make_dir(&store.path(BLOB_CACHE))?;
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let errors: Mutex<Vec<(usize, Error)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL.min(missing.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= missing.len() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(e) = self.download_one(store, missing[i]) {
                        stop.store(true, Ordering::Relaxed);
                        errors.lock().expect("no poisoned lock").push((i, e));
                    }
                });
            }
        });
        let mut errors = errors.into_inner().expect("no poisoned lock");
        errors.sort_by_key(|(i, _)| *i);
        match errors.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    fn download_one(&self, store: &Store, layer: &Descriptor) -> Result<()> {
        let hex = layer.digest.strip_prefix("sha256:").expect("checked digests");
        let mut tmp = store.temp_file()?;
        self.fetcher.download_with(
            &self.blob_url(&layer.digest),
            tmp.as_file_mut(),
            Some(hex),
            &Validators::default(),
            &self.auth_header(),
        )?;
        let path = blob_path(store, &layer.digest);
        tmp.persist(&path).map_err(|e| Error::store("rename", &path)(e.error))?;
        Ok(())
    }
}

/// Where the blob cache keeps the blob `digest` (`sha256:HEX`).
pub fn blob_path(store: &Store, digest: &str) -> std::path::PathBuf {
    store.path(&format!(
        "{BLOB_CACHE}/{}",
        digest.strip_prefix("sha256:").unwrap_or(digest)
    ))
}

/// A reader hashing what passes through it.
pub struct Hashing<R> {
    pub inner: R,
    pub hasher: Sha256,
}

impl<R> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// `sha256:HEX` of what was read so far.
    pub fn digest(&mut self) -> String {
        format!("sha256:{}", hex(&std::mem::take(&mut self.hasher).finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The manifest digest `r` names now (asks the registry; imports nothing).
pub fn resolve(fetcher: &Fetcher, r: &OciRef, insecure: &[String]) -> Result<String> {
    Ok(Registry::new(fetcher, r, insecure).resolve()?.0)
}

/// Pulls `r` into one base layer; fills `info` and says whether nothing had
/// to be downloaded or applied.
pub fn pull(store: &Store, fetcher: &Fetcher, r: &OciRef, opts: &ImportOptions, info: &mut ImageInfo) -> Result<bool> {
    let reg = Registry::new(fetcher, r, &opts.config.insecure_registries);
    let (digest, manifest) = reg.resolve()?;
    info.source = Some(r.at(&digest).to_string());
    info.oci_digest = Some(digest.clone());
    let key = format!("oci-{}", digest.replace(':', "-"));
    if let Some(id) = import::cached_layer(store, &key) {
        return import::reuse(store, id, info);
    }
    let (Some(config), Some(layers)) = (manifest.config, manifest.layers) else {
        return Err(reg.fail("the manifest names no config or no layers"));
    };
    reg.check_layers(&layers)?;
    reference::parse_digest(&config.digest).map_err(|e| reg.fail(format!("config: {e}")))?;
    reg.check_config(&config)?;
    reg.download(store, &layers)?;
    let mut readers = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let path = blob_path(store, &l.digest);
        let file = File::open(&path).map_err(Error::store("open", &path))?;
        readers.push((
            format!("{r} layer {} ({})", i + 1, &l.digest[..19]),
            Hashing {
                inner: BufReader::with_capacity(1 << 20, file),
                hasher: Sha256::new(),
            },
        ));
    }
    let sources: Vec<(String, &mut Hashing<BufReader<File>>)> =
        readers.iter_mut().map(|(s, h)| (s.clone(), h)).collect();
    let applied = tar::import_layers(
        store,
        sources,
        &opts.config.limits,
        Mode {
            flatten: true,
            strict: true,
        },
    );
    // A cached blob is checked again as it is applied (the cache is only a
    // cache); a damaged one is dropped, and that is the error to report even
    // when applying it failed first.
    let mut damaged = None;
    for (l, (_, h)) in layers.iter().zip(readers.iter_mut()) {
        let path = blob_path(store, &l.digest);
        io::copy(h, &mut io::sink()).map_err(Error::store("read", &path))?;
        let actual = format!("sha256:{}", hex(&std::mem::take(&mut h.hasher).finalize()));
        if actual != l.digest {
            let _ = std::fs::remove_file(&path);
            damaged.get_or_insert(ImageError::ChecksumMismatch {
                source_name: path.display().to_string(),
                expected: l.digest.clone(),
                actual,
            });
        }
    }
    if let Some(e) = damaged {
        return Err(e.into());
    }
    let report = applied?;
    info.archive_size = Some(layers.iter().map(|l| l.size).sum());
    info.digest = import::write_base_layer(store, &key, report, info)?;
    Ok(false)
}
