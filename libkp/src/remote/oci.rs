//! Environments to and from OCI registries (docs/oci.md, "Environments in a
//! registry"): `karapace push ENV oci://...` and `karapace pull oci://...`.
//!
//! An environment becomes an ordinary OCI image: one uncompressed tar layer
//! per store layer, written from the layer's tree by [`crate::drift::tree_tar`]
//! (so the same layer always gives the same bytes and digest), and a config
//! whose labels carry the environment object, the layer objects and, when
//! the environment was built here, its lock and manifest. A pull imports each
//! tar back into a tree, checks it is the tree the layer object names, writes
//! the layer object (whose id must be the one the environment names) and
//! records the environment with the same env_id, as `karapace pull` from a
//! karapace remote does (origin `remote`).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, Seek, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use super::{Error, Result};
use crate::env::EnvRecord;
use crate::hash::ObjectId;
use crate::image::oci::{self, blob_path, BlobSource, Hashing, OciRef, Pushed, Registry};
use crate::image::{Config, Fetcher, Mode};
use crate::object::{EnvObject, Kind, Layer};
use crate::store::Store;

/// The config labels an environment travels in.
pub const LABEL_ENV: &str = "org.karapace.env";
pub const LABEL_LAYERS: &str = "org.karapace.layers";
pub const LABEL_LOCK: &str = "org.karapace.lock";
pub const LABEL_MANIFEST: &str = "org.karapace.manifest";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `LAYER_ID` -> `sha256:HEX SIZE` of the layer's tar: a second push of a
/// layer writes no tar when the registry has it. Bump with the tar format.
const TAR_CACHE: &str = "cache/oci/tars/v1";
/// `HEX` (a blob's sha256) -> `REGISTRY/REPOSITORY` lines where it was
/// pushed or pulled: the repositories a push may mount it from.
const SOURCES: &str = "cache/oci/sources";
/// Blobs larger than this are uploaded in chunks of this size by default.
pub const DEFAULT_CHUNK: u64 = 64 << 20;

/// What a push to a registry did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OciPushReport {
    pub env_id: String,
    /// `oci://REGISTRY/REPO:TAG@sha256:...`: what `karapace pull` takes.
    pub reference: String,
    /// The image manifest's digest.
    pub digest: String,
    pub layers: u64,
    /// Blobs (layers and config) the repository had, mounted from another
    /// repository of the registry, and uploaded; the bytes uploaded.
    pub present: u64,
    pub mounted: u64,
    pub uploaded: u64,
    pub bytes: u64,
}

/// What a pull from a registry did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OciPullReport {
    pub env_id: String,
    pub name: Option<String>,
    /// The image manifest's digest.
    pub digest: String,
    /// Layers imported (those the store lacked) and the bytes downloaded for them.
    pub layers: u64,
    pub bytes: u64,
    /// The environment was recorded by this pull (false: it was here already).
    pub recorded: bool,
}

fn refused(why: String) -> Error {
    Error::Refused(why)
}

/// Parses an `oci://` or `docker://` reference for push or pull.
pub fn parse_ref(s: &str) -> Result<OciRef> {
    oci::reference::parse(s).map_err(|reason| {
        crate::image::Error::from(crate::image::ImageError::BadReference {
            reference: s.to_string(),
            reason,
        })
        .into()
    })
}

/// A layer's tar: its digest and size, and the file when it was written now.
struct LayerTar {
    digest: String,
    size: u64,
    file: Option<tempfile::NamedTempFile>,
}

/// Writes layer `id`'s tar into a temporary file, hashing it; remembers its
/// digest in [`TAR_CACHE`].
fn write_layer_tar(store: &Store, id: &ObjectId, layer: &Layer) -> Result<LayerTar> {
    let mut tmp = store.temp_file()?;
    let path = tmp.path().to_path_buf();
    let (digest, size) = {
        let mut out = HashingWriter {
            inner: io::BufWriter::new(tmp.as_file_mut()),
            hasher: sha2::Sha256::default(),
            n: 0,
        };
        let (_, warnings) = crate::drift::tree_tar(store, &layer.tree, layer.root, &mut out, &path)?;
        if let Some(w) = warnings.first() {
            return Err(refused(format!(
                "layer {id}: cannot be written as a tar layer exactly: {w}"
            )));
        }
        out.inner.flush().map_err(crate::store::Error::store("write", &path))?;
        (
            format!("sha256:{}", crate::hash::hex(&sha2::Digest::finalize(out.hasher))),
            out.n,
        )
    };
    let memo = store.path(TAR_CACHE);
    store.make_dir(&memo)?;
    store.write_atomic(&memo.join(id.to_hex()), format!("{digest} {size}\n").as_bytes(), 0o600)?;
    tmp.as_file_mut()
        .rewind()
        .map_err(crate::store::Error::store("rewind", &path))?;
    Ok(LayerTar {
        digest,
        size,
        file: Some(tmp),
    })
}

/// Layer `id`'s tar digest and size as [`TAR_CACHE`] remembers them.
fn remembered_tar(store: &Store, id: &ObjectId) -> Option<LayerTar> {
    let text = std::fs::read_to_string(store.path(TAR_CACHE).join(id.to_hex())).ok()?;
    let (digest, size) = text.trim().split_once(' ')?;
    oci::reference::parse_digest(digest).ok()?;
    Some(LayerTar {
        digest: digest.to_string(),
        size: size.parse().ok()?,
        file: None,
    })
}

struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    n: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The repositories of `registry` known to hold blob `digest`.
fn sources(store: &Store, digest: &str, registry: &str) -> Vec<String> {
    let hex = digest.trim_start_matches("sha256:");
    let text = std::fs::read_to_string(store.path(SOURCES).join(hex)).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix(registry)?.strip_prefix('/'))
        .map(str::to_string)
        .collect()
}

/// Remembers that `r`'s repository holds blob `digest` (a cache: failures
/// to write it only cost a later mount).
fn remember_source(store: &Store, digest: &str, r: &OciRef) {
    let hex = digest.trim_start_matches("sha256:");
    let dir = store.path(SOURCES);
    let line = format!("{}/{}", r.registry, r.repository);
    let path = dir.join(hex);
    let mut lines: BTreeSet<String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    if !lines.insert(line) {
        return;
    }
    let text: String = lines.into_iter().map(|l| l + "\n").collect();
    let written = store
        .make_dir(&dir)
        .and_then(|_| store.write_atomic(&path, text.as_bytes(), 0o600));
    if let Err(e) = written {
        crate::log!(crate::log::Level::Info, "{e}");
    }
}

/// The lock and manifest beside the record's manifest, when that lock is
/// still this environment's (same env_id).
fn lock_and_manifest(rec: &EnvRecord) -> Option<(String, String)> {
    let manifest = PathBuf::from(rec.manifest.as_ref()?);
    let lock_path = crate::schema::lock::path_for(&manifest);
    let lock = std::fs::read_to_string(&lock_path).ok()?;
    let parsed = crate::schema::Lock::parse(&lock, &lock_path).ok()?;
    if parsed.env_id != rec.env_id || parsed.check_integrity(&lock_path).is_err() {
        return None;
    }
    Some((lock, std::fs::read_to_string(&manifest).ok()?))
}

/// The image config: the host's platform, a shell to run, and the labels.
fn image_config(env: &EnvObject, layers: &[String], diff_ids: &[String], rec: &EnvRecord) -> Result<Vec<u8>> {
    let env_bytes = env
        .serialize()
        .map_err(|e| refused(format!("environment {}: {e}", env.env_id)))?;
    let env_json = String::from_utf8_lossy(&env_bytes[crate::object::ENV_MAGIC.len()..]).into_owned();
    let mut labels = serde_json::Map::new();
    labels.insert(LABEL_ENV.into(), env_json.into());
    labels.insert(
        LABEL_LAYERS.into(),
        serde_json::to_string(layers).expect("strings serialise").into(),
    );
    if let Some((lock, manifest)) = lock_and_manifest(rec) {
        labels.insert(LABEL_LOCK.into(), lock.into());
        labels.insert(LABEL_MANIFEST.into(), manifest.into());
    }
    let (arch, variant) = oci::host_platform();
    let mut config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": env.layers.iter().map(|id| json!({"created_by": format!("karapace layer {id}")})).collect::<Vec<_>>(),
    });
    if let Some(v) = variant {
        config["variant"] = v.into();
    }
    Ok(serde_json::to_vec(&config).expect("JSON serialises"))
}

/// Push options.
#[derive(Clone, Debug)]
pub struct OciPushOptions {
    /// Blobs larger than this go in `PATCH` chunks of this size; 0: whole.
    pub chunk: u64,
}

impl Default for OciPushOptions {
    fn default() -> Self {
        OciPushOptions { chunk: DEFAULT_CHUNK }
    }
}

/// Pushes environment `rec` to `target` (`oci://REGISTRY/REPO:TAG`).
pub fn push(store: &Store, rec: &EnvRecord, target: &OciRef, opts: &OciPushOptions) -> Result<OciPushReport> {
    let Some(tag) = target.tag.clone().filter(|_| target.digest.is_none()) else {
        return Err(refused(format!(
            "{target}: a push names a tag (oci://REGISTRY/REPO:TAG), not a digest"
        )));
    };
    let config = Config::load()?;
    let fetcher = Fetcher::new(&config, false);
    let _guard = store.write_guard()?;
    let env = crate::env::env_object(rec, false)?;
    let mut layers = Vec::new();
    let mut tars = Vec::new();
    for id in &env.layers {
        let layer = store.read_layer(id)?;
        let bytes = layer.serialize().map_err(|e| refused(format!("layer {id}: {e}")))?;
        layers.push(String::from_utf8_lossy(&bytes[crate::object::LAYER_MAGIC.len()..]).into_owned());
        let tar = match remembered_tar(store, id) {
            Some(t) => t,
            None => write_layer_tar(store, id, &layer)?,
        };
        tars.push((id, layer, tar));
    }
    let mut from = BTreeSet::new();
    for (_, _, t) in &tars {
        from.extend(sources(store, &t.digest, &target.registry));
    }
    from.remove(&target.repository);
    let from: Vec<String> = from.into_iter().collect();
    let reg = Registry::new(&fetcher, target, &config.insecure_registries).for_push(from.clone());
    let mut report = OciPushReport {
        env_id: rec.env_id.clone(),
        layers: tars.len() as u64,
        ..OciPushReport::default()
    };
    for (id, layer, tar) in &mut tars {
        if reg.has_blob(&tar.digest)? {
            count(Pushed::Present, tar.size, &mut report);
        } else {
            if tar.file.is_none() {
                // Remembered, not written: write it now (it is the same).
                *tar = write_layer_tar(store, id, layer)?;
            }
            let file = tar.file.as_ref().expect("written above").as_file();
            let from = sources(store, &tar.digest, &target.registry);
            let how = reg.push_blob(
                &BlobSource {
                    digest: &tar.digest,
                    size: tar.size,
                    file,
                },
                &from,
                opts.chunk,
            )?;
            count(how, tar.size, &mut report);
        }
        remember_source(store, &tar.digest, target);
    }
    let diff_ids: Vec<String> = tars.iter().map(|(_, _, t)| t.digest.clone()).collect();
    let config_bytes = image_config(&env, &layers, &diff_ids, rec)?;
    let config_digest = sha256(&config_bytes);
    if reg.has_blob(&config_digest)? {
        count(Pushed::Present, 0, &mut report);
    } else {
        let from = sources(store, &config_digest, &target.registry);
        let mut tmp = store.temp_file()?;
        let path = tmp.path().to_path_buf();
        tmp.as_file_mut()
            .write_all(&config_bytes)
            .map_err(crate::store::Error::store("write", &path))?;
        let how = reg.push_blob(
            &BlobSource {
                digest: &config_digest,
                size: config_bytes.len() as u64,
                file: tmp.as_file(),
            },
            &from,
            opts.chunk,
        )?;
        count(how, config_bytes.len() as u64, &mut report);
    }
    remember_source(store, &config_digest, target);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
        "layers": tars.iter().map(|(id, _, t)| json!({
            "mediaType": LAYER_TAR,
            "digest": t.digest,
            "size": t.size,
            "annotations": {"org.karapace.layer": id.to_hex()},
        })).collect::<Vec<_>>(),
        "annotations": {"org.karapace.env_id": rec.env_id},
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("JSON serialises");
    reg.put_manifest(&tag, &manifest_bytes, OCI_MANIFEST)?;
    report.digest = sha256(&manifest_bytes);
    report.reference = target.at(&report.digest).to_string();
    Ok(report)
}

fn count(how: Pushed, size: u64, report: &mut OciPushReport) {
    match how {
        Pushed::Present => report.present += 1,
        Pushed::Mounted => report.mounted += 1,
        Pushed::Uploaded => {
            report.uploaded += 1;
            report.bytes += size;
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        crate::hash::hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes))
    )
}

/// What a config's labels say the environment is.
struct Carried {
    env: EnvObject,
    layers: Vec<Layer>,
}

/// Reads and checks the labels: the environment object, one layer object per
/// image layer whose id is the one the environment names, and the lock, when
/// carried, whose identity is the env_id.
fn carried(src: &OciRef, config: &[u8], image_layers: usize) -> Result<Carried> {
    let bad = |why: String| refused(format!("{src}: {why}"));
    let doc: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| bad(format!("the image config is not JSON: {e}")))?;
    let labels = &doc["config"]["Labels"];
    let label = |k: &str| labels.get(k).and_then(|v| v.as_str());
    let Some(env_text) = label(LABEL_ENV) else {
        return Err(bad(format!(
            "not a karapace environment (its config has no {LABEL_ENV} label); \
             as a base image it is `image = \"{src}\"`"
        )));
    };
    let env = EnvObject::parse(&[crate::object::ENV_MAGIC, env_text.as_bytes()].concat())
        .map_err(|e| bad(format!("label {LABEL_ENV}: {e}")))?;
    let texts: Vec<String> = serde_json::from_str(label(LABEL_LAYERS).unwrap_or(""))
        .map_err(|e| bad(format!("label {LABEL_LAYERS}: {e}")))?;
    if texts.len() != env.layers.len() || image_layers != env.layers.len() {
        return Err(bad(format!(
            "the environment names {} layers, label {LABEL_LAYERS} has {} and the image {}",
            env.layers.len(),
            texts.len(),
            image_layers
        )));
    }
    let mut layers = Vec::new();
    for (text, want) in texts.iter().zip(&env.layers) {
        let bytes = [crate::object::LAYER_MAGIC, text.as_bytes()].concat();
        let layer = Layer::parse(&bytes).map_err(|e| bad(format!("label {LABEL_LAYERS}: layer {want}: {e}")))?;
        let id = ObjectId::of(&bytes);
        if id != *want {
            return Err(bad(format!(
                "label {LABEL_LAYERS}: a layer object hashes to {id}, the environment names {want}"
            )));
        }
        layers.push(layer);
    }
    if let Some(lock) = label(LABEL_LOCK) {
        let path = Path::new(LABEL_LOCK);
        let parsed = crate::schema::Lock::parse(lock, path).map_err(|e| bad(format!("label {e}")))?;
        parsed.check_integrity(path).map_err(|e| bad(format!("label {e}")))?;
        if parsed.env_id != env.env_id {
            return Err(bad(format!(
                "label {LABEL_LOCK} is the lock of {}, the environment is {}",
                parsed.env_id, env.env_id
            )));
        }
    }
    Ok(Carried { env, layers })
}

/// Pulls the environment image `src` into the store: every layer the store
/// lacks is downloaded (checked against its sha256), imported from its tar,
/// and checked to be the very layer the environment names; then the
/// environment is recorded (origin remote), named `name` when given.
pub fn pull(store: &Store, src: &OciRef, name: Option<&str>) -> Result<OciPullReport> {
    let config = Config::load()?;
    let fetcher = Fetcher::new(&config, true).multi_progress();
    let reg = Registry::new(&fetcher, src, &config.insecure_registries);
    let (digest, config_bytes, descs) = reg.image()?;
    let Carried { env, layers } = carried(src, &config_bytes, descs.len())?;
    let mut report = OciPullReport {
        env_id: env.env_id.clone(),
        name: name.map(str::to_string),
        digest,
        ..OciPullReport::default()
    };
    if let Some(rec) = store.read_env(&env.env_id)? {
        report.name = rec.name;
        return Ok(report);
    }
    if let Some(n) = name {
        // Refused before anything is fetched (record_pulled checks again).
        crate::env::check_name(n).map_err(crate::env::Error::from)?;
        if let Ok(other) = store.find_env(n) {
            return Err(crate::env::Error::from(crate::env::EnvError::NameTaken {
                name: n.to_string(),
                by: other.short_id(),
            })
            .into());
        }
    }
    let _guard = store.write_guard()?;
    let todo: Vec<usize> = (0..descs.len())
        .filter(|&i| !store.has(Kind::Layer, &env.layers[i]))
        .collect();
    let wanted: Vec<oci::Descriptor> = todo.iter().map(|&i| descs[i].clone()).collect();
    reg.fetch_blobs(store, &wanted)?;
    for &i in &todo {
        let (d, layer, want) = (&descs[i], &layers[i], env.layers[i]);
        let path = blob_path(store, &d.digest);
        let file = File::open(&path).map_err(crate::store::Error::store("open", &path))?;
        let mut reader = Hashing::new(BufReader::with_capacity(1 << 20, file));
        let source = format!("{src} layer {} ({})", i + 1, &d.digest[..19]);
        let imported = crate::image::import_layers(
            store,
            vec![(source.clone(), &mut reader)],
            &config.limits,
            Mode {
                flatten: false,
                strict: true,
            },
        );
        io::copy(&mut reader, &mut io::sink()).map_err(crate::store::Error::store("read", &path))?;
        let actual = reader.digest();
        if actual != d.digest {
            let _ = std::fs::remove_file(&path);
            return Err(refused(format!(
                "{}: sha256 is {actual}, expected {}",
                path.display(),
                d.digest
            )));
        }
        let tar = imported?;
        if tar.tree != layer.tree || tar.root != layer.root {
            return Err(refused(format!(
                "{source}: its tar is tree {} (root {:o} {}:{}), the layer {want} names tree {} (root {:o} {}:{})",
                tar.tree,
                tar.root.mode,
                tar.root.uid,
                tar.root.gid,
                layer.tree,
                layer.root.mode,
                layer.root.uid,
                layer.root.gid
            )));
        }
        let id = store.write_layer_object(layer)?;
        debug_assert_eq!(id, want, "the label's bytes were canonical and hashed to it");
        report.layers += 1;
        report.bytes += d.size;
        remember_source(store, &d.digest, src);
    }
    crate::env::record_pulled(store, &env, name)?;
    report.recorded = true;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{LayerKind, RootMeta};

    fn layer(n: u8) -> (String, ObjectId) {
        let l = Layer {
            kind: LayerKind::Base,
            tree: ObjectId::from_bytes([n; 32]),
            root: RootMeta::default(),
            parents: Vec::new(),
            provenance: Default::default(),
        };
        let bytes = l.serialize().unwrap();
        let text = String::from_utf8(bytes[crate::object::LAYER_MAGIC.len()..].to_vec()).unwrap();
        (text, ObjectId::of(&bytes))
    }

    fn config(env_layers: &[ObjectId], texts: &[String], lock: Option<&str>) -> Vec<u8> {
        let env = EnvObject {
            env_id: "ab".repeat(32),
            image: None,
            layers: env_layers.to_vec(),
            settings: serde_json::Value::Null,
            snapshots: Vec::new(),
        };
        let bytes = env.serialize().unwrap();
        let mut labels = serde_json::json!({
            LABEL_ENV: String::from_utf8(bytes[crate::object::ENV_MAGIC.len()..].to_vec()).unwrap(),
            LABEL_LAYERS: serde_json::to_string(texts).unwrap(),
        });
        if let Some(l) = lock {
            labels[LABEL_LOCK] = l.into();
        }
        serde_json::to_vec(&json!({"config": {"Labels": labels}})).unwrap()
    }

    fn refusal(config: &[u8], layers: usize) -> String {
        let r = oci::reference::parse("oci://127.0.0.1:5000/e/x:1").unwrap();
        match carried(&r, config, layers) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    /// A tree with every kind of entry and metadata a layer can hold comes
    /// back from its tar as the same tree, and the tar is the same bytes
    /// each time.
    #[test]
    fn layer_tars_round_trip_exactly() {
        use crate::object::{Entry, EntryKind, Tree, Xattr};
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let _guard = store.write_guard().unwrap();
        let (blob, size) = store.write_blob_from_reader(&b"#!/bin/sh\n"[..], 0o755).unwrap();
        let e = |name: &[u8], kind, mode, uid, xattrs: Vec<Xattr>| Entry {
            name: name.to_vec(),
            kind,
            mode,
            uid,
            gid: uid,
            xattrs,
        };
        let cap = Xattr {
            name: b"security.capability".to_vec(),
            value: vec![1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        let user = Xattr {
            name: b"user.note".to_vec(),
            value: b"\0binary\xff".to_vec(),
        };
        let mut inner = Tree {
            opaque: true,
            entries: vec![
                e(b"kept", EntryKind::File { blob, size }, 0o644, 0, vec![]),
                Entry::whiteout(b"gone".to_vec()),
            ],
        };
        inner.sort();
        let inner_id = store.write_tree(&inner).unwrap();
        let long = vec![b'n'; 180];
        let mut top = Tree {
            opaque: false,
            entries: vec![
                e(b"ping", EntryKind::File { blob, size }, 0o4755, 0, vec![cap]),
                e(&long, EntryKind::File { blob, size }, 0o600, 1000, vec![user.clone()]),
                e(b"opaque", EntryKind::Dir { tree: inner_id }, 0o750, 7, vec![user]),
                e(b"link", EntryKind::Symlink { target: long.clone() }, 0o777, 0, vec![]),
                e(b"fifo", EntryKind::Fifo, 0o600, 0, vec![]),
                e(b"null", EntryKind::CharDevice { major: 1, minor: 3 }, 0o666, 0, vec![]),
                Entry::whiteout(b"removed".to_vec()),
            ],
        };
        top.sort();
        let tree = store.write_tree(&top).unwrap();
        let root = RootMeta {
            mode: 0o700,
            uid: 5,
            gid: 6,
        };
        let tar = |out: &mut Vec<u8>| crate::drift::tree_tar(&store, &tree, root, out, Path::new("t")).unwrap();
        let (mut one, mut two) = (Vec::new(), Vec::new());
        assert!(tar(&mut one).1.is_empty());
        tar(&mut two);
        assert_eq!(one, two);
        let mode = Mode {
            flatten: false,
            strict: true,
        };
        let back =
            crate::image::import_layers(&store, vec![("t".to_string(), &one[..])], &Default::default(), mode).unwrap();
        assert_eq!((back.tree, back.root), (tree, root));
    }

    #[test]
    fn labels_must_name_the_layers() {
        let r = oci::reference::parse("oci://127.0.0.1:5000/e/x:1").unwrap();
        let (t1, id1) = layer(1);
        let (t2, id2) = layer(2);
        let good = config(&[id1, id2], &[t1.clone(), t2.clone()], None);
        let c = carried(&r, &good, 2).unwrap();
        assert_eq!(c.layers.len(), 2);
        assert_eq!(c.env.layers, [id1, id2]);
        // Swapped layer objects: each must hash to the id at its position.
        let swapped = config(&[id1, id2], &[t2.clone(), t1.clone()], None);
        assert!(
            refusal(&swapped, 2).contains("a layer object hashes to"),
            "{}",
            refusal(&swapped, 2)
        );
        assert!(refusal(&good, 3).contains("the image 3"), "{}", refusal(&good, 3));
        let short = config(&[id1, id2], std::slice::from_ref(&t1), None);
        assert!(refusal(&short, 2).contains("has 1"), "{}", refusal(&short, 2));
        let spaced = config(&[id1], &[t1.replace(',', ", ")], None);
        assert!(refusal(&spaced, 1).contains("not canonical"), "{}", refusal(&spaced, 1));
        let plain = serde_json::to_vec(&json!({"config": {}})).unwrap();
        assert!(refusal(&plain, 1).contains("not a karapace environment"));
        let lock = config(&[id1], &[t1], Some("lock_version = 1\n"));
        assert!(refusal(&lock, 1).contains(LABEL_LOCK), "{}", refusal(&lock, 1));
    }
}
