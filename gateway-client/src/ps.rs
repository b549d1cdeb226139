//! Reads `ps` output (procps `ps aux`, `ps auxww`, busybox `ps`) into tunnels.
//!
//! (Being written: for now it finds nothing.)

use crate::tunnel::Tunnel;

/// What one pass over a `ps` capture found.
#[derive(Debug, Default)]
pub struct PsOutcome {
    /// One record per forward, in the order of the capture.
    pub tunnels: Vec<Tunnel>,
    /// Lines that could not be read as a process (counted in a warning).
    pub skipped: usize,
}

/// Parses the text of a `ps` capture.
pub fn parse_ps(_text: &str) -> PsOutcome {
    PsOutcome::default()
}
