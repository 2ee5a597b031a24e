use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use libkp::image::StoreImages;
use libkp::schema::{self, manifest, pin};

use crate::ctx::{print_json, Ctx, Result};

pub const HELP: &str = "\
Rewrites base.image in MANIFEST (default ./karapace.toml; a directory means its
karapace.toml) to its pinned form REF@blake3:DIGEST, atomically, changing nothing
else in the file: comments and layout stay as they were. An already pinned
reference is left alone.

The image is resolved and imported into the store (docs/images.md) to learn its
digest: a distribution release becomes the exact build's URL with its sha256
(`URL#sha256=HEX@blake3:DIGEST`), a URL gains its checksum, a local path or an
imported name keeps its text. A reference that cannot be resolved is an error,
and the file is not touched.

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
    let store = ctx.create_store()?.clone();
    let images = StoreImages {
        store: &store,
        config: libkp::image::Config::load()?,
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        progress: std::io::stderr().is_terminal(),
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
