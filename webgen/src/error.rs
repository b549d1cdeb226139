//! webgen's one error type. Each variant carries the input it failed on (the
//! flag and its value, the path), and [`Error::exit_code`] maps it to the
//! exit status documented in `--help`.
//!
//! Bad rows in the logs are *not* errors: `logs.rs` skips and counts them so
//! that one torn line never costs the operators their page.

use std::fmt;
use std::path::PathBuf;

/// Exit status: pages written (possibly with skipped bad rows, reported on stderr).
pub(crate) const EXIT_OK: i32 = 0;
/// Exit status: the data could not be read or the pages could not be written.
pub(crate) const EXIT_FAILED: i32 = 1;
/// Exit status: bad command line.
pub(crate) const EXIT_USAGE: i32 = 2;

#[derive(Debug)]
pub(crate) enum Error {
    /// A bad command line: the message names the option and the value.
    Usage(String),
    /// The config file cannot be read or is wrong (`FILE:LINE: what`).
    Config(logs::config::ConfigError),
    /// `--tz` named no time zone known here.
    TimeZone { zone: String, reason: String },
    /// The data directory exists but cannot be listed.
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A template failed to load or render (with `--templates DIR`, usually
    /// a mistake in that directory).
    Template {
        name: String,
        source: minijinja::Error,
    },
    /// The output directory or a page in it cannot be written.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A thread making part of the pages stopped without finishing it.
    Thread(&'static str),
}

impl Error {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::TimeZone { .. } | Error::Config(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg} (see --help)"),
            Error::Config(e) => write!(f, "{e}"),
            Error::TimeZone { zone, reason } => {
                write!(f, "--tz '{zone}': {reason}")
            }
            Error::DataDir { path, source } => {
                write!(
                    f,
                    "{}: cannot list data directory: {source}",
                    path.display()
                )
            }
            Error::Template { name, source } => {
                write!(f, "template '{name}': {source}")?;
                if let Some(detail) = source.detail() {
                    write!(f, ": {detail}")?;
                }
                if let Some(line) = source.line() {
                    write!(f, " (line {line})")?;
                }
                Ok(())
            }
            Error::Write { path, source } => {
                write!(f, "{}: cannot write: {source}", path.display())
            }
            Error::Thread(what) => write!(f, "the thread making {what} failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::DataDir { source, .. } | Error::Write { source, .. } => Some(source),
            Error::Template { source, .. } => Some(source),
            Error::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Usage(e.to_string())
    }
}
