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
  --template T   minimal, dev, gui-dev, rust-dev or ubuntu-dev (examples/T.toml)
  --force        overwrite an existing NAME/karapace.toml

Exit status: 0 created; 1 the manifest exists (without --force) or cannot be
written; 64 usage.
";

pub use libkp::schema::templates::TEMPLATES;

const DEFAULT_TEMPLATE: &str = "minimal";

fn template(name: &str) -> Result<&'static str> {
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let all: Vec<_> = TEMPLATES.iter().map(|(n, _)| *n).collect();
            Fail::Usage(format!("unknown template {name:?}; expected one of {}", all.join(", ")))
        })
}

pub fn run(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    let (mut name, mut tmpl, mut force) = (None::<PathBuf>, None::<String>, false);
    while let Some(arg) = p.next()? {
        match arg {
            lexopt::Arg::Long("template") | lexopt::Arg::Short('t') => {
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
    let mut text = template(&tmpl)?.to_string();
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
    let all: Vec<_> = TEMPLATES.iter().map(|(n, _)| *n).collect();
    loop {
        let answer = ask(&format!("Template ({}) [{DEFAULT_TEMPLATE}]: ", all.join(", ")))?;
        let answer = if answer.is_empty() {
            DEFAULT_TEMPLATE.to_string()
        } else {
            answer
        };
        if template(&answer).is_ok() {
            return Ok(answer);
        }
        eprintln!("No template {answer:?}.");
    }
}
