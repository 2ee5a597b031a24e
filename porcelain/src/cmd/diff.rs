use libkp::layer::quote_path;

use crate::ctx::{print_json, Ctx, Result};

pub const HELP: &str = "\
Shows what changed inside ENV relative to its layers: one line per path,
`STATUS /path`, in path order. STATUS is A (added), M (modified: content,
mode, owner or xattrs), D (deleted), R (a directory replaced: what the layers
had below it is hidden) or T (the type changed). Paths below an added,
replaced or retyped directory are listed as added. A file copied up unchanged
is not a change.

--json: {\"env_id\", \"changes\": [{\"status\", \"path\", \"type\"}]}, status one of
added, modified, deleted, replaced, type-changed.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let env = crate::cmd::one_env_arg(&mut p)?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    let changes = libkp::drift::diff(store, &rec)?;
    if ctx.globals.json {
        let list: Vec<_> = changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "status": c.status.word(),
                    "path": String::from_utf8_lossy(&c.path),
                    "type": c.kind,
                })
            })
            .collect();
        print_json(&serde_json::json!({"env_id": rec.env_id, "changes": list}))?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    for c in &changes {
        use std::io::Write;
        writeln!(out, "{} {}", c.status.letter(), quote_path(&c.path))?;
    }
    Ok(0)
}
