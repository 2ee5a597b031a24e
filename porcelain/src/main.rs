//! `karapace`: the user-facing command. Global flags are taken out of the command
//! line first (they may stand before or after the verb, never after `--`), then
//! the verb's entry in the command table runs with the rest.

mod cli;
mod cmd;
mod ctx;
mod table;

fn main() {
    libkp::sandbox::rerun::adopt_parent();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(cli::run(args));
}
