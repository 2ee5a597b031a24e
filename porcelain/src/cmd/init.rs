use crate::ctx::{print_json, Ctx, Result};

pub const HELP: &str = "\
Creates the store's directories and version file. On an existing store it checks
the version and adds what is missing; nothing is removed.
";

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let mut dir = None;
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Value(v) if dir.is_none() => dir = Some(std::path::PathBuf::from(v)),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let path = match dir {
        Some(d) => d,
        None => ctx.store_path()?,
    };
    let (_, existed) = libkp::Store::init(&path)?;
    if ctx.globals.json {
        print_json(&serde_json::json!({"store": path, "created": !existed}))?;
    } else if existed {
        println!("Reinitialized existing Karapace store in {}", path.display());
    } else {
        println!("Initialized empty Karapace store in {}", path.display());
    }
    Ok(0)
}
