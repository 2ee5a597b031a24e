use std::io::{self, IsTerminal};

use kp_plumbing::{lexopt, usage, utf8, Common, Result};

const USAGE: &str = "\
usage: kp-pack-objects [--store PATH] REV... [--not REV...]

Writes a pack (docs/pack-format.md) of every object the REVs (ids, unique
prefixes, refs) reach to standard output, leaving out what the REVs after
--not reach. A pack is zstd-compressed and names each object by its id, so
kp-unpack-objects verifies every one.

Exit status: 0 written; 1 an object is missing or damaged; 64 usage (also
when standard output is a terminal).
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut revs = Vec::new();
    let mut nots = Vec::new();
    let mut not = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Long("not") => not = true,
            Value(v) if not => nots.push(utf8(v, "REV")?),
            Value(v) => revs.push(utf8(v, "REV")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if revs.is_empty() {
        return usage("missing REV");
    }
    if io::stdout().is_terminal() {
        return usage("standard output is a terminal; redirect the pack to a file or a pipe");
    }
    let store = common.open_store()?;
    let resolve =
        |revs: &[String]| -> Result<Vec<_>> { revs.iter().map(|r| Ok(libkp::revparse::resolve(&store, r)?)).collect() };
    let objects = libkp::pack::objects_for(&store, &resolve(&revs)?, &resolve(&nots)?)?;
    libkp::pack::write_pack(&store, &objects, io::stdout().lock())?;
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-pack-objects", USAGE, run)
}
