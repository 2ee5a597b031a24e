//! The one command table. It drives dispatch, `karapace help`, `karapace VERB
//! --help`, and (later) completions and man pages: a verb exists by being here.

use crate::cli::{Ctx, Result};
use crate::cmd;

pub struct Command {
    pub name: &'static str,
    /// One line for `karapace help`.
    pub summary: &'static str,
    /// Arguments after the verb, for the usage line.
    pub args: &'static str,
    /// The rest of `--help`: what it does, its options, its exit codes.
    pub help: &'static str,
    /// Open the store (checking its version) before the verb runs.
    pub needs_store: bool,
    pub run: fn(&mut Ctx, lexopt::Parser) -> Result,
}

pub static COMMANDS: &[Command] = &[
    Command {
        name: "init",
        summary: "Create an empty store (or check an existing one)",
        args: "[DIR]",
        help: cmd::init::HELP,
        needs_store: false,
        run: cmd::init::run,
    },
    Command {
        name: "help",
        summary: "Show the commands, or one command's help",
        args: "[COMMAND]",
        help: "",
        needs_store: false,
        run: cmd::help::run,
    },
    Command {
        name: "version",
        summary: "Show the version and the store format it reads",
        args: "",
        help: "",
        needs_store: false,
        run: cmd::help::version,
    },
];

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

pub const GLOBAL_OPTIONS: &str = "\
Global options (before or after the command):
  --store PATH     the store (default: $KARAPACE_STORE, else $XDG_DATA_HOME/karapace,
                   else ~/.local/share/karapace)
  --json           machine-readable output: one JSON document on stdout
  -v, --verbose    more messages on stderr (-vv for debug)
  --trace          every step on stderr
  KARAPACE_LOG=error|warn|info|debug|trace overrides -v and --trace.
";

pub fn usage(cmd: &Command) -> String {
    let mut s = format!("usage: karapace {} {}\n\n{}\n", cmd.name, cmd.args, cmd.summary);
    if !cmd.help.is_empty() {
        s.push('\n');
        s.push_str(cmd.help);
    }
    s.push('\n');
    s.push_str(GLOBAL_OPTIONS);
    s
}

pub fn overview() -> String {
    let mut s = String::from("usage: karapace [--store PATH] [--json] [-v] [--trace] COMMAND [ARGS]\n\nCommands:\n");
    let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in COMMANDS {
        s.push_str(&format!("  {:width$}  {}\n", c.name, c.summary));
    }
    s.push_str("\nSee 'karapace help COMMAND' for one command.\n");
    s
}
