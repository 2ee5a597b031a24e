use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use libkp::schema::{self, file, manifest, pin, MANIFEST_FILE};

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const HELP: &str = "\
Creates directory NAME (if needed) with a karapace.toml made from a template;
NAME may be a path, and `.` means the current directory. On a terminal, it asks
for the template and the base image; otherwise it asks nothing and uses the
options (template: minimal).

Options:
  --template T, --preset T
                 a preset (`karapace preset list`): minimal, dev, rust-dev,
                 gui-dev, ubuntu-dev, dev-python or gaming (examples/T.toml);
                 dev-rust and gui-app are aliases
  --force        overwrite an existing NAME/karapace.toml

Exit status: 0 created; 1 the manifest exists (without --force) or cannot be
written; 64 usage.
";

use super::preset::{self, DEFAULT as DEFAULT_TEMPLATE};

fn template(name: &str) -> Result<&'static str> {
    preset::get(name).map(|(_, text)| text)
}

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let (mut name, mut tmpl, mut force) = (None::<PathBuf>, None::<String>, false);
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Long("template") | lexopt::Arg::Long("preset") | lexopt::Arg::Short('t') => {
                tmpl = Some(
                    p.value()?
                        .into_string()
                        .map_err(|v| Fail::Usage(format!("template {v:?}")))?,
                )
            }
            lexopt::Arg::Long("force") | lexopt::Arg::Short('f') => force = true,
            lexopt::Arg::Value(v) if name.is_none() => name = Some(v.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let dir = name.ok_or_else(|| Fail::Usage("missing NAME".into()))?;
    if let Some(t) = &tmpl {
        template(t)?;
    }
    let interactive = !ctx.globals.json && io::stdin().is_terminal() && io::stderr().is_terminal();
    let tmpl = match tmpl {
        Some(t) => t,
        None if interactive => ask_template()?,
        None => DEFAULT_TEMPLATE.to_string(),
    };
    let (tmpl, text) = preset::get(&tmpl)?;
    let (tmpl, mut text) = (tmpl.to_string(), text.to_string());
    let path = dir.join(MANIFEST_FILE);
    if interactive {
        let current = manifest::parse(&text, &path)?.base.to_string();
        let image = ask(&format!("Base image [{current}]: "))?;
        if !image.is_empty() && image != current {
            text = pin::rewrite_image(&text, &image).map_err(|m| Fail::Usage(format!("base image: {m}")))?;
        }
    }
    // A typed-in image must make a valid manifest before anything is written.
    let m = manifest::parse(&text, &path)?;
    std::fs::create_dir_all(&dir).map_err(libkp::Error::input("create directory", &dir))?;
    if force {
        file::write_atomic(&path, text.as_bytes())
    } else {
        file::write_new(&path, text.as_bytes())
    }
    .map_err(libkp::Error::from)?;
    report(ctx, &path, &tmpl, &m.base)
}

fn report(ctx: &Ctx, path: &Path, tmpl: &str, image: &schema::ImageRef) -> Result {
    if ctx.globals.json {
        print_json(&serde_json::json!({"manifest": path, "template": tmpl, "image": image.to_string()}))?;
    } else {
        println!("Created {} from template {tmpl} (base image {image})", path.display());
    }
    Ok(0)
}

fn ask(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    io::stderr().flush()?;
    let mut line = String::new();
    if io::stdin().lock().read_line(&mut line)? == 0 {
        return Err(Fail::Usage("no answer (end of input)".into()));
    }
    Ok(line.trim().to_string())
}

fn ask_template() -> Result<String> {
    let all: Vec<_> = preset::PRESETS.iter().map(|(n, _)| *n).collect();
    loop {
        let answer = ask(&format!("Template ({}) [{DEFAULT_TEMPLATE}]: ", all.join(", ")))?;
        let answer = if answer.is_empty() {
            DEFAULT_TEMPLATE.to_string()
        } else {
            answer
        };
        if preset::find(&answer).is_some() {
            return Ok(answer);
        }
        eprintln!("No template {answer:?}.");
    }
}
