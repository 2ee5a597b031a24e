//! `karapace verify ENV [--rebuild]`: is the environment what its lock gives?

use std::io::Write;

use libkp::build::verify::verify;
use libkp::build::SandboxRunner;

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
Checks that ENV is what its lock should produce (docs/hash-contract.md,
\"Dependency layers\"). Without options, from what the store records: the
lock beside ENV's manifest names ENV's env_id; the base layer is the locked
image digest; the dependency layer sits on it and installed what the lock asks
for; it holds nothing a package manager's run leaves behind (logs, caches,
mirror indexes, dpkg backups); and the id map it was built with, naming how a
single-id-map build differs from a range build. That shows the record is
consistent with the lock, not that an install gives these bytes today.

Options:
  --rebuild   also install the locked packages over the base again, in a fresh
              upper directory (the host's network, as build), and compare the
              layer id with the recorded one; differing paths are listed. Its
              objects stay in the store until gc when they differ.

One line per check on stdout (`ok NAME: ...` or `FAIL NAME: ...`).
Exit status: 0 every check passed; 1 a check failed or ENV is unknown;
2 the lock is invalid; 3 store error; 125 the sandbox could not start.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let mut env = None;
    let mut rebuild = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("rebuild") => rebuild = true,
            Value(v) if env.is_none() => env = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let env = env.ok_or_else(|| Fail::Usage("missing ENV (an id, short id, unique prefix or name)".into()))?;
    let store = ctx.store().clone();
    let rec = store.find_env(&env)?;
    let runner = SandboxRunner::new(&store);
    let v = verify(&store, &rec, rebuild.then_some(&runner as &dyn libkp::build::Runner))?;
    if ctx.globals.json {
        let checks: Vec<_> = v
            .checks
            .iter()
            .map(|c| serde_json::json!({"check": c.name, "ok": c.ok, "detail": c.detail}))
            .collect();
        let rebuilt = v.rebuilt.as_ref().map(|r| {
            serde_json::json!({
                "layer": r.layer,
                "recorded": r.recorded,
                "same": r.layer == r.recorded,
                "id_map": r.id_map,
                "differences": r.differences,
            })
        });
        print_json(&serde_json::json!({
            "env_id": rec.env_id,
            "name": rec.name,
            "ok": v.ok(),
            "id_map": v.id_map,
            "checks": checks,
            "rebuild": rebuilt,
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for c in &v.checks {
            writeln!(out, "{} {}: {}", if c.ok { "ok" } else { "FAIL" }, c.name, c.detail)?;
        }
        if let Some(r) = &v.rebuilt {
            for d in &r.differences {
                writeln!(out, "  {d}")?;
            }
        }
    }
    Ok(if v.ok() { 0 } else { 1 })
}
