//! `push ENV oci://...` and `pull oci://...`: environments to and from OCI
//! registries (docs/oci.md, "Environments in a registry"). `push` and `pull`
//! (cmd/remote.rs) hand over here when an argument is an `oci://` or
//! `docker://` reference.

use libkp::remote::oci;

use crate::ctx::{print_json, Ctx, Fail, Result};

/// Whether the arguments left name a registry (`oci://`, `docker://`).
pub fn names_registry(p: &mut lexopt::Parser) -> bool {
    p.raw_args().is_ok_and(|raw| {
        raw.as_slice().iter().any(|a| {
            let a = a.to_string_lossy().to_ascii_lowercase();
            a.starts_with("oci://") || a.starts_with("docker://")
        })
    })
}

/// `karapace push ENV oci://REGISTRY/REPO:TAG [--chunk-size BYTES]`.
pub fn push(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let (mut env, mut dest) = (None, None);
    let mut opts = oci::OciPushOptions::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("chunk-size") => {
                let v = p.value()?.to_string_lossy().into_owned();
                opts.chunk = v
                    .parse()
                    .map_err(|_| Fail::Usage(format!("--chunk-size {v:?}: a number of bytes (0: whole)")))?;
            }
            Value(v) if env.is_none() => env = Some(v.to_string_lossy().into_owned()),
            Value(v) if dest.is_none() => dest = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let (Some(env), Some(dest)) = (env, dest) else {
        return Err(Fail::Usage("expected ENV oci://REGISTRY/REPO:TAG".into()));
    };
    let target = oci::parse_ref(&dest)?;
    let store = ctx.store();
    let rec = store.find_env(&env)?;
    let report = oci::push(store, &rec, &target, &opts)?;
    if ctx.globals.json {
        print_json(&serde_json::to_value(&report).expect("a report serialises"))?;
    } else {
        println!(
            "pushed {} ({} layers; blobs: {} uploaded, {} mounted, {} already there; {} bytes)",
            report.reference, report.layers, report.uploaded, report.mounted, report.present, report.bytes
        );
    }
    Ok(0)
}

/// `karapace pull oci://REGISTRY/REPO:TAG [--name N]`.
pub fn pull(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let (mut src, mut name) = (None, None);
    while let Some(arg) = p.next()? {
        match arg {
            Long("name") => name = Some(p.value()?.to_string_lossy().into_owned()),
            Value(v) if src.is_none() => src = Some(v.to_string_lossy().into_owned()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let src = src.ok_or_else(|| Fail::Usage("missing oci://REGISTRY/REPO:TAG".into()))?;
    let r = oci::parse_ref(&src)?;
    let report = oci::pull(ctx.store(), &r, name.as_deref())?;
    if ctx.globals.json {
        print_json(&serde_json::to_value(&report).expect("a report serialises"))?;
    } else {
        let how = if report.recorded { "pulled" } else { "already here:" };
        println!(
            "{how} {src} as {} ({} layers, {} bytes)",
            &report.env_id[..12],
            report.layers,
            report.bytes
        );
    }
    Ok(0)
}
