//! Which OCI runtime binary runs a bundle: runc, crun or youki, found on
//! `PATH` (and the sbin directories distributions install runc in), and the
//! probe that tells a runtime that works on this host from one that is only
//! installed (crun fails on hybrid cgroup hosts).

use std::path::{Path, PathBuf};

use super::super::{plan, BindRequest, HostFacts, Root, SandboxRequest};
use super::super::{Error, Result};

/// A runtime by name, in the order `auto` tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Runc,
    Crun,
    Youki,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Runc, Kind::Crun, Kind::Youki];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Runc => "runc",
            Kind::Crun => "crun",
            Kind::Youki => "youki",
        }
    }
}

/// An installed runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    pub kind: Kind,
    pub path: PathBuf,
}

/// Where `kind` is installed, if it is: the first executable file of that
/// name on `PATH`, then in /usr/local/sbin, /usr/sbin and /sbin (Debian's
/// runc is in /usr/sbin, which a user's `PATH` often lacks).
pub fn find(kind: Kind) -> Option<Runtime> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .filter(|d| d.is_absolute());
    for dir in dirs {
        let candidate = dir.join(kind.name());
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Some(Runtime { kind, path: candidate });
            }
        }
    }
    None
}

/// Runs `true` through `rt` in a bare bundle (the host's /usr, read-only,
/// in an otherwise empty root) by the same path an environment's command
/// takes; `Err` says why it does not work here.
pub fn probe(rt: &Runtime) -> std::result::Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("karapace-probe-")
        .tempdir()
        .map_err(|e| format!("create a probe directory: {e}"))?;
    let root = dir.path().join("root");
    let made = std::fs::create_dir(&root).and_then(|()| {
        for link in ["bin", "lib", "lib64", "sbin"] {
            if Path::new("/usr").join(link).is_dir() {
                std::os::unix::fs::symlink(Path::new("usr").join(link), root.join(link))?;
            }
        }
        Ok(())
    });
    made.map_err(|e| format!("prepare the probe root: {e}"))?;
    let req = SandboxRequest {
        root: Root::Dir(root),
        binds: vec![BindRequest {
            src: "/usr".into(),
            dst: "/usr".into(),
            ro: true,
        }],
        allow: vec!["/usr".into()],
        argv: vec!["/usr/bin/true".into()],
        ..Default::default()
    };
    let plan = plan(&req, &HostFacts::current()).map_err(|e| e.to_string())?;
    match super::run::run_quiet(&plan, rt) {
        Ok(0) => Ok(()),
        Ok(code) => Err(format!("a bare bundle running `true` exited {code}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The runtime to use: `want`, which must be installed and pass the probe,
/// or (`None`, "auto") the first of [`Kind::ALL`] that does.
pub fn choose(want: Option<Kind>) -> Result<Runtime> {
    let refuse = |reason: String| Error::Invalid {
        what: "OCI runtime".into(),
        reason,
    };
    if let Some(kind) = want {
        let rt = find(kind).ok_or_else(|| {
            refuse(format!(
                "{} is not installed (not on PATH nor in /usr/sbin)",
                kind.name()
            ))
        })?;
        return Ok(rt);
    }
    let mut why = Vec::new();
    for kind in Kind::ALL {
        match find(kind) {
            None => why.push(format!("{}: not installed", kind.name())),
            Some(rt) => match probe(&rt) {
                Ok(()) => return Ok(rt),
                Err(e) => why.push(format!("{}: {e}", kind.name())),
            },
        }
    }
    Err(refuse(format!("none works here ({})", why.join("; "))))
}
