use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use libkp::env::{exec, ExecOptions};

use crate::ctx::{Ctx, Fail, Result};

pub const EXEC_HELP: &str = "\
Runs CMD inside the environment ENV (a full id, short id, unique prefix or name)
and exits with its status: 128+N when it was killed by signal N, 127 when it was
not found, 126 when it could not be executed. Standard input, output and error
pass through unbuffered; with a terminal, CMD gets one.

Options (before --):
  --env KEY=VALUE   set a variable inside (repeat)
  --cwd DIR         working directory inside
  --allow-mount PATH
                    let manifest mounts use PATH (and what lies under it) this
                    run, as [sandbox] allow_mounts in the configuration does;
                    naming a sensitive path (~/.ssh, /etc, ...) allows it
                    (repeat; docs/manifest.md, \"Mount policy\")
  --trust           apply a remote environment's mounts and host integration
                    this run, as `karapace trust ENV` does for good
  --seccomp default|off
                    the system-call filter this run (default: [sandbox]
                    seccomp in the configuration, else on; docs/sandbox.md)

Exit status: CMD's, or 1 when ENV cannot run (archived, unknown), 3 store error,
125 the sandbox was refused (a mount outside the allowed roots or on a
sensitive path, an untrusted remote environment that asks for mounts or host
integration) or could not start.
";

pub const ENTER_HELP: &str = "\
Opens an interactive shell inside ENV: the user's login shell if the environment
has it, else bash, else sh (or CMD, when given). On a terminal, OSC 777
container markers tell terminals that follow them when the shell starts (push)
and ends (pop). Options as for exec.
";

/// ENV, options, then the command after `--` (or the rest).
fn parse(mut p: lexopt::Parser, need_cmd: bool) -> Result<(String, ExecOptions)> {
    use lexopt::Arg::*;
    let mut env = None;
    let mut opts = ExecOptions::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("env") => {
                let kv = p.value()?.to_string_lossy().into_owned();
                let Some((k, v)) = kv.split_once('=') else {
                    return Err(Fail::Usage(format!("--env {kv:?}: expected KEY=VALUE")));
                };
                opts.env.push((k.to_string(), OsString::from(v)));
            }
            Long("cwd") => opts.cwd = Some(PathBuf::from(p.value()?)),
            Long("allow-mount") => {
                let path = PathBuf::from(p.value()?);
                let path = std::path::absolute(&path)
                    .map_err(|e| Fail::Usage(format!("--allow-mount {}: {e}", path.display())))?;
                opts.allow_mounts.push(path);
            }
            Long("trust") => opts.trust = true,
            Long("seccomp") => {
                let v = p.value()?.to_string_lossy().into_owned();
                opts.seccomp = Some(
                    libkp::sandbox::Seccomp::parse(&v)
                        .ok_or_else(|| Fail::Usage(format!("--seccomp {v:?} is not default or off")))?,
                );
            }
            Value(v) if env.is_none() => {
                env = Some(v.to_string_lossy().into_owned());
                let rest: Vec<OsString> = p.raw_args()?.collect();
                opts.argv = match rest.first() {
                    Some(first) if first == "--" => rest[1..].to_vec(),
                    _ => rest,
                };
                break;
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let env = env.ok_or_else(|| Fail::Usage("missing ENV".into()))?;
    if need_cmd && opts.argv.is_empty() {
        return Err(Fail::Usage("missing the command to run (after --)".into()));
    }
    Ok((env, opts))
}

pub fn run(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    let (env, opts) = parse(p, true)?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    Ok(exec(store, &rec, &opts)?)
}

pub fn enter(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    let (env, opts) = parse(p, false)?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    enter_env(store, &rec, opts)
}

/// Runs `opts.argv` in `rec`, or its shell when there is none, between the
/// terminal's container markers (enter, and quick without a command).
pub fn enter_env(store: &libkp::Store, rec: &libkp::env::EnvRecord, mut opts: ExecOptions) -> Result {
    if opts.argv.is_empty() {
        opts.argv = vec![shell_for(store, rec)?];
    }
    let tty = std::io::stdout().is_terminal();
    if tty {
        print!("\x1b]777;container;push;{};karapace\x1b\\", rec.display_name());
        let _ = std::io::stdout().flush();
    }
    let status = exec(store, rec, &opts);
    if tty {
        print!("\x1b]777;container;pop;;\x1b\\");
        let _ = std::io::stdout().flush();
    }
    Ok(status?)
}

/// The user's shell if the environment has it, else bash, else sh.
fn shell_for(store: &libkp::Store, rec: &libkp::env::EnvRecord) -> Result<OsString> {
    let mut roots = vec![store.env_dir(&rec.env_id).join("upper")];
    for hex in rec.layers.iter().rev() {
        if let Some(id) = libkp::ObjectId::from_hex(hex) {
            roots.push(store.checkout_cache_path(&id));
        }
    }
    let user_shell = std::env::var("SHELL").ok().filter(|s| s.starts_with('/'));
    let candidates = user_shell
        .into_iter()
        .chain(["/bin/bash".to_string(), "/bin/sh".to_string()]);
    for c in candidates {
        let rel = c.trim_start_matches('/');
        if roots.iter().any(|r| r.join(rel).symlink_metadata().is_ok()) {
            return Ok(c.into());
        }
    }
    Ok("/bin/sh".into())
}
