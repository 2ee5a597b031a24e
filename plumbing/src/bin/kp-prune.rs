use std::io::{self, Write};
use std::time::Duration;

use kp_plumbing::{lexopt, utf8, Common, Fail, Result};
use libkp::prune::{prune, PruneOptions};

const USAGE: &str = "\
usage: kp-prune [-n | --dry-run] [--expire SECONDS] [--store PATH]

Removes every object that no ref reaches, printing `ID KIND` for each, in id
order; a dry run prints the same lines and removes nothing. Leftover temporary
files and checkout variants of removed blobs are cleaned too. Waits for running
writers to finish, and blocks new ones while it runs.

  -n, --dry-run       only list what would be removed
  --expire SECONDS    keep unreachable objects younger than this (default 0)
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut opts = PruneOptions::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Short('n') | Long("dry-run") => opts.dry_run = true,
            Long("expire") => {
                let v = utf8(p.value()?, "--expire")?;
                let secs = v
                    .parse()
                    .map_err(|_| Fail::Usage(format!("--expire {v:?}: expected seconds")))?;
                opts.expire = Duration::from_secs(secs);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let store = common.open_store()?;
    let report = prune(&store, &[], &opts)?;
    let mut out = io::stdout().lock();
    for o in &report.removed {
        writeln!(out, "{} {}", o.id, o.kind)?;
    }
    let verb = if opts.dry_run { "would remove" } else { "removed" };
    eprintln!("{verb} {} objects ({} bytes)", report.removed.len(), report.bytes);
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-prune", USAGE, run)
}
