use std::path::PathBuf;

use kp_plumbing::{lexopt, usage, utf8, Common, Fail, Result};
use libkp::layer::{write_dir, write_layer, WriteOptions};
use libkp::Kind;

const USAGE: &str = "\
usage: kp-write-layer [--kind KIND] [--parent REV]... [--provenance KEY=VALUE]...
                      [--tree-only] [--stats] [--store PATH] DIR

Writes the directory DIR into the store and prints the new layer's id (with
--tree-only, the root tree's id; no layer is written). Files, directories,
symlinks, hardlinks (as files sharing one blob), modes, ownership, kept xattrs,
fifos and device nodes are recorded. Overlay whiteouts (character device 0/0,
*.overlay.whiteout files, .wh.NAME) become whiteout entries; directories marked
opaque (*.overlay.opaque=y, .wh..wh..opq) become opaque trees. Sockets are left
out with a warning.

  --kind KIND              base (default), dependency or snapshot
  --parent REV             a layer this one sits on (repeat, lowest first)
  --provenance KEY=VALUE   where the content came from (repeat)
  --stats                  print counts on stderr
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut opts = WriteOptions::default();
    let mut parents = Vec::new();
    let (mut tree_only, mut stats) = (false, false);
    let mut dir: Option<PathBuf> = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Long("kind") => opts.kind = utf8(p.value()?, "--kind")?.parse().map_err(Fail::Usage)?,
            Long("parent") => parents.push(utf8(p.value()?, "--parent")?),
            Long("provenance") => {
                let kv = utf8(p.value()?, "--provenance")?;
                let Some((k, v)) = kv.split_once('=') else {
                    return usage(format!("--provenance {kv:?}: expected KEY=VALUE"));
                };
                opts.provenance.insert(k.to_string(), v.to_string());
            }
            Long("tree-only") => tree_only = true,
            Long("stats") => stats = true,
            Value(v) if dir.is_none() => dir = Some(v.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some(dir) = dir else { return usage("missing DIR") };
    if tree_only && (!parents.is_empty() || !opts.provenance.is_empty()) {
        return usage("--tree-only writes no layer: --parent and --provenance do not apply");
    }
    let store = common.open_store()?;
    for rev in &parents {
        opts.parents.push(kp_plumbing::resolve_kind(&store, rev, Kind::Layer)?);
    }
    let report = if tree_only {
        let _guard = store.write_guard()?;
        write_dir(&store, &dir)?
    } else {
        write_layer(&store, &dir, &opts)?
    };
    for (path, why) in &report.skipped {
        eprintln!("kp-write-layer: warning: {}: {why}", path.display());
    }
    if stats {
        eprintln!("files {} bytes {} dirs {}", report.files, report.bytes, report.dirs);
    }
    println!("{}", report.layer.unwrap_or(report.tree));
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-write-layer", USAGE, run)
}
