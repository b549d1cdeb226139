//! The inventory: the tunnels that should be up, and the state of each one
//! judged against what its gateway reports, written once for the collector
//! (`status.json`, `/metrics`, alerts) and webgen (the pages).
//!
//! An expected tunnel is known by its gateway and listen port: a new pid on
//! the same port and target is the same tunnel. Its state, by [`judge`]:
//!
//! - `unknown`: the gateway is late or down, or has not sent a complete
//!   report since the judge started (a collector's start, the start of
//!   webgen's logs);
//! - `up`: the latest complete report holds a tunnel on that port to that
//!   target (an `L` forward; host names compared without case), not known
//!   to be broken;
//! - `broken`: there is one, but it does not listen, or a VNC probe through
//!   it got no answer;
//! - `wrong_target`: the port is held by a forward to another target;
//! - `missing`: nothing on that port.
//!
//! [`Inventory`] keeps each entry's state and since when it holds, and says
//! what changed ([`Change`]), with the alert a change raises, if any
//! ([`Change::alert`]). Tunnels that match no entry are "not in the
//! inventory": shown, never alarmed.

use gateway_client::tunnel::{Health, Kind, Tunnel};

use crate::gateway::GatewayState;

/// One expected tunnel (a `[[tunnel]]` of the config file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub gateway: String,
    /// The listen port on the gateway.
    pub listen: u16,
    /// The host and port it must lead to.
    pub target_host: String,
    pub target_port: u16,
    /// Who relies on it: the remote control room.
    pub roc: String,
    /// A label, e.g. `far-master-02 :51`.
    pub station: Option<String>,
    /// The account that should hold it.
    pub owner: Option<String>,
}

impl Expected {
    /// `host:port`, as in the config file.
    pub fn target(&self) -> String {
        format!("{}:{}", self.target_host, self.target_port)
    }

    /// Whether `t` is this entry's tunnel: same listen port, same target.
    pub fn matches(&self, t: &Tunnel) -> bool {
        self.holds_port(t)
            && t.target_port == self.target_port
            && t.target_host.eq_ignore_ascii_case(&self.target_host)
    }

    /// Whether `t` listens on this entry's port on its gateway (an `L` or
    /// `D` forward; an `R` forward listens on the far side).
    pub(crate) fn holds_port(&self, t: &Tunnel) -> bool {
        t.listen_port == self.listen && t.kind != Kind::Remote
    }
}

/// The state of an expected tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelState {
    Up,
    Broken,
    WrongTarget,
    Missing,
    Unknown,
}

impl TunnelState {
    pub const ALL: [TunnelState; 5] = [
        TunnelState::Up,
        TunnelState::Broken,
        TunnelState::WrongTarget,
        TunnelState::Missing,
        TunnelState::Unknown,
    ];

    /// As in `status.json` and `ROCTM_STATE`.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelState::Up => "up",
            TunnelState::Broken => "broken",
            TunnelState::WrongTarget => "wrong_target",
            TunnelState::Missing => "missing",
            TunnelState::Unknown => "unknown",
        }
    }

    /// Something is wrong with the tunnel itself (not merely unknown).
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            TunnelState::Broken | TunnelState::WrongTarget | TunnelState::Missing
        )
    }
}

fn broken(t: &Tunnel) -> bool {
    t.listening == Health::No || t.vnc == Health::No
}

/// The state of `e` given its gateway's state and latest complete report
/// (`None`: no complete report since the judge started), and the tunnel
/// that decided it.
pub(crate) fn judge<'a>(
    e: &Expected,
    gateway: GatewayState,
    report: Option<&[&'a Tunnel]>,
) -> (TunnelState, Option<&'a Tunnel>) {
    let Some(tunnels) = report.filter(|_| gateway == GatewayState::Up) else {
        return (TunnelState::Unknown, None);
    };
    let mut matching = tunnels.iter().copied().filter(|t| e.matches(t));
    if let Some(first) = matching.next() {
        // Two processes on one port and target: the one that works counts.
        return match std::iter::once(first).chain(matching).find(|t| !broken(t)) {
            Some(t) => (TunnelState::Up, Some(t)),
            None => (TunnelState::Broken, Some(first)),
        };
    }
    match tunnels.iter().copied().find(|t| e.holds_port(t)) {
        Some(t) => (TunnelState::WrongTarget, Some(t)),
        None => (TunnelState::Missing, None),
    }
}

/// An entry's state as last judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub state: TunnelState,
    /// Unix seconds when it entered this state.
    pub since: u64,
    /// The tunnel that decided it (none when missing or unknown).
    pub tunnel: Option<Tunnel>,
    /// The last state other than unknown, if there was one.
    pub last_known: Option<TunnelState>,
}

/// A change of an entry's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The entry's index in [`Inventory::entries`].
    pub index: usize,
    pub from: TunnelState,
    pub to: TunnelState,
    pub at: u64,
    /// The last state other than unknown before this change.
    pub last_known: Option<TunnelState>,
}

impl Change {
    /// The alert this change raises: `tunnel_missing`, `tunnel_broken`
    /// (broken or on a wrong target) or `tunnel_restored`; none for a move
    /// to or from unknown alone. A gateway's silence is its own alert, so a
    /// tunnel that comes back as it was is not news, but one that did not
    /// come back after a reboot is.
    pub fn alert(&self) -> Option<&'static str> {
        match self.to {
            TunnelState::Unknown => None,
            TunnelState::Up => self
                .last_known
                .is_some_and(TunnelState::is_problem)
                .then_some("tunnel_restored"),
            to if self.last_known == Some(to) => None,
            TunnelState::Missing => Some("tunnel_missing"),
            TunnelState::Broken | TunnelState::WrongTarget => Some("tunnel_broken"),
        }
    }
}

/// The expected tunnels and their states.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    entries: Vec<Expected>,
    judged: Vec<Judged>,
}

impl Inventory {
    /// Every entry `unknown` since `now`.
    pub fn new(entries: Vec<Expected>, now: u64) -> Inventory {
        let judged = entries
            .iter()
            .map(|_| Judged {
                state: TunnelState::Unknown,
                since: now,
                tunnel: None,
                last_known: None,
            })
            .collect();
        Inventory { entries, judged }
    }

    /// The entries with the states they had (webgen's cache reads back a
    /// saved judging); `None` unless there is one state per entry.
    pub fn restore(entries: Vec<Expected>, judged: Vec<Judged>) -> Option<Inventory> {
        (entries.len() == judged.len()).then_some(Inventory { entries, judged })
    }

    /// A new list of entries; those that were there before (same gateway
    /// and listen port) keep their state and since.
    pub fn replace(&mut self, entries: Vec<Expected>, now: u64) {
        let mut next = Inventory::new(entries, now);
        for (e, j) in next.entries.iter().zip(next.judged.iter_mut()) {
            if let Some(i) = self.index_of(&e.gateway, e.listen) {
                *j = self.judged[i].clone();
            }
        }
        *self = next;
    }

    fn index_of(&self, gateway: &str, listen: u16) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.gateway == gateway && e.listen == listen)
    }

    pub fn entries(&self) -> &[Expected] {
        &self.entries
    }

    /// Each entry with its state.
    pub fn iter(&self) -> impl Iterator<Item = (&Expected, &Judged)> {
        self.entries.iter().zip(&self.judged)
    }

    /// Gateways named by the inventory, each once, in order of first entry.
    pub fn gateways(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !out.contains(&e.gateway.as_str()) {
                out.push(&e.gateway);
            }
        }
        out
    }

    /// Judges the entries of `gateway` again, given its state and latest
    /// complete report, at `now`; returns what changed.
    pub fn update(
        &mut self,
        gateway: &str,
        state: GatewayState,
        report: Option<&[&Tunnel]>,
        now: u64,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (index, (e, j)) in self.entries.iter().zip(&mut self.judged).enumerate() {
            if e.gateway != gateway {
                continue;
            }
            let (to, tunnel) = judge(e, state, report);
            j.tunnel = tunnel.cloned();
            if to == j.state {
                continue;
            }
            changes.push(Change {
                index,
                from: j.state,
                to,
                at: now,
                last_known: j.last_known,
            });
            if to != TunnelState::Unknown {
                j.last_known = Some(to);
            }
            j.state = to;
            j.since = now;
        }
        changes
    }

    /// Whether `t` on `gateway` is one of the expected tunnels (the pages
    /// mark the others "not in the inventory").
    pub fn expects(&self, gateway: &str, t: &Tunnel) -> bool {
        self.entries
            .iter()
            .any(|e| e.gateway == gateway && e.matches(t))
    }

    /// The ROCs an alert on `gateway` concerns, each once: those of its
    /// expected tunnels, or with `tunnel`, those of the entries it matches
    /// (used by the notify routes' `roc` filter).
    pub fn rocs_of(&self, gateway: &str, tunnel: Option<&Tunnel>) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for e in &self.entries {
            if e.gateway == gateway
                && tunnel.is_none_or(|t| e.matches(t))
                && !out.contains(&e.roc.as_str())
            {
                out.push(&e.roc);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(listen: u16) -> Expected {
        Expected {
            gateway: "gw".into(),
            listen,
            target_host: "novadaq-far-master-02".into(),
            target_port: 5951,
            roc: "Caltech".into(),
            station: None,
            owner: None,
        }
    }

    fn tunnel(pid: u32, listen: u16, host: &str) -> Tunnel {
        Tunnel {
            pid,
            listen_port: listen,
            target_host: host.into(),
            target_port: 5951,
            listening: Health::Yes,
            ..Tunnel::default()
        }
    }

    const UP: GatewayState = GatewayState::Up;

    #[test]
    fn every_state() {
        let e = entry(5901);
        let ok = tunnel(1, 5901, "NOVADAQ-far-master-02");
        let deaf = Tunnel {
            listening: Health::No,
            ..ok.clone()
        };
        let no_vnc = Tunnel {
            vnc: Health::No,
            ..ok.clone()
        };
        let elsewhere = tunnel(2, 5901, "novadaq-far-dcm-01");
        let remote = Tunnel {
            kind: Kind::Remote,
            ..ok.clone()
        };
        let other_port = tunnel(3, 5902, "novadaq-far-master-02");
        let st = |ts: &[&Tunnel]| judge(&e, UP, Some(ts)).0;
        assert_eq!(st(&[&ok]), TunnelState::Up);
        assert_eq!(st(&[&deaf]), TunnelState::Broken);
        assert_eq!(st(&[&no_vnc]), TunnelState::Broken);
        assert_eq!(st(&[&deaf, &ok]), TunnelState::Up);
        assert_eq!(st(&[&elsewhere]), TunnelState::WrongTarget);
        assert_eq!(st(&[&remote, &other_port]), TunnelState::Missing);
        assert_eq!(st(&[]), TunnelState::Missing);
        assert_eq!(judge(&e, UP, None).0, TunnelState::Unknown);
        assert_eq!(
            judge(&e, GatewayState::Late, Some(&[&ok])).0,
            TunnelState::Unknown
        );
    }

    #[test]
    fn transitions_since_and_alerts() {
        let mut inv = Inventory::new(vec![entry(5901), entry(5902)], 100);
        let t1 = tunnel(1, 5901, "novadaq-far-master-02");
        let ok = [&t1];
        let alerts = |c: &[Change]| c.iter().map(|c| c.alert()).collect::<Vec<_>>();
        // A first report: 5901 up (no alert, nothing was wrong), 5902 missing.
        let c = inv.update("gw", UP, Some(&ok), 160);
        assert_eq!(alerts(&c), [None, Some("tunnel_missing")]);
        // The same again: nothing changes, since stays.
        assert!(inv.update("gw", UP, Some(&ok), 220).is_empty());
        let j: Vec<_> = inv.iter().map(|(_, j)| (j.state, j.since)).collect();
        assert_eq!(j, [(TunnelState::Up, 160), (TunnelState::Missing, 160)]);
        // The gateway goes late: unknown, no alert.
        let c = inv.update("gw", GatewayState::Late, Some(&ok), 400);
        assert_eq!(alerts(&c), [None, None]);
        // Back after a reboot without 5901: missing is news; 5902 still
        // missing is not.
        let c = inv.update("gw", UP, Some(&[]), 900);
        assert_eq!(alerts(&c), [Some("tunnel_missing"), None]);
        // A new pid on the same port and target restores it.
        let t7 = tunnel(7, 5901, "novadaq-far-master-02");
        let c = inv.update("gw", UP, Some(&[&t7]), 960);
        assert_eq!(alerts(&c), [Some("tunnel_restored")]);
        assert_eq!(inv.iter().next().unwrap().1.since, 960);
        // Other gateways' reports do not touch these entries.
        assert!(inv.update("other", UP, Some(&[]), 1000).is_empty());
    }

    #[test]
    fn the_rocs_an_alert_concerns() {
        let mut other = entry(5902);
        other.roc = "Fermilab".into();
        let inv = Inventory::new(vec![entry(5901), other, entry(5903)], 0);
        assert_eq!(inv.rocs_of("gw", None), ["Caltech", "Fermilab"]);
        let t = tunnel(1, 5902, "novadaq-far-master-02");
        assert_eq!(inv.rocs_of("gw", Some(&t)), ["Fermilab"]);
        assert!(inv.rocs_of("gw", Some(&tunnel(1, 6000, "x"))).is_empty());
        assert!(inv.rocs_of("other", None).is_empty());
    }

    #[test]
    fn a_new_list_keeps_the_states_of_entries_still_there() {
        let mut inv = Inventory::new(vec![entry(5901)], 100);
        inv.update("gw", UP, Some(&[]), 160);
        inv.replace(vec![entry(5902), entry(5901)], 200);
        let j: Vec<_> = inv
            .iter()
            .map(|(e, j)| (e.listen, j.state, j.since))
            .collect();
        assert_eq!(
            j,
            [
                (5902, TunnelState::Unknown, 200),
                (5901, TunnelState::Missing, 160)
            ]
        );
    }
}
