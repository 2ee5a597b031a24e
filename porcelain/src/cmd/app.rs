//! `app` and `bin`: export an environment's applications and programs to
//! the host (docs/apps.md); and what the verbs that rename, destroy, build
//! or trust an environment do to its exports.

use libkp::app::{self, Export, Kind, Targets};
use libkp::env::EnvRecord;
use libkp::Store;

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const APP_HELP: &str = "\
export ENV APP   writes $XDG_DATA_HOME/applications/karapace-ENV-APP.desktop
                 (default ~/.local/share/applications) from APP's desktop entry
                 in the environment: APP is its desktop id (NAME or NAME.desktop
                 in /usr/share/applications or /usr/local/share/applications)
                 or the program its Exec runs. Exec= runs the program through
                 `karapace exec ENV_ID --`, Name gets \" (ENV)\", the icons are
                 copied into $XDG_DATA_HOME/icons/hicolor as karapace-ENV-ICON;
                 update-desktop-database runs when installed. Exporting again
                 writes the files afresh.
unexport ENV APP removes what `export` wrote.
list [ENV]       lists the exports (apps and bins) of ENV, or of every
                 environment: ENV, KIND, NAME, FILE.

Exports are recorded in the store: renaming the environment writes them again
under the new name, destroying it removes them. The environment's files are
untrusted: a desktop entry or icon that breaks the rules of docs/apps.md is
refused, and nothing is written outside those directories.

--json: export/unexport {\"env_id\", \"env\", \"kind\", \"name\", \"files\"};
list an array of them.

Exit status: 0 done; 1 no such environment, application or export, a refused
file, or a host file that is not ours in the way; 3 store error; 64 usage.
";

pub const BIN_HELP: &str = "\
export ENV BIN   writes ~/.local/bin/BIN, a script that runs BIN (found in
                 /usr/local/bin, /usr/bin, /bin or the sbin directories of the
                 environment) through `karapace exec ENV_ID -- BIN \"$@\"`.
unexport ENV BIN removes it.

An existing ~/.local/bin/BIN that is not this environment's export is left
alone and the export refused. `karapace app list` lists bins too. Renaming
and destroying the environment update and remove them, as for apps.

--json and exit status as for `karapace app`.
";

pub fn app(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    run(ctx, p, Kind::App)
}

pub fn bin(ctx: &mut Ctx, p: lexopt::Parser) -> Result {
    run(ctx, p, Kind::Bin)
}

fn run(ctx: &mut Ctx, mut p: lexopt::Parser, kind: Kind) -> Result {
    let mut args = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Value(v) => args.push(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let what = kind.as_str().to_uppercase();
    let store = ctx.store();
    let json = ctx.globals.json;
    match (args.first().map(String::as_str), &args[1.min(args.len())..]) {
        (Some("export"), [env, name]) => {
            let rec = store.find_env(env)?;
            let t = targets(store)?;
            let x = match kind {
                Kind::App => app::export_app(store, &rec, name, &t)?,
                Kind::Bin => app::export_bin(store, &rec, name, &t)?,
            };
            show(json, &rec.env_id, Some(&rec), &x, "exported")?;
        }
        (Some("unexport"), [env, name]) => {
            let rec = store.find_env(env)?;
            let x = app::unexport(store, &rec.env_id, &rec.display_name(), kind, name)?;
            show(json, &rec.env_id, Some(&rec), &x, "unexported")?;
        }
        (Some("list"), rest) if kind == Kind::App && rest.len() <= 1 => {
            let env = rest.first().map(|e| store.find_env(e)).transpose()?;
            let all = app::list(store, env.as_ref().map(|r| r.env_id.as_str()))?;
            let mut out = Vec::new();
            for (id, x) in &all {
                let rec = store.read_env(id)?;
                let name = rec
                    .as_ref()
                    .map_or_else(|| id.chars().take(12).collect(), EnvRecord::display_name);
                if json {
                    out.push(entry(id, rec.as_ref(), x));
                } else {
                    let file = x.files.first().map(|f| f.display().to_string()).unwrap_or_default();
                    println!("{name}\t{}\t{}\t{file}", x.kind.as_str(), x.name);
                }
            }
            if json {
                print_json(&serde_json::Value::Array(out))?;
            }
        }
        _ => {
            return Err(Fail::Usage(match kind {
                Kind::App => "expected export ENV APP, unexport ENV APP or list [ENV]".into(),
                Kind::Bin => format!("expected export ENV {what} or unexport ENV {what}"),
            }))
        }
    }
    Ok(0)
}

fn entry(env_id: &str, rec: Option<&EnvRecord>, x: &Export) -> serde_json::Value {
    serde_json::json!({
        "env_id": env_id,
        "env": rec.and_then(|r| r.name.clone()),
        "kind": x.kind.as_str(),
        "name": x.name,
        "files": x.files,
    })
}

fn show(json: bool, env_id: &str, rec: Option<&EnvRecord>, x: &Export, done: &str) -> Result<()> {
    if json {
        return print_json(&entry(env_id, rec, x));
    }
    let env = rec.map_or_else(|| env_id.chars().take(12).collect(), EnvRecord::display_name);
    println!("{done} {} {} of {env}", x.kind.as_str(), x.name);
    for f in &x.files {
        println!("  {}", f.display());
    }
    Ok(())
}

/// The user's directories and this binary over `store`.
fn targets(store: &Store) -> Result<Targets> {
    let exe = std::env::current_exe().map_err(|e| Fail::Usage(format!("cannot find the karapace binary: {e}")))?;
    Ok(Targets::for_user(store, &exe)?)
}

fn warn(w: impl std::fmt::Display) {
    eprintln!("karapace: warning: {w}");
}

/// After a rename: the exports are written again under the new name.
pub fn renamed(store: &Store, rec: &EnvRecord) {
    let done = targets(store).and_then(|t| Ok(app::refresh(store, rec, &t)?));
    match done {
        Ok(warnings) => warnings.iter().for_each(warn),
        Err(Fail::Lib(e)) => warn(format_args!(
            "the exports of {} were not renamed: {e}",
            rec.display_name()
        )),
        Err(_) => warn(format_args!("the exports of {} were not renamed", rec.display_name())),
    }
}

/// After a destroy: the environment's exports are removed.
pub fn destroyed(store: &Store, env_id: &str) {
    if let Err(e) = app::forget_env(store, env_id) {
        warn(format_args!("the exports of {:.12} were not all removed: {e}", env_id));
    }
}

/// After a build, or once a pulled environment is trusted: its `[gui]
/// apps` are exported (local environments, and remote ones once trusted).
pub fn export_gui_apps(store: &Store, rec: &EnvRecord) {
    let done = targets(store).and_then(|t| Ok(app::export_gui_apps(store, rec, &t)?));
    match done {
        Ok((exported, warnings)) => {
            for x in exported {
                libkp::log!(
                    libkp::log::Level::Info,
                    "exported app {} of {}",
                    x.name,
                    rec.display_name()
                );
            }
            warnings.iter().for_each(warn);
        }
        Err(Fail::Lib(e)) => warn(format_args!(
            "the apps of {} were not exported: {e}",
            rec.display_name()
        )),
        Err(_) => warn(format_args!("the apps of {} were not exported", rec.display_name())),
    }
}
