use std::io::{self, Write};
use std::path::PathBuf;

use kp_plumbing::{lexopt, utf8, Result};

const USAGE: &str = "\
usage: kp-ls-remote [--token-file F] [REMOTE]

Lists a server's refs as `ID NAME`, sorted by name (GET /v1/refs,
docs/protocol.md). REMOTE is a URL or a remote's name in the configuration
(`karapace remote add`); without it, the default remote.

Exit status: 0 listed; 1 the server refused or could not be reached.
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut remote = None;
    let mut token_file: Option<PathBuf> = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("token-file") => token_file = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Value(v) if remote.is_none() => remote = Some(utf8(v, "REMOTE")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let cfg = libkp::remote::config::from_arg(remote.as_deref(), token_file.as_deref())?;
    let remote = libkp::remote::Remote::open(&cfg)?;
    let mut out = io::stdout().lock();
    for (name, id) in remote.ls_refs()? {
        writeln!(out, "{id} {name}")?;
    }
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-ls-remote", USAGE, run)
}
