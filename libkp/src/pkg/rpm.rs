//! dnf (Fedora) and zypper (openSUSE) to install; rpm to read what is installed.

use super::{query_error, Command, InstallOptions, Manager, Package, PkgError, Request};

/// dnf takes `name-version` (version-release, with an epoch `E:` when not 0)
/// to pin an exact build. Debian's dnf 4.14 runs this end to end
/// (t/t3600-pkg-dnf.sh).
pub(super) fn dnf_install(requests: &[Request], opts: &InstallOptions) -> Vec<Command> {
    vec![dnf_command("dnf", requests, opts, true)]
}

/// dnf5 (an image with /usr/bin/dnf5: Fedora 41 and later, whose `dnf` is a
/// link to it): the same
/// options and package specs (`-y`, `--setopt=install_weak_deps=False`,
/// `--setopt=tsflags=nodocs`, `-C`/`--cacheonly` to use only cached metadata
/// and packages; `name-[E:]V-R`), but its argument parser has no `--`: it
/// refuses it as an unknown argument. None is needed: names are checked to
/// start with a letter or digit ([`super::check_name`]), so none reads as an
/// option.
pub(super) fn dnf5_install(requests: &[Request], opts: &InstallOptions) -> Vec<Command> {
    vec![dnf_command("dnf5", requests, opts, false)]
}

fn dnf_command(program: &str, requests: &[Request], opts: &InstallOptions, dash_dash: bool) -> Command {
    let mut argv: Vec<String> = [
        program,
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
    if dash_dash {
        argv.push("--".into());
    }
    argv.extend(requests.iter().map(|r| match &r.version {
        Some(v) => format!("{}-{}", r.name, strip_epoch(v)),
        None => r.name.clone(),
    }));
    Command { argv, env: Vec::new() }
}

/// zypper takes `name=version` (`name=E:V-R` with an epoch). Debian's zypper
/// 1.14.42 runs this end to end (t/t3610-pkg-zypper.sh).
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

    fn req(name: &str, version: Option<&str>) -> Request {
        Request {
            name: name.into(),
            version: version.map(Into::into),
        }
    }

    #[test]
    fn an_epoch_other_than_zero_is_kept() {
        let reqs = [req("kp-ep", Some("3:2.0-1")), req("kp-lib", Some("0:1.0-1"))];
        let dnf = dnf_install(&reqs, &InstallOptions::default());
        assert_eq!(dnf[0].argv[dnf[0].argv.len() - 2..], ["kp-ep-3:2.0-1", "kp-lib-1.0-1"]);
        let zy = zypper_install(&reqs, &InstallOptions::default());
        assert_eq!(zy[1].argv[zy[1].argv.len() - 2..], ["kp-ep=3:2.0-1", "kp-lib=1.0-1"]);
    }

    #[test]
    fn dnf4_command_line() {
        let reqs = [req("kp-hello", Some("0:1.0-1")), req("kp-post", None)];
        let cmds = Manager::Dnf.install(&reqs, &InstallOptions::default()).unwrap();
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            cmds[0].argv,
            [
                "dnf",
                "-y",
                "--setopt=install_weak_deps=False",
                "--setopt=tsflags=nodocs",
                "install",
                "--",
                "kp-hello-1.0-1",
                "kp-post"
            ]
        );
    }

    #[test]
    fn dnf5_command_line() {
        let reqs = [
            req("git", Some("0:2.47.0-1.fc41")),
            req("kp-ep", Some("3:2.0-1")),
            req("jq", None),
        ];
        let cmds = Manager::Dnf5.install(&reqs, &InstallOptions::default()).unwrap();
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            cmds[0].argv,
            [
                "dnf5",
                "-y",
                "--setopt=install_weak_deps=False",
                "--setopt=tsflags=nodocs",
                "install",
                "git-2.47.0-1.fc41",
                "kp-ep-3:2.0-1",
                "jq"
            ]
        );
        // dnf5's parser refuses `--`: it must never be passed.
        assert!(!cmds[0].argv.contains(&"--".to_string()));
        let offline = InstallOptions {
            offline: true,
            ..Default::default()
        };
        let cmds = Manager::Dnf5.install(&reqs, &offline).unwrap();
        let at = |a: &str| cmds[0].argv.iter().position(|x| x == a).unwrap();
        // A global option, before the command.
        assert!(at("--cacheonly") < at("install"));
        // Without `--`, a name that reads as an option is refused first.
        assert!(Manager::Dnf5.install(&[req("-y", None)], &offline).is_err());
        assert!(Manager::Dnf5.install(&[req("--allowerasing", None)], &offline).is_err());
        // The rest is rpm's, as for dnf 4.
        assert_eq!(Manager::Dnf5.mark_auto(&["x"]).unwrap(), None);
        assert_eq!(Manager::Dnf5.query(), Manager::Dnf.query());
        assert_eq!(Manager::Dnf5.name(), "dnf5");
        assert!(matches!(
            Manager::Dnf5.check_name("foo.x86_64"),
            Err(PkgError::Syntax { .. })
        ));
    }

    #[test]
    fn detect_picks_dnf5_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("dnf"), "").unwrap();
        assert_eq!(crate::pkg::detect(dir.path()), Some(Manager::Dnf));
        std::fs::remove_file(bin.join("dnf")).unwrap();
        std::fs::write(bin.join("dnf5"), "").unwrap();
        assert_eq!(crate::pkg::detect(dir.path()), Some(Manager::Dnf5));
        // Fedora 41 and later: /usr/bin/dnf -> dnf5 runs dnf5, which refuses
        // the `--` of dnf 4's command line.
        std::os::unix::fs::symlink("dnf5", bin.join("dnf")).unwrap();
        assert_eq!(crate::pkg::detect(dir.path()), Some(Manager::Dnf5));
    }
}
