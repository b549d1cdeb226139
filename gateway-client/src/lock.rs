//! One watch-mode client per gateway name: an exclusive `flock(2)` on a
//! file beside the key file, `gateway-client-watch.NAME.lock`.
//!
//! The lock belongs to the open file, so it ends with the process however
//! that ends (a crash, `kill -9`, a reboot): there is never a stale lock
//! to delete, and cron's next start takes it. The descriptor is
//! close-on-exec, so no program the client starts can keep it. The file
//! holds the pid of the holder, for the operator (`kill $(cat FILE)`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock, held until dropped (or the process ends).
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// The lock file of gateway `name` when the key is `key_file`: in the key
/// file's folder, the name kept to letters, digits, `.`, `_` and `-` (any
/// other byte becomes `_`).
pub(crate) fn path_for(key_file: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = match key_file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    dir.join(format!("gateway-client-watch.{safe}.lock"))
}

/// Takes the lock at `path` without waiting: `None` when another process
/// holds it.
pub(crate) fn try_lock(path: &Path) -> io::Result<Option<Lock>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    // SAFETY: a valid descriptor of an open file.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => Ok(None),
            _ => Err(e),
        };
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(Some(Lock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_the_key() {
        assert_eq!(
            path_for(Path::new("/home/g/rtm/gateway-client.key"), "gw-01.far"),
            Path::new("/home/g/rtm/gateway-client-watch.gw-01.far.lock")
        );
        assert_eq!(
            path_for(Path::new("key"), "a/b c"),
            Path::new("./gateway-client-watch.a_b_c.lock")
        );
    }

    /// A second lock of the same file (another open file description, as
    /// another process has) is refused while the first is held, and taken
    /// once it is dropped.
    #[test]
    fn one_holder_at_a_time() {
        let dir = std::env::temp_dir().join(format!("gwc-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        let first = try_lock(&path).unwrap().expect("free at first");
        assert!(try_lock(&path).unwrap().is_none());
        let pid = std::fs::read_to_string(&path).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        drop(first);
        assert!(try_lock(&path).unwrap().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
