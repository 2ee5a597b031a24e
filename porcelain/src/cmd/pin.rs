use std::path::PathBuf;

use libkp::schema::{self, manifest, pin, KnownImages};

use crate::cli::{print_json, Ctx, Result};

pub const HELP: &str = "\
Rewrites base.image in MANIFEST (default ./karapace.toml; a directory means its
karapace.toml) to its pinned form REF@blake3:DIGEST, atomically, changing nothing
else in the file: comments and layout stay as they were. An already pinned
reference is left alone.

This build resolves images offline only: the digest must already be known from
the karapace.lock beside the manifest (see `kp-resolve`). A reference it cannot
resolve is an error, and the file is not touched.

Options:
  --check   change nothing; succeed if base.image is pinned, else exit 1

Exit status: 0 pinned; 1 not pinned (--check) or cannot resolve; 2 invalid
manifest or lock; 64 usage.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let (mut file, mut check) = (None::<PathBuf>, false);
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Long("check") => check = true,
            lexopt::Arg::Value(v) if file.is_none() => file = Some(v.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let path = schema::manifest_path(file.as_deref());
    if check {
        let m = manifest::load(&path)?;
        let pinned = m.base.digest.is_some();
        if ctx.globals.json {
            print_json(&serde_json::json!({"manifest": path, "image": m.base.to_string(), "pinned": pinned}))?;
        } else if pinned {
            println!("{}: base.image is pinned: {}", path.display(), m.base);
        }
        pin::check(&m)?;
        return Ok(0);
    }
    let previous = schema::existing_lock(&path)?;
    let images = KnownImages {
        explicit: None,
        previous: previous.map(|l| l.base),
    };
    let outcome = pin::pin(&path, &images)?;
    let (image, changed) = match &outcome {
        pin::Pinned::Already(r) => (r, false),
        pin::Pinned::Rewritten { to, .. } => (to, true),
    };
    if ctx.globals.json {
        print_json(&serde_json::json!({"manifest": path, "image": image.to_string(), "changed": changed}))?;
    } else if changed {
        println!("{}: pinned base.image to {image}", path.display());
    } else {
        println!("{}: base.image is already pinned: {image}", path.display());
    }
    Ok(0)
}
