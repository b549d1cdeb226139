//! UDP ingest: from a datagram to rows on disk, an ack, state and alerts.
//!
//! One thread, one socket, in this order for every datagram:
//!
//! 1. [`wire::decode`] checks size, header, version and the HMAC before any
//!    JSON is parsed; a failure is counted by its reason and logged.
//! 2. The send time must be within `--max-skew` of our clock (else *stale*).
//! 3. [`ReplayGuard`]: a part already accepted is a duplicate, acked again
//!    with status `duplicate` but not written; a forgotten one is a replay.
//! 4. The part's tunnel rows, then its event row, are written and synced
//!    ([`LogWriter::append`]). Only then is the signed ack sent.
//! 5. The state sees a sign of life; a report part goes to the
//!    [`Reassembler`], and a complete report replaces the gateway's tunnels.
//!    Alerts go to `--notify`, and `--on-collect` is poked: both queue and
//!    return, so ingest never waits on a command or on an HTTP client.
//! 6. A signed shutdown, once written and acked, stops the loop.
//!
//! The socket's read timeout gives a tick about once a second even without
//! traffic: late/down evaluation, expiry, midnight roll-over, and the check
//! that HTTP still serves. Every rejection is logged in one line, at most
//! [`LOG_LINES_PER_MINUTE`] per reason per minute, then one summary line.
//!
//! At start, [`Ingest::rebuild`] reads the recent event rows (and the tunnel
//! rows of today and yesterday) back through the same state, replay guard
//! and reassembler, so a restart neither accepts a replay nor makes every
//! gateway look new.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use gateway_client::key::Key;
use gateway_client::tunnel::Tunnel;
use gateway_client::wire::{self, Body, MsgKind, Reassembler};

use crate::csvlog::{self, LogWriter};
use crate::http::{SharedSnapshot, Snapshot};
use crate::metrics::{Metrics, Outcome};
use crate::notify::Notifier;
use crate::on_collect::OnCollect;
use crate::replay::{self, ReplayGuard, Verdict};
use crate::schema::{EventRow, LogKind, TunnelRow};
use crate::state::{Alert, State};

/// Rejection lines logged per reason per minute before they are summarised.
pub const LOG_LINES_PER_MINUTE: u32 = 10;
/// Split reports waiting for parts, at most.
pub const MAX_PENDING_REPORTS: usize = 64;
/// Days of event rows read back at start (for last-seen times).
pub const REBUILD_EVENT_DAYS: i64 = 8;

/// What the loop should do after a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// A signed shutdown from this gateway and address was written and acked.
    Shutdown {
        gateway: String,
        source: String,
    },
}

/// Rate-limited one-line logs, per reason.
#[derive(Default)]
struct LogLimiter {
    minute: u64,
    lines: HashMap<&'static str, (u32, u64)>,
}

impl LogLimiter {
    /// Logs `line` unless `reason` already had its lines this minute.
    /// Returns whether it was suppressed.
    fn log(&mut self, reason: &'static str, line: &str, now: u64) -> bool {
        self.roll(now);
        let (shown, suppressed) = self.lines.entry(reason).or_insert((0, 0));
        if *shown < LOG_LINES_PER_MINUTE {
            *shown += 1;
            eprintln!("collector: {line}");
            false
        } else {
            *suppressed += 1;
            true
        }
    }

    /// At a new minute, summarises what was left out in the last one.
    fn roll(&mut self, now: u64) {
        let minute = now / 60;
        if minute == self.minute {
            return;
        }
        self.minute = minute;
        let mut reasons: Vec<_> = self.lines.drain().collect();
        reasons.sort();
        for (reason, (_, suppressed)) in reasons {
            if suppressed > 0 {
                eprintln!(
                    "collector: suppressed {suppressed} more '{reason}' lines in the last minute"
                );
            }
        }
    }
}

/// The ingest side: everything between the socket and the disk.
pub struct Ingest {
    key: Key,
    max_skew: u64,
    log: LogWriter,
    replay: ReplayGuard,
    reassembler: Reassembler,
    state: State,
    metrics: Arc<Metrics>,
    snapshot: SharedSnapshot,
    notifier: Option<Notifier>,
    on_collect: Option<OnCollect>,
    limiter: LogLimiter,
}

impl Ingest {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: Key,
        max_skew: u64,
        late: u64,
        down: u64,
        log: LogWriter,
        metrics: Arc<Metrics>,
        snapshot: SharedSnapshot,
        notifier: Option<Notifier>,
        on_collect: Option<OnCollect>,
    ) -> Ingest {
        Ingest {
            key,
            max_skew,
            log,
            replay: ReplayGuard::new(max_skew, replay::CAP_PER_GATEWAY),
            reassembler: Reassembler::new(MAX_PENDING_REPORTS, max_skew),
            state: State::new(late, down),
            metrics,
            snapshot,
            notifier,
            on_collect,
            limiter: LogLimiter::default(),
        }
    }

    /// The state, for tests and for the snapshot.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Reads the recent logs back so that a restart remembers.
    pub fn rebuild(&mut self, dir: &std::path::Path, now: u64) -> Result<(), crate::error::Error> {
        let today = csvlog::day_of(now);
        let yesterday = today.yesterday().unwrap_or(today);
        let mut events = Vec::new();
        let mut rows: HashMap<(String, u64, u32), Vec<Tunnel>> = HashMap::new();
        for (name, kind, day) in csvlog::list(dir) {
            let age = (today - day).get_days();
            match kind {
                LogKind::Events if (0..REBUILD_EVENT_DAYS).contains(&i64::from(age)) => {
                    events.push((day, csvlog::read_events(&dir.join(&name))?.0));
                }
                LogKind::Tunnels if day == today || day == yesterday => {
                    for r in csvlog::read_tunnels(&dir.join(&name))?.0 {
                        rows.entry((r.gateway, r.seq, r.part))
                            .or_default()
                            .push(r.tunnel);
                    }
                }
                _ => {}
            }
        }
        events.sort_by_key(|(day, _)| *day);
        let horizon_day = yesterday;
        for (day, list) in events {
            for e in list {
                if !self.state.has_room_for(&e.gateway) {
                    continue;
                }
                let Some(kind) = MsgKind::parse(&e.kind) else {
                    continue;
                };
                self.state
                    .seen(&e.gateway, &e.kind, &e.text, &e.source, e.received);
                if e.sent.saturating_add(self.max_skew) >= now {
                    self.replay.record(&e.gateway, e.seq, e.part, e.sent);
                }
                if kind != MsgKind::Report || day < horizon_day {
                    continue;
                }
                // The rows of this part are the last `tunnels` written for
                // its key (an earlier, unacked attempt may precede them).
                let all = rows
                    .get(&(e.gateway.clone(), e.seq, e.part))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let n = (e.tunnels as usize).min(all.len());
                let body = Body {
                    gateway: e.gateway.clone(),
                    kind,
                    seq: e.seq,
                    sent: e.sent,
                    part: e.part,
                    parts: e.parts,
                    text: e.text.clone(),
                    tunnels: all[all.len() - n..].to_vec(),
                };
                if let Some(report) = self.reassembler.add(body, e.received) {
                    self.state.report(&report, e.received);
                }
            }
        }
        // Settle late/down without alerting: this is not news.
        self.state.tick(now);
        self.reassembler.expire(now);
        self.replay.expire(now);
        self.publish();
        Ok(())
    }

    /// Publishes the state for HTTP.
    pub fn publish(&self) {
        let (late, down) = self.state.thresholds();
        let snap = Arc::new(Snapshot {
            gateways: self.state.gateways().cloned().collect(),
            late,
            down,
        });
        match self.snapshot.lock() {
            Ok(mut s) => *s = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        self.metrics
            .reassembly_pending
            .store(self.reassembler.pending() as u64, Relaxed);
        self.metrics
            .replay_entries
            .store(self.replay.len() as u64, Relaxed);
    }

    fn reject(&mut self, outcome: Outcome, peer: SocketAddr, detail: &str, now: u64) {
        self.metrics.count(outcome);
        let line = format!("{peer}: {}: {detail}", outcome.as_str());
        if self.limiter.log(outcome.as_str(), &line, now) {
            self.metrics.log_lines_suppressed.fetch_add(1, Relaxed);
        }
    }

    fn send(&mut self, socket: &UdpSocket, bytes: &[u8], peer: SocketAddr, now: u64) -> bool {
        match socket.send_to(bytes, peer) {
            Ok(_) => true,
            Err(e) => {
                self.metrics.ack_send_errors.fetch_add(1, Relaxed);
                let line = format!("{peer}: cannot send the ack: {e}");
                self.limiter.log("ack_send", &line, now);
                false
            }
        }
    }

    fn alert(&self, alerts: Vec<Alert>) {
        if let Some(n) = &self.notifier {
            for a in alerts {
                n.send(a);
            }
        }
    }

    /// Handles one datagram received at `now` from `peer`.
    pub fn handle(
        &mut self,
        socket: &UdpSocket,
        datagram: &[u8],
        peer: SocketAddr,
        now: u64,
    ) -> Step {
        let body = match wire::decode(&self.key, datagram) {
            Ok(b) => b,
            Err(e) => {
                self.reject(Outcome::from_reject(e.reason), peer, &e.detail, now);
                return Step::Continue;
            }
        };
        let gw = body.gateway.clone();
        if body.kind == MsgKind::Ack {
            self.reject(
                Outcome::Malformed,
                peer,
                &format!("{gw}: an ack is not for the collector"),
                now,
            );
            return Step::Continue;
        }
        let skew = now.abs_diff(body.sent);
        if skew > self.max_skew {
            let detail = format!(
                "{gw}: sent at {} which is {skew} s from our clock (--max-skew {})",
                body.sent, self.max_skew
            );
            self.reject(Outcome::Stale, peer, &detail, now);
            return Step::Continue;
        }
        match self.replay.check(&gw, body.seq, body.part, body.sent) {
            Verdict::Fresh => {}
            Verdict::Duplicate => {
                self.metrics.count(Outcome::Replay);
                let line = format!(
                    "{peer}: replay: {gw}: seq {} part {}/{} was already written; acked again",
                    body.seq, body.part, body.parts
                );
                if self.limiter.log("replay", &line, now) {
                    self.metrics.log_lines_suppressed.fetch_add(1, Relaxed);
                }
                let ack = wire::ack(&self.key, &body, "duplicate");
                if self.send(socket, &ack, peer, now) {
                    self.metrics.acks_duplicate.fetch_add(1, Relaxed);
                }
                return Step::Continue;
            }
            Verdict::Replay => {
                let detail = format!("{gw}: seq {} is older than what is remembered", body.seq);
                self.reject(Outcome::Replay, peer, &detail, now);
                return Step::Continue;
            }
        }
        if !self.state.make_room_for(&gw, now) {
            let detail = format!(
                "{gw}: already tracking {} gateways, none silent for a day",
                crate::state::MAX_GATEWAYS
            );
            self.reject(Outcome::GatewayLimit, peer, &detail, now);
            return Step::Continue;
        }
        let source = peer.to_string();
        let tunnel_rows: Vec<TunnelRow> = body
            .tunnels
            .iter()
            .map(|t| TunnelRow {
                received: now,
                gateway: gw.clone(),
                seq: body.seq,
                part: body.part,
                tunnel: t.clone(),
            })
            .collect();
        let event = EventRow {
            received: now,
            gateway: gw.clone(),
            kind: body.kind.as_str().to_string(),
            seq: body.seq,
            part: body.part,
            parts: body.parts,
            sent: body.sent,
            source: source.clone(),
            tunnels: u32::try_from(body.tunnels.len()).unwrap_or(u32::MAX),
            text: body.text.clone(),
        };
        if let Err(e) = self.log.append(&tunnel_rows, &event) {
            self.reject(Outcome::WriteError, peer, &format!("{gw}: {e}"), now);
            return Step::Continue;
        }
        self.metrics.count(Outcome::Accepted);
        self.metrics.event_rows.fetch_add(1, Relaxed);
        self.metrics
            .tunnel_rows
            .fetch_add(tunnel_rows.len() as u64, Relaxed);
        self.replay.record(&gw, body.seq, body.part, body.sent);
        let ack = wire::ack(&self.key, &body, "ok");
        let kind = body.kind;
        let mut alerts = self
            .state
            .seen(&gw, kind.as_str(), &body.text, &source, now);
        let mut collected = kind != MsgKind::Shutdown;
        if kind == MsgKind::Report {
            collected = false;
            if let Some(report) = self.reassembler.add(body, now) {
                self.metrics.reports_completed.fetch_add(1, Relaxed);
                alerts.extend(self.state.report(&report, now));
                collected = true;
            }
        }
        self.publish();
        if self.send(socket, &ack, peer, now) {
            self.metrics.acks_ok.fetch_add(1, Relaxed);
        }
        self.alert(alerts);
        if collected && let Some(c) = &self.on_collect {
            c.poke();
        }
        if kind == MsgKind::Shutdown {
            return Step::Shutdown {
                gateway: gw,
                source,
            };
        }
        Step::Continue
    }

    /// The once-a-second work: late/down, expiry, roll-over, log summaries.
    pub fn tick(&mut self, now: u64) {
        self.replay.expire(now);
        self.reassembler.expire(now);
        if let Err(e) = self.log.roll(now) {
            self.limiter.log("roll", &e.to_string(), now);
        }
        self.limiter.roll(now);
        let alerts = self.state.tick(now);
        if !alerts.is_empty() {
            self.publish();
        }
        self.metrics
            .reassembly_pending
            .store(self.reassembler.pending() as u64, Relaxed);
        self.metrics
            .replay_entries
            .store(self.replay.len() as u64, Relaxed);
        self.alert(alerts);
    }
}
