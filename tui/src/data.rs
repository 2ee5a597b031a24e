//! What the TUI reads from the store, through libkp's public API (the calls
//! `karapace list`, `snapshots` and `diff` make), on a thread of its own.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, SystemTime};

use libkp::hash::ObjectId;
use libkp::layer::{diff_trees, quote_path, walk_tree, Visit};
use libkp::Store;

use crate::app::{Msg, Row, Usage};

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
pub fn serve(root: PathBuf, reqs: Receiver<Req>, out: Sender<Msg>) {
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
fn reload(root: &Path, out: &Sender<Msg>) -> bool {
    let store = match Store::open(root) {
        Ok(s) => s,
        Err(e) => return out.send(Msg::LoadError(e.to_string())).is_ok(),
    };
    let rows = match store.list_envs_with_state() {
        Ok(r) => r,
        Err(e) => return out.send(Msg::LoadError(e.to_string())).is_ok(),
    };
    let ids: Vec<String> = rows.iter().map(|(r, _)| r.env_id.clone()).collect();
    if out
        .send(Msg::Rows(rows.into_iter().map(|(r, s)| Row::new(r, s)).collect()))
        .is_err()
    {
        return false;
    }
    let sizes = ids
        .into_iter()
        .filter_map(|id| Some((du(&store.env_dir(&id))?, id)))
        .map(|(n, id)| (id, n))
        .collect();
    out.send(Msg::Sizes(sizes)).is_ok()
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

/// Changes when a record is written, added or removed (`meta/envs/`) or a
/// process starts or stops in an environment (its `run/` directory).
fn fingerprint(root: &Path) -> Vec<Option<SystemTime>> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut out = vec![mtime(&root.join("meta/envs"))];
    if let Ok(rd) = std::fs::read_dir(root.join("envs")) {
        let mut runs: Vec<PathBuf> = rd.filter_map(|e| Some(e.ok()?.path().join("run"))).collect();
        runs.sort();
        out.extend(runs.iter().map(|p| mtime(p)));
    }
    out
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
            lines.push(format!("A {}", quote_path(path)));
            Ok(Visit::Descend)
        })
        .map_err(|e| e.to_string())?;
    } else {
        let old = tree(&rec.snapshots[i - 1].layer)?;
        for c in diff_trees(&store, &old, &new).map_err(|e| e.to_string())? {
            lines.push(format!("{} {}", c.status.letter(), quote_path(&c.path)));
        }
    }
    Ok(lines)
}
