//! One nightly run per store at a time.
//!
//! The lock is an advisory lock (`flock`) on `STORE/nightly.lock`, which also holds the
//! holder's pid and start time for people and monitoring. The kernel releases the lock when
//! its holder dies, however it dies, so a crashed run never blocks the next one: the next run
//! finds the file with a dead holder's pid in it and takes it over. A lock held by a live
//! process is never taken over, since two writers would corrupt the store; when it is older
//! than the configured limit the refusal says the holder looks hung.
//!
//! On a file system without advisory locks the pid file alone decides: the lock is stale when
//! its pid is not running (checked on Linux through `/proc`) or it is older than the limit.
//!
//! The file is never deleted (deleting it would let two processes lock two different files).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The lock file's name inside the store.
pub const LOCK_FILE: &str = "nightly.lock";

/// What the lock file says about its holder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub pid: u32,
    /// RFC 3339.
    pub started_at: String,
}

impl Holder {
    fn age_hours(&self) -> Option<f64> {
        let t = chrono::DateTime::parse_from_rfc3339(&self.started_at).ok()?;
        Some((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds() as f64 / 3600.0)
    }
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
    advisory: bool,
}

/// The result of trying to take the lock.
#[derive(Debug)]
pub enum Acquire {
    /// Taken; `stale` is the previous holder when its lock was taken over.
    Taken { lock: StoreLock, stale: Option<Holder> },
    /// Held by a live process.
    Held { holder: Option<Holder>, hung: bool },
}

/// Whether a process is running (Linux: `/proc/<pid>`; elsewhere unknown, taken as running).
pub fn pid_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() { Path::new(&format!("/proc/{pid}")).exists() } else { true }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn write_holder(file: &mut File, path: &Path) -> Result<()> {
    let me = Holder { pid: std::process::id(), started_at: chrono::Utc::now().to_rfc3339() };
    let text = serde_json::to_string(&me).map_err(|e| crate::other_err!("lock file: {e}"))?;
    file.set_len(0).map_err(|e| Error::io("writing", path, e))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| Error::io("writing", path, e))?;
    file.write_all(text.as_bytes()).map_err(|e| Error::io("writing", path, e))?;
    file.sync_all().map_err(|e| Error::io("writing", path, e))
}

/// Tries to take the lock of `store` (created if needed); never waits.
pub fn acquire(store: &Path, max_age_hours: f64) -> Result<Acquire> {
    std::fs::create_dir_all(store).map_err(|e| Error::io("creating", store, e))?;
    let path = store.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("opening", &path, e))?;
    let advisory = match file.try_lock() {
        Ok(()) => true,
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = read_holder(&mut file);
            let hung = holder.as_ref().and_then(Holder::age_hours).is_some_and(|h| h > max_age_hours);
            return Ok(Acquire::Held { holder, hung });
        }
        Err(std::fs::TryLockError::Error(_)) => false,
    };
    let previous = read_holder(&mut file);
    if !advisory
        && let Some(h) = &previous
        && pid_alive(h.pid)
        && h.pid != std::process::id()
        && h.age_hours().is_none_or(|a| a <= max_age_hours)
    {
        return Ok(Acquire::Held { holder: previous, hung: false });
    }
    write_holder(&mut file, &path)?;
    Ok(Acquire::Taken { lock: StoreLock { file, path, advisory }, stale: previous })
}

impl StoreLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // An empty file says nobody holds it; the advisory lock goes with the descriptor.
        let _ = self.file.set_len(0);
        if self.advisory {
            let _ = self.file.unlock();
        }
    }
}
