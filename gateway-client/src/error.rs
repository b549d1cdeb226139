//! The client's one error type. Each variant carries the input it failed on,
//! and [`Error::exit_code`] maps it to the exit status documented in `--help`.

use std::fmt;
use std::path::PathBuf;

use crate::key::KeyError;
use crate::live::LiveError;

/// Exit status: the collector acknowledged everything (or `--dry-run`).
pub(crate) const EXIT_OK: i32 = 0;
/// Exit status: the collector did not acknowledge (timeout, refused, network).
pub(crate) const EXIT_NOT_ACKED: i32 = 1;
/// Exit status: bad command line or config file.
pub(crate) const EXIT_USAGE: i32 = 2;
/// Exit status: a local failure (key file, `ps`, capture file).
pub(crate) const EXIT_LOCAL: i32 = 3;

#[derive(Debug)]
pub(crate) enum Error {
    /// A bad command line: the message names the option.
    Usage(String),
    /// A bad line in the config file.
    Config {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    Key(KeyError),
    /// The capture given with `--ps-file` could not be read.
    Capture {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Running `ps` (live mode) failed.
    Live(LiveError),
    /// The message or name cannot be sent (too long, bad characters).
    Encode(String),
    /// `-a HOST -p PORT` did not resolve to an address.
    Resolve {
        addr: String,
        detail: String,
    },
    /// The socket failed (other than a refusal).
    Net {
        addr: String,
        source: std::io::Error,
    },
    /// Nothing listens on the collector's UDP port.
    Refused {
        addr: String,
    },
    /// The collector did not acknowledge every part within the timeout.
    NoAck {
        addr: String,
        acked: usize,
        total: usize,
        timeout_ms: u128,
    },
    /// The collector answered with a signed refusal: `text` is its
    /// `REASON: detail`.
    Declined {
        addr: String,
        text: String,
    },
    /// Writing our own output failed.
    Output(std::io::Error),
    /// Watch mode: the lock file could not be opened or locked.
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Watch mode: `/proc` could not be read at the first look.
    Proc(std::io::Error),
    /// Watch mode: SIGTERM and SIGINT could not be blocked.
    Signals(std::io::Error),
}

impl Error {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Config { .. } | Error::Encode(_) => EXIT_USAGE,
            Error::Key(_)
            | Error::Capture { .. }
            | Error::Live(_)
            | Error::Output(_)
            | Error::Lock { .. }
            | Error::Proc(_)
            | Error::Signals(_) => EXIT_LOCAL,
            Error::Resolve { .. }
            | Error::Net { .. }
            | Error::Refused { .. }
            | Error::NoAck { .. }
            | Error::Declined { .. } => EXIT_NOT_ACKED,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m} (see --help)"),
            // Line 0: the file itself could not be read.
            Error::Config { path, line: 0, msg } => {
                write!(f, "config file {}: {msg}", path.display())
            }
            Error::Config { path, line, msg } => write!(f, "{}:{line}: {msg}", path.display()),
            Error::Key(e) => write!(f, "{e}"),
            Error::Capture { path, source } => {
                write!(f, "cannot read ps capture {}: {source}", path.display())
            }
            Error::Live(e) => write!(f, "{e}"),
            Error::Encode(m) => write!(f, "{m}"),
            Error::Resolve { addr, detail } => {
                write!(
                    f,
                    "cannot resolve collector address {addr}: {detail} (check -a/-p or the config file)"
                )
            }
            Error::Net { addr, source } => write!(f, "cannot send to collector {addr}: {source}"),
            Error::Refused { addr } => write!(
                f,
                "collector {addr} refused the datagram: nothing listens on that UDP port (is the collector running? check -a/-p)"
            ),
            Error::NoAck {
                addr,
                acked,
                total,
                timeout_ms,
            } => write!(
                f,
                "no acknowledgement from collector {addr} within {timeout_ms} ms ({acked} of {total} datagrams acknowledged): is it running, and does it use the same key?"
            ),
            Error::Declined { addr, text } => {
                let (reason, detail) = text.split_once(": ").unwrap_or((text, ""));
                match reason {
                    "stale" => write!(
                        f,
                        "collector {addr} refused the report as stale ({detail}): this gateway's clock and the collector's differ by more than the allowed skew; check NTP on both"
                    ),
                    "replay" => write!(
                        f,
                        "collector {addr} refused the report as a replay ({detail}): did this gateway's clock step back, or does another gateway send under the same name (--name)?"
                    ),
                    "write_error" => write!(
                        f,
                        "collector {addr} could not write the report ({detail}): its disk may be full; tell the collector's operator"
                    ),
                    "gateway_limit" => write!(
                        f,
                        "collector {addr} tracks as many gateways as it can and took none of this one's ({detail})"
                    ),
                    _ => write!(f, "collector {addr} refused the report: {text}"),
                }
            }
            Error::Output(e) => write!(f, "cannot write output: {e}"),
            Error::Lock { path, source } => write!(
                f,
                "cannot lock {}: {source} (watch mode keeps its lock file beside the key file: that folder must be writable)",
                path.display()
            ),
            Error::Proc(e) => write!(
                f,
                "cannot read /proc: {e} (watch mode reads /proc; where it cannot, run the client from cron without --watch)"
            ),
            Error::Signals(e) => write!(f, "cannot block SIGTERM and SIGINT: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Error {
        Error::Key(e)
    }
}
