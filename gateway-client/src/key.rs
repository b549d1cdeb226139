//! The shared secret that signs every datagram, read from a key file.
//!
//! The file holds the secret as text; white space around it is ignored (for
//! example 64 hex digits from `scripts/make-key`). The bytes of that text
//! are the HMAC key, so the client and the collector read it the same way.
//! A key file that the group or others may read is refused, as ssh refuses
//! such private keys.
//!
//! Only a regular file is read (a FIFO would block the reader until someone
//! writes to it), and the reading runs on a thread of its own under
//! [`READ_TIMEOUT`]: a key on a hung network mount fails in seconds with a
//! line that says so, instead of hanging the client under cron, or the
//! collector at start.

use std::fmt;
use std::path::{Path, PathBuf};

/// Shortest secret accepted, in bytes of text.
pub(crate) const MIN_LEN: usize = 16;
/// Longest key file read, in bytes.
pub(crate) const MAX_FILE_LEN: u64 = 4096;
/// How long reading the key file may take.
pub(crate) const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a key file could not be used.
#[derive(Debug)]
pub enum KeyError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Permissions {
        path: PathBuf,
        mode: u32,
    },
    TooShort {
        path: PathBuf,
        len: usize,
    },
    NotText {
        path: PathBuf,
    },
    /// Not a regular file: what it is instead.
    NotAFile {
        path: PathBuf,
        what: &'static str,
    },
    /// Reading took longer than [`READ_TIMEOUT`].
    TimedOut {
        path: PathBuf,
    },
    TooLong {
        path: PathBuf,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io { path, source } => {
                let p = path.display();
                write!(f, "key file {p}: {source}")?;
                match source.kind() {
                    std::io::ErrorKind::NotFound => write!(
                        f,
                        "; name the key with --key-file FILE, or make one with scripts/make-key {p}"
                    ),
                    std::io::ErrorKind::PermissionDenied => write!(
                        f,
                        "; this account cannot read it: chown it to the account that runs this program (it stays mode 600)"
                    ),
                    _ => Ok(()),
                }
            }
            KeyError::Permissions { path, mode } => write!(
                f,
                "key file {} can be read by others (mode {mode:04o}): run 'chmod 600 {}'",
                path.display(),
                path.display()
            ),
            KeyError::TooShort { path, len } => write!(
                f,
                "key file {} holds {len} characters; at least {MIN_LEN} are needed (make one with scripts/make-key)",
                path.display()
            ),
            KeyError::NotAFile { path, what } => write!(
                f,
                "key file {} is {what}, not a regular file: point --key-file at the key itself (make one with scripts/make-key)",
                path.display()
            ),
            KeyError::TimedOut { path } => write!(
                f,
                "key file {}: reading it took more than {} s (a hung network mount?): put the key on a local disk",
                path.display(),
                READ_TIMEOUT.as_secs()
            ),
            KeyError::TooLong { path } => write!(
                f,
                "key file {} is longer than {MAX_FILE_LEN} bytes: is it the key? (make one with scripts/make-key)",
                path.display()
            ),
            KeyError::NotText { path } => {
                write!(
                    f,
                    "key file {} is not UTF-8 text (make one with scripts/make-key)",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// An HMAC-SHA-256 key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from its text (trimmed). No length check: for tests and vectors.
    pub fn from_text(text: &str) -> Key {
        Key(text.trim().as_bytes().to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Reads a key file, refusing one the group or others may read, one
    /// that is not a regular file, and one that takes longer than
    /// [`READ_TIMEOUT`] to read.
    pub fn from_file(path: &Path) -> Result<Key, KeyError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = path.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("key-file".into())
            .spawn(move || {
                let _ = tx.send(Key::read_file(&owned));
            });
        if let Err(source) = spawned {
            return Err(KeyError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        // On a timeout the thread stays blocked; the program is about to
        // exit with this error anyway.
        rx.recv_timeout(READ_TIMEOUT).unwrap_or_else(|_| {
            Err(KeyError::TimedOut {
                path: path.to_path_buf(),
            })
        })
    }

    /// [`Key::from_file`]'s reading, which may block on a hung mount.
    fn read_file(path: &Path) -> Result<Key, KeyError> {
        use std::io::Read;
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let ft = meta.file_type();
        if !ft.is_file() {
            let what = if ft.is_dir() {
                "a directory"
            } else if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_char_device() || ft.is_block_device() {
                "a device"
            } else {
                "not a plain file"
            };
            return Err(KeyError::NotAFile {
                path: path.to_path_buf(),
                what,
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let file = std::fs::File::open(path).map_err(io)?;
        // The name may have been swapped since the check: check what is open.
        if !file.metadata().map_err(io)?.is_file() {
            return Err(KeyError::NotAFile {
                path: path.to_path_buf(),
                what: "not a plain file",
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(KeyError::TooLong {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| KeyError::NotText {
            path: path.to_path_buf(),
        })?;
        let key = Key::from_text(&text);
        if key.0.len() < MIN_LEN {
            return Err(KeyError::TooShort {
                path: path.to_path_buf(),
                len: key.0.len(),
            });
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_file_that_is_a_fifo_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("key-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("key");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils) is needed for this test");
        assert!(made.success());
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Key::from_file(&fifo).unwrap_err();
        assert!(
            matches!(err, KeyError::NotAFile { what: "a FIFO", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not a regular file"));
        let err = Key::from_file(&dir).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::NotAFile {
                    what: "a directory",
                    ..
                }
            ),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_trimmed_text_and_refuses_open_modes() {
        let dir = std::env::temp_dir().join(format!("key-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "  0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            Key::from_file(&path).unwrap().as_bytes(),
            b"0123456789abcdef0123456789abcdef"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Key::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::write(&path, "short").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(
            Key::from_file(&path)
                .unwrap_err()
                .to_string()
                .contains("at least 16")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
