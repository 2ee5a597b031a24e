use std::io::{self, Write};

use kp_plumbing::{lexopt, usage, utf8, Common, Result};
use libkp::layer::{format_entry, walk_tree, Visit};

const USAGE: &str = "\
usage: kp-ls-layer [-r] [-l] [-z] [--store PATH] REV [PATH]

Lists the entries of a layer or tree (or of PATH inside it), one per line:

  MODE TYPE OBJECT<TAB>NAME
  MODE TYPE OBJECT UID:GID SIZE<TAB>NAME[ -> TARGET]     (with -l)

MODE is the octal st_mode, TYPE one of file dir symlink whiteout fifo chardev
blockdev, OBJECT the blob or tree id (- for other types). Odd names are quoted
C-style unless -z.

  -r   recurse into directories (names become paths)
  -l   long format: owner, size (major,minor for devices) and symlink targets
  -z   end lines with NUL and do not quote names
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let (mut recurse, mut long, mut nul) = (false, false, false);
    let mut values = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Short('r') => recurse = true,
            Short('l') => long = true,
            Short('z') => nul = true,
            Value(v) => values.push(utf8(v, "argument")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let rev = match values.as_slice() {
        [rev] => rev.clone(),
        [rev, path] => format!("{rev}:{path}"),
        _ => return usage("expected REV and at most one PATH"),
    };
    let store = common.open_store()?;
    let (tree, _) = libkp::revparse::resolve_tree(&store, &rev)?;
    let mut out = io::stdout().lock();
    let end: &[u8] = if nul { b"\0" } else { b"\n" };
    walk_tree(&store, &tree, b"", &mut |path, e| {
        let mut line = format_entry(path, e, long, !nul);
        line.extend_from_slice(end);
        out.write_all(&line)
            .map_err(|err| libkp::store::Error::input("write", std::path::Path::new("<stdout>"))(err))?;
        Ok(if recurse { Visit::Descend } else { Visit::Skip })
    })?;
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-ls-layer", USAGE, run)
}
