//! The headers of a deterministic tar, written by hand so that every name and
//! link target goes out byte for byte (a tar library normalises paths: it
//! drops `.` components, folds `//`, strips trailing slashes, and wants UTF-8).
//!
//! A member is a POSIX ustar header (docs/cli.md, `export`): a name or target
//! of up to 100 bytes is in the header's field as it is, whatever its bytes; a
//! longer one is a PAX extended header's `path` or `linkpath` record, also as
//! it is. PAX records also carry what a ustar field cannot hold (`size` from
//! 8 GiB, `uid`/`gid` from 2^21) and the caller's extra records (xattrs).

/// A tar block.
pub(crate) const BLOCK: usize = 512;

/// The ustar type flags export writes.
pub(crate) mod kind {
    pub const FILE: u8 = b'0';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub(super) const PAX: u8 = b'x';
}

/// One member's header fields; its data (`size` bytes) follows, then padding.
pub(crate) struct Member<'a> {
    pub path: &'a [u8],
    pub kind: u8,
    pub link: &'a [u8],
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub dev: (u32, u32),
    /// Further PAX records (keyword, value), in the order given.
    pub records: &'a [(Vec<u8>, &'a [u8])],
}

const NAME_LEN: usize = 100;
/// The largest value 7 octal digits (an 8-byte field) hold.
const MAX_OCTAL_7: u64 = 0o7777777;
/// The largest value 11 octal digits (a 12-byte field) hold.
const MAX_OCTAL_11: u64 = 0o77777777777;
/// What the PAX extended header itself is called (as star and the tar crate
/// name theirs); readers use its records, never this name.
const PAX_NAME: &[u8] = b"././@PaxHeader";

/// The blocks before a member's data: a PAX extended header when a name,
/// target or number does not fit its ustar field or there are `records`, then
/// the member's ustar header.
pub(crate) fn headers(m: &Member) -> Vec<u8> {
    let mut pax = Vec::new();
    if m.path.len() > NAME_LEN {
        record(&mut pax, b"path", m.path);
    }
    if m.link.len() > NAME_LEN {
        record(&mut pax, b"linkpath", m.link);
    }
    if m.size > MAX_OCTAL_11 {
        record(&mut pax, b"size", m.size.to_string().as_bytes());
    }
    if u64::from(m.uid) > MAX_OCTAL_7 {
        record(&mut pax, b"uid", m.uid.to_string().as_bytes());
    }
    if u64::from(m.gid) > MAX_OCTAL_7 {
        record(&mut pax, b"gid", m.gid.to_string().as_bytes());
    }
    for (k, v) in m.records {
        record(&mut pax, k, v);
    }
    let mut out = Vec::with_capacity(2 * BLOCK + pax.len());
    if !pax.is_empty() {
        out.extend_from_slice(&ustar(&Member {
            path: PAX_NAME,
            kind: kind::PAX,
            link: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: pax.len() as u64,
            dev: (0, 0),
            records: &[],
        }));
        out.extend_from_slice(&pax);
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    out.extend_from_slice(&ustar(m));
    out
}

/// The zero bytes that fill `size` bytes of data up to a whole block.
pub(crate) fn padding(size: u64) -> usize {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 {
        0
    } else {
        BLOCK - rest
    }
}

/// The end of an archive: two zero blocks.
pub(crate) const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// One PAX record, `LEN KEYWORD=VALUE\n`, where LEN counts the whole record
/// including its own digits.
fn record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let digits = |n: usize| n.to_string().len();
    let mut len = rest + digits(rest);
    if digits(len) > digits(rest) {
        len += 1;
    }
    out.extend_from_slice(format!("{len} ").as_bytes());
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A ustar header block; what does not fit a field is cut (its PAX record
/// holds it) or, for numbers, written as 0.
fn ustar(m: &Member) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let cut = |b: &[u8]| b[..b.len().min(NAME_LEN)].to_vec();
    h[0..100][..cut(m.path).len()].copy_from_slice(&cut(m.path));
    octal(&mut h[100..108], u64::from(m.mode));
    octal(&mut h[108..116], fit(u64::from(m.uid), MAX_OCTAL_7));
    octal(&mut h[116..124], fit(u64::from(m.gid), MAX_OCTAL_7));
    octal(&mut h[124..136], fit(m.size, MAX_OCTAL_11));
    octal(&mut h[136..148], 0);
    h[156] = m.kind;
    h[157..257][..cut(m.link).len()].copy_from_slice(&cut(m.link));
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], u64::from(m.dev.0));
    octal(&mut h[337..345], u64::from(m.dev.1));
    // The checksum is summed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

fn fit(n: u64, max: u64) -> u64 {
    if n > max {
        0
    } else {
        n
    }
}

/// Zero-padded octal digits filling the field but its last byte, a NUL.
fn octal(field: &mut [u8], n: u64) {
    let w = field.len() - 1;
    field[..w].copy_from_slice(format!("{n:0w$o}").as_bytes());
    field[w] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn member<'a>(path: &'a [u8], kind: u8, link: &'a [u8], size: u64) -> Member<'a> {
        Member {
            path,
            kind,
            link,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size,
            dev: (0, 0),
            records: &[],
        }
    }

    /// A member as the tar crate reads it back: path, link, uid, size, data.
    type ReadBack = (Vec<u8>, Vec<u8>, u64, u64, Vec<u8>);

    fn read_back(bytes: &[u8]) -> Vec<ReadBack> {
        let mut a = tar::Archive::new(bytes);
        let mut out = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path_bytes().into_owned();
            let link = e.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
            let (uid, size) = (e.header().uid().unwrap(), e.size());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((path, link, uid, size, data));
        }
        out
    }

    fn archive(members: &[(Member, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (m, data) in members {
            out.extend_from_slice(&headers(m));
            out.extend_from_slice(data);
            out.resize(out.len() + padding(data.len() as u64), 0);
        }
        out.extend_from_slice(&END);
        out
    }

    #[test]
    fn names_and_targets_go_out_as_they_are() {
        let long_name = [b"d/".as_slice(), &[b'n'; 150], b"\xff"].concat();
        let long_link = [b"..//x/./".as_slice(), &[0xfe; 300], b"/"].concat();
        let hundred = [b'h'; 100];
        let members = [
            (member(b"caf\xe9", kind::FILE, b"", 3), b"abc".as_slice()),
            (member(b"l", kind::SYMLINK, b"a//b/./../c/", 0), b"".as_slice()),
            (member(&long_name, kind::SYMLINK, &long_link, 0), b"".as_slice()),
            (member(&hundred, kind::SYMLINK, &hundred, 0), b"".as_slice()),
            (member(b"dir/", kind::DIR, b"", 0), b"".as_slice()),
        ];
        let got = read_back(&archive(&members));
        let want: Vec<(&[u8], &[u8])> = vec![
            (b"caf\xe9", b""),
            (b"l", b"a//b/./../c/"),
            (&long_name, &long_link),
            (&hundred, &hundred),
            (b"dir/", b""),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.0.as_slice(), g.1.as_slice()), *w);
        }
        assert_eq!(got[0].4, b"abc");
    }

    #[test]
    fn numbers_past_their_fields_are_pax_records() {
        let mut m = member(b"f", kind::FILE, b"", 0);
        m.uid = 3_000_000;
        let xattr = [(b"SCHILY.xattr.user.k".to_vec(), b"v=\0\xff".as_slice())];
        m.records = &xattr;
        let bytes = archive(&[(m, b"")]);
        assert_eq!(read_back(&bytes)[0].2, 3_000_000);
        let mut a = tar::Archive::new(bytes.as_slice());
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        let pax: Vec<(String, Vec<u8>)> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|x| {
                let x = x.unwrap();
                (x.key().unwrap().to_string(), x.value_bytes().to_vec())
            })
            .collect();
        assert!(pax.contains(&("SCHILY.xattr.user.k".to_string(), b"v=\0\xff".to_vec())));
    }

    #[test]
    fn record_lengths_count_their_own_digits() {
        for n in 0..300 {
            let mut out = Vec::new();
            record(&mut out, b"k", &vec![b'v'; n]);
            let (len, _) = std::str::from_utf8(&out[..out.iter().position(|b| *b == b' ').unwrap()])
                .map(|s| (s.parse::<usize>().unwrap(), ()))
                .unwrap();
            assert_eq!(len, out.len(), "value of {n} bytes");
        }
    }
}
