//! Registry credentials and challenges (docs/oci.md, "Authentication"):
//! `auths` entries of the files users already have, and the
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…` token flow.

use std::path::PathBuf;

use base64::Engine;

/// User and password for a registry, and where they came from: the file,
/// and the credential helper that file named, if one gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    pub file: PathBuf,
    pub helper: Option<String>,
}

impl Credentials {
    /// Where they came from, for messages: `FILE` or
    /// `FILE (docker-credential-NAME)`.
    pub fn source(&self) -> String {
        match &self.helper {
            Some(h) => format!("{} (docker-credential-{h})", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// The files searched, in order: `$REGISTRY_AUTH_FILE`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`
/// (`$DOCKER_CONFIG/config.json` when set).
pub fn auth_files() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut out = Vec::new();
    out.extend(var("REGISTRY_AUTH_FILE"));
    out.extend(var("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    match var("DOCKER_CONFIG") {
        Some(d) => out.push(d.join("config.json")),
        None => out.extend(var("HOME").map(|h| h.join(".docker/config.json"))),
    }
    out
}

/// The credentials for `registry` in `files`, the first file that has them.
/// In each file, as docker reads its config: a `credHelpers` entry for the
/// registry runs that helper; else an `auths` entry; else a `credsStore`
/// helper is asked. Keys match by host (`host:port`), ignoring a scheme and a
/// path (`https://index.docker.io/v1/` is Docker Hub); files that are missing
/// or not JSON are skipped.
pub fn find(registry: &str, files: &[PathBuf]) -> Option<Credentials> {
    for file in files {
        let Ok(text) = std::fs::read(file) else { continue };
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&text) else {
            crate::log!(crate::log::Level::Warn, "{}: not JSON; skipped", file.display());
            continue;
        };
        let helpers = doc.get("credHelpers").and_then(|a| a.as_object());
        if let Some((_, name)) = helpers.into_iter().flatten().find(|(key, _)| key_host(key) == registry) {
            if let Some(c) = name.as_str().and_then(|n| ask_helper(n, registry, file)) {
                return Some(c);
            }
            continue;
        }
        let auths = doc.get("auths").and_then(|a| a.as_object());
        for (key, entry) in auths.into_iter().flatten() {
            if key_host(key) != registry {
                continue;
            }
            if let Some(c) = decode(entry, file) {
                return Some(c);
            }
        }
        if let Some(name) = doc.get("credsStore").and_then(|s| s.as_str()) {
            if let Some(c) = ask_helper(name, registry, file) {
                return Some(c);
            }
        }
    }
    None
}

/// Runs `docker-credential-NAME get` with the registry's server URL on its
/// standard input, as docker does; its answer is
/// `{"ServerURL", "Username", "Secret"}`. A helper that is missing, fails
/// (as it does for a registry it has nothing for) or answers something else
/// gives nothing, with a warning saying why.
fn ask_helper(name: &str, registry: &str, file: &std::path::Path) -> Option<Credentials> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let warn = |why: String| {
        crate::log!(
            crate::log::Level::Warn,
            "{}: docker-credential-{name} get: {why}",
            file.display()
        );
        None
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return warn("not a helper name".into());
    }
    let server = if registry == super::reference::DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
    let child = Command::new(format!("docker-credential-{name}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return warn(e.to_string()),
    };
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(server.as_bytes());
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return warn(e.to_string()),
    };
    if !out.status.success() {
        // "credentials not found in native keychain": nothing for this registry.
        crate::log!(
            crate::log::Level::Info,
            "docker-credential-{name} get {server}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        );
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        user: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    match serde_json::from_slice::<Answer>(&out.stdout) {
        Ok(a) if a.user == "<token>" => warn("an identity token (\"<token>\") is not supported".into()),
        Ok(a) => Some(Credentials {
            user: a.user,
            password: a.secret,
            file: file.to_path_buf(),
            helper: Some(name.to_string()),
        }),
        Err(e) => warn(format!("not an answer: {e}")),
    }
}

fn key_host(key: &str) -> String {
    let k = key.split_once("://").map_or(key, |(_, r)| r);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => super::reference::DOCKER_HUB.to_string(),
        _ => host,
    }
}

fn decode(entry: &serde_json::Value, file: &std::path::Path) -> Option<Credentials> {
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD.decode(auth.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(Credentials {
            user: user.to_string(),
            password: password.to_string(),
            file: file.to_path_buf(),
            helper: None,
        });
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some(Credentials {
        user: user.to_string(),
        password: password.to_string(),
        file: file.to_path_buf(),
        helper: None,
    })
}

/// A `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start())
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        match key.as_str() {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            "scope" => scope = Some(value.to_string()),
            _ => {}
        }
        rest = next.trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// Characters a query value keeps; the rest are percent-encoded.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/debian:pull".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(query_escape("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }

    #[test]
    fn auth_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(&a, r#"{"auths":{"other.io":{"auth":"eDp5"}}}"#).unwrap();
        let enc = base64::engine::general_purpose::STANDARD.encode("me:s:cret");
        std::fs::write(
            &b,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{enc}"}},"127.0.0.1:5000":{{"auth":"{enc}"}}}}}}"#),
        )
        .unwrap();
        let files = [dir.path().join("missing.json"), a.clone(), b.clone()];
        let c = find("docker.io", &files).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str(), &c.file), ("me", "s:cret", &b));
        assert_eq!(find("other.io", &files).unwrap().password, "y");
        assert!(find("127.0.0.1:5000", &files).is_some());
        assert!(find("127.0.0.1:5001", &files).is_none());
        assert_eq!(c.basic(), format!("Basic {enc}"));
    }
}
