//! What happened over a range of time ending now (24 h, 7 d, 30 d and any
//! given with `--range`): per gateway the tunnel count over time (bucketed
//! for a chart), the tunnel sessions as bars from first to last seen (one
//! lane per owner, listen port and target, so a tunnel that is restarted
//! with a new pid stays on its row), the
//! availability as a share of *time* and the silences; and the message log.
//!
//! Everything here is derived from `state::Tracker`, never from rows, and
//! every list is capped: a range says how many items it left out instead of
//! handing the templates a hundred thousand rows. Timeline lanes beyond the
//! drawn ones are kept as [`GatewayHistory::hidden_lanes`], listed on the
//! page without bars, never dropped.
//!
//! A tunnel found not listening is not up: it is not counted in the chart
//! (`state::GatewayTrack::series`) and its bar is not drawn as still up
//! ([`Lane::broken`]).

use std::collections::HashMap;

use gateway_client::tunnel::{Health, Tunnel};
use logs::LaneKey;
use logs::inventory::{Expected, TunnelState};
use rustc_hash::FxBuildHasher;

use crate::logs::{Catalog, TunnelId};
use crate::series::Summary;
use crate::state::{GatewayTrack, Message, Session, Tracker};

/// Buckets of a tunnel-count chart.
pub(crate) const BUCKETS: usize = 240;
/// Timeline lanes drawn per gateway and range.
pub(crate) const MAX_LANES: usize = 40;
/// Bars drawn per lane (the newest).
pub(crate) const MAX_SEGMENTS: usize = 200;
/// Silences listed per gateway and range.
pub(crate) const MAX_SILENCES: usize = 20;
/// Messages listed per range.
pub(crate) const MAX_MESSAGES: usize = 100;
/// Outages listed per ROC and range (the newest).
pub(crate) const MAX_OUTAGES: usize = 50;

/// A history range: the `secs` seconds before now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    /// `24h`, `7d`, …: also the anchor on the page.
    pub label: String,
    pub secs: u64,
}

/// One chart bucket: the tunnel counts reported in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub min: u32,
    pub max: u32,
}

/// One timeline row: the sessions of one owner, listen port and target.
#[derive(Clone, Debug)]
pub(crate) struct Lane<'a> {
    /// The tunnel of its latest session (the catalog's), and its id.
    pub tunnel: &'a Tunnel,
    pub(crate) id: TunnelId,
    /// (first seen, last seen, still up: open and not found not listening),
    /// oldest first, at most `MAX_SEGMENTS`.
    pub segments: Vec<(u64, u64, bool)>,
    pub segments_total: usize,
    /// Its session is still open, but its latest report found it not
    /// listening: running, not up.
    pub broken: bool,
    /// The stretches its tunnels were in use (`logs::usage`), first to
    /// last report, oldest first, at most `MAX_SEGMENTS`.
    pub in_use: Vec<(u64, u64)>,
}

impl Lane<'_> {
    pub(crate) fn open(&self) -> bool {
        self.segments.iter().any(|s| s.2)
    }

    pub(crate) fn last_seen(&self) -> u64 {
        self.segments.iter().map(|s| s.1).max().unwrap_or(0)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct GatewayHistory<'a> {
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
    /// Timeline lanes, ordered by first seen, at most `MAX_LANES` (the most
    /// recently seen).
    pub lanes: Vec<Lane<'a>>,
    pub lanes_total: usize,
    /// The lanes not drawn (seen longest ago), most recently seen first.
    pub hidden_lanes: Vec<Lane<'a>>,
    /// Sessions overlapping the range.
    pub sessions: usize,
    pub reports: usize,
}

impl GatewayHistory<'_> {
    /// Availability in [0, 1]; `None` for an empty window.
    pub(crate) fn availability(&self) -> Option<f64> {
        let len = self.window.1.saturating_sub(self.window.0);
        (len > 0).then(|| 1.0 - (self.silent.min(len) as f64 / len as f64))
    }
}

/// A stretch during which an expected tunnel was missing, broken or on a
/// wrong target.
#[derive(Clone, Debug)]
pub(crate) struct Outage {
    pub entry: Expected,
    pub state: TunnelState,
    pub start: u64,
    /// When it left that state; `None`: still in it.
    pub end: Option<u64>,
    /// The state it went to.
    pub then: Option<TunnelState>,
}

/// One ROC's expected tunnels over a range.
#[derive(Clone, Debug)]
pub(crate) struct RocHistory {
    pub name: String,
    pub tunnels: usize,
    /// Seconds its expected tunnels were up, summed over them.
    pub up: u64,
    /// Seconds their state was known (up, missing, broken or on a wrong
    /// target); a gateway's silence is unknown, in neither.
    pub expected: u64,
    /// Newest first, at most `MAX_OUTAGES`.
    pub outages: Vec<Outage>,
    pub outages_total: usize,
}

impl RocHistory {
    /// Time up ÷ time expected; `None` when nothing was known.
    pub(crate) fn availability(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.up as f64 / self.expected as f64)
    }
}

/// The ROCs over `start..end`, in the order of their first entry: each
/// expected tunnel's states (`Judging::timeline`) cut to the range.
fn rocs(tracker: &Tracker, start: u64, end: u64) -> Vec<RocHistory> {
    let Some(inv) = tracker.judging.inventory() else {
        return Vec::new();
    };
    let mut out: Vec<RocHistory> = Vec::new();
    for (e, timeline) in inv.entries().iter().zip(&tracker.judging.timeline) {
        let i = match out.iter().position(|r| r.name == e.roc) {
            Some(i) => i,
            None => {
                out.push(RocHistory {
                    name: e.roc.clone(),
                    tunnels: 0,
                    up: 0,
                    expected: 0,
                    outages: Vec::new(),
                    outages_total: 0,
                });
                out.len() - 1
            }
        };
        let roc = &mut out[i];
        roc.tunnels += 1;
        for (k, &(from, state)) in timeline.iter().enumerate() {
            let next = timeline.get(k + 1).copied();
            let to = next.map_or(end, |n| n.0);
            let len = to.min(end).saturating_sub(from.max(start));
            if state == TunnelState::Up {
                roc.up += len;
                roc.expected += len;
            } else if state.is_problem() {
                roc.expected += len;
                if to > from && to > start && from <= end {
                    roc.outages.push(Outage {
                        entry: e.clone(),
                        state,
                        start: from,
                        end: next.map(|n| n.0),
                        then: next.map(|n| n.1),
                    });
                }
            }
        }
    }
    for roc in &mut out {
        roc.outages
            .sort_by_key(|o| (std::cmp::Reverse(o.start), o.entry.listen));
        roc.outages_total = roc.outages.len();
        roc.outages.truncate(MAX_OUTAGES);
    }
    out
}

#[derive(Clone, Debug)]
pub(crate) struct RangeHistory<'a> {
    pub range: Range,
    pub start: u64,
    pub end: u64,
    /// The earliest data in the logs is later than `start`: the range is
    /// longer than the data.
    pub data_start: Option<u64>,
    pub gateways: Vec<GatewayHistory<'a>>,
    /// The expected tunnels per ROC (empty without an inventory).
    pub rocs: Vec<RocHistory>,
    /// Newest first, at most `MAX_MESSAGES`.
    pub messages: Vec<(String, Message)>,
    pub messages_total: usize,
}

impl RangeHistory<'_> {
    pub(crate) fn longer_than_data(&self) -> bool {
        self.data_start.is_some_and(|d| d > self.start)
    }
}

/// Builds the history of one range. `data_start` is the earliest event
/// in the logs read; each gateway's thresholds say when a silence going on
/// now began.
pub(crate) fn build<'a>(
    tracker: &Tracker,
    catalog: &'a Catalog,
    now: u64,
    range: &Range,
    data_start: Option<u64>,
) -> RangeHistory<'a> {
    let start = now.saturating_sub(range.secs);
    let gateways = tracker
        .gateways_by_name(catalog)
        .into_iter()
        .filter(|g| g.last_heard >= start)
        .map(|g| gateway(g, catalog, start, now))
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
        rocs: rocs(tracker, start, now),
        messages,
        messages_total,
    }
}

fn gateway<'a>(g: &GatewayTrack, catalog: &'a Catalog, start: u64, end: u64) -> GatewayHistory<'a> {
    let (buckets, max_count, reports) = tunnel_counts(g, start, end);
    let window = (start.max(g.first_heard), end);
    let all = silences(g, start, end);
    let silent: u64 = all
        .iter()
        .map(|&(a, b)| b.min(window.1).saturating_sub(a.max(window.0)))
        .sum();
    let silences_total = all.len();
    let silences: Vec<(u64, u64)> = all.iter().rev().take(MAX_SILENCES).copied().collect();
    let (lanes, hidden_lanes, lanes_total, sessions) = lanes(g, catalog, start, end);
    GatewayHistory {
        name: catalog.gateway(g.id).to_string(),
        buckets,
        max_count,
        window,
        silent,
        silences,
        silences_total,
        lanes,
        lanes_total,
        hidden_lanes,
        sessions,
        reports,
    }
}

/// The tunnel counts reported in `start..=end`, bucketed: the buckets, the
/// largest count and the number of reports.
fn tunnel_counts(g: &GatewayTrack, start: u64, end: u64) -> (Vec<Option<Bucket>>, u32, usize) {
    let mut c = Counts::new(start, end);
    match g.series.chunks_from(start) {
        // In order: a block of reports that falls in one bucket is taken
        // whole, from its summary (a year's range takes nearly all so).
        Some(chunks) => {
            'chunks: for chunk in chunks {
                if let Some(s) = chunk.summary
                    && s.last <= end
                    && c.block(s)
                {
                    continue;
                }
                for (t, n) in chunk.reports {
                    if t > end {
                        break 'chunks;
                    }
                    c.report(t, n);
                }
            }
        }
        None => {
            for (t, n) in g.series.from(start) {
                if t > end {
                    break;
                }
                c.report(t, n);
            }
        }
    }
    (c.buckets, c.max_count, c.reports)
}

/// The chart buckets of `start..=end` as the reports are added.
struct Counts {
    start: u64,
    len: u64,
    buckets: Vec<Option<Bucket>>,
    max_count: u32,
    reports: usize,
    /// The bucket of the last report, and the offsets it spans: a
    /// report's bucket is `(t - start) × BUCKETS ÷ len`, and that division
    /// (128-bit) is done only when a report leaves the bucket before.
    i: usize,
    lo: u64,
    hi: u64,
}

impl Counts {
    fn new(start: u64, end: u64) -> Counts {
        let len = end.saturating_sub(start).max(1);
        let mut c = Counts {
            start,
            len,
            buckets: vec![None; BUCKETS],
            max_count: 0,
            reports: 0,
            i: 0,
            lo: 0,
            hi: 0,
        };
        c.hi = c.first_in(1);
        c
    }

    fn bucket_of(&self, d: u64) -> usize {
        ((d as u128 * BUCKETS as u128 / self.len as u128) as usize).min(BUCKETS - 1)
    }

    /// The first offset in bucket `i`; past the last one, none.
    fn first_in(&self, i: usize) -> u64 {
        match i {
            BUCKETS => u64::MAX,
            i => (i as u128 * self.len as u128).div_ceil(BUCKETS as u128) as u64,
        }
    }

    fn add(&mut self, i: usize, min: u32, max: u32) {
        self.max_count = self.max_count.max(max);
        let b = self.buckets[i].get_or_insert(Bucket { min, max });
        b.min = b.min.min(min);
        b.max = b.max.max(max);
    }

    /// A report at `t` (not before `start`) of `n` tunnels.
    fn report(&mut self, t: u64, n: u32) {
        let d = t - self.start;
        if d < self.lo || d >= self.hi {
            self.i = self.bucket_of(d);
            (self.lo, self.hi) = (self.first_in(self.i), self.first_in(self.i + 1));
        }
        self.reports += 1;
        self.add(self.i, n, n);
    }

    /// A block of reports in order, from `start` on: taken whole when they
    /// all fall in one bucket (false: they do not).
    fn block(&mut self, s: Summary) -> bool {
        let i = self.bucket_of(s.first - self.start);
        if i != self.bucket_of(s.last - self.start) {
            return false;
        }
        self.reports += s.len;
        self.add(i, s.min, s.max);
        true
    }
}

/// The silences overlapping `start..=end`, oldest first, including one
/// going on at `end`.
fn silences(g: &GatewayTrack, start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut all: Vec<(u64, u64)> = g
        .silences
        .iter()
        .copied()
        .filter(|&(a, b)| b >= start && a <= end)
        .collect();
    if g.thresholds.is_silence(end.saturating_sub(g.last_heard)) {
        all.push((g.last_heard, end));
    }
    all
}

/// The sessions overlapping `start..=end` (closed, then open), grouped in
/// lanes by [`LaneKey`]: the lanes drawn, how many there were, and how many
/// sessions.
fn lanes<'a>(
    g: &GatewayTrack,
    catalog: &'a Catalog,
    start: u64,
    end: u64,
) -> (Vec<Lane<'a>>, Vec<Lane<'a>>, usize, usize) {
    let first_closed = g
        .closed
        .partition_point(|s| s.ended.unwrap_or(s.last) < start);
    let overlaps = |s: &&Session| s.last >= start && s.first <= end;
    let mut index = LaneIndex::default();
    let mut lanes: Vec<Lane> = Vec::new();
    let mut sessions = 0;
    for (s, open) in g.closed[first_closed..]
        .iter()
        .filter(overlaps)
        .map(|s| (s, false))
        .chain(g.open.iter().filter(overlaps).map(|s| (s, true)))
    {
        sessions += 1;
        let t = &catalog.tunnel(s.id).tunnel;
        let i = match index.by_id.get(&s.id) {
            Some(&i) => i,
            None => {
                let i = *index.by_key.entry(LaneKey::of(t)).or_insert_with(|| {
                    lanes.push(Lane {
                        tunnel: t,
                        id: s.id,
                        // Most lanes hold one session.
                        segments: Vec::with_capacity(1),
                        segments_total: 0,
                        broken: false,
                        in_use: Vec::new(),
                    });
                    lanes.len() - 1
                });
                index.by_id.insert(s.id, i);
                i
            }
        };
        let lane = &mut lanes[i];
        lane.tunnel = t;
        lane.id = s.id;
        let not_listening = s.listening == Health::No;
        lane.broken = open && not_listening;
        lane.segments
            .push((s.first, s.last, open && !not_listening));
        lane.segments_total += 1;
        if lane.segments.len() >= 2 * MAX_SEGMENTS {
            lane.segments.sort_by_key(|x| x.0);
            lane.segments.drain(..MAX_SEGMENTS);
        }
    }
    for lane in &mut lanes {
        lane.segments.sort_by_key(|x| x.0);
        let extra = lane.segments.len().saturating_sub(MAX_SEGMENTS);
        lane.segments.drain(..extra);
    }
    in_use(g, catalog, start, end, &index, &mut lanes);
    let lanes_total = lanes.len();
    // Keep the most recently seen lanes, then draw them in order of first seen.
    lanes.sort_by_key(|l| std::cmp::Reverse(l.last_seen()));
    let hidden_lanes = lanes.split_off(lanes.len().min(MAX_LANES));
    lanes.sort_by_key(|l| (l.segments.first().map_or(0, |s| s.0), l.tunnel.listen_port));
    (lanes, hidden_lanes, lanes_total, sessions)
}

/// Which lane a tunnel is on: by its [`LaneKey`], and by its id, which
/// finds it again without hashing its strings (a range's in-use stretches
/// are hundreds of thousands over a year).
#[derive(Default)]
struct LaneIndex<'a> {
    by_key: HashMap<LaneKey<'a>, usize, FxBuildHasher>,
    by_id: HashMap<TunnelId, usize, FxBuildHasher>,
}

impl LaneIndex<'_> {
    fn find(&self, catalog: &Catalog, id: TunnelId) -> Option<usize> {
        match self.by_id.get(&id) {
            Some(&i) => Some(i),
            None => self
                .by_key
                .get(&LaneKey::of(&catalog.tunnel(id).tunnel))
                .copied(),
        }
    }
}

/// Adds to each lane the in-use stretches of its tunnels that overlap
/// `start..=end`: those that ended (`GatewayTrack::in_use`) and those
/// still going on in open sessions.
fn in_use(
    g: &GatewayTrack,
    catalog: &Catalog,
    start: u64,
    end: u64,
    index: &LaneIndex<'_>,
    lanes: &mut [Lane<'_>],
) {
    let first = g.in_use.partition_point(|u| u.last < start);
    let open = g
        .open
        .iter()
        .filter_map(|s| s.usage.in_use.map(|(a, b)| (s.id, a, b)));
    for (id, a, b) in g.in_use[first..]
        .iter()
        .map(|u| (u.id, u.first, u.last))
        .chain(open)
    {
        if b < start || a > end {
            continue;
        }
        if let Some(i) = index.find(catalog, id) {
            lanes[i].in_use.push((a, b));
        }
    }
    for lane in lanes {
        lane.in_use.sort_unstable();
        let extra = lane.in_use.len().saturating_sub(MAX_SEGMENTS);
        lane.in_use.drain(..extra);
    }
}

/// A tunnel up now that every report for at least `idle_after` seconds
/// found idle: a candidate to close.
#[derive(Clone, Debug)]
pub(crate) struct IdleTunnel {
    pub gateway: String,
    pub tunnel: Tunnel,
    /// The first of the reports without a connection, up to its latest.
    pub idle_since: u64,
    /// Its latest report.
    pub last: u64,
    /// Since when it is up (its session's first report).
    pub up_since: u64,
}

/// The candidates to close: tunnels in their gateway's latest report idle
/// for `idle_after` as of that report (`logs::usage::Usage::is_candidate`),
/// idle longest first.
pub(crate) fn idle(tracker: &Tracker, catalog: &Catalog, idle_after: u64) -> Vec<IdleTunnel> {
    let mut out = Vec::new();
    for g in tracker.gateways_by_name(catalog) {
        for s in &g.open {
            let Some(idle_since) = s.usage.idle_since else {
                continue;
            };
            if s.usage.is_candidate(s.last, idle_after) {
                out.push(IdleTunnel {
                    gateway: catalog.gateway(g.id).to_string(),
                    tunnel: catalog.tunnel(s.id).tunnel.clone(),
                    idle_since,
                    last: s.last,
                    up_since: s.first,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (a.idle_since, &a.gateway, a.tunnel.listen_port).cmp(&(
            b.idle_since,
            &b.gateway,
            b.tunnel.listen_port,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{Obs, Report, TunnelEntry, Visitor};

    /// A tracker fed reports of one gateway's two tunnels (ports 5901 and
    /// 5902), one report a minute: (connections of each).
    fn fed(reports: &[[Option<u32>; 2]]) -> (Tracker, Catalog) {
        let mut catalog = Catalog::default();
        catalog.gateways.push("gw".into());
        for port in [5901, 5902] {
            catalog.tunnels.push(TunnelEntry {
                gateway: 0,
                tunnel: Tunnel {
                    pid: u32::from(port),
                    user: "novacr01".into(),
                    listen_port: port,
                    ..Tunnel::default()
                },
            });
        }
        let staleness = logs::Staleness::new(logs::Thresholds::DEFAULT, &[]);
        let mut tracker = Tracker::new(staleness, Vec::new());
        for (i, conns) in reports.iter().enumerate() {
            let obs: Vec<Obs> = (0..2)
                .map(|id| Obs {
                    id: id as u32,
                    listening: Health::Yes,
                    vnc: Health::Unknown,
                    connections: conns[id],
                    connected: None,
                })
                .collect();
            let report = Report {
                received: 60 * (i as u64 + 1),
                gateway: 0,
                seq: i as u64,
                tunnels: &obs,
            };
            tracker.report(&catalog, &report);
        }
        (tracker, catalog)
    }

    #[test]
    fn in_use_stretches_on_the_lanes() {
        let (tracker, catalog) = fed(&[
            [Some(1), Some(0)],
            [Some(2), Some(0)],
            [Some(0), Some(0)],
            [Some(1), None],
        ]);
        let g = tracker.gateways[0].as_ref().unwrap();
        let (drawn, _, _, _) = lanes(g, &catalog, 0, 300);
        let by_port = |p: u16| drawn.iter().find(|l| l.tunnel.listen_port == p).unwrap();
        // Ended at the third report, and one going on since the fourth.
        assert_eq!(by_port(5901).in_use, [(60, 120), (240, 240)]);
        assert!(by_port(5902).in_use.is_empty());
        // A range that starts after the first stretch shows the second only.
        let (drawn, _, _, _) = lanes(g, &catalog, 200, 300);
        assert_eq!(drawn[0].in_use, [(240, 240)]);
    }

    #[test]
    fn idle_candidates_since_their_first_idle_report() {
        let (tracker, catalog) = fed(&[[Some(1), Some(0)], [Some(0), Some(0)], [Some(0), Some(0)]]);
        let idle_ports = |after: u64| -> Vec<(u16, u64)> {
            idle(&tracker, &catalog, after)
                .iter()
                .map(|i| (i.tunnel.listen_port, i.idle_since))
                .collect()
        };
        assert_eq!(idle_ports(60), [(5902, 60), (5901, 120)]);
        assert_eq!(idle_ports(120), [(5902, 60)]);
        assert_eq!(idle_ports(121), []);
        // Unknown in the latest report: not idle, whatever came before.
        let (tracker, catalog) = fed(&[[Some(0), Some(0)], [Some(0), None]]);
        let list = idle(&tracker, &catalog, 0);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].tunnel.listen_port, 5901);
    }

    #[test]
    fn reports_in_the_bucket_the_division_gives() {
        let (mut tracker, _) = fed(&[[Some(0), Some(0)]]);
        let g = tracker.gateways[0].as_mut().unwrap();
        // A report every 61 s, in order (blocks of them taken whole), and
        // with two pairs out of order (one by one).
        let sorted: Vec<(u64, u32)> = (0..5000)
            .map(|k| (1_000 + k * 61, (k % 7 + k / 900) as u32))
            .collect();
        let mut shuffled = sorted.clone();
        shuffled.swap(100, 101);
        shuffled.swap(2000, 2500);
        let ranges = [
            (1_000, 1_000 + 4999 * 61),
            (500, 100_000),
            (50_000, 50_000),
            (1_000, 1_239),
            (0, 1_000_000),
            (61_000, 200_000),
        ];
        for series in [sorted, shuffled] {
            g.series = Default::default();
            for &(t, n) in &series {
                g.series.push(t, n);
            }
            for (start, end) in ranges {
                let len = (end - start).max(1);
                let mut want = vec![None; BUCKETS];
                let from = series.partition_point(|&(t, _)| t < start);
                let taken = series[from..].iter().take_while(|&&(t, _)| t <= end);
                for &(t, n) in taken.clone() {
                    let i = ((t - start) as u128 * BUCKETS as u128 / len as u128) as usize;
                    let b: &mut Bucket =
                        want[i.min(BUCKETS - 1)].get_or_insert(Bucket { min: n, max: n });
                    b.min = b.min.min(n);
                    b.max = b.max.max(n);
                }
                let max = taken.clone().map(|r| r.1).max().unwrap_or(0);
                let got = tunnel_counts(g, start, end);
                assert_eq!(got, (want, max, taken.count()), "{start}..{end}");
            }
        }
    }

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
            lanes: vec![],
            lanes_total: 0,
            hidden_lanes: vec![],
            sessions: 0,
            reports: 0,
        };
        assert_eq!(h.availability(), Some(0.75));
    }
}
