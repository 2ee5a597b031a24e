use std::io::{self, Write};

use kp_plumbing::{lexopt, usage, utf8, Common, Fail, Result};
use libkp::object::{layer_pretty, Kind};
use libkp::Error;

const USAGE: &str = "\
usage: kp-cat-object (-t | -s | -e | -p) [--store PATH] REV
       kp-cat-object [--store PATH] KIND REV

Shows an object. REV is an id, a unique prefix, a ref or REV:PATH (see kp-rev-parse).

  -t    print the object's kind: blob, tree or layer
  -s    print its size in bytes
  -e    print nothing; exit 0 if it exists, 1 if not
  -p    pretty-print: a blob's bytes, a tree as a listing, a layer as JSON
  KIND  print the raw bytes, which must be of that kind
";

#[derive(PartialEq)]
enum Mode {
    Kind,
    Size,
    Exists,
    Pretty,
    Raw(Kind),
}

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut mode = None;
    let mut values = Vec::new();
    while let Some(arg) = p.next()? {
        let m = match arg {
            Long("store") => {
                common.store = Some(p.value()?.into());
                continue;
            }
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Short('t') => Mode::Kind,
            Short('s') => Mode::Size,
            Short('e') => Mode::Exists,
            Short('p') => Mode::Pretty,
            Value(v) => {
                values.push(utf8(v, "argument")?);
                continue;
            }
            _ => return Err(arg.unexpected().into()),
        };
        if mode.replace(m).is_some() {
            return usage("choose one of -t, -s, -e, -p");
        }
    }
    let rev = match (mode.is_some(), values.len()) {
        (true, 1) => values.pop().expect("one"),
        (false, 2) => {
            mode = Some(Mode::Raw(values[0].parse().map_err(Fail::Usage)?));
            values.pop().expect("two")
        }
        _ => return usage("expected one of -t/-s/-e/-p with REV, or KIND REV"),
    };
    let mode = mode.expect("set above");
    let store = common.open_store()?;
    let (kind, id) = match libkp::revparse::resolve(&store, &rev) {
        Ok(x) => x,
        Err(_) if mode == Mode::Exists => return Ok(1),
        Err(e) => return Err(e.into()),
    };
    let mut out = io::stdout().lock();
    match mode {
        Mode::Exists => {}
        Mode::Kind => writeln!(out, "{kind}")?,
        Mode::Size => {
            let path = store.object_path(kind, &id);
            let len = std::fs::symlink_metadata(&path)
                .map_err(Error::store("stat", &path))?
                .len();
            writeln!(out, "{len}")?;
        }
        Mode::Raw(want) if want != kind => {
            return Err(libkp::store::Error::WrongKind {
                id,
                expected: want,
                actual: kind,
            }
            .into());
        }
        Mode::Raw(_) | Mode::Pretty if kind == Kind::Blob => {
            let mut f = store.open_blob(&id)?;
            io::copy(&mut f, &mut out)?;
        }
        Mode::Raw(_) => out.write_all(&store.read(kind, &id)?)?,
        Mode::Pretty if kind == Kind::Tree => {
            let tree = store.read_tree(&id)?;
            if tree.opaque {
                writeln!(out, "# opaque")?;
            }
            for e in &tree.entries {
                out.write_all(&libkp::layer::format_entry(&e.name, e, false, true))?;
                out.write_all(b"\n")?;
            }
        }
        Mode::Pretty => {
            writeln!(out, "{}", layer_pretty(&store.read_layer(&id)?))?;
        }
    }
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-cat-object", USAGE, run)
}
