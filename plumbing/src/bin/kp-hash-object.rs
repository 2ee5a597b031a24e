use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use kp_plumbing::{lexopt, usage, Common, Fail, Result};
use libkp::{Error, ObjectId, Store};

const USAGE: &str = "\
usage: kp-hash-object [-w] [--stdin] [--stdin-paths] [--store PATH] [--] [FILE...]

Prints the blob id of each FILE, one per line in the order given. A blob id is the
BLAKE3 hash of the file's bytes: the same digits `b3sum` prints.

  -w             also write each file into the store as a blob
  --stdin        hash standard input (printed before any FILE)
  --stdin-paths  read file paths from standard input, one per line
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let (mut write, mut stdin, mut stdin_paths) = (false, false, false);
    let mut paths: Vec<PathBuf> = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Short('w') => write = true,
            Long("stdin") => stdin = true,
            Long("stdin-paths") => stdin_paths = true,
            Value(v) => paths.push(v.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if stdin && stdin_paths {
        return usage("--stdin and --stdin-paths both read standard input; choose one");
    }
    if stdin_paths && !paths.is_empty() {
        return usage("--stdin-paths takes no FILE arguments");
    }
    if !stdin && !stdin_paths && paths.is_empty() {
        return usage("nothing to hash: give FILEs, --stdin or --stdin-paths");
    }
    let store = if write { Some(common.open_store()?) } else { None };
    let _guard = store.as_ref().map(Store::write_guard).transpose()?;
    let mut out = io::stdout().lock();
    if stdin {
        let id = match &store {
            Some(s) => s.write_blob_from_reader(io::stdin().lock(), 0o644)?.0,
            None => {
                libkp::hash::hash_reader(io::stdin().lock())
                    .map_err(Error::input("read", std::path::Path::new("<stdin>")))?
                    .0
            }
        };
        writeln!(out, "{id}")?;
    }
    if stdin_paths {
        for line in io::stdin().lock().lines() {
            let line = line.map_err(|e| Fail::Lib(Error::input("read", std::path::Path::new("<stdin>"))(e)))?;
            writeln!(out, "{}", hash_one(store.as_ref(), Path::new(&line))?)?;
        }
    }
    for path in &paths {
        writeln!(out, "{}", hash_one(store.as_ref(), path)?)?;
    }
    Ok(0)
}

fn hash_one(store: Option<&Store>, path: &Path) -> Result<ObjectId> {
    let meta = std::fs::metadata(path).map_err(Error::input("stat", path))?;
    // A symlink the user names is read as its target (the library opens
    // files without following).
    let target = std::fs::canonicalize(path).map_err(Error::input("resolve", path))?;
    let path = target.as_path();
    if !meta.is_file() {
        return Err(libkp::store::Error::Unsupported {
            path: path.to_path_buf(),
            what: "not a regular file".into(),
        }
        .into());
    }
    let id = match store {
        Some(s) => {
            s.write_blob_from_path(path, std::os::unix::fs::PermissionsExt::mode(&meta.permissions()), None)?
                .0
        }
        None => libkp::hash::hash_path(path).map_err(Error::input("read", path))?.0,
    };
    Ok(id)
}

fn main() {
    kp_plumbing::main("kp-hash-object", USAGE, run)
}
