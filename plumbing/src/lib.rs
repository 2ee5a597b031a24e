//! What every `kp-*` command shares: the option loop's common flags, opening the
//! store, and turning errors into the documented messages and exit codes
//! (docs/plumbing.md). Each binary is one small file over one libkp call.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

pub use lexopt;
use libkp::error::exit;
use libkp::{Error, Store};

/// Why a command stopped.
#[derive(Debug)]
pub enum Fail {
    /// The command line is wrong: message, then usage, exit 64.
    Usage(String),
    /// The library refused or failed: message, exit per the error.
    Lib(Error),
    /// Output could not be written (a closed pipe ends the command quietly).
    Output(io::Error),
    /// The command ran and reports failure with this code (message already shown).
    Exit(i32),
}

impl From<lexopt::Error> for Fail {
    fn from(e: lexopt::Error) -> Self {
        Fail::Usage(e.to_string())
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Lib(e)
    }
}

// Each libkp module returns its own error; all of them are a libkp::Error.
macro_rules! lib_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Fail {
            fn from(e: $t) -> Self {
                Fail::Lib(e.into())
            }
        }
    )*};
}
lib_errors!(
    libkp::store::Error,
    libkp::layer::Error,
    libkp::meta::Error,
    libkp::refs::Error,
    libkp::revparse::Error,
    libkp::fsck::Error,
    libkp::config::Error,
    libkp::image::Error,
    libkp::env::Error,
    libkp::drift::Error,
    libkp::build::Error,
    libkp::prune::Error,
    libkp::care::Error,
    libkp::sandbox::Error,
    libkp::pack::Error,
    libkp::remote::Error
);

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Output(e)
    }
}

pub type Result<T = ()> = std::result::Result<T, Fail>;

/// Options every plumbing command takes.
#[derive(Debug, Default)]
pub struct Common {
    pub store: Option<PathBuf>,
}

impl Common {
    /// The store path: `--store`, else `$KARAPACE_STORE`, else the XDG default.
    pub fn store_path(&self) -> Result<PathBuf> {
        Ok(libkp::store::locate(self.store.as_deref())?)
    }

    pub fn open_store(&self) -> Result<Store> {
        Ok(Store::open(&self.store_path()?)?)
    }
}

/// Runs a command's body and exits with its status.
pub fn main(name: &str, usage: &str, body: fn(lexopt::Parser, &str) -> Result<i32>) -> ! {
    let parser = lexopt::Parser::from_env();
    let code = match body(parser, usage) {
        Ok(code) => code,
        Err(Fail::Usage(msg)) => {
            eprintln!("{name}: {msg}");
            eprint!("{usage}");
            exit::USAGE
        }
        Err(Fail::Lib(e)) => {
            eprintln!("{name}: error: {e}");
            e.exit_code()
        }
        Err(Fail::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(Fail::Output(e)) => {
            eprintln!("{name}: error: writing output: {e}");
            exit::FAILURE
        }
        Err(Fail::Exit(code)) => code,
    };
    let _ = io::stdout().flush();
    std::process::exit(code)
}

/// Prints the usage and ends with success, for `-h` and `--help`.
pub fn help<T>(usage: &str) -> Result<T> {
    print!("{usage}");
    Err(Fail::Exit(exit::OK))
}

/// A usage error.
pub fn usage<T>(msg: impl Into<String>) -> Result<T> {
    Err(Fail::Usage(msg.into()))
}

/// A positional argument as a UTF-8 string, or a usage error naming it.
pub fn utf8(value: OsString, what: &str) -> Result<String> {
    value
        .into_string()
        .map_err(|v| Fail::Usage(format!("{what} {v:?} is not valid UTF-8")))
}

/// Resolves a revision and checks its kind.
pub fn resolve_kind(store: &Store, rev: &str, want: libkp::Kind) -> Result<libkp::ObjectId> {
    let (kind, id) = libkp::revparse::resolve(store, rev)?;
    if kind != want {
        return Err(Fail::Lib(
            libkp::store::Error::WrongKind {
                id,
                expected: want,
                actual: kind,
            }
            .into(),
        ));
    }
    Ok(id)
}
