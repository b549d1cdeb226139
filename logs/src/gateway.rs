//! When a gateway counts as up, late or down: the thresholds, their
//! defaults, and the rule, written once for the collector (`status.json`,
//! `/metrics`, alerts) and webgen (the pages, the silences in the history).
//!
//! Healthchecks-style: a gateway is *up* while it reports, *late* once it
//! has been silent for `late` seconds (the expected minute plus grace), and
//! *down* from `down` seconds on. Any accepted datagram is a sign of life.
//! A *silence* is a stretch during which the gateway was late or down: a
//! gap between two signs of life of at least `late` seconds.
//!
//! Which `late` and `down` apply to a gateway ([`Staleness::of`]): a
//! gateway may declare a *period* in its datagrams (the longest it means to
//! stay silent: a watching client's `--every`); one that does is late after
//! 2.5 periods and down after 10 ([`Thresholds::of_period`]), one that does
//! not gets the global thresholds (`--late`/`--down`, the config's `late`
//! and `down`). The config file's `[[gateway]]` tables ([`Override`]) set
//! either or both for one gateway, over both. The period in force is the
//! one the last report or heartbeat declared ([`declared_period`]): a
//! gateway moved back to cron stops declaring one and gets the global
//! thresholds again; an operator's message says nothing about it.

use std::collections::BTreeMap;

use crate::EventKind;

/// When a gateway counts as late or down, in seconds since it was last heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub late: u64,
    pub down: u64,
}

impl Thresholds {
    /// For a one-minute cron: two and a half missed minutes make a gateway
    /// late, ten make it down.
    pub const DEFAULT: Thresholds = Thresholds {
        late: 150,
        down: 600,
    };

    /// Checked thresholds: `late` at least a second, `down` longer than
    /// `late` (a gateway is late before it is down). The error says which
    /// is wrong, for a message that names the flag or key.
    pub fn new(late: u64, down: u64) -> Result<Thresholds, String> {
        if late == 0 {
            return Err("late must be at least 1s".into());
        }
        if down <= late {
            return Err(format!("down ({down}s) must be longer than late ({late}s)"));
        }
        Ok(Thresholds { late, down })
    }

    /// For a gateway that declares a period of `period` seconds: late after
    /// 2.5 periods (rounded up), down after 10. `None` for a period of 0,
    /// which declares nothing.
    pub(crate) fn of_period(period: u32) -> Option<Thresholds> {
        let p = u64::from(period);
        (p > 0).then(|| Thresholds {
            late: (5 * p).div_ceil(2),
            down: 10 * p,
        })
    }

    /// The state of a gateway silent for `age` seconds.
    pub fn state(self, age: u64) -> GatewayState {
        if age >= self.down {
            GatewayState::Down
        } else if age >= self.late {
            GatewayState::Late
        } else {
            GatewayState::Up
        }
    }

    /// Whether a gap of `gap` seconds between two signs of life was a
    /// silence (the gateway was late, at least, before it was heard again).
    pub fn is_silence(self, gap: u64) -> bool {
        self.state(gap) != GatewayState::Up
    }
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds::DEFAULT
    }
}

/// The period in force after a datagram of `kind` that declared `period`,
/// when `before` was: a declared period (other than 0) holds; a report or
/// heartbeat that declares none ends it (an older or one-shot client); any
/// other kind (a message, a maintenance notice) leaves it as it was.
pub fn declared_period(before: Option<u32>, kind: EventKind, period: Option<u32>) -> Option<u32> {
    match period.filter(|&p| p > 0) {
        Some(p) => Some(p),
        None if matches!(kind, EventKind::Report | EventKind::Heartbeat) => None,
        None => before,
    }
}

/// One `[[gateway]]` of the config file: `late`, `down` or both for the
/// gateway `name`, over its period and the global thresholds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub name: String,
    pub late: Option<u64>,
    pub down: Option<u64>,
}

/// The thresholds of every gateway: the global ones, the per-gateway
/// overrides, and the period rule (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Staleness {
    /// The thresholds for gateways that declare no period and have no
    /// override.
    pub global: Thresholds,
    overrides: BTreeMap<String, (Option<u64>, Option<u64>)>,
}

impl Staleness {
    /// The global thresholds and the `[[gateway]]` overrides (a later one
    /// for the same name wins; the config file refuses two).
    pub fn new(global: Thresholds, overrides: &[Override]) -> Staleness {
        Staleness {
            global,
            overrides: overrides
                .iter()
                .map(|o| (o.name.clone(), (o.late, o.down)))
                .collect(),
        }
    }

    /// The thresholds of `gateway`, which declared `period` (see
    /// [`declared_period`]): its override's `late` and `down`, else those
    /// of its period, else the global ones. An override that sets only
    /// `late` at or above the `down` it would otherwise get makes `down`
    /// four times `late` (the defaults' ratio), so late still comes first.
    pub fn of(&self, gateway: &str, period: Option<u32>) -> Thresholds {
        let base = period
            .and_then(Thresholds::of_period)
            .unwrap_or(self.global);
        let Some(&(late, down)) = self.overrides.get(gateway) else {
            return base;
        };
        let late = late.unwrap_or(base.late).max(1);
        let down = down.unwrap_or(base.down);
        let down = if down > late {
            down
        } else {
            late.saturating_mul(4)
        };
        Thresholds { late, down }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GatewayState {
    Up,
    Late,
    Down,
}

impl GatewayState {
    pub const ALL: [GatewayState; 3] = [GatewayState::Up, GatewayState::Late, GatewayState::Down];

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayState::Up => "up",
            GatewayState::Late => "late",
            GatewayState::Down => "down",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_by_age_at_the_edges() {
        let t = Thresholds::default();
        assert_eq!(t.state(0), GatewayState::Up);
        assert_eq!(t.state(149), GatewayState::Up);
        assert_eq!(t.state(150), GatewayState::Late);
        assert_eq!(t.state(599), GatewayState::Late);
        assert_eq!(t.state(600), GatewayState::Down);
        assert_eq!(t.state(u64::MAX), GatewayState::Down);
    }

    #[test]
    fn down_comes_after_late() {
        assert!(Thresholds::new(150, 600).is_ok());
        assert!(Thresholds::new(0, 600).unwrap_err().contains("late"));
        assert!(Thresholds::new(600, 600).unwrap_err().contains("longer"));
    }

    /// A watching gateway (every 30 s) is late within 75 s, down at 5 min.
    #[test]
    fn a_declared_period_sets_the_thresholds() {
        assert_eq!(
            Thresholds::of_period(30),
            Some(Thresholds {
                late: 75,
                down: 300
            })
        );
        assert_eq!(
            Thresholds::of_period(1),
            Some(Thresholds { late: 3, down: 10 })
        );
        assert_eq!(Thresholds::of_period(0), None);
        let max = Thresholds::of_period(u32::MAX).unwrap();
        assert!(max.late < max.down);
        let s = Staleness::new(Thresholds::default(), &[]);
        assert_eq!(s.of("gw", Some(30)).state(74), GatewayState::Up);
        assert_eq!(s.of("gw", Some(30)).state(75), GatewayState::Late);
        assert_eq!(s.of("gw", Some(30)).state(300), GatewayState::Down);
        assert_eq!(s.of("gw", None), Thresholds::DEFAULT);
        assert_eq!(s.of("gw", Some(0)), Thresholds::DEFAULT);
    }

    #[test]
    fn an_override_wins_over_the_period_and_the_global_thresholds() {
        let o = |name: &str, late, down| Override {
            name: name.into(),
            late,
            down,
        };
        let s = Staleness::new(
            Thresholds::default(),
            &[
                o("both", Some(20), Some(40)),
                o("late", Some(400), None),
                o("down", None, Some(1000)),
            ],
        );
        let t = |late, down| Thresholds { late, down };
        assert_eq!(s.of("both", None), t(20, 40));
        assert_eq!(s.of("both", Some(30)), t(20, 40));
        assert_eq!(s.of("late", None), t(400, 600));
        // Only late, past the period's down: down is 4 x late.
        assert_eq!(s.of("late", Some(30)), t(400, 1600));
        assert_eq!(s.of("down", Some(30)), t(75, 1000));
        assert_eq!(s.of("down", None), t(150, 1000));
        assert_eq!(s.of("other", Some(30)), t(75, 300));
        assert_eq!(s.global, Thresholds::DEFAULT);
    }

    #[test]
    fn the_last_report_or_heartbeat_says_the_period() {
        use EventKind::*;
        assert_eq!(declared_period(None, Report, Some(30)), Some(30));
        assert_eq!(declared_period(Some(30), Heartbeat, Some(60)), Some(60));
        assert_eq!(declared_period(Some(30), Report, None), None);
        assert_eq!(declared_period(Some(30), Heartbeat, None), None);
        assert_eq!(declared_period(Some(30), Report, Some(0)), None);
        assert_eq!(declared_period(Some(30), Message, None), Some(30));
        assert_eq!(declared_period(Some(30), Other, None), Some(30));
        assert_eq!(declared_period(None, Message, Some(5)), Some(5));
    }

    #[test]
    fn a_silence_starts_where_late_does() {
        let t = Thresholds { late: 60, down: 90 };
        assert!(!t.is_silence(59));
        assert!(t.is_silence(60));
        assert!(t.is_silence(1000));
    }
}
