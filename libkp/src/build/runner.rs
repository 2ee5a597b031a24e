//! The real [`Runner`]: each job is one sandbox (docs/sandbox.md).

use std::ffi::OsString;
use std::io::{Read, Seek};

use rustix::fd::AsFd;

use super::{Job, RunOutput, Runner};
use crate::error::{Error, Result};
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
    /// Root maps the whole id space onto itself. A user builds with a single
    /// mapping: what the install writes must stay readable by the user, who
    /// writes it into the store afterwards, and files owned by subordinate ids
    /// would not be (apt then keeps its sandbox user root).
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
        if !job.capture {
            return Ok(RunOutput {
                status: sandbox::run(&plan)?,
                stdout: Vec::new(),
            });
        }
        // The sandbox writes to our stdout; point it at a file for this run (a
        // file, not a pipe: nothing has to drain it while the sandbox runs).
        let mut tmp = self.store.temp_file()?;
        let saved =
            rustix::io::dup(std::io::stdout().as_fd()).map_err(|e| Error::store("dup", tmp.path())(e.into()))?;
        rustix::stdio::dup2_stdout(tmp.as_file()).map_err(|e| Error::store("dup2", tmp.path())(e.into()))?;
        let status = sandbox::run(&plan);
        rustix::stdio::dup2_stdout(&saved).map_err(|e| Error::store("dup2", tmp.path())(e.into()))?;
        let status = status?;
        let mut stdout = Vec::new();
        let path = tmp.path().to_path_buf();
        let file = tmp.as_file_mut();
        file.rewind().map_err(Error::store("rewind", &path))?;
        file.read_to_end(&mut stdout).map_err(Error::store("read", &path))?;
        Ok(RunOutput { status, stdout })
    }

    fn ids(&self) -> Result<IdShift> {
        let map = sandbox::idmap::choose(self.uid_map, &self.host)?;
        let ranges = |r: &[sandbox::MapRange]| r.iter().map(|m| (m.inside, m.outside, m.count)).collect();
        Ok(IdShift {
            uid: ranges(&map.uid),
            gid: ranges(&map.gid),
        })
    }
}
