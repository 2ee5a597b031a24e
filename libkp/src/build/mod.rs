//! `karapace build`: manifest in, environment out (docs/environments.md).
//!
//! parse → lock or re-resolve → import the base image → check it out (shared)
//! → install packages inside the sandbox over that checkout, into a fresh upper
//! directory → write it as the dependency layer → record the installed closure
//! in the lock → env_id → the environment's record and writable layer.
//!
//! The sandbox is behind [`Runner`], so the pipeline's decisions are testable
//! without namespaces.

mod install;
pub mod normalise;
pub mod quick;
mod runner;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::env::{check_name, EnvRecord, Origin};
use crate::hash::ObjectId;
use crate::image;
use crate::pkg::Package;
use crate::schema::{self, Lock, LockedBase, LockedPackage, Manifest};
use crate::store::Store;

pub use install::{install_packages, Installed, ID_MAP, RANGE, SINGLE};
pub use runner::SandboxRunner;

/// Runs commands over a root made of layers (the sandbox, in real use).
pub trait Runner {
    fn run(&self, job: &Job) -> Result<RunOutput>;
    /// How the sandbox maps ids, so what the install wrote is recorded as the
    /// environment sees it, whoever built it.
    fn ids(&self) -> Result<crate::layer::IdShift>;
}

/// One command inside an overlay of `lowers` (top-most first) under `upper`.
#[derive(Clone, Debug)]
pub struct Job {
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The host's network (package downloads); otherwise loopback only.
    pub network: bool,
    /// Keep stdout instead of passing it through.
    pub capture: bool,
}

#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    /// The end of what the command printed (stdout and stderr) when not
    /// captured: it was passed through to stderr, and is kept to be read for
    /// failures a manager reports without an exit status.
    pub output: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Name to give the environment.
    pub name: Option<String>,
    /// Refuse a missing or drifted lock; install exactly the locked versions.
    pub locked: bool,
    /// No downloads, no network inside.
    pub offline: bool,
    /// Refuse an image reference that is not pinned to a digest.
    pub require_pinned: bool,
    /// Ignore the existing lock and resolve again (rebuild).
    pub fresh: bool,
    /// Draw progress bars where stderr is a terminal.
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{}: base.image {reference:?} is not pinned (--require-pinned-image); run `karapace pin`", manifest.display())]
    Unpinned { manifest: PathBuf, reference: String },
    #[error("{}: --locked needs a karapace.lock; run `karapace build` once without --locked to make one", lock.display())]
    NoLock { lock: PathBuf },
    #[error("image {reference:?} imported as {actual}, but {which} says {expected}")]
    DigestMismatch {
        reference: String,
        which: &'static str,
        expected: String,
        actual: String,
    },
    #[error("image {reference:?}: {reason}; cannot install {packages}")]
    NoPackageManager {
        reference: String,
        packages: String,
        reason: crate::pkg::DetectError,
    },
    #[error("`{command}` failed inside the environment (exit status {status})")]
    CommandFailed { command: String, status: i32 },
    #[error("`{command}` exited 0 inside the environment, but {what}")]
    FailedQuietly { command: String, what: String },
    #[error("locked package {name} {version} ({arch}) is not what the install produced{found}; the package source no longer has it")]
    LockedVersionMissing {
        name: String,
        version: String,
        arch: String,
        found: String,
    },
    #[error("--offline: image {reference:?} is not in the store (as {name:?}); import it first with `karapace image import`")]
    OfflineImage { reference: String, name: String },
    #[error("{0}")]
    Package(#[from] crate::pkg::PkgError),
}

/// What a build returns: its own refusals, or the failure of a module below it,
/// with that module's message (docs/architecture.md, "Errors").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Env(#[from] crate::env::Error),
    #[error(transparent)]
    Image(#[from] crate::image::Error),
    #[error(transparent)]
    Prune(#[from] crate::prune::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error("sandbox: {0}")]
    Sandbox(#[from] crate::sandbox::Error),
    #[error(transparent)]
    Schema(#[from] crate::schema::Error),
}

impl Error {
    /// The process exit status this failure gives (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Build(_) => crate::exit::FAILURE,
            Error::Env(e) => e.exit_code(),
            Error::Image(e) => e.exit_code(),
            Error::Prune(e) => e.exit_code(),
            Error::Store(e) => e.exit_code(),
            Error::Layer(e) => e.exit_code(),
            Error::Config(e) => e.exit_code(),
            Error::Sandbox(_) => crate::exit::SANDBOX,
            Error::Schema(e) => e.exit_code(),
        }
    }

    /// Wraps an io error on a store path.
    pub fn store(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let wrap = crate::store::Error::store(op, path);
        move |source| Error::Store(wrap(source))
    }

    /// Wraps an io error on a path the user gave.
    pub fn input(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let wrap = crate::store::Error::input(op, path);
        move |source| Error::Store(wrap(source))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::env::EnvError> for Error {
    fn from(e: crate::env::EnvError) -> Self {
        Error::Env(e.into())
    }
}

impl From<crate::image::ImageError> for Error {
    fn from(e: crate::image::ImageError) -> Self {
        Error::Image(e.into())
    }
}

impl From<crate::pkg::PkgError> for Error {
    fn from(e: crate::pkg::PkgError) -> Self {
        Error::Build(e.into())
    }
}

/// What a build produced.
#[derive(Debug)]
pub struct Built {
    pub record: EnvRecord,
    pub lock: Lock,
    /// The environment existed already: nothing was done.
    pub reused: bool,
    /// What the install added (empty when reused or without packages).
    pub added: Vec<Package>,
}

/// Builds the environment `manifest_path` describes.
pub fn build(store: &Store, manifest_path: &Path, opts: &BuildOptions, runner: &dyn Runner) -> Result<Built> {
    crate::progress::plan(&["image", "packages", "record"]);
    let manifest = schema::manifest::load(manifest_path)?;
    let lock_path = schema::lock::path_for(manifest_path);
    if let Some(name) = &opts.name {
        check_name(name)?;
    }
    if opts.require_pinned && manifest.base.digest.is_none() {
        return Err(BuildError::Unpinned {
            manifest: manifest_path.to_path_buf(),
            reference: manifest.base.reference.clone(),
        }
        .into());
    }
    let previous = if opts.fresh {
        None
    } else {
        schema::existing_lock(manifest_path)?
    };
    // A lock that still says what the manifest says is followed, as cargo does;
    // --locked makes that a requirement.
    let usable = match previous {
        Some(lock) => {
            lock.check_integrity(&lock_path)?;
            match lock.check_intent(&manifest, &lock_path) {
                Ok(()) => Some(lock),
                Err(e) if opts.locked => return Err(e.into()),
                Err(_) => None,
            }
        }
        None if opts.locked => return Err(BuildError::NoLock { lock: lock_path }.into()),
        None => None,
    };
    // What an interrupted build (or any crashed writer) left goes first, when
    // nobody else holds the store: scratch upper directories can be large.
    // Also when the environment is built already (a build killed after it
    // wrote the record), so a rerun leaves nothing behind.
    let swept = store.sweep_if_idle(usable.as_ref().map(|l| l.env_id.as_str()))?;
    if swept > 0 {
        crate::log!(
            crate::log::Level::Info,
            "removed {swept} leftover(s) of interrupted commands"
        );
    }
    if let Some(lock) = &usable {
        if let Some(rec) = store.read_env(&lock.env_id)? {
            return finish_existing(store, rec, lock.clone(), manifest_path, opts);
        }
    }

    crate::progress::phase("image");
    let (base, oci_digest) = import_base(store, &manifest, usable.as_ref(), opts)?;
    crate::progress::phase("packages");
    // The dependency layer is unnamed until the record below names it: keep gc
    // out until then (the base is named by its image ref already).
    let _guard = store.write_guard()?;
    let wanted: Vec<crate::pkg::Request> = match &usable {
        Some(lock) => locked_requests(lock),
        None => manifest
            .settings
            .requested_packages()
            .iter()
            .map(|n| crate::pkg::Request {
                name: n.clone(),
                version: None,
            })
            .collect(),
    };
    let mut layers = vec![base];
    let mut added = Vec::new();
    if !wanted.is_empty() {
        let installed = install_packages(
            store,
            &manifest.base.reference,
            &manifest.settings.requested_packages(),
            base,
            &wanted,
            opts.offline,
            runner,
        )?;
        if let Some(lock) = &usable {
            check_locked_versions(&lock.packages, &installed.added)?;
        }
        layers.push(installed.layer);
        added = installed.added;
    }
    crate::progress::phase("record");
    let closure: Vec<LockedPackage> = added
        .iter()
        .map(|p| LockedPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
        })
        .collect();
    let lock = Lock::new(
        LockedBase {
            image: manifest.base.reference.clone(),
            digest: base.to_hex(),
            oci_digest,
        },
        closure,
        manifest.settings.clone(),
    );
    if usable.as_ref().map(|l| l.env_id.as_str()) != Some(lock.env_id.as_str()) {
        lock.write(&lock_path)?;
    }
    if let Some(rec) = store.read_env(&lock.env_id)? {
        // Another manifest with the same lock built it already.
        return finish_existing(store, rec, lock, manifest_path, opts);
    }
    let mut rec = EnvRecord::new(lock.env_id.clone(), None);
    rec.manifest = Some(absolute(manifest_path).display().to_string());
    rec.image = Some(manifest.base.reference.clone());
    rec.layers = layers.iter().map(ObjectId::to_hex).collect();
    rec.settings = Some(manifest.settings.clone());
    crate::env::create_env(store, &rec)?;
    if let Some(name) = &opts.name {
        store.rename_env(&mut rec, name)?;
    }
    Ok(Built {
        record: rec,
        lock,
        reused: false,
        added,
    })
}

/// An environment with this env_id exists. One recorded from elsewhere
/// becomes local: the user's own manifest asks for exactly what it does.
fn finish_existing(
    store: &Store,
    mut rec: EnvRecord,
    lock: Lock,
    manifest_path: &Path,
    opts: &BuildOptions,
) -> Result<Built> {
    if rec.origin == Origin::Remote {
        let manifest = absolute(manifest_path).display().to_string();
        rec = store
            .update_env(&rec.env_id, |r| {
                r.origin = Origin::Local;
                r.manifest = Some(manifest);
                Ok(())
            })?
            .0;
    }
    if let Some(name) = &opts.name {
        if rec.name.as_deref() != Some(name) {
            store.rename_env(&mut rec, name)?;
        }
    }
    Ok(Built {
        record: rec,
        lock,
        reused: true,
        added: Vec::new(),
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Imports the base image (a no-op when it is already in the store) and checks
/// its digest against the pin and the lock.
/// The base layer, and for an OCI image the manifest digest pulled (the
/// lock's when a lock is followed).
fn import_base(
    store: &Store,
    manifest: &Manifest,
    lock: Option<&Lock>,
    opts: &BuildOptions,
) -> Result<(ObjectId, Option<String>)> {
    let reference = &manifest.base.reference;
    let images = image::StoreImages {
        store,
        config: image::Config::load()?,
        base_dir: manifest.dir().to_path_buf(),
        progress: opts.progress,
    };
    // A short name (`rolling`) no imported image has is its release.
    let parsed = image::parse_in(store, reference)?;
    let locked_oci = lock.and_then(|l| l.base.oci_digest.as_deref());
    let (digest, oci_digest) = match (&parsed, opts.offline) {
        // Offline, a remote image must already be in the store.
        (image::Reference::Url { .. } | image::Reference::Distro(_) | image::Reference::Oci(_), true) => {
            let name = parsed.default_name().unwrap_or_default();
            match image::lookup(store, &name)? {
                // The content is checked against the lock's digest below.
                Some(info) => (info.digest, info.oci_digest),
                None => {
                    return Err(BuildError::OfflineImage {
                        reference: reference.clone(),
                        name,
                    }
                    .into())
                }
            }
        }
        _ => {
            let done = images.import_at(reference, locked_oci)?;
            (done.digest, done.info.oci_digest)
        }
    };
    let actual = digest.to_hex();
    let checks = [
        ("the manifest's pin", manifest.base.digest.clone()),
        ("karapace.lock", lock.map(|l| l.base.digest.clone())),
    ];
    for (which, expected) in checks {
        if let Some(expected) = expected {
            if expected != actual {
                return Err(BuildError::DigestMismatch {
                    reference: reference.clone(),
                    which,
                    expected,
                    actual,
                }
                .into());
            }
        }
    }
    Ok((digest, oci_digest))
}

/// Every locked package at its locked version: what a lock-following install
/// asks for.
pub(crate) fn locked_requests(lock: &Lock) -> Vec<crate::pkg::Request> {
    lock.packages
        .iter()
        .map(|p| crate::pkg::Request {
            name: p.name.clone(),
            version: Some(p.version.clone()),
        })
        .collect()
}

fn check_locked_versions(locked: &[LockedPackage], added: &[Package]) -> Result<()> {
    for l in locked {
        let hit = added.iter().find(|p| p.name == l.name && p.arch == l.arch);
        if hit.map(|p| p.version.as_str()) != Some(l.version.as_str()) {
            return Err(BuildError::LockedVersionMissing {
                name: l.name.clone(),
                version: l.version.clone(),
                arch: l.arch.clone(),
                found: hit
                    .map(|p| format!(" (it installed {})", p.version))
                    .unwrap_or_default(),
            }
            .into());
        }
    }
    Ok(())
}
