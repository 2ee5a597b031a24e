use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
Gives an environment a new name. Names are 1 to 64 characters of A-Z a-z 0-9 _ -
and unique in the store.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let mut args = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Value(v) => args.push(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let [env, name] = args.as_slice() else {
        return Err(Fail::Usage("expected ENV and NEW_NAME".into()));
    };
    let store = ctx.store();
    let mut rec = store.find_env(env)?;
    store.rename_env(&mut rec, name)?;
    crate::cmd::app::renamed(store, &rec);
    if ctx.globals.json {
        print_json(&serde_json::json!({"env_id": rec.env_id, "name": name}))?;
    } else {
        println!("renamed {} to {name}", rec.short_id());
    }
    Ok(0)
}
