use std::ffi::OsString;
use std::io::IsTerminal;

use libkp::build::quick::{build_quick, compose, lookup, Quick, Spec};
use libkp::build::{BuildOptions, SandboxRunner};
use libkp::env::{EnvRecord, ExecOptions};
use libkp::Store;

use super::preset;
use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
Makes a manifest from a preset (default: minimal), IMAGE and the packages
given, keeps it in the store (quick/<hash>/karapace.toml, never in the current
directory), builds it or reuses the environment already built from it, and
opens a shell in it, or runs CMD. The same arguments find the same environment
again without resolving anything; other arguments make another environment.
A relative mount source (`.` in a preset's [mounts], or in -m) is the
directory quick is run from, as for a manifest kept there.

Options:
  -p, --package PKG         install PKG too (repeat)
  -t, --preset NAME, --template NAME
                            start from preset NAME (`karapace preset list`)
  -m, --mount HOST:CONTAINER[:ro]
                            bind HOST (relative: to the current directory) at
                            CONTAINER (repeat); checked by the mount policy
  --name NAME               name the environment

Exit status: CMD's (or the shell's); 1 the build failed (an unknown image, a
package that cannot be installed); 2 an invalid package name, mount or image
reference; 3 store error; 64 an unknown preset or a usage error; 125 the
sandbox was refused or could not start. A refused quick leaves the store as
it was.
--json: builds or reuses and runs nothing (no CMD then): {\"env_id\",
\"short_id\", \"name\", \"reused\", \"manifest\"}.
";

struct Args {
    preset: Option<String>,
    name: Option<String>,
    spec: Spec,
    argv: Vec<OsString>,
}

fn parse(mut p: lexopt::Parser) -> Result<Args> {
    use lexopt::Arg::*;
    // IMAGE is optional, so what follows `--` must be told apart before lexopt
    // sees it (after `--` it gives plain values).
    let raw: Vec<OsString> = p.raw_args()?.collect();
    let (opts, argv) = match raw.iter().position(|a| a == "--") {
        Some(i) => (raw[..i].to_vec(), raw[i + 1..].to_vec()),
        None => (raw, Vec::new()),
    };
    let mut p = lexopt::Parser::from_args(opts);
    let string = |v: OsString, what: &str| v.into_string().map_err(|v| Fail::Usage(format!("{what} {v:?}")));
    let mut a = Args {
        preset: None,
        name: None,
        spec: Spec::default(),
        argv,
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('p') | Long("package") => a.spec.packages.push(string(p.value()?, "package")?),
            Short('t') | Long("preset") | Long("template") => a.preset = Some(string(p.value()?, "preset")?),
            Short('m') | Long("mount") => a.spec.mounts.push(string(p.value()?, "mount")?),
            Long("name") => a.name = Some(string(p.value()?, "name")?),
            Value(v) if a.spec.image.is_none() => a.spec.image = Some(string(v, "image")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(a)
}

pub fn run(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    let a = parse(p)?;
    if ctx.globals.json && !a.argv.is_empty() {
        return Err(Fail::Usage("--json runs nothing: give no CMD".into()));
    }
    let (_, template) = preset::get(a.preset.as_deref().unwrap_or(preset::DEFAULT))?;
    let cwd = std::env::current_dir().map_err(|e| Fail::Usage(format!("the current directory: {e}")))?;
    let quick = compose(template, &a.spec, &cwd)?;
    let opts = ExecOptions {
        argv: a.argv,
        mount_base: Some(cwd),
        ..ExecOptions::default()
    };
    // The way back: the store as exec opens it, two small reads, then run.
    if ctx.store_path()?.join("version").exists() {
        let store = ctx.open_store()?;
        if let Some(rec) = lookup(store, &quick)? {
            if a.name.is_none() || rec.name == a.name {
                let store = store.clone();
                return finish(ctx, &store, &quick, &rec, true, opts);
            }
        }
    }
    // Building reads what the install wrote: as build, mapped when rootless.
    if let Some(code) = crate::ctx::rerun_mapped() {
        return Ok(code);
    }
    let store = ctx.create_store()?.clone();
    let bopts = BuildOptions {
        name: a.name.clone(),
        progress: std::io::stderr().is_terminal(),
        ..BuildOptions::default()
    };
    let built = build_quick(&store, &quick, &bopts, &SandboxRunner::new(&store))?;
    if built.reused && a.name.is_some() {
        crate::cmd::app::renamed(&store, &built.record);
    }
    crate::cmd::app::export_gui_apps(&store, &built.record);
    if !ctx.globals.json {
        super::build::announce(&built);
    }
    finish(ctx, &store, &quick, &built.record, built.reused, opts)
}

fn finish(ctx: &Ctx, store: &Store, quick: &Quick, rec: &EnvRecord, reused: bool, opts: ExecOptions) -> Result {
    if ctx.globals.json {
        print_json(&serde_json::json!({
            "env_id": rec.env_id,
            "short_id": rec.short_id(),
            "name": rec.name,
            "reused": reused,
            "manifest": quick.manifest_path(store),
        }))?;
        return Ok(0);
    }
    super::exec::enter_env(store, rec, opts)
}
