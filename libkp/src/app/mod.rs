//! Exporting an environment's applications and programs to the host
//! (docs/apps.md): a desktop entry in `$XDG_DATA_HOME/applications` and its
//! icons in `$XDG_DATA_HOME/icons/hicolor` whose `Exec=` runs the program
//! through `karapace exec`, or a wrapper script in `~/.local/bin`.
//!
//! What is exported is recorded per environment in `meta/apps/<env_id>.json`
//! (docs/store-format.md), so a rename writes the files again under the new
//! name and a destroy removes them. The environment's files are hostile
//! input: they are read through [`envfs::EnvFs`] (never outside the
//! environment), checked ([`desktop`]), and only the names this module makes
//! are written, in the target directories and nowhere else.

pub mod desktop;
mod envfs;
mod files;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use envfs::EnvFs;

use crate::env::{EnvRecord, Origin};
use crate::store::Store;

const RECORD_DIR: &str = "apps";
/// Where desktop entries are looked for inside an environment.
const APP_DIRS: &[&str] = &["/usr/share/applications", "/usr/local/share/applications"];
/// Where an exported program must be inside an environment.
const BIN_DIRS: &[&str] = &[
    "/usr/local/bin",
    "/usr/bin",
    "/bin",
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
];
/// The largest desktop entry read, and the most entries of a directory.
const DESKTOP_LIMIT: u64 = 64 * 1024;
const DIR_LIMIT: usize = 10_000;
/// The largest icon copied, and the most icon files of one application.
const ICON_LIMIT: u64 = 1024 * 1024;
const MAX_ICONS: usize = 32;

/// What this module refused, naming the name or file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid {what} {name:?}: {reason}")]
    BadName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("environment {env} has no application {app:?}: no {app}.desktop in /usr/share/applications or /usr/local/share/applications, and no desktop entry there whose Exec runs {app}")]
    NoApp { env: String, app: String },
    #[error("environment {env}: {app:?} is run by several desktop entries ({}); name one of them", candidates.join(", "))]
    Ambiguous {
        env: String,
        app: String,
        candidates: Vec<String>,
    },
    #[error("environment {env} has no program {bin:?} in /usr/local/bin, /usr/bin, /bin, /usr/local/sbin, /usr/sbin or /sbin")]
    NoBin { env: String, bin: String },
    #[error("{path} in the environment: {reason}")]
    EnvFile { path: String, reason: String },
    #[error("{path} in environment {env} is refused: {reason}")]
    Refused { env: String, path: String, reason: String },
    #[error("{}: exists and is not an export of environment {env}; remove or rename it first", path.display())]
    NotOurs { path: PathBuf, env: String },
    #[error("{kind} {name:?} of environment {env} is not exported (see `karapace app list`)")]
    NotExported {
        env: String,
        kind: &'static str,
        name: String,
    },
    #[error("cannot {op} {}: {source}", path.display())]
    Host {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no home directory to export into: set HOME (or XDG_DATA_HOME)")]
    NoHome,
    #[error("{}: an export cannot name a path that is not UTF-8 or has a control character", path.display())]
    BadHostPath { path: PathBuf },
}

/// What the app module returns: its own refusals or the failure of a module
/// below it, with that module's message (docs/architecture.md, "Errors").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    #[error(transparent)]
    Meta(#[from] crate::meta::Error),
    #[error(transparent)]
    Env(#[from] crate::env::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::App(_) => crate::exit::FAILURE,
            Error::Store(e) => e.exit_code(),
            Error::Layer(e) => e.exit_code(),
            Error::Meta(e) => e.exit_code(),
            Error::Env(e) => e.exit_code(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is exported: a desktop application or a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    App,
    Bin,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Bin => "bin",
        }
    }
}

/// One export: what was asked for and the host files written for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub kind: Kind,
    pub name: String,
    pub files: Vec<PathBuf>,
}

/// `meta/apps/<env_id>.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    env_id: String,
    exports: Vec<Export>,
}

/// Where exports go and how they start karapace.
#[derive(Clone, Debug)]
pub struct Targets {
    /// `$XDG_DATA_HOME/applications`.
    pub applications: PathBuf,
    /// `$XDG_DATA_HOME/icons/hicolor`.
    pub icons: PathBuf,
    /// `~/.local/bin`.
    pub bin: PathBuf,
    /// The command before the environment's: the karapace binary and
    /// `--store STORE` (absolute paths).
    pub launcher: Vec<String>,
}

impl Targets {
    /// The user's directories ($XDG_DATA_HOME when absolute, else
    /// ~/.local/share; ~/.local/bin), and this karapace binary over `store`.
    pub fn for_user(store: &Store, karapace: &Path) -> Result<Targets> {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from).filter(|p| p.is_absolute());
        let home = var("HOME");
        let data = var("XDG_DATA_HOME")
            .or_else(|| home.as_ref().map(|h| h.join(".local/share")))
            .ok_or(AppError::NoHome)?;
        let bin = home.map(|h| h.join(".local/bin")).ok_or(AppError::NoHome)?;
        let root = std::path::absolute(store.root()).unwrap_or_else(|_| store.root().to_path_buf());
        for p in [karapace, root.as_path()] {
            if p.to_str().is_none_or(|s| s.chars().any(char::is_control)) {
                return Err(AppError::BadHostPath { path: p.to_path_buf() }.into());
            }
        }
        Ok(Targets {
            applications: data.join("applications"),
            icons: data.join("icons/hicolor"),
            bin,
            launcher: vec![
                karapace.to_string_lossy().into_owned(),
                "--store".into(),
                root.to_string_lossy().into_owned(),
            ],
        })
    }
}

/// A name this module puts into a file name: `[A-Za-z0-9._+-]{1,128}`, not
/// starting with `.` or `-`.
fn safe_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && !s.starts_with(['.', '-'])
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"._+-".contains(&c))
}

fn check_name(what: &'static str, name: &str) -> Result<(), AppError> {
    match safe_name(name) {
        true => Ok(()),
        false => Err(AppError::BadName {
            what,
            name: name.to_string(),
            reason: "names are 1 to 128 characters of A-Z a-z 0-9 . _ + -, not starting with . or -",
        }),
    }
}

impl Store {
    fn app_record(&self, env_id: &str) -> Result<Record> {
        match self.read_meta(&format!("{RECORD_DIR}/{env_id}"))? {
            None => Ok(Record {
                env_id: env_id.to_string(),
                exports: Vec::new(),
            }),
            Some(v) => serde_json::from_value(v).map_err(|e| {
                crate::meta::Error::Corrupt {
                    path: self.meta_path(&format!("{RECORD_DIR}/{env_id}")).unwrap_or_default(),
                    reason: e.to_string(),
                }
                .into()
            }),
        }
    }

    fn write_app_record(&self, rec: &Record) -> Result<()> {
        let name = format!("{RECORD_DIR}/{}", rec.env_id);
        if rec.exports.is_empty() {
            return Ok(self.remove_meta(&name)?);
        }
        Ok(self.write_meta(&name, &serde_json::to_value(rec).expect("a record serialises"))?)
    }

    /// Every env_id with exports, sorted.
    fn exporting_envs(&self) -> Result<Vec<String>> {
        let dir = self.root().join("meta").join(RECORD_DIR);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(crate::store::Error::store("read directory", &dir)(e).into()),
        };
        for e in entries {
            let e = e.map_err(crate::store::Error::store("read directory", &dir))?;
            if let Some(id) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json")) {
                out.push(id.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// `locks/apps`: one export, unexport or rename's record change at a time.
    fn apps_lock(&self) -> Result<std::fs::File> {
        let path = self.path("locks/apps");
        let f = self.open_lock(&path)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| crate::store::Error::store("lock", &path)(e.into()))?;
        Ok(f)
    }

    /// The files recorded by every export but `(env_id, kind, name)`: never
    /// removed when that one goes.
    fn files_of_others(&self, env_id: &str, skip: Option<(Kind, &str)>) -> Result<BTreeSet<PathBuf>> {
        let mut out = BTreeSet::new();
        for id in self.exporting_envs()? {
            for x in self.app_record(&id)?.exports {
                if id == env_id && skip.is_none_or(|(k, n)| x.kind == k && x.name == n) {
                    continue;
                }
                out.extend(x.files);
            }
        }
        Ok(out)
    }
}

/// One environment's exports, or every environment's: (env_id, export).
pub fn list(store: &Store, env_id: Option<&str>) -> Result<Vec<(String, Export)>> {
    let ids = match env_id {
        Some(id) => vec![id.to_string()],
        None => store.exporting_envs()?,
    };
    let mut out = Vec::new();
    for id in ids {
        for x in store.app_record(&id)?.exports {
            out.push((id.clone(), x));
        }
    }
    Ok(out)
}

/// Exports `app` of `rec` (a desktop id, with or without `.desktop`, or the
/// name of the program an entry runs); exporting it again writes it afresh.
pub fn export_app(store: &Store, rec: &EnvRecord, app: &str, t: &Targets) -> Result<Export> {
    check_name("application", app)?;
    // `org.example.App` and `org.example.App.desktop` are one export.
    let id = app.strip_suffix(".desktop").unwrap_or(app);
    let _lock = store.apps_lock()?;
    let fs = EnvFs::open(store, rec)?;
    let env = rec.display_name();
    let (path, entry) = find_desktop(&fs, &env, app)?;
    let refused = |reason: String| AppError::Refused {
        env: env.clone(),
        path: path.clone(),
        reason,
    };
    entry.main().map_err(|r| refused(r.to_string()))?;
    let prefix = format!("karapace-{env}-");
    let icons = match entry.main().ok().and_then(|g| g.get("Icon")) {
        Some(icon) => files::find_icons(&fs, &env, icon)?,
        None => Vec::new(),
    };
    let icon_name = icons.first().map(|i| format!("{prefix}{}", i.name));
    let text = desktop::rewrite(
        &entry,
        &desktop::Rewrite {
            launcher: &launcher(t, rec),
            env_name: &env,
            icon: icon_name.as_deref(),
            env_id: &rec.env_id,
            app: id,
        },
    )
    .map_err(refused)?;
    let desktop_file = t.applications.join(format!("{prefix}{id}.desktop"));
    let mut files = vec![desktop_file.clone()];
    for i in &icons {
        files.push(
            t.icons
                .join(&i.size)
                .join("apps")
                .join(format!("{prefix}{}.{}", i.name, i.ext)),
        );
    }
    let export = Export {
        kind: Kind::App,
        name: id.to_string(),
        files,
    };
    let ours = record_export(store, rec, &export)?;
    for (i, f) in icons.iter().zip(&export.files[1..]) {
        files::write_host(f, &i.bytes, 0o644, &ours, &rec.env_id)?;
    }
    files::write_host(&desktop_file, text.as_bytes(), 0o644, &ours, &rec.env_id)?;
    files::update_desktop_database(&t.applications);
    Ok(export)
}

/// Exports the program `bin` of `rec` as a wrapper script `~/.local/bin/BIN`.
pub fn export_bin(store: &Store, rec: &EnvRecord, bin: &str, t: &Targets) -> Result<Export> {
    check_name("program", bin)?;
    let _lock = store.apps_lock()?;
    let fs = EnvFs::open(store, rec)?;
    let mut found = false;
    for d in BIN_DIRS {
        if fs.is_file(&format!("{d}/{bin}"))? {
            found = true;
            break;
        }
    }
    if !found {
        return Err(AppError::NoBin {
            env: rec.display_name(),
            bin: bin.to_string(),
        }
        .into());
    }
    let mut argv = launcher(t, rec);
    argv.push(bin.to_string());
    let quoted: Vec<String> = argv.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let script = format!(
        "#!/bin/sh\n{}{}\n# Written by `karapace bin export`; `karapace bin unexport {} {bin}` removes it.\nexec {} \"$@\"\n",
        files::WRAPPER_MARKER,
        rec.env_id,
        rec.display_name(),
        quoted.join(" ")
    );
    let path = t.bin.join(bin);
    let export = Export {
        kind: Kind::Bin,
        name: bin.to_string(),
        files: vec![path.clone()],
    };
    let ours = record_export(store, rec, &export)?;
    files::write_host(&path, script.as_bytes(), 0o755, &ours, &rec.env_id)?;
    Ok(export)
}

/// `karapace --store STORE exec ENV_ID --`: the env_id, not the name, so a
/// later environment given the same name never runs in its place.
fn launcher(t: &Targets, rec: &EnvRecord) -> Vec<String> {
    let mut v = t.launcher.clone();
    v.extend(["exec".to_string(), rec.env_id.clone(), "--".to_string()]);
    v
}

/// Puts `export` into `rec`'s record (replacing an earlier one of the same
/// name, whose files not written again are removed), before any file is
/// written: a crash leaves recorded files missing, never files unrecorded.
/// Returns the files the environment's exports had, which it may overwrite.
fn record_export(store: &Store, rec: &EnvRecord, export: &Export) -> Result<BTreeSet<PathBuf>> {
    let mut r = store.app_record(&rec.env_id)?;
    // Files another export of this environment wrote (an icon two entries
    // share) are the same environment's: they may be written again.
    let ours: BTreeSet<PathBuf> = r.exports.iter().flat_map(|x| x.files.iter().cloned()).collect();
    // Refused before anything changes when a file in the way is not ours.
    for f in &export.files {
        files::check_replaceable(f, &ours, &rec.env_id)?;
    }
    if let Some(pos) = r
        .exports
        .iter()
        .position(|x| x.kind == export.kind && x.name == export.name)
    {
        let old = r.exports.remove(pos);
        let others = store.files_of_others(&rec.env_id, Some((export.kind, &export.name)))?;
        for f in &old.files {
            if !export.files.contains(f) && !others.contains(f) {
                files::remove_host(f, &rec.env_id)?;
            }
        }
    }
    r.env_id = rec.env_id.clone();
    r.exports.push(export.clone());
    r.exports.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    store.write_app_record(&r)?;
    Ok(ours)
}

/// Removes one export's files and its entry in the record.
pub fn unexport(store: &Store, env_id: &str, env_name: &str, kind: Kind, name: &str) -> Result<Export> {
    let _lock = store.apps_lock()?;
    let mut r = store.app_record(env_id)?;
    let pos = r
        .exports
        .iter()
        .position(|x| x.kind == kind && (x.name == name || name.strip_suffix(".desktop") == Some(&x.name)))
        .ok_or_else(|| AppError::NotExported {
            env: env_name.to_string(),
            kind: kind.as_str(),
            name: name.to_string(),
        })?;
    let x = r.exports.remove(pos);
    remove_files(store, env_id, &x, true)?;
    store.write_app_record(&r)?;
    Ok(x)
}

/// Removes `x`'s files but those another export records (`only_this`: the
/// environment's other exports count as others; else only other
/// environments' do, as all of its own go).
fn remove_files(store: &Store, env_id: &str, x: &Export, only_this: bool) -> Result<()> {
    let skip = only_this.then_some((x.kind, x.name.as_str()));
    let others = store.files_of_others(env_id, skip)?;
    let mut dirs = BTreeSet::new();
    for f in x.files.iter().filter(|f| !others.contains(*f)) {
        files::remove_host(f, env_id)?;
        if x.kind == Kind::App && f.extension().is_some_and(|e| e == "desktop") {
            dirs.extend(f.parent().map(Path::to_path_buf));
        }
    }
    for d in dirs {
        files::update_desktop_database(&d);
    }
    Ok(())
}

/// Removes everything `env_id` exported, and its record: what destroy does
/// once the environment is gone.
pub fn forget_env(store: &Store, env_id: &str) -> Result<usize> {
    let _lock = store.apps_lock()?;
    let r = store.app_record(env_id)?;
    for x in &r.exports {
        remove_files(store, env_id, x, false)?;
    }
    store.remove_meta(&format!("{RECORD_DIR}/{env_id}"))?;
    Ok(r.exports.len())
}

/// Writes `rec`'s exports again (after a rename: the files carry its name).
/// Returns a warning for each that could not be written again, which is no
/// longer exported.
pub fn refresh(store: &Store, rec: &EnvRecord, t: &Targets) -> Result<Vec<String>> {
    let exports = store.app_record(&rec.env_id)?.exports;
    let mut warnings = Vec::new();
    for x in exports {
        unexport(store, &rec.env_id, &rec.display_name(), x.kind, &x.name)?;
        let again = match x.kind {
            Kind::App => export_app(store, rec, &x.name, t),
            Kind::Bin => export_bin(store, rec, &x.name, t),
        };
        if let Err(e) = again {
            warnings.push(format!("{} {} is no longer exported: {e}", x.kind.as_str(), x.name));
        }
    }
    Ok(warnings)
}

/// Exports the `[gui] apps` of `rec` when its apps may be: built here
/// (origin local), or from elsewhere and trusted. Returns what was exported
/// and a warning for each app that could not be.
pub fn export_gui_apps(store: &Store, rec: &EnvRecord, t: &Targets) -> Result<(Vec<Export>, Vec<String>)> {
    let apps = rec.settings.as_ref().map(|s| s.gui.apps.clone()).unwrap_or_default();
    if apps.is_empty() || (rec.origin == Origin::Remote && !store.is_trusted(&rec.env_id)?) {
        return Ok((Vec::new(), Vec::new()));
    }
    let (mut done, mut warnings) = (Vec::new(), Vec::new());
    for app in apps {
        match export_app(store, rec, &app, t) {
            Ok(x) => done.push(x),
            Err(Error::App(e)) => warnings.push(format!("app {app} of {} not exported: {e}", rec.display_name())),
            Err(e) => return Err(e),
        }
    }
    Ok((done, warnings))
}

/// Finds `app`'s desktop entry: by desktop id first, else by the program
/// its Exec runs. Entries that do not parse are skipped when searching.
fn find_desktop(fs: &EnvFs, env: &str, app: &str) -> Result<(String, desktop::Entry)> {
    let id = app.strip_suffix(".desktop").unwrap_or(app);
    for d in APP_DIRS {
        let path = format!("{d}/{id}.desktop");
        if let Some(bytes) = fs.read(&path, DESKTOP_LIMIT)? {
            let entry = desktop::Entry::parse(&bytes).map_err(|reason| AppError::Refused {
                env: env.to_string(),
                path: path.clone(),
                reason,
            })?;
            return Ok((path, entry));
        }
    }
    let mut hits = Vec::new();
    for d in APP_DIRS {
        for name in fs.list(d, DIR_LIMIT)? {
            let Some(name) = String::from_utf8(name)
                .ok()
                .filter(|n| safe_name(n) && n.ends_with(".desktop"))
            else {
                continue;
            };
            let path = format!("{d}/{name}");
            let Ok(Some(bytes)) = fs.read(&path, DESKTOP_LIMIT) else {
                continue;
            };
            let Ok(entry) = desktop::Entry::parse(&bytes) else {
                continue;
            };
            let runs = entry.program().is_some_and(|p| p.rsplit('/').next() == Some(app));
            if runs && entry.main().is_ok() {
                hits.push((path, entry));
            }
        }
    }
    match hits.len() {
        1 => Ok(hits.pop().expect("one")),
        0 => Err(AppError::NoApp {
            env: env.to_string(),
            app: app.to_string(),
        }
        .into()),
        _ => Err(AppError::Ambiguous {
            env: env.to_string(),
            app: app.to_string(),
            candidates: hits
                .iter()
                .map(|(p, _)| p.rsplit('/').next().unwrap_or(p).to_string())
                .collect(),
        }
        .into()),
    }
}
