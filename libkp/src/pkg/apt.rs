//! apt-get and dpkg-query (Debian, Ubuntu).

use super::{query_error, Command, InstallOptions, Manager, Package, PkgError, Request};

/// Written into the dependency layer of a single-id-map build: apt then keeps
/// its sandbox user root inside later too, not only during the build.
pub(super) const SINGLE_MAP_CONF: &str = "etc/apt/apt.conf.d/00karapace-single-id-map";
pub(super) const SINGLE_MAP_TEXT: &str = "// Written by karapace: this environment was built with a single-id user\n\
// namespace map, where apt cannot switch to its _apt user for downloads.\n\
APT::Sandbox::User \"root\";\n";

pub(super) fn install(requests: &[Request], opts: &InstallOptions) -> Vec<Command> {
    // Options shared by both steps. With a single-uid map apt cannot switch to
    // `_apt` for downloads (setresuid fails), so it must stay root.
    let mut common: Vec<String> = vec![
        "-o".into(),
        "Dpkg::Use-Pty=0".into(),
        "-o".into(),
        "APT::Color=0".into(),
    ];
    if opts.single_uid {
        common.extend(["-o".into(), "APT::Sandbox::User=root".into()]);
    }
    let env = vec![
        ("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string()),
        ("DEBCONF_NONINTERACTIVE_SEEN".to_string(), "true".to_string()),
    ];
    // `offline` changes no option: the sandbox then has no network, so local
    // sources (file:, a mounted mirror) still work and remote ones fail loudly.
    let mut cmds = Vec::new();
    let mut argv = vec!["apt-get".to_string()];
    argv.extend(common.iter().cloned());
    argv.extend(["-q".into(), "update".into()]);
    cmds.push(Command { argv, env: env.clone() });
    let mut argv = vec!["apt-get".to_string()];
    argv.extend(common);
    // Names are matched literally (docs/manifest.md, "Package names"). apt-get
    // falls back to a glob or a regular expression when no package has the exact
    // name (`lib.q` would install libjq1); Pattern-Only (apt 2.0 and later) turns
    // both off for names without `^` or `$`, which Debian names cannot hold.
    // And an argument ending in `+` or `-` is "install" or "remove" the rest when
    // no package has the exact name (`gcc+` installs gcc); `:native` ends every
    // argument in an architecture instead, which apt reads as a name's own.
    argv.extend(["-o".into(), "APT::Cmd::Pattern-Only=true".into()]);
    argv.extend(["-q".into(), "-y".into(), "--no-install-recommends".into()]);
    argv.push("install".into());
    argv.push("--".into());
    for r in requests {
        argv.push(match &r.version {
            Some(v) => format!("{}:native={v}", r.name),
            None => format!("{}:native", r.name),
        });
    }
    cmds.push(Command { argv, env });
    cmds
}

/// apt's proxy settings: `Acquire::http::Proxy` and `Acquire::https::Proxy`,
/// and `DIRECT` for each host named in `no_proxy` (apt matches exact host
/// names only: a domain suffix or a range cannot be said; `*` means no proxy).
pub(super) fn proxy_conf(p: &crate::net::ManagerProxy) -> String {
    let list = p.no_proxy.as_deref().unwrap_or("");
    let hosts: Vec<&str> = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|h| h.trim_start_matches('.'))
        .filter(|h| *h == "*" || (!h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))))
        .collect();
    let mut text = String::new();
    if hosts.contains(&"*") {
        return text;
    }
    for (scheme, proxy) in [("http", &p.http), ("https", &p.https)] {
        let Some(proxy) = proxy else { continue };
        text.push_str(&format!("Acquire::{scheme}::Proxy \"{proxy}\";\n"));
        for h in &hosts {
            text.push_str(&format!("Acquire::{scheme}::Proxy::{h} \"DIRECT\";\n"));
        }
    }
    text
}

pub(super) fn query() -> Command {
    Command::new(&[
        "dpkg-query",
        "--show",
        "--showformat=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n",
    ])
}

/// Lines `ii \tNAME\tVERSION\tARCH`; only fully installed packages (`ii`) count.
pub(super) fn parse(out: &str) -> Result<Vec<Package>, PkgError> {
    let mut pkgs = Vec::new();
    for (i, line) in out.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [status, name, version, arch] = f.as_slice() else {
            return Err(query_error(Manager::Apt, i, line));
        };
        if status.trim_end() != "ii" {
            continue;
        }
        if name.is_empty() || version.is_empty() {
            return Err(query_error(Manager::Apt, i, line));
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
    fn proxy_settings() {
        let mut p = crate::net::ManagerProxy {
            http: Some("http://u:p@proxy:3128".into()),
            https: None,
            no_proxy: Some("deb.lan, .corp 10.0.0.0/8,::1,x\"y".into()),
        };
        assert_eq!(
            proxy_conf(&p),
            "Acquire::http::Proxy \"http://u:p@proxy:3128\";\n\
             Acquire::http::Proxy::deb.lan \"DIRECT\";\n\
             Acquire::http::Proxy::corp \"DIRECT\";\n"
        );
        p.no_proxy = Some("a,*".into());
        assert_eq!(proxy_conf(&p), "");
    }

    #[test]
    fn install_command_lines() {
        let reqs = [
            Request {
                name: "curl".into(),
                version: None,
            },
            Request {
                name: "jq".into(),
                version: Some("1.6-2.1".into()),
            },
        ];
        let cmds = install(
            &reqs,
            &InstallOptions {
                single_uid: true,
                offline: false,
            },
        );
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].argv.last().unwrap(), "update");
        let argv = &cmds[1].argv;
        assert!(argv.windows(2).any(|w| w == ["-o", "APT::Sandbox::User=root"]));
        assert_eq!(&argv[argv.len() - 3..], ["--", "curl:native", "jq:native=1.6-2.1"]);
        assert!(argv.windows(2).any(|w| w == ["-o", "APT::Cmd::Pattern-Only=true"]));
        assert!(cmds[1]
            .env
            .contains(&("DEBIAN_FRONTEND".into(), "noninteractive".into())));
        let offline = install(
            &reqs,
            &InstallOptions {
                single_uid: false,
                offline: true,
            },
        );
        assert_eq!(offline.len(), 2, "offline runs the same commands, without network");
        assert!(!offline[1].argv.iter().any(|a| a.contains("Sandbox")));
    }

    #[test]
    fn parses_dpkg_query() {
        let out = "ii \tbash\t5.2.15-2+b7\tamd64\nrc \told\t1.0\tamd64\nii \tlibc6\t2.36-9+deb12u4\tamd64\n";
        let pkgs = Manager::Apt.parse_installed(out).unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(
            pkgs[0],
            Package {
                name: "bash".into(),
                version: "5.2.15-2+b7".into(),
                arch: "amd64".into()
            }
        );
        assert!(Manager::Apt.parse_installed("garbage line\n").is_err());
    }
}
