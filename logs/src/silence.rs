//! Silences: planned work must not page anyone.
//!
//! A silence has a scope (a gateway, a ROC, or both: then only that ROC's
//! tunnels on that gateway), a time (`from` until `until`, Unix seconds,
//! `until` excluded) and a reason. While it is active, alerts in its scope
//! are not sent; when it ends and the problem is still there, the alert is
//! sent then (the collector keeps what it held back).
//!
//! Silences come from the config file (`[[silence]]`) and from the
//! gateways themselves (`gateway-client --maintenance`, logged as a
//! `maintenance` event): [`Maintenance`] keeps the latest request of each
//! gateway, the one rule for the collector and webgen alike.

use std::collections::BTreeMap;

/// One silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    pub gateway: Option<String>,
    pub roc: Option<String>,
    pub from: u64,
    pub until: u64,
    pub reason: String,
    /// Asked by the gateway (`gateway-client --maintenance`), not from the
    /// config file.
    pub from_gateway: bool,
}

/// The maintenance silences the gateways asked for: each gateway's latest
/// request wins, so `--maintenance 0` (or a shorter one) ends or shortens
/// the one before.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    by_gateway: BTreeMap<String, Silence>,
}

impl Maintenance {
    /// A `maintenance` request of `gateway`, received at `received`: a
    /// silence of the gateway from then for as long as it asked (`until`
    /// less `sent`, both the gateway's clock, so that a gateway whose clock
    /// is off still gets the time it asked for). An `until` at or before
    /// `sent` ends its silence.
    pub fn request(&mut self, gateway: &str, received: u64, sent: u64, until: u64, reason: &str) {
        let Some(length) = until.checked_sub(sent).filter(|&l| l > 0) else {
            self.by_gateway.remove(gateway);
            return;
        };
        let silence = Silence {
            gateway: Some(gateway.to_string()),
            roc: None,
            from: received,
            until: received.saturating_add(length),
            reason: reason.to_string(),
            from_gateway: true,
        };
        self.by_gateway.insert(gateway.to_string(), silence);
    }

    /// The silences asked for, by gateway name (ended ones included: they
    /// are simply not active).
    pub fn silences(&self) -> impl Iterator<Item = &Silence> {
        self.by_gateway.values()
    }
}

impl Silence {
    /// Whether it is in force at `now`.
    pub fn active(&self, now: u64) -> bool {
        self.from <= now && now < self.until
    }

    /// Whether an alert on `gateway` concerning the ROCs `rocs` is in its
    /// scope. A gateway's own alert (late, down) concerns every ROC with a
    /// tunnel there; a silence of one ROC covers it only when that ROC is
    /// the only one concerned.
    pub(crate) fn covers(&self, gateway: &str, rocs: &[&str]) -> bool {
        let gateway_ok = self.gateway.as_deref().is_none_or(|g| g == gateway);
        let roc_ok = self
            .roc
            .as_deref()
            .is_none_or(|r| !rocs.is_empty() && rocs.iter().all(|x| *x == r));
        gateway_ok && roc_ok
    }
}

/// The silences among `all` that cover an alert at `now`.
pub fn covering<'a>(
    all: &'a [Silence],
    gateway: &str,
    rocs: &[&str],
    now: u64,
) -> impl Iterator<Item = &'a Silence> {
    all.iter()
        .filter(move |s| s.active(now) && s.covers(gateway, rocs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(gateway: Option<&str>, roc: Option<&str>) -> Silence {
        Silence {
            gateway: gateway.map(str::to_string),
            roc: roc.map(str::to_string),
            from: 100,
            until: 200,
            reason: "kernel update".into(),
            from_gateway: false,
        }
    }

    #[test]
    fn time_and_scope() {
        let gw = silence(Some("far"), None);
        assert!(!gw.active(99) && gw.active(100) && gw.active(199) && !gw.active(200));
        assert!(gw.covers("far", &[]) && gw.covers("far", &["Caltech"]));
        assert!(!gw.covers("near", &["Caltech"]));
        let roc = silence(None, Some("Caltech"));
        assert!(roc.covers("far", &["Caltech"]) && roc.covers("near", &["Caltech"]));
        assert!(!roc.covers("far", &["Fermilab"]));
        assert!(
            !roc.covers("far", &["Caltech", "Fermilab"]),
            "others still rely on it"
        );
        assert!(!roc.covers("far", &[]));
        let both = silence(Some("far"), Some("Caltech"));
        assert!(both.covers("far", &["Caltech"]) && !both.covers("near", &["Caltech"]));
        let all = [gw, roc];
        assert_eq!(covering(&all, "far", &["Caltech"], 150).count(), 2);
        assert_eq!(covering(&all, "far", &["Caltech"], 250).count(), 0);
    }

    #[test]
    fn a_gateways_latest_request_wins() {
        let mut m = Maintenance::default();
        // Two hours asked at the gateway's 1000, received at 1010 (its
        // clock 10 s behind): silenced 1010 to 8210 by the collector's.
        m.request("far", 1010, 1000, 8200, "kernel update");
        let s: Vec<_> = m.silences().cloned().collect();
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].from, s[0].until, s[0].from_gateway),
            (1010, 8210, true)
        );
        assert!(s[0].covers("far", &["Caltech"]) && !s[0].covers("near", &[]));
        m.request("near", 1020, 1020, 1080, "reboot");
        // `--maintenance 0`: until at the send time ends it.
        m.request("far", 2000, 1990, 1990, "");
        let names: Vec<_> = m.silences().filter_map(|s| s.gateway.clone()).collect();
        assert_eq!(names, ["near"]);
        // An until before the send time (a clock far off) ends it too.
        m.request("near", 1030, 1030, 5, "");
        assert_eq!(m.silences().count(), 0);
    }
}
