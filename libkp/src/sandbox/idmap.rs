//! User and group id maps: a single mapping of the caller's ids, or the
//! caller's subordinate range (/etc/subuid, /etc/subgid) through the setuid
//! helpers newuidmap/newgidmap, so programs inside can own files as other users
//! (dpkg, apt's `_apt`).

use std::fs;
use std::path::Path;
use std::process::Command;

use super::{Error, HostFacts, Result};

/// What the caller asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UidMapMode {
    /// The subordinate range when one is granted and the helpers exist, else single.
    #[default]
    Auto,
    Single,
    Subuid,
}

/// `inside` maps to `outside`, for `count` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Who writes the maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapVia {
    /// The parent writes /proc/PID/{uid,gid}_map itself (an unprivileged caller
    /// may map only its own ids, with setgroups denied; root may map anything).
    Direct,
    /// newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
    Helper,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub uid: Vec<MapRange>,
    pub gid: Vec<MapRange>,
    pub via: MapVia,
    /// Whether setgroups(2) stays allowed inside.
    pub setgroups: bool,
    /// Host root's shifted map: the parent hands the sandbox idmapped mounts
    /// of the root, the layers and the binds, so owners on disk read the same
    /// inside as they would with the identity map (docs/sandbox.md, "Id maps").
    pub idmapped: bool,
}

impl IdMap {
    /// How ids on disk relate to ids inside, as (inside, on disk, count)
    /// ranges: the map itself, except that idmapped mounts undo host root's
    /// shift, so there disk and inside agree.
    pub fn disk_shift(&self) -> crate::layer::IdShift {
        let ranges = |r: &[MapRange]| -> Vec<(u32, u32, u32)> {
            if self.idmapped {
                vec![(0, 0, u32::MAX)]
            } else {
                r.iter().map(|m| (m.inside, m.outside, m.count)).collect()
            }
        };
        crate::layer::IdShift {
            uid: ranges(&self.uid),
            gid: ranges(&self.gid),
        }
    }

    /// The identity over the ids this map gives inside: the map a nested
    /// user namespace gets so that it sees the same owners (exec.rs locks the
    /// sandbox's mounts with one).
    pub fn nested(&self) -> IdMap {
        let same = |r: &[MapRange]| -> Vec<MapRange> {
            r.iter()
                .map(|m| MapRange {
                    inside: m.inside,
                    outside: m.inside,
                    count: m.count,
                })
                .collect()
        };
        IdMap {
            uid: same(&self.uid),
            gid: same(&self.gid),
            via: MapVia::Direct,
            setgroups: true,
            idmapped: false,
        }
    }
}

/// The /etc/subuid and /etc/subgid owner whose range host root's
/// environments run in.
pub const ROOT_RANGE_OWNER: &str = "karapace";
/// How many ids root's environments get (uid 0 to 65535 inside).
pub const ROOT_RANGE_COUNT: u32 = 65536;
/// Where a free range for [`ROOT_RANGE_OWNER`] is looked for: above the
/// ranges useradd hands out (100000 to 600100000 by default).
pub const ROOT_RANGE_FROM: u32 = 1 << 30;

/// Every (start, count) range an /etc/subuid-style file lists, whoever owns it.
fn all_ranges(content: &str) -> Vec<(u64, u64)> {
    content
        .lines()
        .filter_map(|line| {
            let mut f = line.trim().split(':');
            let (_, start, count) = (f.next()?, f.next()?, f.next()?);
            Some((start.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// The first block of [`ROOT_RANGE_COUNT`] ids at or above
/// [`ROOT_RANGE_FROM`], aligned to its size, that no line of `taken` touches.
pub fn free_root_range(taken: &[(u64, u64)]) -> Option<u32> {
    let count = u64::from(ROOT_RANGE_COUNT);
    let mut start = u64::from(ROOT_RANGE_FROM);
    while start + count <= u64::from(u32::MAX) {
        match taken.iter().find(|&&(s, c)| s < start + count && start < s + c) {
            None => return u32::try_from(start).ok(),
            // Past the clash, rounded up to the next aligned block.
            Some(&(s, c)) => start = (s + c).div_ceil(count) * count,
        }
    }
    None
}

/// Host root's range: the [`ROOT_RANGE_OWNER`] entry of both files. When
/// `create` is set and there is none, one is added to both (the same block,
/// free in both), as `usermod --add-subuids` would. Returns the first id.
pub fn root_range(host: &HostFacts, create: bool) -> Result<u32> {
    let read = |path: &Path| fs::read_to_string(path).unwrap_or_default();
    let (uids, gids) = (read(&host.subuid_file), read(&host.subgid_file));
    let found = |text: &str| parse_subid(text, Some(ROOT_RANGE_OWNER), u32::MAX);
    let fix = format!(
        "add `{ROOT_RANGE_OWNER}:START:{ROOT_RANGE_COUNT}` to both files, or run `karapace doctor --fix` as root"
    );
    match (found(&uids), found(&gids)) {
        (Some((u, uc)), Some((g, gc))) if u == g && uc >= ROOT_RANGE_COUNT && gc >= ROOT_RANGE_COUNT => {
            return Ok(u);
        }
        (None, None) => {}
        _ => {
            return Err(Error::IdMap {
                reason: format!(
                    "root's environments need the same range of at least {ROOT_RANGE_COUNT} ids for \
                     {ROOT_RANGE_OWNER} in {} and {}; {fix}",
                    host.subuid_file.display(),
                    host.subgid_file.display()
                ),
            })
        }
    }
    if !create {
        return Err(Error::IdMap {
            reason: format!(
                "no subordinate range for {ROOT_RANGE_OWNER} (root's environments) in {}; {fix}",
                host.subuid_file.display()
            ),
        });
    }
    let mut taken = all_ranges(&uids);
    taken.extend(all_ranges(&gids));
    let start = free_root_range(&taken).ok_or_else(|| Error::IdMap {
        reason: format!(
            "no free block of {ROOT_RANGE_COUNT} ids above {ROOT_RANGE_FROM} in {}",
            host.subuid_file.display()
        ),
    })?;
    let line = format!("{ROOT_RANGE_OWNER}:{start}:{ROOT_RANGE_COUNT}\n");
    for path in [&host.subuid_file, &host.subgid_file] {
        append_line(path, &line).map_err(|e| Error::IdMap {
            reason: format!("cannot add {} to {}: {e}; {fix}", line.trim_end(), path.display()),
        })?;
    }
    crate::log!(
        crate::log::Level::Warn,
        "gave root's environments the ids {start}-{} ({} in {} and {})",
        start + (ROOT_RANGE_COUNT - 1),
        line.trim_end(),
        host.subuid_file.display(),
        host.subgid_file.display()
    );
    Ok(start)
}

/// Appends one line under an exclusive flock (what the shadow tools'
/// readers take), keeping a missing final newline from joining two lines.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().create(true).append(true).read(true).open(path)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
    let text = fs::read_to_string(path)?;
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.write_all(format!("{sep}{line}").as_bytes())?;
    f.sync_all()
}

/// The first subordinate range /etc/subuid-style `content` grants to `user`
/// (by name or numeric id): (start, count).
pub fn parse_subid(content: &str, user: Option<&str>, id: u32) -> Option<(u32, u32)> {
    let id = id.to_string();
    content.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
        if owner != id && Some(owner) != user {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse::<u32>().ok()?);
        (count > 0).then_some((start, count))
    })
}

/// The caller's id at 0 inside, then the subordinate range from 1.
fn with_range(own: u32, (start, count): (u32, u32)) -> Vec<MapRange> {
    vec![
        MapRange {
            inside: 0,
            outside: own,
            count: 1,
        },
        MapRange {
            inside: 1,
            outside: start,
            count,
        },
    ]
}

/// Chooses the maps. The command runs as uid and gid 0 inside.
pub fn choose(mode: UidMapMode, host: &HostFacts) -> Result<IdMap> {
    let single = |uid, gid| IdMap {
        uid: vec![MapRange {
            inside: 0,
            outside: uid,
            count: 1,
        }],
        gid: vec![MapRange {
            inside: 0,
            outside: gid,
            count: 1,
        }],
        via: MapVia::Direct,
        setgroups: false,
        idmapped: false,
    };
    if host.is_host_root() {
        // Root on the host never runs an environment as uid 0: inside 0 is
        // the first id of root's own subordinate range, and idmapped mounts
        // keep the store's owners as they are on disk.
        let start = root_range(host, true)?;
        let count = if mode == UidMapMode::Single {
            1
        } else {
            ROOT_RANGE_COUNT
        };
        let range = vec![MapRange {
            inside: 0,
            outside: start,
            count,
        }];
        return Ok(IdMap {
            uid: range.clone(),
            gid: range,
            via: MapVia::Direct,
            setgroups: true,
            idmapped: true,
        });
    }
    if mode == UidMapMode::Single {
        return Ok(single(host.uid, host.gid));
    }
    if host.uid == 0 && mode == UidMapMode::Auto {
        // Root of a mapped namespace (a rootless command re-run, see
        // rerun.rs) maps the ids that namespace has onto themselves: they are
        // the user's own and its subordinate range already.
        let identity = |extent: &[(u32, u32)]| -> Vec<MapRange> {
            extent
                .iter()
                .map(|&(first, count)| MapRange {
                    inside: first,
                    outside: first,
                    count,
                })
                .collect()
        };
        return Ok(IdMap {
            uid: identity(&host.uid_extent),
            gid: identity(&host.gid_extent),
            via: MapVia::Direct,
            setgroups: true,
            idmapped: false,
        });
    }
    let read = |path: &Path| fs::read_to_string(path).unwrap_or_default();
    let sub_u = parse_subid(&read(&host.subuid_file), host.user.as_deref(), host.uid);
    let sub_g = parse_subid(&read(&host.subgid_file), host.user.as_deref(), host.uid);
    let helpers = host.uid == 0 || host.newuidmap;
    match (sub_u, sub_g) {
        (Some(u), Some(g)) if helpers => Ok(IdMap {
            uid: with_range(host.uid, u),
            gid: with_range(host.gid, g),
            via: if host.uid == 0 { MapVia::Direct } else { MapVia::Helper },
            setgroups: true,
            idmapped: false,
        }),
        _ if mode == UidMapMode::Auto => Ok(single(host.uid, host.gid)),
        (Some(_), Some(_)) => Err(Error::IdMap {
            reason: "newuidmap/newgidmap not found; install the uidmap package".into(),
        }),
        _ => Err(Error::IdMap {
            reason: format!(
                "no subordinate ids for {} in {} and {}",
                host.user.clone().unwrap_or_else(|| host.uid.to_string()),
                host.subuid_file.display(),
                host.subgid_file.display()
            ),
        }),
    }
}

fn map_text(ranges: &[MapRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

/// Writes the maps of process `pid`, which waits in its new user namespace.
pub fn write(pid: i32, map: &IdMap) -> Result<()> {
    match map.via {
        MapVia::Direct => {
            let proc = format!("/proc/{pid}");
            if !map.setgroups {
                let p = format!("{proc}/setgroups");
                fs::write(&p, "deny").map_err(Error::setup("write", p))?;
            }
            for (file, ranges) in [("uid_map", &map.uid), ("gid_map", &map.gid)] {
                let p = format!("{proc}/{file}");
                fs::write(&p, map_text(ranges)).map_err(Error::setup("write", p))?;
            }
            Ok(())
        }
        MapVia::Helper => {
            for (helper, ranges) in [("newuidmap", &map.uid), ("newgidmap", &map.gid)] {
                let mut cmd = Command::new(helper);
                cmd.arg(pid.to_string());
                for r in ranges {
                    cmd.args([r.inside.to_string(), r.outside.to_string(), r.count.to_string()]);
                }
                let out = cmd.output().map_err(Error::setup("run", helper))?;
                if !out.status.success() {
                    return Err(Error::IdMap {
                        reason: format!(
                            "{helper} failed ({}): {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                    });
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_root_range_skips_every_listed_range() {
        assert_eq!(free_root_range(&[]), Some(ROOT_RANGE_FROM));
        let taken = [
            (u64::from(ROOT_RANGE_FROM) + 10, 5),
            (u64::from(ROOT_RANGE_FROM) + 65536, 70000),
        ];
        assert_eq!(free_root_range(&taken), Some(ROOT_RANGE_FROM + 3 * 65536));
        assert_eq!(free_root_range(&[(2147483647, 2147483648), (0, 2147483647)]), None);
    }

    #[test]
    fn subid_lookup_by_name_or_id() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:1:0\n";
        assert_eq!(parse_subid(text, Some("alice"), 1000), Some((100000, 65536)));
        assert_eq!(parse_subid(text, Some("carol"), 1001), Some((200000, 1000)));
        assert_eq!(parse_subid(text, Some("bob"), 1002), None, "empty range is no range");
        assert_eq!(parse_subid("garbage\n", Some("alice"), 1), None);
    }

    fn facts(dir: &Path, uid: u32, helper: bool) -> HostFacts {
        let mut h = HostFacts::for_tests(dir);
        h.uid = uid;
        h.gid = uid;
        h.user = Some("alice".into());
        h.newuidmap = helper;
        h
    }

    #[test]
    fn auto_picks_subuid_when_granted() {
        let dir = tempfile::tempdir().unwrap();
        let h = facts(dir.path(), 1000, true);
        fs::write(&h.subuid_file, "alice:100000:65536\n").unwrap();
        fs::write(&h.subgid_file, "alice:100000:65536\n").unwrap();
        let m = choose(UidMapMode::Auto, &h).unwrap();
        assert_eq!(m.via, MapVia::Helper);
        assert_eq!(map_text(&m.uid), "0 1000 1\n1 100000 65536\n");
        let h = facts(dir.path(), 1000, false);
        assert_eq!(choose(UidMapMode::Auto, &h).unwrap().uid.len(), 1, "no helper: single");
        assert!(matches!(choose(UidMapMode::Subuid, &h), Err(Error::IdMap { .. })));
    }

    #[test]
    fn single_and_root() {
        let dir = tempfile::tempdir().unwrap();
        let m = choose(UidMapMode::Auto, &facts(dir.path(), 1000, true)).unwrap();
        assert_eq!((map_text(&m.uid), m.setgroups), ("0 1000 1\n".to_string(), false));
        assert!(matches!(
            choose(UidMapMode::Subuid, &facts(dir.path(), 1000, true)),
            Err(Error::IdMap { .. })
        ));
        // Host root: its own range, created on first use, and idmapped mounts.
        let root = facts(dir.path(), 0, false);
        fs::write(&root.subuid_file, "alice:100000:65536\ncontainers:1073741824:65536\n").unwrap();
        let m = choose(UidMapMode::Auto, &root).unwrap();
        assert_eq!(map_text(&m.uid), "0 1073807360 65536\n");
        assert_eq!(map_text(&m.gid), "0 1073807360 65536\n");
        assert!(m.idmapped && m.setgroups);
        assert_eq!(m.disk_shift().uid, vec![(0, 0, u32::MAX)]);
        assert!(fs::read_to_string(&root.subgid_file)
            .unwrap()
            .ends_with("karapace:1073807360:65536\n"));
        let again = choose(UidMapMode::Single, &root).unwrap();
        assert_eq!(map_text(&again.uid), "0 1073807360 1\n", "the same range, one id");
        assert_eq!(map_text(&m.nested().uid), "0 0 65536\n");
        // A range that differs between the files is refused, not guessed.
        fs::write(&root.subgid_file, "karapace:5000000:65536\n").unwrap();
        assert!(matches!(choose(UidMapMode::Auto, &root), Err(Error::IdMap { .. })));
    }

    /// Root of a mapped namespace (a rootless command re-run) maps what that
    /// namespace has onto itself, and nothing more: the kernel refuses more.
    #[test]
    fn root_of_a_mapped_namespace_maps_its_own_extent() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = facts(dir.path(), 0, false);
        h.uid_extent =
            super::super::host::parse_extent("         0       1000          1\n         1     100000      65536\n");
        h.gid_extent = vec![(0, 1)];
        let m = choose(UidMapMode::Auto, &h).unwrap();
        assert_eq!(map_text(&m.uid), "0 0 1\n1 1 65536\n");
        assert_eq!(map_text(&m.gid), "0 0 1\n");
        assert_eq!(m.via, MapVia::Direct);
    }
}
