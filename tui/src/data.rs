//! What the TUI reads from the store, through libkp's public API (the calls
//! `karapace list`, `snapshots` and `diff` make), on a thread of its own.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, SystemTime};

use libkp::hash::ObjectId;
use libkp::layer::{diff_trees, quote_path, walk_tree, Visit};
use libkp::Store;

use crate::app::{Msg, Row, Usage};
use crate::Tx;

/// What the UI asks the data thread for.
pub enum Req {
    Reload,
    Usage,
    Diff { env: String, snapshot: String },
}

/// How often the store is looked at for changes by other processes.
const POLL: Duration = Duration::from_millis(500);

/// Runs until the UI goes away: loads the list at once, then whenever asked
/// or whenever the store's record directory or a run directory changes.
pub fn serve(root: PathBuf, reqs: Receiver<Req>, out: Tx) {
    let mut seen = None;
    let mut want_reload = true;
    loop {
        if want_reload {
            want_reload = false;
            seen = Some(fingerprint(&root));
            if !reload(&root, &out) {
                return;
            }
        }
        match reqs.recv_timeout(POLL) {
            Ok(Req::Reload) => want_reload = true,
            Ok(Req::Usage) => {
                if out.send(Msg::Usage(usage(&root))).is_err() {
                    return;
                }
            }
            Ok(Req::Diff { env, snapshot }) => {
                let lines = snapshot_diff(&root, &env, &snapshot);
                if out.send(Msg::Diff { snapshot, lines }).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => want_reload = seen != Some(fingerprint(&root)),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The list, then the sizes; false once the UI is gone.
fn reload(root: &Path, out: &Tx) -> bool {
    let store = match Store::open(root) {
        Ok(s) => s,
        Err(e) => return out.send(Msg::LoadError(e.to_string())).is_ok(),
    };
    let rows = match store.list_envs_with_state() {
        Ok(r) => r,
        Err(e) => {
            // One bad record fails the whole pass: read them one by one,
            // show the good ones and name the first bad one.
            let (rows, bad) = one_by_one(&store, root);
            let why = bad.unwrap_or_else(|| e.to_string());
            return send_rows(&store, rows, out) && out.send(Msg::LoadError(why)).is_ok();
        }
    };
    send_rows(&store, rows, out)
}

/// The rows, then their sizes; false once the UI is gone.
fn send_rows(store: &Store, rows: Vec<(libkp::env::EnvRecord, libkp::env::State)>, out: &Tx) -> bool {
    let ids: Vec<String> = rows.iter().map(|(r, _)| r.env_id.clone()).collect();
    if out
        .send(Msg::Rows(rows.into_iter().map(|(r, s)| Row::new(r, s)).collect()))
        .is_err()
    {
        return false;
    }
    out.send(Msg::Sizes(sizes(store, ids))).is_ok()
}

/// The bytes of each environment's writable layer that can be measured.
/// Each is opened relative to `envs/`, opened once, and read with raw
/// `getdents64`: four system calls for an empty layer, where `std::fs`
/// takes five (its `opendir` adds an `fstat`) and resolves the whole path.
fn sizes(store: &Store, ids: Vec<String>) -> Vec<(String, u64)> {
    let envs = store.root().join("envs");
    let Ok(envs_fd) = rustix::fs::open(&envs, DIR_FLAGS, Mode::empty()) else {
        return Vec::new();
    };
    let mut buf = vec![MaybeUninit::uninit(); 16 << 10];
    ids.into_iter()
        .filter_map(|id| {
            // The layer's path as libkp names it, relative to `envs/`.
            let upper = libkp::env::upper_dir(store, &id);
            let rel = upper.strip_prefix(&envs).ok()?;
            let n = du_at(envs_fd.as_fd(), rel, &mut buf)?;
            Some((id, n))
        })
        .collect()
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Bytes of the files below `name` (relative to `at`), not following
/// symbolic links; None when part of it cannot be read (a rootless caller's
/// writable layer can hold directories of other ids).
fn du_at(at: BorrowedFd, name: &Path, buf: &mut Vec<MaybeUninit<u8>>) -> Option<u64> {
    let fd = rustix::fs::openat(at, name, DIR_FLAGS, Mode::empty()).ok()?;
    let mut total = 0;
    let mut subdirs = Vec::new();
    {
        let mut entries = RawDir::new(&fd, buf.as_mut_slice());
        while let Some(e) = entries.next() {
            let e = e.ok()?;
            let n = e.file_name();
            if n == c"." || n == c".." {
                continue;
            }
            let dir = match e.file_type() {
                FileType::Directory => true,
                FileType::Unknown => {
                    let st = rustix::fs::statat(&fd, n, AtFlags::SYMLINK_NOFOLLOW).ok()?;
                    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                        true
                    } else {
                        total += st.st_size as u64;
                        false
                    }
                }
                _ => {
                    total += rustix::fs::statat(&fd, n, AtFlags::SYMLINK_NOFOLLOW).ok()?.st_size as u64;
                    false
                }
            };
            if dir {
                subdirs.push(std::ffi::OsStr::from_bytes(n.to_bytes()).to_owned());
            }
        }
    }
    // The buffer is free again once this directory has been read.
    for d in subdirs {
        total += du_at(fd.as_fd(), Path::new(&d), buf)?;
    }
    Some(total)
}

/// Every record that reads, with its state, and the first failure.
fn one_by_one(store: &Store, root: &Path) -> (Vec<(libkp::env::EnvRecord, libkp::env::State)>, Option<String>) {
    let mut rows = Vec::new();
    let mut bad = None;
    let mut ids: Vec<String> = match std::fs::read_dir(root.join("meta/envs")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(String::from))
            .collect(),
        Err(e) => return (rows, Some(format!("{}: {e}", root.join("meta/envs").display()))),
    };
    ids.sort();
    for id in ids {
        match store
            .read_env(&id)
            .and_then(|r| r.map(|r| store.effective_state(&r).map(|s| (r, s))).transpose())
        {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(e) => {
                bad.get_or_insert_with(|| e.to_string());
            }
        }
    }
    (rows, bad)
}

/// Bytes of the files below `dir`; None when part of it cannot be read (a
/// rootless caller's writable layer can hold directories of other ids).
fn du(dir: &Path) -> Option<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir).ok()? {
        let e = e.ok()?;
        let m = e.metadata().ok()?;
        if m.is_dir() {
            total += du(&e.path())?;
        } else {
            total += m.len();
        }
    }
    Some(total)
}

/// Changes when a record is written, added or removed (`meta/envs/`) or an
/// environment starts or stops running (the store-wide `run/` hints,
/// docs/store-format.md): two `stat`s, whatever the store holds.
fn fingerprint(root: &Path) -> Vec<Option<SystemTime>> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    vec![mtime(&root.join("meta/envs")), mtime(&root.join("run"))]
}

/// Objects and bytes per kind, and the writable layers' bytes.
fn usage(root: &Path) -> Result<Usage, String> {
    let store = Store::open(root).map_err(|e| e.to_string())?;
    let (objects, _) = store.list_objects().map_err(|e| e.to_string())?;
    let mut kinds: Vec<(String, u64, u64)> = Vec::new();
    for o in objects {
        let len = std::fs::symlink_metadata(&o.path).map(|m| m.len()).unwrap_or(0);
        let k = o.kind.as_str();
        match kinds.iter_mut().find(|(n, _, _)| n == k) {
            Some(e) => {
                e.1 += 1;
                e.2 += len;
            }
            None => kinds.push((k.to_string(), 1, len)),
        }
    }
    kinds.sort();
    let envs_bytes = du(&root.join("envs")).unwrap_or(0);
    Ok(Usage { kinds, envs_bytes })
}

/// What snapshot `snap` of `env` changed since the snapshot before it (the
/// first one: everything it holds), one `A|D|M|T PATH` line each.
fn snapshot_diff(root: &Path, env: &str, snap: &str) -> Result<Vec<String>, String> {
    let store = Store::open(root).map_err(|e| e.to_string())?;
    let rec = store.find_env(env).map_err(|e| e.to_string())?;
    let i = rec
        .snapshots
        .iter()
        .position(|s| s.layer == snap)
        .ok_or_else(|| format!("{}: no snapshot {snap}", rec.display_name()))?;
    let tree = |layer: &str| -> Result<ObjectId, String> {
        let id = ObjectId::from_hex(layer).ok_or_else(|| format!("snapshot id {layer} is not an object id"))?;
        Ok(store.read_layer(&id).map_err(|e| e.to_string())?.tree)
    };
    let new = tree(&rec.snapshots[i].layer)?;
    let mut lines = Vec::new();
    if i == 0 {
        walk_tree(&store, &new, b"", &mut |path, _| {
            lines.push(format!("A {}", abs(path)));
            Ok(Visit::Descend)
        })
        .map_err(|e| e.to_string())?;
    } else {
        let old = tree(&rec.snapshots[i - 1].layer)?;
        for c in diff_trees(&store, &old, &new).map_err(|e| e.to_string())? {
            lines.push(format!("{} {}", c.status.letter(), abs(&c.path)));
        }
    }
    Ok(lines)
}

/// A tree path as the environment sees it: absolute.
fn abs(path: &[u8]) -> String {
    if path.starts_with(b"/") {
        quote_path(path)
    } else {
        let mut p = b"/".to_vec();
        p.extend_from_slice(path);
        quote_path(&p)
    }
}

/// The detail view's lock summary (from the lock beside the manifest) and
/// drift summary (`karapace --json diff`, a child: for a rootless user with
/// a subordinate range it re-runs itself mapped to read the writable layer).
pub fn detail(root: &Path, kp: &Path, env_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let rec = match Store::open(root)
        .map_err(|e| e.to_string())
        .and_then(|s| s.find_env(env_id).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => return vec![format!("lock: {e}")],
    };
    match &rec.manifest {
        None => out.push("lock: none recorded (not built from a manifest here)".into()),
        Some(m) => {
            let path = libkp::schema::lock::path_for(Path::new(m));
            match libkp::schema::lock::Lock::load(&path) {
                Err(e) => out.push(format!("lock: {e}")),
                Ok(lock) => {
                    let same = if lock.env_id == rec.env_id {
                        ""
                    } else {
                        " (names another env_id: the manifest changed since this build)"
                    };
                    out.push(format!(
                        "lock: {}, {} packages{same}",
                        path.display(),
                        lock.packages.len()
                    ));
                    for p in lock.packages.iter().take(20) {
                        out.push(format!("  {} {} {}", p.name, p.version, p.arch));
                    }
                    if lock.packages.len() > 20 {
                        out.push(format!("  ... and {} more", lock.packages.len() - 20));
                    }
                }
            }
        }
    }
    let diff = std::process::Command::new(kp)
        .arg("--store")
        .arg(root)
        .args(["--json", "diff", env_id])
        .stdin(std::process::Stdio::null())
        .output();
    match diff {
        Err(e) => out.push(format!("drift: cannot run {}: {e}", kp.display())),
        Ok(o) if !o.status.success() => {
            let err = String::from_utf8_lossy(&o.stderr);
            out.push(format!("drift: {}", err.lines().last().unwrap_or("diff failed")));
        }
        Ok(o) => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let changes = v["changes"].as_array().cloned().unwrap_or_default();
            let mut counts: Vec<(String, usize)> = Vec::new();
            for c in &changes {
                let s = c["status"].as_str().unwrap_or("?").to_string();
                match counts.iter_mut().find(|(k, _)| *k == s) {
                    Some(e) => e.1 += 1,
                    None => counts.push((s, 1)),
                }
            }
            if changes.is_empty() {
                out.push("drift: none (the writable layer is empty)".into());
            } else {
                let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
                out.push(format!("drift: {} paths: {}", changes.len(), parts.join(", ")));
                for c in changes.iter().take(10) {
                    out.push(format!(
                        "  {} {}",
                        c["status"].as_str().unwrap_or("?"),
                        c["path"].as_str().unwrap_or("?")
                    ));
                }
                if changes.len() > 10 {
                    out.push(format!("  ... and {} more (karapace diff)", changes.len() - 10));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn du_at_counts_files_and_links_below_as_du_does() {
        let dir = std::env::temp_dir().join(format!("kp-tui-du-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("l/sub/deeper")).unwrap();
        std::fs::write(dir.join("l/a"), "12345").unwrap();
        std::fs::write(dir.join("l/sub/b"), "123").unwrap();
        std::fs::write(dir.join("l/sub/deeper/c"), "").unwrap();
        // A link counts its own length; what it points to is not followed.
        std::os::unix::fs::symlink("/nonexistent", dir.join("l/sub/link")).unwrap();
        for i in 0..300 {
            // More entries than one getdents64 buffer of a small size holds.
            std::fs::write(dir.join(format!("l/sub/deeper/f{i:03}")), "x").unwrap();
        }
        let top = rustix::fs::open(&dir, DIR_FLAGS, Mode::empty()).unwrap();
        let mut buf = vec![MaybeUninit::uninit(); 1024];
        let n = du_at(top.as_fd(), Path::new("l"), &mut buf);
        assert_eq!(n, Some(5 + 3 + "/nonexistent".len() as u64 + 300));
        assert_eq!(n, du(&dir.join("l")));
        assert_eq!(du_at(top.as_fd(), Path::new("missing"), &mut buf), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
