//! Resource limits through cgroup v2. Limits are enforced only in a cgroup the
//! caller may write whose controllers are delegated; otherwise the request is
//! refused at plan time with the reason — never silently ignored.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Error, Limits, Result};

/// Where the sandbox's cgroup goes and what is written into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPlan {
    /// The caller's own (delegated) cgroup; the sandbox gets a child of it.
    pub parent: PathBuf,
    pub settings: Vec<(String, String)>,
}

/// cgroup v1 `cpu.shares` to v2 `cpu.weight`, as runc and crun convert it.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

fn refuse(reason: impl Into<String>) -> Error {
    Error::Limits { reason: reason.into() }
}

/// Checks that `limits` can be enforced here and says how.
pub fn prepare(limits: &Limits) -> Result<Option<CgroupPlan>> {
    if !limits.any() {
        return Ok(None);
    }
    let mut settings = Vec::new();
    let mut need = Vec::new();
    if let Some(shares) = limits.cpu_shares {
        need.push("cpu");
        settings.push(("cpu.weight".to_string(), shares_to_weight(shares).to_string()));
    }
    if let Some(mb) = limits.memory_mb {
        if mb == 0 {
            return Err(refuse("--memory-mb must be at least 1"));
        }
        need.push("memory");
        settings.push(("memory.max".to_string(), (mb * 1024 * 1024).to_string()));
    }
    let parent = crate::mountinfo::own_cgroup().map_err(refuse)?;
    let controllers = fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
    let have: Vec<&str> = controllers.split_whitespace().collect();
    for c in &need {
        if !have.contains(c) {
            return Err(refuse(format!(
                "the {c} controller is not delegated to {} (it has: {}); run under a delegated cgroup, e.g. `systemd-run --user --scope -p Delegate=yes`",
                parent.display(),
                if have.is_empty() { "none".to_string() } else { have.join(" ") }
            )));
        }
    }
    if rustix::fs::access(&parent, rustix::fs::Access::WRITE_OK).is_err() {
        return Err(refuse(format!(
            "{} is not writable by this user (no delegated cgroup)",
            parent.display()
        )));
    }
    let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<String> = need
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !missing.is_empty() {
        let p = parent.join("cgroup.subtree_control");
        fs::write(&p, missing.join(" "))
            .map_err(|e| refuse(format!("cannot enable {} in {}: {e}", missing.join(" "), p.display())))?;
    }
    Ok(Some(CgroupPlan { parent, settings }))
}

/// For the OCI runtime, as host root on a host with cgroup v1 hierarchies:
/// per limited controller, the caller's own cgroup of it (under
/// `/sys/fs/cgroup/<controllers>`, where runc looks) and the file the runtime
/// writes there. `None` when this does not apply (no limits, not host root,
/// or a controller without a v1 hierarchy); then cgroup v2 is asked, or
/// refuses, as for the native sandbox.
pub fn prepare_v1(limits: &Limits, host_root: bool) -> Result<Option<Vec<CgroupPlan>>> {
    if !limits.any() || !host_root {
        return Ok(None);
    }
    let Ok(own) = fs::read_to_string("/proc/self/cgroup") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    let wanted = [
        (
            "memory",
            "memory.limit_in_bytes",
            limits.memory_mb.map(|mb| mb * 1024 * 1024),
        ),
        ("cpu", "cpu.shares", limits.cpu_shares),
    ];
    for (controller, file, value) in wanted {
        let Some(value) = value else { continue };
        if value == 0 {
            return Err(refuse(format!("{file} must be at least 1")));
        }
        let dir = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, rel) = (f.next()?, f.next()?, f.next()?);
            let dir = PathBuf::from("/sys/fs/cgroup").join(ctrls);
            let rel = rel.trim_start_matches('/');
            let dir = if rel.is_empty() { dir } else { dir.join(rel) };
            ctrls.split(',').any(|c| c == controller).then_some(dir)
        });
        match dir {
            Some(dir) if dir.join(file).is_file() => out.push(CgroupPlan {
                parent: dir,
                settings: vec![(file.to_string(), value.to_string())],
            }),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Makes `name` under each of `plans`' parents, owned by `uid`/`gid` — root
/// of the runtime's user namespace — for the runtime to start in: it makes
/// its container's cgroup as a child of its own (as runc does for a
/// container without `cgroupsPath`), writes the limits there and, being the
/// owner of both, removes it again. Returns what was made, for [`remove_v1`].
pub fn make_v1(plans: &[CgroupPlan], name: &str, uid: u32, gid: u32) -> Result<Vec<PathBuf>> {
    let mut made = Vec::new();
    for plan in plans {
        let dir = plan.parent.join(name);
        let step = fs::create_dir(&dir)
            .map_err(Error::setup("create cgroup", &dir))
            .inspect(|()| made.push(dir.clone()))
            .and_then(|()| std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(Error::setup("chown", &dir)));
        if let Err(e) = step {
            remove_v1(&made);
            return Err(e);
        }
    }
    Ok(made)
}

/// Moves the calling process into each of `dirs` (cgroup v1 directories),
/// so that what it forks starts there.
pub fn join_v1<'a>(dirs: impl IntoIterator<Item = &'a PathBuf>) -> Result<()> {
    for dir in dirs {
        let p = dir.join("cgroup.procs");
        fs::write(&p, std::process::id().to_string()).map_err(Error::setup("write", p))?;
    }
    Ok(())
}

/// Removes the cgroups [`make_v1`] made, and what the runtime left in them
/// (when it was killed). Their processes have exited, but the kernel may
/// still be taking the last of them out (EBUSY): retried a few times, then
/// left (an empty cgroup costs nothing).
pub fn remove_v1(dirs: &[PathBuf]) {
    let rmdir = |dir: &Path| {
        for _ in 0..50 {
            match fs::remove_dir(dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                _ => break,
            }
        }
    };
    for dir in dirs {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rmdir(&e.path());
                }
            }
        }
        rmdir(dir);
    }
}

/// Creates the sandbox's cgroup, applies the limits and moves `pid` into it.
pub fn enter(plan: &CgroupPlan, pid: i32) -> Result<PathBuf> {
    let dir = plan.parent.join(format!("kp-sandbox-{pid}"));
    fs::create_dir(&dir).map_err(Error::setup("create cgroup", &dir))?;
    let apply = || {
        for (file, value) in &plan.settings {
            let p = dir.join(file);
            fs::write(&p, value).map_err(Error::setup("write", p))?;
        }
        let p = dir.join("cgroup.procs");
        fs::write(&p, pid.to_string()).map_err(Error::setup("write", p))
    };
    if let Err(e) = apply() {
        let _ = fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
    }

    #[test]
    fn no_limits_no_cgroup() {
        assert_eq!(prepare(&Limits::default()).unwrap(), None);
        assert_eq!(prepare_v1(&Limits::default(), true).unwrap(), None);
    }

    #[test]
    fn runtime_limits_are_for_host_root_only() {
        let limits = Limits {
            cpu_shares: Some(512),
            memory_mb: Some(32),
        };
        assert_eq!(prepare_v1(&limits, false).unwrap(), None);
    }
}
