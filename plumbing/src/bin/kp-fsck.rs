use std::io::{self, Write};

use kp_plumbing::{lexopt, Common, Result};

const USAGE: &str = "\
usage: kp-fsck [--store PATH]

Re-hashes every object, parses every tree and layer, checks that every object
they name is present with the right kind, that every ref points into the store,
and that every metadata file's checksum holds. Prints one line per problem on
stdout (`bad KIND ID (PATH): why`, `missing KIND ID, named by KIND ID`,
`broken ref NAME: ...`, `corrupt metadata PATH: ...`, `stray file PATH`) and a
summary on stderr.

Exit status: 0 when the store is sound, 1 when problems were found, 3 when the
store cannot be read at all.
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let store = common.open_store()?;
    let report = libkp::fsck::fsck(&store)?;
    let mut out = io::stdout().lock();
    for problem in &report.problems {
        writeln!(out, "{problem}")?;
    }
    eprintln!(
        "checked {} objects ({} bytes): {} problem(s)",
        report.objects,
        report.bytes,
        report.problems.len()
    );
    Ok(if report.ok() { 0 } else { 1 })
}

fn main() {
    kp_plumbing::main("kp-fsck", USAGE, run)
}
