//! The quarantine: a directory under `tmp/` that packs are read into. Every
//! object is hashed (and a tree, layer or environment parsed) before it is
//! kept there; [`Quarantine::publish`] moves them into the store only once
//! each names nothing that is neither in the quarantine nor in the store,
//! children before parents. Dropped unpublished, it removes everything.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::{Error, PackReader, Result};
use crate::hash::ObjectId;
use crate::object::Kind;
use crate::store::{Store, WriteGuard};

/// What unpacking did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Objects read from packs.
    pub objects: u64,
    /// Their bytes, uncompressed.
    pub bytes: u64,
    /// Of those, objects the store or the quarantine already had.
    pub present: u64,
}

pub struct Quarantine<'a> {
    store: &'a Store,
    dir: tempfile::TempDir,
    /// Every object held, with what it names (nothing for blobs).
    held: HashMap<(Kind, ObjectId), Vec<(Kind, ObjectId)>>,
    stats: UnpackStats,
    // Holds gc off the temporary directory and the objects until they are named.
    _guard: WriteGuard,
}

impl<'a> Quarantine<'a> {
    pub fn new(store: &'a Store) -> Result<Quarantine<'a>> {
        let guard = store.write_guard()?;
        Ok(Quarantine {
            store,
            dir: store.temp_dir()?,
            held: HashMap::new(),
            stats: UnpackStats::default(),
            _guard: guard,
        })
    }

    /// The quarantine or the store has the object.
    pub fn has(&self, kind: Kind, id: &ObjectId) -> bool {
        self.held.contains_key(&(kind, *id)) || self.store.has(kind, id)
    }

    /// What a held object names.
    pub fn children_of(&self, kind: Kind, id: &ObjectId) -> Option<&[(Kind, ObjectId)]> {
        self.held.get(&(kind, *id)).map(Vec::as_slice)
    }

    pub fn stats(&self) -> UnpackStats {
        self.stats
    }

    fn file(&self, kind: Kind, id: &ObjectId) -> PathBuf {
        self.dir.path().join(format!("{id}.{kind}"))
    }

    /// Reads a whole pack into the quarantine; returns the objects it
    /// carried. Any error leaves the quarantine unusable for publishing
    /// (the caller drops it).
    pub fn add_pack(&mut self, r: impl Read) -> Result<Vec<(Kind, ObjectId)>> {
        let mut pack = PackReader::new(r)?;
        let mut got = Vec::new();
        while let Some(h) = pack.next()? {
            let present = self.has(h.kind, &h.id);
            let path = self.file(h.kind, &h.id);
            let children = {
                let body = pack.body(h.len);
                if h.kind == Kind::Blob {
                    self.take_blob(body, &h, present, &path)?;
                    Vec::new()
                } else {
                    self.take_meta(body, &h, present, &path)?
                }
            };
            self.stats.objects += 1;
            self.stats.bytes += h.len;
            if present {
                self.stats.present += 1;
            } else {
                self.held.insert((h.kind, h.id), children);
            }
            got.push((h.kind, h.id));
        }
        Ok(got)
    }

    fn take_blob(&self, mut body: impl Read, h: &super::Header, present: bool, path: &PathBuf) -> Result<()> {
        let mut hasher = blake3::Hasher::new();
        let mut out = if present {
            None
        } else {
            Some(File::create(path).map_err(|e| Error::Store(crate::store::Error::store("create", path)(e)))?)
        };
        let mut buf = vec![0u8; 256 << 10];
        let mut n = 0u64;
        loop {
            let k = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(super::truncated(e)),
            };
            hasher.update(&buf[..k]);
            if let Some(f) = out.as_mut() {
                f.write_all(&buf[..k])
                    .map_err(|e| Error::Store(crate::store::Error::store("write", path)(e)))?;
            }
            n += k as u64;
        }
        check_len(h, n)?;
        check_id(h, ObjectId::from_bytes(*hasher.finalize().as_bytes()))?;
        if let Some(f) = out {
            crate::store::set_mode(&f, h.mode, path)?;
        }
        Ok(())
    }

    fn take_meta(
        &self,
        mut body: impl Read,
        h: &super::Header,
        present: bool,
        path: &PathBuf,
    ) -> Result<Vec<(Kind, ObjectId)>> {
        let mut data = Vec::with_capacity(h.len.min(1 << 20) as usize);
        body.read_to_end(&mut data).map_err(super::truncated)?;
        check_len(h, data.len() as u64)?;
        check_id(h, ObjectId::of(&data))?;
        let children =
            crate::object::children(h.kind, &data).map_err(|e| Error::Bad(format!("{} {}: {e}", h.kind, h.id)))?;
        if !present {
            let mut f = File::create(path).map_err(|e| Error::Store(crate::store::Error::store("create", path)(e)))?;
            f.write_all(&data)
                .map_err(|e| Error::Store(crate::store::Error::store("write", path)(e)))?;
            crate::store::set_mode(&f, 0o444, path)?;
        }
        Ok(children)
    }

    /// Moves everything held into the store: refuses (publishing nothing)
    /// when a held object names something neither held nor in the store;
    /// otherwise children before parents, with one `syncfs` before the
    /// layers and environments, as every writer does.
    pub fn publish(self) -> Result<UnpackStats> {
        for ((kind, id), children) in &self.held {
            for (ck, cid) in children {
                if !self.has(*ck, cid) {
                    return Err(Error::Bad(format!(
                        "{kind} {id} names {ck} {cid}, which is neither in the pack nor in the store"
                    )));
                }
            }
        }
        let order = self.bottom_up();
        let mut synced = false;
        for (kind, id) in order {
            if matches!(kind, Kind::Layer | Kind::Env) && !synced {
                self.store.sync()?;
                synced = true;
            }
            self.store.adopt(kind, &id, &self.file(kind, &id))?;
        }
        Ok(self.stats)
    }

    /// Held objects, each after everything held that it names.
    fn bottom_up(&self) -> Vec<(Kind, ObjectId)> {
        let mut out = Vec::with_capacity(self.held.len());
        let mut done: HashSet<(Kind, ObjectId)> = HashSet::new();
        let mut keys: Vec<&(Kind, ObjectId)> = self.held.keys().collect();
        keys.sort();
        for start in keys {
            if !done.insert(*start) {
                continue;
            }
            let mut stack = vec![(*start, 0usize)];
            while let Some((node, i)) = stack.last_mut() {
                let children = &self.held[node];
                if let Some(c) = children.get(*i) {
                    *i += 1;
                    if self.held.contains_key(c) && done.insert(*c) {
                        stack.push((*c, 0));
                    }
                } else {
                    out.push(*node);
                    stack.pop();
                }
            }
        }
        out
    }
}

fn check_len(h: &super::Header, n: u64) -> Result<()> {
    if n != h.len {
        return Err(Error::Bad("truncated (the stream ends inside an object)".into()));
    }
    Ok(())
}

fn check_id(h: &super::Header, actual: ObjectId) -> Result<()> {
    if actual != h.id {
        return Err(Error::Bad(format!(
            "{} {}: its bytes hash to {actual}; nothing was stored",
            h.kind, h.id
        )));
    }
    Ok(())
}
