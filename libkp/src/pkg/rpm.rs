//! dnf (Fedora) and zypper (openSUSE) to install; rpm to read what is installed.

use super::{query_error, Command, InstallOptions, Manager, Package, PkgError, Request};

/// dnf takes `name-version` (version-release) to pin an exact build.
pub(super) fn dnf_install(requests: &[Request], opts: &InstallOptions) -> Vec<Command> {
    let mut argv: Vec<String> = [
        "dnf",
        "-y",
        "--setopt=install_weak_deps=False",
        "--setopt=tsflags=nodocs",
    ]
    .map(String::from)
    .to_vec();
    if opts.offline {
        argv.push("--cacheonly".into());
    }
    argv.push("install".into());
    argv.push("--".into());
    argv.extend(requests.iter().map(|r| match &r.version {
        Some(v) => format!("{}-{}", r.name, strip_epoch(v)),
        None => r.name.clone(),
    }));
    vec![Command { argv, env: Vec::new() }]
}

/// zypper takes `name=version`.
pub(super) fn zypper_install(requests: &[Request], opts: &InstallOptions) -> Vec<Command> {
    let mut cmds = Vec::new();
    if !opts.offline {
        cmds.push(Command::new(&[
            "zypper",
            "--non-interactive",
            "--gpg-auto-import-keys",
            "refresh",
        ]));
    }
    let mut argv: Vec<String> = ["zypper", "--non-interactive"].map(String::from).to_vec();
    if opts.offline {
        argv.push("--no-refresh".into());
    }
    argv.extend(["install", "--no-recommends", "--"].map(String::from));
    argv.extend(requests.iter().map(|r| match &r.version {
        Some(v) => format!("{}={}", r.name, strip_epoch(v)),
        None => r.name.clone(),
    }));
    cmds.push(Command { argv, env: Vec::new() });
    cmds
}

/// The lock keeps rpm's `EPOCH:VERSION-RELEASE`; the installers want it without
/// a zero epoch.
fn strip_epoch(v: &str) -> &str {
    v.strip_prefix("0:").unwrap_or(v)
}

pub(super) fn query() -> Command {
    Command::new(&[
        "rpm",
        "-qa",
        "--queryformat",
        "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n",
    ])
}

/// Lines `NAME\tEPOCH:VERSION-RELEASE\tARCH`. `gpg-pubkey` pseudo-packages (keys
/// imported into the rpm database) are not packages and are skipped.
pub(super) fn parse(manager: Manager, out: &str) -> Result<Vec<Package>, PkgError> {
    let mut pkgs = Vec::new();
    for (i, line) in out.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [name, version, arch] = f.as_slice() else {
            return Err(query_error(manager, i, line));
        };
        if name.is_empty() || !version.contains(':') {
            return Err(query_error(manager, i, line));
        }
        if *name == "gpg-pubkey" {
            continue;
        }
        pkgs.push(Package {
            name: name.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
        });
    }
    Ok(pkgs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let reqs = [Request {
            name: "git".into(),
            version: Some("0:2.47.0-1.fc41".into()),
        }];
        let dnf = dnf_install(&reqs, &InstallOptions::default());
        assert_eq!(dnf[0].argv.last().unwrap(), "git-2.47.0-1.fc41");
        assert!(dnf_install(
            &reqs,
            &InstallOptions {
                offline: true,
                ..Default::default()
            }
        )[0]
        .argv
        .contains(&"--cacheonly".to_string()));
        let zy = zypper_install(&reqs, &InstallOptions::default());
        assert_eq!(zy.len(), 2);
        assert_eq!(zy[1].argv.last().unwrap(), "git=2.47.0-1.fc41");
    }

    #[test]
    fn parses_rpm_query() {
        let out =
            "bash\t0:5.2.26-3.fc41\tx86_64\ngpg-pubkey\t0:e99d6ad1-64d2612c\t(none)\nglibc\t0:2.40-3.fc41\tx86_64\n";
        let pkgs = Manager::Dnf.parse_installed(out).unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].name, "bash");
        assert_eq!(pkgs[0].version, "0:5.2.26-3.fc41");
        assert!(Manager::Zypper.parse_installed("bash 5.2\n").is_err());
    }
}
