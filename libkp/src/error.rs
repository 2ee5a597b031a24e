//! The crate-level error, for callers that want one type (the plumbing, the
//! porcelain, and the faces to come: server, tui, dbus). It only wraps: each
//! module returns its own error (store::Error, image::Error, env::Error, ...),
//! and this type sits above them all (docs/architecture.md, "Errors"). Every
//! message is the module's own, which names what failed, where, and at which
//! step.

use std::io;
use std::path::Path;

pub use crate::exit;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error(transparent)]
    Meta(#[from] crate::meta::Error),
    #[error(transparent)]
    Refs(#[from] crate::refs::Error),
    #[error(transparent)]
    Revparse(#[from] crate::revparse::Error),
    #[error(transparent)]
    Fsck(#[from] crate::fsck::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Image(#[from] crate::image::Error),
    #[error(transparent)]
    Env(#[from] crate::env::Error),
    #[error(transparent)]
    Drift(#[from] crate::drift::Error),
    #[error(transparent)]
    Build(#[from] crate::build::Error),
    #[error(transparent)]
    Prune(#[from] crate::prune::Error),
    #[error(transparent)]
    Care(#[from] crate::care::Error),
    /// The sandbox was refused or could not start: exit 125, apart from any
    /// status the command inside could return.
    #[error("sandbox: {0}")]
    Sandbox(#[from] crate::sandbox::Error),
    /// A manifest, lock or resolution problem (exit code per variant).
    #[error(transparent)]
    Schema(#[from] crate::schema::Error),
    #[error(transparent)]
    Pack(#[from] crate::pack::Error),
    #[error(transparent)]
    Remote(#[from] crate::remote::Error),
    #[error(transparent)]
    App(#[from] crate::app::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Store(e) => e.exit_code(),
            Error::Layer(e) => e.exit_code(),
            Error::Meta(e) => e.exit_code(),
            Error::Refs(e) => e.exit_code(),
            Error::Revparse(e) => e.exit_code(),
            Error::Fsck(e) => e.exit_code(),
            Error::Config(e) => e.exit_code(),
            Error::Image(e) => e.exit_code(),
            Error::Env(e) => e.exit_code(),
            Error::Drift(e) => e.exit_code(),
            Error::Build(e) => e.exit_code(),
            Error::Prune(e) => e.exit_code(),
            Error::Care(e) => e.exit_code(),
            Error::Sandbox(_) => exit::SANDBOX,
            Error::Schema(e) => e.exit_code(),
            Error::Pack(e) => e.exit_code(),
            Error::Remote(e) => e.exit_code(),
            Error::App(e) => e.exit_code(),
        }
    }

    /// Wraps an io error on a store path.
    pub fn store(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let wrap = crate::store::Error::store(op, path);
        move |source| Error::Store(wrap(source))
    }

    /// Wraps an io error on a path the user gave.
    pub fn input(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let wrap = crate::store::Error::input(op, path);
        move |source| Error::Store(wrap(source))
    }
}

macro_rules! refusal {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$v(e.into())
            }
        }
    )*};
}
refusal!(crate::image::ImageError => Image, crate::env::EnvError => Env, crate::drift::DriftError => Drift, crate::build::BuildError => Build);

pub type Result<T, E = Error> = std::result::Result<T, E>;
