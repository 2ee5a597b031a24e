//! The one command table. It drives dispatch, `karapace help`, `karapace VERB
//! --help`, and (later) completions and man pages: a verb exists by being here.

pub mod completions;
pub mod help;

use crate::cmd;
use crate::ctx::{Ctx, Result};

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
    /// Reads or removes what environments' users own in writable layers: a
    /// rootless caller with a subordinate range runs it as root of a user
    /// namespace mapped like the sandbox (libkp::sandbox::rerun).
    pub mapped: bool,
    pub run: fn(&mut Ctx, lexopt::Parser) -> Result,
}

pub static COMMANDS: &[Command] = &[
    Command {
        name: "init",
        summary: "Create an empty store (or check an existing one)",
        args: "[DIR]",
        help: cmd::init::HELP,
        needs_store: false,
        mapped: false,
        run: cmd::init::run,
    },
    Command {
        name: "help",
        summary: "Show the commands, or one command's help",
        args: "[COMMAND]",
        help: "",
        needs_store: false,
        mapped: false,
        run: help::run,
    },
    Command {
        name: "version",
        summary: "Show the version and the store format it reads",
        args: "",
        help: "",
        needs_store: false,
        mapped: false,
        run: help::version,
    },
    Command {
        name: "new",
        summary: "Create NAME/karapace.toml from a template",
        args: "NAME [--template T | --preset T] [--force]",
        help: cmd::new::HELP,
        needs_store: false,
        mapped: false,
        run: cmd::new::run,
    },
    Command {
        name: "preset",
        summary: "List the presets, or show one's manifest",
        args: "list | show NAME",
        help: cmd::preset::HELP,
        needs_store: false,
        mapped: false,
        run: cmd::preset::run,
    },
    Command {
        name: "pin",
        summary: "Pin the manifest's base image to its digest",
        args: "[MANIFEST] [--check]",
        help: cmd::pin::HELP,
        needs_store: false,
        mapped: false,
        run: cmd::pin::run,
    },
    Command {
        name: "build",
        summary: "Build the environment a manifest describes; print its env_id",
        args: "[MANIFEST] [--name N] [--locked] [--offline] [--require-pinned-image]",
        help: cmd::build::HELP,
        needs_store: false,
        mapped: true,
        run: cmd::build::run,
    },
    Command {
        name: "rebuild",
        summary: "Build afresh, then destroy the environment it replaces",
        args: "[MANIFEST] [--name N] [--offline] [--require-pinned-image]",
        help: cmd::build::REBUILD_HELP,
        needs_store: false,
        mapped: true,
        run: cmd::build::rebuild,
    },
    Command {
        name: "exec",
        summary: "Run a command inside an environment",
        args: "[--env K=V] [--cwd DIR] [--allow-mount PATH] [--trust] [--seccomp default|off] ENV -- CMD [ARGS...]",
        help: cmd::exec::EXEC_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::exec::run,
    },
    Command {
        name: "enter",
        summary: "Open a shell inside an environment",
        args: "[--env K=V] [--cwd DIR] [--allow-mount PATH] [--trust] [--seccomp default|off] ENV [-- CMD [ARGS...]]",
        help: cmd::exec::ENTER_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::exec::enter,
    },
    Command {
        name: "quick",
        summary: "Build (or reuse) an environment from a preset, an image and packages, and enter it",
        args: "[IMAGE] [-p PKG]... [--preset NAME] [-m HOST:CONTAINER[:ro]]... [--name N] [-- CMD [ARGS...]]",
        help: cmd::quick::HELP,
        needs_store: false,
        mapped: false,
        run: cmd::quick::run,
    },
    Command {
        name: "remote",
        summary: "Add, change, remove or list the remotes push and pull use",
        args: "add|set-url NAME URL [--token-file F] | remove NAME | list",
        help: cmd::remote::REMOTE_HELP,
        needs_store: false,
        mapped: false,
        run: cmd::remote::remote,
    },
    Command {
        name: "push",
        summary: "Send an environment to a remote as NAME@TAG, or to an OCI registry",
        args: "ENV [NAME@TAG | oci://REGISTRY/REPO:TAG] [--remote R] [--snapshots] [--chunk-size BYTES]",
        help: cmd::remote::PUSH_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::remote::push,
    },
    Command {
        name: "pull",
        summary: "Fetch NAME@TAG from a remote, or oci://... from a registry, as a runnable environment",
        args: "NAME@TAG|oci://REGISTRY/REPO:TAG [--remote R] [--name N]",
        help: cmd::remote::PULL_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::remote::pull,
    },
    Command {
        name: "ls-remote",
        summary: "List the environments on a remote",
        args: "[--remote R]",
        help: cmd::remote::LS_REMOTE_HELP,
        needs_store: false,
        mapped: false,
        run: cmd::remote::ls_remote,
    },
    Command {
        name: "trust",
        summary: "Let a remote environment use its mounts and host integration",
        args: "[--revoke] ENV | --list",
        help: cmd::trust::HELP,
        needs_store: true,
        mapped: false,
        run: cmd::trust::run,
    },
    Command {
        name: "app",
        summary: "Export an environment's desktop application to the host menu",
        args: "export|unexport ENV APP | list [ENV]",
        help: cmd::app::APP_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::app::app,
    },
    Command {
        name: "bin",
        summary: "Export an environment's program as a wrapper in ~/.local/bin",
        args: "export|unexport ENV BIN",
        help: cmd::app::BIN_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::app::bin,
    },
    Command {
        name: "stop",
        summary: "Stop everything running inside an environment",
        args: "[--timeout SECONDS] ENV",
        help: cmd::stop::HELP,
        needs_store: true,
        mapped: false,
        run: cmd::stop::run,
    },
    Command {
        name: "list",
        summary: "List environments: SHORT_ID, NAME, STATE, ENV_ID",
        args: "",
        help: cmd::list::HELP,
        needs_store: true,
        mapped: false,
        run: cmd::list::run,
    },
    Command {
        name: "inspect",
        summary: "Show one environment's ids, state, layers and times",
        args: "ENV",
        help: cmd::inspect::HELP,
        needs_store: true,
        mapped: false,
        run: cmd::inspect::run,
    },
    Command {
        name: "rename",
        summary: "Give an environment a new name",
        args: "ENV NEW_NAME",
        help: cmd::rename::HELP,
        needs_store: true,
        mapped: false,
        run: cmd::rename::run,
    },
    Command {
        name: "freeze",
        summary: "Stop all writes to an environment (exec still reads)",
        args: "ENV",
        help: cmd::lifecycle::FREEZE_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::lifecycle::freeze,
    },
    Command {
        name: "archive",
        summary: "Keep an environment, protected from gc, with no entry",
        args: "ENV",
        help: cmd::lifecycle::ARCHIVE_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::lifecycle::archive,
    },
    Command {
        name: "destroy",
        summary: "Remove an environment (refused while it runs)",
        args: "ENV",
        help: cmd::lifecycle::DESTROY_HELP,
        needs_store: true,
        mapped: true,
        run: cmd::lifecycle::destroy,
    },
    Command {
        name: "image",
        summary: "Import, list and remove base images",
        args: "import SOURCE [NAME] | list | rm NAME...",
        help: cmd::image::HELP,
        needs_store: false,
        mapped: false,
        run: cmd::image::run,
    },
    Command {
        name: "completions",
        summary: "Print a shell completion script (bash, zsh, fish)",
        args: "SHELL",
        help: completions::COMPLETIONS_HELP,
        needs_store: false,
        mapped: false,
        run: completions::completions,
    },
    Command {
        name: "man-pages",
        summary: "Write the man pages into a directory",
        args: "DIR",
        help: completions::MAN_HELP,
        needs_store: false,
        mapped: false,
        run: completions::man_pages,
    },
    Command {
        name: "diff",
        summary: "Show what changed inside an environment",
        args: "ENV",
        help: cmd::diff::HELP,
        needs_store: true,
        mapped: true,
        run: cmd::diff::run,
    },
    Command {
        name: "commit",
        summary: "Save an environment's writable layer as a snapshot",
        args: "ENV",
        help: cmd::snapshot::COMMIT_HELP,
        needs_store: true,
        mapped: true,
        run: cmd::snapshot::commit,
    },
    Command {
        name: "snapshots",
        summary: "List an environment's snapshots",
        args: "ENV",
        help: cmd::snapshot::SNAPSHOTS_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::snapshot::snapshots,
    },
    Command {
        name: "restore",
        summary: "Make an environment's writable layer equal to a snapshot",
        args: "ENV SNAPSHOT",
        help: cmd::snapshot::RESTORE_HELP,
        needs_store: true,
        mapped: true,
        run: cmd::snapshot::restore,
    },
    Command {
        name: "gc",
        summary: "Remove what no environment, snapshot, image or ref reaches",
        args: "[--dry-run]",
        help: cmd::care::GC_HELP,
        needs_store: true,
        mapped: true,
        run: cmd::care::gc,
    },
    Command {
        name: "verify",
        summary: "Check that an environment is what its lock should produce",
        args: "[--rebuild] ENV",
        help: cmd::verify::HELP,
        needs_store: true,
        mapped: true,
        run: cmd::verify::run,
    },
    Command {
        name: "verify-store",
        summary: "Re-hash every object and check every reference",
        args: "",
        help: cmd::care::VERIFY_HELP,
        needs_store: true,
        mapped: false,
        run: cmd::care::verify_store,
    },
    Command {
        name: "tui",
        summary: "Open the terminal UI (karapace-tui)",
        args: "",
        help: cmd::tui::HELP,
        needs_store: false,
        mapped: false,
        run: cmd::tui::run,
    },
    Command {
        name: "doctor",
        summary: "Check user namespaces, overlayfs, id ranges, cgroups and the store",
        args: "[--fix]",
        help: cmd::doctor::DOCTOR_HELP,
        needs_store: false,
        mapped: false,
        run: cmd::doctor::doctor,
    },
    Command {
        name: "migrate",
        summary: "Report the store's format version; upgrade an older one",
        args: "",
        help: cmd::doctor::MIGRATE_HELP,
        needs_store: false,
        mapped: false,
        run: cmd::doctor::migrate,
    },
    Command {
        name: "export",
        summary: "Export an environment's drift or whole filesystem (dir or tar)",
        args: "[--full] ENV DIR|FILE.tar",
        help: cmd::export::HELP,
        needs_store: true,
        mapped: true,
        run: cmd::export::run,
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
  --progress-fd N  progress as JSON lines on descriptor N (3 or more; docs/cli.md)
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
