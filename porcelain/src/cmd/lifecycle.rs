//! freeze, archive and destroy: one transition each, the same shape.

use libkp::env::Transition;

use crate::ctx::{print_json, Ctx, Result};

pub const FREEZE_HELP: &str = "\
Freezes an environment: its writable layer takes no more writes. `exec` still
runs commands in it, read-only. Refused while it is running.
";

pub const ARCHIVE_HELP: &str = "\
Archives an environment (built or frozen): it is kept, with everything it needs
protected from gc, but can no longer be entered or run. Refused while running.
";

pub const DESTROY_HELP: &str = "\
Destroys an environment: its record and writable layer are removed; layers no
other environment uses become garbage for `karapace gc`; its exports (`karapace
app`, `karapace bin`) are removed from the host. Refused while running.
";

fn apply(ctx: &mut Ctx, mut p: lexopt::Parser, t: Transition, done: &str) -> Result {
    let env = crate::cmd::one_env_arg(&mut p)?;
    let store = ctx.store();
    let mut rec = store.find_env(&env)?;
    store.transition(&mut rec, t)?;
    if t == Transition::Destroy {
        crate::cmd::app::destroyed(store, &rec.env_id);
    }
    if ctx.globals.json {
        print_json(&serde_json::json!({"env_id": rec.env_id, "result": done}))?;
    } else {
        println!("{done} {}", rec.display_name());
    }
    Ok(0)
}

pub fn freeze(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    apply(ctx, p, Transition::Freeze, "frozen")
}

pub fn archive(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    apply(ctx, p, Transition::Archive, "archived")
}

pub fn destroy(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    apply(ctx, p, Transition::Destroy, "destroyed")
}
