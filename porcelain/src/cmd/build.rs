use std::io::IsTerminal;
use std::path::PathBuf;

use libkp::build::{build, BuildOptions, Built, SandboxRunner};
use libkp::schema;

use crate::ctx::{print_json, Ctx, Result};

pub const HELP: &str = "\
Builds the environment MANIFEST describes (default ./karapace.toml; a directory
means its karapace.toml) and prints its env_id. The base image is imported into
the store, the packages are installed inside the sandbox over it with the host's
network, and what they added becomes the environment's dependency layer. The
installed closure (every package, exact version and architecture) goes into
karapace.lock beside the manifest.

An existing lock that still matches the manifest is followed: the same versions
are installed and the same env_id results. Building an environment that already
exists does nothing and keeps its name, snapshots and writable layer. The
manifest's [gui] apps are installed as packages and, once built, exported to
the host menu (`karapace app export`; a failed export is a warning).

Options:
  --name NAME               name the environment ([A-Za-z0-9_-]{1,64}, unique)
  --locked                  refuse a missing or drifted lock; install exactly it
  --offline                 no downloads, and no network inside while installing
  --require-pinned-image    refuse a base.image that is not pinned (karapace pin)

Exit status: 0 built (or already built); 1 failed (the message says where);
2 invalid manifest or lock; 3 store error; 125 the sandbox could not start.
";

pub const REBUILD_HELP: &str = "\
Builds MANIFEST's environment afresh, resolving packages again as if there were
no lock, and only after that succeeds destroys the environment the manifest
built before (refused while it runs). The name moves to the new environment.
";

pub fn parse(mut p: lexopt::Parser, allow_locked: bool) -> Result<(PathBuf, BuildOptions)> {
    use lexopt::Arg::*;
    let mut manifest = None::<PathBuf>;
    let mut opts = BuildOptions {
        progress: std::io::stderr().is_terminal(),
        ..BuildOptions::default()
    };
    while let Some(arg) = p.next()? {
        match arg {
            Long("name") => opts.name = Some(p.value()?.to_string_lossy().into_owned()),
            Long("locked") if allow_locked => opts.locked = true,
            Long("offline") => opts.offline = true,
            Long("require-pinned-image") => opts.require_pinned = true,
            Value(v) if manifest.is_none() => manifest = Some(v.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok((schema::manifest_path(manifest.as_deref()), opts))
}

pub fn report(ctx: &Ctx, built: &Built) -> Result<()> {
    if ctx.globals.json {
        let pkgs: Vec<_> = built
            .added
            .iter()
            .map(|p| serde_json::json!({"name": p.name, "version": p.version, "arch": p.arch}))
            .collect();
        print_json(&serde_json::json!({
            "env_id": built.record.env_id,
            "short_id": built.record.short_id(),
            "name": built.record.name,
            "reused": built.reused,
            "layers": built.record.layers,
            "packages": pkgs,
        }))?;
    } else {
        announce(built);
        println!("{}", built.record.env_id);
    }
    Ok(())
}

/// The human summary of a build, on stderr.
pub fn announce(built: &Built) {
    if built.reused {
        eprintln!("karapace: {} is already built", built.record.display_name());
    } else {
        eprintln!(
            "karapace: built {} ({} package(s) installed)",
            built.record.display_name(),
            built.added.len()
        );
    }
}

pub fn run(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    let (manifest, opts) = parse(p, true)?;
    let store = ctx.create_store()?.clone();
    let built = build(&store, &manifest, &opts, &SandboxRunner::new(&store))?;
    if built.reused && opts.name.is_some() {
        // --name may have renamed it: its exports carry the name.
        crate::cmd::app::renamed(&store, &built.record);
    }
    crate::cmd::app::export_gui_apps(&store, &built.record);
    report(ctx, &built)?;
    Ok(0)
}

pub fn rebuild(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    let (manifest, mut opts) = parse(p, false)?;
    let store = ctx.create_store()?.clone();
    let abs = std::path::absolute(&manifest)
        .unwrap_or(manifest.clone())
        .display()
        .to_string();
    let old = store
        .list_envs()?
        .into_iter()
        .find(|r| r.manifest.as_deref() == Some(abs.as_str()));
    if let Some(old) = &old {
        store.ensure_stopped(old, "rebuild")?;
    }
    // The name moves only once the new environment exists.
    let name = opts.name.take().or_else(|| old.as_ref().and_then(|r| r.name.clone()));
    opts.fresh = true;
    let mut built = build(&store, &manifest, &opts, &SandboxRunner::new(&store))?;
    if let Some(mut old) = old.filter(|o| o.env_id != built.record.env_id) {
        store.transition(&mut old, libkp::env::Transition::Destroy)?;
        crate::cmd::app::destroyed(&store, &old.env_id);
    }
    if let Some(name) = name {
        if built.record.name.as_deref() != Some(name.as_str()) {
            store.rename_env(&mut built.record, &name)?;
        }
    }
    crate::cmd::app::export_gui_apps(&store, &built.record);
    report(ctx, &built)?;
    Ok(0)
}
