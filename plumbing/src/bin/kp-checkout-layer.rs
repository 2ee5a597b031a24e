use std::path::PathBuf;

use kp_plumbing::{lexopt, usage, utf8, Common, Result};
use libkp::layer::{checkout_tree, CheckoutOptions};

const USAGE: &str = "\
usage: kp-checkout-layer [--copy] [--stats] [--store PATH] REV DIR

Materialises a layer (or tree) into DIR, which must not exist or be empty.
Files are hardlinked from the store (no file data is added), or copied where a
link is impossible. Modes, symlinks, fifos and xattrs are reproduced; ownership
and device nodes when running with the privilege to create them. Whiteouts and
opaque directories are written in overlayfs's format.

Hardlinked files share their inode with the store: do not modify them in place
(mount the checkout as an overlay lower layer, or use --copy).

  --copy    copy every file instead of hardlinking
  --stats   print counts on stderr
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut opts = CheckoutOptions::default();
    let mut stats = false;
    let mut rev = None;
    let mut dir: Option<PathBuf> = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Long("copy") => opts.copy = true,
            Long("stats") => stats = true,
            Value(v) if rev.is_none() => rev = Some(utf8(v, "REV")?),
            Value(v) if dir.is_none() => dir = Some(v.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let (Some(rev), Some(dir)) = (rev, dir) else {
        return usage("expected REV and DIR");
    };
    let store = common.open_store()?;
    let (tree, root) = libkp::revparse::resolve_tree(&store, &rev)?;
    let report = checkout_tree(&store, &tree, root, &dir, &opts)?;
    for w in &report.warnings {
        eprintln!("kp-checkout-layer: warning: {w}");
    }
    if stats {
        eprintln!(
            "files {} linked {} copied {}",
            report.files, report.linked, report.copied
        );
    }
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-checkout-layer", USAGE, run)
}
