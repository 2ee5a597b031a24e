//! Packs: a stream of store objects, zstd-compressed and self-verifying
//! (docs/pack-format.md). [`write_pack`] streams objects out of a store;
//! [`Quarantine`] reads packs into a directory under `tmp/`, hashing and
//! parsing every object before it is kept, and publishes into the store only
//! when everything it holds names only objects it or the store has, bottom-up,
//! so a failed, truncated or lying pack publishes nothing. [`negotiate`] finds
//! what one side lacks, top-down, asking about a tree's children only when
//! the tree itself is lacking (a present object implies everything below it).

mod quarantine;

pub use quarantine::{Quarantine, UnpackStats};

use std::collections::HashSet;
use std::io::{self, Read, Write};

use crate::hash::ObjectId;
use crate::object::Kind;
use crate::store::Store;

/// The pack's first bytes, before the compressed stream.
pub const MAGIC: &[u8] = b"kp-pack 1\n";
/// Largest tree, layer or environment object a pack may carry (they are read
/// into memory to be parsed).
pub const MAX_META: u64 = 64 << 20;
/// Largest blob a pack may carry.
pub const MAX_BLOB: u64 = 1 << 40;
/// The zstd window a reader accepts (2^27 = 128 MiB): bounds its memory.
const WINDOW_LOG_MAX: u32 = 27;

/// What went wrong with a pack.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// The pack is malformed, truncated or lies about an object.
    #[error("bad pack: {0}")]
    Bad(String),
    /// The stream the pack comes from failed.
    #[error("reading the pack: {0}")]
    Read(io::Error),
    /// The stream the pack goes to failed.
    #[error("writing the pack: {0}")]
    Write(io::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Store(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Blob => 1,
        Kind::Tree => 2,
        Kind::Layer => 3,
        Kind::Env => 4,
    }
}

fn byte_kind(b: u8) -> Option<Kind> {
    Some(match b {
        1 => Kind::Blob,
        2 => Kind::Tree,
        3 => Kind::Layer,
        4 => Kind::Env,
        _ => return None,
    })
}

/// What a pack carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackStats {
    pub objects: u64,
    /// Object bytes, before compression.
    pub bytes: u64,
}

/// Writes `objects` (each present in `store`) as a pack to `out`.
pub fn write_pack(store: &Store, objects: &[(Kind, ObjectId)], out: impl Write) -> Result<PackStats> {
    let mut out = out;
    out.write_all(MAGIC).map_err(Error::Write)?;
    let mut z = zstd::stream::write::Encoder::new(out, 3).map_err(Error::Write)?;
    let mut stats = PackStats::default();
    for (kind, id) in objects {
        let path = store.object_path(*kind, id);
        let mut file = std::fs::File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::Store(crate::store::Error::Missing { kind: *kind, id: *id }),
            _ => Error::Store(crate::store::Error::store("open", &path)(e)),
        })?;
        let meta = file
            .metadata()
            .map_err(|e| Error::Store(crate::store::Error::store("stat", &path)(e)))?;
        let mode = if *kind == Kind::Blob {
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777
        } else {
            0
        };
        let len = meta.len();
        let mut head = Vec::with_capacity(45);
        head.push(kind_byte(*kind));
        head.extend_from_slice(id.as_bytes());
        head.extend_from_slice(&mode.to_be_bytes());
        head.extend_from_slice(&len.to_be_bytes());
        z.write_all(&head).map_err(Error::Write)?;
        // Exactly `len` bytes: an object that changed size behind the store's
        // back would otherwise desynchronise the stream.
        let copied = io::copy(&mut (&mut file).take(len), &mut z).map_err(Error::Write)?;
        if copied != len {
            return Err(Error::Store(crate::store::Error::Corrupt {
                kind: *kind,
                id: *id,
                path,
                reason: "shorter than when it was listed".into(),
            }));
        }
        stats.objects += 1;
        stats.bytes += len;
    }
    z.write_all(&[0]).map_err(Error::Write)?;
    z.write_all(&stats.objects.to_be_bytes()).map_err(Error::Write)?;
    let mut out = z.finish().map_err(Error::Write)?;
    out.flush().map_err(Error::Write)?;
    Ok(stats)
}

/// One object header read from a pack.
pub(crate) struct Header {
    pub kind: Kind,
    pub id: ObjectId,
    pub mode: u32,
    pub len: u64,
}

/// Reads a pack's entries one at a time; the caller consumes each entry's
/// bytes before asking for the next.
pub(crate) struct PackReader<R: Read> {
    z: zstd::stream::read::Decoder<'static, io::BufReader<R>>,
    count: u64,
}

fn truncated(e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Error::Bad("truncated (the stream ends inside the pack)".into())
    } else {
        Error::Read(e)
    }
}

impl<R: Read> PackReader<R> {
    pub fn new(mut r: R) -> Result<Self> {
        let mut magic = [0u8; MAGIC.len()];
        r.read_exact(&mut magic).map_err(truncated)?;
        if magic != MAGIC {
            return Err(Error::Bad("not a pack (it does not begin with \"kp-pack 1\")".into()));
        }
        let mut z = zstd::stream::read::Decoder::new(r).map_err(Error::Read)?;
        z.window_log_max(WINDOW_LOG_MAX).map_err(Error::Read)?;
        Ok(PackReader {
            z: z.single_frame(),
            count: 0,
        })
    }

    /// The next entry's header, `None` at the end marker (whose count is checked).
    pub fn next(&mut self) -> Result<Option<Header>> {
        let mut k = [0u8; 1];
        self.z.read_exact(&mut k).map_err(truncated)?;
        if k[0] == 0 {
            let mut n = [0u8; 8];
            self.z.read_exact(&mut n).map_err(truncated)?;
            if u64::from_be_bytes(n) != self.count {
                return Err(Error::Bad(format!(
                    "the end marker counts {} objects, the pack held {}",
                    u64::from_be_bytes(n),
                    self.count
                )));
            }
            let mut rest = [0u8; 1];
            match self.z.read(&mut rest).map_err(truncated)? {
                0 => return Ok(None),
                _ => return Err(Error::Bad("bytes after the end marker".into())),
            }
        }
        let kind = byte_kind(k[0]).ok_or_else(|| Error::Bad(format!("unknown object kind byte {}", k[0])))?;
        let mut h = [0u8; 44];
        self.z.read_exact(&mut h).map_err(truncated)?;
        let id = ObjectId::from_bytes(h[..32].try_into().expect("32 bytes"));
        let mode = u32::from_be_bytes(h[32..36].try_into().expect("4 bytes"));
        let len = u64::from_be_bytes(h[36..44].try_into().expect("8 bytes"));
        let max = if kind == Kind::Blob { MAX_BLOB } else { MAX_META };
        if len > max {
            return Err(Error::Bad(format!("{kind} {id} claims {len} bytes (at most {max})")));
        }
        if kind != Kind::Blob && mode != 0 {
            return Err(Error::Bad(format!("{kind} {id} carries a mode (only blobs do)")));
        }
        if mode & !0o777 != 0 {
            return Err(Error::Bad(format!(
                "blob {id} has mode {mode:o} (permission bits only)"
            )));
        }
        self.count += 1;
        Ok(Some(Header { kind, id, mode, len }))
    }

    /// The current entry's bytes, exactly `len` of them.
    pub fn body(&mut self, len: u64) -> impl Read + '_ {
        (&mut self.z).take(len)
    }
}

/// Finds what the other side lacks of everything `roots` reach, top-down:
/// `lacks` says for a batch of objects which the other side lacks, and
/// `children` gives what each lacking object names. An object the other side
/// has is not looked into (a present object implies its whole closure,
/// docs/store-format.md). Returns the lacking objects, roots first; one call
/// of each function per level of the walk.
pub fn negotiate<E>(
    roots: &[(Kind, ObjectId)],
    mut lacks: impl FnMut(&[(Kind, ObjectId)]) -> Result<Vec<bool>, E>,
    mut children: impl FnMut(&[(Kind, ObjectId)]) -> Result<Vec<(Kind, ObjectId)>, E>,
) -> Result<Vec<(Kind, ObjectId)>, E> {
    let mut seen: HashSet<(Kind, ObjectId)> = HashSet::new();
    let mut frontier: Vec<(Kind, ObjectId)> = roots.iter().copied().filter(|o| seen.insert(*o)).collect();
    let mut out = Vec::new();
    while !frontier.is_empty() {
        let answer = lacks(&frontier)?;
        let lacking: Vec<(Kind, ObjectId)> = frontier
            .iter()
            .zip(answer)
            .filter_map(|(o, lack)| lack.then_some(*o))
            .collect();
        let inner: Vec<(Kind, ObjectId)> = lacking.iter().copied().filter(|(k, _)| *k != Kind::Blob).collect();
        out.extend_from_slice(&lacking);
        frontier = if inner.is_empty() {
            Vec::new()
        } else {
            children(&inner)?.into_iter().filter(|o| seen.insert(*o)).collect()
        };
    }
    Ok(out)
}

/// What `roots` reach in `store` that `haves` (and so everything they
/// reach) do not: the objects a pack for someone holding `haves` carries.
pub fn objects_for(
    store: &Store,
    roots: &[(Kind, ObjectId)],
    haves: &[(Kind, ObjectId)],
) -> Result<Vec<(Kind, ObjectId)>> {
    let mut had: HashSet<(Kind, ObjectId)> = HashSet::new();
    let mut stack = haves.to_vec();
    while let Some(o) = stack.pop() {
        if had.insert(o) {
            stack.extend(store.children(o.0, &o.1)?);
        }
    }
    negotiate(
        roots,
        |batch| Ok(batch.iter().map(|o| !had.contains(o)).collect()),
        |batch| {
            let mut out = Vec::new();
            for (k, id) in batch {
                out.extend(store.children(*k, id)?);
            }
            Ok(out)
        },
    )
}

/// Everything `root` reaches is in `store` (what a ref may name): the first
/// object missing, if any.
pub fn first_missing(store: &Store, root: (Kind, ObjectId)) -> Result<Option<(Kind, ObjectId)>> {
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some((kind, id)) = stack.pop() {
        if !seen.insert((kind, id)) {
            continue;
        }
        if !store.has(kind, &id) {
            return Ok(Some((kind, id)));
        }
        stack.extend(store.children(kind, &id)?);
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
