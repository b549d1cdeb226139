//! Applies the silences (`logs::silence`) to the alerts on their way to the
//! notify routes.
//!
//! An alert in the scope of an active silence is not sent. A problem held
//! back this way is kept (the latest per gateway or tunnel slot; a recovery
//! during the silence forgets it), and when no silence covers it any more
//! and the problem is still there, it is sent then. A recovery after the
//! silence passes as any alert does.

use std::collections::BTreeMap;
use std::sync::Arc;

use logs::silence::{self, Maintenance, Silence};

use crate::state::{Alert, AlertKind};

/// What a held alert is about: its gateway, and the listen port and kind of
/// slot for a tunnel's alert.
type HeldKey = (String, Option<(u16, bool)>);

/// The silences and what they hold back.
#[derive(Default)]
pub(crate) struct Silencer {
    /// The config file's silences.
    configured: Vec<Silence>,
    /// The gateways' own (`gateway-client --maintenance`).
    maintenance: Maintenance,
    /// Both, as applied and published.
    silences: Arc<Vec<Silence>>,
    held: BTreeMap<HeldKey, (Alert, Vec<String>)>,
    /// How many silences were active at the last look.
    active: usize,
}

fn is_problem(kind: AlertKind) -> bool {
    !matches!(
        kind,
        AlertKind::GatewayUp | AlertKind::TunnelUp | AlertKind::TunnelRestored
    )
}

fn key(a: &Alert) -> HeldKey {
    let slot = match (&a.expected, &a.tunnel) {
        (Some(x), _) => Some((x.entry.listen, true)),
        (None, Some(t)) => Some((t.listen_port, false)),
        (None, None) => None,
    };
    (a.gateway.clone(), slot)
}

impl Silencer {
    /// The silences of the config file (at start, and when it is edited).
    pub(crate) fn set(&mut self, silences: Vec<Silence>) {
        self.configured = silences;
        self.merge();
    }

    /// A gateway's `maintenance` request (see [`Maintenance::request`]).
    pub(crate) fn maintenance(
        &mut self,
        gateway: &str,
        received: u64,
        sent: u64,
        until: u64,
        reason: &str,
    ) {
        self.maintenance
            .request(gateway, received, sent, until, reason);
        self.merge();
    }

    fn merge(&mut self) {
        let all = self.configured.iter().chain(self.maintenance.silences());
        self.silences = Arc::new(all.cloned().collect());
    }

    /// All silences, configured and asked by gateways (the snapshot shows
    /// the active ones).
    pub(crate) fn silences(&self) -> &Arc<Vec<Silence>> {
        &self.silences
    }

    /// The alert, unless a silence holds it back.
    pub(crate) fn pass(&mut self, a: Alert, rocs: &[&str], now: u64) -> Option<Alert> {
        let k = key(&a);
        if silence::covering(&self.silences, &a.gateway, rocs, now)
            .next()
            .is_none()
        {
            self.held.remove(&k);
            return Some(a);
        }
        if is_problem(a.kind) && a.kind != AlertKind::TunnelFlapping {
            let rocs = rocs.iter().map(|r| r.to_string()).collect();
            self.held.insert(k, (a, rocs));
        } else {
            self.held.remove(&k);
        }
        None
    }

    /// Whether the set of active silences changed since the last call.
    pub(crate) fn changed(&mut self, now: u64) -> bool {
        let active = self.silences.iter().filter(|s| s.active(now)).count();
        std::mem::replace(&mut self.active, active) != active
    }

    /// The held problems no silence covers any more, for which `still`
    /// says the problem is still there; the others are forgotten.
    pub(crate) fn release(&mut self, now: u64, still: impl Fn(&Alert) -> bool) -> Vec<Alert> {
        let silences = self.silences.clone();
        let free: Vec<HeldKey> = self
            .held
            .iter()
            .filter(|(_, (a, rocs))| {
                let rocs: Vec<&str> = rocs.iter().map(String::as_str).collect();
                silence::covering(&silences, &a.gateway, &rocs, now)
                    .next()
                    .is_none()
            })
            .map(|(k, _)| k.clone())
            .collect();
        free.into_iter()
            .filter_map(|k| self.held.remove(&k))
            .map(|(a, _)| a)
            .filter(|a| still(a))
            .map(|a| Alert { time: now, ..a })
            .collect()
    }
}
