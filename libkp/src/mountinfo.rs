//! `/proc/self/mountinfo`, read one way: the fields Karapace uses, with the
//! kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
//! backslash) decoded, so paths with spaces work.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// The mounted directory of its file system (field 4).
    pub root: PathBuf,
    /// Where it is mounted (field 5).
    pub mount_point: PathBuf,
    /// The file system type (first field after ` - `).
    pub fs_type: String,
}

/// The mounts listed in `text`; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            Some(MountEntry {
                root: unescape(f.get(3)?),
                mount_point: unescape(f.get(4)?),
                fs_type: right.split(' ').next()?.to_string(),
            })
        })
        .collect()
}

/// A mountinfo field with its `\NNN` octal escapes decoded.
pub fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// The caller's cgroup v2 directory, from `/proc/self/cgroup` and the
/// mountinfo; the reason when there is none.
pub fn own_cgroup() -> Result<PathBuf, String> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"));
    let cg = read("/proc/self/cgroup")?;
    let rel = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2 hierarchy")?;
    cgroup_dir(rel, &parse(&read("/proc/self/mountinfo")?)).ok_or_else(|| "no cgroup v2 file system is mounted".into())
}

/// Where the cgroup `rel` (as `/proc/self/cgroup` names it) is, among `mounts`.
fn cgroup_dir(rel: &str, mounts: &[MountEntry]) -> Option<PathBuf> {
    mounts.iter().filter(|m| m.fs_type == "cgroup2").find_map(|m| {
        let inner = Path::new(rel).strip_prefix(&m.root).ok()?;
        Some(m.mount_point.join(inner))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cgroups() {
        let text = "\
36 25 0:31 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw
40 25 8:1 /data\\040dir /mnt/my\\040disk\\011x\\134y rw - ext4 /dev/sda1 rw
bad line
";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].root, Path::new("/data dir"));
        assert_eq!(m[1].mount_point, Path::new("/mnt/my disk\tx\\y"));
        assert_eq!(m[1].fs_type, "ext4");
        assert_eq!(unescape("a\\04"), Path::new("a\\04"));
        assert_eq!(
            cgroup_dir("/user.slice/a b", &m),
            Some(PathBuf::from("/sys/fs/cgroup/user.slice/a b"))
        );
        let spaced = parse("1 1 0:1 / /run/my\\040cg rw - cgroup2 none rw\n");
        assert_eq!(cgroup_dir("/x", &spaced), Some(PathBuf::from("/run/my cg/x")));
        assert_eq!(cgroup_dir("/x", &m[1..]), None);
    }
}
