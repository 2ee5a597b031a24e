//! Host integration: each switch turns into binds and variables, from facts
//! about the host gathered once ([`HostFacts`]) so plans are reproducible in
//! tests. Sockets land in the sandbox's runtime directory [`RUNTIME_DIR`];
//! nothing here is writable inside except what a switch needs to work (the
//! home directory, device nodes, sockets one connects to).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::plan::{Kind, Missing, Mount};
use super::{Error, HostSwitches, Net, Result};

/// XDG_RUNTIME_DIR inside: the command runs as uid 0.
pub const RUNTIME_DIR: &str = "/run/user/0";

/// What the sandbox needs to know about the host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub uid: u32,
    pub gid: u32,
    /// The caller's user name, for /etc/subuid entries written by name.
    pub user: Option<String>,
    pub env: Vec<(OsString, OsString)>,
    pub subuid_file: PathBuf,
    pub subgid_file: PathBuf,
    /// Whether newuidmap and newgidmap are installed.
    pub newuidmap: bool,
    /// The ids this process's user namespace maps, as (first, count) ranges
    /// (the inside column of /proc/self/uid_map and gid_map); empty when
    /// unknown. All of them for root on the host; one small range when a
    /// rootless command re-runs as root of a mapped namespace.
    pub uid_extent: Vec<(u32, u32)>,
    pub gid_extent: Vec<(u32, u32)>,
    /// The host's /dev (GPU and audio nodes come from here).
    pub dev_dir: PathBuf,
    /// The host's X11 socket directory.
    pub x11_dir: PathBuf,
    /// Host directories `--fonts` shares read-only.
    pub font_dirs: Vec<PathBuf>,
    /// Host directories `--themes` shares read-only: icon and GTK/Qt themes.
    pub theme_dirs: Vec<PathBuf>,
}

/// The (first, count) ranges a /proc/PID/uid_map-style file maps inside.
fn extent(path: &str) -> Vec<(u32, u32)> {
    parse_extent(&std::fs::read_to_string(path).unwrap_or_default())
}

pub(crate) fn parse_extent(map: &str) -> Vec<(u32, u32)> {
    map.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let inside = f.next()?.parse().ok()?;
            let _outside: u32 = f.next()?.parse().ok()?;
            Some((inside, f.next()?.parse().ok()?))
        })
        .collect()
}

impl HostFacts {
    /// The facts of this process and host.
    pub fn current() -> HostFacts {
        let uid = rustix::process::getuid().as_raw();
        let env: Vec<_> = std::env::vars_os().collect();
        let user = env
            .iter()
            .find(|(k, _)| k == "USER")
            .and_then(|(_, v)| v.to_str().map(str::to_string))
            .or_else(|| user_name(uid));
        let on_path = |name: &str| {
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
                .unwrap_or(false)
        };
        HostFacts {
            uid,
            gid: rustix::process::getgid().as_raw(),
            user,
            env,
            subuid_file: "/etc/subuid".into(),
            subgid_file: "/etc/subgid".into(),
            newuidmap: (on_path("newuidmap") && on_path("newgidmap"))
                || (Path::new("/usr/bin/newuidmap").exists() && Path::new("/usr/bin/newgidmap").exists()),
            uid_extent: extent("/proc/self/uid_map"),
            gid_extent: extent("/proc/self/gid_map"),
            dev_dir: "/dev".into(),
            x11_dir: "/tmp/.X11-unix".into(),
            font_dirs: vec!["/usr/share/fonts".into(), "/usr/local/share/fonts".into()],
            theme_dirs: vec!["/usr/share/icons".into(), "/usr/share/themes".into()],
        }
    }

    /// Facts with everything under `dir` and an empty environment, for tests.
    pub fn for_tests(dir: &Path) -> HostFacts {
        HostFacts {
            uid: 1000,
            gid: 1000,
            user: Some("tester".into()),
            env: Vec::new(),
            subuid_file: dir.join("subuid"),
            subgid_file: dir.join("subgid"),
            newuidmap: false,
            uid_extent: Vec::new(),
            gid_extent: Vec::new(),
            dev_dir: dir.join("dev"),
            x11_dir: dir.join("x11"),
            font_dirs: vec![dir.join("fonts")],
            theme_dirs: vec![dir.join("themes")],
        }
    }

    /// Root of the host's own user namespace (every id mapped onto itself),
    /// as opposed to root of a namespace a rootless command re-ran in.
    pub fn is_host_root(&self) -> bool {
        self.uid == 0 && (self.uid_extent.is_empty() || self.uid_extent == [(0, u32::MAX)])
    }

    pub fn var(&self, name: &str) -> Option<&OsStr> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_os_str())
            .filter(|v| !v.is_empty())
    }
}

/// The user name of `uid` from /etc/passwd, when $USER is not set.
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    let uid = uid.to_string();
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

/// What the switches add to a plan.
#[derive(Debug, Default)]
pub struct Integration {
    pub mounts: Vec<Mount>,
    pub env: Vec<(OsString, OsString)>,
    /// The home directory inside, when `--home` shares it.
    pub home: Option<PathBuf>,
}

impl Integration {
    fn bind(&mut self, src: PathBuf, dst: impl Into<PathBuf>, ro: bool, kind: Kind) {
        self.mounts.push(Mount::Bind {
            src,
            dst: dst.into(),
            ro,
            kind,
            missing: Missing::Create,
        });
    }
    fn set(&mut self, k: &str, v: impl Into<OsString>) {
        self.env.push((k.into(), v.into()));
    }
}

fn host_err(switch: &'static str, reason: impl Into<String>) -> Error {
    Error::Host {
        switch,
        reason: reason.into(),
    }
}

/// A host socket for `switch`: it must exist and be a socket.
fn socket(switch: &'static str, path: &Path) -> Result<PathBuf> {
    let real = fs::canonicalize(path).map_err(|e| host_err(switch, format!("{}: {e}", path.display())))?;
    let meta = fs::metadata(&real).map_err(|e| host_err(switch, format!("{}: {e}", real.display())))?;
    if !meta.file_type().is_socket() {
        return Err(host_err(switch, format!("{} is not a socket", real.display())));
    }
    Ok(real)
}

fn runtime_path(switch: &'static str, host: &HostFacts, name: &OsStr) -> Result<PathBuf> {
    let name = Path::new(name);
    if name.is_absolute() {
        return Ok(name.to_path_buf());
    }
    let dir = host
        .var("XDG_RUNTIME_DIR")
        .ok_or_else(|| host_err(switch, "XDG_RUNTIME_DIR is not set"))?;
    Ok(Path::new(dir).join(name))
}

/// Turns the switches into mounts and variables.
pub fn integrate(sw: &HostSwitches, net: Net, host: &HostFacts) -> Result<Integration> {
    let mut out = Integration::default();
    let rt = Path::new(RUNTIME_DIR);
    if sw.home {
        let home = host.var("HOME").ok_or_else(|| host_err("home", "HOME is not set"))?;
        let real =
            fs::canonicalize(home).map_err(|e| host_err("home", format!("{}: {e}", Path::new(home).display())))?;
        if !real.is_dir() || real == Path::new("/") {
            return Err(host_err("home", format!("{} is not a home directory", real.display())));
        }
        out.bind(real.clone(), real.clone(), false, Kind::Dir);
        out.home = Some(real);
    }
    if sw.wayland {
        let name = host.var("WAYLAND_DISPLAY").unwrap_or(OsStr::new("wayland-0"));
        let src = socket("wayland", &runtime_path("wayland", host, name)?)?;
        out.bind(src, rt.join("wayland-0"), true, Kind::File);
        out.set("WAYLAND_DISPLAY", "wayland-0");
    }
    if sw.x11 {
        let display = host
            .var("DISPLAY")
            .ok_or_else(|| host_err("x11", "DISPLAY is not set"))?;
        let d = display.to_string_lossy();
        let number = d
            .strip_prefix("unix:")
            .or_else(|| d.strip_prefix(':'))
            .map(|n| n.split('.').next().unwrap_or(n))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| host_err("x11", format!("DISPLAY={d} is not a local display (:N)")))?;
        let sock = format!("X{number}");
        let src = socket("x11", &host.x11_dir.join(&sock))?;
        out.bind(src, Path::new("/tmp/.X11-unix").join(&sock), true, Kind::File);
        out.set("DISPLAY", format!(":{number}"));
        if let Some(xauth) = host.var("XAUTHORITY").map(PathBuf::from).filter(|p| p.is_file()) {
            let real = fs::canonicalize(&xauth).map_err(|e| host_err("x11", format!("{}: {e}", xauth.display())))?;
            out.bind(real, rt.join("Xauthority"), true, Kind::File);
            out.set("XAUTHORITY", rt.join("Xauthority"));
        }
    }
    if sw.pipewire {
        let name = host.var("PIPEWIRE_REMOTE").unwrap_or(OsStr::new("pipewire-0"));
        let src = socket("pipewire", &runtime_path("pipewire", host, name)?)?;
        out.bind(src, rt.join("pipewire-0"), true, Kind::File);
    }
    if sw.pulseaudio {
        let path = match host.var("PULSE_SERVER").map(|v| v.as_bytes()) {
            Some(v) if v.starts_with(b"unix:") => PathBuf::from(OsStr::from_bytes(&v[5..])),
            Some(v) => {
                let v = String::from_utf8_lossy(v);
                return Err(host_err(
                    "pulseaudio",
                    format!("PULSE_SERVER={v} is not a unix: socket"),
                ));
            }
            None => runtime_path("pulseaudio", host, OsStr::new("pulse/native"))?,
        };
        let src = socket("pulseaudio", &path)?;
        out.bind(src, rt.join("pulse/native"), true, Kind::File);
        out.set("PULSE_SERVER", format!("unix:{RUNTIME_DIR}/pulse/native"));
    }
    if sw.dbus_session {
        let addr = host
            .var("DBUS_SESSION_BUS_ADDRESS")
            .map(|a| a.to_string_lossy().into_owned());
        let path = match addr.as_deref() {
            None => runtime_path("dbus-session", host, OsStr::new("bus"))?,
            Some(a) => match dbus_unix_path(a) {
                DbusAddr::Path(p) => PathBuf::from(p),
                DbusAddr::Abstract if net == Net::Host => {
                    out.set("DBUS_SESSION_BUS_ADDRESS", a);
                    PathBuf::new()
                }
                DbusAddr::Abstract => {
                    return Err(host_err(
                        "dbus-session",
                        format!("{a} is an abstract socket, which lives in the host network namespace; use --net host"),
                    ))
                }
                DbusAddr::Other => return Err(host_err("dbus-session", format!("{a}: no unix:path= socket"))),
            },
        };
        if !path.as_os_str().is_empty() {
            let src = socket("dbus-session", &path)?;
            out.bind(src, rt.join("bus"), true, Kind::File);
            out.set("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={RUNTIME_DIR}/bus"));
        }
    }
    if sw.ssh_agent {
        let sock = host
            .var("SSH_AUTH_SOCK")
            .ok_or_else(|| host_err("ssh-agent", "SSH_AUTH_SOCK is not set"))?;
        let src = socket("ssh-agent", Path::new(sock))?;
        out.bind(src, rt.join("ssh-agent.sock"), true, Kind::File);
        out.set("SSH_AUTH_SOCK", rt.join("ssh-agent.sock"));
    }
    if sw.gpu {
        let mut found = false;
        let dri = host.dev_dir.join("dri");
        if dri.is_dir() {
            out.bind(dri, "/dev/dri", false, Kind::Dir);
            found = true;
        }
        let mut nvidia: Vec<_> = fs::read_dir(&host.dev_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.as_bytes().starts_with(b"nvidia"))
            .collect();
        nvidia.sort();
        for name in nvidia {
            let src = host.dev_dir.join(&name);
            let kind = if src.is_dir() { Kind::Dir } else { Kind::File };
            out.bind(src, Path::new("/dev").join(name), false, kind);
            found = true;
        }
        if !found {
            let dev = host.dev_dir.display();
            return Err(host_err(
                "gpu",
                format!("no GPU device on this host (no {dev}/dri, no {dev}/nvidia*)"),
            ));
        }
    }
    if sw.audio {
        let snd = host.dev_dir.join("snd");
        if !snd.is_dir() {
            return Err(host_err(
                "audio",
                format!("no sound device on this host (no {})", snd.display()),
            ));
        }
        out.bind(snd, "/dev/snd", false, Kind::Dir);
    }
    for (on, switch, dirs) in [
        (sw.fonts, "fonts", &host.font_dirs),
        (sw.themes, "themes", &host.theme_dirs),
    ] {
        if !on {
            continue;
        }
        let present: Vec<_> = dirs.iter().filter(|d| d.is_dir()).collect();
        if present.is_empty() {
            return Err(host_err(switch, format!("none of {} exists on this host", show(dirs))));
        }
        for d in present {
            out.bind(d.clone(), d.clone(), true, Kind::Dir);
        }
    }
    Ok(out)
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

enum DbusAddr<'a> {
    Path(&'a str),
    Abstract,
    Other,
}

/// The first `unix:path=` socket of a D-Bus address list.
fn dbus_unix_path(addr: &str) -> DbusAddr<'_> {
    let mut abstract_seen = false;
    for a in addr.split(';') {
        let Some(params) = a.strip_prefix("unix:") else {
            continue;
        };
        for kv in params.split(',') {
            if let Some(p) = kv.strip_prefix("path=") {
                return DbusAddr::Path(p);
            }
            abstract_seen |= kv.starts_with("abstract=");
        }
    }
    if abstract_seen {
        DbusAddr::Abstract
    } else {
        DbusAddr::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_socket(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::net::UnixListener::bind(path).unwrap();
    }

    #[test]
    fn wayland_socket_from_runtime_dir() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = HostFacts::for_tests(dir.path());
        let rt = dir.path().join("rt");
        make_socket(&rt.join("wl-1"));
        h.env = vec![
            ("XDG_RUNTIME_DIR".into(), rt.clone().into()),
            ("WAYLAND_DISPLAY".into(), "wl-1".into()),
        ];
        let sw = HostSwitches {
            wayland: true,
            ..Default::default()
        };
        let i = integrate(&sw, Net::None, &h).unwrap();
        assert_eq!(i.env, vec![("WAYLAND_DISPLAY".into(), "wayland-0".into())]);
        match &i.mounts[..] {
            [Mount::Bind { src, dst, ro: true, .. }] => {
                assert_eq!(src, &fs::canonicalize(rt.join("wl-1")).unwrap());
                assert_eq!(dst, Path::new("/run/user/0/wayland-0"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_name_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = HostFacts::for_tests(dir.path());
        let err = |sw: HostSwitches, h: &HostFacts| integrate(&sw, Net::None, h).unwrap_err().to_string();
        assert!(err(
            HostSwitches {
                ssh_agent: true,
                ..Default::default()
            },
            &h
        )
        .contains("SSH_AUTH_SOCK is not set"));
        assert!(err(
            HostSwitches {
                gpu: true,
                ..Default::default()
            },
            &h
        )
        .contains("no GPU device"));
        fs::write(dir.path().join("plain"), "").unwrap();
        h.env = vec![("SSH_AUTH_SOCK".into(), dir.path().join("plain").into())];
        assert!(err(
            HostSwitches {
                ssh_agent: true,
                ..Default::default()
            },
            &h
        )
        .contains("not a socket"));
        h.env = vec![(
            "DBUS_SESSION_BUS_ADDRESS".into(),
            "unix:abstract=/tmp/dbus-x,guid=1".into(),
        )];
        assert!(err(
            HostSwitches {
                dbus_session: true,
                ..Default::default()
            },
            &h
        )
        .contains("--net host"));
        h.env = vec![("DISPLAY".into(), "remote:0".into())];
        assert!(err(
            HostSwitches {
                x11: true,
                ..Default::default()
            },
            &h
        )
        .contains("not a local display"));
    }

    #[test]
    fn gpu_binds_dri_and_nvidia_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let h = HostFacts::for_tests(dir.path());
        fs::create_dir_all(h.dev_dir.join("dri")).unwrap();
        fs::write(h.dev_dir.join("nvidiactl"), "").unwrap();
        let i = integrate(
            &HostSwitches {
                gpu: true,
                ..Default::default()
            },
            Net::None,
            &h,
        )
        .unwrap();
        let dsts: Vec<_> = i.mounts.iter().map(|m| m.dst().to_path_buf()).collect();
        assert_eq!(dsts, vec![PathBuf::from("/dev/dri"), PathBuf::from("/dev/nvidiactl")]);
    }
}
