//! Store care: garbage collection that protects every environment and stops
//! cleanly on Ctrl-C, a full verification, and the store's format version.

mod doctor;
mod gc;
mod interrupt;
mod migrate;
mod verify;

pub use doctor::{doctor, repair, Check, Repair, RepairContext, Status};
pub use gc::{gc, GcReport};
pub use interrupt::Interrupts;
pub use migrate::{migrate, MigrateReport, CURRENT};
pub use verify::verify_store;

/// What store care returns: its own refusals, or the failure of a module below it,
/// with that module's message (docs/architecture.md, "Errors").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Prune(#[from] crate::prune::Error),
    #[error(transparent)]
    Drift(#[from] crate::drift::Error),
    #[error(transparent)]
    Env(#[from] crate::env::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Fsck(#[from] crate::fsck::Error),
    #[error("sandbox: {0}")]
    Sandbox(#[from] crate::sandbox::Error),
}

impl Error {
    /// The process exit status this failure gives (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Prune(e) => e.exit_code(),
            Error::Drift(e) => e.exit_code(),
            Error::Env(e) => e.exit_code(),
            Error::Store(e) => e.exit_code(),
            Error::Fsck(e) => e.exit_code(),
            Error::Sandbox(_) => crate::exit::SANDBOX,
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
