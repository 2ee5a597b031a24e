//! What every verb shares, below both the dispatcher (cli.rs) and the verbs
//! (cmd/*): the context a verb gets, why it stopped, and JSON output.

use std::io::{self, Write};
use std::path::PathBuf;

use libkp::Store;

/// Why a verb stopped.
#[derive(Debug)]
pub enum Fail {
    Usage(String),
    Lib(libkp::Error),
    Output(io::Error),
    /// Already reported; exit with this code.
    #[allow(dead_code)] // for verbs that report their own failure (pin --check, …)
    Exit(i32),
}

impl From<lexopt::Error> for Fail {
    fn from(e: lexopt::Error) -> Self {
        Fail::Usage(e.to_string())
    }
}

impl From<libkp::Error> for Fail {
    fn from(e: libkp::Error) -> Self {
        Fail::Lib(e)
    }
}

impl From<libkp::schema::Error> for Fail {
    fn from(e: libkp::schema::Error) -> Self {
        Fail::Lib(e.into())
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
    libkp::remote::Error,
    libkp::app::Error
);

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Output(e)
    }
}

pub type Result<T = i32> = std::result::Result<T, Fail>;

/// Global options, parsed before the verb runs.
#[derive(Debug, Default)]
pub struct Globals {
    pub store: Option<PathBuf>,
    pub json: bool,
    pub verbose: u8,
    pub trace: bool,
    /// `--progress-fd N`: the descriptor for the progress stream.
    pub progress_fd: Option<i32>,
}

/// What a verb gets: the global options and, if its table entry asks, the store.
pub struct Ctx {
    pub globals: Globals,
    pub(crate) store: Option<Store>,
}

impl Ctx {
    /// The store opened for this verb (verbs whose entry says `needs_store`).
    pub fn store(&self) -> &Store {
        self.store
            .as_ref()
            .expect("the command table opens the store for this verb")
    }

    /// The store, opened now if the table did not (verbs that only sometimes
    /// need it).
    pub fn open_store(&mut self) -> Result<&Store> {
        if self.store.is_none() {
            self.store = Some(Store::open(&self.store_path()?)?);
        }
        Ok(self.store())
    }

    /// For verbs that write into the store: created if it does not exist yet.
    pub fn create_store(&mut self) -> Result<&Store> {
        if self.store.is_none() {
            self.store = Some(Store::init(&self.store_path()?)?.0);
        }
        Ok(self.store())
    }

    /// Where the store is or would be.
    pub fn store_path(&self) -> Result<PathBuf> {
        Ok(libkp::store::locate(self.globals.store.as_deref())?)
    }
}

/// For a rootless caller with a subordinate range, runs the whole command
/// again as root of a user namespace mapped like the sandbox, and gives its
/// exit status; `None` means run it here (root, no range, or already there).
pub fn rerun_mapped() -> Option<i32> {
    use libkp::sandbox::{idmap, rerun, HostFacts, MapVia, UidMapMode};
    if rerun::is_rerun() {
        return None;
    }
    let host = HostFacts::current();
    if host.uid == 0 {
        return None;
    }
    match idmap::choose(UidMapMode::Auto, &host) {
        Ok(map) if map.via == MapVia::Helper => match rerun::rerun_mapped(&map) {
            Ok(code) => Some(code),
            // A range the helpers refuse (a stale /etc/subuid entry): what the
            // user owns still works from here.
            Err(e) => {
                libkp::log!(
                    libkp::log::Level::Warn,
                    "cannot run mapped ({e}); running as the user alone"
                );
                None
            }
        },
        _ => None,
    }
}

/// Prints a JSON value on one line (what `--json` promises: one document).
pub fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(())
}
