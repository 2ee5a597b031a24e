//! The `[images]` table of the user's configuration file ([`crate::config`]) and `KARAPACE_IMAGE_SERVER`. Other tables of
//! that file belong to other parts of Karapace and are left alone here; unknown
//! keys inside `[images]` are errors, so a typo never goes unnoticed.

use std::path::{Path, PathBuf};

use super::Result;
use super::{ImageError, Limits};

pub const DEFAULT_SERVER: &str = "https://images.linuxcontainers.org";
/// Image servers to use instead of the configured ones: URLs separated by commas
/// or white space, tried in order.
pub const ENV_SERVER: &str = "KARAPACE_IMAGE_SERVER";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Simplestreams servers, tried in order; no trailing slash.
    pub servers: Vec<String>,
    pub limits: Limits,
    /// Further attempts after a transient network failure.
    pub retries: u32,
    /// Seconds without progress before a connection is given up.
    pub timeout_secs: u64,
    /// The `[network]` table: proxy.
    pub network: crate::config::NetworkConfig,
    /// OCI registries (`host` or `host:port`) spoken to in plain http;
    /// loopback registries always are (docs/oci.md).
    pub insecure_registries: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: vec![DEFAULT_SERVER.to_string()],
            limits: Limits::default(),
            retries: 3,
            timeout_secs: 30,
            network: Default::default(),
            insecure_registries: Vec::new(),
        }
    }
}

use crate::config::path as config_path;

impl Config {
    /// The configuration file (if any), then the environment.
    pub fn load() -> Result<Config> {
        let mut config = match crate::config::read() {
            Ok(Some((text, path))) => Config {
                network: crate::config::NetworkConfig::from_toml(&text, &path)?,
                ..Config::from_toml(&text, &path)?
            },
            Ok(None) => Config::default(),
            Err(e) => {
                return Err(ImageError::Config {
                    path: config_path().unwrap_or_default(),
                    reason: e.to_string(),
                }
                .into())
            }
        };
        if let Some(v) = std::env::var_os(ENV_SERVER).filter(|v| !v.is_empty()) {
            let v = v.to_string_lossy().into_owned();
            let path = PathBuf::from(format!("${ENV_SERVER}"));
            config.servers = v
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(|s| check_server(s, &path))
                .collect::<Result<_>>()?;
        }
        Ok(config)
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Config> {
        let fail = |reason: String| ImageError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let mut config = Config::default();
        let Some(images) = crate::config::section(text, "images").map_err(fail)? else {
            return Ok(config);
        };
        let int = |key: &str, v: &toml::Value| -> Result<u64> {
            v.as_integer()
                .and_then(|i| u64::try_from(i).ok())
                .ok_or_else(|| fail(format!("images.{key} must be a non-negative integer")).into())
        };
        for (key, value) in &images {
            match key.as_str() {
                "servers" => {
                    let list = value
                        .as_array()
                        .ok_or_else(|| fail("images.servers must be an array of URLs".into()))?;
                    config.servers = list
                        .iter()
                        .map(|s| match s.as_str() {
                            Some(s) => check_server(s, path),
                            None => Err(fail("images.servers must be an array of URLs".into()).into()),
                        })
                        .collect::<Result<_>>()?;
                    if config.servers.is_empty() {
                        return Err(fail("images.servers is empty".into()).into());
                    }
                }
                "insecure_registries" => {
                    let list = value
                        .as_array()
                        .filter(|l| l.iter().all(|h| h.as_str().is_some_and(|h| !h.is_empty() && !h.contains('/'))))
                        .ok_or_else(|| fail("images.insecure_registries must be an array of host or host:port strings".into()))?;
                    config.insecure_registries = list.iter().filter_map(|h| h.as_str().map(str::to_string)).collect();
                }
                "max_entries" => config.limits.max_entries = int(key, value)?,
                "max_unpacked_bytes" => config.limits.max_bytes = int(key, value)?,
                "retries" => config.retries = int(key, value)?.min(20) as u32,
                "timeout" => config.timeout_secs = int(key, value)?.max(1),
                other => {
                    return Err(fail(format!(
                        "unknown key images.{other} (known: servers, insecure_registries, max_entries, max_unpacked_bytes, retries, timeout)"
                    ))
                    .into())
                }
            }
        }
        Ok(config)
    }
}

fn check_server(s: &str, path: &Path) -> Result<String> {
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || s.len() <= "http://".len() {
        return Err(ImageError::Config {
            path: path.to_path_buf(),
            reason: format!("image server {s:?} is not an http(s) URL"),
        }
        .into());
    }
    Ok(s.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let p = Path::new("c.toml");
        let c = Config::from_toml(
            "[images]\nservers = [\"http://127.0.0.1:1/\"]\nmax_entries = 5\n[other]\nx = 1\n",
            p,
        )
        .unwrap();
        assert_eq!(c.servers, ["http://127.0.0.1:1"]);
        assert_eq!(c.limits.max_entries, 5);
        assert_eq!(Config::from_toml("", p).unwrap(), Config::default());
        for bad in [
            "[images]\nserver = []",
            "[images]\nservers = [1]",
            "[images]\nservers = [\"ftp://x\"]",
            "[images]\nmax_entries = -1",
            "images = 3",
            "[images",
        ] {
            assert!(Config::from_toml(bad, p).is_err(), "{bad}");
        }
    }
}
