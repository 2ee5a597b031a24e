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
        if job.capture {
            rustix::stdio::dup2_stdout(tmp.as_file()).map_err(wrap("dup2"))?;
        } else {
            rustix::stdio::dup2_stdout(std::io::stderr().as_fd()).map_err(wrap("dup2"))?;
        }
        let status = sandbox::run(&plan);
        rustix::stdio::dup2_stdout(&saved).map_err(wrap("dup2"))?;
        let status = status?;
        let mut stdout = Vec::new();
        let file = tmp.as_file_mut();
        file.rewind().map_err(Error::store("rewind", &path))?;
        file.read_to_end(&mut stdout).map_err(Error::store("read", &path))?;
        Ok(RunOutput { status, stdout })
    }

    fn ids(&self) -> Result<IdShift> {
        let map = sandbox::idmap::choose(self.uid_map, &self.host)?;
        Ok(map.disk_shift())
    }
}
