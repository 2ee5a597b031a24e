//! Trees: one directory listing each, named by the hash of its canonical bytes.
//!
//! Binary layout (all integers big-endian), documented in docs/store-format.md:
//!
//! ```text
//! "kp-tree 1\n"  u8 flags (bit 0: opaque)  u32 count  entry*
//! entry: u16 name_len  name  u8 type  u32 mode  u32 uid  u32 gid  payload
//!        u16 xattr_count  (u16 name_len name u32 value_len value)*
//! ```

use super::{bad, FormatError};
use crate::hash::{ObjectId, ID_LEN};

pub const MAGIC: &[u8] = b"kp-tree 1\n";
/// Longest file name Linux allows.
pub const MAX_NAME: usize = 255;
/// Longest symlink target Linux allows (PATH_MAX less the terminating NUL).
pub const MAX_TARGET: usize = 4095;
const MAX_XATTR_NAME: usize = 255;
const MAX_XATTR_VALUE: usize = 65536;
const FLAG_OPAQUE: u8 = 1;

/// What an entry is, with what its kind needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file: its content's blob and size.
    File {
        blob: ObjectId,
        size: u64,
    },
    /// A subdirectory: its tree.
    Dir {
        tree: ObjectId,
    },
    /// A symbolic link and its target bytes, kept exactly.
    Symlink {
        target: Vec<u8>,
    },
    /// An overlay whiteout: the name is deleted relative to lower layers.
    Whiteout,
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

impl EntryKind {
    fn code(&self) -> u8 {
        match self {
            EntryKind::File { .. } => 1,
            EntryKind::Dir { .. } => 2,
            EntryKind::Symlink { .. } => 3,
            EntryKind::Whiteout => 4,
            EntryKind::Fifo => 5,
            EntryKind::CharDevice { .. } => 6,
            EntryKind::BlockDevice { .. } => 7,
        }
    }

    /// A short word for listings.
    pub fn word(&self) -> &'static str {
        match self {
            EntryKind::File { .. } => "file",
            EntryKind::Dir { .. } => "dir",
            EntryKind::Symlink { .. } => "symlink",
            EntryKind::Whiteout => "whiteout",
            EntryKind::Fifo => "fifo",
            EntryKind::CharDevice { .. } => "chardev",
            EntryKind::BlockDevice { .. } => "blockdev",
        }
    }

    /// The S_IFMT bits of this kind, as `ls -l` and `stat` show them.
    pub fn type_bits(&self) -> u32 {
        match self {
            EntryKind::File { .. } => 0o100000,
            EntryKind::Dir { .. } => 0o040000,
            EntryKind::Symlink { .. } => 0o120000,
            EntryKind::Whiteout | EntryKind::CharDevice { .. } => 0o020000,
            EntryKind::Fifo => 0o010000,
            EntryKind::BlockDevice { .. } => 0o060000,
        }
    }
}

/// An extended attribute kept with an entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// One name in a directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Sorted by name, unique.
    pub xattrs: Vec<Xattr>,
}

impl Entry {
    /// A whiteout for `name`. Whiteouts carry no metadata: overlayfs ignores it, and
    /// keeping it out makes the same deletion hash the same whoever made it.
    pub fn whiteout(name: Vec<u8>) -> Self {
        Entry {
            name,
            kind: EntryKind::Whiteout,
            mode: 0,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
        }
    }

    /// `mode` with the file-type bits, as `stat` shows it.
    pub fn full_mode(&self) -> u32 {
        self.kind.type_bits() | self.mode
    }
}

/// A directory listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tree {
    /// An opaque directory hides everything lower layers have below it.
    pub opaque: bool,
    /// Sorted by name bytes, unique.
    pub entries: Vec<Entry>,
}

/// Checks a file name as a tree may hold it.
pub fn check_name(name: &[u8]) -> Result<(), FormatError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return bad(format!("entry name length {} outside 1..={MAX_NAME}", name.len()));
    }
    if name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return bad(format!("invalid entry name {:?}", String::from_utf8_lossy(name)));
    }
    Ok(())
}

impl Tree {
    /// Sorts entries and xattrs into canonical order. Duplicates are left for
    /// `serialize` to refuse.
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in &mut self.entries {
            e.xattrs.sort();
        }
    }

    /// Looks up a name.
    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The canonical bytes. Fails on anything `parse` would refuse, so only
    /// canonical trees ever get an id.
    pub fn serialize(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 80);
        out.extend_from_slice(MAGIC);
        out.push(if self.opaque { FLAG_OPAQUE } else { 0 });
        put_u32(&mut out, len_u32(self.entries.len())?);
        let mut prev: Option<&[u8]> = None;
        for e in &self.entries {
            check_name(&e.name)?;
            if let Some(p) = prev {
                if p >= e.name.as_slice() {
                    return bad(format!(
                        "entries not sorted or duplicated at {:?}",
                        String::from_utf8_lossy(&e.name)
                    ));
                }
            }
            prev = Some(&e.name);
            check_meta(e)?;
            put_u16(&mut out, e.name.len() as u16);
            out.extend_from_slice(&e.name);
            out.push(e.kind.code());
            put_u32(&mut out, e.mode);
            put_u32(&mut out, e.uid);
            put_u32(&mut out, e.gid);
            match &e.kind {
                EntryKind::File { blob, size } => {
                    out.extend_from_slice(blob.as_bytes());
                    out.extend_from_slice(&size.to_be_bytes());
                }
                EntryKind::Dir { tree } => out.extend_from_slice(tree.as_bytes()),
                EntryKind::Symlink { target } => {
                    put_u32(&mut out, target.len() as u32);
                    out.extend_from_slice(target);
                }
                EntryKind::Whiteout | EntryKind::Fifo => {}
                EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                    put_u32(&mut out, *major);
                    put_u32(&mut out, *minor);
                }
            }
            put_u16(&mut out, e.xattrs.len() as u16);
            for x in &e.xattrs {
                put_u16(&mut out, x.name.len() as u16);
                out.extend_from_slice(&x.name);
                put_u32(&mut out, x.value.len() as u32);
                out.extend_from_slice(&x.value);
            }
        }
        Ok(out)
    }

    /// Parses canonical bytes; refuses anything that would not serialise back to
    /// exactly the same bytes.
    pub fn parse(data: &[u8]) -> Result<Tree, FormatError> {
        let mut r = Reader { data, pos: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return bad("not a tree (bad magic)");
        }
        let flags = r.u8()?;
        if flags & !FLAG_OPAQUE != 0 {
            return bad(format!("unknown tree flags {flags:#x}"));
        }
        let count = r.u32()? as usize;
        // Every entry takes at least 21 bytes; refuse counts the data cannot hold
        // before reserving memory for them.
        if count > data.len() / 21 {
            return bad(format!("entry count {count} exceeds the object's size"));
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let name_len = r.u16()? as usize;
            let name = r.take(name_len)?.to_vec();
            let code = r.u8()?;
            let mode = r.u32()?;
            let uid = r.u32()?;
            let gid = r.u32()?;
            let kind = match code {
                1 => {
                    let blob = r.id()?;
                    let size = u64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
                    EntryKind::File { blob, size }
                }
                2 => EntryKind::Dir { tree: r.id()? },
                3 => {
                    let len = r.u32()? as usize;
                    EntryKind::Symlink {
                        target: r.take(len)?.to_vec(),
                    }
                }
                4 => EntryKind::Whiteout,
                5 => EntryKind::Fifo,
                6 => EntryKind::CharDevice {
                    major: r.u32()?,
                    minor: r.u32()?,
                },
                7 => EntryKind::BlockDevice {
                    major: r.u32()?,
                    minor: r.u32()?,
                },
                _ => return bad(format!("unknown entry type {code}")),
            };
            let nx = r.u16()? as usize;
            let mut xattrs = Vec::with_capacity(nx.min(64));
            for _ in 0..nx {
                let n = r.u16()? as usize;
                let name = r.take(n)?.to_vec();
                let v = r.u32()? as usize;
                let value = r.take(v)?.to_vec();
                xattrs.push(Xattr { name, value });
            }
            entries.push(Entry {
                name,
                kind,
                mode,
                uid,
                gid,
                xattrs,
            });
        }
        if r.pos != data.len() {
            return bad(format!("{} trailing bytes", data.len() - r.pos));
        }
        let tree = Tree {
            opaque: flags & FLAG_OPAQUE != 0,
            entries,
        };
        // The serialiser is the one definition of canonical; a tree whose bytes it
        // would not reproduce is refused, so one tree never has two ids.
        if tree.serialize()? != data {
            return bad("tree bytes are not canonical");
        }
        Ok(tree)
    }

    /// The ids this tree names, with their kinds.
    pub fn children(&self) -> impl Iterator<Item = (super::Kind, ObjectId)> + '_ {
        self.entries.iter().filter_map(|e| match &e.kind {
            EntryKind::File { blob, .. } => Some((super::Kind::Blob, *blob)),
            EntryKind::Dir { tree } => Some((super::Kind::Tree, *tree)),
            _ => None,
        })
    }
}

fn check_meta(e: &Entry) -> Result<(), FormatError> {
    let name = String::from_utf8_lossy(&e.name);
    if e.mode & !0o7777 != 0 {
        return bad(format!("{name}: mode {:o} has bits outside 07777", e.mode));
    }
    match &e.kind {
        EntryKind::Symlink { target } if target.is_empty() || target.len() > MAX_TARGET => {
            return bad(format!(
                "{name}: symlink target length {} outside 1..={MAX_TARGET}",
                target.len()
            ))
        }
        EntryKind::Symlink { target } if target.contains(&0) => {
            return bad(format!("{name}: symlink target contains NUL"))
        }
        EntryKind::Whiteout if e.mode != 0 || e.uid != 0 || e.gid != 0 || !e.xattrs.is_empty() => {
            return bad(format!("{name}: a whiteout carries no metadata"))
        }
        _ => {}
    }
    let mut prev: Option<&[u8]> = None;
    for x in &e.xattrs {
        if x.name.is_empty() || x.name.len() > MAX_XATTR_NAME || x.name.contains(&0) {
            return bad(format!("{name}: invalid xattr name"));
        }
        if x.value.len() > MAX_XATTR_VALUE {
            return bad(format!("{name}: xattr value longer than {MAX_XATTR_VALUE}"));
        }
        if prev.is_some_and(|p| p >= x.name.as_slice()) {
            return bad(format!("{name}: xattrs not sorted or duplicated"));
        }
        prev = Some(&x.name);
    }
    Ok(())
}

fn len_u32(n: usize) -> Result<u32, FormatError> {
    u32::try_from(n).or_else(|_| bad("too many entries"))
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        match self.data.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => bad(format!("truncated at byte {}", self.pos)),
        }
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn id(&mut self) -> Result<ObjectId, FormatError> {
        Ok(ObjectId::from_bytes(self.take(ID_LEN)?.try_into().expect("32 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0), 1..20)
            .prop_filter("not . or ..", |n| n != b"." && n != b"..")
    }

    fn arb_id() -> impl Strategy<Value = ObjectId> {
        any::<[u8; 32]>().prop_map(ObjectId::from_bytes)
    }

    fn arb_kind() -> impl Strategy<Value = EntryKind> {
        prop_oneof![
            (arb_id(), any::<u64>()).prop_map(|(blob, size)| EntryKind::File { blob, size }),
            arb_id().prop_map(|tree| EntryKind::Dir { tree }),
            proptest::collection::vec(1u8..=255, 1..50).prop_map(|target| EntryKind::Symlink { target }),
            Just(EntryKind::Fifo),
            (any::<u32>(), any::<u32>()).prop_map(|(major, minor)| EntryKind::CharDevice { major, minor }),
            (any::<u32>(), any::<u32>()).prop_map(|(major, minor)| EntryKind::BlockDevice { major, minor }),
        ]
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        let xattrs = proptest::collection::btree_map(
            proptest::collection::vec(1u8..=255, 1..10),
            proptest::collection::vec(any::<u8>(), 0..10),
            0..3,
        );
        (
            arb_name(),
            arb_kind(),
            0u32..=0o7777,
            any::<u32>(),
            any::<u32>(),
            xattrs,
            any::<bool>(),
        )
            .prop_map(|(name, kind, mode, uid, gid, xattrs, whiteout)| {
                if whiteout {
                    return Entry::whiteout(name);
                }
                let xattrs = xattrs.into_iter().map(|(name, value)| Xattr { name, value }).collect();
                Entry {
                    name,
                    kind,
                    mode,
                    uid,
                    gid,
                    xattrs,
                }
            })
    }

    fn arb_tree() -> impl Strategy<Value = Tree> {
        (any::<bool>(), proptest::collection::vec(arb_entry(), 0..12)).prop_map(|(opaque, entries)| {
            let mut t = Tree { opaque, entries };
            t.sort();
            t.entries.dedup_by(|a, b| a.name == b.name);
            t
        })
    }

    proptest! {
        #[test]
        fn round_trip(tree in arb_tree()) {
            let bytes = tree.serialize().unwrap();
            prop_assert_eq!(Tree::parse(&bytes).unwrap(), tree);
        }

        #[test]
        fn same_tree_same_id_whatever_the_insertion_order(tree in arb_tree(), seed in any::<u64>()) {
            let mut shuffled = tree.clone();
            let n = shuffled.entries.len();
            if n > 1 {
                let mut s = seed;
                for i in (1..n).rev() {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    shuffled.entries.swap(i, (s >> 33) as usize % (i + 1));
                }
            }
            shuffled.sort();
            prop_assert_eq!(
                ObjectId::of(&shuffled.serialize().unwrap()),
                ObjectId::of(&tree.serialize().unwrap())
            );
        }

        #[test]
        fn any_change_changes_bytes(tree in arb_tree(), uid in any::<u32>()) {
            prop_assume!(!tree.entries.is_empty() && tree.entries[0].kind != EntryKind::Whiteout);
            let mut other = tree.clone();
            prop_assume!(other.entries[0].uid != uid);
            other.entries[0].uid = uid;
            prop_assert_ne!(other.serialize().unwrap(), tree.serialize().unwrap());
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&data);
            let _ = Tree::parse(&bytes);
        }
    }

    #[test]
    fn refuses_unsorted_and_duplicates() {
        let e = |n: &[u8]| Entry {
            name: n.to_vec(),
            kind: EntryKind::Fifo,
            mode: 0o644,
            uid: 0,
            gid: 0,
            xattrs: vec![],
        };
        let t = Tree {
            opaque: false,
            entries: vec![e(b"b"), e(b"a")],
        };
        assert!(t.serialize().is_err());
        let t = Tree {
            opaque: false,
            entries: vec![e(b"a"), e(b"a")],
        };
        assert!(t.serialize().is_err());
        let t = Tree {
            opaque: false,
            entries: vec![e(b"..")],
        };
        assert!(t.serialize().is_err());
    }

    #[test]
    fn refuses_trailing_and_truncated() {
        let t = Tree {
            opaque: true,
            entries: vec![Entry::whiteout(b"gone".to_vec())],
        };
        let mut bytes = t.serialize().unwrap();
        assert_eq!(Tree::parse(&bytes).unwrap(), t);
        bytes.push(0);
        assert!(Tree::parse(&bytes).is_err());
        bytes.truncate(bytes.len() - 3);
        assert!(Tree::parse(&bytes).is_err());
    }
}
