//! Policy: which host paths may be bound in, which devices, which variables
//! cross into the sandbox. Every refusal names the rule and the value.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use super::{BindRequest, Error, HostFacts, Result};

/// Roots `--bind` sources must resolve under, besides `--allow` ones.
pub const DEFAULT_ALLOWED: &[&str] = &["/home", "/tmp"];

/// Home-relative paths that hold keys, credentials or Karapace's own
/// configuration: a bind may not be, lie under or contain one unless that path
/// is allowed explicitly (docs/sandbox.md, "Sensitive paths").
pub const SENSITIVE_IN_HOME: &[&str] = &[".ssh", ".gnupg", ".aws", ".kube", ".docker", ".config/karapace"];
/// Absolute sensitive paths; `/` only counts when it is the source itself.
pub const SENSITIVE: &[&str] = &["/", "/etc", "/run", "/var/run/docker.sock"];

/// Host variables passed when set: terminal and locale, nothing that names a
/// host resource.
pub const ENV_ALLOWED: &[&str] = &["TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ", "NO_COLOR"];

/// Names that are secrets or hand out host authority; `--env-pass` refuses them.
const SECRET_NAMES: &[&str] = &[
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "KUBECONFIG",
    "VAULT_ADDR",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DBUS_SESSION_BUS_ADDRESS",
    "KRB5CCNAME",
];
const SECRET_PREFIXES: &[&str] = &["AWS_", "AZURE_", "GCP_", "VAULT_"];
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "API_KEY",
    "PRIVATE_KEY",
];

/// Whether a variable name is treated as a secret.
pub fn is_secret(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    SECRET_NAMES.contains(&up.as_str())
        || SECRET_PREFIXES.iter().any(|p| up.starts_with(p))
        || SECRET_WORDS.iter().any(|w| up.contains(w))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

/// The command's environment: a fixed base, the allowed host variables, those
/// passed by name (never secrets), the integration's, then explicit ones.
pub fn environment(
    base: Vec<(OsString, OsString)>,
    pass: &[String],
    integration: &[(OsString, OsString)],
    explicit: &[(String, OsString)],
    host: &HostFacts,
) -> Result<Vec<(OsString, OsString)>> {
    let mut env = base;
    let mut put = |k: OsString, v: OsString| match env.iter_mut().find(|(ek, _)| *ek == k) {
        Some(e) => e.1 = v,
        None => env.push((k, v)),
    };
    for (k, v) in &host.env {
        let name = k.to_string_lossy();
        if ENV_ALLOWED.contains(&name.as_ref()) || name.starts_with("LC_") {
            put(k.clone(), v.clone());
        }
    }
    for name in pass {
        if !valid_name(name) {
            return Err(Error::Env {
                name: name.clone(),
                reason: "not a variable name".into(),
            });
        }
        if name == "SSH_AUTH_SOCK" {
            return Err(Error::Env {
                name: name.clone(),
                reason: "never passed from the host; use --ssh-agent".into(),
            });
        }
        if is_secret(name) {
            return Err(Error::Env {
                name: name.clone(),
                reason:
                    "looks like a secret and is never passed from the host; set it with --env NAME=VALUE if you mean it"
                        .into(),
            });
        }
        if let Some(v) = host.var(name) {
            put(name.into(), v.to_owned());
        }
    }
    for (k, v) in integration {
        put(k.clone(), v.clone());
    }
    for (k, v) in explicit {
        if !valid_name(k) {
            return Err(Error::Env {
                name: k.clone(),
                reason: "not a variable name".into(),
            });
        }
        put(k.into(), v.clone());
    }
    Ok(env)
}

/// A path inside the sandbox: absolute, no `..`, not `/` and not in the
/// kernel's or the sandbox's own trees.
pub fn check_destination(dst: &Path, what: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::Invalid {
            what: format!("{what} {}", dst.display()),
            reason: reason.into(),
        })
    };
    if !dst.is_absolute() {
        return bad("destination must be an absolute path");
    }
    if dst.components().any(|c| c == Component::ParentDir) {
        return bad("destination must not contain ..");
    }
    if dst.components().count() == 1 {
        return bad("cannot mount over /");
    }
    for reserved in ["/proc", "/sys", "/dev"] {
        if dst.starts_with(reserved) {
            return bad("destination is reserved for the sandbox's own mounts");
        }
    }
    Ok(())
}

/// Checks a `--bind` source against the device policy and the allowlist, after
/// resolving `..` and every symlink; returns the resolved path, which is what
/// gets mounted (symlinks are not followed again at mount time).
pub fn check_bind(bind: &BindRequest, allow: &[PathBuf]) -> Result<PathBuf> {
    check_destination(&bind.dst, "--bind")?;
    let resolved = fs::canonicalize(&bind.src).map_err(Error::setup("resolve --bind source", &bind.src))?;
    let meta = fs::metadata(&resolved).map_err(Error::setup("stat --bind source", &resolved))?;
    let ft = meta.file_type();
    if resolved.starts_with("/dev") || ft.is_char_device() || ft.is_block_device() {
        return Err(Error::Device { path: bind.src.clone() });
    }
    let mut roots: Vec<PathBuf> = DEFAULT_ALLOWED.iter().map(PathBuf::from).collect();
    roots.extend(allow.iter().cloned());
    let allowed = roots.iter().any(|root| {
        let root = fs::canonicalize(root).unwrap_or_else(|_| root.clone());
        resolved.starts_with(&root)
    });
    if !allowed {
        return Err(Error::NotAllowed {
            path: bind.src.clone(),
            resolved,
            allowed: roots,
        });
    }
    let what = format!("mount policy: {}", bind.src.display());
    check_sensitive(&what, &resolved, allow, &sensitive_paths(&[]), "add it with --allow")?;
    Ok(resolved)
}

/// The sensitive paths of this process's environment (`$HOME`'s, the
/// configuration directory, `$XDG_RUNTIME_DIR`, the default store) and
/// `extra`, each resolved as far as it exists.
pub fn sensitive_paths(extra: &[PathBuf]) -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from).filter(|p| p.is_absolute());
    let mut paths: Vec<PathBuf> = SENSITIVE.iter().map(PathBuf::from).collect();
    if let Some(home) = env("HOME") {
        paths.extend(SENSITIVE_IN_HOME.iter().map(|p| home.join(p)));
    }
    paths.extend(env("XDG_CONFIG_HOME").map(|c| c.join("karapace")));
    paths.extend(env("XDG_RUNTIME_DIR"));
    paths.extend(crate::store::default_location().filter(|p| p.is_absolute()));
    paths.extend(extra.iter().cloned());
    let mut out: Vec<PathBuf> = paths.iter().map(|p| resolve_existing(p)).collect();
    out.dedup();
    out
}

/// `p` with symlinks and `..` resolved in the part of it that exists, the
/// rest appended as written.
pub fn resolve_existing(p: &Path) -> PathBuf {
    // Most paths exist whole: one realpath then.
    if let Ok(r) = fs::canonicalize(p) {
        return r;
    }
    let mut cur = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                cur.pop();
            }
            Component::CurDir => {}
            other => {
                cur.push(other);
                if let Ok(r) = fs::canonicalize(&cur) {
                    cur = r;
                }
            }
        }
    }
    cur
}

/// `path` with the caller's home written as `~`.
pub fn tilde(path: &Path) -> String {
    let home = std::env::var_os("HOME").map(|h| resolve_existing(Path::new(&h)));
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if rest.as_os_str().is_empty() => "~".into(),
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

/// Refuses a resolved bind source that is, lies under, or contains a
/// sensitive path, unless an allowed root lies at or under that sensitive
/// path and covers what is bound of it (the source itself when it lies
/// under the sensitive path, the whole sensitive path when it contains it).
/// `what` names the mount, `hint` says how to allow it.
pub fn check_sensitive(
    what: &str,
    resolved: &Path,
    allow: &[PathBuf],
    sensitive: &[PathBuf],
    hint: &str,
) -> Result<()> {
    for s in sensitive {
        let (relation, deeper) = if resolved == s {
            ("is", s.as_path())
        } else if s.parent().is_none() {
            continue;
        } else if resolved.starts_with(s) {
            ("lies under", resolved)
        } else if s.starts_with(resolved) {
            ("contains", s.as_path())
        } else {
            continue;
        };
        let cleared = allow.iter().any(|a| {
            let a = resolve_existing(a);
            a.starts_with(s) && deeper.starts_with(&a)
        });
        if !cleared {
            return Err(Error::Invalid {
                what: what.to_string(),
                reason: format!("{} {relation} {}, a sensitive path; {hint}", tilde(resolved), tilde(s)),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(src: &Path, dst: &str) -> BindRequest {
        BindRequest {
            src: src.to_path_buf(),
            dst: dst.into(),
            ro: false,
        }
    }

    #[test]
    fn allowlist_resolves_dotdot_and_symlinks() {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let allowed = dir.path().join("ok");
        let outside = dir.path().join("secret");
        fs::create_dir_all(&allowed).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let allow = vec![allowed.clone()];
        assert!(check_bind(&bind(&allowed, "/mnt"), &allow).is_ok());
        let dotdot = allowed.join("../secret");
        assert!(matches!(
            check_bind(&bind(&dotdot, "/mnt"), &allow),
            Err(Error::NotAllowed { .. })
        ));
        std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
        let err = check_bind(&bind(&allowed.join("link"), "/mnt"), &allow).unwrap_err();
        match err {
            Error::NotAllowed { resolved, .. } => {
                assert_eq!(resolved, fs::canonicalize(&outside).unwrap())
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn sensitive_paths_need_their_own_allowance() {
        let dir = tempfile::tempdir().unwrap();
        let home = fs::canonicalize(dir.path()).unwrap();
        let ssh = home.join(".ssh");
        fs::create_dir(&ssh).unwrap();
        let sens = vec![PathBuf::from("/"), PathBuf::from("/etc"), ssh.clone()];
        let check = |src: &Path, allow: &[PathBuf]| check_sensitive("m", src, allow, &sens, "h");
        assert!(check(&home.join("proj"), &[]).is_ok());
        assert!(check(Path::new("/usr"), &[]).is_ok());
        for (src, allow) in [
            (home.clone(), vec![home.clone()]),
            (ssh.clone(), vec![home.clone()]),
            (ssh.join("id"), vec![ssh.join("other")]),
            (PathBuf::from("/"), vec![]),
            (PathBuf::from("/etc/ssl"), vec![PathBuf::from("/etc/x")]),
            (home.clone(), vec![ssh.join("known_hosts")]),
        ] {
            assert!(
                matches!(check(&src, &allow), Err(Error::Invalid { .. })),
                "{src:?} {allow:?}"
            );
        }
        for (src, allow) in [
            (ssh.clone(), vec![ssh.clone()]),
            (ssh.join("id"), vec![ssh.join("id")]),
            (ssh.join("id"), vec![ssh.clone()]),
            (home.clone(), vec![ssh.clone()]),
            (PathBuf::from("/etc/ssl"), vec![PathBuf::from("/etc")]),
        ] {
            assert!(check(&src, &allow).is_ok(), "{src:?} {allow:?}");
        }
        let missing = home.join("a/../b/c");
        assert_eq!(resolve_existing(&missing), home.join("b/c"));
    }

    #[test]
    fn devices_and_reserved_destinations_refused() {
        assert!(matches!(
            check_bind(&bind(Path::new("/dev/null"), "/mnt"), &[]),
            Err(Error::Device { .. })
        ));
        for dst in ["relative", "/", "/proc/x", "/dev/sda", "/a/../etc"] {
            assert!(check_destination(Path::new(dst), "--bind").is_err(), "{dst}");
        }
        assert!(check_destination(Path::new("/srv/data"), "--bind").is_ok());
    }

    #[test]
    fn secrets_never_pass() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = HostFacts::for_tests(dir.path());
        h.env = vec![
            ("TERM".into(), "xterm".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "k".into()),
            ("FOO".into(), "bar".into()),
            ("LC_ALL".into(), "C".into()),
        ];
        let env = environment(vec![], &[], &[], &[], &h).unwrap();
        assert_eq!(
            env,
            vec![("TERM".into(), "xterm".into()), ("LC_ALL".into(), "C".into())]
        );
        let env = environment(vec![], &["FOO".into()], &[], &[("X".into(), "1".into())], &h).unwrap();
        assert!(env.contains(&("FOO".into(), "bar".into())) && env.contains(&("X".into(), "1".into())));
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
            "DOCKER_HOST",
            "GPG_AGENT_INFO",
            "SSH_AUTH_SOCK",
        ] {
            assert!(
                matches!(
                    environment(vec![], &[name.into()], &[], &[], &h),
                    Err(Error::Env { .. })
                ),
                "{name}"
            );
        }
    }
}
