//! `remote`, `push`, `pull`, `ls-remote`: sharing environments
//! (docs/protocol.md).

use std::path::PathBuf;

use libkp::remote::config;

use crate::ctx::{print_json, Ctx, Fail, Result};

pub const REMOTE_HELP: &str = "\
Manages the remotes push and pull use, kept as [remotes.NAME] (url,
token_file) in $XDG_CONFIG_HOME/karapace/config.toml.

  remote add NAME URL [--token-file F]      a new remote
  remote set-url NAME URL [--token-file F]  change its URL (and token file)
  remote remove NAME
  remote list                               NAME URL per line

URL is http://HOST[:PORT] or https://... A token file holds one token
(`karapace-server token add`) and must be readable by its owner only (chmod
600). Without --remote, push and pull use the only remote, or `origin`.

--json (list): [{\"name\", \"url\", \"token_file\"}].
";

pub fn remote(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let mut args = Vec::new();
    let mut token_file: Option<PathBuf> = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("token-file") => token_file = Some(p.value()?.into()),
            Value(v) => args.push(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a[..] {
        ["add", name, url] => config::set(name, url, token_file.as_deref(), true)?,
        ["set-url", name, url] => config::set(name, url, token_file.as_deref(), false)?,
        ["remove", name] => config::remove(name)?,
        ["list"] | [] => {
            let all = config::list()?;
            if ctx.globals.json {
                let v: Vec<_> = all
                    .iter()
                    .map(|r| serde_json::json!({"name": r.name, "url": r.url, "token_file": r.token_file}))
                    .collect();
                print_json(&serde_json::Value::Array(v))?;
            } else {
                for r in all {
                    println!("{}\t{}", r.name, r.url);
                }
            }
        }
        _ => {
            return Err(Fail::Usage(
                "expected `add NAME URL`, `set-url NAME URL`, `remove NAME` or `list`".into(),
            ))
        }
    }
    Ok(0)
}

pub const PUSH_HELP: &str = "\
Sends environment ENV to a remote as NAME@TAG (default: ENV's name, tag
`latest`): only the objects the remote lacks, then the tag, moved by
compare-and-swap from the value the remote had, so two pushes of one tag at
once cannot both win. A TAG may not begin with a digest algorithm's name
(blake3, sha256, ...): `NAME@TAG` is never a pin or a digest
(docs/protocol.md, \"Names\"). Prints `pushed NAME@TAG (N objects, B bytes)`;
on a terminal, standard error shows the upload's progress (bytes, objects,
rate).

Options:
  --remote R     the remote (default: the only one, or origin)
  --snapshots    send ENV's snapshots too

Exit status: 0 pushed; 1 refused (a conflict: the tag moved meanwhile; 401 or
403; a bad name) or unreachable.
--json: {\"env_id\", \"ref\", \"object\", \"objects\", \"bytes\", \"updated\"}.

push ENV oci://REGISTRY/REPO:TAG [--chunk-size BYTES] sends ENV to an OCI
registry as an image podman also runs (docs/oci.md): blobs the repository
has are skipped, others mounted or uploaded (in chunks above BYTES, default
64 MiB). --json: {\"env_id\", \"reference\", \"digest\", \"layers\",
\"present\", \"mounted\", \"uploaded\", \"bytes\"}.
";

pub fn push(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    if super::oci::names_registry(&mut p) {
        return super::oci::push(ctx, p);
    }
    use lexopt::Arg::*;
    let (mut env, mut dest, mut remote, mut snapshots) = (None, None, None, false);
    while let Some(arg) = p.next()? {
        match arg {
            Long("remote") => remote = Some(p.value()?.to_string_lossy().into_owned()),
            Long("snapshots") => snapshots = true,
            Value(v) if env.is_none() => env = Some(v.to_string_lossy().into_owned()),
            Value(v) if dest.is_none() => dest = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let env = env.ok_or_else(|| Fail::Usage("missing ENV".into()))?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    let (name, tag) = match dest {
        Some(d) => libkp::remote::parse_name_tag(&d)?,
        None => match &rec.name {
            Some(n) => (n.clone(), "latest".to_string()),
            None => return Err(Fail::Usage("ENV has no name: give NAME@TAG".into())),
        },
    };
    let remote = libkp::remote::Remote::open(&config::from_arg(remote.as_deref(), None)?)?.with_progress(true);
    let report = libkp::remote::push(store, &rec, &remote, &name, &tag, snapshots)?;
    if ctx.globals.json {
        print_json(&serde_json::to_value(&report).expect("a report serialises"))?;
    } else {
        let how = if report.updated { "pushed" } else { "up to date" };
        println!(
            "{how} {name}@{tag} ({} objects, {} bytes)",
            report.objects, report.bytes
        );
    }
    Ok(0)
}

pub const PULL_HELP: &str = "\
Fetches NAME@TAG from a remote and records it as an environment here, with
the same env_id: only the objects this store lacks are fetched, every one
verified, and nothing is published unless all of them arrived. It runs at
once (`karapace exec N -- ...`); its origin is remote, so its mounts and host
integration apply only once trusted (`karapace trust`). Prints `pulled
NAME@TAG as SHORT_ID (N objects, B bytes)`; on a terminal, standard error
shows the download's progress (bytes, objects, rate).

Options:
  --remote R   the remote (default: the only one, or origin)
  --name N     name it N here (default: no name)

Exit status: 0 pulled (or here already); 1 no such tag, refused, a bad pack
(nothing stored), the name is taken.
--json: {\"env_id\", \"name\", \"objects\", \"bytes\", \"recorded\"}.

pull oci://REGISTRY/REPO:TAG [--name N] does the same from an OCI registry
(docs/oci.md): each layer checked against its sha256 and against the layer
the environment names. --json: {\"env_id\", \"name\", \"digest\",
\"layers\", \"bytes\", \"recorded\"}.
";

pub fn pull(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    if super::oci::names_registry(&mut p) {
        return super::oci::pull(ctx, p);
    }
    use lexopt::Arg::*;
    let (mut src, mut remote, mut name) = (None, None, None);
    while let Some(arg) = p.next()? {
        match arg {
            Long("remote") => remote = Some(p.value()?.to_string_lossy().into_owned()),
            Long("name") => name = Some(p.value()?.to_string_lossy().into_owned()),
            Value(v) if src.is_none() => src = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let src = src.ok_or_else(|| Fail::Usage("missing NAME@TAG".into()))?;
    let (rname, tag) = libkp::remote::parse_name_tag(&src)?;
    let store = ctx.store();
    let remote = libkp::remote::Remote::open(&config::from_arg(remote.as_deref(), None)?)?.with_progress(true);
    let report = libkp::remote::pull(store, &remote, &rname, &tag, name.as_deref())?;
    if ctx.globals.json {
        print_json(&serde_json::to_value(&report).expect("a report serialises"))?;
    } else {
        let how = if report.recorded { "pulled" } else { "already here:" };
        println!(
            "{how} {src} as {} ({} objects, {} bytes)",
            &report.env_id[..12],
            report.objects,
            report.bytes
        );
    }
    Ok(0)
}

pub const LS_REMOTE_HELP: &str = "\
Lists the environments on a remote as `NAME@TAG ID` (the environment
object's id), and other refs as `REF ID`.

Options:
  --remote R   the remote (default: the only one, or origin)

--json: [{\"ref\", \"id\", \"name\", \"tag\"}].
";

pub fn ls_remote(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let mut remote = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("remote") => remote = Some(p.value()?.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let remote = libkp::remote::Remote::open(&config::from_arg(remote.as_deref(), None)?)?;
    let mut out = Vec::new();
    for (r, id) in remote.ls_refs()? {
        let nt = r.strip_prefix("refs/envs/").and_then(|t| t.split_once('/'));
        if !ctx.globals.json {
            match nt {
                Some((n, t)) => println!("{n}@{t}\t{id}"),
                None => println!("{r}\t{id}"),
            }
        }
        out.push(serde_json::json!({"ref": r, "id": id.to_hex(), "name": nt.map(|x| x.0), "tag": nt.map(|x| x.1)}));
    }
    if ctx.globals.json {
        print_json(&serde_json::Value::Array(out))?;
    }
    Ok(0)
}
