//! Silences: planned work must not page anyone.
//!
//! A silence has a scope (a gateway, a ROC, or both: then only that ROC's
//! tunnels on that gateway), a time (`from` until `until`, Unix seconds,
//! `until` excluded) and a reason. While it is active, alerts in its scope
//! are not sent; when it ends and the problem is still there, the alert is
//! sent then (the collector keeps what it held back).
//!
//! Silences come from the config file (`[[silence]]`).

/// One silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    pub gateway: Option<String>,
    pub roc: Option<String>,
    pub from: u64,
    pub until: u64,
    pub reason: String,
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
}
