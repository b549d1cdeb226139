//! What the collector believes about each gateway, and the alerts that
//! changes of that belief raise.
//!
//! A gateway is up, late or down by the rule of `logs::Thresholds`, with
//! the thresholds `logs::Staleness` gives it (the period its last report or
//! heartbeat declared, the config's `[[gateway]]` overrides, else the
//! global ones); any accepted datagram (report, heartbeat, message,
//! shutdown request) counts as a sign of life; only complete reports
//! replace the tunnel list.
//! Tunnels are compared report to report by their identity
//! (`logs::TunnelKey`): new ones *appeared*, missing ones *disappeared*.
//!
//! Alerts are returned, not sent: ingest hands them to `notify.rs`. Tunnel
//! alerts are held back while a gateway is down and for the first report after
//! it comes back (one `gateway_up`, not one alert per tunnel), and a gateway
//! seen for the first time raises `gateway_up` alone. The state is rebuilt from
//! the logs at start by feeding the same methods and dropping their alerts.
//! The number of gateways is capped so that signed junk cannot grow it.
//!
//! Each gateway sits behind an `Arc`, and its tunnel list behind another, so
//! that the snapshot HTTP serves from is a list of pointer copies: a batch
//! copies only the gateways it changes, and a report replaces the list
//! without copying the old one.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_client::tunnel::Tunnel;
use gateway_client::wire::Report;
use logs::inventory::{Expected, Inventory, TunnelState};
use logs::{EventKind, GatewayState, Staleness, Thresholds, TunnelKey};

/// Most gateways tracked.
pub const MAX_GATEWAYS: usize = 1000;
/// Most tunnels kept per gateway: a report with more has the rest left out
/// of the state (`status.json`, `/metrics`, alerts), not of the logs. Real
/// gateways carry tens; this bounds what a key holder can make the
/// collector hold to 1,000 gateways x 512 tunnels (about 160 MB at some
/// 315 bytes a tunnel).
pub(crate) const MAX_TUNNELS_PER_GATEWAY: usize = 512;
/// When the table is full, a gateway silent this long (seconds) gives its
/// place to a new one, so invented names cannot keep a real gateway out for
/// longer than this.
pub(crate) const FORGET_AFTER: u64 = 86_400;

/// A tunnel and when the collector first saw it in a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TunnelSeen {
    pub tunnel: Tunnel,
    pub first_seen: u64,
}

/// One gateway as last heard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gateway {
    pub name: String,
    /// Collector time of the last accepted datagram.
    pub last_seen: u64,
    /// Its kind (`report`, `heartbeat`, ...) and source address.
    pub last_kind: EventKind,
    pub source: String,
    /// Collector time of the last complete report, and its seq.
    pub last_report: Option<u64>,
    pub last_report_seq: u64,
    pub tunnels: Arc<[TunnelSeen]>,
    /// The last operator's message and when it came.
    pub message: Option<(u64, String)>,
    /// The state as last evaluated (for alerts).
    pub state: GatewayState,
    /// The period in force (`logs::declared_period`), and the thresholds
    /// it judges the gateway by (`logs::Staleness::of`).
    pub period: Option<u32>,
    pub thresholds: Thresholds,
    hold_tunnel_alerts: bool,
}

/// What a datagram said of its gateway, for [`State::seen`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Heard<'a> {
    pub kind: EventKind,
    /// A message's text.
    pub text: &'a str,
    /// Its source address.
    pub source: &'a str,
    /// The period it declared.
    pub period: Option<u32>,
}

impl<'a> Heard<'a> {
    /// A datagram of `kind` that declared nothing, with no text, from `a`.
    #[cfg(test)]
    fn of(kind: EventKind) -> Heard<'a> {
        Heard {
            kind,
            text: "",
            source: "a",
            period: None,
        }
    }
}

/// What happened, for `--notify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AlertKind {
    GatewayLate,
    GatewayDown,
    GatewayUp,
    TunnelUp,
    TunnelDown,
    /// An expected tunnel (of the inventory) is missing.
    TunnelMissing,
    /// An expected tunnel is there but broken, or its port leads elsewhere.
    TunnelBroken,
    /// An expected tunnel is up again after one of those.
    TunnelRestored,
    /// A tunnel changed state more than `flap` times within an hour.
    TunnelFlapping,
}

impl AlertKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AlertKind::GatewayLate => "gateway_late",
            AlertKind::GatewayDown => "gateway_down",
            AlertKind::GatewayUp => "gateway_up",
            AlertKind::TunnelUp => "tunnel_up",
            AlertKind::TunnelDown => "tunnel_down",
            AlertKind::TunnelMissing => "tunnel_missing",
            AlertKind::TunnelBroken => "tunnel_broken",
            AlertKind::TunnelRestored => "tunnel_restored",
            AlertKind::TunnelFlapping => "tunnel_flapping",
        }
    }

    /// The kind of an inventory change's alert (`Change::alert`).
    fn of_inventory(name: &str) -> Option<AlertKind> {
        [
            AlertKind::TunnelMissing,
            AlertKind::TunnelBroken,
            AlertKind::TunnelRestored,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// What an alert about an expected tunnel says besides the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExpectedAlert {
    pub entry: Expected,
    pub state: TunnelState,
    /// The last state other than unknown before this one.
    pub before: Option<TunnelState>,
    /// Since when the state holds.
    pub since: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Alert {
    pub kind: AlertKind,
    pub gateway: String,
    pub tunnel: Option<Tunnel>,
    /// Collector time of the change.
    pub time: u64,
    /// Seconds since the gateway was last seen.
    pub age: u64,
    /// For the inventory's alerts: the expected tunnel and its state.
    pub expected: Option<ExpectedAlert>,
}

impl Alert {
    /// An alert about the gateway itself, or one of its tunnels.
    fn new(kind: AlertKind, gateway: &str, tunnel: Option<Tunnel>, time: u64, age: u64) -> Alert {
        Alert {
            kind,
            gateway: gateway.to_string(),
            tunnel,
            time,
            age,
            expected: None,
        }
    }
}

/// All gateways.
#[derive(Debug)]
pub(crate) struct State {
    staleness: Staleness,
    gateways: BTreeMap<String, Arc<Gateway>>,
    /// The expected tunnels and their states (shared with the snapshot).
    inventory: Arc<Inventory>,
}

impl State {
    pub(crate) fn new(staleness: Staleness) -> State {
        State {
            staleness,
            gateways: BTreeMap::new(),
            inventory: Arc::new(Inventory::default()),
        }
    }

    /// The thresholds of gateways without a period or an override.
    pub(crate) fn thresholds(&self) -> Thresholds {
        self.staleness.global
    }

    /// New thresholds (an edited config file), used from the next tick on.
    pub(crate) fn set_staleness(&mut self, staleness: Staleness) {
        self.staleness = staleness;
        for g in self.gateways.values_mut() {
            let t = self.staleness.of(&g.name, g.period);
            if t != g.thresholds {
                Arc::make_mut(g).thresholds = t;
            }
        }
    }

    pub(crate) fn inventory(&self) -> &Arc<Inventory> {
        &self.inventory
    }

    /// A new list of expected tunnels (at start, or an edited config
    /// file): entries already there keep their state; every entry is
    /// judged at once on what is known now.
    pub(crate) fn set_inventory(&mut self, entries: Vec<Expected>, now: u64) -> Vec<Alert> {
        Arc::make_mut(&mut self.inventory).replace(entries, now);
        let names: Vec<String> = self
            .inventory
            .gateways()
            .into_iter()
            .map(str::to_string)
            .collect();
        names.iter().flat_map(|n| self.judge(n, now)).collect()
    }

    /// Judges the expected tunnels of `gateway` on its state and latest
    /// complete report; the alerts of what changed.
    fn judge(&mut self, gateway: &str, now: u64) -> Vec<Alert> {
        let Some(g) = self.gateways.get(gateway) else {
            return Vec::new();
        };
        if !self
            .inventory
            .entries()
            .iter()
            .any(|e| e.gateway == gateway)
        {
            return Vec::new();
        }
        let list: Vec<&Tunnel> = g.tunnels.iter().map(|t| &t.tunnel).collect();
        let report = g.last_report.map(|_| list.as_slice());
        let changes = Arc::make_mut(&mut self.inventory).update(gateway, g.state, report, now);
        changes
            .into_iter()
            .filter_map(|c| {
                let kind = AlertKind::of_inventory(c.alert()?)?;
                let (entry, judged) = self.inventory.iter().nth(c.index)?;
                Some(Alert {
                    tunnel: judged.tunnel.clone(),
                    expected: Some(ExpectedAlert {
                        entry: entry.clone(),
                        state: judged.state,
                        before: c.last_known,
                        since: judged.since,
                    }),
                    ..Alert::new(kind, gateway, None, now, now.saturating_sub(g.last_seen))
                })
            })
            .collect()
    }

    /// Whether a datagram from `gateway` may be taken: known, or room left.
    pub(crate) fn has_room_for(&self, gateway: &str) -> bool {
        self.gateways.contains_key(gateway) || self.gateways.len() < MAX_GATEWAYS
    }

    /// Forgets the longest-silent gateway if it has been silent for more
    /// than [`FORGET_AFTER`] seconds (to make room in a full table); says
    /// whether it did.
    pub(crate) fn forget_one_silent(&mut self, now: u64) -> bool {
        let oldest = self.gateways.values().min_by_key(|g| g.last_seen);
        match oldest {
            Some(g) if now.saturating_sub(g.last_seen) > FORGET_AFTER => {
                let name = g.name.clone();
                self.gateways.remove(&name);
                true
            }
            _ => false,
        }
    }

    /// Gateways tracked.
    pub(crate) fn count(&self) -> usize {
        self.gateways.len()
    }

    /// The gateways, shared: cloning one is a pointer copy.
    pub(crate) fn gateways(&self) -> impl Iterator<Item = &Arc<Gateway>> {
        self.gateways.values()
    }

    pub(crate) fn get(&self, gateway: &str) -> Option<&Gateway> {
        self.gateways.get(gateway).map(|g| &**g)
    }

    /// An accepted datagram: a sign of life, unless it is a shutdown
    /// request (`EventKind::is_sign_of_life`), and the period it declared.
    pub(crate) fn seen(&mut self, gateway: &str, heard: Heard<'_>, now: u64) -> Vec<Alert> {
        let Heard {
            kind,
            text,
            source,
            period,
        } = heard;
        if !kind.is_sign_of_life() {
            return Vec::new();
        }
        let mut alerts = Vec::new();
        if !self.has_room_for(gateway) {
            return alerts;
        }
        if !self.gateways.contains_key(gateway) {
            alerts.push(Alert::new(AlertKind::GatewayUp, gateway, None, now, 0));
            let g = Gateway {
                name: gateway.to_string(),
                last_seen: now,
                last_kind: kind,
                source: String::new(),
                last_report: None,
                last_report_seq: 0,
                tunnels: Arc::new([]),
                message: None,
                state: GatewayState::Up,
                period: None,
                thresholds: self.staleness.of(gateway, None),
                // A new gateway's first tunnels are not news.
                hold_tunnel_alerts: true,
            };
            self.gateways.insert(gateway.to_string(), Arc::new(g));
        }
        // Looked up by `&str`: `entry` would take (and allocate) a String
        // for every datagram of a gateway already known.
        let Some(g) = self.gateways.get_mut(gateway) else {
            return alerts;
        };
        let g = Arc::make_mut(g);
        if g.state != GatewayState::Up {
            alerts.push(Alert::new(
                AlertKind::GatewayUp,
                gateway,
                None,
                now,
                now.saturating_sub(g.last_seen),
            ));
            g.state = GatewayState::Up;
        }
        g.last_seen = g.last_seen.max(now);
        // The thresholds follow the period (and the config, which
        // `set_staleness` applies): judged again only when the period moves.
        let declared = logs::declared_period(g.period, kind, period);
        if declared != g.period {
            g.period = declared;
            g.thresholds = self.staleness.of(gateway, declared);
        }
        g.last_kind = kind;
        if g.source != source {
            source.clone_into(&mut g.source);
        }
        if kind == EventKind::Message {
            g.message = Some((now, text.to_string()));
        }
        alerts
    }

    /// The seq of the gateway's report before, when `report` has a lower
    /// one: the gateway's clock stepped back (or an older split report
    /// completed late). It is taken all the same (see [`State::report`]);
    /// ingest says so and counts it.
    pub(crate) fn seq_went_back(&self, report: &Report, now: u64) -> Option<u64> {
        let g = self.gateways.get(&report.gateway)?;
        let earlier_second = g.last_report.is_some_and(|t| t < now);
        (earlier_second && report.seq < g.last_report_seq).then_some(g.last_report_seq)
    }

    /// A complete report: the new tunnel list, when it is newer by the
    /// rule both products apply (`logs::reader::replaces`: completed later,
    /// by the second, then seq), so a gateway whose clock steps back is not
    /// hidden behind its last report, nor behind a seq of 2^64-1.
    /// At most [`MAX_TUNNELS_PER_GATEWAY`] of its tunnels are kept.
    pub(crate) fn report(&mut self, mut report: Report, now: u64) -> Vec<Alert> {
        report.tunnels.truncate(MAX_TUNNELS_PER_GATEWAY);
        let mut alerts = Vec::new();
        let Some(g) = self.gateways.get_mut(&report.gateway) else {
            return alerts;
        };
        let last = g.last_report.map(|at| (at, g.last_report_seq));
        if !logs::reader::replaces(last, now, report.seq) {
            return alerts;
        }
        let g = Arc::make_mut(g);
        // Most reports list what the one before did: the list (and when
        // each was first seen) stays, and nothing is alerted.
        if !same_tunnels(&g.tunnels, &report.tunnels) {
            alerts = replace_tunnels(g, report.tunnels, now);
        }
        g.last_report = Some(now);
        g.last_report_seq = report.seq;
        g.hold_tunnel_alerts = false;
        alerts.extend(self.judge(&report.gateway, now));
        alerts
    }

    /// Re-evaluates late and down; called about once a second.
    pub(crate) fn tick(&mut self, now: u64) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for g in self.gateways.values_mut() {
            let age = now.saturating_sub(g.last_seen);
            let state = g.thresholds.state(age);
            if state == g.state || state == GatewayState::Up {
                continue;
            }
            let g = Arc::make_mut(g);
            let kind = match state {
                GatewayState::Late => AlertKind::GatewayLate,
                _ => AlertKind::GatewayDown,
            };
            if state == GatewayState::Down {
                g.hold_tunnel_alerts = true;
            }
            g.state = state;
            alerts.push(Alert::new(kind, &g.name, None, now, age));
        }
        // Their expected tunnels are unknown since the gateway went late
        // (no alert of their own).
        let changed: Vec<String> = alerts.iter().map(|a| a.gateway.clone()).collect();
        for name in changed {
            let at = self.late_since(&name).unwrap_or(now).min(now);
            alerts.extend(self.judge(&name, at));
        }
        alerts
    }

    /// When `gateway`, silent since it was last seen, went late.
    fn late_since(&self, gateway: &str) -> Option<u64> {
        let g = self.gateways.get(gateway)?;
        Some(g.last_seen.saturating_add(g.thresholds.late))
    }

    /// Reading the logs back: before a datagram of `gateway` received at
    /// `at`, a silence since it was last seen (a gap of at least `late`)
    /// makes it late then, and its expected tunnels unknown from then, as
    /// the ticks of a collector that ran through it would have (and as
    /// webgen judges the same logs). Nothing is alerted.
    pub(crate) fn catch_up(&mut self, gateway: &str, at: u64) {
        let Some(g) = self.gateways.get_mut(gateway) else {
            return;
        };
        if g.state != GatewayState::Up || !g.thresholds.is_silence(at.saturating_sub(g.last_seen)) {
            return;
        }
        Arc::make_mut(g).state = GatewayState::Late;
        let since = self.late_since(gateway).unwrap_or(at);
        let _ = self.judge(gateway, since);
    }
}

/// Whether `new` is `old` over again: the same tunnels in the same order,
/// none twice by its identity (a tunnel listed twice is judged anew each
/// report by [`replace_tunnels`], so that list takes the long way).
fn same_tunnels(old: &[TunnelSeen], new: &[Tunnel]) -> bool {
    /// Longer lists take the long way rather than a quadratic check.
    const MOST: usize = 64;
    old.len() == new.len()
        && new.len() <= MOST
        && old.iter().zip(new).all(|(o, n)| o.tunnel == *n)
        && new.iter().enumerate().all(|(i, t)| {
            let key = TunnelKey::of(t);
            new[..i].iter().all(|u| TunnelKey::of(u) != key)
        })
}

/// Replaces `g`'s tunnel list with `tunnels`, keeping when each was first
/// seen; the alerts of the tunnels that appeared and went (none while `g`
/// holds its tunnel alerts).
fn replace_tunnels(g: &mut Gateway, tunnels: Vec<Tunnel>, now: u64) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let quiet = g.hold_tunnel_alerts;
    let old_list = g.tunnels.clone();
    let mut old: BTreeMap<TunnelKey, &TunnelSeen> = old_list
        .iter()
        .map(|t| (TunnelKey::of(&t.tunnel), t))
        .collect();
    // When each tunnel of the report was first seen, if it was before.
    let firsts: Vec<Option<u64>> = tunnels
        .iter()
        .map(|t| old.remove(&TunnelKey::of(t)).map(|prev| prev.first_seen))
        .collect();
    let gone: Vec<Tunnel> = match quiet {
        true => Vec::new(),
        false => old.into_values().map(|t| t.tunnel.clone()).collect(),
    };
    let mut list = Vec::with_capacity(tunnels.len());
    for (t, first_seen) in tunnels.into_iter().zip(firsts) {
        if first_seen.is_none() && !quiet {
            alerts.push(Alert::new(
                AlertKind::TunnelUp,
                &g.name,
                Some(t.clone()),
                now,
                0,
            ));
        }
        list.push(TunnelSeen {
            tunnel: t,
            first_seen: first_seen.unwrap_or(now),
        });
    }
    alerts.extend(
        gone.into_iter()
            .map(|t| Alert::new(AlertKind::TunnelDown, &g.name, Some(t), now, 0)),
    );
    g.tunnels = list.into();
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_client::wire::MsgKind;

    fn tunnel(pid: u32, port: u16) -> Tunnel {
        Tunnel {
            pid,
            user: "novacr01".into(),
            listen_port: port,
            target_host: "novadaq-far-master-02".into(),
            target_port: 5951,
            dest: "novadaq-far-gateway-01".into(),
            ..Tunnel::default()
        }
    }

    fn report(seq: u64, tunnels: Vec<Tunnel>) -> Report {
        Report {
            gateway: "gw".into(),
            kind: MsgKind::Report,
            seq,
            sent: seq,
            parts: 1,
            text: String::new(),
            tunnels,
            period: None,
            until: None,
        }
    }

    fn kinds(alerts: &[Alert]) -> Vec<&'static str> {
        alerts.iter().map(|a| a.kind.as_str()).collect()
    }

    #[test]
    fn up_late_down_up_with_tunnel_alerts_held_while_down() {
        let mut s = State::new(Staleness::default());
        assert_eq!(
            kinds(&s.seen("gw", Heard::of(EventKind::Report), 1000)),
            ["gateway_up"]
        );
        // The first tunnels of a new gateway are not news.
        assert!(s.report(report(1, vec![tunnel(1, 5901)]), 1000).is_empty());
        assert_eq!(
            kinds(&s.report(report(2, vec![tunnel(2, 5902)]), 1060)),
            ["tunnel_up", "tunnel_down"]
        );
        // A report with a lower seq (the clock stepped back) is taken.
        let back = report(1, vec![tunnel(2, 5902)]);
        assert_eq!(s.seq_went_back(&back, 1061), Some(2));
        assert!(s.report(back, 1061).is_empty());
        assert_eq!(s.get("gw").unwrap().last_report_seq, 1);
        assert!(s.tick(1100).is_empty());
        assert_eq!(kinds(&s.tick(1000 + 150)), ["gateway_late"]);
        assert!(s.tick(1000 + 151).is_empty());
        assert_eq!(kinds(&s.tick(1000 + 600)), ["gateway_down"]);
        assert_eq!(
            kinds(&s.seen("gw", Heard::of(EventKind::Report), 2000)),
            ["gateway_up"]
        );
        // Back from down: the first report re-baselines quietly.
        assert!(s.report(report(3, vec![tunnel(3, 5903)]), 2000).is_empty());
        assert_eq!(kinds(&s.report(report(4, vec![]), 2060)), ["tunnel_down"]);
    }

    /// A watching gateway (every 30 s) that dies is late at 75 s, down at
    /// 300 s; back on cron (no period) it has the global thresholds again,
    /// and a `[[gateway]]` override wins over both.
    #[test]
    fn a_declared_period_sets_when_the_gateway_is_late_and_down() {
        let over = logs::Override {
            name: "slow".into(),
            late: Some(400),
            down: None,
        };
        let mut s = State::new(Staleness::new(Thresholds::default(), &[over]));
        let every = |kind, period| Heard {
            period,
            ..Heard::of(kind)
        };
        s.seen("gw", every(EventKind::Report, Some(30)), 1000);
        s.seen("gw", every(EventKind::Message, None), 1010);
        assert_eq!(s.get("gw").unwrap().period, Some(30), "a message keeps it");
        assert!(s.tick(1010 + 74).is_empty());
        assert_eq!(kinds(&s.tick(1010 + 75)), ["gateway_late"]);
        assert_eq!(kinds(&s.tick(1010 + 300)), ["gateway_down"]);
        s.seen("gw", every(EventKind::Heartbeat, None), 2000);
        assert_eq!(s.get("gw").unwrap().thresholds, Thresholds::DEFAULT);
        assert!(s.tick(2000 + 149).is_empty());
        assert_eq!(kinds(&s.tick(2000 + 150)), ["gateway_late"]);
        s.seen("slow", every(EventKind::Heartbeat, Some(30)), 2000);
        let t = s.get("slow").unwrap().thresholds;
        assert_eq!((t.late, t.down), (400, 1600));
        // An edited config: the override gone, the period rules.
        s.set_staleness(Staleness::default());
        let t = s.get("slow").unwrap().thresholds;
        assert_eq!((t.late, t.down), (75, 300));
    }

    #[test]
    fn a_report_with_the_largest_seq_does_not_freeze_the_tunnel_list() {
        let mut s = State::new(Staleness::default());
        s.seen("gw", Heard::of(EventKind::Report), 1000);
        s.report(report(u64::MAX, vec![tunnel(1, 5901)]), 1000);
        s.seen("gw", Heard::of(EventKind::Report), 1060);
        // In the same second, the higher seq stays (as the logs are read).
        assert!(s.report(report(999, vec![]), 1000).is_empty());
        assert_eq!(s.get("gw").unwrap().tunnels.len(), 1);
        let next = report(1_060_000_000, vec![tunnel(2, 5902)]);
        assert_eq!(s.seq_went_back(&next, 1060), Some(u64::MAX));
        s.report(next, 1060);
        let pids: Vec<u32> = s
            .get("gw")
            .unwrap()
            .tunnels
            .iter()
            .map(|t| t.tunnel.pid)
            .collect();
        assert_eq!(pids, [2]);
    }

    #[test]
    fn a_report_of_many_tunnels_is_capped_per_gateway() {
        let mut s = State::new(Staleness::default());
        s.seen("gw", Heard::of(EventKind::Report), 1000);
        let many = (0..2000).map(|i| tunnel(i, (i % 60000) as u16)).collect();
        s.report(report(1, many), 1000);
        assert_eq!(s.get("gw").unwrap().tunnels.len(), MAX_TUNNELS_PER_GATEWAY);
    }

    #[test]
    fn first_seen_survives_reports() {
        let mut s = State::new(Staleness::default());
        s.seen("gw", Heard::of(EventKind::Report), 1000);
        s.report(report(1, vec![tunnel(1, 5901)]), 1000);
        s.seen("gw", Heard::of(EventKind::Report), 1060);
        s.report(report(2, vec![tunnel(1, 5901), tunnel(2, 5902)]), 1060);
        let firsts: Vec<_> = s
            .get("gw")
            .unwrap()
            .tunnels
            .iter()
            .map(|t| t.first_seen)
            .collect();
        assert_eq!(firsts, [1000, 1060]);
    }

    /// A list the same as the one before is kept as it is; the long way
    /// would make the same list with no alert. A list with a tunnel twice,
    /// reordered, or changed takes the long way.
    #[test]
    fn a_repeated_list_is_kept_as_the_long_way_would_make_it() {
        let (a, b, c) = (tunnel(1, 5901), tunnel(2, 5902), tunnel(3, 5903));
        let mut changed = b.clone();
        changed.cpu_time = "0:01".into();
        let lists = [
            vec![],
            vec![a.clone()],
            vec![a.clone(), b.clone(), c.clone()],
            vec![c.clone(), b.clone(), a.clone()],
            vec![a.clone(), changed],
            vec![a.clone(), a.clone()],
            vec![a.clone(), b.clone(), a.clone()],
        ];
        for before in &lists {
            for after in &lists {
                let mut s = State::new(Staleness::default());
                s.seen("gw", Heard::of(EventKind::Report), 1000);
                s.report(report(1, before.clone()), 1000);
                let mut long_way = s.get("gw").unwrap().clone();
                let alerts = replace_tunnels(&mut long_way, after.clone(), 1060);
                let kept = same_tunnels(&s.get("gw").unwrap().tunnels, after);
                let duplicated = after.len() > 1 && after[0] == after[after.len() - 1];
                assert_eq!(kept, before == after && !duplicated, "{before:?} {after:?}");
                s.seen("gw", Heard::of(EventKind::Report), 1060);
                let got = s.report(report(2, after.clone()), 1060);
                assert_eq!(s.get("gw").unwrap().tunnels, long_way.tunnels);
                assert_eq!(kinds(&got), kinds(&alerts), "{before:?} {after:?}");
                if kept {
                    assert!(got.is_empty());
                }
            }
        }
    }

    /// Reading the logs back, a silence makes the expected tunnels unknown
    /// from when the gateway went late, as a running collector's ticks did.
    #[test]
    fn a_silence_in_the_logs_makes_expected_tunnels_unknown_from_late_on() {
        let mut s = State::new(Staleness::default());
        let entry = logs::inventory::Expected {
            gateway: "gw".into(),
            listen: 5901,
            target_host: "novadaq-far-master-02".into(),
            target_port: 5951,
            roc: "Caltech".into(),
            station: None,
            owner: None,
        };
        s.set_inventory(vec![entry], 0);
        s.seen("gw", Heard::of(EventKind::Report), 1000);
        s.report(report(1, vec![tunnel(1, 5901)]), 1000);
        let judged = |s: &State| {
            let (_, j) = s.inventory().iter().next().unwrap();
            (j.state, j.since)
        };
        assert_eq!(judged(&s), (TunnelState::Up, 1000));
        s.catch_up("gw", 1100);
        assert_eq!(judged(&s), (TunnelState::Up, 1000), "not a silence");
        s.catch_up("gw", 1400);
        assert_eq!(judged(&s), (TunnelState::Unknown, 1150));
        s.seen("gw", Heard::of(EventKind::Report), 1400);
        s.report(report(2, vec![tunnel(1, 5901)]), 1400);
        assert_eq!(judged(&s), (TunnelState::Up, 1400));
    }

    #[test]
    fn gateways_are_capped() {
        let mut s = State::new(Staleness::default());
        for i in 0..MAX_GATEWAYS + 5 {
            s.seen(&format!("gw{i}"), Heard::of(EventKind::Heartbeat), 1);
        }
        assert_eq!(s.gateways().count(), MAX_GATEWAYS);
        assert!(!s.has_room_for("another"));
        assert!(s.has_room_for("gw0"));
        // Full of recent names: no room. A day later the longest-silent one
        // gives way, once per new name.
        assert!(!s.forget_one_silent(1 + FORGET_AFTER));
        s.seen("gw7", Heard::of(EventKind::Heartbeat), FORGET_AFTER);
        assert!(s.forget_one_silent(2 + FORGET_AFTER));
        assert!(s.has_room_for("another"));
        s.seen("another", Heard::of(EventKind::Heartbeat), 2 + FORGET_AFTER);
        assert_eq!(s.gateways().count(), MAX_GATEWAYS);
        assert!(s.get("another").is_some() && s.get("gw7").is_some());
    }
}
