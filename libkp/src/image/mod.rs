//! Base images: references to distribution releases on simplestreams image
//! servers, HTTP(S) tarballs, local tarballs and directories, and images already
//! imported; turning any of them into a base layer in the store (docs/images.md).
//!
//! The image's digest is its layer id: a hash of the content (trees and blobs with
//! ownership and modes from the archive), not of the archive's bytes, so the same
//! root filesystem imported from a tarball, a directory or another compression
//! gives one digest.

mod config;
mod fetch;
mod import;
pub mod oci;
pub mod reference;
mod resolver;
mod simplestreams;
mod tar;

pub use config::{Config, DEFAULT_SERVER, ENV_SERVER};
pub use fetch::{host_arch, Fetcher};
pub use import::{import, list, lookup, parse_in, remove, resolve, ImageInfo, ImportOptions, Imported, Resolved};
pub use reference::{parse, Reference};
pub use resolver::StoreImages;
pub use tar::{import_layers, import_tar, Limits, Mode, TarReport};

/// Why an image could not be resolved, fetched or imported.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },
    #[error("no image named {name:?} in the store (see `karapace image list`)")]
    NoSuchImage { name: String },
    #[error("{reference}: no {arch} image on {}", servers.join(", "))]
    NotOnServers {
        reference: String,
        arch: String,
        servers: Vec<String>,
    },
    #[error("{url}: {reason}")]
    Index { url: String, reason: String },
    #[error("{url}: HTTP {status} {reason}")]
    Http { url: String, status: u16, reason: String },
    #[error("{url}: {reason} (after {attempts} {})", if *attempts == 1 { "attempt" } else { "attempts" })]
    Transport { url: String, reason: String, attempts: u32 },
    #[error("{url}: the server answered with an HTML page, not an archive")]
    HtmlAnswer { url: String },
    #[error("{source_name}: not a tar archive (plain, gzip, xz or zstd); it starts with {start}")]
    NotAnArchive { source_name: String, start: String },
    #[error("{source_name}: sha256 is {actual}, expected {expected}")]
    ChecksumMismatch {
        source_name: String,
        expected: String,
        actual: String,
    },
    #[error("{source_name}: member {member}: {reason}")]
    UnsafeMember {
        source_name: String,
        member: String,
        reason: String,
    },
    #[error("{source_name}: member {member} is a hard link to {target}, which is not earlier in the archive")]
    HardlinkMissing {
        source_name: String,
        member: String,
        target: String,
    },
    #[error("{source_name}: archive is truncated or corrupt: {reason}")]
    Truncated { source_name: String, reason: String },
    #[error("{source_name}: more than {limit} {what}; raise [images] {key} in the configuration if this is expected")]
    TooLarge {
        source_name: String,
        what: &'static str,
        limit: u64,
        key: &'static str,
    },
    #[error("{reference}: {reason}")]
    Registry { reference: String, reason: String },
    #[error("{}: {reason}", path.display())]
    Config { path: std::path::PathBuf, reason: String },
}

/// What the image module returns: its own refusals, or the failure of a module below it,
/// with that module's message (docs/architecture.md, "Errors").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(Box<ImageError>),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error(transparent)]
    Meta(#[from] crate::meta::Error),
    #[error(transparent)]
    Refs(#[from] crate::refs::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Schema(#[from] crate::schema::Error),
}

impl Error {
    /// The process exit status this failure gives (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Image(_) => crate::exit::FAILURE,
            Error::Store(e) => e.exit_code(),
            Error::Layer(e) => e.exit_code(),
            Error::Meta(e) => e.exit_code(),
            Error::Refs(e) => e.exit_code(),
            Error::Config(e) => e.exit_code(),
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

impl From<ImageError> for Error {
    fn from(e: ImageError) -> Self {
        Error::Image(Box::new(e))
    }
}
