//! commit, snapshots and restore: saving the writable layer and going back.

use libkp::env::Snapshot;

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const COMMIT_HELP: &str = "\
Saves ENV's writable layer as a snapshot: a layer in the store whose parent is
the environment's top layer. Files the store already holds are not stored
again, so a snapshot costs the bytes of what changed. Prints the snapshot id
and the bytes it added. Committing an unchanged writable layer again gives the
same snapshot and records no new one.

--json: {\"env_id\", \"snapshot\", \"created\", \"size_added\", \"new\", \"files\", \"bytes\"}.
";

pub const SNAPSHOTS_HELP: &str = "\
Lists ENV's snapshots, oldest first: SNAPSHOT (12 digits of the layer id;
restore takes it or any unique prefix), CREATED (UTC), SIZE_ADDED (bytes of
file content that neither the environment's layers nor its earlier snapshots
hold) and the full layer id.

--json: {\"env_id\", \"snapshots\": [{\"snapshot\", \"created\", \"size_added\"}]}.
";

pub const RESTORE_HELP: &str = "\
Makes ENV's writable layer equal to SNAPSHOT (a layer id or unique prefix, as
`karapace snapshots` prints it), atomically: the snapshot is checked out beside
the writable layer and swapped with it in one rename; a crash leaves the old
or the new state. Changes since the last commit are lost. Refused while ENV
runs, and for frozen or archived environments.

--json: {\"env_id\", \"snapshot\"}.
";

pub fn commit(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let env = crate::cmd::one_env_arg(&mut p)?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    let r = libkp::drift::commit(store, &rec)?;
    if ctx.globals.json {
        print_json(&serde_json::json!({
            "env_id": rec.env_id,
            "snapshot": r.snapshot.layer,
            "created": r.snapshot.created,
            "size_added": r.snapshot.size_added,
            "new": r.new,
            "files": r.files,
            "bytes": r.bytes,
        }))?;
    } else if r.new {
        println!(
            "{} snapshot {} ({} files, {} bytes added)",
            rec.display_name(),
            r.snapshot.layer,
            r.files,
            r.snapshot.size_added
        );
    } else {
        println!(
            "{} snapshot {} (unchanged since that snapshot)",
            rec.display_name(),
            r.snapshot.layer
        );
    }
    Ok(0)
}

pub fn snapshots(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let env = crate::cmd::one_env_arg(&mut p)?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    if ctx.globals.json {
        let list: Vec<_> = rec.snapshots.iter().map(snapshot_json).collect();
        print_json(&serde_json::json!({"env_id": rec.env_id, "snapshots": list}))?;
        return Ok(0);
    }
    println!("{:<12}  {:<20}  {:>12}  LAYER", "SNAPSHOT", "CREATED", "SIZE_ADDED");
    for s in &rec.snapshots {
        println!(
            "{:<12}  {:<20}  {:>12}  {}",
            &s.layer[..12],
            libkp::date::utc(s.created),
            s.size_added,
            s.layer
        );
    }
    Ok(0)
}

pub fn restore(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let mut args = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Value(v) if args.len() < 2 => args.push(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let [env, snap] = <[String; 2]>::try_from(args)
        .map_err(|_| Fail::Usage("expected ENV and SNAPSHOT (see `karapace snapshots ENV`)".into()))?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    let s = libkp::drift::restore(store, &rec, &snap)?;
    if ctx.globals.json {
        print_json(&serde_json::json!({"env_id": rec.env_id, "snapshot": s.layer}))?;
    } else {
        println!("restored {} to snapshot {}", rec.display_name(), s.layer);
    }
    Ok(0)
}

fn snapshot_json(s: &Snapshot) -> serde_json::Value {
    serde_json::json!({"snapshot": s.layer, "created": s.created, "size_added": s.size_added})
}
