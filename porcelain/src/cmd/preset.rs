//! Presets: the manifests in examples/, built into the binary, under one
//! list. `new --template`/`--preset` writes one; `preset list|show` shows
//! them. Being the example files themselves, the documented examples and
//! what `new` writes cannot drift apart (t2000 parses every one).

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
preset list        the presets, one line each: NAME, its aliases, what it is
preset show NAME   the preset's manifest, as `new --preset NAME` writes it

The presets are the manifests in examples/: minimal, dev, rust-dev, gui-dev,
ubuntu-dev, dev-python and gaming; dev-rust and gui-app are accepted as
aliases of rust-dev and gui-dev.

Exit status: 0; 64 for an unknown preset (the line names the known ones) or
a usage error.
--json: list: [{\"name\", \"aliases\": [S...], \"summary\"}]; show:
{\"name\", \"manifest\"}.
";

use libkp::schema::templates::{aliases_of, summary};
pub use libkp::schema::templates::{find, ALIASES, DEFAULT, PRESETS};

/// [`find`], or one line naming the known presets and exit status 64.
pub fn get(name: &str) -> Result<(&'static str, &'static str)> {
    find(name).ok_or_else(|| {
        let all: Vec<_> = PRESETS
            .iter()
            .map(|(n, _)| *n)
            .chain(ALIASES.iter().map(|(a, _)| *a))
            .collect();
        eprintln!(
            "karapace: error: unknown preset {name:?}; expected one of {}",
            all.join(", ")
        );
        Fail::Exit(64)
    })
}

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::Value;
    let verb = match p.next()? {
        Some(Value(v)) => v.into_string().map_err(|v| Fail::Usage(format!("preset {v:?}")))?,
        Some(arg) => return Err(arg.unexpected().into()),
        None => return Err(Fail::Usage("preset: give list or show NAME".into())),
    };
    match verb.as_str() {
        "list" => {
            if let Some(arg) = p.next()? {
                return Err(arg.unexpected().into());
            }
            if ctx.globals.json {
                let list: Vec<_> = PRESETS
                    .iter()
                    .map(|(n, t)| serde_json::json!({"name": n, "aliases": aliases_of(n), "summary": summary(t)}))
                    .collect();
                print_json(&serde_json::Value::Array(list))?;
            } else {
                for (n, t) in PRESETS {
                    let aliases = aliases_of(n);
                    let aka = if aliases.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", aliases.join(", "))
                    };
                    println!("{:<24} {}", format!("{n}{aka}"), summary(t));
                }
            }
        }
        "show" => {
            let name = match p.next()? {
                Some(Value(v)) => v.into_string().map_err(|v| Fail::Usage(format!("preset {v:?}")))?,
                Some(arg) => return Err(arg.unexpected().into()),
                None => return Err(Fail::Usage("preset show: missing NAME".into())),
            };
            if let Some(arg) = p.next()? {
                return Err(arg.unexpected().into());
            }
            let (name, text) = get(&name)?;
            if ctx.globals.json {
                print_json(&serde_json::json!({"name": name, "manifest": text}))?;
            } else {
                print!("{text}");
            }
        }
        other => {
            return Err(Fail::Usage(format!(
                "preset: unknown verb {other:?}; give list or show NAME"
            )))
        }
    }
    Ok(0)
}
