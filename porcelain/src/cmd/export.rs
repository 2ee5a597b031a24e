use std::path::PathBuf;

use libkp::drift::{ExportFormat, ExportOptions};

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
Exports ENV's drift (its writable layer: what was added, changed, deleted or
replaced) or, with --full, its whole merged filesystem. DEST ending in .tar is
written as a tar file (replaced atomically if it exists); anything else is a
directory, which must not exist or be empty.

A tar is deterministic: entries in path order (a directory before what it
holds), mtime 0, numeric owners as the environment sees them, no user or group
names, xattrs as PAX SCHILY.xattr records. Names and symlink targets are
exact, byte for byte (longer than 100 bytes: PAX path/linkpath records). In a drift tar a deletion is an
empty `.wh.NAME` and a replaced directory holds an empty `.wh..wh..opq` (OCI
layer conventions); a drift directory has overlayfs whiteouts and opaque
xattrs, as `kp-checkout-layer` writes them.

Options:
  --full   the merged filesystem (layers and writable layer), not the drift

--json: {\"env_id\", \"dest\", \"format\": \"dir\"|\"tar\", \"full\", \"tree\", \"entries\"}.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let mut full = false;
    let mut args = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("full") => full = true,
            Value(v) if args.len() < 2 => args.push(v),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let [env, dest] = <[std::ffi::OsString; 2]>::try_from(args)
        .map_err(|_| Fail::Usage("expected ENV and DEST (a directory, or FILE.tar)".into()))?;
    let dest = PathBuf::from(dest);
    let format = ExportFormat::for_path(&dest);
    let store = ctx.store();
    let rec = store.find_env(&env.to_string_lossy())?;
    let r = libkp::drift::export(store, &rec, &dest, &ExportOptions { full, format })?;
    for w in &r.warnings {
        eprintln!("karapace export: {w}");
    }
    let tree = r.tree.map(|t| t.to_hex()).unwrap_or_default();
    let word = if format == ExportFormat::Tar { "tar" } else { "dir" };
    if ctx.globals.json {
        print_json(&serde_json::json!({
            "env_id": rec.env_id,
            "dest": dest,
            "format": word,
            "full": full,
            "tree": tree,
            "entries": r.entries,
        }))?;
    } else {
        let what = if full { "filesystem" } else { "drift" };
        println!(
            "exported the {what} of {} to {} ({word})",
            rec.display_name(),
            dest.display()
        );
    }
    Ok(0)
}
