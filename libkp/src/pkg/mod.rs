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
    /// Fedora: dnf to install, rpm to read.
    Dnf,
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

/// Finds the package manager of the root filesystem at `root` by the programs it
/// ships (checked in this order; an image has one).
pub fn detect(root: &Path) -> Option<Manager> {
    const PROBES: &[(&str, Manager)] = &[
        ("usr/bin/apt-get", Manager::Apt),
        ("usr/bin/dnf", Manager::Dnf),
        ("usr/bin/dnf5", Manager::Dnf),
        ("usr/bin/zypper", Manager::Zypper),
        ("usr/bin/pacman", Manager::Pacman),
    ];
    PROBES
        .iter()
        .find(|(p, _)| root.join(p).symlink_metadata().is_ok())
        .map(|(_, m)| *m)
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
    #[error(
        "invalid package name {0:?}: names use letters, digits and + - . _ only, and start with a letter or digit"
    )]
    BadName(String),
    #[error("invalid version {version:?} for package {name}")]
    BadVersion { name: String, version: String },
    #[error("{manager}: cannot read the installed packages: line {line}: {text:?}")]
    Query {
        manager: Manager,
        line: usize,
        text: String,
    },
}

/// Checks a package name for every manager: the intersection of what Debian,
/// RPM and pacman allow, and never something an option parser could take.
pub fn check_name(name: &str) -> Result<(), PkgError> {
    let ok = name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c));
    if ok {
        Ok(())
    } else {
        Err(PkgError::BadName(name.to_string()))
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
            check_name(&r.name)?;
            if let Some(v) = &r.version {
                check_version(&r.name, v)?;
            }
        }
        Ok(match self {
            Manager::Apt => apt::install(requests, opts),
            Manager::Dnf => rpm::dnf_install(requests, opts),
            Manager::Zypper => rpm::zypper_install(requests, opts),
            Manager::Pacman => pacman::install(requests, opts),
        })
    }

    /// The command that lists installed packages, in the format `parse_installed`
    /// reads.
    pub fn query(self) -> Command {
        match self {
            Manager::Apt => apt::query(),
            Manager::Dnf | Manager::Zypper => rpm::query(),
            Manager::Pacman => pacman::query(),
        }
    }

    /// Parses the query command's output into packages sorted by name and arch.
    pub fn parse_installed(self, out: &str) -> Result<Vec<Package>, PkgError> {
        let mut pkgs = match self {
            Manager::Apt => apt::parse(out)?,
            Manager::Dnf | Manager::Zypper => rpm::parse(self, out)?,
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
        for bad in ["-y", "--allow-unauthenticated", "a b", "a;rm", "", "$(x)", "pkg/x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["curl", "g++", "libstdc++6", "python3.11", "xz-utils", "gcc_s1"] {
            check_name(good).unwrap();
        }
        let err = Manager::Apt
            .install(&[req("curl", Some("-1"))], &InstallOptions::default())
            .unwrap_err();
        assert!(matches!(err, PkgError::BadVersion { .. }));
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
