//! Global options, dispatch through the command table, and errors to exit codes.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use libkp::error::exit;
use libkp::log::{self, Level};
use libkp::Store;

use crate::ctx::{Ctx, Fail, Globals, Result};
use crate::table::{self, Command};

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
            "--progress-fd" => {
                let v = it.next().ok_or("option '--progress-fd' requires a value")?;
                let v = v.to_string_lossy();
                match v.parse::<i32>() {
                    Ok(n) if n >= 3 => g.progress_fd = Some(n),
                    _ => return Err(format!("--progress-fd {v:?}: expected a descriptor number, 3 or more")),
                }
            }
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
        if let Some(code) = crate::ctx::rerun_mapped() {
            return Ok(code);
        }
    }
    // Taken here, not before a re-run: the re-run process inherits it.
    if let Some(fd) = globals.progress_fd {
        if let Err(e) = libkp::progress::take_fd(fd) {
            eprintln!("karapace: --progress-fd {fd}: {e}");
            return Err(Fail::Exit(exit::USAGE));
        }
    }
    let mut ctx = Ctx { globals, store: None };
    if cmd.needs_store {
        let path = ctx.store_path()?;
        ctx.store = Some(Store::open(&path)?);
    }
    (cmd.run)(&mut ctx, lexopt::Parser::from_args(args))
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
