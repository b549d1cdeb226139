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
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use logs::GatewayState;

/// What became of a datagram. `replay` covers both duplicates (acked again,
/// not written) and refused replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
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
    pub const ALL: [Outcome; 10] = [
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

    pub fn as_str(self) -> &'static str {
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

    pub fn from_reject(r: gateway_client::wire::Reject) -> Outcome {
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
pub struct Metrics {
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
}

impl Metrics {
    pub fn count(&self, outcome: Outcome) {
        self.datagrams[outcome.index()].fetch_add(1, Relaxed);
    }

    pub fn datagrams(&self, outcome: Outcome) -> u64 {
        self.datagrams[outcome.index()].load(Relaxed)
    }
}

/// One gateway's series.
#[derive(Clone, Debug)]
pub struct GatewaySeries {
    pub name: String,
    pub last_seen: u64,
    pub state: GatewayState,
    pub tunnels: usize,
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

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labelled(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    key: &str,
    values: &[(&str, u64)],
) {
    head(out, name, kind, help);
    for (v, n) in values {
        let _ = writeln!(out, "{name}{{{key}=\"{v}\"}} {n}");
    }
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    head(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// The whole `/metrics` page.
pub fn render(m: &Metrics, gateways: &[GatewaySeries]) -> String {
    let mut out = String::with_capacity(4096);
    let get = |a: &AtomicU64| a.load(Relaxed);
    head(
        &mut out,
        "roctm_collector_build_info",
        "gauge",
        "Always 1; the version label says which collector runs.",
    );
    let _ = writeln!(
        out,
        "roctm_collector_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    single(
        &mut out,
        "roctm_collector_start_time_seconds",
        "gauge",
        "When this collector started, Unix seconds.",
        get(&m.start_time),
    );
    let outcomes: Vec<(&str, u64)> = Outcome::ALL
        .iter()
        .map(|o| (o.as_str(), m.datagrams(*o)))
        .collect();
    labelled(
        &mut out,
        "roctm_collector_datagrams_total",
        "counter",
        "Datagrams received, by what became of them.",
        "outcome",
        &outcomes,
    );
    labelled(
        &mut out,
        "roctm_collector_acks_total",
        "counter",
        "Acks sent, by status.",
        "status",
        &[
            ("ok", get(&m.acks_ok)),
            ("duplicate", get(&m.acks_duplicate)),
        ],
    );
    single(
        &mut out,
        "roctm_collector_ack_send_errors_total",
        "counter",
        "Acks that could not be sent.",
        get(&m.ack_send_errors),
    );
    labelled(
        &mut out,
        "roctm_collector_rows_written_total",
        "counter",
        "CSV rows written and synced, by file kind.",
        "file",
        &[
            ("events", get(&m.event_rows)),
            ("tunnels", get(&m.tunnel_rows)),
        ],
    );
    single(
        &mut out,
        "roctm_collector_reports_completed_total",
        "counter",
        "Reports with all their parts received.",
        get(&m.reports_completed),
    );
    single(
        &mut out,
        "roctm_collector_log_lines_suppressed_total",
        "counter",
        "Rejection log lines left out by the rate limit.",
        get(&m.log_lines_suppressed),
    );
    labelled(
        &mut out,
        "roctm_collector_on_collect_runs_total",
        "counter",
        "Runs of the --on-collect command, by result.",
        "result",
        &[
            ("ok", get(&m.on_collect_ok)),
            ("failed", get(&m.on_collect_failed)),
        ],
    );
    labelled(
        &mut out,
        "roctm_collector_notify_runs_total",
        "counter",
        "Alerts for the --notify command, by result.",
        "result",
        &[
            ("ok", get(&m.notify_ok)),
            ("failed", get(&m.notify_failed)),
            ("dropped", get(&m.notify_dropped)),
        ],
    );
    single(
        &mut out,
        "roctm_collector_http_requests_total",
        "counter",
        "HTTP requests answered by the routes.",
        get(&m.http_requests),
    );
    single(
        &mut out,
        "roctm_collector_http_refused_total",
        "counter",
        "HTTP connections refused before routing (too many, too slow, too large, bad method).",
        get(&m.http_refused),
    );
    single(
        &mut out,
        "roctm_collector_reassembly_pending",
        "gauge",
        "Split reports waiting for more parts.",
        get(&m.reassembly_pending),
    );
    single(
        &mut out,
        "roctm_collector_replay_entries",
        "gauge",
        "Accepted parts remembered to recognise duplicates.",
        get(&m.replay_entries),
    );
    single(
        &mut out,
        "roctm_collector_udp_receive_buffer_bytes",
        "gauge",
        "The UDP socket's receive buffer as the kernel granted it (capped by net.core.rmem_max).",
        get(&m.udp_receive_buffer),
    );
    head(
        &mut out,
        "roctm_gateway_last_seen_timestamp_seconds",
        "gauge",
        "When the gateway was last heard from, Unix seconds.",
    );
    for g in gateways {
        let _ = writeln!(
            out,
            "roctm_gateway_last_seen_timestamp_seconds{{gateway=\"{}\"}} {}",
            label(&g.name),
            g.last_seen
        );
    }
    head(
        &mut out,
        "roctm_gateway_state",
        "gauge",
        "1 for the gateway's current state (up, late or down), 0 for the others.",
    );
    for g in gateways {
        for s in GatewayState::ALL {
            let _ = writeln!(
                out,
                "roctm_gateway_state{{gateway=\"{}\",state=\"{}\"}} {}",
                label(&g.name),
                s.as_str(),
                u8::from(s == g.state)
            );
        }
    }
    head(
        &mut out,
        "roctm_gateway_tunnels",
        "gauge",
        "Tunnels in the gateway's last complete report.",
    );
    for g in gateways {
        let _ = writeln!(
            out,
            "roctm_gateway_tunnels{{gateway=\"{}\"}} {}",
            label(&g.name),
            g.tunnels
        );
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
            }],
        );
        assert!(text.contains("roctm_collector_datagrams_total{outcome=\"bad_signature\"} 1\n"));
        assert!(text.contains("roctm_collector_datagrams_total{outcome=\"unknown_part\"} 0\n"));
        assert!(
            text.contains("roctm_gateway_state{gateway=\"we\\\"ird\\\\gw\",state=\"late\"} 1\n")
        );
        assert!(text.contains("roctm_gateway_tunnels{gateway=\"we\\\"ird\\\\gw\"} 3\n"));
    }
}
