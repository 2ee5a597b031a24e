use kp_plumbing::{lexopt, usage, utf8, Common, Result};
use libkp::refs::Expect;
use libkp::{ObjectId, Store};

const USAGE: &str = "\
usage: kp-update-ref [--store PATH] REF NEW [OLD]
       kp-update-ref -d [--store PATH] REF [OLD]

Points REF (a full name under refs/) at NEW, or deletes it with -d. With OLD the
update happens only if REF is at OLD now; an empty OLD or 64 zeros means REF must
not exist yet. The check and the update are atomic: of two concurrent updates
with the same OLD, one fails. NEW and OLD are revisions (see kp-rev-parse); NEW
must be in the store.

Exit status: 0 updated, 1 REF was not at OLD or is locked by another writer.
";

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn expect(store: &Store, old: Option<&String>) -> Result<Expect> {
    Ok(match old.map(String::as_str) {
        None => Expect::Any,
        Some("") | Some(ZERO) => Expect::Absent,
        Some(rev) => Expect::Is(resolve(store, rev)?),
    })
}

fn resolve(store: &Store, rev: &str) -> Result<ObjectId> {
    Ok(libkp::revparse::resolve(store, rev)?.1)
}

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::*;
    let mut common = Common::default();
    let mut delete = false;
    let mut values = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("store") => common.store = Some(p.value()?.into()),
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            Short('d') => delete = true,
            Value(v) => values.push(utf8(v, "argument")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let store = common.open_store()?;
    match (delete, values.as_slice()) {
        (false, [name, new, rest @ ..]) if rest.len() <= 1 => {
            let new = resolve(&store, new)?;
            store.update_ref(name, Some(new), expect(&store, rest.first())?)?;
        }
        (true, [name, rest @ ..]) if rest.len() <= 1 => {
            store.update_ref(name, None, expect(&store, rest.first())?)?;
        }
        _ => return usage("expected REF NEW [OLD], or -d REF [OLD]"),
    }
    Ok(0)
}

fn main() {
    kp_plumbing::main("kp-update-ref", USAGE, run)
}
