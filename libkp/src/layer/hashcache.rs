//! A stat cache for a directory that is written as a layer again and again (an
//! environment's writable layer): file identity and change times → blob id, so
//! a commit of files that did not change reads none of their bytes. The idea is
//! git's index; the format is in docs/store-format.md ("Hash caches").
//!
//! An entry is trusted only when device, inode, size, mtime and ctime all match
//! exactly. The kernel sets ctime on every change of content or metadata and it
//! cannot be set by users, so a file changed since its entry was made does not
//! match — except a change within the same timestamp tick as the stat that made
//! the entry ("racy" entries, in git's words). So an entry is only made for a
//! file whose ctime is older than the start of the scan by [`RACY_MARGIN`]; a
//! younger file is hashed each time until it has been left alone that long.

use rustix::fs::Stat;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Result;
use crate::hash::ObjectId;
use crate::store::Store;

const MAGIC: &str = "kp-hashes 1";

/// How long a file must have been left alone before its hash is cached; many
/// times the kernel's coarsest timestamp tick.
pub const RACY_MARGIN_NS: i128 = 2_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: i128,
    ctime: i128,
}

impl Stamp {
    // time_t is 32 bits on some targets.
    #[allow(clippy::unnecessary_cast)]
    fn of(st: &Stat) -> Stamp {
        Stamp {
            size: st.st_size as u64,
            mtime: ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }
}

fn ns(sec: i64, nsec: i64) -> i128 {
    i128::from(sec) * 1_000_000_000 + i128::from(nsec)
}

#[derive(Debug, Default)]
struct Entries {
    /// (dev, ino) → stamp and blob id.
    map: HashMap<(u64, u64), (Stamp, ObjectId)>,
    /// Keys looked up with a hit, or added, during this scan: what is saved.
    used: Vec<(u64, u64)>,
    /// Entries added during this scan.
    added: usize,
}

/// The cache of one directory; see the module documentation.
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    /// Files whose ctime is at or after this (ns since the epoch) are not cached.
    trust_before: i128,
    loaded: usize,
    entries: Mutex<Entries>,
}

impl HashCache {
    /// Loads the cache at `path`; a missing, unreadable or malformed file is an
    /// empty cache (it only ever saves work).
    pub fn load(path: &Path) -> HashCache {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut entries = Entries::default();
        if let Ok(text) = std::fs::read_to_string(path) {
            let mut lines = text.lines();
            if lines.next() == Some(MAGIC) {
                for line in lines {
                    match parse_line(line) {
                        Some((key, value)) => {
                            entries.map.insert(key, value);
                        }
                        None => {
                            entries.map.clear();
                            break;
                        }
                    }
                }
            }
        }
        HashCache {
            path: path.to_path_buf(),
            trust_before: ns(now.as_secs() as i64, i64::from(now.subsec_nanos())) - RACY_MARGIN_NS,
            loaded: entries.map.len(),
            entries: Mutex::new(entries),
        }
    }

    /// The blob id and size of the file `meta` describes, if cached and unchanged.
    pub fn lookup(&self, meta: &Stat) -> Option<(ObjectId, u64)> {
        let key = (meta.st_dev, meta.st_ino);
        let mut e = self.entries.lock().expect("no poisoned lock");
        match e.map.get(&key) {
            Some((stamp, id)) if *stamp == Stamp::of(meta) => {
                let hit = (*id, stamp.size);
                e.used.push(key);
                Some(hit)
            }
            _ => None,
        }
    }

    /// Records that the file `meta` described (stat taken before its bytes were
    /// read) has blob id `id`, unless it changed too recently to be sure.
    pub fn record(&self, meta: &Stat, id: ObjectId) {
        let stamp = Stamp::of(meta);
        if stamp.ctime >= self.trust_before || stamp.mtime >= self.trust_before {
            return;
        }
        let key = (meta.st_dev, meta.st_ino);
        let mut e = self.entries.lock().expect("no poisoned lock");
        e.map.insert(key, (stamp, id));
        e.used.push(key);
        e.added += 1;
    }

    /// Writes the entries this scan used or added (so files gone since drop
    /// out), atomically; nothing when that is what the file holds already.
    pub fn save(&self, store: &Store) -> Result<()> {
        let e = self.entries.lock().expect("no poisoned lock");
        let mut used = e.used.clone();
        used.sort_unstable();
        used.dedup();
        if e.added == 0 && used.len() == self.loaded {
            return Ok(());
        }
        let mut out = String::with_capacity(MAGIC.len() + 1 + used.len() * 128);
        out.push_str(MAGIC);
        out.push('\n');
        for key in used {
            let (s, id) = e.map[&key];
            let _ = writeln!(
                out,
                "{} {} {} {} {} {}",
                key.0,
                key.1,
                s.size,
                s.mtime,
                s.ctime,
                id.to_hex()
            );
        }
        Ok(store.write_atomic(&self.path, out.as_bytes(), 0o644)?)
    }
}

fn parse_line(line: &str) -> Option<((u64, u64), (Stamp, ObjectId))> {
    let mut f = line.split(' ');
    let dev = f.next()?.parse().ok()?;
    let ino = f.next()?.parse().ok()?;
    let stamp = Stamp {
        size: f.next()?.parse().ok()?,
        mtime: f.next()?.parse().ok()?,
        ctime: f.next()?.parse().ok()?,
    };
    let id = ObjectId::from_hex(f.next()?)?;
    if f.next().is_some() {
        return None;
    }
    Some(((dev, ino), (stamp, id)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn aged(path: &Path) {
        let old = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(old).unwrap();
    }

    #[test]
    fn hits_only_while_the_file_is_unchanged_and_survives_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join("s")).unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"one").unwrap();
        aged(&file);
        let cache_path = dir.path().join("hashes");
        let id = ObjectId::from_hex(&"ab".repeat(32)).unwrap();

        // ctime is now (set_modified changes it): too young to be trusted.
        let c = HashCache::load(&cache_path);
        let meta = rustix::fs::stat(&file).unwrap();
        c.record(&meta, id);
        assert_eq!(c.lookup(&meta), None, "a file changed within the margin is not cached");

        // A scan that starts later trusts it.
        let mut c = HashCache::load(&cache_path);
        c.trust_before += RACY_MARGIN_NS * 2;
        c.record(&meta, id);
        assert_eq!(c.lookup(&meta), Some((id, 3)));
        c.save(&store).unwrap();

        let again = HashCache::load(&cache_path);
        assert_eq!(again.lookup(&meta), Some((id, 3)));
        // Any change moves ctime on: no hit, even with size and mtime kept.
        std::fs::write(&file, b"two").unwrap();
        aged(&file);
        let changed = rustix::fs::stat(&file).unwrap();
        assert_eq!(changed.st_mtime, meta.st_mtime);
        assert_eq!(again.lookup(&changed), None);
    }

    #[test]
    fn a_malformed_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hashes");
        std::fs::write(&p, format!("{MAGIC}\n1 2 3 4 5 nothex\n")).unwrap();
        assert_eq!(HashCache::load(&p).loaded, 0);
        std::fs::write(&p, "something else\n").unwrap();
        assert_eq!(HashCache::load(&p).loaded, 0);
    }
}
