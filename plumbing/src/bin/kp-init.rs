use kp_plumbing::{lexopt, Common, Result};

const USAGE: &str = "\
usage: kp-init [--store PATH] [DIR]

Creates an empty Karapace store at DIR (default: --store, $KARAPACE_STORE, else
$XDG_DATA_HOME/karapace or ~/.local/share/karapace). Running it on an existing
store checks its version and adds any missing directory; nothing is removed.
";

fn run(mut p: lexopt::Parser, usage: &str) -> Result<i32> {
    let mut common = Common::default();
    let mut dir = None;
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Long("store") => common.store = Some(p.value()?.into()),
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return kp_plumbing::help(usage),
            lexopt::Arg::Value(v) if dir.is_none() => dir = Some(std::path::PathBuf::from(v)),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let path = match dir {
        Some(d) => d,
        None => common.store_path()?,
    };
    let (_, existed) = libkp::Store::init(&path)?;
    let verb = if existed {
        "Reinitialized existing"
    } else {
        "Initialized empty"
    };
    println!("{verb} Karapace store in {}", path.display());
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-init", USAGE, run)
}
