use std::io::{self, Write};

use kp_plumbing::{lexopt, utf8, Common, Result};

const USAGE: &str = "\
usage: kp-show-ref [--verify] [--store PATH] [PATTERN...]

Lists refs as `ID NAME`, sorted by name. A PATTERN matches a ref whose full name
is PATTERN or ends with /PATTERN. With --verify each PATTERN must be a full ref
name that exists.

Exit status: 0 when something was shown, 1 when nothing matched.
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut verify = false;
    let mut patterns = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Long("verify") => verify = true,
            Value(v) => patterns.push(utf8(v, "PATTERN")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let store = common.open_store()?;
    let mut out = io::stdout().lock();
    let mut shown = 0;
    if verify {
        for name in &patterns {
            match store.read_ref(name)? {
                Some(id) => {
                    writeln!(out, "{id} {name}")?;
                    shown += 1;
                }
                None => {
                    eprintln!("kp-show-ref: {name}: no such ref");
                    return Ok(1);
                }
            }
        }
    } else {
        for (name, id) in store.list_refs("refs/")? {
            let hit = patterns.is_empty() || patterns.iter().any(|p| name == *p || name.ends_with(&format!("/{p}")));
            if hit {
                writeln!(out, "{id} {name}")?;
                shown += 1;
            }
        }
    }
    Ok(if shown == 0 { 1 } else { 0 })
}

fn main() {
    kp_plumbing::main("kp-show-ref", USAGE, run)
}
