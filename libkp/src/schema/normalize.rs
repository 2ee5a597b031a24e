//! Normalisation rules (docs/manifest.md, "Normal form"): names are trimmed,
//! sorted and de-duplicated; mount paths are cleaned lexically; the image
//! reference is kept exactly as written, since URLs are case-sensitive.

use super::settings::Mount;

/// Trims, checks, sorts and de-duplicates package or app names. On error,
/// returns the index of the offending entry and what is wrong with it.
pub fn names(raw: &[String], what: &str) -> Result<Vec<String>, (usize, String)> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, name) in raw.iter().enumerate() {
        let n = name.trim();
        if n.is_empty() {
            return Err((i, format!("empty {what} name")));
        }
        if let Some(c) = n.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err((
                i,
                format!("{what} name {n:?} contains {c:?}; expected one name per entry"),
            ));
        }
        out.push(n.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Checks package names, as written, against the grammar every package
/// manager shares (docs/manifest.md, "Package names"); what one manager alone
/// reads as syntax is refused once the image's manager is known. On error,
/// returns the index of the offending entry and what is wrong with it.
pub fn package_names(raw: &[String]) -> Result<(), (usize, String)> {
    for (i, name) in raw.iter().enumerate() {
        crate::pkg::check_name(name.trim()).map_err(|e| (i, e.to_string()))?;
    }
    Ok(())
}

/// Mount labels are table keys that also name the mount in messages and on
/// the command line: keep them plain.
pub fn mount_label(label: &str) -> Result<(), String> {
    // No '.': a label is a bare TOML key, and a dot would make it a dotted key.
    let ok = !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid mount label {label:?}; expected letters, digits, '_' or '-'"
        ))
    }
}

/// Parses `HOST:CONTAINER[:ro|:rw]`.
pub fn mount(spec: &str) -> Result<Mount, String> {
    const EXPECTED: &str = "expected \"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\"";
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        [_, _, mode] => {
            return Err(format!(
                "mount {spec:?}: unknown mode {mode:?}; expected \"ro\" or \"rw\""
            ))
        }
        _ => return Err(format!("mount {spec:?}: {EXPECTED}")),
    };
    if host.trim().is_empty() || container.trim().is_empty() {
        return Err(format!("mount {spec:?}: empty path; {EXPECTED}"));
    }
    if let Some(c) = spec.chars().find(|c| c.is_control()) {
        return Err(format!("mount {spec:?}: contains {c:?}"));
    }
    if host.starts_with('~') && host != "~" && !host.starts_with("~/") {
        return Err(format!(
            "mount {spec:?}: host path {host:?}: only \"~/\" (the user's home) is understood, not \"~user\""
        ));
    }
    if !container.starts_with('/') {
        return Err(format!("mount {spec:?}: container path {container:?} must be absolute"));
    }
    let container = clean(container);
    if container.split('/').any(|c| c == "..") {
        return Err(format!("mount {spec:?}: container path must not contain \"..\""));
    }
    if container == "/" {
        return Err(format!("mount {spec:?}: cannot mount over the container's root"));
    }
    Ok(Mount {
        host: clean(host),
        container,
        read_only,
    })
}

/// Lexical clean-up: no empty or `.` components, no trailing slash. `..` is
/// kept (it may leave a relative base on purpose; no symlinks are followed).
pub fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// A TOML string literal for `s` (basic string, escaped).
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let m = mount("~/src//x/:/work/./src:ro").unwrap();
        assert_eq!(
            (m.host.as_str(), m.container.as_str(), m.read_only),
            ("~/src/x", "/work/src", true)
        );
        assert_eq!(mount("./data:/data").unwrap().host, "data");
        assert!(!mount("/a:/b:rw").unwrap().read_only);
        for bad in [
            "/a",
            "/a:",
            ":/b",
            "/a:b",
            "/a:/b:rx",
            "/a:/b:ro:x",
            "~bob/x:/b",
            "/a:/",
            "/a:/x/../..",
        ] {
            assert!(mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_lists() {
        let v: Vec<String> = [" git", "curl", "git "].iter().map(|s| s.to_string()).collect();
        assert_eq!(names(&v, "package").unwrap(), ["curl", "git"]);
        assert_eq!(names(&["a b".into()], "package").unwrap_err().0, 0);
        assert_eq!(names(&["a".into(), " ".into()], "package").unwrap_err().0, 1);
    }
}
