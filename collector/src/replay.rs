//! Which datagrams were already accepted: duplicates and replays.
//!
//! A client retransmits a part when its ack was lost, so a part seen again
//! (same gateway, `seq` and `part`) is a *duplicate*: not written again, but
//! acked with status `duplicate` so the client can finish. Anything whose send
//! time is outside the skew window is refused as stale before it gets here,
//! so entries older than the window can be forgotten: they can no longer
//! match. Memory is bounded by a cap per gateway; when the cap forces an
//! entry out, its send time becomes a floor below which unseen datagrams are
//! refused as replays (a flood of signed datagrams must not open a hole).
//! The floor never goes past the collector's clock at the eviction: a key
//! holder who floods a gateway's name with datagrams "sent" in the future
//! would otherwise push the floor ahead and lock the real gateway's
//! reports out until then. A captured real datagram was sent before it was
//! received, so it stays below the floor.
//! The guard is rebuilt from the recent event rows at start, so a restart
//! does not accept a replay.

use std::collections::HashMap;

/// Most remembered parts per gateway (a report a minute with a 300 s window
/// needs about ten).
pub(crate) const CAP_PER_GATEWAY: usize = 4096;

/// What to do with a datagram that is otherwise good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Never seen: write, then ack.
    Fresh,
    /// Seen and written already: ack again, write nothing.
    Duplicate,
    /// Not seen, but older than what had to be forgotten: refuse.
    Replay,
}

#[derive(Default, Debug)]
struct Seen {
    /// (seq, part) -> sent
    parts: HashMap<(u64, u32), u64>,
    /// Unseen datagrams sent at or before this are refused.
    floor: Option<u64>,
}

/// The set of accepted parts within the time window.
#[derive(Debug)]
pub(crate) struct ReplayGuard {
    window: u64,
    cap: usize,
    gateways: HashMap<String, Seen>,
}

impl ReplayGuard {
    /// `window` is the skew window in seconds (`--max-skew`).
    pub(crate) fn new(window: u64, cap_per_gateway: usize) -> ReplayGuard {
        ReplayGuard {
            window,
            cap: cap_per_gateway.max(1),
            gateways: HashMap::new(),
        }
    }

    pub(crate) fn check(&self, gateway: &str, seq: u64, part: u32, sent: u64) -> Verdict {
        let Some(seen) = self.gateways.get(gateway) else {
            return Verdict::Fresh;
        };
        if seen.parts.contains_key(&(seq, part)) {
            Verdict::Duplicate
        } else if seen.floor.is_some_and(|f| sent <= f) {
            Verdict::Replay
        } else {
            Verdict::Fresh
        }
    }

    /// Remembers an accepted (written) part, at collector time `now`.
    pub(crate) fn record(&mut self, gateway: &str, seq: u64, part: u32, sent: u64, now: u64) {
        if !self.gateways.contains_key(gateway) {
            self.gateways.insert(gateway.to_string(), Seen::default());
        }
        let Some(seen) = self.gateways.get_mut(gateway) else {
            return;
        };
        seen.parts.insert((seq, part), sent);
        while seen.parts.len() > self.cap {
            let Some((&k, &s)) = seen.parts.iter().min_by_key(|(k, s)| (**s, k.0, k.1)) else {
                break;
            };
            seen.parts.remove(&k);
            let s = s.min(now);
            seen.floor = Some(seen.floor.map_or(s, |f| f.max(s)));
        }
    }

    /// Forgets parts sent more than the window before `now`.
    pub(crate) fn expire(&mut self, now: u64) {
        let horizon = now.saturating_sub(self.window);
        self.gateways.retain(|_, seen| {
            seen.parts.retain(|_, sent| *sent >= horizon);
            if seen.floor.is_some_and(|f| f < horizon) {
                seen.floor = None;
            }
            !seen.parts.is_empty() || seen.floor.is_some()
        });
    }

    /// Remembered parts, all gateways.
    pub(crate) fn len(&self) -> usize {
        self.gateways.values().map(|s| s.parts.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_until_the_window_passes() {
        let mut g = ReplayGuard::new(300, 16);
        assert_eq!(g.check("gw", 5, 1, 1000), Verdict::Fresh);
        g.record("gw", 5, 1, 1000, 1000);
        assert_eq!(g.check("gw", 5, 1, 1000), Verdict::Duplicate);
        assert_eq!(g.check("gw", 5, 2, 1000), Verdict::Fresh);
        assert_eq!(g.check("other", 5, 1, 1000), Verdict::Fresh);
        g.expire(1300);
        assert_eq!(g.len(), 1);
        g.expire(1301);
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn the_cap_holds_and_leaves_a_floor() {
        let mut g = ReplayGuard::new(300, 4);
        for seq in 0..10 {
            g.record("gw", seq, 1, 1000 + seq, 1010);
        }
        assert_eq!(g.len(), 4);
        // seq 3 was forgotten: refused, not taken as new.
        assert_eq!(g.check("gw", 3, 1, 1003), Verdict::Replay);
        assert_eq!(g.check("gw", 9, 1, 1009), Verdict::Duplicate);
        assert_eq!(g.check("gw", 10, 1, 1010), Verdict::Fresh);
    }

    #[test]
    fn a_burst_sent_ahead_in_a_gateways_name_does_not_lock_it_out() {
        let now = 1_000_000;
        let mut g = ReplayGuard::new(300, CAP_PER_GATEWAY);
        // The real gateway's report, then a key holder's burst in its name
        // "sent" 290 s ahead, more than the guard holds.
        g.record("gw", now * 1_000_000, 1, now, now);
        for i in 0..CAP_PER_GATEWAY as u64 + 100 {
            g.record("gw", (now + 290) * 1_000_000 + i, 1, now + 290, now + 1);
        }
        assert_eq!(g.len(), CAP_PER_GATEWAY);
        // The real gateway's next report, a minute later: taken.
        let next = now + 60;
        assert_eq!(g.check("gw", next * 1_000_000, 1, next), Verdict::Fresh);
        // A replay of its first report is still refused.
        assert_ne!(g.check("gw", now * 1_000_000, 1, now), Verdict::Fresh);
    }
}
