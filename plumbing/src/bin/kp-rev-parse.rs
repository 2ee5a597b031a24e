use std::io::{self, Write};

use kp_plumbing::{lexopt, usage, utf8, Common, Fail, Result};

const USAGE: &str = "\
usage: kp-rev-parse [--kind] [--short[=N]] [--store PATH] REV...

Prints the full id of each REV, one per line:

  <64 hex>      an object id            refs/NAME    a ref by full name
  <4+ hex>      a unique id prefix      NAME         refs/NAME, refs/tags/NAME,
  REV^{tree}    a layer's root tree                  refs/images/NAME, refs/envs/NAME
  REV:PATH      the tree or blob at PATH inside a layer or tree

  --kind        print `ID KIND` (blob, tree or layer)
  --short[=N]   print the first N hex digits (default 12)
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut kind = false;
    let mut short = None;
    let mut revs = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Long("kind") => kind = true,
            Long("short") => {
                let n = match p.optional_value() {
                    Some(v) => utf8(v, "--short")?
                        .parse()
                        .map_err(|_| Fail::Usage("--short=N takes a number".into()))?,
                    None => 12,
                };
                if !(4..=64).contains(&n) {
                    return usage("--short=N takes 4 to 64");
                }
                short = Some(n);
            }
            Value(v) => revs.push(utf8(v, "REV")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if revs.is_empty() {
        return usage("missing REV");
    }
    let store = common.open_store()?;
    let mut out = io::stdout().lock();
    for rev in &revs {
        let (k, id) = libkp::revparse::resolve(&store, rev)?;
        let shown = match short {
            Some(n) => id.short(n),
            None => id.to_hex(),
        };
        if kind {
            writeln!(out, "{shown} {k}")?;
        } else {
            writeln!(out, "{shown}")?;
        }
    }
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-rev-parse", USAGE, run)
}
