//! The user's configuration file, `$XDG_CONFIG_HOME/karapace/config.toml`
//! (default `~/.config/karapace/config.toml`). Each table belongs to one part
//! of Karapace, which parses it: `[images]` in [`crate::image::Config`],
//! `[sandbox]` here ([`SandboxConfig`]), `[network]` here ([`NetworkConfig`]).
//! A missing file is an empty one.

use std::path::{Path, PathBuf};

/// The configuration file could not be read, or says something wrong; each
/// names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A syntax error, an unknown key, a value of the wrong form.
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        crate::exit::FAILURE
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `$XDG_CONFIG_HOME/karapace/config.toml`, else `$HOME/.config/karapace/config.toml`.
pub fn path() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(x) = env("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Some(x.join("karapace/config.toml"));
    }
    env("HOME").map(|h| h.join(".config/karapace/config.toml"))
}

/// The file's text and path, `None` when there is no file.
pub fn read() -> std::io::Result<Option<(String, PathBuf)>> {
    let Some(path) = path() else { return Ok(None) };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((text, path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The table `name` of the configuration `text`, `None` when absent; the
/// error says what is wrong (a syntax error, `name` not a table).
pub fn section(text: &str, name: &str) -> std::result::Result<Option<toml::Table>, String> {
    let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    match doc.remove(name) {
        None => Ok(None),
        Some(toml::Value::Table(t)) => Ok(Some(t)),
        Some(_) => Err(format!("[{name}] must be a table")),
    }
}

/// The `[sandbox]` table: what the user, never a manifest, allows the sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxConfig {
    /// `allow_mounts`: host paths manifest mounts may use besides the
    /// manifest's directory, `$HOME` and `/tmp`; naming a sensitive path here
    /// allows it (docs/manifest.md, "Mount policy"). `~/` is expanded.
    pub allow_mounts: Vec<PathBuf>,
    /// `seccomp = "default" | "off"`: the system-call filter commands run
    /// under unless a command line says otherwise (docs/sandbox.md).
    pub seccomp: crate::sandbox::Seccomp,
}

impl SandboxConfig {
    pub fn load() -> Result<SandboxConfig> {
        match read() {
            Ok(Some((text, path))) => SandboxConfig::from_toml(&text, &path),
            Ok(None) => Ok(SandboxConfig::default()),
            Err(source) => Err(Error::Read {
                path: path().unwrap_or_default(),
                source,
            }),
        }
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<SandboxConfig> {
        let fail = |what: String| Error::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let mut config = SandboxConfig::default();
        let Some(table) = section(text, "sandbox").map_err(fail)? else {
            return Ok(config);
        };
        for (key, value) in &table {
            match key.as_str() {
                "allow_mounts" => {
                    let bad = || fail("sandbox.allow_mounts must be an array of absolute or ~/ paths".into());
                    let list = value.as_array().ok_or_else(bad)?;
                    config.allow_mounts = list
                        .iter()
                        .map(|v| v.as_str().and_then(expand_home).ok_or_else(bad))
                        .collect::<Result<_>>()?;
                }
                "seccomp" => {
                    config.seccomp = value
                        .as_str()
                        .and_then(crate::sandbox::Seccomp::parse)
                        .ok_or_else(|| fail(format!("sandbox.seccomp = {value}: expected \"default\" or \"off\"")))?;
                }
                other => {
                    return Err(fail(format!(
                        "unknown key sandbox.{other} (known: allow_mounts, seccomp)"
                    )))
                }
            }
        }
        Ok(config)
    }
}

// The type lives in net.rs, below this parser, which fills it.
pub use crate::net::NetworkConfig;

impl NetworkConfig {
    pub fn load() -> Result<NetworkConfig> {
        match read() {
            Ok(Some((text, path))) => NetworkConfig::from_toml(&text, &path),
            Ok(None) => Ok(NetworkConfig::default()),
            Err(source) => Err(Error::Read {
                path: path().unwrap_or_default(),
                source,
            }),
        }
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<NetworkConfig> {
        let fail = |what: String| Error::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let mut config = NetworkConfig::default();
        let Some(table) = section(text, "network").map_err(fail)? else {
            return Ok(config);
        };
        for (key, value) in &table {
            let string = || {
                value
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| fail(format!("network.{key} must be a string")))
            };
            match key.as_str() {
                "proxy" => {
                    let p = string()?;
                    if !p.is_empty() {
                        crate::net::check_proxy(&p).map_err(|why| fail(format!("network.proxy: {why}")))?;
                    }
                    config.proxy = Some(p);
                }
                "no_proxy" => config.no_proxy = Some(string()?),
                other => return Err(fail(format!("unknown key network.{other} (known: proxy, no_proxy)"))),
            }
        }
        Ok(config)
    }
}

/// An absolute path, or `~`/`~/...` in the caller's home; `None` otherwise.
pub fn expand_home(p: &str) -> Option<PathBuf> {
    let home = || std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute());
    match p {
        "~" => home(),
        _ if p.starts_with("~/") => home().map(|h| h.join(&p[2..])),
        _ if p.starts_with('/') => Some(PathBuf::from(p)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_table() {
        let p = Path::new("c.toml");
        let c =
            SandboxConfig::from_toml("[images]\nretries = 1\n[sandbox]\nallow_mounts = [\"/srv/data\"]\n", p).unwrap();
        assert_eq!(c.allow_mounts, [PathBuf::from("/srv/data")]);
        assert_eq!(c.seccomp, crate::sandbox::Seccomp::Default);
        let c = SandboxConfig::from_toml("[sandbox]\nseccomp = \"off\"\n", p).unwrap();
        assert_eq!(c.seccomp, crate::sandbox::Seccomp::Off);
        assert_eq!(SandboxConfig::from_toml("", p).unwrap(), SandboxConfig::default());
        for bad in [
            "[sandbox]\nallow_mount = []",
            "[sandbox]\nallow_mounts = [\"rel\"]",
            "[sandbox]\nallow_mounts = \"/x\"",
            "sandbox = 1",
            "[sandbox]\nseccomp = \"strict\"",
        ] {
            assert!(SandboxConfig::from_toml(bad, p).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_table() {
        let p = Path::new("c.toml");
        let c =
            NetworkConfig::from_toml("[network]\nproxy = \"http://u:p@proxy:3128\"\nno_proxy = \"lan\"\n", p).unwrap();
        assert_eq!(c.proxy.as_deref(), Some("http://u:p@proxy:3128"));
        assert_eq!(c.no_proxy.as_deref(), Some("lan"));
        assert_eq!(
            NetworkConfig::from_toml("[network]\nproxy = \"\"", p)
                .unwrap()
                .proxy
                .as_deref(),
            Some("")
        );
        assert_eq!(
            NetworkConfig::from_toml("[sandbox]\n", p).unwrap(),
            NetworkConfig::default()
        );
        for bad in [
            "[network]\nproxy = 1",
            "[network]\nproxies = \"http://p\"",
            "[network]\nproxy = \"ftp://p\"",
            "network = \"http://p\"",
        ] {
            assert!(NetworkConfig::from_toml(bad, p).is_err(), "{bad}");
        }
    }
}
