//! Global options, dispatch through the command table, and errors to exit codes.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use libkp::error::exit;
use libkp::log::{self, Level};
use libkp::Store;

use crate::table::{self, Command};

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
}

/// What a verb gets: the global options and, if its table entry asks, the store.
pub struct Ctx {
    pub globals: Globals,
    store: Option<Store>,
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

/// Splits global flags out of `args`, leaving the verb and its own arguments.
fn take_globals(args: Vec<OsString>) -> std::result::Result<(Globals, Vec<OsString>), String> {
    let mut g = Globals::default();
    let mut rest = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let Some(s) = a.to_str() else {
            rest.push(a);
            continue;
        };
        match s {
            "--" => {
                rest.push(a);
                rest.extend(it.by_ref());
                break;
            }
            "--json" => g.json = true,
            "-v" | "--verbose" => g.verbose = g.verbose.saturating_add(1),
            "-vv" => g.verbose = g.verbose.saturating_add(2),
            "--trace" => g.trace = true,
            "--store" => match it.next() {
                Some(v) => g.store = Some(PathBuf::from(v)),
                None => return Err("option '--store' requires a value".into()),
            },
            _ if s.starts_with("--store=") => g.store = Some(PathBuf::from(&s["--store=".len()..])),
            _ => rest.push(a),
        }
    }
    Ok((g, rest))
}

fn log_level(g: &Globals) -> std::result::Result<Level, String> {
    if let Some(v) = std::env::var_os("KARAPACE_LOG").filter(|v| !v.is_empty()) {
        let v = v.to_string_lossy();
        return v
            .parse()
            .map_err(|_| format!("KARAPACE_LOG={v:?}: expected error, warn, info, debug or trace"));
    }
    Ok(match (g.trace, g.verbose) {
        (true, _) => Level::Trace,
        (false, 0) => Level::Warn,
        (false, 1) => Level::Info,
        (false, _) => Level::Debug,
    })
}

pub fn run(args: Vec<OsString>) -> i32 {
    let (globals, mut rest) = match take_globals(args) {
        Ok(x) => x,
        Err(msg) => {
            eprintln!("karapace: {msg}");
            return exit::USAGE;
        }
    };
    match log_level(&globals) {
        Ok(level) => log::set_level(level),
        Err(msg) => {
            eprintln!("karapace: {msg}");
            return exit::USAGE;
        }
    }
    if rest.is_empty() {
        eprint!("{}", table::overview());
        return exit::USAGE;
    }
    let verb = rest.remove(0);
    let verb = verb.to_string_lossy().into_owned();
    let verb = match verb.as_str() {
        "--version" | "-V" => "version",
        "--help" | "-h" => "help",
        v => v,
    };
    let Some(cmd) = table::find(verb) else {
        eprintln!("karapace: '{verb}' is not a karapace command. See 'karapace help'.");
        return exit::USAGE;
    };
    finish(cmd, dispatch(cmd, globals, rest))
}

fn dispatch(cmd: &Command, globals: Globals, args: Vec<OsString>) -> Result {
    if args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-h" || a == "--help")
    {
        print!("{}", table::usage(cmd));
        return Ok(exit::OK);
    }
    if cmd.mapped {
        if let Some(code) = rerun_mapped() {
            return Ok(code);
        }
    }
    let mut ctx = Ctx { globals, store: None };
    if cmd.needs_store {
        let path = ctx.store_path()?;
        ctx.store = Some(Store::open(&path)?);
    }
    (cmd.run)(&mut ctx, lexopt::Parser::from_args(args))
}

/// For a rootless caller with a subordinate range, runs the whole command
/// again as root of a user namespace mapped like the sandbox, and gives its
/// exit status; `None` means run it here (root, no range, or already there).
fn rerun_mapped() -> Option<i32> {
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

fn finish(cmd: &Command, r: Result) -> i32 {
    let _ = io::stdout().flush();
    match r {
        Ok(code) => code,
        Err(Fail::Usage(msg)) => {
            eprintln!("karapace {}: {msg}", cmd.name);
            eprint!("{}", table::usage(cmd));
            exit::USAGE
        }
        Err(Fail::Lib(e)) => {
            eprintln!("karapace: error: {e}");
            e.exit_code()
        }
        Err(Fail::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(Fail::Output(e)) => {
            eprintln!("karapace: error: writing output: {e}");
            exit::FAILURE
        }
        Err(Fail::Exit(code)) => code,
    }
}

/// Prints a JSON value on one line (what `--json` promises: one document).
pub fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn globals_anywhere_before_double_dash() {
        let (g, rest) = take_globals(os(&["--json", "init", "--store", "/s", "-v", "--", "--json"])).unwrap();
        assert!(g.json);
        assert_eq!(g.store, Some(PathBuf::from("/s")));
        assert_eq!(g.verbose, 1);
        assert_eq!(rest, os(&["init", "--", "--json"]));
        assert!(take_globals(os(&["--store"])).is_err());
    }
}
