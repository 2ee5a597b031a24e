//! The host side of exports: icons found in the environment and checked,
//! files written atomically where only exports may be replaced, removed only
//! when they are ours.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::envfs::EnvFs;
use super::{safe_name, AppError, Result, ICON_LIMIT, MAX_ICONS};

/// The wrapper script's second line, before the env_id: what says it is ours.
pub const WRAPPER_MARKER: &str = "# karapace-env: ";
const HICOLOR: &str = "/usr/share/icons/hicolor";
const PIXMAPS: &str = "/usr/share/pixmaps";
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// An icon to copy: `hicolor/<size>/apps/<prefix><name>.<ext>`.
pub struct Icon {
    pub size: String,
    pub name: String,
    pub ext: &'static str,
    pub bytes: Vec<u8>,
}

/// `48x48`, `256x256@2`, `scalable`.
fn size_dir(s: &str) -> bool {
    if s == "scalable" {
        return true;
    }
    let (dims, scale) = s.split_once('@').unwrap_or((s, "1"));
    let num = |n: &str| (1..=4).contains(&n.len()) && n.bytes().all(|c| c.is_ascii_digit());
    matches!(dims.split_once('x'), Some((w, h)) if num(w) && num(h)) && scale.len() == 1 && num(scale)
}

/// The icons of an entry's `Icon=`: a theme name looked up in hicolor (every
/// size), else in /usr/share/pixmaps, or an absolute path inside the
/// environment. None found is no error (the entry gets no icon); a bad name
/// or a file that is not the PNG or SVG its name says is refused.
pub fn find_icons(fs: &EnvFs, env: &str, icon: &str) -> Result<Vec<Icon>> {
    let refused = |path: &str, reason: &str| AppError::Refused {
        env: env.to_string(),
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if let Some(abs) = icon.strip_prefix('/').map(|_| icon) {
        let file = abs.rsplit('/').next().unwrap_or("");
        let (name, ext) = split_ext(file).ok_or_else(|| refused(abs, "an icon path must name a .png or .svg file"))?;
        if !safe_name(name) {
            return Err(refused(
                abs,
                "the icon's file name has characters other than A-Z a-z 0-9 . _ + -",
            )
            .into());
        }
        let Some(bytes) = fs.read(abs, ICON_LIMIT)? else {
            return Ok(Vec::new());
        };
        let size = checked(&bytes, ext, None).map_err(|r| refused(abs, &r))?;
        return Ok(size
            .map(|size| Icon {
                size,
                name: name.to_string(),
                ext,
                bytes,
            })
            .into_iter()
            .collect());
    }
    let name = split_ext(icon).map_or(icon, |(n, _)| n);
    if !safe_name(name) {
        return Err(refused(
            &format!("Icon={icon}"),
            "icon names are A-Z a-z 0-9 . _ + -, not starting with . or - (or an absolute path)",
        )
        .into());
    }
    let mut out = Vec::new();
    for size in fs.list(HICOLOR, 256)? {
        let Some(size) = String::from_utf8(size).ok().filter(|s| size_dir(s)) else {
            continue;
        };
        for ext in ["png", "svg"] {
            let path = format!("{HICOLOR}/{size}/apps/{name}.{ext}");
            if let Some(bytes) = fs.read(&path, ICON_LIMIT)? {
                checked(&bytes, ext, Some(&size)).map_err(|r| refused(&path, &r))?;
                if out.len() == MAX_ICONS {
                    return Err(refused(&path, &format!("more than {MAX_ICONS} icon files")).into());
                }
                out.push(Icon {
                    size: size.clone(),
                    name: name.to_string(),
                    ext,
                    bytes,
                });
            }
        }
    }
    if out.is_empty() {
        for ext in ["png", "svg"] {
            let path = format!("{PIXMAPS}/{name}.{ext}");
            if let Some(bytes) = fs.read(&path, ICON_LIMIT)? {
                if let Some(size) = checked(&bytes, ext, None).map_err(|r| refused(&path, &r))? {
                    out.push(Icon {
                        size,
                        name: name.to_string(),
                        ext,
                        bytes,
                    });
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn split_ext(file: &str) -> Option<(&str, &'static str)> {
    let (name, ext) = file.rsplit_once('.')?;
    match ext {
        "png" => Some((name, "png")),
        "svg" => Some((name, "svg")),
        _ => None,
    }
}

/// Checks that `bytes` are what `ext` says and fit the size directory;
/// gives the size directory for an icon found outside hicolor (`None`: a
/// PNG of no square size up to 1024, left out).
fn checked(bytes: &[u8], ext: &str, dir: Option<&str>) -> std::result::Result<Option<String>, String> {
    if ext == "svg" {
        let text = std::str::from_utf8(bytes).map_err(|_| "an SVG icon that is not UTF-8".to_string())?;
        if !text.contains("<svg") {
            return Err("an .svg icon that is no SVG document".into());
        }
        return Ok(Some(dir.unwrap_or("scalable").to_string()));
    }
    if !bytes.starts_with(PNG_MAGIC) || bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return Err("a .png icon that is no PNG image".into());
    }
    if let Some(d) = dir {
        if d == "scalable" {
            return Err("a PNG icon in the scalable directory".into());
        }
        return Ok(Some(d.to_string()));
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let h = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
    Ok((w == h && (1..=1024).contains(&w)).then(|| format!("{w}x{h}")))
}

fn host(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AppError + use<> {
    let path = path.to_path_buf();
    move |source| AppError::Host { op, path, source }
}

/// Whether `path` is a file this environment's export wrote: a desktop entry
/// or wrapper script carrying its env_id.
fn carries_marker(path: &Path, env_id: &str) -> bool {
    let Ok(meta) = path.symlink_metadata() else {
        return false;
    };
    if !meta.is_file() || meta.len() > super::DESKTOP_LIMIT {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    text.lines()
        .any(|l| l == format!("X-Karapace-Env={env_id}") || l == format!("{WRAPPER_MARKER}{env_id}"))
}

/// Refuses a file at `path` that is neither one of `ours` nor carries
/// `env_id`'s marker: the user's own, or another environment's export.
pub fn check_replaceable(path: &Path, ours: &BTreeSet<PathBuf>, env_id: &str) -> Result<()> {
    if path.symlink_metadata().is_ok() && !ours.contains(path) && !carries_marker(path, env_id) {
        return Err(AppError::NotOurs {
            path: path.to_path_buf(),
            env: env_id.chars().take(12).collect(),
        }
        .into());
    }
    Ok(())
}

/// Writes `bytes` at `path` (its directory made), by a temporary file in the
/// same directory renamed over it. An existing file is replaced only when
/// it is one of `ours` or carries `env_id`'s marker.
pub fn write_host(path: &Path, bytes: &[u8], mode: u32, ours: &BTreeSet<PathBuf>, env_id: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().expect("export paths have a directory");
    std::fs::create_dir_all(dir).map_err(host("create directory", dir))?;
    check_replaceable(path, ours, env_id)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".karapace-")
        .tempfile_in(dir)
        .map_err(host("create a temporary file in", dir))?;
    tmp.write_all(bytes).map_err(host("write", tmp.path()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(host("chmod", tmp.path()))?;
    tmp.persist(path).map_err(|e| host("rename over", path)(e.error))?;
    Ok(())
}

/// Removes an exported file: a desktop entry or wrapper only when it carries
/// `env_id`'s marker, an icon when it is a regular file named `karapace-*`.
/// Anything else (the user's own file put there since) is left, with a
/// warning.
pub fn remove_host(path: &Path, env_id: &str) -> Result<()> {
    let meta = match path.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(host("stat", path)(e).into()),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let icon = name.starts_with("karapace-") && split_ext(name).is_some();
    if carries_marker(path, env_id) || (icon && meta.is_file()) {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(host("remove", path)(e).into()),
            _ => Ok(()),
        };
    }
    crate::log!(
        crate::log::Level::Warn,
        "{} was not written by this export (changed since?): left in place",
        path.display()
    );
    Ok(())
}

/// Runs `update-desktop-database DIR` when it is installed; a failure is a
/// warning (the menu catches up at the next run).
pub fn update_desktop_database(dir: &Path) {
    let run = std::process::Command::new("update-desktop-database")
        .arg("-q")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status();
    match run {
        Ok(s) if s.success() => {}
        Ok(s) => crate::log!(
            crate::log::Level::Warn,
            "update-desktop-database {}: {s}",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => crate::log!(
            crate::log::Level::Warn,
            "update-desktop-database {}: {e}",
            dir.display()
        ),
    }
}
