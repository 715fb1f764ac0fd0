//! Which executions are still running, across every Steward process on this host.
//!
//! An execution holds a *shared* lock on `<audit dir>/executing.lock` from before its
//! `exec_begin` record until after its `exec_end`. Reconciling at start-up takes the lock
//! *exclusively*, and only if nobody holds it: then every open begin really was left by a
//! crash. Without this, a CLI call starting while another process deploys would mark that
//! live deploy as interrupted. The OS drops the locks of a process that dies, so a crashed
//! execution never blocks reconciling.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const LOCK_FILE: &str = "executing.lock";

/// Held while one execution runs; dropping it releases the shared lock.
#[derive(Debug)]
#[must_use = "dropping it marks the execution as finished"]
pub struct Executing {
    _file: File,
}

fn open(dir: &Path) -> Result<(File, PathBuf)> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| lock_error(&path, source))?;
    Ok((file, path))
}

fn lock_error(path: &Path, source: std::io::Error) -> Error {
    Error::Lock {
        path: path.display().to_string(),
        source,
    }
}

/// Takes the shared lock, waiting while a reconcile holds it exclusively (milliseconds).
pub(crate) async fn begin(dir: &Path) -> Result<Executing> {
    let (file, path) = open(dir)?;
    tokio::task::spawn_blocking(move || match file.lock_shared() {
        Ok(()) => Ok(Executing { _file: file }),
        Err(source) => Err(lock_error(&path, source)),
    })
    .await?
}

/// The exclusive lock when no execution is running anywhere, `None` when one is.
pub(crate) fn quiescent(dir: &Path) -> Result<Option<File>> {
    let (file, path) = open(dir)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(lock_error(&path, source)),
    }
}
