//! Desktop entries (the freedesktop.org Desktop Entry Specification 1.5):
//! reading an environment's, which is hostile input, and writing the host's
//! copy, which runs the program through `karapace exec`.
//!
//! The copy is built, not edited: only the keys below are carried over,
//! each value checked (no control characters, only the spec's escapes), and
//! `Exec=` is made anew from the parsed argument vector, so nothing in the
//! environment's file can add a host command or a key the host acts on
//! (`TryExec`, `Path`, `DBusActivatable`, `X-*`).

use std::collections::BTreeSet;

/// One `[Group]` of key=value lines, values as written (escapes kept).
#[derive(Debug, Default)]
pub struct Group {
    pub name: String,
    pub keys: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct Entry {
    pub groups: Vec<Group>,
}

/// One argument of an `Exec=` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A field code standing alone (`%f`, `%U`, ...), expanded by the launcher.
    Field(char),
    Literal(String),
}

/// Field codes kept; the deprecated `%d %D %n %N %v %m` are dropped.
const FIELDS: &str = "fFuUick";
const DEPRECATED_FIELDS: &str = "dDnNvm";
/// Characters that make an argument need quotes (the spec's reserved set).
const RESERVED: &[char] = &[
    ' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`',
];
/// Main categories the validator knows; others (but `X-` ones) are dropped.
const MAIN_CATEGORIES: &[&str] = &[
    "AudioVideo",
    "Audio",
    "Video",
    "Development",
    "Education",
    "Game",
    "Graphics",
    "Network",
    "Office",
    "Science",
    "Settings",
    "System",
    "Utility",
];
/// Keys copied as they are, localised or not, once their value is checked.
const COPIED: &[&str] = &["GenericName", "Comment", "Keywords", "StartupWMClass"];
const BOOLEANS: &[&str] = &["NoDisplay", "Terminal", "StartupNotify"];

impl Entry {
    /// Parses a file's bytes; refuses what the spec does not allow.
    pub fn parse(bytes: &[u8]) -> Result<Entry, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8".to_string())?;
        let mut entry = Entry::default();
        for (i, line) in text.split('\n').enumerate() {
            let at = |m: &str| format!("line {}: {m}", i + 1);
            if line.chars().any(|c| (c.is_control() && c != '\t') || bidi(c)) {
                return Err(at("has a control character"));
            }
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[') {
                let name = name
                    .trim_end()
                    .strip_suffix(']')
                    .filter(|n| !n.is_empty() && !n.contains(['[', ']']))
                    .ok_or_else(|| at("is not a [Group] header"))?;
                if entry.groups.iter().any(|g| g.name == name) {
                    return Err(at(&format!("group [{name}] appears twice")));
                }
                entry.groups.push(Group {
                    name: name.to_string(),
                    keys: Vec::new(),
                });
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| at("is not KEY=VALUE"))?;
            let (key, value) = (key.trim_end(), value.trim_start());
            if !valid_key(key) {
                return Err(at(&format!("{key:?} is not a valid key")));
            }
            let group = entry.groups.last_mut().ok_or_else(|| at("comes before any [Group]"))?;
            if group.keys.iter().any(|(k, _)| k == key) {
                return Err(at(&format!("key {key} appears twice in [{}]", group.name)));
            }
            group.keys.push((key.to_string(), value.to_string()));
        }
        Ok(entry)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The main group, which must say Type=Application.
    pub fn main(&self) -> Result<&Group, String> {
        let g = self.group("Desktop Entry").ok_or("has no [Desktop Entry] group")?;
        match g.get("Type") {
            Some("Application") => Ok(g),
            Some(t) => Err(format!("is of Type={t}, not Application")),
            None => Err("has no Type key".into()),
        }
    }

    /// The program `Exec=` runs (its first argument), if it parses.
    pub fn program(&self) -> Option<String> {
        let exec = self.main().ok()?.get("Exec")?;
        match split_exec(exec).ok()?.into_iter().next()? {
            Arg::Literal(p) => Some(p),
            Arg::Field(_) => None,
        }
    }
}

impl Group {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Bidirectional overrides and isolates: they make a menu show another
/// name than the one written (`evil\u{202e}txt.exe`).
fn bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

fn valid_key(key: &str) -> bool {
    let (base, locale) = match key.split_once('[') {
        Some((b, rest)) => match rest.strip_suffix(']') {
            Some(l) => (b, Some(l)),
            None => return false,
        },
        None => (key, None),
    };
    !base.is_empty()
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && locale.is_none_or(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || "_@.-".contains(c)))
}

/// A locale the validator accepts: `lang[_COUNTRY][@MODIFIER]`.
fn good_locale(l: &str) -> bool {
    let (rest, modifier) = l.split_once('@').unwrap_or((l, "x"));
    let (lang, country) = rest.split_once('_').unwrap_or((rest, "XX"));
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_lowercase())
        && country.len() == 2
        && country.chars().all(|c| c.is_ascii_uppercase())
        && !modifier.is_empty()
        && modifier.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Checks a raw value's escapes: `\s \n \t \r \\`, and `\;` in lists.
fn check_escapes(raw: &str) -> Result<(), String> {
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c == '\\' && !matches!(it.next(), Some('s' | 'n' | 't' | 'r' | '\\' | ';')) {
            return Err(format!("value {raw:?} has an escape the spec does not define"));
        }
    }
    Ok(())
}

/// A string value's escapes undone.
fn unescape(raw: &str) -> Result<String, String> {
    check_escapes(raw)?;
    let mut out = String::new();
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match it.next() {
            Some('s') => ' ',
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some(';') => ';',
            _ => '\\',
        });
    }
    Ok(out)
}

/// Splits an `Exec=` value (as written) into arguments, by the spec's
/// quoting rules; refuses what they do not allow.
pub fn split_exec(raw: &str) -> Result<Vec<Arg>, String> {
    let s = unescape(raw)?;
    if s.chars().any(|c| c.is_control()) {
        return Err("Exec has a control character".into());
    }
    let mut args = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.peek() == Some(&' ') {
            it.next();
        }
        let Some(&first) = it.peek() else { break };
        let mut arg = String::new();
        if first == '"' {
            it.next();
            loop {
                match it.next() {
                    None => return Err("Exec has an unterminated quote".into()),
                    Some('"') => break,
                    Some('\\') => match it.next() {
                        Some(c @ ('"' | '`' | '$' | '\\')) => arg.push(c),
                        _ => return Err("Exec has a backslash in quotes before other than \" ` $ \\".into()),
                    },
                    Some(c) => arg.push(c),
                }
            }
            if it.peek().is_some_and(|c| *c != ' ') {
                return Err("Exec has a quote inside an argument".into());
            }
            args.push(Arg::Literal(percent(&arg)?));
            continue;
        }
        while let Some(&c) = it.peek() {
            if c == ' ' {
                break;
            }
            if RESERVED.contains(&c) {
                return Err(format!("Exec has {c:?} outside quotes"));
            }
            arg.push(c);
            it.next();
        }
        let mut chars = arg.chars();
        if let (Some('%'), Some(code), None) = (chars.next(), chars.next(), chars.next()) {
            if FIELDS.contains(code) {
                args.push(Arg::Field(code));
                continue;
            }
            if DEPRECATED_FIELDS.contains(code) {
                continue;
            }
        }
        args.push(Arg::Literal(percent(&arg)?));
    }
    if args.is_empty() {
        return Err("Exec is empty".into());
    }
    Ok(args)
}

/// `%%` as `%`; any other `%` is a field code inside an argument, which the
/// spec does not allow.
fn percent(arg: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut it = arg.chars();
    while let Some(c) = it.next() {
        if c == '%' && it.next() != Some('%') {
            return Err(format!("Exec argument {arg:?} has a field code inside it"));
        }
        out.push(c);
    }
    Ok(out)
}

/// One argument as an `Exec=` value writes it (before the value's own
/// escaping): quoted when it holds a reserved character or is empty.
fn quote(arg: &Arg) -> String {
    let s = match arg {
        Arg::Field(c) => return format!("%{c}"),
        Arg::Literal(s) => s.replace('%', "%%"),
    };
    if !s.is_empty() && !s.contains(RESERVED) {
        return s;
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An `Exec=` value from arguments: quoted, then `\` escaped for the file.
pub fn join_exec(args: &[Arg]) -> String {
    let line: Vec<String> = args.iter().map(quote).collect();
    line.join(" ").replace('\\', "\\\\")
}

/// What the host's copy says besides the environment's own keys.
pub struct Rewrite<'a> {
    /// The arguments before the environment's command: the karapace binary,
    /// `--store STORE exec ENV_ID --`.
    pub launcher: &'a [String],
    /// Added to every Name: the environment's name.
    pub env_name: &'a str,
    /// The exported icon's name, when one was copied.
    pub icon: Option<&'a str>,
    pub env_id: &'a str,
    pub app: &'a str,
}

impl Rewrite<'_> {
    fn exec(&self, raw: &str) -> Result<String, String> {
        let own = split_exec(raw)?;
        let files = own
            .iter()
            .filter(|a| matches!(a, Arg::Field('f' | 'F' | 'u' | 'U')))
            .count();
        if files > 1 {
            return Err("Exec has more than one of %f %F %u %U".into());
        }
        let mut args: Vec<Arg> = self.launcher.iter().cloned().map(Arg::Literal).collect();
        args.extend(own);
        Ok(join_exec(&args))
    }
}

/// The host's copy of `entry`, as the file's text.
pub fn rewrite(entry: &Entry, rw: &Rewrite) -> Result<String, String> {
    let main = entry.main()?;
    main.get("Name").ok_or("has no Name key")?;
    let exec = main.get("Exec").ok_or("has no Exec key")?;
    let mut out = String::from("[Desktop Entry]\nType=Application\n");
    let line = |out: &mut String, k: &str, v: &str| {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    };
    for (key, value) in &main.keys {
        check_escapes(value).map_err(|e| format!("{key}: {e}"))?;
        let (base, locale) = match key.split_once('[') {
            Some((b, l)) => (b, Some(l.trim_end_matches(']'))),
            None => (key.as_str(), None),
        };
        if locale.is_some_and(|l| !good_locale(l)) {
            continue;
        }
        match base {
            "Name" => line(&mut out, key, &format!("{value} ({})", rw.env_name)),
            _ if COPIED.contains(&base) => line(&mut out, key, value),
            _ if locale.is_some() => {}
            _ if BOOLEANS.contains(&base) && (value == "true" || value == "false") => line(&mut out, key, value),
            "Categories" => {
                let kept: Vec<&str> = value
                    .split(';')
                    .filter(|c| {
                        MAIN_CATEGORIES.contains(c) || (c.starts_with("X-") && c.len() > 2 && !c.contains('\\'))
                    })
                    .collect();
                if !kept.is_empty() {
                    line(&mut out, key, &format!("{};", kept.join(";")));
                }
            }
            "MimeType" => {
                let kept: Vec<&str> = value.split(';').filter(|m| mime_type(m)).collect();
                if !kept.is_empty() {
                    line(&mut out, key, &format!("{};", kept.join(";")));
                }
            }
            _ => {}
        }
    }
    line(&mut out, "Exec", &rw.exec(exec).map_err(|e| format!("Exec: {e}"))?);
    if let Some(icon) = rw.icon {
        line(&mut out, "Icon", icon);
    }
    let mut actions = Vec::new();
    let mut action_text = String::new();
    let listed = main.get("Actions").unwrap_or("");
    let mut seen = BTreeSet::new();
    for id in listed.split(';').filter(|a| !a.is_empty()) {
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || !seen.insert(id) {
            continue;
        }
        let Some(g) = entry.group(&format!("Desktop Action {id}")) else {
            continue;
        };
        let (Some(aname), Some(aexec)) = (g.get("Name"), g.get("Exec")) else {
            continue;
        };
        check_escapes(aname).map_err(|e| format!("action {id}: Name: {e}"))?;
        let aexec = rw.exec(aexec).map_err(|e| format!("action {id}: Exec: {e}"))?;
        action_text.push_str(&format!("\n[Desktop Action {id}]\n"));
        line(&mut action_text, "Name", aname);
        line(&mut action_text, "Exec", &aexec);
        actions.push(id);
    }
    if !actions.is_empty() {
        line(&mut out, "Actions", &format!("{};", actions.join(";")));
    }
    line(&mut out, "X-Karapace-Env", rw.env_id);
    line(&mut out, "X-Karapace-App", rw.app);
    out.push_str(&action_text);
    Ok(out)
}

fn mime_type(m: &str) -> bool {
    let ok = |s: &str, extra: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    matches!(m.split_once('/'), Some((t, s)) if ok(t, ".+-") && ok(s, ".+-_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Arg {
        Arg::Literal(s.into())
    }

    #[test]
    fn exec_lines_split_and_join_by_the_spec() {
        assert_eq!(split_exec("foo %U").unwrap(), [lit("foo"), Arg::Field('U')]);
        assert_eq!(
            split_exec(r#"foo "a b" "q\\\\\\"x" 100%% %d"#).unwrap(),
            [lit("foo"), lit("a b"), lit("q\\\"x"), lit("100%")]
        );
        for bad in [
            "foo; touch /tmp/x",
            "foo $(id)",
            "foo \"unterminated",
            "foo a\"b\"",
            "foo --x=%f",
            "\"a\"b",
            "",
            "foo \\n bar",
        ] {
            assert!(split_exec(bad).is_err(), "{bad:?} accepted");
        }
        let args = [
            lit("/usr/bin/karapace"),
            lit("a b"),
            lit("$HOME"),
            lit("50%"),
            Arg::Field('f'),
        ];
        let line = join_exec(&args);
        assert_eq!(line, r#"/usr/bin/karapace "a b" "\\$HOME" 50%% %f"#);
        assert_eq!(split_exec(&line).unwrap(), args);
    }

    #[test]
    fn the_copy_keeps_only_checked_keys_and_runs_through_the_launcher() {
        let src = "[Desktop Entry]\nType=Application\nName=Hello\nName[de]=Hallo\nName[x_Y.z]=x\n\
                   TryExec=/bin/evil\nPath=/etc\nDBusActivatable=true\nX-Evil=1\nExec=hello --greet %U\n\
                   Icon=hello\nCategories=Utility;Bogus;X-Fine;\nMimeType=text/plain;not a type;\n\
                   Terminal=maybe\nActions=new;missing;\n\n[Desktop Action new]\nName=New\nExec=hello --new\n";
        let e = Entry::parse(src.as_bytes()).unwrap();
        assert_eq!(e.program().as_deref(), Some("hello"));
        let launcher = ["/k".to_string(), "exec".into(), "ID".into(), "--".into()];
        let rw = Rewrite {
            launcher: &launcher,
            env_name: "dev",
            icon: Some("karapace-dev-hello"),
            env_id: "ID",
            app: "hello",
        };
        let out = rewrite(&e, &rw).unwrap();
        assert_eq!(
            out,
            "[Desktop Entry]\nType=Application\nName=Hello (dev)\nName[de]=Hallo (dev)\n\
             Categories=Utility;X-Fine;\nMimeType=text/plain;\nExec=/k exec ID -- hello --greet %U\n\
             Icon=karapace-dev-hello\nActions=new;\nX-Karapace-Env=ID\nX-Karapace-App=hello\n\n\
             [Desktop Action new]\nName=New\nExec=/k exec ID -- hello --new\n"
        );
    }

    #[test]
    fn hostile_files_are_refused() {
        for bad in [
            "[Desktop Entry]\nType=Application\nName=a\x1b]0;x\x07\nExec=a\n",
            "[Desktop Entry]\nType=Application\nName=a\nExec=a\nExec=b\n",
            "[Desktop Entry]\nType=Link\nName=a\nURL=http://x\n",
            "Name=a\n[Desktop Entry]\n",
            "[Desktop Entry]\nType=Application\nName=a\\x\nExec=a\n",
            "[Desktop Entry]\nType=Application\nName=a\nExec=a\" ; touch /tmp/pwned ; \"\n",
            "[Desktop Entry]\nType=Application\nName=a\nExec=a %f %U\n",
            "[Desktop Entry]\nType=Application\nName=a\u{202e}fdp.exe\nExec=a\n",
        ] {
            let r = Entry::parse(bad.as_bytes()).and_then(|e| {
                rewrite(
                    &e,
                    &Rewrite {
                        launcher: &[],
                        env_name: "e",
                        icon: None,
                        env_id: "i",
                        app: "a",
                    },
                )
            });
            assert!(r.is_err(), "{bad:?} accepted");
        }
    }
}
