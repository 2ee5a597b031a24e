//! `karapace list`'s one pass, with the state users see (docs/store-format.md,
//! "Listing"). While `meta/envs/` is as it was when the listing's summary was
//! saved, the summary is read: one file, whatever the store holds. Otherwise
//! every record is read once, in parallel: `meta/envs/` is opened once and
//! each record is opened relative to it, read in one call and checked with
//! one hash; and the summary is saved again. The store's `run/` hints
//! (env/run.rs) are read once; only an environment with a hint has its
//! markers looked at.

use std::cell::RefCell;
use std::collections::HashSet;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rayon::prelude::*;
use rustix::buffer::spare_capacity;
use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::Errno;

use super::run::HINTS;
use super::Result;
use super::{EnvRecord, Error, State, META_DIR};
use crate::store::Store;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The listing's summary (docs/store-format.md, "Listing"): every record's
/// bytes, one per line, behind a header naming the state of `meta/envs/` they
/// were read in. A cache: written by `list`, never by a record's writer.
pub(crate) const SUMMARY: &str = "cache/envs-list";
const MAGIC: &str = "kp-envs-list 1";

/// How long `meta/envs/` must have been left alone before a listing of it
/// is saved: many times the coarsest timestamp tick, so that a record
/// written during the listing always moves the directory's ctime on.
const SETTLED_NS: i128 = 2_000_000_000;

/// What `meta/envs/` looks like from its inode: any record written
/// (renamed in) or removed there moves its ctime and mtime on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: i128,
    ctime: i128,
}

impl Stamp {
    // time_t is 32 bits on some targets.
    #[allow(clippy::unnecessary_cast)]
    fn of(fd: &OwnedFd, dir: &Path) -> Result<Stamp> {
        let st = rustix::fs::fstat(fd).map_err(|e| Error::store("stat", dir)(e.into()))?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Ok(Stamp {
            dev: st.st_dev,
            ino: st.st_ino,
            mtime: ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        })
    }

    /// The summary's first line, before the hash of the lines after it.
    fn header(&self, count: usize) -> String {
        format!(
            "{MAGIC} {} {} {} {} {count} ",
            self.dev, self.ino, self.mtime, self.ctime
        )
    }
}

fn now_ns() -> i128 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_nanos() as i128
}

impl Store {
    /// Every environment with its effective state, sorted as
    /// [`Store::list_envs`] sorts. A run directory with no marker in it is
    /// not locked or looked at further: nothing runs there.
    pub fn list_envs_with_state(&self) -> Result<Vec<(EnvRecord, State)>> {
        self.list_envs_with_state_at(now_ns())
    }

    fn list_envs_with_state_at(&self, now: i128) -> Result<Vec<(EnvRecord, State)>> {
        let records = self.list_records(now)?;
        let mut hinted = HashSet::new();
        let hints = self.root().join(HINTS);
        if let Some(d) = self.existing_dir(&hints)? {
            let mut buf = vec![MaybeUninit::uninit(); 16 << 10];
            let fd = self.open_beneath(&d, DIR_FLAGS, 0, "directory")?;
            read_names(&fd, &d, &mut buf, |n| {
                hinted.insert(n.to_string());
            })?;
        }
        records
            .into_iter()
            .map(|rec| {
                let state = if hinted.contains(&rec.env_id) {
                    self.effective_state(&rec)?
                } else {
                    rec.state
                };
                Ok((rec, state))
            })
            .collect()
    }

    /// Every record, sorted: from the summary when it was made of
    /// `meta/envs/` as it is now, else read one by one (and the summary
    /// saved, when `meta/envs/` has been left alone long enough before
    /// `now` that nothing written meanwhile could hide).
    fn list_records(&self, now: i128) -> Result<Vec<EnvRecord>> {
        let dir = self.root().join("meta").join(META_DIR);
        let Some(dir) = self.existing_dir(&dir)? else {
            return Ok(Vec::new());
        };
        let meta = self.open_beneath(&dir, DIR_FLAGS, 0, "directory")?;
        let before = Stamp::of(&meta, &dir)?;
        if let Some(records) = self.read_summary(&before) {
            return Ok(records);
        }
        let mut buf = vec![MaybeUninit::uninit(); 64 << 10];
        let mut ids = Vec::new();
        read_names(&meta, &dir, &mut buf, |n| {
            if let Some(id) = n.strip_suffix(".json") {
                ids.push(id.to_string());
            }
        })?;
        let mut out: Vec<(EnvRecord, Option<Vec<u8>>)> = ids
            .par_iter()
            .map(|id| read_record(&meta, &dir, id))
            .filter_map(|r| r.transpose())
            .collect::<Result<_>>()?;
        out.sort_by(|(a, _), (b, _)| {
            (a.name.as_deref().unwrap_or("~"), &a.env_id).cmp(&(b.name.as_deref().unwrap_or("~"), &b.env_id))
        });
        let settled = before.ctime < now - SETTLED_NS && before.mtime < now - SETTLED_NS;
        if settled && Stamp::of(&meta, &dir)? == before {
            // Only records exactly as Karapace writes them (one line each)
            // are summarised; one reformatted by hand keeps the listing on
            // the records.
            let lines: Option<Vec<&[u8]>> = out.iter().map(|(_, b)| b.as_deref()).collect();
            if let Some(lines) = lines {
                let body = lines.concat();
                let mut text = before.header(lines.len()).into_bytes();
                text.extend_from_slice(crate::hash::ObjectId::of(&body).to_hex().as_bytes());
                text.push(b'\n');
                text.extend_from_slice(&body);
                // A cache: a store this user may not write lists all the same.
                let _ = self.write_cache(&self.root().join(SUMMARY), &text);
            }
        }
        Ok(out.into_iter().map(|(rec, _)| rec).collect())
    }

    /// The records in the summary, if it is whole and was made of
    /// `meta/envs/` as `now` finds it; anything else (missing, torn,
    /// edited, stale) is `None`, and the records are read instead.
    fn read_summary(&self, now: &Stamp) -> Option<Vec<EnvRecord>> {
        let path = self.root().join(SUMMARY);
        let fd = self.open_beneath(&path, OFlags::RDONLY, 0, "file").ok()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut bytes).ok()?;
        let (head, body) = bytes.split_at(bytes.iter().position(|&b| b == b'\n')? + 1);
        let lines: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').collect();
        let sum = head
            .strip_prefix(now.header(lines.len()).as_bytes())?
            .strip_suffix(b"\n")?;
        if crate::hash::ObjectId::of(body).to_hex().as_bytes() != sum {
            return None;
        }
        // Parsed on this thread: parallel threads' allocator arenas cost
        // more system calls (mprotect as they grow) than the parse they share.
        lines
            .iter()
            .map(|line| EnvRecord::from_summary_line(line, &path))
            .collect::<Option<Vec<_>>>()
    }

    /// What `meta/envs/` holds, against the summary: `Some(false)` when the
    /// summary passes for current but its records are not the records (one
    /// edited in place, which moves no directory time on), `Some(true)`
    /// when it agrees, `None` when there is no current summary.
    pub fn summary_agrees(&self) -> Result<Option<bool>> {
        let dir = self.root().join("meta").join(META_DIR);
        let Some(dir) = self.existing_dir(&dir)? else {
            return Ok(None);
        };
        let meta = self.open_beneath(&dir, DIR_FLAGS, 0, "directory")?;
        let Some(summary) = self.read_summary(&Stamp::of(&meta, &dir)?) else {
            return Ok(None);
        };
        Ok(Some(summary == self.list_envs()?))
    }

    /// Removes the summary (`doctor --fix`); the next `list` writes it again.
    pub fn remove_summary(&self) -> Result<()> {
        let path = self.root().join(SUMMARY);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::store("remove", &path)(e)),
            _ => Ok(()),
        }
    }
}

/// `meta/envs/<id>.json`, opened beneath `meta` (open on that directory):
/// one open, one read for a record of the usual size, one close. With the
/// record, its bytes when they are exactly as Karapace writes them.
fn read_record(meta: &OwnedFd, dir: &Path, id: &str) -> Result<Option<(EnvRecord, Option<Vec<u8>>)>> {
    let name = format!("{id}.json");
    let path = dir.join(&name);
    let fd = match rustix::fs::openat(
        meta,
        &name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(Error::store("open", &path)(e.into())),
    };
    // One buffer per thread, grown to the largest record seen and never
    // cleared byte by byte: records are read into its spare capacity.
    thread_local!(static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(8 << 10)));
    BUF.with_borrow_mut(|bytes| {
        bytes.clear();
        loop {
            let n = match rustix::io::read(&fd, spare_capacity(bytes)) {
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::store("read", &path)(e.into())),
            };
            // A read that did not fill the spare room reached the end of this
            // regular file; one that did may have more. A record read short
            // for any reason fails its checksum rather than pass as another.
            if n == 0 || bytes.len() < bytes.capacity() {
                break;
            }
            bytes.reserve(bytes.capacity());
        }
        match crate::meta::canonical_body(bytes) {
            Some(body) => Ok(Some((
                EnvRecord::from_canonical_body(body, &path)?,
                Some(bytes.clone()),
            ))),
            None => Ok(Some((EnvRecord::from_meta_bytes(bytes, &path)?, None))),
        }
    })
}

/// Calls `each` with the name of every entry of the directory open as `fd`
/// but `.` and `..`.
fn read_names(fd: &OwnedFd, dir: &Path, buf: &mut [MaybeUninit<u8>], mut each: impl FnMut(&str)) -> Result<()> {
    let mut entries = RawDir::new(fd.as_fd(), buf);
    while let Some(e) = entries.next() {
        let e = e.map_err(|e| Error::store("read directory", dir)(e.into()))?;
        match e.file_name().to_str() {
            Ok("." | "..") | Err(_) => {}
            Ok(n) => each(n),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(store: &Store, seed: &str, name: Option<&str>) -> EnvRecord {
        let r = EnvRecord::new(crate::ObjectId::of(seed.as_bytes()).to_hex(), name.map(String::from));
        store.write_env(&r).unwrap();
        r
    }

    fn ids(rows: &[(EnvRecord, State)]) -> Vec<(Option<String>, String)> {
        rows.iter().map(|(r, _)| (r.name.clone(), r.env_id.clone())).collect()
    }

    /// The summary is saved only once `meta/envs/` has been left alone,
    /// is read while that directory is unchanged, and gives way to the
    /// records as soon as one is written (what a crash between a record's
    /// write and the next `list` leaves) or the summary is damaged.
    #[test]
    fn summary_is_saved_when_settled_and_follows_every_record_write() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        let summary = dir.path().join(SUMMARY);
        rec(&store, "a", Some("web"));
        let b = rec(&store, "b", None);
        rec(&store, "c", Some("db"));
        let now = now_ns();
        let first = store.list_envs_with_state_at(now).unwrap();
        assert!(!summary.exists(), "meta/envs/ just changed: nothing saved");
        let later = now + 2 * SETTLED_NS;
        assert_eq!(ids(&store.list_envs_with_state_at(later).unwrap()), ids(&first));
        assert!(summary.exists());
        assert_eq!(store.summary_agrees().unwrap(), Some(true));

        // A record rewritten in place (no rename: meta/envs/ unchanged)
        // is not seen while the summary stands: doctor finds it.
        let path = store.meta_path(&format!("{META_DIR}/{}", b.env_id)).unwrap();
        let mut renamed = b.clone();
        renamed.name = Some("zz".into());
        store.write_env(&renamed).unwrap();
        let renamed_bytes = std::fs::read(&path).unwrap();
        store.write_env(&b).unwrap();
        assert_eq!(store.list_envs_with_state_at(later + 2 * SETTLED_NS).unwrap().len(), 3);
        std::fs::write(&path, &renamed_bytes).unwrap();
        let stale = store.list_envs_with_state_at(later).unwrap();
        assert_eq!(ids(&stale), ids(&first), "the summary is what list read");
        assert_eq!(store.summary_agrees().unwrap(), Some(false));
        store.remove_summary().unwrap();
        let fresh = store.list_envs_with_state_at(later + 4 * SETTLED_NS).unwrap();
        assert!(fresh.iter().any(|(r, _)| r.name.as_deref() == Some("zz")));
        assert_eq!(store.summary_agrees().unwrap(), Some(true));

        // Any record written (by rename, as every writer does) is seen at
        // once, summary or not.
        rec(&store, "d", Some("new"));
        let rows = store.list_envs_with_state_at(later + 4 * SETTLED_NS).unwrap();
        assert!(rows.iter().any(|(r, _)| r.name.as_deref() == Some("new")));
        assert_eq!(rows.len(), 4);

        // A damaged summary is never believed.
        let rows = ids(&store.list_envs_with_state_at(later + 6 * SETTLED_NS).unwrap());
        let text = std::fs::read(&summary).unwrap();
        std::fs::write(&summary, &text[..text.len() - 10]).unwrap();
        assert_eq!(ids(&store.list_envs_with_state_at(now_ns()).unwrap()), rows);
        let mut lines: Vec<&[u8]> = text.split_inclusive(|&c| c == b'\n').collect();
        lines.pop();
        std::fs::write(&summary, lines.concat()).unwrap();
        assert_eq!(ids(&store.list_envs_with_state_at(now_ns()).unwrap()), rows);
        assert_eq!(store.summary_agrees().unwrap(), None);
    }
}
