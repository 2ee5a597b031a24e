//! `karapace tui`: runs `karapace-tui`, the terminal UI, from beside this binary.

use std::os::unix::process::CommandExt;

use crate::ctx::{Ctx, Result};

pub const HELP: &str = "\
Opens the terminal UI: `karapace-tui` from the directory this `karapace` is
in, with the same --store (docs/tui.md). When it is not installed there, one
line names the path looked at, exit 127.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    if let Some(arg) = p.next()? {
        return Err(arg.unexpected().into());
    }
    let me = std::env::current_exe()?;
    let tui = me.with_file_name("karapace-tui");
    let mut cmd = std::process::Command::new(&tui);
    if let Some(store) = &ctx.globals.store {
        cmd.arg("--store").arg(store);
    }
    let e = cmd.exec();
    if e.kind() == std::io::ErrorKind::NotFound {
        eprintln!(
            "karapace tui: {} is not installed (install karapace-tui beside karapace)",
            tui.display()
        );
    } else {
        eprintln!("karapace tui: cannot run {}: {e}", tui.display());
    }
    Ok(127)
}
