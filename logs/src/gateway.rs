//! When a gateway counts as up, late or down: the thresholds, their
//! defaults, and the rule, written once for the collector (`status.json`,
//! `/metrics`, alerts) and webgen (the pages, the silences in the history).
//!
//! Healthchecks-style: a gateway is *up* while it reports, *late* once it
//! has been silent for `late` seconds (the expected minute plus grace), and
//! *down* from `down` seconds on. Any accepted datagram is a sign of life.
//! A *silence* is a stretch during which the gateway was late or down: a
//! gap between two signs of life of at least `late` seconds.

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

    #[test]
    fn a_silence_starts_where_late_does() {
        let t = Thresholds { late: 60, down: 90 };
        assert!(!t.is_silence(59));
        assert!(t.is_silence(60));
        assert!(t.is_silence(1000));
    }
}
