//! `karapace image import SOURCE [NAME]`, `image list`, `image rm NAME...`.

use std::ffi::OsString;

use libkp::image::{self, Config, ImageInfo, ImportOptions};

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
Subcommands:
  import SOURCE [NAME]   import a base image and name it (default name: derived
                         from SOURCE, e.g. debian/bookworm, or rootfs for
                         .../rootfs.tar.xz); prints its digest
      --insecure-registry HOST   plain http to this OCI registry (host or
                         host:port; loopback registries always are)
  list                   the imported images
  rm NAME...             forget images (their layers go at the next gc unless
                         something else uses them)

SOURCE is a distribution release looked up on the image servers (debian/bookworm,
debian/trixie, ubuntu/24.04 or ubuntu/noble, ubuntu/22.04, fedora/41, fedora/42,
opensuse/tumbleweed, opensuse/leap, archlinux), an http(s) URL of a rootfs tarball
(kept exactly as written; URL#sha256=HEX pins its checksum), an image in an OCI
registry (oci://REGISTRY/REPO:TAG, oci://...@sha256:HEX, docker://...), a local
tarball (plain, gzip, xz or zstd) or directory, or the name of an imported image.
Image servers: [images] servers in ~/.config/karapace/config.toml, or
KARAPACE_IMAGE_SERVER. See docs/images.md and docs/oci.md.

Exit codes: 0 done, 1 the image could not be resolved, fetched or imported (or
no such image), 3 store error, 64 usage.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let Some(sub) = p.next()? else {
        return Err(Fail::Usage("missing subcommand: import, list or rm".into()));
    };
    let mut args: Vec<OsString> = Vec::new();
    let mut insecure = Vec::new();
    let sub = match sub {
        lexopt::Arg::Value(v) => v.to_string_lossy().into_owned(),
        other => return Err(other.unexpected().into()),
    };
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Value(v) => args.push(v),
            lexopt::Arg::Long("insecure-registry") if sub == "import" => insecure.push(
                p.value()?
                    .into_string()
                    .map_err(|a| Fail::Usage(format!("{a:?} is not valid UTF-8")))?,
            ),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| Fail::Usage(format!("{a:?} is not valid UTF-8")))
        })
        .collect::<std::result::Result<_, _>>()?;
    match sub.as_str() {
        "import" => import(ctx, &args, insecure),
        "list" | "ls" if args.is_empty() => list(ctx),
        "rm" | "remove" if !args.is_empty() => rm(ctx, &args),
        "list" | "ls" => Err(Fail::Usage("image list takes no arguments".into())),
        "rm" | "remove" => Err(Fail::Usage("image rm needs at least one NAME".into())),
        other => Err(Fail::Usage(format!(
            "unknown subcommand {other:?}: expected import, list or rm"
        ))),
    }
}

fn import(ctx: &mut Ctx, args: &[String], insecure: Vec<String>) -> Result {
    let (source, name) = match args {
        [s] => (s, None),
        [s, n] => (s, Some(n.clone())),
        _ => return Err(Fail::Usage("image import takes SOURCE and an optional NAME".into())),
    };
    let mut config = Config::load()?;
    config.insecure_registries.extend(insecure);
    let opts = ImportOptions {
        name,
        progress: !ctx.globals.json,
        config,
    };
    libkp::progress::plan(&["image"]);
    libkp::progress::phase("image");
    let done = image::import(ctx.create_store()?, source, &opts)?;
    if ctx.globals.json {
        let mut v = serde_json::to_value(&done.info).map_err(std::io::Error::from)?;
        v["reused"] = done.reused.into();
        print_json(&v)?;
    } else {
        let how = if done.reused {
            "already in the store"
        } else {
            "imported"
        };
        println!("{} {} ({how})", done.name, done.digest);
    }
    Ok(0)
}

fn list(ctx: &mut Ctx) -> Result {
    let images = image::list(ctx.open_store()?)?;
    if ctx.globals.json {
        let v = serde_json::to_value(&images).map_err(std::io::Error::from)?;
        print_json(&serde_json::json!({ "images": v }))?;
        return Ok(0);
    }
    let width = images.iter().map(|i| i.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:width$}  {:12}  {:>9}  {:20}  SOURCE",
        "NAME", "DIGEST", "SIZE", "IMPORTED"
    );
    for i in &images {
        println!(
            "{:width$}  {:12}  {:>9}  {:20}  {}",
            i.name,
            i.digest.short(12),
            i.bytes.map_or("-".into(), human),
            i.imported_at.as_deref().unwrap_or("-"),
            source_of(i)
        );
    }
    Ok(0)
}

fn source_of(i: &ImageInfo) -> &str {
    i.reference.as_deref().or(i.source.as_deref()).unwrap_or("-")
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn rm(ctx: &mut Ctx, names: &[String]) -> Result {
    let mut removed = Vec::new();
    for name in names {
        removed.push(image::remove(ctx.open_store()?, name)?);
    }
    if ctx.globals.json {
        let v: Vec<_> = removed
            .iter()
            .map(|i| serde_json::json!({"name": i.name, "digest": i.digest}))
            .collect();
        print_json(&serde_json::json!({ "removed": v }))?;
    } else {
        for i in &removed {
            println!("Removed image {} ({})", i.name, i.digest.short(12));
        }
    }
    Ok(0)
}
