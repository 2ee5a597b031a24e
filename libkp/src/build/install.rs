//! Installing packages over a base layer, inside the sandbox, and keeping what
//! the install added as a dependency layer.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::normalise::drop_left_behind;
use super::{BuildError, Job, Runner};
use super::{Error, Result};
use crate::hash::ObjectId;
use crate::layer::{write_layer, WriteOptions};
use crate::object::LayerKind;
use crate::pkg::{self, InstallOptions, Package, Request};
use crate::store::Store;

/// What an install produced.
#[derive(Debug)]
pub struct Installed {
    /// The dependency layer, whose parent is the base.
    pub layer: ObjectId,
    /// Every package the install added or changed: the closure for the lock.
    pub added: Vec<Package>,
}

/// Installs `wanted` over `base` (the image `reference`) and writes the
/// result as a dependency layer; `asked` is what the manifest asks for
/// (`system.packages` and `gui.apps`): the rest of `wanted` is marked as
/// dependencies.
pub fn install_packages(
    store: &Store,
    reference: &str,
    asked: &[String],
    base: ObjectId,
    wanted: &[Request],
    offline: bool,
    runner: &dyn Runner,
) -> Result<Installed> {
    let lower = store.cached_checkout(&base)?;
    let manager = pkg::detect_usable(&lower).map_err(|reason| BuildError::NoPackageManager {
        reference: reference.to_string(),
        packages: wanted.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(" "),
        reason,
    })?;
    // What this manager would read as syntax is refused before anything runs.
    for r in wanted {
        manager.check_name(&r.name).map_err(BuildError::from)?;
    }
    // Upper and work must share a filesystem; the store's tmp/ is on the store's.
    let scratch = store.temp_dir()?;
    let upper = scratch.path().join("upper");
    let work = scratch.path().join("work");
    for d in [&upper, &work] {
        fs::create_dir(d).map_err(Error::store("create directory", d))?;
    }
    let _open_work = OpenWork(work.clone());
    let (proxy_lower, proxy_env) = proxy_settings(scratch.path(), manager, offline)?;
    let job = |argv: Vec<String>, mut env: Vec<(String, String)>, network: bool, capture: bool| Job {
        lowers: proxy_lower.iter().chain([&lower]).cloned().collect(),
        upper: upper.clone(),
        work: work.clone(),
        argv,
        env: {
            env.extend(proxy_env.iter().cloned());
            env
        },
        network,
        capture,
    };
    let q = manager.query();
    let run_query = |runner: &dyn Runner| -> Result<Vec<u8>> {
        let out = runner.run(&job(q.argv.clone(), q.env.clone(), false, true))?;
        if out.status != 0 {
            return Err(BuildError::CommandFailed {
                command: q.argv.join(" "),
                status: out.status,
            }
            .into());
        }
        Ok(out.stdout)
    };
    let parse = |stdout: &[u8]| -> Result<Vec<Package>> {
        Ok(manager
            .parse_installed(&String::from_utf8_lossy(stdout))
            .map_err(BuildError::from)?)
    };
    // What the base has installed depends on the base and the query alone:
    // asked once per base, then read from the cache.
    let cached = InstalledCache::new(store, &base, &q);
    let before = match cached.read() {
        Some(stdout) => parse(&stdout)?,
        None => {
            let stdout = run_query(runner)?;
            let before = parse(&stdout)?;
            cached.write(&stdout);
            before
        }
    };
    let ids = runner.ids()?;
    // With one id mapped, apt cannot drop to its own user for downloads.
    let single_uid = ids.uid.iter().map(|r| r.2).sum::<u32>() <= 1;
    if single_uid {
        // And not later either: the setting goes into the environment.
        let read = |rel: &str| fs::read(lower.join(rel)).ok();
        for (rel, bytes) in manager.single_map_config(&read) {
            write_into_upper(&lower, &upper, &rel, &bytes)?;
        }
    }
    let opts = InstallOptions { single_uid, offline };
    let mut commands = manager.install(wanted, &opts).map_err(BuildError::from)?;
    // A --locked install names the whole closure; what the manifest did not
    // ask for is marked as a dependency again, as an unlocked install marks it.
    let deps: Vec<&str> = wanted
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !asked.iter().any(|a| a == n))
        .collect();
    commands.extend(manager.mark_auto(&deps).map_err(BuildError::from)?);
    for cmd in commands {
        crate::log!(crate::log::Level::Info, "running {}", cmd.argv.join(" "));
        let out = runner.run(&job(cmd.argv.clone(), cmd.env.clone(), !offline, false))?;
        if out.status != 0 {
            return Err(BuildError::CommandFailed {
                command: cmd.argv.join(" "),
                status: out.status,
            }
            .into());
        }
        // pacman reports a failed package scriptlet and exits 0 all the same.
        if let Some(what) = manager.failed_quietly(&String::from_utf8_lossy(&out.output)) {
            return Err(BuildError::FailedQuietly {
                command: cmd.argv.join(" "),
                what,
            }
            .into());
        }
    }
    let after = parse(&run_query(runner)?)?;
    let added = pkg::added(&before, &after);
    drop_left_behind(&upper)?;
    // Provenance is part of the layer's bytes: only what the lock fixes, so a
    // --locked and an unlocked build of one lock write the same layer.
    let mut provenance = BTreeMap::new();
    provenance.insert("manager".to_string(), manager.name().to_string());
    provenance.insert("installed".to_string(), asked.join(" "));
    provenance.insert(ID_MAP.to_string(), if single_uid { SINGLE } else { RANGE }.to_string());
    let opts = WriteOptions {
        kind: LayerKind::Dependency,
        parents: vec![base],
        provenance,
        ids: Some(ids),
        ..WriteOptions::default()
    };
    let report = write_layer(store, &upper, &opts)?;
    Ok(Installed {
        layer: report.layer.expect("write_layer writes a layer"),
        added,
    })
}

/// The proxy of the user's downloads (crate::net), told to the package manager
/// in its own terms ([`pkg::Manager::proxy`]). A settings file lives in a lower
/// directory of its own, above the base, inside the scratch directory: the
/// upper never holds it, so no layer does, and it goes with the scratch
/// directory (a proxy URL can carry a password). Nothing when offline.
fn proxy_settings(
    scratch: &std::path::Path,
    manager: pkg::Manager,
    offline: bool,
) -> Result<(Option<std::path::PathBuf>, crate::pkg::Env)> {
    use std::os::unix::fs::PermissionsExt;
    if offline {
        return Ok((None, Vec::new()));
    }
    let setup = manager.proxy(&crate::net::ManagerProxy::new(&crate::config::NetworkConfig::load()?));
    let Some((path, text)) = setup.file else {
        return Ok((None, setup.env));
    };
    let dir = scratch.join("proxy");
    let file = dir.join(&path);
    let parent = file.parent().unwrap_or(&dir);
    // Readable inside whichever ids the sandbox maps, whatever the umask; the
    // scratch directory (in the store, 0700) keeps it from everyone else.
    let wrote = fs::create_dir_all(parent).and_then(|_| fs::write(&file, text));
    wrote.map_err(Error::store("write", &file))?;
    for (p, mode) in [(&dir, 0o755), (&parent.to_path_buf(), 0o755), (&file, 0o644)] {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(Error::store("chmod", p))?;
    }
    Ok((Some(dir), setup.env))
}

/// overlayfs leaves `work/work` with mode 0; a user who owns it (rootless with
/// one id mapped) could not list it to remove the scratch directory. Dropped
/// before the scratch directory, on every path out.
struct OpenWork(std::path::PathBuf);

impl Drop for OpenWork {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(self.0.join("work"), fs::Permissions::from_mode(0o700));
    }
}

/// The provenance key naming the build's id map, and its values
/// (docs/hash-contract.md, "Id maps").
pub const ID_MAP: &str = "id_map";
pub const SINGLE: &str = "single";
pub const RANGE: &str = "range";

/// Writes `bytes` at `rel` in `upper`, creating the directories on the way
/// with the modes they have in `lower` (0755 where it has none), so the
/// overlay shows them as before.
fn write_into_upper(lower: &Path, upper: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let rel = Path::new(rel);
    let mut dir = PathBuf::new();
    for c in rel.parent().into_iter().flat_map(Path::components) {
        dir.push(c);
        let target = upper.join(&dir);
        if target.symlink_metadata().is_ok() {
            continue;
        }
        let mode = fs::symlink_metadata(lower.join(&dir))
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o755);
        fs::DirBuilder::new()
            .mode(mode)
            .create(&target)
            .map_err(Error::store("create directory", &target))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(Error::store("chmod", &target))?;
    }
    let path = upper.join(rel);
    fs::write(&path, bytes).map_err(Error::store("write", &path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).map_err(Error::store("chmod", &path))
}

/// `cache/installed/v1/<base id>-<query>`: the output of a manager's
/// installed-set query over a base layer, so a build asks it once per base
/// (docs/store-format.md). `<query>` is 16 hex digits of the blake3 of the
/// query's command and environment; the file is the blake3 of the output, a
/// newline, then the output, and is used only when that hash matches. gc
/// removes the files of bases it removes (prune.rs).
struct InstalledCache<'s> {
    store: &'s Store,
    path: PathBuf,
}

impl<'s> InstalledCache<'s> {
    fn new(store: &'s Store, base: &ObjectId, query: &pkg::Command) -> InstalledCache<'s> {
        let mut key = String::new();
        for a in &query.argv {
            key.push_str(a);
            key.push('\0');
        }
        key.push('\n');
        for (k, v) in &query.env {
            key.push_str(&format!("{k}={v}\0"));
        }
        let query = ObjectId::of(key.as_bytes()).to_string();
        let path = store.path(&format!("{INSTALLED_CACHE}/{base}-{}", &query[..16]));
        InstalledCache { store, path }
    }

    fn read(&self) -> Option<Vec<u8>> {
        let data = fs::read(&self.path).ok()?;
        let nl = data.iter().position(|&b| b == b'\n')?;
        let (sum, out) = (&data[..nl], &data[nl + 1..]);
        (std::str::from_utf8(sum).ok()? == ObjectId::of(out).to_string()).then(|| out.to_vec())
    }

    /// Best effort: a cache that cannot be written is asked again next time.
    fn write(&self, out: &[u8]) {
        let mut data = format!("{}\n", ObjectId::of(out)).into_bytes();
        data.extend_from_slice(out);
        if let Some(dir) = self.path.parent() {
            if self.store.make_dir(dir).is_ok() {
                let _ = self.store.write_cache(&self.path, &data);
            }
        }
    }
}

const INSTALLED_CACHE: &str = "cache/installed/v1";
