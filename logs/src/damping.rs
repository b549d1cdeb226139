//! Damping of tunnel alerts, so that a tunnel that blinks does not page
//! anyone forty times:
//!
//! - **hold**: an alert about a tunnel is sent only once the new state has
//!   held for `hold` seconds; a change back within that time cancels it
//!   (a tunnel gone and back in 20 s sends nothing);
//! - **flapping**: a tunnel that changes state more than `flap` times
//!   within an hour raises one `tunnel_flapping` alert, and then stays
//!   quiet until it has been steady for an hour.
//!
//! A tunnel here is a *slot*: a gateway and a listen port (what a shifter
//! connects to), whatever pid holds it. Gateway alerts are not damped:
//! their late and down thresholds already are.
//!
//! [`Damper`] is generic over the alert it holds back, so that the
//! collector's alerts go through it unchanged.

use std::collections::{BTreeMap, VecDeque};

/// An hour: the window for counting changes, and how long a flapping
/// tunnel must be steady to be alerted on again.
pub(crate) const FLAP_WINDOW: u64 = 3600;

/// The settings: `hold` and `flap` of the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damping {
    /// Seconds a new state must hold before its alert is sent.
    pub hold: u64,
    /// More changes than this within [`FLAP_WINDOW`] make a tunnel flapping.
    pub flap: u32,
}

impl Damping {
    pub const DEFAULT: Damping = Damping { hold: 30, flap: 4 };
}

impl Default for Damping {
    fn default() -> Damping {
        Damping::DEFAULT
    }
}

/// A tunnel slot: gateway and listen port, and whether it is about an
/// expected tunnel's state (`tunnel_missing` ...) or about tunnels coming
/// and going (`tunnel_up`, `tunnel_down`): the two are damped apart.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    pub gateway: String,
    pub listen: u16,
    pub expected: bool,
}

/// What the damper says to do with an alert now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<A> {
    /// Send these (alerts held long enough, or a `tunnel_flapping`: the
    /// caller makes that alert from the one given).
    Send(Vec<A>),
    /// The slot just started flapping: send one `tunnel_flapping` alert
    /// (made from this one).
    Flapping(A),
}

struct Pending<A> {
    alert: A,
    /// The slot's state before the change.
    from: String,
    due: u64,
}

#[derive(Default)]
struct SlotState<A> {
    /// Times of the changes within the last [`FLAP_WINDOW`].
    changes: VecDeque<u64>,
    pending: Option<Pending<A>>,
    /// Flapping since this change (the last one seen).
    flapping_since: Option<u64>,
}

/// Holds back and thins out tunnel alerts (see the module doc).
pub struct Damper<A> {
    damping: Damping,
    slots: BTreeMap<Slot, SlotState<A>>,
}

impl<A> Damper<A> {
    pub fn new(damping: Damping) -> Damper<A> {
        Damper {
            damping,
            slots: BTreeMap::new(),
        }
    }

    pub fn set(&mut self, damping: Damping) {
        self.damping = damping;
    }

    /// A change of `slot` from state `from` to `to` at `now`, with its
    /// alert: held back, dropped, or the start of flapping.
    pub fn change(&mut self, slot: Slot, from: &str, to: &str, alert: A, now: u64) -> Verdict<A> {
        let d = self.damping;
        let s = self.slots.entry(slot).or_insert_with(|| SlotState {
            changes: VecDeque::new(),
            pending: None,
            flapping_since: None,
        });
        while s.changes.front().is_some_and(|&t| t + FLAP_WINDOW <= now) {
            s.changes.pop_front();
        }
        s.changes.push_back(now);
        if s.flapping_since.is_some() {
            s.flapping_since = Some(now);
            return Verdict::Send(Vec::new());
        }
        if s.changes.len() > d.flap as usize {
            s.flapping_since = Some(now);
            s.pending = None;
            return Verdict::Flapping(alert);
        }
        // A change back before the pending alert was sent cancels both.
        if let Some(p) = s.pending.take()
            && p.from == to
        {
            return Verdict::Send(Vec::new());
        }
        let pending = Pending {
            alert,
            from: from.to_string(),
            due: now.saturating_add(d.hold),
        };
        if d.hold == 0 {
            return Verdict::Send(vec![pending.alert]);
        }
        s.pending = Some(pending);
        Verdict::Send(Vec::new())
    }

    /// Whether `slot` is flapping at `now`: it changed more than `flap`
    /// times within an hour, and has not yet been steady for an hour since.
    pub fn is_flapping(&self, slot: &Slot, now: u64) -> bool {
        self.flapping_until(slot).is_some_and(|t| now < t)
    }

    /// When `slot`, flapping, will have been steady for an hour if it does
    /// not change again; `None` when it is not flapping.
    pub fn flapping_until(&self, slot: &Slot) -> Option<u64> {
        self.slots
            .get(slot)
            .and_then(|s| s.flapping_since)
            .map(|t| t.saturating_add(FLAP_WINDOW))
    }

    /// The alerts whose state has held long enough by `now`; flapping
    /// slots steady for an hour are alerted on again from now on.
    pub fn tick(&mut self, now: u64) -> Vec<A> {
        let mut out = Vec::new();
        for s in self.slots.values_mut() {
            if s.flapping_since.is_some_and(|t| t + FLAP_WINDOW <= now) {
                s.flapping_since = None;
                s.changes.clear();
            }
            if s.pending.as_ref().is_some_and(|p| p.due <= now)
                && let Some(p) = s.pending.take()
            {
                out.push(p.alert);
            }
        }
        self.slots.retain(|_, s| {
            s.pending.is_some() || s.flapping_since.is_some() || !s.changes.is_empty()
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> Slot {
        Slot {
            gateway: "gw".into(),
            listen: 5901,
            expected: true,
        }
    }

    fn sent(v: Verdict<&'static str>) -> Vec<&'static str> {
        match v {
            Verdict::Send(a) => a,
            Verdict::Flapping(a) => vec!["FLAPPING", a],
        }
    }

    #[test]
    fn an_alert_waits_for_hold_and_a_change_back_cancels_it() {
        let mut d = Damper::new(Damping { hold: 30, flap: 4 });
        assert!(sent(d.change(slot(), "up", "missing", "missing", 100)).is_empty());
        assert!(d.tick(129).is_empty());
        assert_eq!(d.tick(130), ["missing"]);
        // Back within hold: nothing at all.
        assert!(sent(d.change(slot(), "missing", "up", "restored", 200)).is_empty());
        assert!(sent(d.change(slot(), "up", "missing", "missing", 210)).is_empty());
        assert!(d.tick(1000).is_empty());
        // hold 0: at once.
        let mut d = Damper::new(Damping { hold: 0, flap: 4 });
        assert_eq!(sent(d.change(slot(), "up", "missing", "m", 5)), ["m"]);
    }

    #[test]
    fn more_than_flap_changes_in_an_hour_flap_once_then_quiet_until_steady() {
        let mut d = Damper::new(Damping { hold: 30, flap: 4 });
        let states = ["up", "missing"];
        let mut out = Vec::new();
        for i in 0..10u64 {
            let (from, to) = (states[(i % 2) as usize], states[((i + 1) % 2) as usize]);
            out.extend(sent(d.change(slot(), from, to, to, 100 + i * 100)));
            out.extend(d.tick(100 + i * 100 + 50));
        }
        // Changes 1..4 each held 50 s > 30 s: sent; the fifth flaps; the
        // rest are quiet.
        assert_eq!(
            out,
            ["missing", "up", "missing", "up", "FLAPPING", "missing"]
        );
        // Steady for an hour after the last change (at 1000): alerted again.
        assert!(d.is_flapping(&slot(), 1000 + FLAP_WINDOW - 1));
        assert!(!d.is_flapping(&slot(), 1000 + FLAP_WINDOW));
        assert!(d.tick(1000 + FLAP_WINDOW - 1).is_empty());
        d.tick(1000 + FLAP_WINDOW);
        assert!(sent(d.change(slot(), "up", "missing", "missing", 5000)).is_empty());
        assert_eq!(d.tick(5030), ["missing"]);
    }
}
