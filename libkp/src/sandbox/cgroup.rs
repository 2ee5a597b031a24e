//! Resource limits through cgroup v2. Limits are enforced only in a cgroup the
//! caller may write whose controllers are delegated; otherwise the request is
//! refused at plan time with the reason — never silently ignored.

use std::fs;
use std::path::PathBuf;

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
    }
}
