use libkp::env::EnvRecord;

use std::io::Write;

use crate::ctx::{Ctx, Result};

pub const HELP: &str = "\
Lists the environments in the store: SHORT_ID, NAME, STATE, ENV_ID. STATE is
built, running (while any process is inside), frozen or archived.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    if let Some(arg) = p.next()? {
        return Err(arg.unexpected().into());
    }
    let store = ctx.store();
    let rows = store.list_envs_with_state()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if ctx.globals.json {
        // Streamed, one environment at a time: the same bytes print_json
        // would write for {"environments": [...]}.
        out.write_all(b"{\"environments\":[")?;
        for (i, (rec, state)) in rows.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut out, &env_json(rec, state.as_str())).map_err(std::io::Error::from)?;
        }
        out.write_all(b"]}\n")?;
        out.flush()?;
        return Ok(0);
    }
    writeln!(out, "{:<12}  {:<20}  {:<8}  ENV_ID", "SHORT_ID", "NAME", "STATE")?;
    for (rec, state) in rows {
        writeln!(
            out,
            "{:<12}  {:<20}  {:<8}  {}",
            rec.short_id(),
            rec.name.as_deref().unwrap_or("-"),
            state,
            rec.env_id
        )?;
    }
    out.flush()?;
    Ok(0)
}

/// The JSON form of an environment, shared by list and inspect.
pub fn env_json(rec: &EnvRecord, state: &str) -> serde_json::Value {
    serde_json::json!({
        "env_id": rec.env_id,
        "short_id": rec.short_id(),
        "name": rec.name,
        "state": state,
        "origin": rec.origin.as_str(),
        "manifest": rec.manifest,
        "image": rec.image,
        "layers": rec.layers,
        "created": rec.created,
        "updated": rec.updated,
    })
}
