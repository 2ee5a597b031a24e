//! The `[remotes.NAME]` tables of the user's configuration file
//! (`url`, `token_file`), read and edited in place (docs/protocol.md,
//! "Remotes").

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteConfig {
    pub name: String,
    pub url: String,
    pub token_file: Option<PathBuf>,
}

impl RemoteConfig {
    /// The token, read from `token_file`, which must be mode 0600 or stricter
    /// and belong to the user.
    pub fn token(&self) -> Result<Option<String>> {
        let Some(path) = &self.token_file else { return Ok(None) };
        let meta = std::fs::metadata(path).map_err(crate::store::Error::input("read", path))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::Refused(format!(
                "{}: a token file must be readable by its owner only (chmod 600)",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(crate::store::Error::input("read", path))?;
        let token = text.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(Error::Refused(format!(
                "{}: expected one token on one line",
                path.display()
            )));
        }
        Ok(Some(token.to_string()))
    }
}

fn config_path() -> Result<PathBuf> {
    crate::config::path()
        .ok_or_else(|| Error::Refused("no configuration file: neither XDG_CONFIG_HOME nor HOME is set".into()))
}

fn load_doc() -> Result<(toml_edit::DocumentMut, PathBuf)> {
    let path = config_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(crate::store::Error::input("read", &path)(e).into()),
    };
    let doc = text
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| Error::Refused(format!("{}: {e}", path.display())))?;
    Ok((doc, path))
}

/// Every configured remote, sorted by name.
pub fn list() -> Result<Vec<RemoteConfig>> {
    let (doc, path) = load_doc()?;
    let mut out = Vec::new();
    let Some(table) = doc.get("remotes") else {
        return Ok(out);
    };
    let bad = |what: String| Error::Refused(format!("{}: {what}", path.display()));
    let table = table
        .as_table()
        .ok_or_else(|| bad("[remotes] must be a table".into()))?;
    for (name, v) in table.iter() {
        let t = v
            .as_table()
            .ok_or_else(|| bad(format!("remotes.{name} must be a table")))?;
        let url = t
            .get("url")
            .and_then(|u| u.as_str())
            .ok_or_else(|| bad(format!("remotes.{name}.url must be a string")))?;
        let token_file = match t.get("token_file") {
            None => None,
            Some(f) => {
                Some(PathBuf::from(f.as_str().ok_or_else(|| {
                    bad(format!("remotes.{name}.token_file must be a string"))
                })?))
            }
        };
        out.push(RemoteConfig {
            name: name.to_string(),
            url: url.to_string(),
            token_file,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The remote `name`, or with none given the only one configured (or the
/// one named `origin`).
pub fn find(name: Option<&str>) -> Result<RemoteConfig> {
    let all = list()?;
    let pick = match name {
        Some(n) => all.iter().find(|r| r.name == n),
        None if all.len() == 1 => all.first(),
        None => all.iter().find(|r| r.name == "origin"),
    };
    pick.cloned().ok_or_else(|| match name {
        Some(n) => Error::Refused(format!("no remote {n:?} (see `karapace remote list`)")),
        None => Error::Refused("no default remote: give --remote NAME (see `karapace remote list`)".into()),
    })
}

/// A remote named on a command line: a URL (with `token_file` when given),
/// or the name of a configured remote, or with none the default one.
pub fn from_arg(arg: Option<&str>, token_file: Option<&Path>) -> Result<RemoteConfig> {
    let mut cfg = match arg {
        Some(url) if url.contains("://") => {
            check_url(url)?;
            RemoteConfig {
                name: url.to_string(),
                url: url.to_string(),
                token_file: None,
            }
        }
        name => find(name)?,
    };
    if let Some(f) = token_file {
        cfg.token_file = Some(f.to_path_buf());
    }
    Ok(cfg)
}

/// Checks a URL as a remote's: `http://` or `https://` and a host.
pub fn check_url(url: &str) -> Result<()> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(Error::Refused(format!(
            "URL {url:?}: expected http://HOST[:PORT][/PATH] or https://..."
        ))),
    }
}

/// Adds (`create`), or changes the URL and token file of, the remote `name`.
pub fn set(name: &str, url: &str, token_file: Option<&Path>, create: bool) -> Result<()> {
    crate::env::check_name(name)
        .map_err(|_| Error::Refused(format!("remote name {name:?}: 1 to 64 characters of A-Z a-z 0-9 _ -")))?;
    check_url(url)?;
    if let Some(f) = token_file {
        let probe = RemoteConfig {
            name: name.into(),
            url: url.into(),
            token_file: Some(f.to_path_buf()),
        };
        probe.token()?;
    }
    let (mut doc, path) = load_doc()?;
    let remotes = doc
        .entry("remotes")
        .or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| Error::Refused(format!("{}: [remotes] must be a table", path.display())))?;
    let exists = remotes.contains_key(name);
    if create && exists {
        return Err(Error::Refused(format!(
            "remote {name:?} exists (use `karapace remote set-url`)"
        )));
    }
    if !create && !exists {
        return Err(Error::Refused(format!(
            "no remote {name:?} (see `karapace remote list`)"
        )));
    }
    let entry = remotes
        .entry(name)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
    let t = entry
        .as_table_mut()
        .ok_or_else(|| Error::Refused(format!("{}: remotes.{name} must be a table", path.display())))?;
    t["url"] = toml_edit::value(url);
    if let Some(f) = token_file {
        let abs = std::path::absolute(f).map_err(crate::store::Error::input("resolve", f))?;
        t["token_file"] = toml_edit::value(abs.to_string_lossy().into_owned());
    }
    write_doc(&doc, &path)
}

/// Removes the remote `name`.
pub fn remove(name: &str) -> Result<()> {
    let (mut doc, path) = load_doc()?;
    let removed = doc
        .get_mut("remotes")
        .and_then(|r| r.as_table_mut())
        .and_then(|t| t.remove(name));
    if removed.is_none() {
        return Err(Error::Refused(format!(
            "no remote {name:?} (see `karapace remote list`)"
        )));
    }
    write_doc(&doc, &path)
}

fn write_doc(doc: &toml_edit::DocumentMut, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(crate::store::Error::input("create directory", dir))?;
    }
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, doc.to_string()).map_err(crate::store::Error::input("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(crate::store::Error::input("rename", path))?;
    Ok(())
}
