//! Store-wide locking. Readers take no lock at all. Writers take a shared lock on
//! `locks/gc` for as long as they create objects that nothing names yet; pruning
//! takes it exclusively, so it never deletes an object a writer is about to name.

use std::fs::File;

use rustix::fs::{flock, FlockOperation};

use super::Store;
use super::{Error, Result};

/// Held while writing objects; many at once.
#[derive(Debug)]
pub struct WriteGuard {
    _file: File,
}

/// Held while pruning; excludes writers.
#[derive(Debug)]
pub struct GcGuard {
    _file: File,
}

impl Store {
    fn gc_lock_file(&self) -> Result<File> {
        self.open_lock(&self.path("locks/gc"))
    }

    /// Takes the shared writer lock, waiting for a running prune to finish.
    pub fn write_guard(&self) -> Result<WriteGuard> {
        let file = self.gc_lock_file()?;
        flock(&file, FlockOperation::LockShared)
            .map_err(|e| Error::store("lock (shared)", &self.path("locks/gc"))(e.into()))?;
        Ok(WriteGuard { _file: file })
    }

    /// Takes the exclusive lock if nobody holds the store's lock now.
    pub fn try_gc_guard(&self) -> Result<Option<GcGuard>> {
        let file = self.gc_lock_file()?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(GcGuard { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::store("lock (exclusive)", &self.path("locks/gc"))(e.into())),
        }
    }

    /// Takes the exclusive lock, waiting for writers to finish.
    pub fn gc_guard(&self) -> Result<GcGuard> {
        let file = self.gc_lock_file()?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| Error::store("lock (exclusive)", &self.path("locks/gc"))(e.into()))?;
        Ok(GcGuard { _file: file })
    }
}
