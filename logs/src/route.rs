//! Where alerts go: notify routes, each a command and optional filters.
//!
//! An alert goes to every route whose filters all match: `events` (the
//! alert's event is one of them), `roc` (the alert concerns that control
//! room: an expected tunnel of it, or a gateway that carries one of its
//! expected tunnels), `gateway` (the alert's gateway). A route without
//! filters takes every alert; `--notify CMD` and the config file's
//! `notify = "CMD"` are such a route.

/// Every event an alert can carry, as in `ROCTM_EVENT`.
pub(crate) const EVENTS: [&str; 9] = [
    "gateway_late",
    "gateway_down",
    "gateway_up",
    "tunnel_up",
    "tunnel_down",
    "tunnel_missing",
    "tunnel_broken",
    "tunnel_restored",
    "tunnel_flapping",
];

/// One notify route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Run with `sh -c`, the alert in its environment.
    pub command: String,
    /// Only these events; empty: all.
    pub events: Vec<String>,
    /// Only alerts that concern this ROC.
    pub roc: Option<String>,
    /// Only alerts of this gateway.
    pub gateway: Option<String>,
}

impl Route {
    /// A route without filters.
    pub fn all(command: String) -> Route {
        Route {
            command,
            events: Vec::new(),
            roc: None,
            gateway: None,
        }
    }

    /// Whether an alert of `event` on `gateway`, concerning the ROCs
    /// `rocs`, goes to this route.
    pub fn matches(&self, event: &str, gateway: &str, rocs: &[&str]) -> bool {
        (self.events.is_empty() || self.events.iter().any(|e| e == event))
            && self.gateway.as_deref().is_none_or(|g| g == gateway)
            && self.roc.as_deref().is_none_or(|r| rocs.contains(&r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_must_match() {
        let any = Route::all("cmd".into());
        assert!(any.matches("gateway_down", "gw", &[]));
        let caltech_missing = Route {
            events: vec!["tunnel_missing".into(), "tunnel_restored".into()],
            roc: Some("Caltech".into()),
            ..Route::all("cmd".into())
        };
        assert!(caltech_missing.matches("tunnel_missing", "gw", &["Caltech"]));
        assert!(caltech_missing.matches("tunnel_restored", "gw", &["Fermilab", "Caltech"]));
        assert!(!caltech_missing.matches("tunnel_broken", "gw", &["Caltech"]));
        assert!(!caltech_missing.matches("tunnel_missing", "gw", &["Fermilab"]));
        assert!(!caltech_missing.matches("tunnel_missing", "gw", &[]));
        let far = Route {
            gateway: Some("far".into()),
            ..Route::all("cmd".into())
        };
        assert!(far.matches("gateway_late", "far", &[]));
        assert!(!far.matches("gateway_late", "near", &[]));
    }
}
