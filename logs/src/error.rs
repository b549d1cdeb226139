//! The crate's one error: a log file or directory that could not be read,
//! with its path. Rows that do not parse are not errors: readers skip and
//! count them.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub struct Error {
    /// What was being done, e.g. "cannot read the log file".
    pub what: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl Error {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        Error {
            what,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.what, self.path.display(), self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
