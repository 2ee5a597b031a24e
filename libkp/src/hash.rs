//! Object ids and hashing.
//!
//! An object id is the BLAKE3 hash of the object's bytes. For blobs those bytes are
//! the file's content and nothing else, so an id equals what `b3sum` prints.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Length of an id in bytes (BLAKE3's default output).
pub const ID_LEN: usize = 32;
/// Length of an id in hex digits.
pub const HEX_LEN: usize = ID_LEN * 2;

/// Files at least this large are hashed with several threads.
const PARALLEL_MIN: u64 = 1 << 20;
/// Large files are mapped one window at a time, so resident memory stays flat in
/// the file's size (a whole-file map, as b3sum uses, counts every page of the
/// file as resident). The pages are clean page cache, not allocations. Smaller
/// windows cost throughput: each map and unmap is serial work between parallel
/// hashing (measured on 2 cores: 64 MiB 0.82x b3sum, 128 MiB 0.89x, 256 MiB 0.98x).
const WINDOW: u64 = 256 << 20;
const LEAN_WINDOW: u64 = 32 << 20;

/// The name of an object: 32 bytes, shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; ID_LEN]);

impl ObjectId {
    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        ObjectId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// The id of `data`.
    pub fn of(data: &[u8]) -> Self {
        ObjectId(*blake3::hash(data).as_bytes())
    }

    /// Parses exactly 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != HEX_LEN {
            return None;
        }
        let mut out = [0u8; ID_LEN];
        let bytes = s.as_bytes();
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = (hex_val(bytes[2 * i])? << 4) | hex_val(bytes[2 * i + 1])?;
        }
        Some(ObjectId(out))
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The first `n` hex digits, as short ids are shown.
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_hex();
        s.truncate(n.min(HEX_LEN));
        s
    }
}

/// `bytes` as lowercase hex: the one encoder (object ids, sha256 sums).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// True when `s` is a non-empty string of hex digits.
pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| hex_val(c).is_some())
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.len() == HEX_LEN && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(ObjectId::from_hex(&s).expect("checked hex"))
        } else {
            Err(serde::de::Error::custom(format!(
                "expected 64 lowercase hex digits, found {s:?}"
            )))
        }
    }
}

/// Hashes an open file, fast: large files a 256 MiB window at a time.
pub fn hash_file(file: &File) -> io::Result<(ObjectId, u64)> {
    hash_file_windowed(file, WINDOW)
}

/// Hashes an open file with at most 32 MiB of it mapped: what storing files
/// uses, where the disk sets the pace and the memory a commit holds matters.
pub fn hash_file_lean(file: &File) -> io::Result<(ObjectId, u64)> {
    hash_file_windowed(file, LEAN_WINDOW)
}

/// Hashes an open file from its start to its end; returns the id and the number
/// of bytes hashed.
fn hash_file_windowed(file: &File, window: u64) -> io::Result<(ObjectId, u64)> {
    let len = file.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    if len < PARALLEL_MIN {
        let n = hash_reader_into(&mut hasher, file)?;
        return Ok((ObjectId(*hasher.finalize().as_bytes()), n));
    }
    let mut offset = 0u64;
    while offset < len {
        let size = window.min(len - offset) as usize;
        let map = crate::sys::map_readonly(file, offset, size)?;
        hasher.update_rayon(&map);
        offset += size as u64;
    }
    // Pick up anything appended after we read the length.
    let mut rest = file;
    io::Seek::seek(&mut rest, io::SeekFrom::Start(offset))?;
    offset += hash_reader_into(&mut hasher, rest)?;
    Ok((ObjectId(*hasher.finalize().as_bytes()), offset))
}

/// Hashes a path (following nothing: the caller passes a regular file).
pub fn hash_path(path: &Path) -> io::Result<(ObjectId, u64)> {
    hash_file(&open_nofollow(path)?)
}

/// [`hash_path`] with [`hash_file_lean`]'s window.
pub fn hash_path_lean(path: &Path) -> io::Result<(ObjectId, u64)> {
    hash_file_lean(&open_nofollow(path)?)
}

/// Opens a file for reading, failing (ELOOP) when the path is a symlink: a
/// file of an environment's writable layer that its software turns into a
/// symlink between our `lstat` and this open is never read through.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Hashes everything a reader yields.
pub fn hash_reader(reader: impl Read) -> io::Result<(ObjectId, u64)> {
    let mut hasher = blake3::Hasher::new();
    let n = hash_reader_into(&mut hasher, reader)?;
    Ok((ObjectId(*hasher.finalize().as_bytes()), n))
}

fn hash_reader_into(hasher: &mut blake3::Hasher, reader: impl Read) -> io::Result<u64> {
    thread_local! {
        // One buffer per thread: a fresh zeroed 256 KiB per small file cost
        // more than hashing the file.
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 256 << 10]);
    }
    BUF.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => hash_reader_with(hasher, reader, &mut buf),
        // Re-entered (a reader that hashes): use a buffer of its own.
        Err(_) => hash_reader_with(hasher, reader, &mut vec![0u8; 64 << 10]),
    })
}

fn hash_reader_with(hasher: &mut blake3::Hasher, mut reader: impl Read, buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_blob_matches_b3sum() {
        // b3sum < /dev/null
        assert_eq!(
            ObjectId::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let id = ObjectId::of(b"hello");
        assert_eq!(ObjectId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(ObjectId::from_hex(&id.to_hex().to_uppercase()), Some(id));
        assert_eq!(ObjectId::from_hex("abc"), None);
        assert_eq!(ObjectId::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn file_hash_equals_memory_hash_across_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(3 << 20) + 123).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let (id, n) = hash_path(&path).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(id, ObjectId::of(&data));
    }
}
