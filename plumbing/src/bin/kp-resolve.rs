use std::io::Read;
use std::path::PathBuf;

use kp_plumbing::{lexopt, usage, Fail, Result};
use libkp::schema::{self, lock, resolve, KnownImages, KnownPackages};

const USAGE: &str = "\
usage: kp-resolve [--image-digest HEX] [--closure FILE] [--stdout | --canonical] [MANIFEST]
       kp-resolve --check [MANIFEST]
       kp-resolve --normalize [MANIFEST]

Resolves MANIFEST (default ./karapace.toml; a directory means its karapace.toml)
into a lock, writes it atomically to karapace.lock beside the manifest, and prints
the env_id. Offline, only what is known resolves: a pinned image reference, else
--image-digest, else the digest the existing lock holds for the same reference;
the package closure from --closure, else the existing lock's closure for the same
base and request (docs/lock.md).

  --image-digest HEX  digest of an unpinned base image (64 hex digits)
  --closure FILE      the installed closure, NAME VERSION ARCH per line ('-': stdin)
  --stdout            print the lock instead of writing it
  --canonical         print the canonical JSON that env_id hashes, with no final
                      newline (so `| b3sum` prints the env_id); write nothing
  --check             write nothing: verify the lock's integrity, then that the
                      manifest still matches it (lists the fields that drifted)
  --normalize         print the normalised manifest as canonical JSON

Exit status: 0 ok; 1 cannot resolve, or the manifest drifted from the lock;
2 invalid manifest, lock or closure; 64 usage.
";

#[derive(PartialEq)]
enum Mode {
    Write,
    Stdout,
    Canonical,
    Check,
    Normalize,
}

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    let (mut mode, mut manifest, mut digest, mut closure) = (Mode::Write, None, None, None);
    while let Some(arg) = p.next()? {
        let mut set = |m: Mode| {
            if mode == Mode::Write {
                mode = m;
                Ok(())
            } else {
                usage("choose one of --stdout, --canonical, --check, --normalize")
            }
        };
        match arg {
            lexopt::Arg::Long("image-digest") => digest = Some(kp_plumbing::utf8(p.value()?, "digest")?),
            lexopt::Arg::Long("closure") => closure = Some(PathBuf::from(p.value()?)),
            lexopt::Arg::Long("stdout") => set(Mode::Stdout)?,
            lexopt::Arg::Long("canonical") => set(Mode::Canonical)?,
            lexopt::Arg::Long("check") => set(Mode::Check)?,
            lexopt::Arg::Long("normalize") => set(Mode::Normalize)?,
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return kp_plumbing::help(usage_text),
            lexopt::Arg::Value(v) if manifest.is_none() => manifest = Some(PathBuf::from(v)),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if let Some(d) = &digest {
        resolve::check_digest(d).map_err(Fail::Usage)?;
    }
    if matches!(mode, Mode::Check | Mode::Normalize) && (digest.is_some() || closure.is_some()) {
        return usage("--image-digest and --closure are for resolving, not with --check or --normalize");
    }
    let path = schema::manifest_path(manifest.as_deref());
    let m = schema::manifest::load(&path).map_err(libkp::Error::from)?;
    match mode {
        Mode::Normalize => println!("{}", schema::canonical::to_string(&m.to_json())),
        Mode::Check => {
            let lock_path = lock::path_for(&path);
            let l = schema::Lock::load(&lock_path).map_err(libkp::Error::from)?;
            l.check_intent(&m, &lock_path).map_err(libkp::Error::from)?;
            println!("{}", l.env_id);
        }
        Mode::Write | Mode::Stdout | Mode::Canonical => {
            // A damaged previous lock is no source of truth; the new one replaces it.
            let previous = schema::existing_lock(&path).unwrap_or_else(|e| {
                libkp::log!(libkp::log::Level::Warn, "ignoring the existing lock: {e}");
                None
            });
            let explicit = match closure {
                None => None,
                Some(f) => Some(read_closure(&f)?),
            };
            let images = KnownImages {
                explicit: digest,
                previous: previous.as_ref().map(|l| l.base.clone()),
            };
            let packages = KnownPackages { explicit, previous };
            let l = resolve::resolve(&m, &images, &packages).map_err(libkp::Error::from)?;
            match mode {
                Mode::Stdout => print!("{}", l.to_toml()),
                // No newline: `kp-resolve --canonical | b3sum` must print the env_id.
                Mode::Canonical => print!("{}", schema::identity::canonical_lock(&l)),
                _ => {
                    l.write(&lock::path_for(&path)).map_err(libkp::Error::from)?;
                    println!("{}", l.env_id);
                }
            }
        }
    }
    Ok(0)
}

fn read_closure(f: &std::path::Path) -> Result<Vec<schema::LockedPackage>> {
    let mut text = String::new();
    let read = if f.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(f).and_then(|mut h| h.read_to_string(&mut text))
    };
    read.map_err(|source| libkp::store::Error::Input {
        op: "read closure",
        path: f.into(),
        source,
    })?;
    Ok(resolve::parse_closure(&text, f).map_err(libkp::Error::from)?)
}

fn main() {
    kp_plumbing::main("kp-resolve", USAGE, run)
}
