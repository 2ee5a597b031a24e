//! The default system-call filter: the calls the containers' default
//! seccomp profile (Podman, Docker) refuses to unprivileged containers, which
//! reach kernel code that has no business inside an environment — loading
//! code into the kernel, rebooting it, tracing it, its keyrings, file handles
//! that bypass mount boundaries. Each returns EPERM, as a kernel without the
//! feature would; everything else is allowed (mounting a tmpfs inside keeps
//! working: the sandbox's own mounts are locked instead, see exec.rs).
//!
//! Relaxing it is the caller's choice (`kp-sandbox --seccomp off`, `karapace
//! exec --seccomp off`), never a manifest's, and it is not part of env_id.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

use super::{Error, Result};

/// The system calls the filter refuses, by name (docs/sandbox.md lists them).
pub const DENIED: &[(&str, libc::c_long)] = &[
    ("acct", libc::SYS_acct),
    ("add_key", libc::SYS_add_key),
    ("bpf", libc::SYS_bpf),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("clock_settime", libc::SYS_clock_settime),
    ("delete_module", libc::SYS_delete_module),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("finit_module", libc::SYS_finit_module),
    ("init_module", libc::SYS_init_module),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("kexec_load", libc::SYS_kexec_load),
    ("keyctl", libc::SYS_keyctl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("quotactl", libc::SYS_quotactl),
    ("reboot", libc::SYS_reboot),
    ("request_key", libc::SYS_request_key),
    ("settimeofday", libc::SYS_settimeofday),
    ("swapoff", libc::SYS_swapoff),
    ("swapon", libc::SYS_swapon),
    ("syslog", libc::SYS_syslog),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("vhangup", libc::SYS_vhangup),
    #[cfg(target_arch = "x86_64")]
    ("ioperm", libc::SYS_ioperm),
    #[cfg(target_arch = "x86_64")]
    ("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    ("nfsservctl", libc::SYS_nfsservctl),
    #[cfg(target_arch = "x86_64")]
    ("uselib", libc::SYS_uselib),
    #[cfg(target_arch = "x86_64")]
    ("_sysctl", libc::SYS__sysctl),
];

/// Whether the filter applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Seccomp {
    #[default]
    Default,
    Off,
}

impl Seccomp {
    pub fn name(self) -> &'static str {
        match self {
            Seccomp::Default => "default",
            Seccomp::Off => "off",
        }
    }

    /// `default` or `off`, as the command lines and the config spell them.
    pub fn parse(s: &str) -> Option<Seccomp> {
        match s {
            "default" => Some(Seccomp::Default),
            "off" => Some(Seccomp::Off),
            _ => None,
        }
    }
}

/// The compiled filter for this architecture. A process of another
/// architecture's system-call table (32-bit x86 through int 0x80) is killed:
/// its numbers mean other calls, so no denylist could hold for it.
pub fn program() -> Result<BpfProgram> {
    let arch = std::env::consts::ARCH.try_into().map_err(|e| Error::Invalid {
        what: "seccomp".into(),
        reason: format!("no filter for {}: {e}", std::env::consts::ARCH),
    })?;
    let rules = DENIED
        .iter()
        .map(|&(_, nr)| (nr, Vec::new()))
        .collect::<BTreeMap<_, _>>();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(|e| Error::Invalid {
        what: "seccomp".into(),
        reason: e.to_string(),
    })?;
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_compiles_with_every_denied_call() {
        let prog = program().unwrap();
        // One load and jump per denied call at least, plus the arch check.
        assert!(prog.len() > DENIED.len(), "{}", prog.len());
        let mut names: Vec<_> = DENIED.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DENIED.len(), "no call listed twice");
        for must in [
            "keyctl",
            "bpf",
            "kexec_load",
            "open_by_handle_at",
            "perf_event_open",
            "userfaultfd",
        ] {
            assert!(names.contains(&must), "{must}");
        }
    }

    #[test]
    fn policy_names() {
        assert_eq!(Seccomp::parse("off"), Some(Seccomp::Off));
        assert_eq!(Seccomp::parse("default").map(Seccomp::name), Some("default"));
        assert_eq!(Seccomp::parse("strict"), None);
    }
}
