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
//!
//! No operation scans a gateway's parts, so a full set costs what a small
//! one does: the parts are also kept in the order of eviction (send time,
//! then `seq`, then `part`) in a B-tree, the part the cap forces out is the
//! tree's first, and expiry takes from the front until it reaches the
//! window.

use std::collections::{BTreeSet, HashMap};

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
    /// The same parts as (sent, seq, part): the first is the one to forget.
    order: BTreeSet<(u64, u64, u32)>,
    /// Unseen datagrams sent at or before this are refused.
    floor: Option<u64>,
}

impl Seen {
    /// Forgets the part first in line (oldest send time, then lowest
    /// `seq` and `part`); its send time, at most `now`, raises the floor.
    fn evict_first(&mut self, now: u64) {
        let Some((sent, seq, part)) = self.order.pop_first() else {
            return;
        };
        self.parts.remove(&(seq, part));
        let s = sent.min(now);
        self.floor = Some(self.floor.map_or(s, |f| f.max(s)));
    }
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
        let seen = match self.gateways.get_mut(gateway) {
            Some(seen) => seen,
            None => self.gateways.entry(gateway.to_string()).or_default(),
        };
        if let Some(before) = seen.parts.insert((seq, part), sent) {
            seen.order.remove(&(before, seq, part));
        }
        seen.order.insert((sent, seq, part));
        while seen.parts.len() > self.cap {
            seen.evict_first(now);
        }
    }

    /// Forgets parts sent more than the window before `now`.
    pub(crate) fn expire(&mut self, now: u64) {
        let horizon = now.saturating_sub(self.window);
        self.gateways.retain(|_, seen| {
            while let Some(&(sent, seq, part)) = seen.order.first()
                && sent < horizon
            {
                seen.order.pop_first();
                seen.parts.remove(&(seq, part));
            }
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
    use proptest::prelude::*;

    /// The guard as it was before the eviction order was kept: the oldest
    /// part found by a scan. The reference the property test holds the
    /// guard to.
    struct Scanning {
        window: u64,
        cap: usize,
        gateways: HashMap<String, ScanSeen>,
    }

    /// A gateway's parts ((seq, part) -> sent) and floor.
    type ScanSeen = (HashMap<(u64, u32), u64>, Option<u64>);

    impl Scanning {
        fn check(&self, gateway: &str, seq: u64, part: u32, sent: u64) -> Verdict {
            let Some((parts, floor)) = self.gateways.get(gateway) else {
                return Verdict::Fresh;
            };
            if parts.contains_key(&(seq, part)) {
                Verdict::Duplicate
            } else if floor.is_some_and(|f| sent <= f) {
                Verdict::Replay
            } else {
                Verdict::Fresh
            }
        }

        fn record(&mut self, gateway: &str, seq: u64, part: u32, sent: u64, now: u64) {
            let (parts, floor) = self.gateways.entry(gateway.to_string()).or_default();
            parts.insert((seq, part), sent);
            while parts.len() > self.cap.max(1) {
                let Some((&k, &s)) = parts.iter().min_by_key(|(k, s)| (**s, k.0, k.1)) else {
                    break;
                };
                parts.remove(&k);
                let s = s.min(now);
                *floor = Some(floor.map_or(s, |f| f.max(s)));
            }
        }

        fn expire(&mut self, now: u64) {
            let horizon = now.saturating_sub(self.window);
            self.gateways.retain(|_, (parts, floor)| {
                parts.retain(|_, sent| *sent >= horizon);
                if floor.is_some_and(|f| f < horizon) {
                    *floor = None;
                }
                !parts.is_empty() || floor.is_some()
            });
        }

        fn len(&self) -> usize {
            self.gateways.values().map(|(p, _)| p.len()).sum()
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Record {
            gw: u8,
            seq: u64,
            part: u32,
            sent: u64,
            now: u64,
        },
        Check {
            gw: u8,
            seq: u64,
            part: u32,
            sent: u64,
        },
        Expire {
            now: u64,
        },
    }

    /// Small ranges, so that parts repeat, send times tie, caps are hit and
    /// expiry reaches some parts and not others.
    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..3, 0u64..40, 1u32..4, 0u64..60, 0u64..80)
                .prop_map(|(gw, seq, part, sent, now)| Op::Record { gw, seq, part, sent, now }),
            4 => (0u8..3, 0u64..40, 1u32..4, 0u64..60)
                .prop_map(|(gw, seq, part, sent)| Op::Check { gw, seq, part, sent }),
            1 => (0u64..120).prop_map(|now| Op::Expire { now }),
        ]
    }

    /// Prints what a record costs once a gateway holds the cap, for this
    /// guard and the scanning one, interleaved (median of 7 rounds of
    /// 20,000 records each), and below the cap. Run by hand in release
    /// (docs/benchmarks.md); it asserts nothing about time.
    #[test]
    #[ignore = "a measurement, run by hand: cargo test --release -p collector --lib replay -- --ignored --nocapture"]
    fn print_the_cost_of_a_record_below_and_past_the_cap() {
        const N: u64 = 20_000;
        let time = |f: &mut dyn FnMut(u64)| {
            let t = std::time::Instant::now();
            for i in 0..N {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / N as f64
        };
        let now = 1_000_000;
        let fill = |record: &mut dyn FnMut(u64, u64)| {
            for seq in 0..CAP_PER_GATEWAY as u64 {
                record(seq, now);
            }
        };
        let (mut new_past, mut old_past, mut new_below) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..7u64 {
            let base = (round + 1) * 1_000_000;
            let mut new = ReplayGuard::new(300, CAP_PER_GATEWAY);
            fill(&mut |seq, sent| new.record("gw", seq, 1, sent, now));
            new_past.push(time(&mut |i| new.record("gw", base + i, 1, now, now)));
            let mut old = Scanning {
                window: 300,
                cap: CAP_PER_GATEWAY,
                gateways: HashMap::new(),
            };
            fill(&mut |seq, sent| old.record("gw", seq, 1, sent, now));
            old_past.push(time(&mut |i| old.record("gw", base + i, 1, now, now)));
            let mut roomy = ReplayGuard::new(300, usize::MAX);
            new_below.push(time(&mut |i| roomy.record("gw", base + i, 1, now, now)));
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "replay guard, ns a record: past the cap {:.0} (scanning guard: {:.0}); below the cap {:.0}",
            median(new_past),
            median(old_past),
            median(new_below)
        );
    }

    proptest! {
        /// Any sequence of records, checks and expiries gives the same
        /// verdicts and counts as the scanning guard.
        #[test]
        fn the_guard_decides_as_the_scanning_one_did(
            cap in 1usize..8,
            window in 1u64..40,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let mut new = ReplayGuard::new(window, cap);
            let mut old = Scanning { window, cap, gateways: HashMap::new() };
            let name = |gw: u8| format!("gw{gw}");
            for op in ops {
                match op {
                    Op::Record { gw, seq, part, sent, now } => {
                        new.record(&name(gw), seq, part, sent, now);
                        old.record(&name(gw), seq, part, sent, now);
                    }
                    Op::Check { gw, seq, part, sent } => {
                        prop_assert_eq!(
                            new.check(&name(gw), seq, part, sent),
                            old.check(&name(gw), seq, part, sent)
                        );
                    }
                    Op::Expire { now } => {
                        new.expire(now);
                        old.expire(now);
                    }
                }
                prop_assert_eq!(new.len(), old.len());
                for (gw, seen) in &new.gateways {
                    let (parts, floor) = &old.gateways[gw];
                    prop_assert_eq!(&seen.parts, parts);
                    prop_assert_eq!(seen.floor, *floor);
                    prop_assert_eq!(seen.order.len(), seen.parts.len());
                }
                prop_assert_eq!(new.gateways.len(), old.gateways.len());
            }
        }
    }

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
