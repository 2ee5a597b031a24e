use std::path::PathBuf;

use kp_plumbing::{lexopt, usage, utf8, Common, Result};

const USAGE: &str = "\
usage: kp-record-env [--store PATH] LOCK LAYER...

Records the environment a karapace.lock describes as pulled from elsewhere:
its layers (LAYER..., lowest first; the first is the lock's base) must already
be in the store, its record gets origin remote, no manifest and no name. This
is what `karapace pull` will do once it has fetched them. A remote
environment's mounts and host integration apply only once trusted
(`karapace trust`). Prints the env_id.

Exit status: 0 recorded; 1 a LAYER is not in the store, the env_id is already
recorded, or the first LAYER is not the lock's base; 2 LOCK cannot be read or
fails its integrity check. Nothing is written unless it is recorded.
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut lock = None;
    let mut layers = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Value(v) if lock.is_none() => lock = Some(PathBuf::from(v)),
            Value(v) => layers.push(utf8(v, "LAYER")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some(lock) = lock else { return usage("missing LOCK") };
    if layers.is_empty() {
        return usage("missing LAYER (the base layer at least)");
    }
    let store = common.open_store()?;
    let lock = libkp::schema::Lock::load(&lock).map_err(libkp::Error::from)?;
    let layers = layers
        .iter()
        .map(|l| kp_plumbing::resolve_kind(&store, l, libkp::Kind::Layer))
        .collect::<Result<Vec<_>>>()?;
    let rec = libkp::env::record_remote(&store, &lock, &layers)?;
    println!("{}", rec.env_id);
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-record-env", USAGE, run)
}
