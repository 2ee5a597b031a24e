use kp_plumbing::{lexopt, usage, utf8, Common, Result};
use libkp::image::{self, Config, ImportOptions};

const USAGE: &str = "\
usage: kp-fetch-image [--name NAME] [--progress] [--insecure-registry HOST]... [--store PATH] REFERENCE
       kp-fetch-image --resolve [--insecure-registry HOST]... REFERENCE

Imports the base image REFERENCE as a base layer, records it as
refs/images/NAME (NAME defaults to one derived from the reference) and prints
the image's digest: the layer id, one line. REFERENCE is a distribution release
(debian/bookworm, ubuntu/24.04, fedora/41, opensuse/tumbleweed, archlinux, ...)
looked up on the configured image servers, an http(s) URL of a rootfs tarball
(optionally URL#sha256=HEX), an image in an OCI registry
(oci://REGISTRY/REPO:TAG or @sha256:HEX; docker:// alike, docs/oci.md), a local
tarball or directory, or the name of an image already imported (docs/images.md).

With --resolve nothing is imported or needs a store: prints the pinned form of
REFERENCE (for releases: the exact build's URL#sha256=HEX; for OCI images:
oci://REGISTRY/REPO:TAG@sha256:MANIFEST).

  --name NAME    the image's name
  --progress     a progress bar for downloads when stderr is a terminal
  --insecure-registry HOST
                 speak plain http to the OCI registry HOST (host or host:port);
                 loopback registries always are
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut opts = ImportOptions::default();
    let mut resolve = false;
    let mut reference = None;
    let mut insecure = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Long("name") => opts.name = Some(utf8(p.value()?, "--name")?),
            Long("progress") => opts.progress = true,
            Long("resolve") => resolve = true,
            Long("insecure-registry") => insecure.push(utf8(p.value()?, "--insecure-registry")?),
            Value(v) if reference.is_none() => reference = Some(utf8(v, "REFERENCE")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some(reference) = reference else {
        return usage("missing REFERENCE");
    };
    if resolve && opts.name.is_some() {
        return usage("--resolve imports nothing: --name does not apply");
    }
    opts.config = Config::load()?;
    opts.config.insecure_registries.extend(insecure);
    if resolve {
        println!("{}", image::resolve(&reference, &opts.config)?.pinned);
        return Ok(0);
    }
    let store = common.open_store()?;
    println!("{}", image::import(&store, &reference, &opts)?.digest);
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-fetch-image", USAGE, run)
}
