//! What is true now: each gateway's state (up / late / down), the tunnels
//! its latest complete report holds and since when, what went away
//! recently, and the latest operators' messages.
//!
//! Two halves. [`Tracker`] is the aggregate built on the fly while
//! `logs::read` streams the logs: per gateway the last time it was heard,
//! the open tunnel *sessions* (a tunnel's consecutive run of reports, keyed
//! by its identity), the closed ones, the tunnel count per report and the
//! silences. It never keeps rows. `history.rs` reads the same tracker for
//! the history page. [`Status::build`] then picks out the status now.
//!
//! A tunnel's "since" is the first report of the consecutive run of reports
//! that contained it; a gap in reporting does not end a session, a complete
//! report without the tunnel does.

use std::collections::VecDeque;

use gateway_client::tunnel::{Health, Tunnel};

use logs::inventory::{Expected, TunnelState};
use logs::silence::{Maintenance, Silence};
use logs::usage::Usage;
use logs::{EventKind, GatewayState, Staleness, Thresholds};

use crate::expected::Judging;
use crate::logs::{Catalog, Event, GwId, Obs, Report, TunnelId, Visitor};
use crate::series::Series;

/// Messages kept in memory (newest); older ones are only counted.
pub(crate) const MAX_MESSAGES: usize = 5_000;
/// Closed sessions kept per gateway (newest); older ones are only counted.
pub(crate) const MAX_CLOSED: usize = 50_000;

/// One tunnel's consecutive run of reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub id: TunnelId,
    /// First and last report that contained it.
    pub first: u64,
    pub last: u64,
    /// The first complete report without it; `None` while it is open.
    pub ended: Option<u64>,
    /// Health in the latest report that contained it.
    pub listening: Health,
    pub vnc: Health,
    /// Connections in the latest report that contained it.
    pub connections: Option<u32>,
    /// Its use across its reports (`logs::usage`).
    pub usage: Usage,
}

/// A stretch of consecutive reports that found a tunnel in use
/// (`logs::usage`), first to last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InUse {
    pub id: TunnelId,
    pub first: u64,
    pub last: u64,
}

/// An operator's message or a shutdown request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub received: u64,
    pub gateway: GwId,
    pub kind: EventKind,
    pub text: String,
}

/// Everything known about one gateway.
#[derive(Debug)]
pub(crate) struct GatewayTrack {
    pub id: GwId,
    pub first_heard: u64,
    pub last_heard: u64,
    pub events: u64,
    pub reports: u64,
    /// `received` of the latest complete report.
    pub last_report: Option<u64>,
    /// Sessions open at the latest report, sorted by tunnel id.
    pub open: Vec<Session>,
    /// Closed sessions, oldest first.
    pub closed: Vec<Session>,
    pub closed_dropped: u64,
    /// Tunnels up per complete report: (received, count). A tunnel found
    /// not listening is not up; one not checked (`unknown`) counts.
    pub series: Series,
    /// Gaps between consecutive events longer than the late threshold.
    pub silences: Vec<(u64, u64)>,
    /// In-use stretches that ended, oldest first; those of open sessions
    /// are in their `usage`.
    pub in_use: Vec<InUse>,
    pub in_use_dropped: u64,
    /// Who was on the tunnels of the latest complete report (those with
    /// someone on them), by tunnel id.
    pub connected: Vec<(TunnelId, std::sync::Arc<str>)>,
    /// The period in force (`logs::declared_period`) and the thresholds it
    /// judges the gateway by (`logs::Staleness::of`), as of its last event.
    pub period: Option<u32>,
    pub thresholds: Thresholds,
}

impl GatewayTrack {
    fn new(id: GwId, at: u64, thresholds: Thresholds) -> GatewayTrack {
        GatewayTrack {
            period: None,
            thresholds,
            id,
            first_heard: at,
            last_heard: at,
            events: 0,
            reports: 0,
            last_report: None,
            open: Vec::new(),
            closed: Vec::new(),
            closed_dropped: 0,
            series: Series::default(),
            silences: Vec::new(),
            in_use: Vec::new(),
            in_use_dropped: 0,
            connected: Vec::new(),
        }
    }

    /// Keeps an in-use stretch that ended (capped as the closed sessions).
    fn used(&mut self, id: TunnelId, stretch: Option<(u64, u64)>) {
        let Some((first, last)) = stretch else { return };
        self.in_use.push(InUse { id, first, last });
        if self.in_use.len() >= 2 * MAX_CLOSED {
            let drop = self.in_use.len() - MAX_CLOSED;
            self.in_use.drain(..drop);
            self.in_use_dropped += drop as u64;
        }
    }

    /// Who is on each tunnel of the report `r`, for the status page.
    fn note_connected(&mut self, r: &Report<'_>) {
        self.connected.clear();
        self.connected.extend(
            r.tunnels
                .iter()
                .filter_map(|o| Some((o.id, o.connected.clone()?))),
        );
    }

    /// Who was on tunnel `id` in the latest report, one entry each.
    pub(crate) fn connected_to(&self, id: TunnelId) -> Vec<String> {
        self.connected
            .iter()
            .find(|c| c.0 == id)
            .map(|c| logs::schema::connected_list(&c.1))
            .unwrap_or_default()
    }

    fn close(&mut self, mut s: Session, at: u64) {
        self.used(s.id, s.usage.in_use);
        s.ended = Some(at);
        self.closed.push(s);
        if self.closed.len() >= 2 * MAX_CLOSED {
            let drop = self.closed.len() - MAX_CLOSED;
            self.closed.drain(..drop);
            self.closed_dropped += drop as u64;
        }
    }
}

/// The track of `gw` in `gateways`, made on its first event at `at`.
fn track<'a>(
    gateways: &'a mut Vec<Option<GatewayTrack>>,
    staleness: &Staleness,
    catalog: &Catalog,
    gw: GwId,
    at: u64,
) -> &'a mut GatewayTrack {
    let i = gw as usize;
    if gateways.len() <= i {
        gateways.resize_with(i + 1, || None);
    }
    gateways[i]
        .get_or_insert_with(|| GatewayTrack::new(gw, at, staleness.of(catalog.gateway(gw), None)))
}

/// The aggregate of the whole log stream (see the module doc).
#[derive(Debug)]
pub(crate) struct Tracker {
    pub(crate) staleness: Staleness,
    /// Indexed by gateway id; `None` for a gateway not heard yet.
    pub gateways: Vec<Option<GatewayTrack>>,
    /// The newest messages, oldest first.
    pub messages: VecDeque<Message>,
    pub messages_total: u64,
    /// The expected tunnels, judged as the logs stream by.
    pub judging: Judging,
    /// The silences the gateways asked for (`maintenance` events).
    pub maintenance: Maintenance,
}

impl Tracker {
    /// `inventory`: the expected tunnels (empty: none).
    pub(crate) fn new(staleness: Staleness, inventory: Vec<Expected>) -> Tracker {
        Tracker {
            staleness,
            gateways: Vec::new(),
            messages: VecDeque::new(),
            messages_total: 0,
            judging: Judging::new(inventory),
            maintenance: Maintenance::default(),
        }
    }

    /// After the last event: the expected tunnels of a gateway late or
    /// down at `now` are unknown from when it went late.
    pub(crate) fn finish(&mut self, catalog: &Catalog, now: u64) {
        self.judging.start(now);
        for g in self.gateways.iter().flatten() {
            if g.thresholds.is_silence(now.saturating_sub(g.last_heard)) {
                let late = g.thresholds.late;
                self.judging.silence(catalog, g.id, g.last_heard + late);
            }
        }
    }

    /// The gateways heard, in name order.
    pub(crate) fn gateways_by_name<'a>(&'a self, catalog: &Catalog) -> Vec<&'a GatewayTrack> {
        let mut v: Vec<&GatewayTrack> = self.gateways.iter().flatten().collect();
        v.sort_by(|a, b| catalog.gateway(a.id).cmp(catalog.gateway(b.id)));
        v
    }
}

impl Visitor for Tracker {
    fn event(&mut self, catalog: &Catalog, ev: &Event) {
        self.judging.start(ev.received);
        if ev.kind.is_sign_of_life() {
            let g = track(
                &mut self.gateways,
                &self.staleness,
                catalog,
                ev.gateway,
                ev.received,
            );
            let mut went_late = None;
            // The gap is judged by the thresholds in force during it.
            if g.thresholds
                .is_silence(ev.received.saturating_sub(g.last_heard))
            {
                g.silences.push((g.last_heard, ev.received));
                went_late = Some(g.last_heard + g.thresholds.late);
            }
            g.last_heard = g.last_heard.max(ev.received);
            g.events += 1;
            let period = logs::declared_period(g.period, ev.kind, ev.period);
            if period != g.period {
                g.period = period;
                g.thresholds = self.staleness.of(catalog.gateway(ev.gateway), period);
            }
            if let Some(at) = went_late {
                self.judging.silence(catalog, ev.gateway, at);
            }
        }
        if ev.kind == EventKind::Maintenance {
            let until = ev.until.unwrap_or(ev.sent);
            self.maintenance.request(
                catalog.gateway(ev.gateway),
                ev.received,
                ev.sent,
                until,
                &ev.text,
            );
        }
        if ev.kind.has_text() {
            self.messages_total += 1;
            self.messages.push_back(Message {
                received: ev.received,
                gateway: ev.gateway,
                kind: ev.kind,
                text: ev.text.clone(),
            });
            if self.messages.len() > MAX_MESSAGES {
                self.messages.pop_front();
            }
        }
    }

    fn report(&mut self, catalog: &Catalog, r: &Report<'_>) {
        let tunnels = || {
            r.tunnels
                .iter()
                .map(|o| Tunnel {
                    listening: o.listening,
                    vnc: o.vnc,
                    connections: o.connections,
                    connected: o
                        .connected
                        .as_deref()
                        .map(logs::schema::connected_list)
                        .unwrap_or_default(),
                    ..catalog.tunnel(o.id).tunnel.clone()
                })
                .collect()
        };
        self.judging
            .report(catalog, r.gateway, r.seq, tunnels, r.received);
        let g = track(
            &mut self.gateways,
            &self.staleness,
            catalog,
            r.gateway,
            r.received,
        );
        g.reports += 1;
        g.last_report = Some(r.received);
        let up = r
            .tunnels
            .iter()
            .filter(|o| o.listening != Health::No)
            .count();
        g.series.push(r.received, up as u32);
        // Merge the open sessions with the report, both sorted by id.
        let old = std::mem::take(&mut g.open);
        let mut open = Vec::with_capacity(r.tunnels.len());
        let mut old = old.into_iter().peekable();
        let start = |o: &Obs| {
            let mut usage = Usage::default();
            usage.observe(r.received, o.connections);
            Session {
                id: o.id,
                first: r.received,
                last: r.received,
                ended: None,
                listening: o.listening,
                vnc: o.vnc,
                connections: o.connections,
                usage,
            }
        };
        for o in r.tunnels {
            while let Some(s) = old.next_if(|s| s.id < o.id) {
                g.close(s, r.received);
            }
            match old.next_if(|s| s.id == o.id) {
                Some(mut s) => {
                    s.last = r.received;
                    s.listening = o.listening;
                    s.vnc = o.vnc;
                    s.connections = o.connections;
                    g.used(s.id, s.usage.observe(r.received, o.connections));
                    open.push(s);
                }
                None => open.push(start(o)),
            }
        }
        for s in old {
            g.close(s, r.received);
        }
        g.open = open;
        g.note_connected(r);
    }
}

/// A tunnel in a gateway's latest report.
#[derive(Clone, Debug)]
pub(crate) struct TunnelNow {
    pub tunnel: Tunnel,
    pub since: u64,
    pub listening: Health,
    pub vnc: Health,
    /// Connections in the latest report (`None`: unknown) and who made
    /// them.
    pub connections: Option<u32>,
    pub connected: Vec<String>,
    /// With an inventory: whether it is one of the expected tunnels.
    pub expected: Option<bool>,
}

impl TunnelNow {
    /// Not listening, or a VNC probe that got no answer.
    pub(crate) fn broken(&self) -> bool {
        self.listening == Health::No || self.vnc == Health::No
    }
}

#[derive(Clone, Debug)]
pub(crate) struct GatewayStatus {
    pub name: String,
    pub state: GatewayState,
    /// The thresholds it is judged by, and the period it declares.
    pub thresholds: Thresholds,
    pub period: Option<u32>,
    pub last_heard: u64,
    pub last_report: Option<u64>,
    /// By listen port.
    pub tunnels: Vec<TunnelNow>,
}

/// A tunnel that went away: it was in one report and not in the next.
#[derive(Clone, Debug)]
pub(crate) struct Gone {
    pub gateway: String,
    pub tunnel: Tunnel,
    pub first: u64,
    pub last: u64,
    pub ended: u64,
}

/// The order of the tunnels that went away: newest first; those that went
/// in the same second by gateway, then as the gateway's table lists
/// tunnels.
fn gone_order(g: &Gone) -> (std::cmp::Reverse<u64>, &str, u16, &str, u32) {
    let t = &g.tunnel;
    (
        std::cmp::Reverse(g.ended),
        &g.gateway,
        t.listen_port,
        &t.target_host,
        t.pid,
    )
}

/// An expected tunnel now.
#[derive(Clone, Debug)]
pub(crate) struct ExpectedNow {
    pub entry: Expected,
    pub state: TunnelState,
    /// Unix seconds when it entered this state.
    pub since: u64,
    /// The tunnel that decided it (none when missing or unknown).
    pub tunnel: Option<Tunnel>,
    /// It changed state too often lately (`logs::damping`'s rule; set by
    /// [`Status::judge_flapping`]).
    pub flapping: bool,
}

/// The expected tunnels now, in the inventory's order.
fn expected_now(tracker: &Tracker) -> Vec<ExpectedNow> {
    let Some(inv) = tracker.judging.inventory() else {
        return Vec::new();
    };
    inv.iter()
        .map(|(e, j)| ExpectedNow {
            entry: e.clone(),
            state: j.state,
            since: j.since,
            tunnel: j.tunnel.clone(),
            flapping: false,
        })
        .collect()
}

/// The status page's facts.
#[derive(Clone, Debug)]
pub(crate) struct Status {
    /// The thresholds of gateways without a period or a `[[gateway]]`.
    pub thresholds: Thresholds,
    /// Down first, then late, then up; by name within each.
    pub gateways: Vec<GatewayStatus>,
    /// Whether there is an inventory (a config file with `[[tunnel]]`s).
    pub inventory: bool,
    /// The expected tunnels, in the inventory's order.
    pub expected: Vec<ExpectedNow>,
    /// Tunnels that went away since `now - recent`, newest first, at most `limit`.
    pub gone: Vec<Gone>,
    pub gone_total: usize,
    /// Gateways that are down, with when they were last heard.
    pub gone_gateways: Vec<(String, u64)>,
    /// Newest first, at most `limit`.
    pub messages: Vec<(String, Message)>,
    pub messages_total: u64,
    /// The silences active now, the config file's and the gateways' own
    /// (set by [`Status::add_silences`]), ending soonest first.
    pub silences: Vec<Silence>,
}

impl Status {
    /// The silences active at `now`: `configured` (the config file's) and
    /// those the gateways asked for.
    pub(crate) fn add_silences(&mut self, configured: &[Silence], asked: &Maintenance, now: u64) {
        self.silences = configured
            .iter()
            .chain(asked.silences())
            .filter(|s| s.active(now))
            .cloned()
            .collect();
        self.silences.sort_by_key(|s| s.until);
    }

    /// Marks the expected tunnels flapping at `now`, with `flap` changes an
    /// hour the limit (the config's `flap`).
    pub(crate) fn judge_flapping(&mut self, judging: &Judging, flap: u32, now: u64) {
        for (i, e) in self.expected.iter_mut().enumerate() {
            e.flapping = judging.flapping(i, flap, now);
        }
    }

    /// `recent` is how far back "went away recently" looks; `limit` caps
    /// each list.
    pub(crate) fn build(
        tracker: &Tracker,
        catalog: &Catalog,
        now: u64,
        thresholds: Thresholds,
        recent: u64,
        limit: usize,
    ) -> Status {
        // Each gateway by its own thresholds; `thresholds` are for the page.
        let since = now.saturating_sub(recent);
        let mut gateways = Vec::new();
        let mut gone = Vec::new();
        let mut gone_gateways = Vec::new();
        for g in tracker.gateways_by_name(catalog) {
            let name = catalog.gateway(g.id).to_string();
            let state = g.thresholds.state(now.saturating_sub(g.last_heard));
            if state == GatewayState::Down {
                gone_gateways.push((name.clone(), g.last_heard));
            }
            let mut tunnels: Vec<TunnelNow> = g
                .open
                .iter()
                .map(|s| TunnelNow {
                    tunnel: catalog.tunnel(s.id).tunnel.clone(),
                    since: s.first,
                    listening: s.listening,
                    vnc: s.vnc,
                    connections: s.connections,
                    connected: g.connected_to(s.id),
                    expected: None,
                })
                .collect();
            if let Some(inv) = tracker.judging.inventory() {
                for t in &mut tunnels {
                    t.expected = Some(inv.expects(&name, &t.tunnel));
                }
            }
            tunnels.sort_by(|a, b| {
                (a.tunnel.listen_port, &a.tunnel.target_host, a.tunnel.pid).cmp(&(
                    b.tunnel.listen_port,
                    &b.tunnel.target_host,
                    b.tunnel.pid,
                ))
            });
            for s in g.closed.iter().rev() {
                let ended = s.ended.unwrap_or(s.last);
                if ended < since {
                    break;
                }
                gone.push(Gone {
                    gateway: name.clone(),
                    tunnel: catalog.tunnel(s.id).tunnel.clone(),
                    first: s.first,
                    last: s.last,
                    ended,
                });
            }
            gateways.push(GatewayStatus {
                name,
                state,
                thresholds: g.thresholds,
                period: g.period,
                last_heard: g.last_heard,
                last_report: g.last_report,
                tunnels,
            });
        }
        gateways.sort_by_key(|g| std::cmp::Reverse(g.state));
        let expected = expected_now(tracker);
        gone.sort_by(|a, b| gone_order(a).cmp(&gone_order(b)));
        let gone_total = gone.len();
        gone.truncate(limit);
        let messages = tracker
            .messages
            .iter()
            .rev()
            .take(limit)
            .map(|m| (catalog.gateway(m.gateway).to_string(), m.clone()))
            .collect();
        Status {
            thresholds,
            gateways,
            inventory: tracker.judging.configured(),
            expected,
            gone,
            gone_total,
            gone_gateways,
            messages,
            messages_total: tracker.messages_total,
            silences: Vec::new(),
        }
    }
}
