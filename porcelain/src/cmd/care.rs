//! gc and verify-store: keeping the store small and sound.

use std::io::Write;

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const GC_HELP: &str = "\
Removes every object no environment (its layers and snapshots, whatever its
state: running and archived ones are protected), image or ref reaches, and
finishes interrupted restores. Prints `ID KIND` for each object removed, in
id order, and a summary on stderr; --dry-run prints exactly the same lines and
removes nothing. Waits for running writers (builds, commits) and blocks new
ones while it runs. Ctrl-C stops it between two removals, leaving a
consistent store (exit 130).

Options:
  -n, --dry-run   only list what would be removed

--json: {\"dry_run\", \"removed\": [{\"id\", \"kind\"}], \"bytes\", \"interrupted\"}.
";

pub const VERIFY_HELP: &str = "\
Verifies the whole store: every object re-hashed and parsed, every object an
object names present with the right kind, every ref pointing into the store,
every metadata checksum, and every environment's layers, snapshots and
writable layer present. Prints one line per problem and a summary on stderr.

Exit status: 0 sound, 1 problems found, 3 the store cannot be read at all.
--json: {\"ok\", \"objects\", \"bytes\", \"problems\": [S...]}.
";

pub fn gc(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let mut dry_run = false;
    while let Some(arg) = p.next()? {
        match arg {
            Short('n') | Long("dry-run") => dry_run = true,
            _ => return Err(arg.unexpected().into()),
        }
    }
    let interrupts = libkp::care::Interrupts::catch()?;
    let store = ctx.store();
    let r = libkp::care::gc(store, dry_run, &|| interrupts.pending())?;
    drop(interrupts);
    let removed = &r.prune.removed;
    if ctx.globals.json {
        let list: Vec<_> = removed
            .iter()
            .map(|o| serde_json::json!({"id": o.id.to_hex(), "kind": o.kind.as_str()}))
            .collect();
        print_json(&serde_json::json!({
            "dry_run": dry_run,
            "removed": list,
            "bytes": r.prune.bytes,
            "interrupted": r.prune.interrupted,
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for o in removed {
            writeln!(out, "{} {}", o.id, o.kind)?;
        }
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    eprintln!("{verb} {} objects ({} bytes)", removed.len(), r.prune.bytes);
    for env in &r.recovered {
        eprintln!("finished an interrupted restore of {env}");
    }
    if r.prune.interrupted {
        eprintln!("karapace gc: interrupted; the store is consistent, run gc again to finish");
        return Err(Fail::Exit(130));
    }
    Ok(0)
}

pub fn verify_store(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    if let Some(arg) = p.next()? {
        return Err(arg.unexpected().into());
    }
    let report = libkp::care::verify_store(ctx.store())?;
    if ctx.globals.json {
        print_json(&serde_json::json!({
            "ok": report.ok(),
            "objects": report.objects,
            "bytes": report.bytes,
            "problems": report.problems,
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for problem in &report.problems {
            writeln!(out, "{problem}")?;
        }
    }
    eprintln!(
        "checked {} objects ({} bytes): {} problem(s)",
        report.objects,
        report.bytes,
        report.problems.len()
    );
    Ok(if report.ok() { 0 } else { 1 })
}
