use std::time::Duration;

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
Stops everything running inside ENV: SIGTERM first, then, for what is still
running after the timeout, SIGKILL to the environment's whole process tree.

Options:
  --timeout SECONDS   how long to wait after SIGTERM (default 10)
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let mut env = None;
    let mut timeout = Duration::from_secs(10);
    while let Some(arg) = p.next()? {
        match arg {
            Long("timeout") => {
                let v = p.value()?.to_string_lossy().into_owned();
                let secs: f64 = v
                    .parse()
                    .map_err(|_| Fail::Usage(format!("--timeout {v:?}: expected seconds")))?;
                timeout = Duration::from_secs_f64(secs.max(0.0));
            }
            Value(v) if env.is_none() => env = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let env = env.ok_or_else(|| Fail::Usage("missing ENV".into()))?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    let stopped = libkp::env::stop(store, &rec, timeout)?;
    if ctx.globals.json {
        print_json(&serde_json::json!({"env_id": rec.env_id, "stopped": stopped.0, "killed": stopped.1}))?;
    } else if stopped.0 == 0 {
        println!("{} was not running", rec.display_name());
    } else {
        println!(
            "stopped {} ({} process tree(s), {} killed)",
            rec.display_name(),
            stopped.0,
            stopped.1
        );
    }
    Ok(0)
}
