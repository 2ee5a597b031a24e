//! doctor and migrate: the host's capabilities and the store's format.

use libkp::care::Status;

use crate::ctx::{print_json, Ctx, Result};

pub const DOCTOR_HELP: &str = "\
Checks what this host and user can do, one line each, `ok`, `warn` or `fail`,
with the fix below a warn or fail: user namespaces, overlayfs (the kernel's
with userxattr, or fuse-overlayfs), newuidmap and a subordinate id range,
cgroup v2 delegation (for resource limits), which OCI runtimes (runc, crun,
youki) are installed and pass the probe (for backend = \"oci\"), the store (every object records
and refs reach is present at its size, each named by id and path with its fix;
verify-store re-hashes everything), its name index (agrees with the environment records) and its
permissions (directories 0700, lock files 0600, no
symlinks). Changes nothing; the probes run in a throw-away child process.

--fix: repairs what it can (store permissions, the name index), prints `fixed NAME: WHAT`
for each, then checks again and prints the new results.

Exit status: 0 when nothing failed (warnings allowed), 1 otherwise.
--json: {\"ok\", \"checks\": [{\"name\", \"status\", \"detail\", \"fix\"}],
\"fixed\": [{\"name\", \"ok\", \"detail\"}]}.
";

pub const MIGRATE_HELP: &str = "\
Reports the store's format version and upgrades an older one in place. This
build reads format 1, the first, so a format-1 store is up to date. A newer
format (written by a newer Karapace) is refused and left untouched (exit 3).

--json: {\"store\", \"found\", \"current\", \"upgraded\": [N...]}.
";

pub fn doctor(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    use lexopt::Arg::*;
    let mut fix = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("fix") => fix = true,
            _ => return Err(arg.unexpected().into()),
        }
    }
    let store = ctx.store_path()?;
    let mut checks = libkp::care::doctor(&store);
    let mut fixed = Vec::new();
    if fix {
        fixed = libkp::care::repair(&checks, &store);
        if !fixed.is_empty() {
            checks = libkp::care::doctor(&store);
        }
    }
    let ok = checks.iter().all(|c| c.status != Status::Fail) && fixed.iter().all(|(_, r)| r.is_ok());
    if ctx.globals.json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "status": c.status.as_str(), "detail": c.detail, "fix": c.fix}))
            .collect();
        let fixed: Vec<_> = fixed
            .iter()
            .map(|(name, r)| match r {
                Ok(what) => serde_json::json!({"name": name, "ok": true, "detail": what}),
                Err(e) => serde_json::json!({"name": name, "ok": false, "detail": e.to_string()}),
            })
            .collect();
        print_json(&serde_json::json!({"ok": ok, "checks": list, "fixed": fixed}))?;
    } else {
        for (name, r) in &fixed {
            match r {
                Ok(what) => println!("fixed {name}: {what}"),
                Err(e) => println!("could not fix {name}: {e}"),
            }
        }
        for c in &checks {
            println!("{:<4}  {}: {}", c.status.as_str(), c.name, c.detail);
            if let Some(fix) = &c.fix {
                println!("      fix: {fix}");
            }
        }
    }
    Ok(if ok { 0 } else { 1 })
}

pub fn migrate(ctx: &mut Ctx, mut p: lexopt::Parser) -> Result {
    if let Some(arg) = p.next()? {
        return Err(arg.unexpected().into());
    }
    let path = ctx.store_path()?;
    let r = libkp::care::migrate(&path)?;
    if ctx.globals.json {
        print_json(&serde_json::json!({
            "store": path,
            "found": r.found,
            "current": libkp::care::CURRENT,
            "upgraded": r.upgraded,
        }))?;
    } else if r.upgraded.is_empty() {
        println!("{}: store format {}, up to date", path.display(), r.found);
    } else {
        println!(
            "{}: store format {} upgraded to {}",
            path.display(),
            r.found,
            libkp::care::CURRENT
        );
    }
    Ok(0)
}
