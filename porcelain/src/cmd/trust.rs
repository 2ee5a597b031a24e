use libkp::env::{host_asks, Origin};

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
An environment recorded from elsewhere (origin remote, see `karapace inspect`)
gets none of its mounts and host integration (home, ssh_agent, sockets,
devices, fonts, themes) until you trust it: until then `exec` and `enter` of
one that asks for any exit 125 and list what it asks for. `karapace trust ENV`
records your trust in ENV's env_id (meta/trust/ in the store), after showing
what it asks for; the mount policy (docs/manifest.md, \"Mount policy\") still
applies, and its [gui] apps are exported to the host menu (docs/apps.md);
--revoke removes its exports. Environments built here from your own manifests
need no trust.

Options:
  --revoke   withdraw the trust in ENV
  --list     list the trusted environments

--json: {\"env_id\", \"name\", \"origin\", \"trusted\", \"asks\"} (--list: an array).
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let (mut revoke, mut list, mut env) = (false, false, None);
    while let Some(arg) = p.next()? {
        match arg {
            Long("revoke") => revoke = true,
            Long("list") => list = true,
            Value(v) if env.is_none() => env = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let store = ctx.store();
    let json = ctx.globals.json;
    if list {
        if revoke || env.is_some() {
            return Err(Fail::Usage("--list takes no ENV and no --revoke".into()));
        }
        let mut out = Vec::new();
        for id in store.trusted_envs()? {
            let rec = store.read_env(&id)?;
            let name = rec.as_ref().and_then(|r| r.name.clone());
            if !json {
                println!("{}\t{}", &id[..12.min(id.len())], name.as_deref().unwrap_or("-"));
            }
            out.push(serde_json::json!({"env_id": id, "name": name, "trusted": true}));
        }
        if json {
            print_json(&serde_json::Value::Array(out))?;
        }
        return Ok(0);
    }
    let env = env.ok_or_else(|| Fail::Usage("missing ENV (an id, short id, unique prefix or name)".into()))?;
    let rec = store.find_env(&env)?;
    let asks = host_asks(&rec);
    let name = rec.display_name();
    let line = if revoke {
        let was = store.untrust_env(&rec.env_id)?;
        if was && rec.origin == Origin::Remote {
            crate::cmd::app::destroyed(store, &rec.env_id);
        }
        match was {
            true => format!("no longer trusting {name}"),
            false => format!("{name} was not trusted"),
        }
    } else if rec.origin == Origin::Local {
        format!("{name} is local: its mounts and host integration apply already")
    } else {
        let verb = if store.trust_env(&rec)? {
            "trusted"
        } else {
            "already trusted"
        };
        crate::cmd::app::export_gui_apps(store, &rec);
        match asks.is_empty() {
            true => format!("{verb} {name}: it asks for no mounts or host integration"),
            false => format!("{verb} {name}: it may use {}", asks.join(", ")),
        }
    };
    let trusted = rec.origin == Origin::Remote && store.is_trusted(&rec.env_id)?;
    if json {
        print_json(&serde_json::json!({
            "env_id": rec.env_id,
            "name": rec.name,
            "origin": rec.origin.as_str(),
            "trusted": trusted,
            "asks": asks,
        }))?;
    } else {
        println!("{line}");
    }
    Ok(0)
}
