//! The inventory as the logs stream by: every expected tunnel judged by
//! `logs::inventory` (the rules are written there once, for the collector
//! too), at the moments the collector judges it, so that each entry's state
//! and `since` on the pages are those of the collector's `status.json` for
//! the same logs:
//!
//! - judging starts, every entry `unknown`, at the first event of the logs
//!   read (the collector's start, for the collector);
//! - at each complete report of a gateway, its entries are judged on it
//!   (a report older than the last one judged changes nothing, as in the
//!   collector);
//! - when a gateway falls silent (a gap of at least `late` between two
//!   signs of life, `Thresholds::is_silence`), its entries are `unknown`
//!   from `last heard + late` until its next complete report;
//! - at the end, a gateway late or down now makes its entries `unknown`
//!   from `last heard + late`.
//!
//! Each entry's states over time ([`Judging::timeline`]) feed the history
//! page's availability and outages per ROC.

use gateway_client::tunnel::Tunnel;
use logs::GatewayState;
use logs::damping::{Damper, Damping, Slot};
use logs::inventory::{Change, Expected, Inventory, TunnelState};

use crate::logs::{Catalog, GwId};

/// The expected tunnels and their states as judged so far.
#[derive(Debug, Default)]
pub(crate) struct Judging {
    entries: Vec<Expected>,
    /// Created at the first event (or at the end, without any).
    inventory: Option<Inventory>,
    /// Per entry, its states in time order: (from when, state); the first
    /// is `unknown` from the start of judging.
    pub timeline: Vec<Vec<(u64, TunnelState)>>,
    /// By gateway id: whether the inventory names the gateway (`None`: not
    /// looked up yet).
    named: Vec<Option<bool>>,
    /// By gateway id: the seq of the latest report judged.
    judged_seq: Vec<Option<u64>>,
}

impl Judging {
    pub(crate) fn new(entries: Vec<Expected>) -> Judging {
        Judging {
            entries,
            ..Judging::default()
        }
    }

    /// Whether there is an inventory at all.
    pub(crate) fn configured(&self) -> bool {
        !self.entries.is_empty()
    }

    /// The entries and their states (none before [`Judging::start`]).
    pub(crate) fn inventory(&self) -> Option<&Inventory> {
        self.inventory.as_ref()
    }

    /// Starts judging at `at`, once: every entry unknown.
    pub(crate) fn start(&mut self, at: u64) {
        if self.inventory.is_some() || !self.configured() {
            return;
        }
        self.inventory = Some(Inventory::new(self.entries.clone(), at));
        self.timeline = vec![vec![(at, TunnelState::Unknown)]; self.entries.len()];
    }

    fn names(&mut self, catalog: &Catalog, gw: GwId) -> bool {
        let i = gw as usize;
        if self.named.len() <= i {
            self.named.resize(i + 1, None);
        }
        *self.named[i].get_or_insert_with(|| {
            let name = catalog.gateway(gw);
            self.entries.iter().any(|e| e.gateway == name)
        })
    }

    /// Whether entry `index` is flapping at `now` by the collector's rule
    /// (`logs::damping`): its changes that raise an alert
    /// ([`Change::alert`]) replayed through a damper with `flap`.
    pub(crate) fn flapping(&self, index: usize, flap: u32, now: u64) -> bool {
        let (Some(timeline), Some(entry)) = (self.timeline.get(index), self.entries.get(index))
        else {
            return false;
        };
        let slot = Slot {
            gateway: entry.gateway.clone(),
            listen: entry.listen,
            expected: true,
        };
        let mut damper = Damper::new(Damping { hold: 0, flap });
        let mut last_known = None;
        for pair in timeline.windows(2) {
            let ((_, from), (at, to)) = (pair[0], pair[1]);
            let change = Change {
                index,
                from,
                to,
                at,
                last_known,
            };
            if change.alert().is_some() {
                // The collector ticks its damper every second: a slot
                // steady for an hour stops flapping before its next change.
                damper.tick(at);
                let before = last_known.map_or("unknown", TunnelState::as_str);
                let _ = damper.change(slot.clone(), before, to.as_str(), (), at);
            }
            if to != TunnelState::Unknown {
                last_known = Some(to);
            }
        }
        damper.is_flapping(&slot, now)
    }

    fn record(&mut self, changes: Vec<Change>) {
        for c in changes {
            self.timeline[c.index].push((c.at, c.to));
        }
    }

    /// `gw` fell silent: its entries are unknown from `at`.
    pub(crate) fn silence(&mut self, catalog: &Catalog, gw: GwId, at: u64) {
        if !self.names(catalog, gw) {
            return;
        }
        let name = catalog.gateway(gw);
        if let Some(inv) = self.inventory.as_mut() {
            let changes = inv.update(name, GatewayState::Late, None, at);
            self.record(changes);
        }
    }

    /// A complete report of `gw` (number `seq`), received `at`, holding
    /// `tunnels` (with the health they had in it).
    pub(crate) fn report(
        &mut self,
        catalog: &Catalog,
        gw: GwId,
        seq: u64,
        tunnels: impl FnOnce() -> Vec<Tunnel>,
        at: u64,
    ) {
        if !self.names(catalog, gw) {
            return;
        }
        let i = gw as usize;
        if self.judged_seq.len() <= i {
            self.judged_seq.resize(i + 1, None);
        }
        if self.judged_seq[i].is_some_and(|s| seq <= s) {
            return;
        }
        self.judged_seq[i] = Some(seq);
        let tunnels = tunnels();
        let list: Vec<&Tunnel> = tunnels.iter().collect();
        let name = catalog.gateway(gw);
        if let Some(inv) = self.inventory.as_mut() {
            let changes = inv.update(name, GatewayState::Up, Some(&list), at);
            self.record(changes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_entries_nothing_is_judged() {
        let mut j = Judging::new(Vec::new());
        j.start(5);
        assert!(!j.configured());
        assert!(j.inventory().is_none());
        assert!(j.timeline.is_empty());
    }
}
