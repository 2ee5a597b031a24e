use std::path::PathBuf;

use kp_plumbing::{lexopt, usage, utf8, Common, Result};

const USAGE: &str = "\
usage: kp-send-pack [--store PATH] [--token-file F] REMOTE REV REF

Sends a server what it lacks of everything REV reaches (asking top-down which
objects it lacks, docs/protocol.md), as one pack, then points the server's REF
at REV, compare-and-swapped from the value the server listed. REMOTE is a URL
or a configured remote's name. Prints `OBJECTS BYTES MOVED`: objects and pack
bytes sent, and 1 when the ref moved (0: it named REV already).

Exit status: 0 sent; 1 refused (401/403, a conflict: the ref moved meanwhile,
a bad pack) or unreachable; 3 a local object is missing or damaged.
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut token_file: Option<PathBuf> = None;
    let mut args = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Long("token-file") => token_file = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Value(v) => args.push(utf8(v, "argument")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let [remote, rev, refname] = &args[..] else {
        return usage("expected REMOTE REV REF");
    };
    let store = common.open_store()?;
    let root = libkp::revparse::resolve(&store, rev)?;
    let cfg = libkp::remote::config::from_arg(Some(remote), token_file.as_deref())?;
    let remote = libkp::remote::Remote::open(&cfg)?;
    let (objects, bytes, moved) = libkp::remote::send(&store, &remote, root, refname)?;
    println!("{objects} {bytes} {}", moved as u8);
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-send-pack", USAGE, run)
}
