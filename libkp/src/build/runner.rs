//! The real [`Runner`]: each job is one sandbox (docs/sandbox.md).

use std::ffi::OsString;
use std::io::{Read, Seek};

use rustix::fd::AsFd;

use super::{Error, Result};
use super::{Job, RunOutput, Runner};
use crate::layer::IdShift;
use crate::sandbox::{self, HostFacts, Net, Root, SandboxRequest, UidMapMode};
use crate::store::Store;

pub struct SandboxRunner<'a> {
    pub store: &'a Store,
    pub host: HostFacts,
    pub uid_map: UidMapMode,
    pub hostname: String,
}

impl<'a> SandboxRunner<'a> {
    /// Root maps every id it has onto itself: on the host the whole id space;
    /// as root of the mapped namespace a rootless user with a subordinate
    /// range builds in (sandbox::rerun), that namespace's ids. A user without
    /// a range builds with a single mapping (apt then keeps its sandbox user
    /// root).
    pub fn new(store: &'a Store) -> Self {
        let host = HostFacts::current();
        let uid_map = if host.uid == 0 {
            UidMapMode::Auto
        } else {
            UidMapMode::Single
        };
        SandboxRunner {
            store,
            host,
            uid_map,
            hostname: "karapace-build".into(),
        }
    }
}

impl Runner for SandboxRunner<'_> {
    fn run(&self, job: &Job) -> Result<RunOutput> {
        let req = SandboxRequest {
            root: Root::Overlay {
                lowers: job.lowers.clone(),
                upper: job.upper.clone(),
                work: job.work.clone(),
            },
            hostname: Some(self.hostname.clone()),
            net: if job.network { Net::Host } else { Net::None },
            env: job.env.iter().map(|(k, v)| (k.clone(), OsString::from(v))).collect(),
            uid_map: self.uid_map,
            argv: job.argv.iter().map(OsString::from).collect(),
            ..SandboxRequest::default()
        };
        let plan = sandbox::plan(&req, &self.host)?;
        // What the package manager prints is progress, not the build's output:
        // it goes to stderr, and stdout stays for the env_id. A captured
        // query goes to a file instead (not a pipe: nothing has to drain it
        // while the sandbox runs).
        let mut tmp = self.store.temp_file()?;
        let path = tmp.path().to_path_buf();
        let wrap = |op| {
            let path = path.clone();
            move |e: rustix::io::Errno| Error::store(op, &path)(e.into())
        };
        let saved = rustix::io::dup(std::io::stdout().as_fd()).map_err(wrap("dup"))?;
        let mut tee = None;
        if job.capture {
            rustix::stdio::dup2_stdout(tmp.as_file()).map_err(wrap("dup2"))?;
        } else {
            let t = Tee::start(self.store)?;
            rustix::stdio::dup2_stdout(&t.write).map_err(wrap("dup2"))?;
            rustix::stdio::dup2_stderr(&t.write).map_err(wrap("dup2"))?;
            tee = Some(t);
        }
        let status = sandbox::run(&plan);
        rustix::stdio::dup2_stdout(&saved).map_err(wrap("dup2"))?;
        let output = match tee {
            Some(t) => t.finish()?,
            None => Vec::new(),
        };
        let status = status?;
        let mut stdout = Vec::new();
        let file = tmp.as_file_mut();
        file.rewind().map_err(Error::store("rewind", &path))?;
        file.read_to_end(&mut stdout).map_err(Error::store("read", &path))?;
        Ok(RunOutput { status, stdout, output })
    }

    fn ids(&self) -> Result<IdShift> {
        let map = sandbox::idmap::choose(self.uid_map, &self.host)?;
        Ok(map.disk_shift())
    }
}

/// How much of a command's output [`Tee`] keeps: its end.
const KEEP: u64 = 64 * 1024;

/// What a command prints goes to stderr as it comes, through a pipe read by a
/// child process of ours (a fork: `sandbox::run` wants this process
/// single-threaded) that also appends it to a file of the store's `tmp/`.
/// The sandbox's processes are all gone when it returns (its PID namespace
/// ends with the command), so once stdout and stderr are put back the child
/// reads the end of the pipe and exits.
struct Tee {
    write: rustix::fd::OwnedFd,
    saved_stderr: rustix::fd::OwnedFd,
    child: rustix::process::Pid,
    log: tempfile::NamedTempFile,
}

impl Tee {
    fn start(store: &Store) -> Result<Tee> {
        use std::io::Write;
        let log = store.temp_file()?;
        let path = log.path().to_path_buf();
        let wrap = |op| {
            let path = path.clone();
            move |e: std::io::Error| Error::store(op, &path)(e)
        };
        let (read, write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| wrap("pipe")(e.into()))?;
        let saved_stderr =
            rustix::io::fcntl_dupfd_cloexec(std::io::stderr().as_fd(), 3).map_err(|e| wrap("dup")(e.into()))?;
        let mut file = log.reopen().map_err(wrap("open"))?;
        match crate::sys::fork().map_err(wrap("fork"))? {
            0 => {
                drop(write);
                let mut read = std::fs::File::from(read);
                let mut err = std::io::stderr();
                let mut buf = [0u8; 8192];
                loop {
                    match read.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let _ = err.write_all(&buf[..n]);
                            let _ = file.write_all(&buf[..n]);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                crate::sys::exit_now(0)
            }
            pid => Ok(Tee {
                write,
                saved_stderr,
                child: rustix::process::Pid::from_raw(pid).expect("fork returns a positive pid to the parent"),
                log,
            }),
        }
    }

    /// Puts stderr back (closing the pipe's last writer), waits for the
    /// child, and returns the end of what went through.
    fn finish(self) -> Result<Vec<u8>> {
        let Tee {
            write,
            saved_stderr,
            child,
            log,
        } = self;
        drop(write);
        let path = log.path().to_path_buf();
        rustix::stdio::dup2_stderr(&saved_stderr).map_err(|e| Error::store("dup2", &path)(e.into()))?;
        let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
        let mut file = log.reopen().map_err(Error::store("open", &path))?;
        let len = file.metadata().map_err(Error::store("stat", &path))?.len();
        file.seek(std::io::SeekFrom::Start(len.saturating_sub(KEEP)))
            .map_err(Error::store("seek", &path))?;
        let mut kept = Vec::new();
        file.read_to_end(&mut kept).map_err(Error::store("read", &path))?;
        Ok(kept)
    }
}
