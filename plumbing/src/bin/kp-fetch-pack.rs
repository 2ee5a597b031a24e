use std::path::PathBuf;

use kp_plumbing::{lexopt, usage, utf8, Common, Result};

const USAGE: &str = "\
usage: kp-fetch-pack [--store PATH] [--token-file F] REMOTE REF-OR-ID

Fetches what the store lacks of everything the server's REF (or the object
ID) reaches, asking for the objects top-down, into a quarantine under tmp/;
they are published only when every one is verified and complete
(docs/pack-format.md). REMOTE is a URL or a configured remote's name. Prints
`ID OBJECTS BYTES`: the root, the objects new to the store and the bytes
received.

Exit status: 0 fetched; 1 refused, unreachable, no such ref, or a bad pack
(nothing stored).
";

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut token_file: Option<PathBuf> = None;
    let mut args = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Long("token-file") => token_file = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Value(v) => args.push(utf8(v, "argument")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let [remote, want] = &args[..] else {
        return usage("expected REMOTE REF-OR-ID");
    };
    let store = common.open_store()?;
    let cfg = libkp::remote::config::from_arg(Some(remote), token_file.as_deref())?;
    let remote = libkp::remote::Remote::open(&cfg)?;
    let id = match libkp::ObjectId::from_hex(want).filter(|_| want.len() == 64) {
        Some(id) => id,
        None => match remote.ls_refs()?.into_iter().find(|(n, _)| n == want) {
            Some((_, id)) => id,
            None => {
                eprintln!("kp-fetch-pack: {want}: no such ref on the remote");
                return Ok(1);
            }
        },
    };
    // The root's kind is learnt from the server: ask for each in turn.
    let mut last = None;
    for kind in [
        libkp::Kind::Env,
        libkp::Kind::Layer,
        libkp::Kind::Tree,
        libkp::Kind::Blob,
    ] {
        if remote.lacks(&[(kind, id)])? == [false] {
            last = Some(kind);
            break;
        }
    }
    let Some(kind) = last else {
        eprintln!("kp-fetch-pack: {id}: not on the remote");
        return Ok(1);
    };
    let (objects, bytes) = libkp::remote::fetch(&store, &remote, (kind, id))?;
    println!("{id} {objects} {bytes}");
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-fetch-pack", USAGE, run)
}
