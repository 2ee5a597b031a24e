//! The bundle's `config.json`, written from the same [`Plan`] the native
//! sandbox executes: its namespaces, the identity map over the ids the
//! bundle's user namespace has (as the native command's nested namespace),
//! its mounts in order, /proc's read-only and masked parts, hostname,
//! environment, cwd and command, `noNewPrivileges` and the same seccomp
//! denylist. Plain data: unit-tested without a runtime.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxIdMapping, LinuxIdMappingBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResources, LinuxResourcesBuilder,
    LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder, MountBuilder, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder,
};

use super::super::idmap::MapRange;
use super::super::plan::{Missing, Mount, Namespace, Plan, RootMount, DEVICES};
use super::super::seccomp::{self, Seccomp};
use super::super::{Error, Result};

fn spec_error(e: oci_spec::OciSpecError) -> Error {
    Error::Invalid {
        what: "config.json".into(),
        reason: e.to_string(),
    }
}

fn utf8(s: &std::ffi::OsStr, what: &str) -> Result<String> {
    s.to_str().map(str::to_string).ok_or_else(|| Error::Invalid {
        what: format!("{what} {s:?}"),
        reason: "the OCI backend takes UTF-8 only (config.json is JSON)".into(),
    })
}

fn mappings(ranges: &[MapRange]) -> Result<Vec<LinuxIdMapping>> {
    ranges
        .iter()
        .map(|r| {
            LinuxIdMappingBuilder::default()
                .container_id(r.inside)
                .host_id(r.outside)
                .size(r.count)
                .build()
                .map_err(spec_error)
        })
        .collect()
}

/// The capabilities the containers' default profile (Docker, Podman)
/// gives. Not `SYS_ADMIN`: the runtime makes the bundle's mounts inside the
/// bundle's own user namespace, where the kernel does not lock them, so a
/// command able to mount could lift a mask or remount a read-only bind
/// (the native sandbox moves its command into a nested namespace instead,
/// which locks them and lets it keep every capability).
fn default_capabilities() -> HashSet<Capability> {
    const NAMES: &[&str] = &[
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ];
    NAMES.iter().filter_map(|n| Capability::from_str(n).ok()).collect()
}

fn seccomp_profile() -> Result<oci_spec::runtime::LinuxSeccomp> {
    let names: Vec<String> = seccomp::DENIED.iter().map(|(n, _)| n.to_string()).collect();
    let denied = LinuxSyscallBuilder::default()
        .names(names)
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()
        .map_err(spec_error)?;
    // Only the native architecture: calls through another table (32-bit
    // `int 0x80`) meet the filter's bad-architecture action, which kills.
    #[cfg(target_arch = "x86_64")]
    let arch = Arch::ScmpArchX86_64;
    #[cfg(target_arch = "aarch64")]
    let arch = Arch::ScmpArchAarch64;
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![arch])
        .syscalls(vec![denied])
        .build()
        .map_err(spec_error)
}

fn mount(dst: &Path, typ: &str, src: &Path, options: &[&str]) -> Result<oci_spec::runtime::Mount> {
    MountBuilder::default()
        .destination(dst)
        .typ(typ)
        .source(src)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_error)
}

/// The plan's mounts as OCI mounts. The runtime makes /dev's device nodes
/// and its symlinks itself (the same ones), so the plan's binds of
/// [`DEVICES`] and its symlinks are left to it; `Mkdir` (the runtime
/// directory) becomes a tmpfs of that mode, as OCI has no bare directory;
/// a `Missing::Skip` bind is kept only when `present` says the root has
/// its destination.
fn mounts(plan: &Plan, proc: &Path, present: &dyn Fn(&Path) -> bool) -> Result<Vec<oci_spec::runtime::Mount>> {
    let mut out = Vec::new();
    for m in &plan.mounts {
        match m {
            Mount::Proc { dst } => out.push(mount(dst, "bind", proc, &["rbind", "nosuid", "noexec", "nodev"])?),
            Mount::Tmpfs { dst, mode } | Mount::Mkdir { dst, mode } => {
                let mode = format!("mode={mode:o}");
                let opts: &[&str] = if dst == Path::new("/dev") {
                    &["nosuid", "strictatime", &mode]
                } else {
                    &["nosuid", "nodev", &mode]
                };
                out.push(mount(dst, "tmpfs", Path::new("tmpfs"), opts)?)
            }
            Mount::Devpts { dst } => out.push(mount(
                dst,
                "devpts",
                Path::new("devpts"),
                &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            )?),
            Mount::Symlink { .. } => {}
            Mount::Bind { src, .. } if DEVICES.iter().any(|d| Path::new("/dev").join(d) == *src) => {}
            Mount::Bind {
                src, dst, ro, missing, ..
            } => {
                if *missing == Missing::Skip && !present(dst) {
                    continue;
                }
                let rw = if *ro { "ro" } else { "rw" };
                out.push(mount(dst, "bind", src, &["rbind", "nosuid", rw])?)
            }
            // In the runtime's own lists (readonlyPaths, maskedPaths).
            Mount::ReadOnly { .. } | Mount::Mask { .. } => {}
        }
    }
    Ok(out)
}

/// The config for running `plan` with `rootfs` as the bundle's root (the
/// overlay the caller mounted there, or the plan's directory), with a
/// terminal when `terminal`.
///
/// The PID namespace is the caller's, made before the runtime starts, with
/// a supervisor of ours as its PID 1 and `proc` the /proc mounted for it
/// (bound at /proc): so the command is not PID 1, and signals it has no
/// handler for act on it as they do in the native sandbox.
pub fn spec(plan: &Plan, rootfs: &Path, proc: &Path, terminal: bool, present: &dyn Fn(&Path) -> bool) -> Result<Spec> {
    let args = plan
        .argv
        .iter()
        .map(|a| utf8(a, "argument"))
        .collect::<Result<Vec<_>>>()?;
    let mut env = Vec::with_capacity(plan.env.len());
    for (k, v) in &plan.env {
        env.push(format!("{}={}", utf8(k, "variable")?, utf8(v, "variable")?));
    }
    let caps = default_capabilities();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(spec_error)?;
    let process = ProcessBuilder::default()
        .terminal(terminal)
        .args(args)
        .env(env)
        .cwd(&plan.cwd)
        .no_new_privileges(true)
        .capabilities(capabilities)
        .build()
        .map_err(spec_error)?;

    let namespaces = plan
        .namespaces
        .iter()
        .filter(|ns| **ns != Namespace::Pid)
        .map(|ns| {
            let typ = match ns {
                Namespace::User => LinuxNamespaceType::User,
                Namespace::Mount => LinuxNamespaceType::Mount,
                Namespace::Pid => LinuxNamespaceType::Pid,
                Namespace::Uts => LinuxNamespaceType::Uts,
                Namespace::Ipc => LinuxNamespaceType::Ipc,
                Namespace::Net => LinuxNamespaceType::Network,
            };
            LinuxNamespaceBuilder::default().typ(typ).build().map_err(spec_error)
        })
        .collect::<Result<Vec<_>>>()?;
    // The runtime runs inside the user namespace the caller's map made (as
    // the native PID 1 does); the bundle's own namespace is the identity over
    // it, as the native command's nested one.
    let nested = plan.idmap.nested();
    let path_list = |want: fn(&Mount) -> bool| -> Vec<String> {
        plan.mounts
            .iter()
            .filter(|m| want(m))
            .map(|m| m.dst().to_string_lossy().into_owned())
            .collect()
    };
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .uid_mappings(mappings(&nested.uid)?)
        .gid_mappings(mappings(&nested.gid)?)
        .readonly_paths(path_list(|m| matches!(m, Mount::ReadOnly { .. })))
        .masked_paths(path_list(|m| matches!(m, Mount::Mask { .. })));
    if plan.seccomp == Seccomp::Default {
        linux = linux.seccomp(seccomp_profile()?);
    }
    if let Some(r) = resources(plan)? {
        linux = linux.resources(r);
    }
    let linux = linux.build().map_err(spec_error)?;
    let read_only = matches!(plan.root, RootMount::Bind { .. });
    let root = RootBuilder::default()
        .path(rootfs)
        .readonly(read_only)
        .build()
        .map_err(spec_error)?;
    SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .hostname(plan.hostname.clone())
        .mounts(mounts(plan, proc, present)?)
        .process(process)
        .linux(linux)
        .build()
        .map_err(spec_error)
}

/// The limits the runtime applies in the cgroups the caller made for it
/// (`Plan::runtime_cgroups`): the memory limit (with swap at the same value
/// where swap is accounted, so none is used) and the CPU shares.
fn resources(plan: &Plan) -> Result<Option<LinuxResources>> {
    if plan.runtime_cgroups.is_empty() {
        return Ok(None);
    }
    let bad = |v: &str| Error::Limits {
        reason: format!("{v:?} is not a number"),
    };
    let mut r = LinuxResourcesBuilder::default();
    for cg in &plan.runtime_cgroups {
        for (file, value) in &cg.settings {
            match file.as_str() {
                "memory.limit_in_bytes" => {
                    let v: i64 = value.parse().map_err(|_| bad(value))?;
                    let mut m = LinuxMemoryBuilder::default().limit(v);
                    if cg.parent.join("memory.memsw.limit_in_bytes").exists() {
                        m = m.swap(v);
                    }
                    r = r.memory(m.build().map_err(spec_error)?);
                }
                "cpu.shares" => {
                    let v: u64 = value.parse().map_err(|_| bad(value))?;
                    r = r.cpu(LinuxCpuBuilder::default().shares(v).build().map_err(spec_error)?);
                }
                _ => {}
            }
        }
    }
    Ok(Some(r.build().map_err(spec_error)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{plan, HostFacts, Net, Root, SandboxRequest};

    fn json_of(net: Net, seccomp: Seccomp) -> serde_json::Value {
        let dir = tempfile::tempdir().unwrap();
        let host = HostFacts::for_tests(dir.path());
        let req = SandboxRequest {
            root: Root::Dir(dir.path().to_path_buf()),
            argv: vec!["sh".into(), "-c".into(), "exit 3".into()],
            hostname: Some("box".into()),
            net,
            seccomp,
            ..Default::default()
        };
        let p = plan::plan(&req, &host).unwrap();
        let s = spec(&p, Path::new("/b/rootfs"), Path::new("/b/proc"), false, &|_| false).unwrap();
        serde_json::to_value(&s).unwrap()
    }

    #[test]
    fn runtime_cgroups_become_linux_resources() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostFacts::for_tests(dir.path());
        let req = SandboxRequest {
            root: Root::Dir(dir.path().to_path_buf()),
            argv: vec!["true".into()],
            ..Default::default()
        };
        let mut p = plan::plan(&req, &host).unwrap();
        let none = spec(&p, Path::new("/b/rootfs"), Path::new("/b/proc"), false, &|_| false).unwrap();
        assert!(serde_json::to_value(&none).unwrap()["linux"]["resources"]["memory"].is_null());
        // Swap is held at the limit only where the hierarchy accounts it.
        let (mem, cpu) = (dir.path().join("mem"), dir.path().join("cpu"));
        std::fs::create_dir(&mem).unwrap();
        std::fs::create_dir(&cpu).unwrap();
        std::fs::write(mem.join("memory.memsw.limit_in_bytes"), "").unwrap();
        let cg = |parent: &Path, file: &str, value: &str| super::super::super::cgroup::CgroupPlan {
            parent: parent.to_path_buf(),
            settings: vec![(file.into(), value.into())],
        };
        p.runtime_cgroups = vec![
            cg(&mem, "memory.limit_in_bytes", "33554432"),
            cg(&cpu, "cpu.shares", "512"),
        ];
        let s = spec(&p, Path::new("/b/rootfs"), Path::new("/b/proc"), false, &|_| false).unwrap();
        let r = &serde_json::to_value(&s).unwrap()["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 33554432);
        assert_eq!(r["memory"]["swap"], 33554432);
        assert_eq!(r["cpu"]["shares"], 512);
        std::fs::remove_file(mem.join("memory.memsw.limit_in_bytes")).unwrap();
        let s = spec(&p, Path::new("/b/rootfs"), Path::new("/b/proc"), false, &|_| false).unwrap();
        assert!(serde_json::to_value(&s).unwrap()["linux"]["resources"]["memory"]["swap"].is_null());
    }

    #[test]
    fn config_keeps_the_native_boundary() {
        let v = json_of(Net::None, Seccomp::Default);
        assert_eq!(v["process"]["args"], serde_json::json!(["sh", "-c", "exit 3"]));
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["hostname"], "box");
        assert_eq!(v["root"]["path"], "/b/rootfs");
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["user", "mount", "uts", "ipc", "network"]);
        assert_eq!(v["mounts"][0]["source"], "/b/proc");
        // The identity over the caller-made namespace: uid 1000 of the test
        // host is 0 there, so the bundle maps 0 to 0.
        assert_eq!(
            v["linux"]["uidMappings"],
            serde_json::json!([{"containerID": 0, "hostID": 0, "size": 1}])
        );
        let ro = v["linux"]["readonlyPaths"].as_array().unwrap();
        assert!(ro.contains(&"/proc/sys".into()) && ro.contains(&"/proc/sysrq-trigger".into()));
        let masked = v["linux"]["maskedPaths"].as_array().unwrap();
        assert!(masked.contains(&"/proc/kcore".into()) && masked.contains(&"/proc/keys".into()));
        let denied = &v["linux"]["seccomp"]["syscalls"][0];
        assert_eq!(denied["action"], "SCMP_ACT_ERRNO");
        assert!(denied["names"].as_array().unwrap().contains(&"keyctl".into()));
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        let env = v["process"]["env"].as_array().unwrap();
        assert!(env.contains(&"container=karapace".into()) && env.contains(&"HOSTNAME=box".into()));
        // Nothing of the host's beyond what the plan binds: no /sys at all,
        // /dev a tmpfs whose nodes the runtime makes.
        let dsts: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dsts,
            ["/proc", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run", "/run/user/0"]
        );
        assert_eq!(v["root"]["readonly"], true);
        let caps = v["process"]["capabilities"]["effective"].as_array().unwrap();
        assert!(caps.contains(&"CAP_CHOWN".into()) && !caps.contains(&"CAP_SYS_ADMIN".into()));
    }

    #[test]
    fn host_network_and_no_filter() {
        let v = json_of(Net::Host, Seccomp::Off);
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        assert!(v["linux"].get("seccomp").is_none());
    }
}
