//! pacman (Arch Linux) to install and to read.

use super::{query_error, Command, InstallOptions, Manager, Package, PkgError, Request};

/// pacman installs what its synced repositories hold; it takes `name=version` as
/// a dependency-style constraint, so a locked version the mirror no longer has
/// fails loudly rather than installing another.
pub(super) fn install(requests: &[Request], opts: &InstallOptions) -> Vec<Command> {
    let sync = if opts.offline { "-S" } else { "-Sy" };
    let mut argv: Vec<String> = ["pacman", "--noconfirm", "--needed", "--noprogressbar", sync]
        .map(String::from)
        .to_vec();
    argv.push("--".into());
    argv.extend(requests.iter().map(|r| match &r.version {
        Some(v) => format!("{}={v}", r.name),
        None => r.name.clone(),
    }));
    vec![Command { argv, env: Vec::new() }]
}

pub(super) const CONF: &str = "etc/pacman.conf";

/// pacman 7 drops to `DownloadUser` for downloads, which a single-id map
/// cannot switch to: the setting is commented out. None when the file has no
/// such setting (nothing to change).
pub(super) fn without_download_user(conf: &[u8]) -> Option<Vec<u8>> {
    let mut changed = false;
    let mut out = Vec::with_capacity(conf.len() + 1);
    for line in conf.split_inclusive(|&b| b == b'\n') {
        let key = line.split(|&b| b == b'=').next().unwrap_or_default();
        if key.trim_ascii() == b"DownloadUser" {
            out.push(b'#');
            changed = true;
        }
        out.extend_from_slice(line);
    }
    changed.then_some(out)
}

pub(super) fn query() -> Command {
    Command::new(&["pacman", "-Qi"])
}

/// `pacman -Qi` prints one block per package, `Key : value` lines separated by
/// blank lines; we keep Name, Version and Architecture.
pub(super) fn parse(out: &str) -> Result<Vec<Package>, PkgError> {
    let mut pkgs = Vec::new();
    let (mut name, mut version, mut arch) = (None, None, None);
    let mut flush = |name: &mut Option<String>,
                     version: &mut Option<String>,
                     arch: &mut Option<String>,
                     line: usize| {
        match (name.take(), version.take(), arch.take()) {
            (Some(n), Some(v), Some(a)) => {
                pkgs.push(Package {
                    name: n,
                    version: v,
                    arch: a,
                });
                Ok(())
            }
            (None, None, None) => Ok(()),
            _ => Err(query_error(Manager::Pacman, line, "incomplete package block")),
        }
    };
    for (i, line) in out.lines().enumerate() {
        if line.trim().is_empty() {
            flush(&mut name, &mut version, &mut arch, i)?;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            // Continuation lines of long fields (descriptions, lists).
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "Name" => name = Some(value),
            "Version" => version = Some(value),
            "Architecture" => arch = Some(value),
            _ => {}
        }
    }
    let end = out.lines().count();
    flush(&mut name, &mut version, &mut arch, end)?;
    Ok(pkgs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        let reqs = [Request {
            name: "git".into(),
            version: Some("2.47.0-1".into()),
        }];
        let c = install(&reqs, &InstallOptions::default());
        assert_eq!(&c[0].argv[c[0].argv.len() - 3..], ["-Sy", "--", "git=2.47.0-1"]);
    }

    #[test]
    fn parses_qi_blocks() {
        let out = "Name            : bash\nVersion         : 5.2.026-2\nDescription     : The GNU Bourne Again shell\nArchitecture    : x86_64\nDepends On      : readline  libreadline.so=8-64\n                  glibc\n\nName            : zlib\nVersion         : 1:1.3.1-2\nArchitecture    : x86_64\n";
        let pkgs = Manager::Pacman.parse_installed(out).unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[1].version, "1:1.3.1-2");
        assert!(Manager::Pacman.parse_installed("Name : x\n\n").is_err());
    }
}
