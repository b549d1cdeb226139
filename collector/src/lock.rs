//! Single instance: an flock on `collector.lock` in the data directory.
//!
//! cron starts the collector every minute; all but the first exit at once.
//! The lock is taken with [`std::fs::File::try_lock`] (flock), which the
//! kernel drops when the process dies, so a crashed collector never blocks
//! the next one. The file is opened without truncating (another process may
//! hold it) and the handle lives in [`Lock`] for the whole run. The file
//! holds the holder's pid, for people.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use crate::error::Error;

pub(crate) const LOCK_FILE: &str = "collector.lock";

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct Lock {
    file: File,
}

impl Lock {
    /// Takes the lock, or `None` when another process holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Option<Lock>, Error> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::data_dir("cannot open the lock file collector.lock in", dir, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => {
                return Err(Error::data_dir("cannot lock collector.lock in", dir, e));
            }
        }
        // Ours now: record the pid (best effort, for people reading it).
        let mut lock = Lock { file };
        let _ = lock.file.set_len(0);
        let _ = writeln!(lock.file, "{}", std::process::id());
        Ok(Some(lock))
    }

    /// The pid of the collector holding the lock on `dir`, or `None` when
    /// no collector runs there (nobody holds it; a stale pid in the file is
    /// never returned).
    pub(crate) fn holder(dir: &Path) -> Result<Option<u32>, Error> {
        let path = dir.join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::data_dir(
                    "cannot open the lock file collector.lock in",
                    dir,
                    e,
                ));
            }
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                Ok(None)
            }
            Err(TryLockError::WouldBlock) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Error::data_dir("cannot read collector.lock in", dir, e))?;
                text.trim().parse().map(Some).map_err(|_| {
                    Error::data_dir(
                        "a collector holds the lock, but collector.lock names no pid, in",
                        dir,
                        std::io::Error::other(format!("'{}'", text.trim())),
                    )
                })
            }
            Err(TryLockError::Error(e)) => {
                Err(Error::data_dir("cannot check collector.lock in", dir, e))
            }
        }
    }

    /// Releases the lock (dropping does the same).
    pub(crate) fn release(self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("collector-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = Lock::acquire(&dir).unwrap().expect("first");
        assert!(Lock::acquire(&dir).unwrap().is_none());
        first.release();
        let again = Lock::acquire(&dir).unwrap();
        assert!(again.is_some());
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
