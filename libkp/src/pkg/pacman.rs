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

/// What libalpm prints (`_alpm_run_chroot`) when a scriptlet or a hook exits
/// non-zero; pacman 6 and 7 then carry on and exit 0.
const RUN_FAILED: &str = "error: command failed to execute correctly";

/// How many lines a scriptlet printed are quoted at most.
const QUOTED_LINES: usize = 5;

/// Finds a failed scriptlet (or hook) in pacman's output: the package being
/// installed (or the hook being run), what it printed, pacman's error line.
pub(super) fn failed_scriptlet(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().map(str::trim_end).collect();
    let at = lines.iter().position(|l| l.trim_start() == RUN_FAILED)?;
    // The step pacman announced last before the error: "installing NAME...",
    // "upgrading NAME...", "(1/2) running 'x.hook'...", and what followed it.
    // Less a hook's "(1/2) " counter.
    let bare = |l: &str| -> String {
        l.trim_start_matches(|c: char| c == '(' || c.is_ascii_digit() || c == '/' || c == ')' || c == ' ')
            .trim_end()
            .trim_end_matches("...")
            .to_string()
    };
    let step = lines[..at].iter().rposition(|l| {
        [
            "installing ",
            "upgrading ",
            "reinstalling ",
            "downgrading ",
            "removing ",
            "running '",
        ]
        .iter()
        .any(|p| bare(l).starts_with(p))
    });
    let (what, said) = match step {
        Some(i) => (bare(lines[i]), &lines[i + 1..at]),
        None => ("a scriptlet".to_string(), &lines[..0]),
    };
    let said: Vec<&str> = said.iter().filter(|l| !l.trim().is_empty()).copied().collect();
    let said = &said[said.len().saturating_sub(QUOTED_LINES)..];
    let mut text = format!("pacman said {RUN_FAILED:?} while {what}");
    if !said.is_empty() {
        let quoted: Vec<String> = said.iter().map(|l| format!("{l:?}")).collect();
        text.push_str(&format!(" (its output: {})", quoted.join(", ")));
    }
    text.push_str("; Karapace keeps no install whose scriptlet failed");
    Some(text)
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
    fn command_line_is_pacman_6_and_7() {
        // Only options both pacman 6 and 7 know: pacman 7's sandbox options
        // (--disable-sandbox, 7.1's --disable-sandbox-filesystem and
        // --disable-sandbox-syscalls) would be refused by pacman 6.
        let reqs = [
            Request {
                name: "kp-hello".into(),
                version: None,
            },
            Request {
                name: "kp-greet".into(),
                version: Some("1:1.0-1".into()),
            },
        ];
        let c = install(&reqs, &InstallOptions::default());
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].argv,
            [
                "pacman",
                "--noconfirm",
                "--needed",
                "--noprogressbar",
                "-Sy",
                "--",
                "kp-hello",
                "kp-greet=1:1.0-1"
            ]
        );
        assert!(c[0].env.is_empty());
        let single = InstallOptions {
            single_uid: true,
            offline: true,
        };
        let c = install(&reqs, &single);
        assert_eq!(
            &c[0].argv[..5],
            ["pacman", "--noconfirm", "--needed", "--noprogressbar", "-S"]
        );
        assert!(!c[0].argv.iter().any(|a| a.contains("sandbox") || a.contains("user")));
    }

    /// pacman 7.0's and 7.1's pacman.conf as Arch ships it: `DownloadUser =
    /// alpm`, and the sandbox switches commented out.
    const PACMAN_7_CONF: &str = "[options]\n#RootDir     = /\nHoldPkg     = pacman glibc\nArchitecture = auto\nCheckSpace\nParallelDownloads = 5\nDownloadUser = alpm\n#DisableSandbox\n#DisableSandboxFilesystem\n#DisableSandboxSyscalls\nSigLevel    = Required DatabaseOptional\n\n[core]\nInclude = /etc/pacman.d/mirrorlist\n";

    #[test]
    fn pacman_7_download_user_is_commented_out_for_a_single_map() {
        let out = String::from_utf8(without_download_user(PACMAN_7_CONF.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            PACMAN_7_CONF.replace("DownloadUser = alpm", "#DownloadUser = alpm")
        );
        // The sandbox stays as configured: it restricts the download process
        // (landlock, seccomp), which works inside Karapace's sandbox.
        assert!(out.contains("\n#DisableSandbox\n"));
        // Spellings pacman reads the same; comments and other keys are left.
        for (line, changed) in [
            ("DownloadUser=alpm\n", true),
            ("  DownloadUser   =  alpm\n", true),
            ("\tDownloadUser = alpm", true),
            ("#DownloadUser = alpm\n", false),
            ("DownloadUserX = alpm\n", false),
            (
                "XferCommand = /usr/bin/curl -L -C - -f -o %o %u # DownloadUser = x\n",
                false,
            ),
        ] {
            let conf = format!("[options]\n{line}");
            let got = without_download_user(conf.as_bytes());
            assert_eq!(got.is_some(), changed, "{line:?}");
            if let Some(got) = got {
                assert_eq!(String::from_utf8(got).unwrap(), format!("[options]\n#{line}"));
            }
        }
        // pacman 6 (Debian's 6.0.2) has no such key: nothing to write.
        assert_eq!(
            without_download_user(b"[options]\nHoldPkg = pacman glibc\nCheckSpace\n"),
            None
        );
    }

    #[test]
    fn a_failed_scriptlet_is_found_and_quoted() {
        // pacman 6.0.2's output (non-terminal, --noprogressbar) for a package
        // whose pre_install returns 1; pacman exits 0.
        let out = "resolving dependencies...\nlooking for conflicting packages...\n\nPackages (1) kp-broken-1.0-1\n\n:: Processing package changes...\ninstalling kp-broken...\nkp-broken: this package refuses to install\nerror: command failed to execute correctly\n";
        let what = failed_scriptlet(out).unwrap();
        assert_eq!(
            what,
            "pacman said \"error: command failed to execute correctly\" while installing kp-broken (its output: \"kp-broken: this package refuses to install\"); Karapace keeps no install whose scriptlet failed"
        );
        let hook = ":: Running post-transaction hooks...\n(1/1) running 'x.hook'...\nerror: command failed to execute correctly\n";
        assert!(failed_scriptlet(hook).unwrap().contains("while running 'x.hook'"));
        let ok = ":: Processing package changes...\ninstalling kp-note...\n";
        assert_eq!(failed_scriptlet(ok), None);
        assert_eq!(Manager::Pacman.failed_quietly(out), Some(what));
        assert_eq!(Manager::Apt.failed_quietly(out), None);
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
