//! The service's D-Bus errors (docs/dbus.md, "Errors"): one name per kind of
//! failure, each with the message the library or the `karapace` child gave.

use libkp::env::EnvError;
use libkp::exit;

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.karapace.Error")]
pub enum Error {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// No such environment, snapshot, job or manifest.
    NotFound(String),
    /// The environment is running, or another job of this service holds it.
    Busy(String),
    /// The manifest or its lock is invalid (the child's exit status 2).
    InvalidManifest(String),
    /// A bad argument: a relative path, a bad name, an unknown option.
    InvalidArgument(String),
    /// The name is taken by another environment.
    NameTaken(String),
    /// The environment (or job) is in a state that refuses the operation.
    WrongState(String),
    /// The store is missing, of another version, corrupt or unwritable (3).
    Store(String),
    /// The sandbox was refused or could not start (125).
    Sandbox(String),
    /// The caller runs as another user than the service.
    AccessDenied(String),
    /// The operation was cancelled or interrupted (130).
    Cancelled(String),
    /// Anything else that failed (the child's exit status 1).
    Failed(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error a `karapace` child's exit status stands for (docs/cli.md).
    pub fn from_exit(code: i32, message: String) -> Error {
        match code {
            exit::MANIFEST => Error::InvalidManifest(message),
            exit::STORE => Error::Store(message),
            exit::USAGE => Error::InvalidArgument(message),
            exit::SANDBOX => Error::Sandbox(message),
            130 => Error::Cancelled(message),
            _ => Error::Failed(message),
        }
    }

    /// The D-Bus name, for job results.
    pub fn dbus_name(&self) -> String {
        zbus::DBusError::name(self).to_string()
    }

    pub fn message(&self) -> String {
        zbus::DBusError::description(self).unwrap_or_default().to_string()
    }
}

impl From<EnvError> for Error {
    fn from(e: EnvError) -> Self {
        let m = e.to_string();
        match e {
            EnvError::NotFound(_) => Error::NotFound(m),
            EnvError::Ambiguous { .. } | EnvError::BadName(_) => Error::InvalidArgument(m),
            EnvError::NameTaken { .. } => Error::NameTaken(m),
            EnvError::WrongState { .. } => Error::WrongState(m),
            EnvError::Running { .. } => Error::Busy(m),
            EnvError::Backend { .. } => Error::Failed(m),
        }
    }
}

impl From<libkp::env::Error> for Error {
    fn from(e: libkp::env::Error) -> Self {
        match e {
            libkp::env::Error::Env(e) => e.into(),
            libkp::env::Error::Store(e) => Error::Store(e.to_string()),
            libkp::env::Error::Layer(e) => Error::Store(e.to_string()),
            libkp::env::Error::Meta(e) => Error::Store(e.to_string()),
            libkp::env::Error::Config(e) => Error::Failed(e.to_string()),
            libkp::env::Error::Sandbox(e) => Error::Sandbox(e.to_string()),
            libkp::env::Error::Schema(e) => Error::InvalidManifest(e.to_string()),
        }
    }
}

impl From<libkp::store::Error> for Error {
    fn from(e: libkp::store::Error) -> Self {
        Error::Store(e.to_string())
    }
}
