//! Alerts: runs `--notify CMD` once per [`Alert`], off the ingest path.
//!
//! Ingest hands alerts to a bounded queue and never waits: when the queue is
//! full (a hanging command while many alerts come) the alert is dropped and
//! counted. One thread runs the command for each alert in turn, with the
//! event in its environment, and kills it after [`LIMIT`]:
//!
//! - `ROCTM_EVENT`: `gateway_late`, `gateway_down`, `gateway_up`,
//!   `tunnel_up` or `tunnel_down`; for the tunnels of the inventory
//!   (`[[tunnel]]` in the config file) `tunnel_missing`, `tunnel_broken`
//!   or `tunnel_restored`; `tunnel_flapping` for a tunnel that changed
//!   too often (tunnel alerts are damped first: `logs::damping`)
//! - `ROCTM_GATEWAY`: the gateway's name
//! - `ROCTM_TIME`: when, RFC 3339 (UTC); `ROCTM_UNIX_TIME`: the same in seconds
//! - `ROCTM_AGE_SECONDS`: how long the gateway had been silent
//! - for tunnel events, `ROCTM_TUNNEL` (one line describing the forward),
//!   `ROCTM_TUNNEL_USER`, `ROCTM_TUNNEL_LISTEN_PORT`,
//!   `ROCTM_TUNNEL_TARGET` (`host:port`), `ROCTM_TUNNEL_PID`, and who was
//!   on it at its last report: `ROCTM_CONNECTIONS` (a number, empty when
//!   unknown) and `ROCTM_CONNECTED` (accounts and addresses, space-separated)
//! - for the inventory's events, the expected tunnel: `ROCTM_ROC`,
//!   `ROCTM_STATION`, `ROCTM_OWNER` (empty when not set), `ROCTM_LISTEN`,
//!   `ROCTM_TARGET` (`host:port`), `ROCTM_STATE` (`missing`, `broken`,
//!   `wrong_target` or `up`), `ROCTM_SINCE` (Unix seconds)
//! - `ROCTM_PAGE_URL`: the config file's `page_url`, when it sets one

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use gateway_client::tunnel::Tunnel;
use logs::route::Route;

use crate::command;
use crate::metrics::Metrics;
use crate::say::say;
use crate::state::Alert;

/// A notify command is killed after this long.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);
/// Alerts waiting for the command, at most.
pub(crate) const QUEUE: usize = 256;

/// `novacr01: L 127.0.0.1:5901 -> novadaq-far-master-02:5951 via novadaq-far-gateway-01 (pid 4242)`
pub(crate) fn describe(t: &Tunnel) -> String {
    let bind = if t.bind.is_empty() {
        String::new()
    } else {
        format!("{}:", t.bind)
    };
    let target = if t.target_host.is_empty() {
        String::new()
    } else {
        format!(" -> {}:{}", t.target_host, t.target_port)
    };
    format!(
        "{}: {} {bind}{}{target} via {} (pid {})",
        t.user,
        t.kind.letter(),
        t.listen_port,
        t.dest,
        t.pid
    )
}

/// The environment for one alert.
pub(crate) fn environment(a: &Alert, page_url: Option<&str>) -> Vec<(&'static str, String)> {
    let time = i64::try_from(a.time)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut env = vec![
        ("ROCTM_EVENT", a.kind.as_str().to_string()),
        ("ROCTM_GATEWAY", a.gateway.clone()),
        ("ROCTM_TIME", time),
        ("ROCTM_UNIX_TIME", a.time.to_string()),
        ("ROCTM_AGE_SECONDS", a.age.to_string()),
    ];
    if let Some(t) = &a.tunnel {
        env.push(("ROCTM_TUNNEL", describe(t)));
        env.push(("ROCTM_TUNNEL_USER", t.user.clone()));
        env.push(("ROCTM_TUNNEL_LISTEN_PORT", t.listen_port.to_string()));
        env.push((
            "ROCTM_TUNNEL_TARGET",
            format!("{}:{}", t.target_host, t.target_port),
        ));
        env.push(("ROCTM_TUNNEL_PID", t.pid.to_string()));
        // Who was on it at its last report (empty when unknown: an older
        // client, an R forward).
        env.push((
            "ROCTM_CONNECTIONS",
            t.connections.map(|n| n.to_string()).unwrap_or_default(),
        ));
        env.push(("ROCTM_CONNECTED", t.connected.join(" ")));
    }
    if let Some(x) = &a.expected {
        let e = &x.entry;
        env.push(("ROCTM_ROC", e.roc.clone()));
        env.push(("ROCTM_STATION", e.station.clone().unwrap_or_default()));
        env.push(("ROCTM_OWNER", e.owner.clone().unwrap_or_default()));
        env.push(("ROCTM_LISTEN", e.listen.to_string()));
        env.push(("ROCTM_TARGET", e.target()));
        env.push(("ROCTM_STATE", x.state.as_str().to_string()));
        env.push(("ROCTM_SINCE", x.since.to_string()));
    }
    if let Some(url) = page_url {
        env.push(("ROCTM_PAGE_URL", url.to_string()));
    }
    env
}

/// The sending end of one route, held by ingest.
pub(crate) struct Notifier {
    route: Route,
    tx: SyncSender<Alert>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Starts the thread that runs the route's command; `label` names the
    /// route in `/metrics` (`roctm_collector_notify_route_failures_total`).
    pub(crate) fn start(
        label: String,
        route: Route,
        page_url: Option<String>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Notifier> {
        let (tx, rx) = sync_channel(QUEUE);
        let m = metrics.clone();
        let failures = metrics.add_route(label);
        let cmd = route.command.clone();
        std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || worker(&cmd, page_url.as_deref(), &rx, &m, &failures))?;
        Ok(Notifier { route, tx, metrics })
    }

    /// Queues the alert if the route takes it (its filters, with the ROCs
    /// the alert concerns).
    pub(crate) fn offer(&self, alert: &Alert, rocs: &[&str]) {
        if self
            .route
            .matches(alert.kind.as_str(), &alert.gateway, rocs)
        {
            self.send(alert.clone());
        }
    }

    /// Queues an alert; never blocks.
    fn send(&self, alert: Alert) {
        match self.tx.try_send(alert) {
            Ok(()) => {}
            Err(TrySendError::Full(a)) => {
                let n = self.metrics.notify_dropped.fetch_add(1, Relaxed);
                if n.is_power_of_two() {
                    say!(
                        "--notify is behind, dropped the {} alert for {} ({} dropped so far)",
                        a.kind.as_str(),
                        a.gateway,
                        n + 1
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.notify_dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

fn worker(
    cmd: &str,
    page_url: Option<&str>,
    rx: &Receiver<Alert>,
    metrics: &Metrics,
    failures: &AtomicU64,
) {
    while let Ok(alert) = rx.recv() {
        match command::run(cmd, &environment(&alert, page_url), LIMIT) {
            Ok(()) => {
                metrics.notify_ok.fetch_add(1, Relaxed);
            }
            Err(why) => {
                metrics.notify_failed.fetch_add(1, Relaxed);
                failures.fetch_add(1, Relaxed);
                say!(
                    "--notify for {} of {} failed: {why}",
                    alert.kind.as_str(),
                    alert.gateway
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::AlertKind;

    #[test]
    fn tunnel_alerts_carry_the_tunnel() {
        let a = Alert {
            kind: AlertKind::TunnelDown,
            gateway: "novadaq-far-gateway-01".into(),
            tunnel: Some(Tunnel {
                pid: 4242,
                user: "novacr01".into(),
                listen_port: 5901,
                target_host: "novadaq-far-master-02".into(),
                target_port: 5951,
                dest: "novadaq-far-gateway-01".into(),
                connections: Some(2),
                connected: vec!["novaroc1".into(), "192.0.2.15".into()],
                ..Tunnel::default()
            }),
            time: 1_763_856_000,
            age: 0,
            expected: None,
        };
        let env = environment(&a, None);
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ROCTM_EVENT"), Some("tunnel_down"));
        assert_eq!(get("ROCTM_TIME"), Some("2025-11-23T00:00:00Z"));
        assert_eq!(
            get("ROCTM_TUNNEL"),
            Some(
                "novacr01: L 5901 -> novadaq-far-master-02:5951 via novadaq-far-gateway-01 (pid 4242)"
            )
        );
        assert_eq!(get("ROCTM_ROC"), None);
        assert_eq!(get("ROCTM_CONNECTIONS"), Some("2"));
        assert_eq!(get("ROCTM_CONNECTED"), Some("novaroc1 192.0.2.15"));
    }

    #[test]
    fn inventory_alerts_carry_the_expected_tunnel_and_the_page() {
        use logs::inventory::{Expected, TunnelState};
        let a = Alert {
            kind: AlertKind::TunnelMissing,
            gateway: "novadaq-far-gateway-01".into(),
            tunnel: None,
            time: 1_763_856_000,
            age: 3,
            expected: Some(crate::state::ExpectedAlert {
                entry: Expected {
                    gateway: "novadaq-far-gateway-01".into(),
                    listen: 5901,
                    target_host: "novadaq-far-master-02".into(),
                    target_port: 5951,
                    roc: "Caltech".into(),
                    station: Some("far-master-02 :51".into()),
                    owner: None,
                },
                state: TunnelState::Missing,
                before: Some(TunnelState::Up),
                since: 1_763_855_940,
            }),
        };
        let env = environment(&a, Some("https://monitor.example.org/"));
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ROCTM_EVENT"), Some("tunnel_missing"));
        assert_eq!(get("ROCTM_ROC"), Some("Caltech"));
        assert_eq!(get("ROCTM_STATION"), Some("far-master-02 :51"));
        assert_eq!(get("ROCTM_OWNER"), Some(""));
        assert_eq!(get("ROCTM_LISTEN"), Some("5901"));
        assert_eq!(get("ROCTM_TARGET"), Some("novadaq-far-master-02:5951"));
        assert_eq!(get("ROCTM_STATE"), Some("missing"));
        assert_eq!(get("ROCTM_SINCE"), Some("1763855940"));
        assert_eq!(get("ROCTM_PAGE_URL"), Some("https://monitor.example.org/"));
    }
}
