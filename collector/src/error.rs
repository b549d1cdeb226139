//! The collector's one error type.
//!
//! Every variant carries the input it failed on (the flag, the file, the
//! address), so that `main` can print it as one line after `collector: ` and
//! exit with [`Error::exit_code`]. Problems with a single datagram are not
//! errors of this kind: ingest counts and logs them and goes on.

use std::fmt;
use std::path::PathBuf;

use gateway_client::key::KeyError;

#[derive(Debug)]
pub enum Error {
    /// A bad or missing command-line argument.
    Usage(String),
    /// The config file could not be read or has a mistake.
    Config(logs::config::ConfigError),
    /// The key file could not be used.
    Key(KeyError),
    /// The data directory (`--data`) cannot be made, opened or locked: the
    /// operator must create it or give it to the collector's account.
    DataDir {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    /// A file or directory operation failed.
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    /// A socket could not be bound.
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    /// The HTTP side stopped serving; cron should start a fresh collector.
    HttpDied(String),
    /// The UDP socket failed in a way that retrying cannot fix.
    Udp(std::io::Error),
}

impl Error {
    /// 2 for what the operator must fix in the command line or files, 1 for
    /// failures while running.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::Config(_)
            | Error::Key(_)
            | Error::DataDir { .. }
            | Error::Bind { .. } => 2,
            Error::Io { .. } | Error::HttpDied(_) | Error::Udp(_) => 1,
        }
    }

    pub(crate) fn data_dir(
        what: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        Error::DataDir {
            path: path.into(),
            what,
            source,
        }
    }

    /// The same failure, as one of the data directory (exit status 2): a
    /// log file that cannot be opened or repaired at start is for the
    /// operator to fix, not for cron to retry.
    pub(crate) fn in_data_dir(self) -> Error {
        match self {
            Error::Io { path, what, source } => Error::DataDir { path, what, source },
            other => other,
        }
    }

    /// Whether this is a full disk or quota: writes may succeed again
    /// once space returns, so the collector waits rather than exits.
    pub(crate) fn is_out_of_space(&self) -> bool {
        match self {
            Error::Io { source, .. } | Error::DataDir { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }

    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        Error::Io {
            path: path.into(),
            what,
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg} (try --help)"),
            Error::Config(e) => write!(f, "{e}"),
            Error::Key(e) => write!(f, "{e}"),
            Error::DataDir { path, what, source } => {
                let p = path.display();
                write!(f, "{what} {p}: {source}")?;
                let denied = matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                );
                if !path.exists() {
                    write!(
                        f,
                        "; check --data, or make the folder for the account that runs the collector: install -d -o ACCOUNT -g ACCOUNT {p} (docs/operations.md)"
                    )
                } else if denied {
                    write!(
                        f,
                        "; the account that runs the collector must own it: chown -R ACCOUNT: {p} (docs/operations.md)"
                    )
                } else {
                    Ok(())
                }
            }
            Error::Io { path, what, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            Error::Bind { what, addr, source } => {
                write!(f, "cannot bind the {what} address {addr}: {source}")
            }
            Error::HttpDied(why) => write!(
                f,
                "the HTTP server stopped ({why}); exiting so that cron starts a fresh collector"
            ),
            Error::Udp(e) => write!(f, "UDP socket: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Key(e) => Some(e),
            Error::DataDir { source, .. }
            | Error::Io { source, .. }
            | Error::Bind { source, .. } => Some(source),
            Error::Udp(e) => Some(e),
            Error::Usage(_) | Error::HttpDied(_) => None,
            Error::Config(e) => Some(e),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Error {
        Error::Key(e)
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Usage(e.to_string())
    }
}

impl From<logs::Error> for Error {
    fn from(e: logs::Error) -> Error {
        Error::Io {
            path: e.path,
            what: e.what,
            source: e.source,
        }
    }
}
