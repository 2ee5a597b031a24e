use libkp::env::EnvRecord;

use crate::ctx::{print_json, Ctx, Result};

pub const HELP: &str = "\
Lists the environments in the store: SHORT_ID, NAME, STATE, ENV_ID. STATE is
built, running (while any process is inside), frozen or archived.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    if let Some(arg) = p.next()? {
        return Err(arg.unexpected().into());
    }
    let store = ctx.store();
    let envs = store.list_envs()?;
    let mut rows = Vec::with_capacity(envs.len());
    for rec in &envs {
        rows.push((rec, store.effective_state(rec)?));
    }
    if ctx.globals.json {
        let list: Vec<_> = rows.iter().map(|(r, s)| env_json(r, s.as_str())).collect();
        print_json(&serde_json::json!({ "environments": list }))?;
        return Ok(0);
    }
    println!("{:<12}  {:<20}  {:<8}  ENV_ID", "SHORT_ID", "NAME", "STATE");
    for (rec, state) in rows {
        println!(
            "{:<12}  {:<20}  {:<8}  {}",
            rec.short_id(),
            rec.name.as_deref().unwrap_or("-"),
            state,
            rec.env_id
        );
    }
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
