//! The request turned into data: which namespaces, which id maps, which mounts
//! in which order, which environment and command. [`plan`] does every check
//! (policy, host integration, limits) so that a plan that exists can run, and
//! `kp-sandbox --print-plan` prints it in the line format of docs/sandbox.md.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::cgroup::{self, CgroupPlan};
use super::host::{self, HostFacts, RUNTIME_DIR};
use super::idmap::{self, IdMap, MapVia};
use super::seccomp::Seccomp;
use super::{policy, Error, Net, OverlayDriver, Result, Root, SandboxRequest};

/// A namespace the sandbox creates, in clone(2) flag order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    User,
    Mount,
    Pid,
    Uts,
    Ipc,
    Net,
}

impl Namespace {
    pub fn name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mount",
            Namespace::Pid => "pid",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
        }
    }

    pub fn clone_flag(self) -> i32 {
        match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Net => libc::CLONE_NEWNET,
        }
    }
}

/// How the root filesystem is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootMount {
    /// A directory bound read-only (its own mount point stays untouched).
    Bind { src: PathBuf },
    /// An overlay mounted on `work`/root; lowers first is top-most.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        driver: OverlayDriver,
    },
}

impl RootMount {
    /// Whether the root may have `path` (absolute, inside the root): false
    /// only when no layer has it and every layer's parents of it are plain
    /// directories or absent, so no symlink could bring it in.
    pub(crate) fn may_have(&self, path: &Path) -> bool {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let layers: Vec<&Path> = match self {
            RootMount::Bind { src } => vec![src],
            RootMount::Overlay { lowers, upper, .. } => std::iter::once(upper.as_path())
                .chain(lowers.iter().map(PathBuf::as_path))
                .collect(),
        };
        layers.into_iter().any(|layer| {
            let mut at = layer.to_path_buf();
            let mut parts = rel.components().peekable();
            while let Some(part) = parts.next() {
                at.push(part);
                match at.symlink_metadata() {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
                    Err(_) => return true,
                    // A parent that is a symlink (or stranger): can't tell.
                    Ok(m) if parts.peek().is_some() && !m.is_dir() => return true,
                    Ok(_) => {}
                }
            }
            true
        })
    }
}

/// What a bind's mount point is when it must be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// What to do when a mount point does not exist in the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Create it (on tmpfs, or in the overlay's upper directory).
    Create,
    /// Leave the mount out (for files the image may not have).
    Skip,
}

/// One setup step on the new root, executed in order. Destinations are paths
/// inside the sandbox; sources are resolved host paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Proc {
        dst: PathBuf,
    },
    Tmpfs {
        dst: PathBuf,
        mode: u32,
    },
    Devpts {
        dst: PathBuf,
    },
    Mkdir {
        dst: PathBuf,
        mode: u32,
    },
    Symlink {
        target: PathBuf,
        dst: PathBuf,
    },
    Bind {
        src: PathBuf,
        dst: PathBuf,
        ro: bool,
        kind: Kind,
        missing: Missing,
    },
    /// A path of the new root bound onto itself read-only (skipped when
    /// missing).
    ReadOnly {
        dst: PathBuf,
    },
    /// A path of the new root hidden: a file under /dev/null, a directory
    /// under an empty read-only tmpfs (skipped when missing).
    Mask {
        dst: PathBuf,
    },
}

impl Mount {
    /// This mount when it is a bind host root hands the sandbox as an
    /// idmapped mount: every bind but device nodes, whose owners do not
    /// matter (they are shared by mode) and whose file system may not take
    /// an idmapping.
    pub fn idmapped_bind(&self) -> Option<&Mount> {
        match self {
            Mount::Bind { src, .. } if !src.starts_with("/dev") => Some(self),
            _ => None,
        }
    }

    pub fn dst(&self) -> &Path {
        match self {
            Mount::Proc { dst }
            | Mount::Tmpfs { dst, .. }
            | Mount::Devpts { dst }
            | Mount::Mkdir { dst, .. }
            | Mount::Symlink { dst, .. }
            | Mount::Bind { dst, .. }
            | Mount::ReadOnly { dst }
            | Mount::Mask { dst } => dst,
        }
    }
}

/// Everything `run` does, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub namespaces: Vec<Namespace>,
    pub idmap: IdMap,
    pub cgroup: Option<CgroupPlan>,
    /// Limits an OCI runtime applies (cgroup v1, host root): per controller,
    /// the caller's cgroup the runtime's goes under and the file it writes.
    pub runtime_cgroups: Vec<CgroupPlan>,
    pub root: RootMount,
    pub mounts: Vec<Mount>,
    /// Whether the root mount is made read-only (before anything is mounted on
    /// it, so a missing mount point fails instead of writing into the directory).
    pub read_only_root: bool,
    pub hostname: String,
    /// Bring `lo` up in the new network namespace.
    pub loopback: bool,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub argv: Vec<OsString>,
    /// The system-call filter the command runs under (seccomp.rs).
    pub seccomp: Seccomp,
    /// Where sandboxes sharing this overlay register (share.rs); overlay
    /// roots only.
    pub share: Option<PathBuf>,
}

/// Parts of /proc the command may read but not write: the kernel's
/// settings (`/proc/sys`: core_pattern, modprobe, ...) and triggers.
pub const PROC_READ_ONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Parts of /proc the command does not see: kernel memory, other users'
/// keys, timers and scheduler internals (what runc masks; there is no /sys
/// inside at all).
pub const PROC_MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
];

/// Device nodes bound from the host into the fresh /dev.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        what: what.into(),
        reason: reason.into(),
    }
}

fn check_hostname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            format!("--hostname {name:?}"),
            "1 to 64 letters, digits, '-' or '.'",
        ))
    }
}

fn existing_dir(path: &Path, what: &str) -> Result<PathBuf> {
    let real = std::fs::canonicalize(path).map_err(Error::setup("resolve", path))?;
    if !real.is_dir() {
        return Err(invalid(format!("{what} {}", path.display()), "not a directory"));
    }
    Ok(real)
}

/// Turns a request into a plan, checking policy and host integration.
pub fn plan(req: &SandboxRequest, host: &HostFacts) -> Result<Plan> {
    if req.argv.is_empty() {
        return Err(invalid("command", "no command given"));
    }
    let hostname = req.hostname.clone().unwrap_or_else(|| "karapace".to_string());
    check_hostname(&hostname)?;
    let cwd = req.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    if !cwd.is_absolute() {
        return Err(invalid(format!("--cwd {}", cwd.display()), "must be an absolute path"));
    }
    let (root, read_only_root) = match &req.root {
        Root::Dir(dir) => (
            RootMount::Bind {
                src: existing_dir(dir, "--rootfs")?,
            },
            true,
        ),
        Root::Overlay { lowers, upper, work } => {
            if lowers.is_empty() {
                return Err(invalid("--lower", "an overlay needs at least one lower directory"));
            }
            let lowers = lowers
                .iter()
                .map(|l| existing_dir(l, "--lower"))
                .collect::<Result<Vec<_>>>()?;
            let (upper, work) = (existing_dir(upper, "--upper")?, existing_dir(work, "--work")?);
            if upper.starts_with(&work) || work.starts_with(&upper) {
                return Err(invalid(
                    "--upper and --work",
                    "must be separate directories, neither inside the other",
                ));
            }
            (
                RootMount::Overlay {
                    lowers,
                    upper,
                    work,
                    driver: req.overlay,
                },
                false,
            )
        }
    };

    let mut namespaces = vec![
        Namespace::User,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Uts,
        Namespace::Ipc,
    ];
    if req.net == Net::None {
        namespaces.push(Namespace::Net);
    }
    let idmap = idmap::choose(req.uid_map, host)?;
    let v1 = match req.runtime_limits {
        true => cgroup::prepare_v1(&req.limits, idmap.idmapped)?,
        false => None,
    };
    let (cgroup, runtime_cgroups) = match v1 {
        Some(v1) => (None, v1),
        None => (cgroup::prepare(&req.limits)?, Vec::new()),
    };
    let integration = host::integrate(&req.host, req.net, host)?;

    let mut mounts = vec![Mount::Proc { dst: "/proc".into() }];
    mounts.extend(PROC_READ_ONLY.iter().map(|p| Mount::ReadOnly { dst: p.into() }));
    mounts.extend(PROC_MASKED.iter().map(|p| Mount::Mask { dst: p.into() }));
    mounts.push(Mount::Tmpfs {
        dst: "/dev".into(),
        mode: 0o755,
    });
    for dev in DEVICES {
        let path = Path::new("/dev").join(dev);
        mounts.push(Mount::Bind {
            src: path.clone(),
            dst: path,
            ro: false,
            kind: Kind::File,
            missing: Missing::Create,
        });
    }
    mounts.push(Mount::Devpts { dst: "/dev/pts".into() });
    for (target, link) in [
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        mounts.push(Mount::Symlink {
            target: target.into(),
            dst: Path::new("/dev").join(link),
        });
    }
    mounts.push(Mount::Tmpfs {
        dst: "/dev/shm".into(),
        mode: 0o1777,
    });
    mounts.push(Mount::Tmpfs {
        dst: "/tmp".into(),
        mode: 0o1777,
    });
    mounts.push(Mount::Tmpfs {
        dst: "/run".into(),
        mode: 0o755,
    });
    mounts.push(Mount::Mkdir {
        dst: RUNTIME_DIR.into(),
        mode: 0o700,
    });
    if req.net == Net::Host {
        for f in ["/etc/resolv.conf", "/etc/hosts"] {
            // A root without the file skips the bind: not cloning the source
            // at all spares dissolving an unused mount, which costs a wait.
            if Path::new(f).is_file() && root.may_have(Path::new(f)) {
                let src = std::fs::canonicalize(f).map_err(Error::setup("resolve", f))?;
                mounts.push(Mount::Bind {
                    src,
                    dst: f.into(),
                    ro: true,
                    kind: Kind::File,
                    missing: Missing::Skip,
                });
            }
        }
    }
    mounts.extend(integration.mounts);
    for bind in &req.binds {
        let src = policy::check_bind(bind, &req.allow)?;
        let kind = if src.is_dir() { Kind::Dir } else { Kind::File };
        mounts.push(Mount::Bind {
            src,
            dst: bind.dst.clone(),
            ro: bind.ro,
            kind,
            missing: Missing::Create,
        });
    }

    let home = integration.home.clone().unwrap_or_else(|| PathBuf::from("/root"));
    let base = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), home.into_os_string()),
        ("USER".into(), "root".into()),
        ("LOGNAME".into(), "root".into()),
        ("HOSTNAME".into(), hostname.clone().into()),
        ("XDG_RUNTIME_DIR".into(), RUNTIME_DIR.into()),
        ("container".into(), "karapace".into()),
    ];
    let env = policy::environment(base, &req.env_pass, &integration.env, &req.env, host)?;

    let share = match root {
        RootMount::Overlay { .. } => req.share.clone(),
        RootMount::Bind { .. } => None,
    };
    Ok(Plan {
        namespaces,
        idmap,
        cgroup,
        runtime_cgroups,
        root,
        mounts,
        read_only_root,
        hostname,
        loopback: req.net == Net::None,
        env,
        cwd,
        argv: req.argv.clone(),
        seccomp: req.seccomp,
        share,
    })
}

/// Writes a path or word so that a line stays one line and splits on spaces:
/// as-is when plain, else double-quoted with C escapes (as git quotes paths).
pub fn quote(s: &OsStr) -> String {
    let bytes = s.as_bytes();
    let plain = !bytes.is_empty() && bytes.iter().all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if plain {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b' ' => out.push(' '),
            b if b.is_ascii_graphic() => out.push(b as char),
            b => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

fn q(p: &Path) -> String {
    quote(p.as_os_str())
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns: Vec<_> = self.namespaces.iter().map(|n| n.name()).collect();
        writeln!(f, "unshare {}", ns.join(" "))?;
        let via = match self.idmap.via {
            MapVia::Direct => "direct",
            MapVia::Helper => "newuidmap",
        };
        for r in &self.idmap.uid {
            writeln!(f, "uidmap {} {} {} {via}", r.inside, r.outside, r.count)?;
        }
        for r in &self.idmap.gid {
            writeln!(f, "gidmap {} {} {} {via}", r.inside, r.outside, r.count)?;
        }
        writeln!(f, "setgroups {}", if self.idmap.setgroups { "allow" } else { "deny" })?;
        if self.idmap.idmapped {
            for src in self.root.host_sources() {
                writeln!(f, "idmapped {}", q(&src))?;
            }
        }
        for cg in self.cgroup.iter().chain(&self.runtime_cgroups) {
            for (k, v) in &cg.settings {
                writeln!(f, "cgroup {} {k} {v}", q(&cg.parent))?;
            }
        }
        match &self.root {
            RootMount::Bind { src } => writeln!(f, "root-bind {}", q(src))?,
            RootMount::Overlay {
                lowers,
                upper,
                work,
                driver,
            } => {
                write!(f, "root-overlay {} {} {}", driver.name(), q(upper), q(work))?;
                for l in lowers {
                    write!(f, " {}", q(l))?;
                }
                writeln!(f)?;
            }
        }
        if let Some(dir) = &self.share {
            writeln!(f, "share {}", q(dir))?;
        }
        if self.read_only_root {
            writeln!(f, "remount-ro /")?;
        }
        for m in &self.mounts {
            match m {
                Mount::Proc { dst } => writeln!(f, "proc {}", q(dst))?,
                Mount::Tmpfs { dst, mode } => writeln!(f, "tmpfs {} {mode:04o}", q(dst))?,
                Mount::Devpts { dst } => writeln!(f, "devpts {}", q(dst))?,
                Mount::Mkdir { dst, mode } => writeln!(f, "mkdir {} {mode:04o}", q(dst))?,
                Mount::Symlink { target, dst } => writeln!(f, "symlink {} {}", q(target), q(dst))?,
                Mount::ReadOnly { dst } => writeln!(f, "read-only {}", q(dst))?,
                Mount::Mask { dst } => writeln!(f, "mask {}", q(dst))?,
                Mount::Bind {
                    src,
                    dst,
                    ro,
                    kind,
                    missing,
                } => writeln!(
                    f,
                    "bind {} {} {} {} {}",
                    q(src),
                    q(dst),
                    if *ro { "ro" } else { "rw" },
                    if *kind == Kind::Dir { "dir" } else { "file" },
                    if *missing == Missing::Create { "create" } else { "skip" },
                )?,
            }
        }
        writeln!(f, "pivot-root")?;
        writeln!(f, "hostname {}", self.hostname)?;
        if self.loopback {
            writeln!(f, "loopback-up")?;
        }
        writeln!(f, "no-new-privs")?;
        writeln!(f, "session-keyring new")?;
        writeln!(f, "lock-mounts")?;
        writeln!(f, "close-fds 3-")?;
        writeln!(f, "seccomp {}", self.seccomp.name())?;
        for (k, v) in &self.env {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            writeln!(f, "env {}", quote(&kv))?;
        }
        writeln!(f, "cwd {}", q(&self.cwd))?;
        let argv: Vec<_> = self.argv.iter().map(|a| quote(a)).collect();
        writeln!(f, "exec {}", argv.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BindRequest, HostSwitches};
    use super::*;

    #[test]
    fn may_have_looks_through_every_layer_and_trusts_no_symlink() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("u"), t.path().join("l"));
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/hosts"), "").unwrap();
        let root = |lowers: Vec<PathBuf>| RootMount::Overlay {
            lowers,
            upper: upper.clone(),
            work: t.path().join("w"),
            driver: OverlayDriver::Auto,
        };
        assert!(root(vec![lower.clone()]).may_have(Path::new("/etc/hosts")));
        assert!(!root(vec![lower.clone()]).may_have(Path::new("/etc/resolv.conf")));
        assert!(!RootMount::Bind { src: upper.clone() }.may_have(Path::new("/etc/hosts")));
        // A symlinked parent could bring the file in from anywhere: maybe.
        let linked = t.path().join("s");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink("/nonexistent", linked.join("etc")).unwrap();
        assert!(RootMount::Bind { src: linked }.may_have(Path::new("/etc/hosts")));
    }

    fn request(root: &Path) -> SandboxRequest {
        SandboxRequest {
            root: Root::Dir(root.to_path_buf()),
            argv: vec!["true".into()],
            ..Default::default()
        }
    }

    #[test]
    fn default_plan_isolates_everything() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostFacts::for_tests(dir.path());
        let p = plan(&request(dir.path()), &host).unwrap();
        assert_eq!(
            p.namespaces,
            [
                Namespace::User,
                Namespace::Mount,
                Namespace::Pid,
                Namespace::Uts,
                Namespace::Ipc,
                Namespace::Net
            ]
        );
        assert!(p.loopback && p.read_only_root);
        assert_eq!(p.mounts[0], Mount::Proc { dst: "/proc".into() });
        assert_eq!(
            p.mounts[1],
            Mount::ReadOnly {
                dst: "/proc/bus".into()
            }
        );
        assert!(p.mounts.contains(&Mount::ReadOnly {
            dst: "/proc/sys".into()
        }));
        assert!(p.mounts.contains(&Mount::Mask {
            dst: "/proc/kcore".into()
        }));
        assert_eq!(p.seccomp, Seccomp::Default);
        let text = p.to_string();
        assert!(
            text.starts_with("unshare user mount pid uts ipc net\nuidmap 0 1000 1 direct\n"),
            "{text}"
        );
        assert!(text.contains("\ntmpfs /tmp 1777\n"), "{text}");
        assert!(text.ends_with("cwd /\nexec true\n"), "{text}");
        assert!(
            text.contains("\nread-only /proc/sys\n") && text.contains("\nseccomp default\n"),
            "{text}"
        );
        assert!(p.env.contains(&("HOME".into(), "/root".into())));
    }

    #[test]
    fn host_network_shares_resolver_and_keeps_net_namespace_out() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostFacts::for_tests(dir.path());
        let mut req = request(dir.path());
        req.net = Net::Host;
        let p = plan(&req, &host).unwrap();
        assert!(!p.namespaces.contains(&Namespace::Net) && !p.loopback);
        let binds_resolver = |p: &Plan| p.mounts.iter().any(|m| m.dst() == Path::new("/etc/resolv.conf"));
        // A root without the file gets no bind for it.
        assert!(!binds_resolver(&p));
        if Path::new("/etc/resolv.conf").is_file() {
            std::fs::create_dir(dir.path().join("etc")).unwrap();
            std::fs::write(dir.path().join("etc/resolv.conf"), "").unwrap();
            assert!(binds_resolver(&plan(&req, &host).unwrap()));
        }
    }

    #[test]
    fn user_binds_come_last_and_are_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostFacts::for_tests(dir.path());
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut req = request(dir.path());
        req.allow.push(dir.path().to_path_buf());
        req.binds.push(BindRequest {
            src: data.join("../data"),
            dst: "/srv".into(),
            ro: true,
        });
        req.host = HostSwitches::default();
        let p = plan(&req, &host).unwrap();
        assert_eq!(
            p.mounts.last().unwrap(),
            &Mount::Bind {
                src: std::fs::canonicalize(&data).unwrap(),
                dst: "/srv".into(),
                ro: true,
                kind: Kind::Dir,
                missing: Missing::Create
            }
        );
    }

    #[test]
    fn overlay_root_checks_its_directories() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostFacts::for_tests(dir.path());
        for d in ["l1", "l2", "u", "w"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let mut req = request(dir.path());
        let d = |n: &str| dir.path().join(n);
        req.root = Root::Overlay {
            lowers: vec![d("l1"), d("l2")],
            upper: d("u"),
            work: d("w"),
        };
        let p = plan(&req, &host).unwrap();
        assert!(!p.read_only_root);
        assert!(matches!(&p.root, RootMount::Overlay { lowers, .. } if lowers.len() == 2));
        req.root = Root::Overlay {
            lowers: vec![d("l1")],
            upper: d("u"),
            work: d("u"),
        };
        assert!(matches!(plan(&req, &host), Err(Error::Invalid { .. })));
        req.root = Root::Overlay {
            lowers: vec![],
            upper: d("u"),
            work: d("w"),
        };
        assert!(matches!(plan(&req, &host), Err(Error::Invalid { .. })));
    }

    #[test]
    fn bad_requests_refused() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostFacts::for_tests(dir.path());
        let mut req = request(dir.path());
        req.hostname = Some("bad name".into());
        assert!(plan(&req, &host).is_err());
        let mut req = request(dir.path());
        req.argv.clear();
        assert!(plan(&req, &host).is_err());
        let mut req = request(dir.path());
        req.cwd = Some("relative".into());
        assert!(plan(&req, &host).is_err());
    }

    #[test]
    fn quoting_keeps_one_line() {
        assert_eq!(quote(OsStr::new("/a/b")), "/a/b");
        assert_eq!(quote(OsStr::new("a b\n\"")), "\"a b\\n\\\"\"");
        assert_eq!(quote(OsStr::new("")), "\"\"");
    }
}
