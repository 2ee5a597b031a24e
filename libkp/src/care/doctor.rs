//! `karapace doctor`: what this host and user can do, each check with the fix
//! when it falls short. It changes nothing: the probes run in a throw-away
//! child in its own user and mount namespaces, over a scratch directory. A
//! check may carry a [`Repair`], which `doctor --fix` runs ([`repair`]) when
//! the check is not ok.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Error, Result};
use crate::sandbox::{idmap, HostFacts};
use crate::store::{Exposure, Store};
use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about a warn or fail.
    pub fix: Option<String>,
    /// What `doctor --fix` can do about it itself.
    pub repair: Option<Repair>,
}

/// What a repair works on.
#[derive(Debug)]
pub struct RepairContext<'a> {
    /// Where the store is (or would be).
    pub store: &'a Path,
}

/// A repair: changes the host or the store so the check passes, and says
/// what it did in one line.
pub type Repair = fn(&RepairContext) -> Result<String>;

fn check(name: &'static str, status: Status, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix,
        repair: None,
    }
}

/// Runs every check. `store` is where the store is (or would be).
pub fn doctor(store: &Path) -> Vec<Check> {
    let host = HostFacts::current();
    let probe = probe_namespaces();
    let mut out = vec![userns(&probe), overlay(&probe), subids(&host), cgroup(), oci_runtimes()];
    out.push(store_health(store));
    out.push(name_index(store));
    out.push(list_summary(store));
    out.push(store_permissions(store));
    out
}

/// The name index (`meta/names/`) says what the environment records say.
fn name_index(path: &Path) -> Check {
    const NAME: &str = "name index";
    let Ok(store) = Store::open(path) else {
        return check(NAME, Status::Ok, format!("no store at {} yet", path.display()), None);
    };
    match store.name_index_problems() {
        Ok(p) if p.is_empty() => check(NAME, Status::Ok, "agrees with the environment records", None),
        Ok(p) => {
            let mut c = check(
                NAME,
                Status::Warn,
                p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "),
                Some(
                    "`karapace doctor --fix` rebuilds it from the records (commands already follow the records)".into(),
                ),
            );
            c.repair = Some(|ctx| {
                let n = Store::open(ctx.store)?.repair_name_index()?;
                Ok(format!(
                    "name index rebuilt from the records ({n} entries written or removed)"
                ))
            });
            c
        }
        Err(e) => check(
            NAME,
            Status::Fail,
            e.to_string(),
            Some("run `karapace verify-store`".into()),
        ),
    }
}

/// The listing's summary (`cache/envs-list`), where `list` takes it for
/// current, holds what the records hold.
fn list_summary(path: &Path) -> Check {
    const NAME: &str = "list summary";
    let Ok(store) = Store::open(path) else {
        return check(NAME, Status::Ok, format!("no store at {} yet", path.display()), None);
    };
    match store.summary_agrees() {
        Ok(None) => check(
            NAME,
            Status::Ok,
            "none current (the next `karapace list` writes it)",
            None,
        ),
        Ok(Some(true)) => check(NAME, Status::Ok, "agrees with the environment records", None),
        Ok(Some(false)) => {
            let mut c = check(
                NAME,
                Status::Warn,
                format!(
                    "{} differs from the environment records (a record edited in place?); `karapace list` shows the summary",
                    store.root().join(crate::env::SUMMARY).display()
                ),
                Some("`karapace doctor --fix` removes it; the next `karapace list` reads the records and writes it again".into()),
            );
            c.repair = Some(|ctx| {
                Store::open(ctx.store)?.remove_summary()?;
                Ok("list summary removed; the next `karapace list` rebuilds it from the records".into())
            });
            c
        }
        Err(e) => check(
            NAME,
            Status::Fail,
            e.to_string(),
            Some("run `karapace verify-store`".into()),
        ),
    }
}

/// Runs the repair of every check that is not ok and has one: the check's
/// name and what the repair did, or why it failed.
pub fn repair(checks: &[Check], store: &Path) -> Vec<(&'static str, Result<String>)> {
    let ctx = RepairContext { store };
    checks
        .iter()
        .filter(|c| c.status != Status::Ok)
        .filter_map(|c| c.repair.map(|r| (c.name, r(&ctx))))
        .collect()
}

/// The store is its owner's alone: its directories 0700, its lock files
/// 0600, no symlink where it expects its own directories.
fn store_permissions(path: &Path) -> Check {
    const NAME: &str = "store permissions";
    if fs::symlink_metadata(path).is_err() {
        return check(NAME, Status::Ok, format!("no store at {} yet", path.display()), None);
    }
    let found = crate::store::exposed_paths(path);
    let (links, modes): (Vec<_>, Vec<_>) = found.iter().partition(|e| matches!(e, Exposure::Symlink { .. }));
    let list = |v: &[&Exposure]| {
        let mut s: Vec<String> = v.iter().take(3).map(|e| e.to_string()).collect();
        if v.len() > 3 {
            s.push(format!("and {} more", v.len() - 3));
        }
        s.join(", ")
    };
    if !links.is_empty() {
        return check(
            NAME,
            Status::Fail,
            format!("symlinks where the store expects its own directories: {}", list(&links)),
            Some("remove them (karapace follows none of them, and refuses to work through them)".into()),
        );
    }
    if !modes.is_empty() {
        let mut c = check(
            NAME,
            Status::Warn,
            format!(
                "{} path(s) open to other users (directories should be 0700, lock files 0600): {}",
                modes.len(),
                list(&modes)
            ),
            Some("`karapace doctor --fix` takes group and other permissions off them".into()),
        );
        c.repair = Some(|ctx| {
            let n = crate::store::make_private(ctx.store)?;
            Ok(format!(
                "{}: {n} path(s) made private to their owner",
                ctx.store.display()
            ))
        });
        return c;
    }
    check(
        NAME,
        Status::Ok,
        format!("{}: directories 0700, lock files 0600", path.display()),
        None,
    )
}

/// What the probe child could do: (user namespace, kernel overlay with userxattr).
struct Probe {
    userns: Result<(), String>,
    overlay: Result<(), String>,
}

const EXIT_MAPS: i32 = 10;
const EXIT_OVERLAY: i32 = 11;

fn probe_namespaces() -> Probe {
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            return Probe {
                userns: Err(format!("cannot create a scratch directory: {e}")),
                overlay: Err("not probed".into()),
            }
        }
    };
    let dirs: Vec<PathBuf> = ["lower", "upper", "work"]
        .iter()
        .map(|d| scratch.path().join(d))
        .collect();
    for d in &dirs {
        let _ = fs::create_dir(d);
    }
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS;
    let pid = match sys::clone_fork(flags) {
        Ok(0) => sys::exit_now(child(uid, gid, &dirs)),
        Ok(pid) => pid,
        Err(e) => {
            return Probe {
                userns: Err(format!("clone(CLONE_NEWUSER): {e}")),
                overlay: Err("needs a user namespace".into()),
            }
        }
    };
    let code = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty()).ok())
        .flatten()
        .and_then(|(_, s)| s.exit_status())
        .unwrap_or(-1);
    match code {
        0 => Probe {
            userns: Ok(()),
            overlay: Ok(()),
        },
        EXIT_MAPS => Probe {
            userns: Err("the namespace was created but its id map could not be written".into()),
            overlay: Err("needs a user namespace".into()),
        },
        EXIT_OVERLAY => Probe {
            userns: Ok(()),
            overlay: Err("the kernel refused an overlay with userxattr in a user namespace".into()),
        },
        other => Probe {
            userns: Err(format!("the probe ended with status {other}")),
            overlay: Err("not probed".into()),
        },
    }
}

/// In the probe child (single-threaded, in new user and mount namespaces).
fn child(uid: u32, gid: u32, dirs: &[PathBuf]) -> i32 {
    let maps = fs::write("/proc/self/setgroups", "deny")
        .and_then(|_| fs::write("/proc/self/uid_map", format!("0 {uid} 1")))
        .and_then(|_| fs::write("/proc/self/gid_map", format!("0 {gid} 1")));
    if maps.is_err() {
        return EXIT_MAPS;
    }
    use rustix::mount::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsopen, FsOpenFlags};
    let ok = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).and_then(|fs| {
        fsconfig_set_string(&fs, "lowerdir", &dirs[0])?;
        fsconfig_set_string(&fs, "upperdir", &dirs[1])?;
        fsconfig_set_string(&fs, "workdir", &dirs[2])?;
        fsconfig_set_flag(&fs, "userxattr")?;
        fsconfig_create(&fs)
    });
    if ok.is_err() {
        return EXIT_OVERLAY;
    }
    0
}

fn userns(p: &Probe) -> Check {
    match &p.userns {
        Ok(()) => check(
            "user namespaces",
            Status::Ok,
            "an unprivileged user namespace was created",
            None,
        ),
        Err(why) => check(
            "user namespaces",
            Status::Fail,
            why.clone(),
            Some(
                "allow them: `sysctl user.max_user_namespaces=15000`, on Debian/Ubuntu also \
                 `sysctl kernel.unprivileged_userns_clone=1` and, where AppArmor restricts them, \
                 `sysctl kernel.apparmor_restrict_unprivileged_userns=0`"
                    .into(),
            ),
        ),
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

fn overlay(p: &Probe) -> Check {
    match &p.overlay {
        Ok(()) => check("overlay", Status::Ok, "kernel overlayfs with userxattr works", None),
        Err(why) if on_path("fuse-overlayfs") && Path::new("/dev/fuse").exists() => check(
            "overlay",
            Status::Warn,
            format!("{why}; fuse-overlayfs will be used instead (slower)"),
            Some("Linux 5.11 or later mounts overlayfs in a user namespace natively".into()),
        ),
        Err(why) => check(
            "overlay",
            Status::Fail,
            why.clone(),
            Some("use Linux 5.11 or later, or install fuse-overlayfs (and make /dev/fuse usable)".into()),
        ),
    }
}

/// `doctor --fix`: gives root's environments their range (docs/sandbox.md,
/// "Id maps").
fn add_root_range(_: &RepairContext) -> Result<String> {
    let start = idmap::root_range(&HostFacts::current(), true).map_err(Error::from)?;
    Ok(format!(
        "{}:{start}:{} in /etc/subuid and /etc/subgid",
        idmap::ROOT_RANGE_OWNER,
        idmap::ROOT_RANGE_COUNT
    ))
}

fn subids(host: &HostFacts) -> Check {
    const NAME: &str = "subordinate ids";
    if host.is_host_root() {
        return match idmap::root_range(host, false) {
            Ok(start) => check(
                NAME,
                Status::Ok,
                format!(
                    "root's environments run as {start}+{} ({} in {})",
                    idmap::ROOT_RANGE_COUNT,
                    idmap::ROOT_RANGE_OWNER,
                    host.subuid_file.display()
                ),
                None,
            ),
            Err(e) => Check {
                repair: Some(add_root_range),
                ..check(
                    NAME,
                    Status::Warn,
                    format!("{e}; the first environment root runs adds it"),
                    Some("karapace doctor --fix".into()),
                )
            },
        };
    }
    if host.uid == 0 {
        return check(
            NAME,
            Status::Ok,
            "root of a mapped user namespace: its ids are mapped",
            None,
        );
    }
    let user = host.user.clone().unwrap_or_else(|| host.uid.to_string());
    let fix = format!(
        "apt install uidmap (newuidmap, newgidmap) and give {user} a range: \
         `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`"
    );
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    let uids = idmap::parse_subid(&read(&host.subuid_file), host.user.as_deref(), host.uid);
    let gids = idmap::parse_subid(&read(&host.subgid_file), host.user.as_deref(), host.gid);
    match (host.newuidmap, uids, gids) {
        (true, Some((us, un)), Some((gs, gn))) => check(
            NAME,
            Status::Ok,
            format!("newuidmap present; uids {us}+{un}, gids {gs}+{gn}"),
            None,
        ),
        (false, _, _) => check(
            NAME,
            Status::Warn,
            "newuidmap/newgidmap not installed: one id is mapped, package scripts that change owners fail",
            Some(fix),
        ),
        _ => check(
            NAME,
            Status::Warn,
            format!("no range for {user} in /etc/subuid or /etc/subgid: one id is mapped"),
            Some(fix),
        ),
    }
}

fn cgroup() -> Check {
    let mut c = cgroup_v2();
    let host_root = rustix::process::getuid().is_root() && !crate::sandbox::rerun::is_rerun();
    if c.status != Status::Ok && crate::sandbox::runtime_limits_here(host_root) {
        c.detail
            .push_str("; environments with backend = \"oci\" have the runtime apply them (cgroup v1)");
    }
    c
}

fn cgroup_v2() -> Check {
    const NAME: &str = "cgroup delegation";
    let fix = Some(
        "run karapace in a delegated cgroup, e.g. `systemd-run --user --scope -p Delegate=yes karapace ...`"
            .to_string(),
    );
    let Ok(dir) = crate::mountinfo::own_cgroup() else {
        return check(
            NAME,
            Status::Warn,
            "no cgroup v2 hierarchy: resource limits will be refused",
            fix,
        );
    };
    let writable = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok();
    let controllers = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let have: Vec<&str> = controllers.split_whitespace().collect();
    let missing: Vec<&str> = ["cpu", "memory"].into_iter().filter(|c| !have.contains(c)).collect();
    if writable && missing.is_empty() {
        check(
            NAME,
            Status::Ok,
            format!("{} is writable with cpu and memory", dir.display()),
            None,
        )
    } else if !writable {
        check(
            NAME,
            Status::Warn,
            format!("{} is not writable: resource limits will be refused", dir.display()),
            fix,
        )
    } else {
        check(
            NAME,
            Status::Warn,
            format!(
                "{}: controllers {} not delegated: those limits will be refused",
                dir.display(),
                missing.join(", ")
            ),
            fix,
        )
    }
}

/// Which OCI runtimes are installed and pass the probe `auto` uses
/// (sandbox/oci/runtime.rs): only `backend = "oci"` environments need one.
fn oci_runtimes() -> Check {
    use crate::sandbox::oci;
    const NAME: &str = "oci runtimes";
    let mut works = Vec::new();
    let mut parts = Vec::new();
    for kind in oci::Kind::ALL {
        match oci::find(kind) {
            None => parts.push(format!("{}: not installed", kind.name())),
            Some(rt) => match oci::probe(&rt) {
                Ok(()) => {
                    works.push(kind.name());
                    parts.push(format!("{}: works ({})", kind.name(), rt.path.display()));
                }
                Err(e) => parts.push(format!("{}: fails here ({e})", kind.name())),
            },
        }
    }
    match works.first() {
        Some(first) => check(
            NAME,
            Status::Ok,
            format!("auto picks {first}; {}", parts.join("; ")),
            None,
        ),
        None => check(
            NAME,
            Status::Warn,
            format!(
                "none works: backend = \"oci\" environments will be refused; {}",
                parts.join("; ")
            ),
            Some("install runc (Debian: `apt-get install runc`), or keep backend = \"namespace\"".into()),
        ),
    }
}

/// A quick look, not `verify-store`: the version; every object the records
/// and refs reach is present, every tree and layer on the way hashes to its
/// name, every blob has its tree's size (blob contents are not hashed);
/// every record's writable layer; leftovers of crashes.
fn store_health(path: &Path) -> Check {
    const NAME: &str = "store";
    if !path.join("version").exists() {
        return check(
            NAME,
            Status::Warn,
            format!("no store at {} yet", path.display()),
            Some("`karapace init` or the first `karapace build` creates it".into()),
        );
    }
    let store = match Store::open(path) {
        Ok(s) => s,
        Err(e) => return check(NAME, Status::Fail, e.to_string(), Some("see `karapace migrate`".into())),
    };
    let mut problems = Vec::new();
    let mut stale = Vec::new();
    // What the walk starts from, and whose each start is (for messages and fixes).
    let mut roots: Vec<(crate::Kind, crate::ObjectId)> = Vec::new();
    let mut owners: Vec<Owner> = Vec::new();
    match store.list_envs() {
        Ok(envs) => {
            let mut snapshots = Vec::new();
            for rec in &envs {
                let env = rec.display_name();
                for (i, hex) in rec.layers.iter().enumerate() {
                    let role = if i == 0 { Role::Base } else { Role::Dependency };
                    match crate::ObjectId::from_hex(hex) {
                        Some(id) => {
                            roots.push((crate::Kind::Layer, id));
                            owners.push(Owner::Env(env.clone(), role));
                        }
                        None => problems.push(format!("environment {env}: layer {hex:?} is not an id")),
                    }
                }
                for s in &rec.snapshots {
                    match crate::ObjectId::from_hex(&s.layer) {
                        Some(id) => snapshots.push((id, env.clone())),
                        None => problems.push(format!("environment {env}: snapshot {:?} is not an id", s.layer)),
                    }
                }
                if !crate::drift::upper_dir(&store, &rec.env_id).is_dir() {
                    problems.push(format!("environment {env} has no writable layer"));
                }
                for m in crate::env::stale_run_markers(&store.env_dir(&rec.env_id).join("run")) {
                    stale.push(format!(
                        "environment {env}: run marker {} is stale (its process is gone; the next command on it removes it)",
                        m.display()
                    ));
                }
            }
            // Snapshots after every environment's own layers, so what they
            // share with those is named by its layer, not by a snapshot.
            for (id, env) in snapshots {
                roots.push((crate::Kind::Layer, id));
                owners.push(Owner::Env(env, Role::Snapshot));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    match store.list_refs("refs/") {
        Ok(refs) => {
            for (name, id) in refs {
                match store.kind_of(&id) {
                    Some(kind) => {
                        roots.push((kind, id));
                        owners.push(Owner::Ref(name));
                    }
                    None => problems.push(format!("ref {name} points to {id}, which is not in the store")),
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    let damage = crate::fsck::reachable_damage(&store, &roots);
    if !damage.is_empty() || !problems.is_empty() {
        return damaged(&store, problems, &damage, &roots, &owners);
    }
    let names: Vec<String> = fs::read_dir(store.path("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let leftovers = names.iter().filter(|n| crate::store::is_temp_name(n)).count();
    if leftovers > 0 {
        stale.push(format!(
            "{}: {leftovers} temporary file(s) in tmp/ (a crash's, or a running writer's)",
            path.display()
        ));
    }
    for n in names.iter().filter(|n| !crate::store::is_temp_name(n)) {
        stale.push(format!(
            "{} is not a karapace temporary file (gc leaves it; remove it if nobody needs it)",
            store.path("tmp").join(n).display()
        ));
    }
    if !stale.is_empty() {
        return check(
            NAME,
            Status::Warn,
            stale.join("; "),
            Some("`karapace gc` removes crash leftovers".into()),
        );
    }
    check(
        NAME,
        Status::Ok,
        format!(
            "{}: every object the records and refs reach is in place at its size",
            path.display()
        ),
        None,
    )
}

/// What a damaged object is part of.
enum Owner {
    Env(String, Role),
    Ref(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Base,
    Dependency,
    Snapshot,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Env(env, Role::Base) => write!(f, "environment {env}, base layer"),
            Owner::Env(env, Role::Dependency) => write!(f, "environment {env}, dependency layer"),
            Owner::Env(env, Role::Snapshot) => write!(f, "environment {env}, snapshot"),
            Owner::Ref(name) => write!(f, "ref {name}"),
        }
    }
}

/// Most damaged objects the store check names one by one.
const SHOWN: usize = 20;

/// The store check's failure: each problem and each damaged object by id and
/// path, with what brings each kind of damage back.
fn damaged(
    store: &Store,
    mut problems: Vec<String>,
    damage: &[crate::fsck::Damage],
    roots: &[(crate::Kind, crate::ObjectId)],
    owners: &[Owner],
) -> Check {
    for d in damage.iter().take(SHOWN) {
        problems.push(format!("{}: {d}", owners[d.root]));
    }
    if damage.len() > SHOWN {
        problems.push(format!("and {} more damaged object(s)", damage.len() - SHOWN));
    }
    let images = crate::image::list(store).unwrap_or_default();
    let mut fixes: Vec<String> = Vec::new();
    let mut add = |fix: String| {
        if !fixes.contains(&fix) {
            fixes.push(fix);
        }
    };
    for d in damage {
        let image = images.iter().find(|i| i.digest == roots[d.root].1);
        match (&owners[d.root], image) {
            (Owner::Env(_, Role::Base) | Owner::Ref(_), Some(i)) => add(reimport(i)),
            (Owner::Env(env, Role::Base), None) => add(format!(
                "{env}'s base layer is no imported image's: `karapace image import` its image again, or build in a new store"
            )),
            (Owner::Env(env, Role::Dependency), _) => add(format!(
                "`karapace verify {env} --rebuild` installs its locked packages again and stores their files anew"
            )),
            (Owner::Env(env, Role::Snapshot), _) => add(format!(
                "{env}'s snapshot has no other copy: `karapace restore {env}` to another one"
            )),
            (Owner::Ref(name), None) => add(format!(
                "nothing recorded uses {name}: remove it and run `karapace gc`"
            )),
        }
    }
    add("`karapace verify-store` re-hashes every object and names every problem".into());
    check("store", Status::Fail, problems.join("; "), Some(fixes.join("; ")))
}

/// What brings an image's damaged objects back: importing its directory
/// again stores every file anew; an archive's or URL's layer is reused while
/// it is present, so only a store without it imports it afresh.
fn reimport(i: &crate::image::ImageInfo) -> String {
    match i.source.as_deref() {
        Some(src) if Path::new(src).is_dir() => format!(
            "`karapace image import {} {}` stores the image's files again",
            shell_word(src),
            i.name
        ),
        src => format!(
            "image {} (from {}) is reused whole while its layer is present: import it into a new store, \
             or `karapace image rm {}`, destroy what uses it, `karapace gc` and import it again",
            i.name,
            src.or(i.reference.as_deref()).unwrap_or("an unknown source"),
            i.name
        ),
    }
}

/// `s` as one shell word: as it is when plain, else single-quoted.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@,=".contains(&b));
    match plain {
        true => s.to_string(),
        false => format!("'{}'", s.replace('\'', "'\\''")),
    }
}
