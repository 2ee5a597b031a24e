use std::io::{self, Write};

use kp_plumbing::{lexopt, usage, utf8, Common, Result};
use libkp::layer::{diff_trees, quote_path};
use libkp::{ObjectId, Store};

const USAGE: &str = "\
usage: kp-diff-layer [-z] [--exit-code] [--store PATH] A B

Compares two layers (or trees) and prints one line per differing path, in path
order: a status letter, a TAB, the path.

  A  added in B        D  deleted in B
  M  modified (content, mode, owner, xattrs, target, opaque flag)
  T  type changed (file to directory, entry to whiteout, ...)

An added or deleted directory is followed by everything below it. The root
directory's own changes are shown as the path /.

  -z           end lines with NUL and do not quote paths
  --exit-code  exit 1 when there are differences
";

fn tree_of(store: &Store, rev: &str) -> Result<ObjectId> {
    Ok(libkp::revparse::resolve_tree(store, rev)?.0)
}

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let (mut nul, mut exit_code) = (false, false);
    let mut revs = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Short('z') => nul = true,
            Long("exit-code") => exit_code = true,
            Value(v) => revs.push(utf8(v, "REV")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let [a, b] = revs.as_slice() else {
        return usage("expected two revisions A and B");
    };
    let store = common.open_store()?;
    let changes = diff_trees(&store, &tree_of(&store, a)?, &tree_of(&store, b)?)?;
    let mut out = io::stdout().lock();
    for c in &changes {
        write!(out, "{}\t", c.status.letter())?;
        if nul {
            out.write_all(&c.path)?;
            out.write_all(b"\0")?;
        } else {
            writeln!(out, "{}", quote_path(&c.path))?;
        }
    }
    Ok(if exit_code && !changes.is_empty() { 1 } else { 0 })
}

fn main() {
    kp_plumbing::main("kp-diff-layer", USAGE, run)
}
