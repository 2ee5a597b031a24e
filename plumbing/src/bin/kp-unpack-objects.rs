use std::io;

use kp_plumbing::{lexopt, Common, Result};

const USAGE: &str = "\
usage: kp-unpack-objects [--store PATH]

Reads a pack (docs/pack-format.md) from standard input into the store. Every
object is hashed against its id (and trees, layers and environments parsed)
in a quarantine directory under tmp/; the objects are published only when the
whole pack is read and everything they name is in the pack or the store. A
truncated, damaged or lying pack publishes nothing. Prints `OBJECTS NEW`: the
objects the pack held and how many of them the store lacked.

Exit status: 0 unpacked; 1 the pack is bad (nothing stored); 3 the store failed.
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
    let mut q = libkp::pack::Quarantine::new(&store)?;
    q.add_pack(io::stdin().lock())?;
    let stats = q.publish()?;
    println!("{} {}", stats.objects, stats.objects - stats.present);
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-unpack-objects", USAGE, run)
}
