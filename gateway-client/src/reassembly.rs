//! Split reports put back together: parts may come in any order and more
//! than once. The client splits ([`crate::wire::encode_all`]); the
//! collector reassembles, bounded per gateway.
//!
//! In the collector every part held here was written and acked, so giving a report up loses
//! what its gateway said: it is never done silently. At most
//! [`PER_GATEWAY`] reports of one gateway wait at once (a new one evicts
//! that gateway's oldest), so a burst of incomplete reports in one
//! gateway's name cannot push another gateway's report out; at most
//! [`TOTAL`] reports and [`TOTAL_PARTS`] parts wait in all (then the
//! gateway holding the most parts gives its oldest report up, so a key
//! holder must spread a burst over hundreds of names to reach a real
//! gateway's report, and even then it is said and counted). A report waits at most `max_age` seconds (the skew window:
//! a later part would be refused as stale anyway). Each report given up is
//! returned as a [`Dropped`] for ingest to log and count.

use std::collections::HashMap;

use crate::wire::{Body, MAX_PARTS, Report};

/// Incomplete reports of one gateway held at once.
pub const PER_GATEWAY: usize = 4;
/// Incomplete reports held at once, all gateways.
pub const TOTAL: usize = 1024;
/// Parts of incomplete reports held at once, all gateways: with parts of
/// at most 1,400 bytes, about 23 MB.
pub(crate) const TOTAL_PARTS: usize = 16_384;

struct Pending {
    first_seen: u64,
    parts: Vec<Option<Body>>,
    have: u32,
}

/// A report given up before it completed; its parts are in the logs.
#[derive(Debug, PartialEq, Eq)]
pub struct Dropped {
    pub gateway: String,
    pub seq: u64,
    pub have: u32,
    pub parts: u32,
    /// Evicted to make room (else: waited longer than the window).
    pub evicted: bool,
}

/// The reports waiting, by gateway and seq.
pub struct Reassembler {
    max_age: u64,
    waiting: HashMap<String, HashMap<u64, Pending>>,
    count: usize,
    parts_held: usize,
    /// At most the earliest `first_seen` of the reports waiting (`u64::MAX`
    /// when none is): while it is within `max_age` of now, nothing can
    /// expire and [`Reassembler::expire`] need not look (every part added
    /// calls it).
    oldest: u64,
}

impl Reassembler {
    pub fn new(max_age: u64) -> Reassembler {
        Reassembler {
            max_age,
            waiting: HashMap::new(),
            count: 0,
            parts_held: 0,
            oldest: u64::MAX,
        }
    }

    /// Reports waiting for more parts.
    pub fn pending(&self) -> usize {
        self.count
    }

    /// Gives up the reports first seen more than `max_age` before `now`.
    pub fn expire(&mut self, now: u64) -> Vec<Dropped> {
        let mut dropped = Vec::new();
        if now.saturating_sub(self.oldest) <= self.max_age {
            return dropped;
        }
        for (gateway, reports) in &mut self.waiting {
            reports.retain(|&seq, p| {
                let keep = now.saturating_sub(p.first_seen) <= self.max_age;
                if !keep {
                    dropped.push(dropped_of(gateway, seq, p, false));
                }
                keep
            });
        }
        self.waiting.retain(|_, r| !r.is_empty());
        self.oldest = self
            .waiting
            .values()
            .flat_map(HashMap::values)
            .map(|p| p.first_seen)
            .min()
            .unwrap_or(u64::MAX);
        self.count -= dropped.len();
        self.parts_held -= dropped.iter().map(|d| d.have as usize).sum::<usize>();
        dropped
    }

    /// Adds one part (already written and acked); returns the report when
    /// it completes, and the reports given up to make room.
    pub fn add(&mut self, part: Body, now: u64) -> (Option<Report>, Vec<Dropped>) {
        if part.parts <= 1 {
            return (Some(report_of(part, Vec::new())), Vec::new());
        }
        if part.part == 0 || part.part > part.parts || part.parts > MAX_PARTS {
            return (None, Vec::new());
        }
        let mut dropped = self.expire(now);
        let (gw, seq, n) = (part.gateway.clone(), part.seq, part.parts as usize);
        let known = |r: &Reassembler| r.waiting.get(&gw).is_some_and(|r| r.contains_key(&seq));
        if !known(self)
            && self
                .waiting
                .get(&gw)
                .is_some_and(|r| r.len() >= PER_GATEWAY)
        {
            dropped.extend(self.evict_oldest_of(&gw));
        }
        // Room for one more part, and for this report if it is new.
        while self.count + usize::from(!known(self)) > TOTAL || self.parts_held >= TOTAL_PARTS {
            let busiest = self
                .waiting
                .iter()
                .max_by_key(|(_, r)| (held(r), std::cmp::Reverse(oldest(r))))
                .map(|(g, _)| g.clone());
            match busiest.and_then(|g| self.evict_oldest_of(&g)) {
                Some(d) => dropped.push(d),
                None => break,
            }
        }
        if !known(self) {
            self.count += 1;
            self.oldest = self.oldest.min(now);
        }
        let reports = self.waiting.entry(gw.clone()).or_default();
        let entry = reports.entry(seq).or_insert_with(|| Pending {
            first_seen: now,
            parts: vec![None; n],
            have: 0,
        });
        if entry.parts.len() != n {
            return (None, dropped); // a part that disagrees on the count
        }
        let slot = &mut entry.parts[part.part as usize - 1];
        if slot.is_none() {
            *slot = Some(part);
            entry.have += 1;
            self.parts_held += 1;
        }
        if entry.have as usize != n {
            return (None, dropped);
        }
        let done = reports.remove(&seq);
        if reports.is_empty() {
            self.waiting.remove(&gw);
        }
        self.count -= 1;
        self.parts_held -= n;
        let mut bodies = done.into_iter().flat_map(|d| d.parts).flatten();
        let Some(first) = bodies.next() else {
            return (None, dropped);
        };
        (Some(report_of(first, bodies.collect())), dropped)
    }

    fn evict_oldest_of(&mut self, gateway: &str) -> Option<Dropped> {
        let reports = self.waiting.get_mut(gateway)?;
        let (&seq, _) = reports.iter().min_by_key(|(s, p)| (p.first_seen, **s))?;
        let p = reports.remove(&seq)?;
        if reports.is_empty() {
            self.waiting.remove(gateway);
        }
        self.count -= 1;
        self.parts_held -= p.have as usize;
        Some(dropped_of(gateway, seq, &p, true))
    }
}

/// Parts a gateway's waiting reports hold.
fn held(reports: &HashMap<u64, Pending>) -> u32 {
    reports.values().map(|p| p.have).sum()
}

fn oldest(reports: &HashMap<u64, Pending>) -> u64 {
    reports.values().map(|p| p.first_seen).min().unwrap_or(0)
}

fn dropped_of(gateway: &str, seq: u64, p: &Pending, evicted: bool) -> Dropped {
    Dropped {
        gateway: gateway.to_string(),
        seq,
        have: p.have,
        parts: u32::try_from(p.parts.len()).unwrap_or(u32::MAX),
        evicted,
    }
}

/// The report of its first part's fields and all parts' tunnels.
fn report_of(first: Body, rest: Vec<Body>) -> Report {
    let mut report = Report {
        gateway: first.gateway,
        kind: first.kind,
        seq: first.seq,
        sent: first.sent,
        parts: first.parts,
        text: first.text,
        tunnels: first.tunnels,
        period: first.period,
        until: first.until,
    };
    for b in rest {
        report.tunnels.extend(b.tunnels);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MsgKind;

    fn part(gw: &str, seq: u64, part: u32, parts: u32) -> Body {
        Body {
            gateway: gw.into(),
            kind: MsgKind::Report,
            seq,
            sent: 1000,
            part,
            parts,
            text: String::new(),
            tunnels: vec![crate::tunnel::Tunnel {
                pid: part,
                ..Default::default()
            }],
            period: None,
            until: None,
        }
    }

    #[test]
    fn a_burst_of_other_incomplete_reports_does_not_evict_an_acked_split_report() {
        let mut r = Reassembler::new(300);
        assert_eq!(r.add(part("real", 1, 1, 2), 1000), (None, vec![]));
        // 100 incomplete reports in ten other names between its parts.
        let mut dropped = Vec::new();
        for i in 0..100 {
            dropped.extend(
                r.add(part(&format!("junk{}", i % 10), 10 + i, 1, 2), 1001)
                    .1,
            );
        }
        assert_eq!(r.pending(), 1 + 10 * PER_GATEWAY);
        assert_eq!(dropped.len(), 100 - 10 * PER_GATEWAY);
        assert!(dropped.iter().all(|d| d.gateway != "real" && d.evicted));
        let (report, _) = r.add(part("real", 1, 2, 2), 1002);
        assert_eq!(report.map(|r| r.tunnels.len()), Some(2));
    }

    #[test]
    fn a_gateway_holds_at_most_its_share_and_every_report_given_up_is_returned() {
        let mut r = Reassembler::new(300);
        let mut dropped = Vec::new();
        for seq in 0..10 {
            dropped.extend(r.add(part("gw", seq, 1, 3), 1000 + seq).1);
        }
        assert_eq!(r.pending(), PER_GATEWAY);
        assert_eq!(dropped.len(), 10 - PER_GATEWAY);
        assert_eq!(
            dropped[0],
            Dropped {
                gateway: "gw".into(),
                seq: 0,
                have: 1,
                parts: 3,
                evicted: true
            }
        );
        let expired = r.expire(1000 + 9 + 301);
        assert_eq!(expired.len(), PER_GATEWAY);
        assert!(expired.iter().all(|d| !d.evicted));
        assert_eq!(r.pending(), 0);
    }

    /// Expiry gives up each report once it is due, not before, whatever
    /// the order of the calls (the scan is skipped only while nothing can
    /// be due), and a clock that went back expires nothing early.
    #[test]
    fn each_report_expires_when_due_and_not_before() {
        let mut r = Reassembler::new(300);
        let seqs = |d: Vec<Dropped>| d.iter().map(|d| d.seq).collect::<Vec<_>>();
        r.add(part("a", 1, 1, 2), 1000);
        r.add(part("b", 2, 1, 2), 1200);
        r.add(part("c", 3, 1, 2), 1250);
        assert_eq!(r.expire(1300), []);
        assert_eq!(r.expire(900), []);
        assert_eq!(seqs(r.expire(1301)), [1]);
        assert_eq!(r.expire(1500), []);
        assert_eq!(seqs(r.expire(1501)), [2]);
        assert_eq!(seqs(r.add(part("d", 4, 1, 2), 1551).1), [3]);
        assert_eq!(r.pending(), 1);
    }

    #[test]
    fn the_parts_held_in_all_are_bounded_and_the_busiest_gateway_gives_way() {
        let mut r = Reassembler::new(300);
        let mut dropped = Vec::new();
        // Five gateways' huge incomplete reports (more parts than are held
        // in all), then a small real one.
        for g in 0..5 {
            for seq in 0..PER_GATEWAY as u64 {
                for p in 1..MAX_PARTS {
                    dropped.extend(r.add(part(&format!("big{g}"), seq, p, MAX_PARTS), 1000).1);
                }
            }
        }
        assert!(r.parts_held <= TOTAL_PARTS);
        assert!(!dropped.is_empty());
        dropped.extend(r.add(part("real", 1, 1, 2), 1001).1);
        assert!(r.parts_held <= TOTAL_PARTS);
        assert!(dropped.iter().all(|d| d.gateway.starts_with("big")));
        assert_eq!(
            r.add(part("real", 1, 2, 2), 1002)
                .0
                .map(|r| r.tunnels.len()),
            Some(2)
        );
    }

    #[test]
    fn five_hundred_tunnels_split_and_reassemble_in_any_order() {
        use crate::wire::{MAX_DATAGRAM, decode, encode_all};
        let key = crate::key::Key::from_text("9f3b1c0d2e4a5968778695a4b3c2d1e0");
        let body = Body {
            tunnels: (0..500)
                .map(|i| crate::tunnel::Tunnel {
                    pid: i,
                    listen_port: 5900 + (i % 100) as u16,
                    target_host: format!("novadaq-far-master-{i:03}"),
                    ..Default::default()
                })
                .collect(),
            ..part("gw", 7, 1, 1)
        };
        let mut parts = encode_all(&key, &body).unwrap();
        assert!(parts.len() > 50, "{} parts", parts.len());
        assert!(parts.iter().all(|(_, d)| d.len() <= MAX_DATAGRAM));
        parts.reverse();
        let mut r = Reassembler::new(60);
        let mut done = None;
        for (i, (_, d)) in parts.iter().enumerate() {
            let b = decode(&key, d).unwrap();
            done = r.add(b.clone(), 10).0;
            if i + 1 < parts.len() {
                assert!(done.is_none(), "complete early at part {i}");
                // A duplicate changes nothing.
                assert!(r.add(b, 10).0.is_none());
            }
        }
        let done = done.expect("complete");
        assert_eq!(done.tunnels, body.tunnels);
        assert_eq!(r.pending(), 0);
    }
}
