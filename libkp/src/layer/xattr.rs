//! Extended attributes: which ones a layer keeps, and reading and setting them
//! without following symlinks.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;

use rustix::io::Errno;

/// Overlay bookkeeping. These never become ordinary xattrs of an entry: they are
/// read as whiteouts and opaque directories, and written back as such.
pub const USER_OPAQUE: &str = "user.overlay.opaque";
pub const TRUSTED_OPAQUE: &str = "trusted.overlay.opaque";
pub const USER_WHITEOUT: &str = "user.overlay.whiteout";
pub const TRUSTED_WHITEOUT: &str = "trusted.overlay.whiteout";

/// Whether an xattr is part of a layer's content. Kept: `user.*` (less overlay
/// bookkeeping), file capabilities, POSIX ACLs. Dropped: `trusted.*` (needs
/// CAP_SYS_ADMIN, host-specific) and `security.selinux` (host policy labels).
pub fn keep(name: &[u8]) -> bool {
    if name.starts_with(b"user.overlay.") {
        return false;
    }
    name.starts_with(b"user.") || name == b"security.capability" || name.starts_with(b"system.posix_acl_")
}

fn unsupported(e: Errno) -> bool {
    e == Errno::NOTSUP || e == Errno::OPNOTSUPP
}

/// What an xattr call names: a path (not followed when a symlink) or an
/// open file, which costs no path lookup.
#[derive(Clone, Copy)]
pub enum On<'a> {
    Path(&'a Path),
    Fd(BorrowedFd<'a>),
}

impl On<'_> {
    fn list(self, buf: &mut [u8]) -> rustix::io::Result<usize> {
        match self {
            On::Path(p) => rustix::fs::llistxattr(p, buf),
            On::Fd(fd) => rustix::fs::flistxattr(fd, buf),
        }
    }

    fn list_query(self) -> rustix::io::Result<usize> {
        match self {
            On::Path(p) => rustix::fs::llistxattr_query(p),
            On::Fd(fd) => rustix::fs::flistxattr_query(fd),
        }
    }

    fn get(self, name: &std::ffi::CStr, buf: &mut [u8]) -> rustix::io::Result<usize> {
        match self {
            On::Path(p) => rustix::fs::lgetxattr(p, name, buf),
            On::Fd(fd) => rustix::fs::fgetxattr(fd, name, buf),
        }
    }

    fn get_query(self, name: &std::ffi::CStr) -> rustix::io::Result<usize> {
        match self {
            On::Path(p) => rustix::fs::lgetxattr_query(p, name),
            On::Fd(fd) => rustix::fs::fgetxattr_query(fd, name),
        }
    }
}

/// The names of `path`'s xattrs (empty where the filesystem has none).
pub fn list(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    Ok(list_supported(On::Path(path))?.unwrap_or_default())
}

/// Devices (`st_dev`) whose filesystem said it has no xattrs at all.
static NO_XATTRS: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

/// [`list`] for a file on device `dev`: once the filesystem there has said
/// it keeps no xattrs, it is not asked again for each file.
pub fn list_on(on: On<'_>, dev: u64) -> io::Result<Vec<Vec<u8>>> {
    if NO_XATTRS.lock().expect("no poisoned lock").contains(&dev) {
        return Ok(Vec::new());
    }
    match list_supported(on)? {
        Some(names) => Ok(names),
        None => {
            NO_XATTRS.lock().expect("no poisoned lock").push(dev);
            Ok(Vec::new())
        }
    }
}

/// The names of a file's xattrs; `None` when its filesystem has none. One
/// call into a buffer on the stack for the usual short list, a size query
/// only for a longer one.
fn list_supported(on: On<'_>) -> io::Result<Option<Vec<Vec<u8>>>> {
    let split = |buf: &[u8]| {
        buf.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let mut small = [0u8; 1024];
    match on.list(&mut small) {
        Ok(n) => return Ok(Some(split(&small[..n]))),
        Err(e) if unsupported(e) => return Ok(None),
        Err(Errno::RANGE) => {}
        Err(e) => return Err(e.into()),
    }
    loop {
        let size = match on.list_query() {
            Ok(0) => return Ok(Some(Vec::new())),
            Ok(n) => n,
            Err(e) if unsupported(e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        match on.list(&mut buf[..]) {
            Ok(n) => return Ok(Some(split(&buf[..n]))),
            // The list grew between the two calls: ask again.
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One xattr's value, `None` when absent.
pub fn get(path: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    get_on(On::Path(path), name)
}

/// [`get`] of a path or an open file.
pub fn get_on(on: On<'_>, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let name = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        let size = match on.get_query(&name) {
            Ok(n) => n,
            Err(e) if e == Errno::NODATA || unsupported(e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        if size == 0 {
            return Ok(Some(buf));
        }
        match on.get(&name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => continue,
            Err(e) if e == Errno::NODATA => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

pub fn set(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    rustix::fs::lsetxattr(path, &name, value, rustix::fs::XattrFlags::empty()).map_err(Into::into)
}
