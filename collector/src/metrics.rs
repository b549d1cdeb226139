//! Counters shared by ingest, HTTP and the command runners, and their
//! rendering in the Prometheus text format for `/metrics`.
//!
//! Counters are plain atomics so that nothing waits on a lock to count. Every
//! label value a counter can take is written from the start (at 0), so a rate
//! over a rare outcome works from the first scrape. Per-gateway series come
//! from the published [`Snapshot`](crate::http::Snapshot): last-seen
//! timestamp, state (one series per state, 1 for the current one) and tunnel
//! count. The output is checked by `promtool check metrics` in the tests.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use logs::GatewayState;
use logs::inventory::{Inventory, TunnelState};
use logs::silence::Silence;

/// What became of a datagram. `replay` covers both duplicates (acked again,
/// not written) and refused replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted,
    Replay,
    Stale,
    BadSignature,
    Malformed,
    Oversized,
    UnknownVersion,
    UnknownPart,
    GatewayLimit,
    WriteError,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 10] = [
        Outcome::Accepted,
        Outcome::Replay,
        Outcome::Stale,
        Outcome::BadSignature,
        Outcome::Malformed,
        Outcome::Oversized,
        Outcome::UnknownVersion,
        Outcome::UnknownPart,
        Outcome::GatewayLimit,
        Outcome::WriteError,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Replay => "replay",
            Outcome::Stale => "stale",
            Outcome::BadSignature => "bad_signature",
            Outcome::Malformed => "malformed",
            Outcome::Oversized => "oversized",
            Outcome::UnknownVersion => "unknown_version",
            Outcome::UnknownPart => "unknown_part",
            Outcome::GatewayLimit => "gateway_limit",
            Outcome::WriteError => "write_error",
        }
    }

    pub(crate) fn from_reject(r: gateway_client::wire::Reject) -> Outcome {
        use gateway_client::wire::Reject;
        match r {
            Reject::Oversized => Outcome::Oversized,
            Reject::Malformed => Outcome::Malformed,
            Reject::UnknownVersion => Outcome::UnknownVersion,
            Reject::BadSignature => Outcome::BadSignature,
            Reject::UnknownPart => Outcome::UnknownPart,
        }
    }

    fn index(self) -> usize {
        Outcome::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// All counters and gauges that are not per gateway.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    datagrams: [AtomicU64; Outcome::ALL.len()],
    pub acks_ok: AtomicU64,
    pub acks_duplicate: AtomicU64,
    pub ack_send_errors: AtomicU64,
    pub event_rows: AtomicU64,
    pub tunnel_rows: AtomicU64,
    pub reports_completed: AtomicU64,
    pub log_lines_suppressed: AtomicU64,
    pub on_collect_ok: AtomicU64,
    pub on_collect_failed: AtomicU64,
    pub notify_ok: AtomicU64,
    pub notify_failed: AtomicU64,
    pub notify_dropped: AtomicU64,
    pub http_requests: AtomicU64,
    pub http_refused: AtomicU64,
    pub reassembly_pending: AtomicU64,
    pub replay_entries: AtomicU64,
    pub start_time: AtomicU64,
    pub udp_receive_buffer: AtomicU64,
    pub log_files_reopened: AtomicU64,
    pub log_files_set_aside: AtomicU64,
    pub reports_out_of_order: AtomicU64,
    pub tunnels_capped: AtomicU64,
    pub reports_evicted: AtomicU64,
    pub reports_expired: AtomicU64,
    pub config_reload_errors: AtomicU64,
    pub alerts_silenced: AtomicU64,
    /// Per notify route: its label and its failed runs.
    routes: std::sync::Mutex<Vec<(String, Arc<AtomicU64>)>>,
}

impl Metrics {
    /// A notify route's failure counter, shown with `label`.
    pub(crate) fn add_route(&self, label: String) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        if let Ok(mut r) = self.routes.lock() {
            r.push((label, counter.clone()));
        }
        counter
    }

    pub(crate) fn count(&self, outcome: Outcome) {
        self.datagrams[outcome.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn datagrams(&self, outcome: Outcome) -> u64 {
        self.datagrams[outcome.index()].load(Relaxed)
    }
}

/// One gateway's series.
#[derive(Clone, Debug)]
pub(crate) struct GatewaySeries {
    pub name: String,
    pub last_seen: u64,
    pub state: GatewayState,
    pub tunnels: usize,
    /// Its thresholds (`logs::Staleness`), seconds.
    pub late: u64,
    pub down: u64,
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// How one sample's value is read from the counters.
type Read = fn(&Metrics) -> u64;

/// Where a family's samples come from.
enum Samples {
    /// One sample without labels.
    One(Read),
    /// One sample per value of the label.
    By(&'static str, &'static [(&'static str, Read)]),
    /// One sample per datagram [`Outcome`], label `outcome`.
    Outcomes,
    /// The build's version as a label, value 1.
    BuildInfo,
    /// One sample per gateway, label `gateway`.
    Gateway(fn(&GatewaySeries) -> u64),
    /// One sample per gateway and [`GatewayState`], 1 for its state.
    GatewayStates,
    /// One sample per expected tunnel, 1 when it is up.
    ExpectedUp,
    /// One sample per notify route, label `route`.
    Routes,
    /// One sample per active silence, labels `gateway` and `roc` (empty
    /// when not part of its scope), value its end.
    Silenced,
}

/// One metric family of `/metrics`: declared once, here.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Samples,
}

const fn family(
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Samples,
) -> Family {
    Family {
        name,
        kind,
        help,
        samples,
    }
}

/// Every family, in the order of the page.
const FAMILIES: &[Family] = &[
    family(
        "roctm_collector_build_info",
        "gauge",
        "Always 1; the version label says which collector runs.",
        Samples::BuildInfo,
    ),
    family(
        "roctm_collector_start_time_seconds",
        "gauge",
        "When this collector started, Unix seconds.",
        Samples::One(|m| m.start_time.load(Relaxed)),
    ),
    family(
        "roctm_collector_datagrams_total",
        "counter",
        "Datagrams received, by what became of them.",
        Samples::Outcomes,
    ),
    family(
        "roctm_collector_acks_total",
        "counter",
        "Acks sent, by status.",
        Samples::By(
            "status",
            &[
                ("ok", |m| m.acks_ok.load(Relaxed)),
                ("duplicate", |m| m.acks_duplicate.load(Relaxed)),
            ],
        ),
    ),
    family(
        "roctm_collector_ack_send_errors_total",
        "counter",
        "Acks that could not be sent.",
        Samples::One(|m| m.ack_send_errors.load(Relaxed)),
    ),
    family(
        "roctm_collector_rows_written_total",
        "counter",
        "CSV rows written and synced, by file kind.",
        Samples::By(
            "file",
            &[
                ("events", |m| m.event_rows.load(Relaxed)),
                ("tunnels", |m| m.tunnel_rows.load(Relaxed)),
            ],
        ),
    ),
    family(
        "roctm_collector_reports_completed_total",
        "counter",
        "Reports with all their parts received.",
        Samples::One(|m| m.reports_completed.load(Relaxed)),
    ),
    family(
        "roctm_collector_log_lines_suppressed_total",
        "counter",
        "Rejection log lines left out by the rate limit.",
        Samples::One(|m| m.log_lines_suppressed.load(Relaxed)),
    ),
    family(
        "roctm_collector_on_collect_runs_total",
        "counter",
        "Runs of the --on-collect command, by result.",
        Samples::By(
            "result",
            &[
                ("ok", |m| m.on_collect_ok.load(Relaxed)),
                ("failed", |m| m.on_collect_failed.load(Relaxed)),
            ],
        ),
    ),
    family(
        "roctm_collector_notify_runs_total",
        "counter",
        "Alerts for the --notify command, by result.",
        Samples::By(
            "result",
            &[
                ("ok", |m| m.notify_ok.load(Relaxed)),
                ("failed", |m| m.notify_failed.load(Relaxed)),
                ("dropped", |m| m.notify_dropped.load(Relaxed)),
            ],
        ),
    ),
    family(
        "roctm_collector_notify_route_failures_total",
        "counter",
        "Failed runs of each notify route's command (route: 1, 2, ... in the config file's order, or flag for --notify).",
        Samples::Routes,
    ),
    family(
        "roctm_collector_http_requests_total",
        "counter",
        "HTTP requests answered by the routes.",
        Samples::One(|m| m.http_requests.load(Relaxed)),
    ),
    family(
        "roctm_collector_http_refused_total",
        "counter",
        "HTTP connections refused before routing (too many, too slow, too large, bad method).",
        Samples::One(|m| m.http_refused.load(Relaxed)),
    ),
    family(
        "roctm_collector_log_files_reopened_total",
        "counter",
        "Log files found deleted or replaced under the collector, and opened again by name before an ack.",
        Samples::One(|m| m.log_files_reopened.load(Relaxed)),
    ),
    family(
        "roctm_collector_log_files_set_aside_total",
        "counter",
        "Log files with a header the collector would not write, renamed aside instead of appended to.",
        Samples::One(|m| m.log_files_set_aside.load(Relaxed)),
    ),
    family(
        "roctm_collector_reports_out_of_order_total",
        "counter",
        "Complete reports with a lower seq than the gateway's report before (its clock stepped back); they are taken.",
        Samples::One(|m| m.reports_out_of_order.load(Relaxed)),
    ),
    family(
        "roctm_collector_tunnels_capped_total",
        "counter",
        "Reports with more tunnels than the collector keeps per gateway; the rest were left out of the state.",
        Samples::One(|m| m.tunnels_capped.load(Relaxed)),
    ),
    family(
        "roctm_collector_reports_dropped_total",
        "counter",
        "Incomplete split reports given up, their parts acked and written, by why.",
        Samples::By(
            "reason",
            &[
                ("evicted", |m| m.reports_evicted.load(Relaxed)),
                ("expired", |m| m.reports_expired.load(Relaxed)),
            ],
        ),
    ),
    family(
        "roctm_collector_reassembly_pending",
        "gauge",
        "Split reports waiting for more parts.",
        Samples::One(|m| m.reassembly_pending.load(Relaxed)),
    ),
    family(
        "roctm_collector_replay_entries",
        "gauge",
        "Accepted parts remembered to recognise duplicates.",
        Samples::One(|m| m.replay_entries.load(Relaxed)),
    ),
    family(
        "roctm_collector_udp_receive_buffer_bytes",
        "gauge",
        "The UDP socket's receive buffer as the kernel granted it (capped by net.core.rmem_max).",
        Samples::One(|m| m.udp_receive_buffer.load(Relaxed)),
    ),
    family(
        "roctm_collector_config_reload_errors_total",
        "counter",
        "Edits of the config file refused (the previous config stays in force).",
        Samples::One(|m| m.config_reload_errors.load(Relaxed)),
    ),
    family(
        "roctm_gateway_last_seen_timestamp_seconds",
        "gauge",
        "When the gateway was last heard from, Unix seconds.",
        Samples::Gateway(|g| g.last_seen),
    ),
    family(
        "roctm_gateway_state",
        "gauge",
        "1 for the gateway's current state (up, late or down), 0 for the others.",
        Samples::GatewayStates,
    ),
    family(
        "roctm_gateway_late_after_seconds",
        "gauge",
        "Seconds of silence after which the gateway is late: 2.5 periods when it declares one, else the global late, unless a [[gateway]] of the config sets it.",
        Samples::Gateway(|g| g.late),
    ),
    family(
        "roctm_gateway_down_after_seconds",
        "gauge",
        "Seconds of silence after which the gateway is down: 10 periods when it declares one, else the global down, unless a [[gateway]] of the config sets it.",
        Samples::Gateway(|g| g.down),
    ),
    family(
        "roctm_gateway_tunnels",
        "gauge",
        "Tunnels in the gateway's last complete report.",
        Samples::Gateway(|g| g.tunnels as u64),
    ),
    family(
        "roctm_collector_alerts_silenced_total",
        "counter",
        "Alerts held back by a silence.",
        Samples::One(|m| m.alerts_silenced.load(Relaxed)),
    ),
    family(
        "roctm_silenced",
        "gauge",
        "One series per active silence (config [[silence]], or a gateway's gateway-client --maintenance), by scope; the value is when it ends, Unix seconds.",
        Samples::Silenced,
    ),
    family(
        "roctm_expected_tunnel_up",
        "gauge",
        "1 when the expected tunnel (config [[tunnel]]) is up; 0 when it is missing, broken, on a wrong target, or unknown (its gateway late, down or not heard since the collector started: see roctm_gateway_state).",
        Samples::ExpectedUp,
    ),
];

/// The whole `/metrics` page.
pub(crate) fn render(
    m: &Metrics,
    gateways: &[GatewaySeries],
    inventory: &Inventory,
    silenced: &[&Silence],
) -> String {
    let mut out = String::with_capacity(4096);
    for f in FAMILIES {
        let name = f.name;
        let _ = writeln!(out, "# HELP {name} {}", f.help);
        let _ = writeln!(out, "# TYPE {name} {}", f.kind);
        match &f.samples {
            Samples::One(value) => {
                let _ = writeln!(out, "{name} {}", value(m));
            }
            Samples::By(key, values) => {
                for (v, value) in *values {
                    let _ = writeln!(out, "{name}{{{key}=\"{v}\"}} {}", value(m));
                }
            }
            Samples::Outcomes => {
                for o in Outcome::ALL {
                    let _ = writeln!(
                        out,
                        "{name}{{outcome=\"{}\"}} {}",
                        o.as_str(),
                        m.datagrams(o)
                    );
                }
            }
            Samples::BuildInfo => {
                let _ = writeln!(out, "{name}{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
            }
            Samples::Gateway(value) => {
                for g in gateways {
                    let _ = writeln!(out, "{name}{{gateway=\"{}\"}} {}", label(&g.name), value(g));
                }
            }
            Samples::Silenced => {
                for s in silenced {
                    let _ = writeln!(
                        out,
                        "{name}{{gateway=\"{}\",roc=\"{}\"}} {}",
                        label(s.gateway.as_deref().unwrap_or("")),
                        label(s.roc.as_deref().unwrap_or("")),
                        s.until
                    );
                }
            }
            Samples::Routes => {
                if let Ok(routes) = m.routes.lock() {
                    for (r, n) in routes.iter() {
                        let _ =
                            writeln!(out, "{name}{{route=\"{}\"}} {}", label(r), n.load(Relaxed));
                    }
                }
            }
            Samples::ExpectedUp => {
                for (e, j) in inventory.iter() {
                    let _ = writeln!(
                        out,
                        "{name}{{gateway=\"{}\",listen=\"{}\",roc=\"{}\"}} {}",
                        label(&e.gateway),
                        e.listen,
                        label(&e.roc),
                        u8::from(j.state == TunnelState::Up)
                    );
                }
            }
            Samples::GatewayStates => {
                for g in gateways {
                    for s in GatewayState::ALL {
                        let _ = writeln!(
                            out,
                            "{name}{{gateway=\"{}\",state=\"{}\"}} {}",
                            label(&g.name),
                            s.as_str(),
                            u8::from(s == g.state)
                        );
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_outcome_and_escapes_labels() {
        let m = Metrics::default();
        m.count(Outcome::BadSignature);
        let text = render(
            &m,
            &[GatewaySeries {
                name: "we\"ird\\gw".into(),
                last_seen: 1_700_000_000,
                state: GatewayState::Late,
                tunnels: 3,
                late: 75,
                down: 300,
            }],
            &Inventory::default(),
            &[],
        );
        assert!(text.contains("roctm_collector_datagrams_total{outcome=\"bad_signature\"} 1\n"));
        assert!(text.contains("roctm_collector_datagrams_total{outcome=\"unknown_part\"} 0\n"));
        assert!(
            text.contains("roctm_gateway_state{gateway=\"we\\\"ird\\\\gw\",state=\"late\"} 1\n")
        );
        assert!(text.contains("roctm_gateway_tunnels{gateway=\"we\\\"ird\\\\gw\"} 3\n"));
        assert!(
            text.contains("roctm_gateway_late_after_seconds{gateway=\"we\\\"ird\\\\gw\"} 75\n")
        );
        assert!(
            text.contains("roctm_gateway_down_after_seconds{gateway=\"we\\\"ird\\\\gw\"} 300\n")
        );
    }
}
