//! Package managers inside images: which one an image has, the commands that
//! install packages (run inside the sandbox), and reading the installed set back
//! from each manager's own database, so the lock records exact versions.
//!
//! Commands are argv vectors, never shell strings: a package name cannot smuggle
//! a command in. Names and versions are validated before they reach one.

mod apt;
mod pacman;
mod rpm;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A package manager Karapace drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Manager {
    /// Debian, Ubuntu: apt-get to install, dpkg-query to read.
    Apt,
    /// Fedora: dnf (4) to install, rpm to read.
    Dnf,
    /// Fedora 41 and later (`/usr/bin/dnf5`, `dnf` a link to it): dnf5, whose
    /// command line differs (rpm.rs), to install; rpm to read.
    Dnf5,
    /// openSUSE: zypper to install, rpm to read.
    Zypper,
    /// Arch Linux: pacman for both.
    Pacman,
}

impl Manager {
    pub fn name(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Dnf => "dnf",
            Manager::Dnf5 => "dnf5",
            Manager::Zypper => "zypper",
            Manager::Pacman => "pacman",
        }
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The directory, at the root of a build's file system, holding the proxy
/// settings file of [`Manager::proxy`].
pub const PROXY_DIR: &str = ".karapace-proxy";

/// Environment variables of a command: name, value.
pub type Env = Vec<(String, String)>;

/// How a manager is told its proxy: a settings file (its path under the root,
/// its text) and environment variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySetup {
    pub file: Option<(String, String)>,
    pub env: Env,
}

impl Manager {
    /// The proxy settings for this manager: apt reads its own configuration
    /// file (`APT_CONFIG`, read before `/etc/apt/apt.conf.d`); dnf, zypper and
    /// pacman download with libcurl, whose settings are curl's variables.
    pub fn proxy(self, p: &crate::net::ManagerProxy) -> ProxySetup {
        if p.is_none() {
            return ProxySetup::default();
        }
        if self == Manager::Apt {
            let path = format!("{PROXY_DIR}/apt.conf");
            return ProxySetup {
                env: vec![("APT_CONFIG".into(), format!("/{path}"))],
                file: Some((path, apt::proxy_conf(p))),
            };
        }
        let env = [
            ("http_proxy", &p.http),
            ("https_proxy", &p.https),
            ("no_proxy", &p.no_proxy),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)))
        .collect();
        ProxySetup { file: None, env }
    }
}

/// The programs that tell a manager, checked in this order (an image has one).
const PROBES: &[(&str, Manager)] = &[
    ("usr/bin/apt-get", Manager::Apt),
    // Before dnf: Fedora 41 and later ship /usr/bin/dnf -> dnf5, whose
    // command line is dnf5's.
    ("usr/bin/dnf5", Manager::Dnf5),
    ("usr/bin/dnf", Manager::Dnf),
    ("usr/bin/zypper", Manager::Zypper),
    ("usr/bin/pacman", Manager::Pacman),
];

/// Package managers Karapace does not drive, named when an image has one of
/// them and none of [`PROBES`].
const UNSUPPORTED: &[(&str, &str)] = &[
    ("sbin/apk", "apk"),
    ("usr/bin/xbps-install", "xbps-install"),
    ("usr/bin/emerge", "emerge"),
    ("usr/bin/nix-env", "nix-env"),
    ("usr/bin/yum", "yum"),
    ("usr/bin/microdnf", "microdnf"),
    ("usr/bin/rpm", "rpm"),
    ("usr/bin/dpkg", "dpkg"),
    ("usr/bin/opkg", "opkg"),
    ("usr/bin/eopkg", "eopkg"),
    ("usr/bin/swupd", "swupd"),
];

/// Finds the package manager of the root filesystem at `root` by the programs it
/// ships (checked in this order; an image has one).
pub fn detect(root: &Path) -> Option<Manager> {
    PROBES
        .iter()
        .find(|(p, _)| root.join(p).symlink_metadata().is_ok())
        .map(|(_, m)| *m)
}

/// Why an image's package manager cannot be used: what was found, in one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DetectError {
    #[error("no package manager Karapace knows ({known}){found}")]
    None { known: String, found: String },
    #[error("{manager}: /{program} cannot run: {reason}")]
    Broken {
        manager: Manager,
        program: String,
        reason: String,
    },
}

/// [`detect`], and then whether the program found can run in the image: it
/// (through its symlinks, resolved inside `root`) is an executable regular
/// file whose interpreter (`#!` line, or an ELF program's loader) the image
/// has too. Nothing runs: this reads files only.
pub fn detect_usable(root: &Path) -> Result<Manager, DetectError> {
    let Some((program, manager)) = PROBES
        .iter()
        .find(|(p, _)| root.join(p).symlink_metadata().is_ok())
        .copied()
    else {
        let mut found: Vec<String> = UNSUPPORTED
            .iter()
            .filter(|(p, _)| root.join(p).symlink_metadata().is_ok())
            .map(|(p, name)| format!("/{p} ({name}, which Karapace does not drive)"))
            .collect();
        if let Some(os) = os_name(root) {
            found.insert(0, os);
        }
        let known = PROBES
            .iter()
            .map(|(p, _)| format!("/{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let found = if found.is_empty() {
            String::new()
        } else {
            format!("; found {}", found.join(", "))
        };
        return Err(DetectError::None { known, found });
    };
    runnable(root, program, 0).map_err(|reason| DetectError::Broken {
        manager,
        program: program.to_string(),
        reason,
    })?;
    Ok(manager)
}

/// The image's `PRETTY_NAME` (else `NAME`) from its os-release, quoted.
fn os_name(root: &Path) -> Option<String> {
    let (_, path) = resolve_in(root, "etc/os-release")
        .or_else(|_| resolve_in(root, "usr/lib/os-release"))
        .ok()?;
    let text = std::fs::read_to_string(path).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty())
    };
    let name = field("PRETTY_NAME").or_else(|| field("NAME"))?;
    Some(format!("{name:?} (/etc/os-release)"))
}

/// How many symlinks [`resolve_in`] follows, as the kernel's limit.
const MAX_LINKS: usize = 40;

/// Resolves `rel` (relative to `root`) the way the image sees it: absolute
/// symlink targets are taken inside `root`, `..` never leaves it. Returns the
/// path inside the image and on the host, or why it does not resolve.
fn resolve_in(root: &Path, rel: &str) -> Result<(String, std::path::PathBuf), String> {
    let mut todo: Vec<String> = rel
        .split('/')
        .rev()
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(c);
        let inside = format!("/{}", done.join("/"));
        let host = root.join(&inside[1..]);
        let meta = host
            .symlink_metadata()
            .map_err(|_| format!("{inside} is not in the image"))?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("{inside}: too many levels of symbolic links"));
            }
            let target = std::fs::read_link(&host).map_err(|e| format!("{inside}: {e}"))?;
            let target = target.to_string_lossy().into_owned();
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(target.split('/').rev().filter(|c| !c.is_empty()).map(String::from));
        }
    }
    let inside = format!("/{}", done.join("/"));
    let host = root.join(&inside[1..]);
    Ok((inside, host))
}

/// Whether the program at `rel` can run in the image at `root` (see
/// [`detect_usable`]); the reason when not. `depth` counts interpreters of
/// interpreters, which the kernel allows a few of.
fn runnable(root: &Path, rel: &str, depth: usize) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let (inside, host) = resolve_in(root, rel).map_err(|e| format!("it is a symlink, but {e}"))?;
    let via = if inside != format!("/{rel}") {
        format!(" ({inside})")
    } else {
        String::new()
    };
    let meta = std::fs::metadata(&host).map_err(|e| format!("{inside}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("it{via} is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o111 == 0 {
        return Err(format!("it{via} is not executable (mode {mode:04o})"));
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(&host)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("{inside}: {e}"))?;
    let head = &head[..n];
    let interpreter = if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let Some(interp) = line.split_whitespace().next() else {
            return Err(format!("it{via} starts with #! but names no interpreter"));
        };
        Some(interp.to_string())
    } else if head.starts_with(b"\x7fELF") {
        elf_interpreter(&host)
    } else {
        return Err(format!("it{via} is neither a script (#!) nor an ELF program"));
    };
    let Some(interp) = interpreter else {
        return Ok(());
    };
    let rel_interp = interp.trim_start_matches('/');
    if resolve_in(root, rel_interp).is_err() {
        return Err(format!("its interpreter {interp} is not in the image"));
    }
    // An ELF loader is the end of the chain (it has no loader of its own).
    if depth >= 4 || (!head.starts_with(b"#!") && elf_interpreter(&resolve_in(root, rel_interp)?.1).is_none()) {
        return Ok(());
    }
    runnable(root, rel_interp, depth + 1).map_err(|e| format!("its interpreter {interp} cannot run: {e}"))
}

/// The loader an ELF program names (its `PT_INTERP`), if any: 64- and 32-bit,
/// either byte order.
fn elf_interpreter(path: &Path) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    let (wide, little) = (data.get(4)? == &2, data.get(5)? == &1);
    let num = |off: usize, len: usize| -> Option<u64> {
        let b = data.get(off..off + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if little { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (num(0x20, 8)?, num(0x36, 2)?, num(0x38, 2)?)
    } else {
        (num(0x1c, 4)?, num(0x2a, 2)?, num(0x2c, 2)?)
    };
    for i in 0..phnum {
        let ph = usize::try_from(phoff + i * phentsize).ok()?;
        if num(ph, 4)? != 3 {
            continue; // not PT_INTERP
        }
        let (off, size) = if wide {
            (num(ph + 8, 8)?, num(ph + 32, 8)?)
        } else {
            (num(ph + 4, 4)?, num(ph + 16, 4)?)
        };
        let bytes = data.get(usize::try_from(off).ok()?..usize::try_from(off + size).ok()?)?;
        let s = bytes.split(|&b| b == 0).next()?;
        return Some(String::from_utf8_lossy(s).into_owned());
    }
    None
}

/// A package as the manager's database reports it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// What to install: a name, and the exact version when installing from a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub version: Option<String>,
}

/// How the install runs.
#[derive(Clone, Debug, Default)]
pub struct InstallOptions {
    /// The sandbox maps a single uid, so the manager cannot drop privileges to
    /// its own unprivileged user (apt's `_apt`): keep it root.
    pub single_uid: bool,
    /// No network inside. apt needs no flag for it (local sources keep
    /// working); dnf and zypper are told to use their caches.
    pub offline: bool,
}

/// A command to run inside the environment: argv and extra environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Command {
    fn new(argv: &[&str]) -> Self {
        Command {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PkgError {
    /// Outside the grammar every manager shares (checked at manifest parse).
    #[error("invalid package name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    /// Something the image's manager would read as syntax, not as a name.
    #[error("{manager}: package name {name:?}: {reason}")]
    Syntax {
        manager: Manager,
        name: String,
        reason: &'static str,
    },
    #[error("invalid version {version:?} for package {name}")]
    BadVersion { name: String, version: String },
    #[error("{manager}: cannot read the installed packages: line {line}: {text:?}")]
    Query {
        manager: Manager,
        line: usize,
        text: String,
    },
}

/// Checks a package name against the grammar every manager shares (the union
/// of Debian, RPM and pacman names that none reads as syntax): a letter or
/// digit, then letters, digits and `+ - . _ @`, at most 128 characters. So no
/// option (`-y`), path (`/x`), repository (`repo/x`), glob (`*?[]`), pattern
/// (`?x`, `~x`), version constraint (`=<>`) or removal prefix (`-x`, `!x`)
/// passes. What one manager still reads as syntax is [`Manager::check_name`]'s.
pub fn check_name(name: &str) -> Result<(), PkgError> {
    let bad = |reason: String| {
        Err(PkgError::BadName {
            name: name.to_string(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return bad("empty".into());
    };
    if name.len() > 128 {
        return bad("longer than 128 characters".into());
    }
    if !first.is_ascii_alphanumeric() {
        return bad(format!("starts with {first:?}; a name starts with a letter or digit"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !"+-._@".contains(*c))
    {
        return bad(format!(
            "{c:?} is not a name character (letters, digits and + - . _ @); versions, globs, paths and repositories are not accepted"
        ));
    }
    Ok(())
}

/// Architectures rpm knows: `NAME.ARCH` is how dnf and zypper name one arch.
const RPM_ARCHES: &[&str] = &[
    "noarch",
    "src",
    "nosrc",
    "x86_64",
    "x86_64_v2",
    "x86_64_v3",
    "x86_64_v4",
    "i386",
    "i486",
    "i586",
    "i686",
    "athlon",
    "ia64",
    "aarch64",
    "armv6hl",
    "armv7hl",
    "armv7l",
    "armv8l",
    "ppc",
    "ppc64",
    "ppc64le",
    "ppc64p7",
    "s390",
    "s390x",
    "riscv64",
    "loongarch64",
    "mips",
    "mipsel",
    "mips64el",
    "sparc64",
];

impl Manager {
    /// Checks `name` for this manager: the shared grammar, then the manager's
    /// own (Debian policy for apt; RPM naming for dnf and zypper), refusing what
    /// the manager's command line would read as syntax rather than as a name.
    /// [`Manager::install`] passes what passes so it is matched literally.
    pub fn check_name(self, name: &str) -> Result<(), PkgError> {
        check_name(name)?;
        let syntax = |reason: &'static str| {
            Err(PkgError::Syntax {
                manager: self,
                name: name.to_string(),
                reason,
            })
        };
        match self {
            Manager::Apt => {
                // Debian policy: [a-z0-9][a-z0-9+.-]+.
                if name.chars().any(|c| c.is_ascii_uppercase()) {
                    return syntax("Debian package names are lower case");
                }
                if name.contains(['_', '@']) {
                    return syntax("Debian package names use a-z, 0-9 and + - . only");
                }
                if name.len() < 2 {
                    return syntax("Debian package names are at least two characters long");
                }
                if name.ends_with('-') {
                    return syntax("a trailing '-' tells apt-get to remove the package");
                }
            }
            Manager::Dnf | Manager::Dnf5 | Manager::Zypper => {
                if name.contains('@') {
                    return syntax("RPM package names use letters, digits and + - . _ only");
                }
                if name.ends_with(".rpm") {
                    return syntax("a name ending in .rpm is read as a package file");
                }
                if name
                    .rsplit_once('.')
                    .is_some_and(|(_, arch)| RPM_ARCHES.contains(&arch))
                {
                    return syntax("a suffix .ARCH is read as the architecture (NAME.ARCH)");
                }
            }
            // pacman reads `repo/name` and `name>=version`, which the shared
            // grammar refuses already; groups are names pacman resolves.
            Manager::Pacman => {}
        }
        Ok(())
    }
}

fn check_version(name: &str, version: &str) -> Result<(), PkgError> {
    let ok = !version.is_empty()
        && version.len() <= 128
        && version.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.:~_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(PkgError::BadVersion {
            name: name.to_string(),
            version: version.to_string(),
        })
    }
}

impl Manager {
    /// The commands that install `requests`, in order.
    pub fn install(self, requests: &[Request], opts: &InstallOptions) -> Result<Vec<Command>, PkgError> {
        for r in requests {
            self.check_name(&r.name)?;
            if let Some(v) = &r.version {
                check_version(&r.name, v)?;
            }
        }
        Ok(match self {
            Manager::Apt => apt::install(requests, opts),
            Manager::Dnf => rpm::dnf_install(requests, opts),
            Manager::Dnf5 => rpm::dnf5_install(requests, opts),
            Manager::Zypper => rpm::zypper_install(requests, opts),
            Manager::Pacman => pacman::install(requests, opts),
        })
    }

    /// The command that marks `names` as installed to satisfy dependencies
    /// (not asked for), run after a `--locked` install names the whole
    /// closure: the manager then records the same marks an unlocked install
    /// of the manifest's packages does. None where the manager keeps no such
    /// mark Karapace can set from a command (dnf and zypper: docs/hash-contract.md).
    pub fn mark_auto(self, names: &[&str]) -> Result<Option<Command>, PkgError> {
        if names.is_empty() {
            return Ok(None);
        }
        for n in names {
            self.check_name(n)?;
        }
        let head: &[&str] = match self {
            Manager::Apt => &["apt-mark", "auto", "--"],
            Manager::Pacman => &["pacman", "-D", "--asdeps", "--"],
            Manager::Dnf | Manager::Dnf5 | Manager::Zypper => return Ok(None),
        };
        let mut cmd = Command::new(head);
        cmd.argv.extend(names.iter().map(|n| n.to_string()));
        Ok(Some(cmd))
    }

    /// Files written into the dependency layer of a build with a single-id
    /// map, so the manager keeps working inside later (`karapace exec ENV --
    /// apt-get install X`): where it would drop privileges to its own user,
    /// which a single map cannot switch to, it is told to stay root. `read`
    /// gives a file of the base (relative path) when one must be edited.
    /// Paths are relative to the root.
    pub fn single_map_config(self, read: &dyn Fn(&str) -> Option<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
        match self {
            Manager::Apt => vec![(
                apt::SINGLE_MAP_CONF.to_string(),
                apt::SINGLE_MAP_TEXT.as_bytes().to_vec(),
            )],
            Manager::Pacman => read(pacman::CONF)
                .and_then(|c| pacman::without_download_user(&c))
                .map(|c| vec![(pacman::CONF.to_string(), c)])
                .unwrap_or_default(),
            // Neither drops privileges of its own: nothing to change.
            Manager::Dnf | Manager::Dnf5 | Manager::Zypper => Vec::new(),
        }
    }

    /// What a successful (exit 0) install command's output says went wrong
    /// all the same, quoting the manager: pacman runs on after a package's
    /// scriptlet fails, and only says so. None when nothing did.
    pub fn failed_quietly(self, output: &str) -> Option<String> {
        match self {
            Manager::Pacman => pacman::failed_scriptlet(output),
            Manager::Apt | Manager::Dnf | Manager::Dnf5 | Manager::Zypper => None,
        }
    }

    /// The command that lists installed packages, in the format `parse_installed`
    /// reads.
    pub fn query(self) -> Command {
        match self {
            Manager::Apt => apt::query(),
            Manager::Dnf | Manager::Dnf5 | Manager::Zypper => rpm::query(),
            Manager::Pacman => pacman::query(),
        }
    }

    /// Parses the query command's output into packages sorted by name and arch.
    pub fn parse_installed(self, out: &str) -> Result<Vec<Package>, PkgError> {
        let mut pkgs = match self {
            Manager::Apt => apt::parse(out)?,
            Manager::Dnf | Manager::Dnf5 | Manager::Zypper => rpm::parse(self, out)?,
            Manager::Pacman => pacman::parse(out)?,
        };
        pkgs.sort();
        pkgs.dedup();
        Ok(pkgs)
    }
}

/// The packages in `after` that are not in `before` or whose version changed:
/// what an install added to the base, i.e. the closure the lock records.
pub fn added(before: &[Package], after: &[Package]) -> Vec<Package> {
    let old: BTreeMap<(&str, &str), &str> = before
        .iter()
        .map(|p| ((p.name.as_str(), p.arch.as_str()), p.version.as_str()))
        .collect();
    after
        .iter()
        .filter(|p| old.get(&(p.name.as_str(), p.arch.as_str())) != Some(&p.version.as_str()))
        .cloned()
        .collect()
}

fn query_error(manager: Manager, line: usize, text: &str) -> PkgError {
    PkgError::Query {
        manager,
        line: line + 1,
        text: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, version: Option<&str>) -> Request {
        Request {
            name: name.into(),
            version: version.map(Into::into),
        }
    }

    #[test]
    fn names_that_could_be_options_or_commands_are_refused() {
        for bad in [
            "-y",
            "--allow-unauthenticated",
            "a b",
            "a;rm",
            "",
            "$(x)",
            "pkg/x",
            "/usr/bin/x",
            "pkgconfig(foo)",
            "x*",
            "x?",
            "x[ab]",
            "jq=1.6",
            "jq>=1",
            "jq<2",
            "jq:amd64",
            "core/jq",
            "@group",
            "?exact-name(jq)",
            "~njq",
            "!jq",
            "+jq",
            ".jq",
            "jq^",
            "^jq$",
            "a|b",
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(matches!(err, PkgError::BadName { .. }), "{bad}");
            for m in [Manager::Apt, Manager::Dnf, Manager::Zypper, Manager::Pacman] {
                assert!(m.check_name(bad).is_err(), "{m} {bad}");
            }
        }
        assert!(check_name(&"a".repeat(129)).is_err());
        let err = Manager::Apt
            .install(&[req("curl", Some("-1"))], &InstallOptions::default())
            .unwrap_err();
        assert!(matches!(err, PkgError::BadVersion { .. }));
    }

    #[test]
    fn each_manager_accepts_its_own_names() {
        let all = [Manager::Apt, Manager::Dnf, Manager::Zypper, Manager::Pacman];
        for good in [
            "curl",
            "g++",
            "libstdc++6",
            "python3.11",
            "xz-utils",
            "gcc-c++",
            "libsigc++-2.0-0v5",
        ] {
            for m in all {
                m.check_name(good).unwrap_or_else(|e| panic!("{m} {good}: {e}"));
            }
        }
        for good in [
            "NetworkManager",
            "perl-Data-Dumper",
            "pam_krb5",
            "java-1.8.0-openjdk",
            "libQt5Core5",
        ] {
            Manager::Dnf.check_name(good).unwrap();
            Manager::Zypper.check_name(good).unwrap();
        }
        for good in ["gtk-engine-murrine", "lib32-glibc", "python-pip", "font@x"] {
            Manager::Pacman.check_name(good).unwrap();
        }
    }

    #[test]
    fn what_one_manager_reads_as_syntax_is_refused_for_it() {
        let syntax = |m: Manager, name: &str| match m.check_name(name) {
            Err(PkgError::Syntax { manager, name: n, .. }) => assert_eq!((manager, n.as_str()), (m, name)),
            other => panic!("{m} {name}: {other:?}"),
        };
        // apt: a trailing '-' removes; outside Debian policy is refused too.
        for bad in ["jq-", "JQ", "lib_x", "x", "font@x"] {
            syntax(Manager::Apt, bad);
        }
        for m in [Manager::Dnf, Manager::Zypper] {
            for bad in ["foo.rpm", "foo.x86_64", "foo.noarch", "glibc.i686", "foo.src", "font@x"] {
                syntax(m, bad);
            }
        }
        // What apt refuses, the others may accept, and the other way round.
        Manager::Dnf.check_name("pam_krb5").unwrap();
        Manager::Pacman.check_name("foo.x86_64").unwrap();
        let err = Manager::Apt.check_name("jq-").unwrap_err().to_string();
        assert_eq!(
            err,
            "apt: package name \"jq-\": a trailing '-' tells apt-get to remove the package"
        );
        let err = Manager::Apt
            .install(&[req("jq-", None)], &InstallOptions::default())
            .unwrap_err();
        assert!(matches!(err, PkgError::Syntax { .. }));
    }

    #[test]
    fn detect_by_programs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        std::fs::write(dir.path().join("usr/bin/zypper"), "").unwrap();
        assert_eq!(detect(dir.path()), Some(Manager::Zypper));
        std::fs::write(dir.path().join("usr/bin/apt-get"), "").unwrap();
        assert_eq!(detect(dir.path()), Some(Manager::Apt));
    }

    #[test]
    fn detect_usable_names_what_it_found() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |rel: &str, text: &[u8], mode: u32| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let _ = std::fs::remove_file(&p);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let known = "/usr/bin/apt-get, /usr/bin/dnf5, /usr/bin/dnf, /usr/bin/zypper, /usr/bin/pacman";
        assert_eq!(
            detect_usable(root).unwrap_err().to_string(),
            format!("no package manager Karapace knows ({known})")
        );
        // What is there instead: the distribution and a manager not driven.
        write(
            "etc/os-release",
            b"NAME=\"Alpine Linux\"\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
            0o644,
        );
        write("sbin/apk", b"\x7fELF", 0o755);
        assert_eq!(
            detect_usable(root).unwrap_err().to_string(),
            format!("no package manager Karapace knows ({known}); found \"Alpine Linux v3.20\" (/etc/os-release), /sbin/apk (apk, which Karapace does not drive)")
        );
        // A symlink to nothing (Fedora's dnf -> dnf-3 without dnf-3).
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        symlink("dnf-3", root.join("usr/bin/dnf")).unwrap();
        let broken = |reason: &str| DetectError::Broken {
            manager: Manager::Dnf,
            program: "usr/bin/dnf".into(),
            reason: reason.into(),
        };
        assert_eq!(
            detect_usable(root),
            Err(broken("it is a symlink, but /usr/bin/dnf-3 is not in the image"))
        );
        assert_eq!(
            detect_usable(root).unwrap_err().to_string(),
            "dnf: /usr/bin/dnf cannot run: it is a symlink, but /usr/bin/dnf-3 is not in the image"
        );
        // A script whose interpreter is missing; then not executable.
        write("usr/bin/dnf-3", b"#!/usr/bin/python3 -s\nimport dnf\n", 0o755);
        assert_eq!(
            detect_usable(root),
            Err(broken("its interpreter /usr/bin/python3 is not in the image"))
        );
        write("usr/bin/dnf-3", b"#!/usr/bin/python3 -s\nimport dnf\n", 0o644);
        assert_eq!(
            detect_usable(root),
            Err(broken("it (/usr/bin/dnf-3) is not executable (mode 0644)"))
        );
        write("usr/bin/dnf-3", b"garbage", 0o755);
        assert_eq!(
            detect_usable(root),
            Err(broken(
                "it (/usr/bin/dnf-3) is neither a script (#!) nor an ELF program"
            ))
        );
        // Found through an absolute symlink, resolved inside the root (never
        // on the host), to a script whose interpreter is there: usable.
        write("usr/bin/dnf-3", b"#!/usr/bin/python3 -s\nimport dnf\n", 0o755);
        symlink("/usr/libexec/python3.12", root.join("usr/bin/python3")).unwrap();
        write("usr/libexec/python3.12", b"#!/bin/true\n", 0o755);
        assert_eq!(
            detect_usable(root),
            Err(broken(
                "its interpreter /usr/bin/python3 cannot run: its interpreter /bin/true is not in the image"
            ))
        );
        std::fs::create_dir_all(root.join("bin")).unwrap();
        // A real ELF program of the host: its loader must be in the image.
        let host_true = ["/usr/bin/true", "/bin/true"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap();
        std::fs::copy(host_true, root.join("usr/libexec/python3.12")).unwrap();
        let loader = elf_interpreter(Path::new(host_true)).expect("the host's true has a loader");
        assert!(loader.starts_with('/'), "{loader}");
        assert_eq!(
            detect_usable(root),
            Err(broken(&format!(
                "its interpreter /usr/bin/python3 cannot run: its interpreter {loader} is not in the image"
            )))
        );
        write("usr/libexec/python3.12", b"#!/usr/bin/env python3\n", 0o755);
        write("usr/bin/env", b"#!/bin/sh\n", 0o755);
        write("bin/sh", b"\x7fELF", 0o755);
        assert_eq!(detect_usable(root), Ok(Manager::Dnf));
        // And apt-get, first in order, wins while it can run.
        std::fs::copy(host_true, root.join("usr/bin/apt-get")).unwrap();
        let err = detect_usable(root).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("apt: /usr/bin/apt-get cannot run: its interpreter {loader} is not in the image")
        );
        write(loader.trim_start_matches('/'), b"\x7fELF", 0o755);
        assert_eq!(detect_usable(root), Ok(Manager::Apt));
    }

    #[test]
    fn mark_auto_commands() {
        let c = Manager::Apt.mark_auto(&["libjq1", "libonig5"]).unwrap().unwrap();
        assert_eq!(c.argv, ["apt-mark", "auto", "--", "libjq1", "libonig5"]);
        let c = Manager::Pacman.mark_auto(&["zlib"]).unwrap().unwrap();
        assert_eq!(c.argv, ["pacman", "-D", "--asdeps", "--", "zlib"]);
        assert_eq!(Manager::Dnf.mark_auto(&["x"]).unwrap(), None);
        assert_eq!(Manager::Zypper.mark_auto(&["x"]).unwrap(), None);
        assert_eq!(Manager::Apt.mark_auto(&[]).unwrap(), None);
        assert!(Manager::Apt.mark_auto(&["-y"]).is_err());
    }

    #[test]
    fn single_map_config_per_manager() {
        let none = |_: &str| None;
        let apt = Manager::Apt.single_map_config(&none);
        assert_eq!(apt.len(), 1);
        assert_eq!(apt[0].0, "etc/apt/apt.conf.d/00karapace-single-id-map");
        assert_eq!(
            String::from_utf8(apt[0].1.clone()).unwrap().lines().last().unwrap(),
            "APT::Sandbox::User \"root\";"
        );
        // pacman: DownloadUser in [options] is commented out, the rest kept.
        let conf = b"[options]\nHoldPkg = pacman glibc\nDownloadUser = alpm\n#DisableSandbox\n\n[core]\nInclude = /etc/pacman.d/mirrorlist\n";
        let read = |p: &str| (p == "etc/pacman.conf").then(|| conf.to_vec());
        let pac = Manager::Pacman.single_map_config(&read);
        assert_eq!(pac.len(), 1);
        assert_eq!(pac[0].0, "etc/pacman.conf");
        let text = String::from_utf8(pac[0].1.clone()).unwrap();
        assert!(text.contains("#DownloadUser = alpm"), "{text}");
        assert!(text.contains("HoldPkg = pacman glibc\n"));
        assert!(text.ends_with("[core]\nInclude = /etc/pacman.d/mirrorlist\n"));
        // A pacman without DownloadUser (before 7.0) needs nothing.
        let old = |_: &str| Some(b"[options]\nHoldPkg = pacman\n".to_vec());
        assert!(Manager::Pacman.single_map_config(&old).is_empty());
        assert!(Manager::Pacman.single_map_config(&none).is_empty());
        assert!(Manager::Dnf.single_map_config(&read).is_empty());
        assert!(Manager::Zypper.single_map_config(&read).is_empty());
    }

    #[test]
    fn added_is_new_or_changed() {
        let p = |n: &str, v: &str| Package {
            name: n.into(),
            version: v.into(),
            arch: "amd64".into(),
        };
        let before = vec![p("a", "1"), p("b", "1")];
        let after = vec![p("a", "1"), p("b", "2"), p("c", "1")];
        assert_eq!(added(&before, &after), vec![p("b", "2"), p("c", "1")]);
    }
}
