//! Reads `ps` output (procps `ps aux`, `ps auxww`, busybox `ps`) into tunnels.
//!
//! (Being written: for now it finds nothing.)

use crate::tunnel::Tunnel;

/// One process line of a `ps` capture, as ps printed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// USER column, possibly cut by ps (`averylo+`).
    pub user: String,
    pub pid: u32,
    /// START column (`21:06`, `Apr04`, `2016`), empty where the format has none.
    pub start: String,
    /// TIME column (`1:56`, `00:00:03`), empty where the format has none.
    pub cpu_time: String,
    /// COMMAND: argv joined with spaces, as ps shows it.
    pub command: String,
}

/// What one pass over a `ps` capture found.
#[derive(Debug, Default)]
pub struct PsOutcome {
    /// One record per forward, in the order of the capture.
    pub tunnels: Vec<Tunnel>,
    /// Lines that could not be read as a process (counted in a warning).
    pub skipped: usize,
}

/// Splits a capture into processes; the count is of lines skipped as malformed.
pub fn parse_processes(_text: &str) -> (Vec<Process>, usize) {
    (Vec::new(), 0)
}

/// The tunnels one process holds (none unless it is an ssh/autossh with forwards).
pub fn tunnels_of(_p: &Process) -> Vec<Tunnel> {
    Vec::new()
}

/// Parses the text of a `ps` capture.
pub fn parse_ps(text: &str) -> PsOutcome {
    let (procs, skipped) = parse_processes(text);
    PsOutcome { tunnels: procs.iter().flat_map(tunnels_of).collect(), skipped }
}
