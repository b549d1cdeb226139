//! The bench crate's one error type. Each variant carries what it failed on:
//! the file, the command, the case.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// A file or directory could not be read or written.
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A CSV file could not be written or read.
    Csv { path: PathBuf, source: csv::Error },
    /// A program could not be started or failed.
    Command { command: String, detail: String },
    /// A benchmark could not run (the collector did not answer, ...).
    Case { case: String, detail: String },
    /// A bad command line.
    Usage(String),
}

impl Error {
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn csv(path: &Path, source: csv::Error) -> Error {
        Error::Csv {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn case(case: &str, detail: impl Into<String>) -> Error {
        Error::Case {
            case: case.to_string(),
            detail: detail.into(),
        }
    }

    pub fn command(command: &str, detail: impl Into<String>) -> Error {
        Error::Command {
            command: command.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { what, path, source } => write!(f, "{what} {}: {source}", path.display()),
            Error::Csv { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Command { command, detail } => write!(f, "{command}: {detail}"),
            Error::Case { case, detail } => write!(f, "case '{case}': {detail}"),
            Error::Usage(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Csv { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Usage(e.to_string())
    }
}
