//! When a tunnel was in use, and when an idle one becomes a candidate to
//! close: the rule behind the history page's in-use stretches and its list
//! of idle tunnels, written once for every product that shows them.
//!
//! The facts are the `connections` of each report that held the tunnel
//! (issue 13): the ESTABLISHED connections to its listening socket when the
//! report was made, `None` when unknown (an `R` forward, a capture, a
//! client older than the field).
//!
//! - A tunnel is *in use* in a report with one connection or more. An
//!   *in-use stretch* runs from the first to the last of consecutive
//!   reports in use, as a session runs from its first to its last report.
//! - It is *idle since* the first report of the run of reports, up to the
//!   latest, that all found it with no connection. A report that does not
//!   know (`None`) ends that run: a tunnel is only called idle for as long
//!   as every report said so.
//! - An idle tunnel is a *candidate to close* once it has been idle for
//!   `idle_after` seconds up to its latest report ([`DEFAULT_IDLE_AFTER`]:
//!   7 days; config key `idle_after`).

/// How long a tunnel must have been idle to be listed as a candidate to
/// close, unless the config file or a flag says otherwise: a week.
pub const DEFAULT_IDLE_AFTER: u64 = 7 * 86_400;

/// One tunnel's use across the reports that held it, in the order they
/// were received. Small and `Copy`: one per open session. The two fields
/// are its whole state (webgen's cache saves and restores them); at most
/// one of them is set after [`Usage::observe`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// The in-use stretch still going on at the latest report: (first,
    /// last) report in use.
    pub in_use: Option<(u64, u64)>,
    /// When the tunnel's current run of reports without connection began.
    pub idle_since: Option<u64>,
}

impl Usage {
    /// Takes the report received `at` that held the tunnel with
    /// `connections`. Returns the in-use stretch this report ended, if any.
    pub fn observe(&mut self, at: u64, connections: Option<u32>) -> Option<(u64, u64)> {
        match connections {
            Some(n) if n > 0 => {
                self.idle_since = None;
                let first = self.in_use.map_or(at, |s| s.0);
                self.in_use = Some((first, at));
                None
            }
            Some(_) => {
                self.idle_since.get_or_insert(at);
                self.in_use.take()
            }
            None => {
                self.idle_since = None;
                self.in_use.take()
            }
        }
    }

    /// Whether at `at` it has been idle for at least `idle_after` seconds.
    /// Pass the time of its latest report: what came after (a gateway gone
    /// quiet) is not known, and a tunnel is called idle only for as long
    /// as its reports said so.
    pub fn is_candidate(&self, at: u64, idle_after: u64) -> bool {
        self.idle_since
            .is_some_and(|since| at.saturating_sub(since) >= idle_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `reports` (received, connections) and returns the stretches
    /// ended, and the usage after.
    fn feed(reports: &[(u64, Option<u32>)]) -> (Vec<(u64, u64)>, Usage) {
        let mut u = Usage::default();
        let ended = reports
            .iter()
            .filter_map(|&(at, n)| u.observe(at, n))
            .collect();
        (ended, u)
    }

    #[test]
    fn stretches_run_from_first_to_last_report_in_use() {
        let (ended, u) = feed(&[
            (60, Some(0)),
            (120, Some(1)),
            (180, Some(2)),
            (240, Some(0)),
            (300, Some(1)),
        ]);
        assert_eq!(ended, [(120, 180)]);
        assert_eq!(u.in_use, Some((300, 300)));
        assert_eq!(u.idle_since, None);
    }

    #[test]
    fn idle_since_the_first_report_without_connection() {
        let (ended, u) = feed(&[(60, Some(3)), (120, Some(0)), (180, Some(0))]);
        assert_eq!(ended, [(60, 60)]);
        assert_eq!(u.idle_since, Some(120));
        assert!(u.is_candidate(120 + DEFAULT_IDLE_AFTER, DEFAULT_IDLE_AFTER));
        assert!(!u.is_candidate(119 + DEFAULT_IDLE_AFTER, DEFAULT_IDLE_AFTER));
    }

    #[test]
    fn unknown_is_neither_use_nor_idleness() {
        // An older client's reports in between: the idle run starts again.
        let (ended, u) = feed(&[(60, Some(0)), (120, None), (180, Some(0))]);
        assert!(ended.is_empty());
        assert_eq!(u.idle_since, Some(180));
        // Unknown ends a stretch in use, and never makes a tunnel idle.
        let (ended, u) = feed(&[(60, Some(1)), (120, None)]);
        assert_eq!(ended, [(60, 60)]);
        assert_eq!((u.in_use, u.idle_since), (None, None));
        assert!(!u.is_candidate(u64::MAX, 0));
    }
}
