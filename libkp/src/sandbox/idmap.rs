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
    };
    if mode == UidMapMode::Single {
        return Ok(single(host.uid, host.gid));
    }
    if host.uid == 0 && mode == UidMapMode::Auto {
        // Root maps every id it has onto itself: files in the layers keep the
        // owners they have on disk, and nothing needs a helper. On the host
        // that is the whole id space; as root of a mapped namespace (a
        // rootless command re-run, see rerun.rs), the ids that namespace maps.
        let identity = |extent: &[(u32, u32)]| -> Vec<MapRange> {
            if extent.is_empty() {
                return vec![MapRange {
                    inside: 0,
                    outside: 0,
                    count: u32::MAX,
                }];
            }
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
        let m = choose(UidMapMode::Auto, &facts(dir.path(), 0, false)).unwrap();
        assert_eq!(map_text(&m.uid), "0 0 4294967295\n");
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
