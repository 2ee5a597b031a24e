use crate::cmd::list::env_json;
use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
Shows one environment: its ids, name, state, manifest, image, layers and times.
ENV is a full id, a short id, a unique id prefix, or a name.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let env = crate::cmd::one_env_arg(&mut p)?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    let state = store.effective_state(&rec)?;
    if ctx.globals.json {
        print_json(&env_json(&rec, state.as_str()))?;
        return Ok(0);
    }
    let v = env_json(&rec, state.as_str());
    let obj = v.as_object().ok_or_else(|| Fail::Usage("internal: env JSON".into()))?;
    for (k, val) in obj {
        let shown = match val {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap_or("?").to_string())
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        println!("{k:<9} {shown}");
    }
    Ok(0)
}
