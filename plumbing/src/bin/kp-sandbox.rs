use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use kp_plumbing::{lexopt, usage, utf8, Fail, Result};
use libkp::sandbox::{self, BindRequest, HostFacts, Net, OverlayDriver, Root, SandboxRequest, UidMapMode};

const USAGE: &str = "\
usage: kp-sandbox (--rootfs DIR | --lower DIR... --upper DIR --work DIR) [OPTIONS] -- CMD [ARG...]

Runs CMD in a rootless sandbox: new user, mount, PID, UTS, IPC and network
namespaces over a read-only root directory or an overlay of lower directories
(first is top-most) under a writable upper one. Exits with CMD's status
(128+N if killed by signal N, 127 not found, 126 not executable); 125 if the
sandbox was refused or could not start. See docs/sandbox.md.

  --hostname NAME        hostname inside (default karapace)
  --net none|host        loopback only (default), or the host's network
  --bind SRC:DST[:ro]    bind a host path (allowlist: /home, /tmp, --allow)
  --allow DIR            add DIR to the mount allowlist (naming a sensitive
                         path such as ~/.ssh allows it)
  --home --wayland --x11 --pipewire --pulseaudio --dbus-session
  --ssh-agent --gpu --audio --fonts --themes
                         host integration, each off unless given
  --env K=V              set a variable
  --env-pass NAME        pass a host variable (never secrets)
  --cpu-shares N --memory-mb N
                         limits through a delegated cgroup v2, else refused
  --uid-map auto|single|subuid
  --overlay auto|kernel|fuse
  --seccomp default|off  the system-call filter (default: on)
  --cwd DIR              working directory inside (default /)
  --backend native|oci[:RUNTIME]
                         run the plan natively (default) or through an OCI
                         runtime: runc, crun, youki or auto (the default)
  --print-plan           print the setup steps and exit
";

fn value(p: &mut lexopt::Parser, what: &str) -> Result<String> {
    utf8(p.value()?, what)
}

fn number(p: &mut lexopt::Parser, what: &str) -> Result<u64> {
    let v = value(p, what)?;
    v.parse()
        .map_err(|_| Fail::Usage(format!("{what} {v:?} is not a number")))
}

fn parse_bind(spec: &str) -> Result<BindRequest> {
    let parts: Vec<&str> = spec.split(':').collect();
    let ro = match parts.get(2) {
        None => false,
        Some(&"ro") => true,
        Some(&"rw") => false,
        Some(other) => return usage(format!("--bind {spec:?}: mode {other:?} is not ro or rw")),
    };
    match parts[..] {
        [src, dst, ..] if parts.len() <= 3 && !src.is_empty() && !dst.is_empty() => Ok(BindRequest {
            src: src.into(),
            dst: dst.into(),
            ro,
        }),
        _ => usage(format!("--bind {spec:?} is not SRC:DST[:ro]")),
    }
}

fn parse_env(kv: OsString) -> Result<(String, OsString)> {
    let bytes = kv.as_bytes();
    let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
        return usage(format!("--env {kv:?} is not K=V"));
    };
    let name =
        String::from_utf8(bytes[..eq].to_vec()).map_err(|_| Fail::Usage(format!("--env {kv:?}: name is not UTF-8")))?;
    Ok((name, OsStr::from_bytes(&bytes[eq + 1..]).to_owned()))
}

fn run(mut p: lexopt::Parser, usage_text: &str) -> Result<i32> {
    use lexopt::Arg::{Long, Short};
    let mut req = SandboxRequest::default();
    let (mut rootfs, mut lowers, mut upper, mut work): (
        Option<PathBuf>,
        Vec<PathBuf>,
        Option<PathBuf>,
        Option<PathBuf>,
    ) = (None, Vec::new(), None, None);
    let mut print_plan = false;
    let mut oci: Option<Option<sandbox::oci::Kind>> = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("rootfs") => rootfs = Some(p.value()?.into()),
            Long("lower") => lowers.push(p.value()?.into()),
            Long("upper") => upper = Some(p.value()?.into()),
            Long("work") => work = Some(p.value()?.into()),
            Long("hostname") => req.hostname = Some(value(&mut p, "--hostname")?),
            Long("net") => {
                req.net = match value(&mut p, "--net")?.as_str() {
                    "none" => Net::None,
                    "host" => Net::Host,
                    v => return usage(format!("--net {v:?} is not none or host")),
                }
            }
            Long("bind") => req.binds.push(parse_bind(&value(&mut p, "--bind")?)?),
            Long("allow") => req.allow.push(p.value()?.into()),
            Long("home") => req.host.home = true,
            Long("wayland") => req.host.wayland = true,
            Long("x11") => req.host.x11 = true,
            Long("pipewire") => req.host.pipewire = true,
            Long("pulseaudio") => req.host.pulseaudio = true,
            Long("dbus-session") => req.host.dbus_session = true,
            Long("ssh-agent") => req.host.ssh_agent = true,
            Long("gpu") => req.host.gpu = true,
            Long("audio") => req.host.audio = true,
            Long("fonts") => req.host.fonts = true,
            Long("themes") => req.host.themes = true,
            Long("env") => req.env.push(parse_env(p.value()?)?),
            Long("env-pass") => req.env_pass.push(value(&mut p, "--env-pass")?),
            Long("cpu-shares") => req.limits.cpu_shares = Some(number(&mut p, "--cpu-shares")?),
            Long("memory-mb") => req.limits.memory_mb = Some(number(&mut p, "--memory-mb")?),
            Long("uid-map") => {
                req.uid_map = match value(&mut p, "--uid-map")?.as_str() {
                    "auto" => UidMapMode::Auto,
                    "single" => UidMapMode::Single,
                    "subuid" => UidMapMode::Subuid,
                    v => return usage(format!("--uid-map {v:?} is not auto, single or subuid")),
                }
            }
            Long("overlay") => {
                req.overlay = match value(&mut p, "--overlay")?.as_str() {
                    "auto" => OverlayDriver::Auto,
                    "kernel" => OverlayDriver::Kernel,
                    "fuse" => OverlayDriver::Fuse,
                    v => return usage(format!("--overlay {v:?} is not auto, kernel or fuse")),
                }
            }
            Long("seccomp") => {
                let v = value(&mut p, "--seccomp")?;
                req.seccomp = sandbox::Seccomp::parse(&v)
                    .ok_or_else(|| Fail::Usage(format!("--seccomp {v:?} is not default or off")))?;
            }
            Long("cwd") => req.cwd = Some(p.value()?.into()),
            Long("backend") => oci = parse_backend(&value(&mut p, "--backend")?)?,
            Long("print-plan") => print_plan = true,
            Short('h') | Long("help") => return kp_plumbing::help(usage_text),
            lexopt::Arg::Value(v) => {
                req.argv.push(v);
                req.argv.extend(p.raw_args()?);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    req.root = match (rootfs, lowers.is_empty(), upper, work) {
        (Some(dir), true, None, None) => Root::Dir(dir),
        (None, false, Some(upper), Some(work)) => Root::Overlay { lowers, upper, work },
        (None, true, None, None) => return usage("give --rootfs DIR, or --lower DIR... --upper DIR --work DIR"),
        (Some(_), ..) => return usage("--rootfs cannot be combined with --lower, --upper or --work"),
        _ => return usage("an overlay root needs --lower, --upper and --work together"),
    };
    if req.argv.is_empty() {
        return usage("no command given");
    }
    let refused = |e: sandbox::Error| {
        eprintln!("kp-sandbox: error: {e}");
        Fail::Exit(125)
    };
    req.runtime_limits = oci.is_some();
    let plan = sandbox::plan(&req, &HostFacts::current()).map_err(refused)?;
    if print_plan {
        std::io::stdout().write_all(plan.to_string().as_bytes())?;
        return Ok(0);
    }
    match oci {
        None => sandbox::run(&plan).map_err(refused),
        Some(want) => {
            let rt = sandbox::oci::choose(want).map_err(refused)?;
            sandbox::oci::run(&plan, &rt).map_err(refused)
        }
    }
}

/// `native`, or `oci` with an optional `:RUNTIME` (`auto` when absent).
fn parse_backend(v: &str) -> Result<Option<Option<sandbox::oci::Kind>>> {
    let (backend, runtime) = v.split_once(':').unwrap_or((v, "auto"));
    match backend {
        "native" if runtime == "auto" && !v.contains(':') => Ok(None),
        "oci" if runtime == "auto" => Ok(Some(None)),
        "oci" => sandbox::oci::Kind::ALL
            .into_iter()
            .find(|k| k.name() == runtime)
            .map(|k| Some(Some(k)))
            .ok_or_else(|| {
                Fail::Usage(format!(
                    "--backend {v:?}: unknown runtime {runtime:?} (runc, crun, youki or auto)"
                ))
            }),
        _ => usage(format!("--backend {v:?} is not native or oci[:RUNTIME]")),
    }
}

fn main() {
    kp_plumbing::main("kp-sandbox", USAGE, run)
}
