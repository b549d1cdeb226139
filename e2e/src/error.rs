//! The one error type of the test support: each variant names what was being
//! done and carries the input or output that shows why it failed, so that a
//! failed test reads as one clear message.

use std::fmt;
use std::path::PathBuf;

/// Why a step of an operator-level test failed.
pub enum Error {
    /// A tool the test needs is not installed; `package` is the Debian package.
    Missing { tool: String, package: String },
    /// The test must run as root (it adds an account, runs sshd).
    NotRoot { why: String },
    /// A file or socket operation failed.
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A command ran and failed; `output` is its stdout and stderr.
    Command {
        cmd: String,
        status: String,
        output: String,
    },
    /// Something did not happen within the time allowed.
    Timeout { what: String, secs: u64 },
    /// The system did something other than what the test expects.
    Check { what: String, got: String },
}

impl Error {
    pub fn io(what: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            path: path.into(),
            source,
        }
    }

    pub fn check(what: impl Into<String>, got: impl Into<String>) -> Error {
        Error::Check {
            what: what.into(),
            got: got.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing { tool, package } => write!(
                f,
                "{tool} is not installed: apt-get install -y {package} (scripts/test installs it)"
            ),
            Error::NotRoot { why } => write!(f, "this test must run as root: {why}"),
            Error::Io { what, path, source } => {
                write!(f, "{what}: {}: {source}", path.display())
            }
            Error::Command {
                cmd,
                status,
                output,
            } => write!(f, "`{cmd}` failed ({status}):\n{output}"),
            Error::Timeout { what, secs } => write!(f, "{what}: not within {secs} s"),
            Error::Check { what, got } => write!(f, "{what}; got:\n{got}"),
        }
    }
}

// Tests return `Result<(), Error>`; the harness prints failures with Debug.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}
