use crate::ctx::{print_json, Ctx, Fail, Result};
use crate::table;

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let mut topic = None;
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Value(v) if topic.is_none() => topic = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    match topic {
        None if ctx.globals.json => {
            let cmds: Vec<_> = table::COMMANDS
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "summary": c.summary, "needs_store": c.needs_store}))
                .collect();
            print_json(&serde_json::json!({ "commands": cmds }))?;
        }
        None => print!("{}", table::overview()),
        Some(t) => match table::find(&t) {
            Some(c) => print!("{}", table::usage(c)),
            None => return Err(Fail::Usage(format!("no such command {t:?}"))),
        },
    }
    Ok(0)
}

pub fn version(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    if let Some(arg) = p.next()? {
        return Err(arg.unexpected().into());
    }
    let v = env!("CARGO_PKG_VERSION");
    if ctx.globals.json {
        print_json(&serde_json::json!({"version": v, "store_format": libkp::store::VERSION}))?;
    } else {
        println!("karapace {v} (store format: {})", libkp::store::VERSION);
    }
    Ok(0)
}
