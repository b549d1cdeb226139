//! The shared secret that signs every datagram, read from a key file.
//!
//! The file holds the secret as text; white space around it is ignored (for
//! example 64 hex digits from `scripts/make-key`). The bytes of that text
//! are the HMAC key, so the client and the collector read it the same way.
//! A key file that the group or others may read is refused, as ssh refuses
//! such private keys.

use std::fmt;
use std::path::{Path, PathBuf};

/// Shortest secret accepted, in bytes of text.
pub const MIN_LEN: usize = 16;

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

    /// Reads a key file, refusing one the group or others may read.
    pub fn from_file(path: &Path) -> Result<Key, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
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
