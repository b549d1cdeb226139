//! What happened over a range of time ending now (24 h, 7 d, 30 d and any
//! given with `--range`): per gateway the tunnel count over time (bucketed
//! for a chart), the tunnel sessions as bars from first to last seen, the
//! availability as a share of *time* and the silences; and the message log.
//!
//! Everything here is derived from `state::Tracker`, never from rows, and
//! every list is capped: a range says how many items it left out instead of
//! handing the templates a hundred thousand rows.

use gateway_client::tunnel::Tunnel;

use crate::logs::Catalog;
use crate::state::{GatewayTrack, Message, Session, Tracker};

/// Buckets of a tunnel-count chart.
pub const BUCKETS: usize = 240;
/// Session bars drawn per gateway and range.
pub const MAX_BARS: usize = 40;
/// Silences listed per gateway and range.
pub const MAX_SILENCES: usize = 20;
/// Messages listed per range.
pub const MAX_MESSAGES: usize = 100;

/// A history range: the `secs` seconds before now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// `24h`, `7d`, …: also the anchor on the page.
    pub label: String,
    pub secs: u64,
}

/// One chart bucket: the tunnel counts reported in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub min: u32,
    pub max: u32,
}

/// A tunnel session clipped to the range.
#[derive(Clone, Debug)]
pub struct Bar {
    pub tunnel: Tunnel,
    pub first: u64,
    pub last: u64,
    /// Still in the latest report.
    pub open: bool,
}

#[derive(Clone, Debug)]
pub struct GatewayHistory {
    pub name: String,
    /// `BUCKETS` buckets over the range; `None` where no report came.
    pub buckets: Vec<Option<Bucket>>,
    pub max_count: u32,
    /// The part of the range this gateway's availability is measured over:
    /// from its first event (or the range start, if later) to now.
    pub window: (u64, u64),
    /// Seconds of that window inside silences (gaps longer than the late
    /// threshold, including one still going on now).
    pub silent: u64,
    /// Silences overlapping the range, newest first, at most `MAX_SILENCES`.
    pub silences: Vec<(u64, u64)>,
    pub silences_total: usize,
    /// Session bars, ordered by first seen, at most `MAX_BARS` (the newest).
    pub bars: Vec<Bar>,
    pub bars_total: usize,
    pub reports: usize,
}

impl GatewayHistory {
    /// Availability in [0, 1]; `None` for an empty window.
    pub fn availability(&self) -> Option<f64> {
        let len = self.window.1.saturating_sub(self.window.0);
        (len > 0).then(|| 1.0 - (self.silent.min(len) as f64 / len as f64))
    }
}

#[derive(Clone, Debug)]
pub struct RangeHistory {
    pub range: Range,
    pub start: u64,
    pub end: u64,
    /// The earliest data in the logs is later than `start`: the range is
    /// longer than the data.
    pub data_start: Option<u64>,
    pub gateways: Vec<GatewayHistory>,
    /// Newest first, at most `MAX_MESSAGES`.
    pub messages: Vec<(String, Message)>,
    pub messages_total: usize,
}

impl RangeHistory {
    pub fn longer_than_data(&self) -> bool {
        self.data_start.is_some_and(|d| d > self.start)
    }
}

/// Builds the history of every range. `data_start` is the earliest event
/// in the logs read; `late` the late threshold (for an ongoing silence).
pub fn build(
    tracker: &Tracker,
    catalog: &Catalog,
    now: u64,
    ranges: &[Range],
    data_start: Option<u64>,
    late: u64,
) -> Vec<RangeHistory> {
    ranges
        .iter()
        .map(|range| {
            let start = now.saturating_sub(range.secs);
            let gateways = tracker
                .gateways_by_name(catalog)
                .into_iter()
                .filter(|g| g.last_heard >= start)
                .map(|g| gateway(g, catalog, start, now, late))
                .collect();
            let in_range = |m: &&Message| m.received >= start && m.received <= now;
            let messages_total = tracker.messages.iter().filter(in_range).count();
            let messages = tracker
                .messages
                .iter()
                .rev()
                .filter(in_range)
                .take(MAX_MESSAGES)
                .map(|m| (catalog.gateway(m.gateway).to_string(), m.clone()))
                .collect();
            RangeHistory {
                range: range.clone(),
                start,
                end: now,
                data_start,
                gateways,
                messages,
                messages_total,
            }
        })
        .collect()
}

fn gateway(g: &GatewayTrack, catalog: &Catalog, start: u64, end: u64, late: u64) -> GatewayHistory {
    let len = end.saturating_sub(start).max(1);
    // Tunnel counts, bucketed.
    let mut buckets: Vec<Option<Bucket>> = vec![None; BUCKETS];
    let from = g.series.partition_point(|&(t, _)| t < start);
    let mut reports = 0;
    let mut max_count = 0;
    for &(t, n) in &g.series[from..] {
        if t > end {
            break;
        }
        reports += 1;
        max_count = max_count.max(n);
        let i = (((t - start) as u128 * BUCKETS as u128 / len as u128) as usize).min(BUCKETS - 1);
        let b = buckets[i].get_or_insert(Bucket { min: n, max: n });
        b.min = b.min.min(n);
        b.max = b.max.max(n);
    }

    // Silences, including one going on now.
    let mut all: Vec<(u64, u64)> = g
        .silences
        .iter()
        .copied()
        .filter(|&(a, b)| b >= start && a <= end)
        .collect();
    if end > g.last_heard.saturating_add(late) {
        all.push((g.last_heard, end));
    }
    let window = (start.max(g.first_heard), end);
    let silent: u64 = all
        .iter()
        .map(|&(a, b)| b.min(window.1).saturating_sub(a.max(window.0)))
        .sum();
    let silences_total = all.len();
    let silences: Vec<(u64, u64)> = all.iter().rev().take(MAX_SILENCES).copied().collect();

    // Session bars: the closed sessions overlapping the range, then the open ones.
    let first_closed = g
        .closed
        .partition_point(|s| s.ended.unwrap_or(s.last) < start);
    let overlaps = |s: &&Session| s.last >= start && s.first <= end;
    let mut sessions: Vec<(&Session, bool)> = g.closed[first_closed..]
        .iter()
        .filter(overlaps)
        .map(|s| (s, false))
        .chain(g.open.iter().filter(overlaps).map(|s| (s, true)))
        .collect();
    let bars_total = sessions.len();
    // Keep the most recently seen, then draw them in order of first seen.
    sessions.sort_by(|a, b| b.0.last.cmp(&a.0.last).then(a.0.first.cmp(&b.0.first)));
    sessions.truncate(MAX_BARS);
    sessions.sort_by(|a, b| {
        (a.0.first, catalog.tunnel(a.0.id).tunnel.listen_port)
            .cmp(&(b.0.first, catalog.tunnel(b.0.id).tunnel.listen_port))
    });
    let bars = sessions
        .into_iter()
        .map(|(s, open)| Bar {
            tunnel: catalog.tunnel(s.id).tunnel.clone(),
            first: s.first,
            last: s.last,
            open,
        })
        .collect();

    GatewayHistory {
        name: catalog.gateway(g.id).to_string(),
        buckets,
        max_count,
        window,
        silent,
        silences,
        silences_total,
        bars,
        bars_total,
        reports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_is_share_of_time() {
        let h = GatewayHistory {
            name: "g".into(),
            buckets: vec![],
            max_count: 0,
            window: (1000, 2000),
            silent: 250,
            silences: vec![],
            silences_total: 0,
            bars: vec![],
            bars_total: 0,
            reports: 0,
        };
        assert_eq!(h.availability(), Some(0.75));
    }
}
