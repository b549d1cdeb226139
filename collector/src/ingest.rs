//! UDP ingest: from datagrams to rows on disk, acks, state and alerts.
//!
//! One thread, one socket, plus the log writer's thread ([`Committer`]). The
//! loop receives in batches ([`crate::udp::RecvBatch`]): one call that waits
//! for a datagram and takes whatever else is already queued, up to
//! [`crate::udp::MAX_BATCH`] datagrams. A batch goes through two steps:
//!
//! 1. [`Ingest::gather`] checks each datagram: [`wire::decode`] checks
//!    size, header, version and the HMAC before any JSON is parsed; the send
//!    time must be within `--max-skew` of our clock (else *stale*);
//!    [`ReplayGuard`]: a part already written is a duplicate, acked again at
//!    once with status `duplicate` and not written; a forgotten one is a
//!    replay. A part taken earlier in the same batch, or in the batch still
//!    being synced, is a duplicate too, but its ack waits for that batch's
//!    sync. A failure is counted by its reason and logged. The rows of every
//!    datagram taken are formatted, and [`Ingest::commit`] hands the batch to
//!    the log writer, which writes each file once and syncs each once (group commit,
//!    [`crate::csvlog::LogWriter::append_rows`]). A signed shutdown ends the batch
//!    (datagrams queued after it are not looked at).
//! 2. [`Ingest::settle`] waits for that sync, and only then acks. If the
//!    write failed, none of the batch is acked or remembered (each counts as
//!    `write_error`), and no row of it stays in the files. The state sees a
//!    sign of life; a report part goes to the [`Reassembler`], and a complete
//!    report replaces the gateway's tunnels. The HTTP snapshot is published
//!    once for the batch, before the acks. Alerts go to `--notify`, and
//!    `--on-collect` is poked: both queue and return, so ingest never waits
//!    on a command or on an HTTP client. A shutdown, once acked, stops the
//!    loop. A gateway going late or down pokes `--on-collect` too, so the
//!    pages follow the state as `status.json` does.
//!
//! While a batch is being synced the loop (`crate::Collector::run`) checks
//! what comes into the next batch, up to a full batch; once the sync is done
//! [`Ingest::commit`] settles that batch (its acks go out) and hands over the
//! next, so that under load one sync covers everything that came during the
//! one before, and the checking overlaps the disk. With nothing coming it
//! waits for the sync, then on the socket.
//!
//! The socket's read timeout gives a tick about once a second even without
//! traffic: late/down evaluation, expiry, midnight roll-over, and the check
//! that HTTP still serves. Every rejection is logged in one line, at most
//! [`LOG_LINES_PER_MINUTE`] per reason and gateway (or source address) and
//! [`LOG_LINES_PER_REASON`] per reason a minute, then one summary line; a
//! signed datagram refused gets a signed refusal back under the same limit
//! (`docs/protocol.md`), and `status.json` shows the last refusal of each
//! reason. A complete report whose seq went back (the gateway's clock
//! stepped back) is taken, said and counted; a split report given up is
//! said and counted. After [`WRITE_FAILURE_LIMIT`] seconds of nothing but
//! failing writes (other than a full disk) the collector exits, for cron.
//!
//! At start, [`Ingest::rebuild`] reads the recent event rows (and the tunnel
//! rows of today and yesterday) back through the same state, replay guard
//! and reassembler, so a restart neither accepts a replay nor makes every
//! gateway look new.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use gateway_client::key::Key;
use gateway_client::wire::{self, Body, MsgKind, Report};
use logs::damping::{self, Damper, Damping, Slot};
use logs::files::day_of;
use logs::inventory::Expected;
use logs::reader::{self, Item};
use logs::schema::{EventRef, EventRow, TunnelRef};
use logs::silence::Silence;
use logs::{EventKind, Staleness};

use crate::csvlog::{Committer, Rows};
use crate::error::Error;
use crate::http::{Refusal, SharedSnapshot, Snapshot};
use crate::mac::FastKey;
use crate::metrics::{Metrics, Outcome};
use crate::notify::Notifier;
use crate::on_collect::OnCollect;
use crate::reload::Reload;
use crate::replay::{self, ReplayGuard, Verdict};
use crate::say::say;
use crate::silencer::Silencer;
use crate::state::{Alert, AlertKind, Heard, State};
use crate::udp;
use gateway_client::reassembly::{Dropped, Reassembler};

/// Rejection lines logged per reason per minute before they are summarised.
pub(crate) const LOG_LINES_PER_MINUTE: u32 = 10;
/// Seconds of nothing but failing writes (other than for a full disk)
/// before the collector exits with status 1.
pub(crate) const WRITE_FAILURE_LIMIT: u64 = 300;
/// Days of event rows read back at start (for last-seen times).
pub(crate) const REBUILD_EVENT_DAYS: i64 = 8;

/// What the loop should do after a datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    /// A signed shutdown from this gateway and address was written and acked.
    Shutdown {
        gateway: String,
        source: String,
    },
}

/// A datagram of a batch that passed the checks and waits for its write.
struct Taken {
    body: Body,
    peer: SocketAddr,
    source: String,
}

/// What a batch has taken so far, before its write.
#[derive(Default)]
struct PendingBatch {
    /// (gateway, seq, part) taken: a second copy is a duplicate.
    parts: HashSet<(String, u64, u32)>,
    /// Gateways the state does not know yet (they count against the cap).
    new_gateways: HashSet<String>,
    /// Acks for copies of parts taken by this batch, sent after its sync.
    duplicates: Vec<(Vec<u8>, SocketAddr)>,
}

/// The next batch, gathered while the one before syncs: what it took,
/// and its rows formatted.
struct Next {
    batch: PendingBatch,
    taken: Vec<Taken>,
    rows: Box<Rows>,
    /// When its last datagrams were received.
    now: u64,
}

/// A batch handed to the log writer, waiting for its sync.
struct InFlight {
    batch: PendingBatch,
    taken: Vec<Taken>,
    /// (event rows, tunnel rows) it writes.
    counts: (u64, u64),
    /// When it was received.
    now: u64,
}

/// Rate-limited one-line logs: at most [`LOG_LINES_PER_MINUTE`] per reason
/// and gateway (or source address, before the signature is checked), and
/// at most [`LOG_LINES_PER_REASON`] per reason in all, per minute; what is
/// left out is summarised once a minute. One gateway's retries cannot use
/// up the lines that would name a second one. Memory: an entry per
/// (reason, who) shown this minute, so at most `LOG_LINES_PER_REASON` per
/// reason.
#[derive(Default)]
struct LogLimiter {
    minute: u64,
    /// (reason, who) -> lines shown this minute.
    shown: HashMap<(&'static str, String), u32>,
    /// reason -> (lines shown, lines suppressed) this minute.
    reasons: HashMap<&'static str, (u32, u64)>,
}

/// Lines per reason per minute, whoever they name.
pub(crate) const LOG_LINES_PER_REASON: u32 = 60;

impl LogLimiter {
    /// Logs `line` unless `reason` already had its lines this minute for
    /// `who`, or in all. Returns whether it was suppressed.
    fn log(&mut self, reason: &'static str, who: &str, line: &str, now: u64) -> bool {
        self.roll(now);
        let (total, suppressed) = self.reasons.entry(reason).or_insert((0, 0));
        let mine = self
            .shown
            .get(&(reason, who.to_string()))
            .copied()
            .unwrap_or(0);
        if *total < LOG_LINES_PER_REASON && mine < LOG_LINES_PER_MINUTE {
            *total += 1;
            self.shown.insert((reason, who.to_string()), mine + 1);
            say!("{line}");
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
        self.shown.clear();
        let mut reasons: Vec<_> = self.reasons.drain().collect();
        reasons.sort();
        for (reason, (_, suppressed)) in reasons {
            if suppressed > 0 {
                say!("suppressed {suppressed} more '{reason}' lines in the last minute");
            }
        }
    }
}

/// A signed refusal of `body`: an ack-shaped datagram of kind `refusal`
/// with the same `gw`, `seq`, `part` and `parts`, and `text` saying why
/// (`REASON: detail`). Clients that do not know the kind ignore it (it
/// fails their decode), so for them nothing changes.
fn refusal(key: &FastKey, body: &Body, text: &str) -> Vec<u8> {
    let reply = Body {
        gateway: body.gateway.clone(),
        kind: MsgKind::Ack,
        seq: body.seq,
        sent: body.sent,
        part: body.part,
        parts: body.parts,
        text: text.to_string(),
        tunnels: Vec::new(),
        period: None,
        until: None,
    };
    // The kind is the only field that differs from an ack; a string field
    // cannot hold this text unescaped, so the first match is the kind.
    let json = reply
        .to_json()
        .replacen("\"kind\":\"ack\"", "\"kind\":\"refusal\"", 1);
    wire::frame(key, json.as_bytes())
}

/// Who a log line is about: the gateway when the datagram's signature
/// checked out, else the source address (without the port, which changes
/// with every run of a client).
fn who(gateway: Option<&str>, peer: SocketAddr) -> String {
    gateway.map_or_else(|| peer.ip().to_string(), str::to_string)
}

/// The ingest side: everything between the socket and the disk.
pub(crate) struct Ingest {
    key: FastKey,
    max_skew: u64,
    log: Committer,
    in_flight: Option<InFlight>,
    /// The batch being gathered, for [`Ingest::commit`].
    next: Option<Next>,
    replay: ReplayGuard,
    reassembler: Reassembler,
    state: State,
    metrics: Arc<Metrics>,
    snapshot: SharedSnapshot,
    notifiers: Vec<Notifier>,
    on_collect: Option<OnCollect>,
    limiter: LogLimiter,
    /// The last refusal of each reason, for `status.json`.
    refusals: BTreeMap<&'static str, Refusal>,
    refusals_changed: bool,
    /// Since when every write failed, other than for a full disk.
    write_failing_since: Option<u64>,
    last_write_error: String,
    /// The watch on the config file, if the collector started with one.
    reload: Option<Reload>,
    /// Holds back and thins out tunnel alerts.
    damper: Damper<Alert>,
    /// Holds back the alerts of planned work.
    silencer: Silencer,
}

impl Ingest {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        key: Key,
        max_skew: u64,
        staleness: Staleness,
        log: Committer,
        metrics: Arc<Metrics>,
        snapshot: SharedSnapshot,
        notifiers: Vec<Notifier>,
        on_collect: Option<OnCollect>,
    ) -> Ingest {
        Ingest {
            key: FastKey::new(&key),
            max_skew,
            log,
            in_flight: None,
            next: None,
            replay: ReplayGuard::new(max_skew, replay::CAP_PER_GATEWAY),
            reassembler: Reassembler::new(max_skew),
            state: State::new(staleness),
            metrics,
            snapshot,
            notifiers,
            on_collect,
            limiter: LogLimiter::default(),
            refusals: BTreeMap::new(),
            refusals_changed: false,
            write_failing_since: None,
            last_write_error: String::new(),
            reload: None,
            damper: Damper::new(Damping::DEFAULT),
            silencer: Silencer::default(),
        }
    }

    /// The damping of tunnel alerts (`hold`, `flap`).
    pub(crate) fn use_damping(&mut self, damping: Damping) {
        self.damper.set(damping);
    }

    /// The expected tunnels to judge reports by (before [`Ingest::rebuild`],
    /// so the logs set their states), and the watch on the config file.
    pub(crate) fn use_config(
        &mut self,
        entries: Vec<Expected>,
        silences: Vec<Silence>,
        reload: Option<Reload>,
        now: u64,
    ) {
        // All unknown at start: nothing to alert.
        let _ = self.state.set_inventory(entries, now);
        self.silencer.set(silences);
        self.reload = reload;
    }

    /// An edited config file: the new inventory and thresholds, or the
    /// reason it is refused (logged and counted; the old one stays).
    fn reload_config(&mut self, now: u64) -> Vec<Alert> {
        let Some(result) = self.reload.as_mut().and_then(|r| r.poll(now)) else {
            return Vec::new();
        };
        match result {
            Ok(loaded) => {
                say!(
                    "config {}: {}",
                    loaded.config.path.display(),
                    loaded.config.summary()
                );
                self.state.set_staleness(loaded.staleness);
                self.damper.set(loaded.damping);
                self.silencer.set(loaded.config.silences.clone());
                let alerts = self.state.set_inventory(loaded.config.tunnels, now);
                self.publish();
                alerts
            }
            Err(why) => {
                say!("config {why}; the previous config stays in force");
                self.metrics.config_reload_errors.fetch_add(1, Relaxed);
                Vec::new()
            }
        }
    }

    /// Reads the recent logs back so that a restart remembers: every event
    /// row of the last [`REBUILD_EVENT_DAYS`] days is a sign of life (and a
    /// part the replay guard must refuse again), and the complete reports
    /// of today and yesterday replace tunnel lists, all by the reading rules
    /// of `logs::reader`, the same as webgen's. Parts of reports still
    /// incomplete go to the reassembler, so their last part can come after
    /// the restart.
    pub(crate) fn rebuild(&mut self, dir: &std::path::Path, now: u64) -> Result<(), Error> {
        let today = day_of(now);
        let window = reader::Window {
            from: today
                .checked_sub(jiff::Span::new().days(REBUILD_EVENT_DAYS - 1))
                .unwrap_or(today),
            to: today,
            reports_from: today.yesterday().unwrap_or(today),
            until: u64::MAX,
        };
        let logs = reader::read(dir, window)?;
        for item in logs.items {
            match item {
                Item::Event(e) => {
                    if e.kind.is_sign_of_life() {
                        self.state.catch_up(&e.gateway, e.received);
                    }
                    self.rebuild_event(&e, now)
                }
                Item::Report(r) => {
                    let report = Report {
                        gateway: r.gateway,
                        kind: MsgKind::Report,
                        seq: r.seq,
                        sent: r.sent,
                        parts: 1,
                        text: String::new(),
                        tunnels: r.tunnels,
                        period: r.period,
                        until: None,
                    };
                    self.state.report(report, r.received);
                }
            }
        }
        for p in logs.pending.into_iter().filter(|p| !p.damaged) {
            let e = p.event;
            let body = Body {
                gateway: e.gateway,
                kind: MsgKind::Report,
                seq: e.seq,
                sent: e.sent,
                part: e.part,
                parts: e.parts,
                text: e.text,
                tunnels: p.tunnels,
                period: e.period,
                until: e.until,
            };
            let (report, dropped) = self.reassembler.add(body, e.received);
            self.gave_up(dropped, now);
            if let Some(report) = report {
                self.state.report(report, e.received);
            }
        }
        // Settle late/down without alerting: this is not news.
        self.state.tick(now);
        let dropped = self.reassembler.expire(now);
        self.gave_up(dropped, now);
        self.replay.expire(now);
        self.publish();
        Ok(())
    }

    /// An event row read back: a sign of life, and a part to refuse again.
    fn rebuild_event(&mut self, e: &EventRow, now: u64) {
        if !self.state.has_room_for(&e.gateway) {
            return;
        }
        self.state.seen(
            &e.gateway,
            heard(e.kind, &e.text, &e.source, e.period),
            e.received,
        );
        if e.kind == EventKind::Maintenance {
            let until = e.until.unwrap_or(e.sent);
            self.silencer
                .maintenance(&e.gateway, e.received, e.sent, until, &e.text);
        }
        if e.sent.saturating_add(self.max_skew) >= now {
            self.replay
                .record(&e.gateway, e.seq, e.part, e.sent, e.received);
        }
    }

    /// Publishes the state for HTTP.
    pub(crate) fn publish(&self) {
        let snap = Arc::new(Snapshot {
            gateways: self.state.gateways().cloned().collect(),
            thresholds: self.state.thresholds(),
            refusals: self.refusals.values().cloned().collect(),
            inventory: self.state.inventory().clone(),
            silences: self.silencer.silences().clone(),
            flapping: self
                .state
                .inventory()
                .iter()
                .map(|(e, _)| {
                    self.damper.flapping_until(&Slot {
                        gateway: e.gateway.clone(),
                        listen: e.listen,
                        expected: true,
                    })
                })
                .collect(),
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

    /// Counts and logs a refused datagram, and remembers it for
    /// `status.json`. `gateway` is set when the signature checked out.
    /// Returns whether its log line was shown (not rate-limited).
    fn reject(
        &mut self,
        outcome: Outcome,
        peer: SocketAddr,
        gateway: Option<&str>,
        detail: &str,
        now: u64,
    ) -> bool {
        self.metrics.count(outcome);
        let line = format!("{peer}: {}: {detail}", outcome.as_str());
        self.refusals.insert(
            outcome.as_str(),
            Refusal {
                time: now,
                reason: outcome.as_str(),
                gateway: gateway.map(str::to_string),
                source: peer.to_string(),
                detail: detail.chars().take(300).collect(),
            },
        );
        self.refusals_changed = true;
        let suppressed = self
            .limiter
            .log(outcome.as_str(), &who(gateway, peer), &line, now);
        if suppressed {
            self.metrics.log_lines_suppressed.fetch_add(1, Relaxed);
        }
        !suppressed
    }

    /// [`Ingest::reject`] for a signed datagram, and a signed refusal back
    /// to its sender (when its log line was shown: the same rate limit
    /// bounds both), so that the client can say why.
    fn refuse(
        &mut self,
        socket: &UdpSocket,
        outcome: Outcome,
        peer: SocketAddr,
        body: &Body,
        detail: &str,
        now: u64,
    ) {
        if self.reject(outcome, peer, Some(&body.gateway), detail, now) {
            let text = format!("{}: {detail}", outcome.as_str());
            let refusal = refusal(&self.key, body, &text);
            let _ = socket.send_to(&refusal, peer);
        }
    }

    fn send(&mut self, socket: &UdpSocket, bytes: &[u8], peer: SocketAddr, now: u64) -> bool {
        match socket.send_to(bytes, peer) {
            Ok(_) => true,
            Err(e) => {
                self.send_failed(peer, &e, now);
                false
            }
        }
    }

    fn send_failed(&mut self, peer: SocketAddr, e: &std::io::Error, now: u64) {
        self.metrics.ack_send_errors.fetch_add(1, Relaxed);
        let line = format!("{peer}: cannot send the ack: {e}");
        self.limiter.log("ack_send", &who(None, peer), &line, now);
    }

    /// Sends a settled batch's acks together ([`udp::send_all`]): the first
    /// `oks` are counted as `ok`, the rest as `duplicate`; a send that
    /// fails is counted and logged, and the others still go.
    fn send_acks(
        &mut self,
        socket: &UdpSocket,
        acks: &[(Vec<u8>, SocketAddr)],
        oks: usize,
        now: u64,
    ) {
        let (mut ok, mut duplicate) = (0, 0);
        let mut failed = Vec::new();
        udp::send_all(socket, acks, |i, r| match r {
            Ok(()) if i < oks => ok += 1,
            Ok(()) => duplicate += 1,
            Err(e) => failed.push((acks[i].1, e)),
        });
        self.metrics.acks_ok.fetch_add(ok, Relaxed);
        self.metrics.acks_duplicate.fetch_add(duplicate, Relaxed);
        for (peer, e) in failed {
            self.send_failed(peer, &e, now);
        }
    }

    /// Damps the tunnel alerts (`logs::damping`: held until their state
    /// held for `hold`, a flapping tunnel thinned to one alert), then hands
    /// what is due to the routes.
    fn alert(&mut self, alerts: Vec<Alert>, now: u64) {
        let mut due = Vec::new();
        let mut flapped = false;
        for a in alerts {
            let Some((slot, from, to)) = damping_slot(&a) else {
                due.push(a);
                continue;
            };
            match self.damper.change(slot, from, to, a, now) {
                damping::Verdict::Send(ready) => due.extend(ready),
                damping::Verdict::Flapping(a) => {
                    flapped = true;
                    due.push(Alert {
                        kind: AlertKind::TunnelFlapping,
                        ..a
                    })
                }
            }
        }
        if flapped {
            // status.json marks it flapping from now on.
            self.publish();
        }
        due.extend(self.damper.tick(now));
        let state = &self.state;
        due.extend(self.silencer.release(now, |a| still_so(state, a)));
        self.route(due, now);
    }

    /// Hands each alert to the notify routes that take it, unless a
    /// silence holds it back.
    fn route(&mut self, alerts: Vec<Alert>, now: u64) {
        let inventory = self.state.inventory().clone();
        for a in alerts {
            let rocs: Vec<String> = match &a.expected {
                Some(x) => vec![x.entry.roc.clone()],
                None => inventory
                    .rocs_of(&a.gateway, a.tunnel.as_ref())
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            };
            let rocs: Vec<&str> = rocs.iter().map(String::as_str).collect();
            let Some(a) = self.silencer.pass(a, &rocs, now) else {
                self.metrics.alerts_silenced.fetch_add(1, Relaxed);
                continue;
            };
            for n in &self.notifiers {
                n.offer(&a, &rocs);
            }
        }
    }

    /// Whether the gateway table has room for `gw` (known, or taken by this
    /// batch or the one in flight, or room left); a new name is noted in the
    /// batch. A full table makes room by forgetting a gateway silent for a
    /// day.
    fn room_for(&mut self, gw: &str, batch: &mut PendingBatch, now: u64) -> bool {
        let no_new = HashSet::new();
        let flying = self
            .in_flight
            .as_ref()
            .map_or(&no_new, |f| &f.batch.new_gateways);
        if self.state.get(gw).is_some() || batch.new_gateways.contains(gw) || flying.contains(gw) {
            return true;
        }
        let coming = batch.new_gateways.len() + flying.len();
        let full =
            |state: &crate::state::State| state.count() + coming >= crate::state::MAX_GATEWAYS;
        let no_room = full(&self.state) && {
            let forgot = self.state.forget_one_silent(now);
            !forgot || full(&self.state)
        };
        if !no_room {
            batch.new_gateways.insert(gw.to_string());
        }
        !no_room
    }

    /// Handles one datagram received at `now` from `peer`: a batch of one.
    #[cfg(test)]
    fn handle(&mut self, socket: &UdpSocket, datagram: &[u8], peer: SocketAddr, now: u64) -> Step {
        self.handle_batch(socket, [(datagram, peer)], now)
    }

    /// Checks one datagram of a batch: decode, kind, skew, replay (against
    /// what is written and what this batch already took), gateway room.
    /// Rejections are counted here; duplicates of written parts are acked
    /// here, since nothing needs writing for them.
    fn classify(
        &mut self,
        socket: &UdpSocket,
        datagram: &[u8],
        peer: SocketAddr,
        now: u64,
        batch: &mut PendingBatch,
    ) -> Option<Taken> {
        let body = match wire::decode(&self.key, datagram) {
            Ok(b) => b,
            Err(e) => {
                self.reject(Outcome::from_reject(e.reason), peer, None, &e.detail, now);
                return None;
            }
        };
        let gw = &body.gateway;
        if body.kind == MsgKind::Ack {
            let detail = format!("{gw}: an ack is not for the collector");
            self.reject(Outcome::Malformed, peer, Some(gw), &detail, now);
            return None;
        }
        let skew = now.abs_diff(body.sent);
        if skew > self.max_skew {
            let detail = format!(
                "{gw}: sent at {} which is {skew} s from our clock (--max-skew {})",
                body.sent, self.max_skew
            );
            self.refuse(socket, Outcome::Stale, peer, &body, &detail, now);
            return None;
        }
        let part_key = (gw.clone(), body.seq, body.part);
        let in_flight = self
            .in_flight
            .as_ref()
            .is_some_and(|f| f.batch.parts.contains(&part_key));
        let verdict = if batch.parts.contains(&part_key) || in_flight {
            // Taken by this batch or the one in flight but not written
            // yet: acked as a duplicate only once that batch is synced.
            Verdict::Duplicate
        } else {
            self.replay.check(gw, body.seq, body.part, body.sent)
        };
        match verdict {
            Verdict::Fresh => {}
            Verdict::Duplicate => {
                self.metrics.count(Outcome::Replay);
                let line = format!(
                    "{peer}: replay: {gw}: seq {} part {}/{} was already written; acked again",
                    body.seq, body.part, body.parts
                );
                if self.limiter.log("replay", gw, &line, now) {
                    self.metrics.log_lines_suppressed.fetch_add(1, Relaxed);
                }
                let ack = wire::ack(&self.key, &body, "duplicate");
                if batch.parts.contains(&part_key) {
                    batch.duplicates.push((ack, peer));
                } else if let Some(f) = self.in_flight.as_mut().filter(|_| in_flight) {
                    f.batch.duplicates.push((ack, peer));
                } else if self.send(socket, &ack, peer, now) {
                    self.metrics.acks_duplicate.fetch_add(1, Relaxed);
                }
                return None;
            }
            Verdict::Replay => {
                let detail = format!("{gw}: seq {} is older than what is remembered", body.seq);
                self.refuse(socket, Outcome::Replay, peer, &body, &detail, now);
                return None;
            }
        }
        if !self.room_for(gw, batch, now) {
            let detail = format!(
                "{gw}: already tracking {} gateways, none silent for a day",
                crate::state::MAX_GATEWAYS
            );
            self.refuse(socket, Outcome::GatewayLimit, peer, &body, &detail, now);
            return None;
        }
        batch.parts.insert(part_key);
        Some(Taken {
            source: peer.to_string(),
            body,
            peer,
        })
    }

    /// Handles a batch of datagrams received at `now` and waits for it:
    /// [`Ingest::take_batch`], then [`Ingest::settle`].
    #[cfg(test)]
    fn handle_batch<'a>(
        &mut self,
        socket: &UdpSocket,
        datagrams: impl IntoIterator<Item = (&'a [u8], SocketAddr)>,
        now: u64,
    ) -> Step {
        match self.take_batch(socket, datagrams, now) {
            Step::Continue => self.settle(socket),
            shutdown => shutdown,
        }
    }

    /// Whether a batch is being written and synced (see
    /// [`Ingest::take_batch`]); [`Ingest::settle`] finishes it.
    pub(crate) fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether the batch in flight, if any, is synced (or failed), so that
    /// [`Ingest::settle`] would not wait.
    pub(crate) fn in_flight_done(&mut self) -> bool {
        self.log.is_done()
    }

    /// Takes a batch of datagrams received at `now` at once (group
    /// commit): [`Ingest::gather`], then [`Ingest::commit`], as the loop
    /// does when nothing else comes.
    #[cfg(test)]
    pub(crate) fn take_batch<'a>(
        &mut self,
        socket: &UdpSocket,
        datagrams: impl IntoIterator<Item = (&'a [u8], SocketAddr)>,
        now: u64,
    ) -> Step {
        match self.gather(socket, datagrams, now) {
            Step::Continue => self.commit(socket),
            shutdown => shutdown,
        }
    }

    /// Checks datagrams received at `now` into the next batch, which waits
    /// (with what earlier calls took into it) for [`Ingest::commit`]: each
    /// is checked against what is written, what the batch in flight holds
    /// and what the next batch took already, and the rows of those that
    /// pass are formatted. A signed shutdown ends the gathering (the
    /// datagrams after it are not looked at): the batch is committed and
    /// settled at once.
    pub(crate) fn gather<'a>(
        &mut self,
        socket: &UdpSocket,
        datagrams: impl IntoIterator<Item = (&'a [u8], SocketAddr)>,
        now: u64,
    ) -> Step {
        let mut next = self.next.take().unwrap_or_else(|| Next {
            batch: PendingBatch::default(),
            taken: Vec::new(),
            rows: self.log.rows(),
            now,
        });
        next.now = now;
        let first = next.taken.len();
        let mut shutdown = false;
        for (datagram, peer) in datagrams {
            if let Some(t) = self.classify(socket, datagram, peer, now, &mut next.batch) {
                shutdown = t.body.kind == MsgKind::Shutdown;
                next.taken.push(t);
                if shutdown {
                    break;
                }
            }
        }
        for t in &next.taken[first..] {
            format_rows(&mut next.rows, t, now);
        }
        self.next = Some(next);
        if shutdown {
            let step = self.commit(socket);
            debug_assert_eq!(
                step,
                Step::Continue,
                "the shutdown is in the batch committed"
            );
            return self.settle(socket);
        }
        Step::Continue
    }

    /// Whether datagrams wait in the next batch for [`Ingest::commit`].
    pub(crate) fn gathered(&self) -> usize {
        self.next.as_ref().map_or(0, |n| n.taken.len())
    }

    /// Settles the batch in flight (waiting for its sync: the batch before
    /// must be on disk and acked before the next goes), then hands the next
    /// batch, if it took anything, to the log writer and leaves it in
    /// flight.
    pub(crate) fn commit(&mut self, socket: &UdpSocket) -> Step {
        let step = self.settle(socket);
        debug_assert_eq!(step, Step::Continue, "a shutdown is settled at once");
        let Some(Next {
            batch,
            taken,
            rows,
            now,
        }) = self.next.take()
        else {
            return step;
        };
        if taken.is_empty() {
            return step;
        }
        let counts = rows.counts();
        let submitted = self.log.submit(rows);
        self.in_flight = Some(InFlight {
            batch,
            taken,
            counts,
            now,
        });
        if let Err(e) = submitted {
            self.fail_in_flight(socket, &e, now);
        }
        Step::Continue
    }

    /// Says and counts a report with more tunnels than the state keeps.
    fn note_capped(&mut self, report: &Report, peer: SocketAddr, now: u64) {
        let max = crate::state::MAX_TUNNELS_PER_GATEWAY;
        if report.tunnels.len() <= max {
            return;
        }
        self.metrics.tunnels_capped.fetch_add(1, Relaxed);
        let line = format!(
            "{peer}: {}: report seq {} has {} tunnels; the status keeps the first {max} (the logs have all)",
            report.gateway,
            report.seq,
            report.tunnels.len()
        );
        if self
            .limiter
            .log("tunnels_capped", &report.gateway, &line, now)
        {
            self.metrics.log_lines_suppressed.fetch_add(1, Relaxed);
        }
    }

    /// Says and counts split reports given up before they completed (their
    /// parts were acked and are in the logs, but the tunnel list stays).
    fn gave_up(&mut self, dropped: Vec<Dropped>, now: u64) {
        for d in dropped {
            let (counter, why) = if d.evicted {
                (
                    &self.metrics.reports_evicted,
                    format!(
                        "too many incomplete reports waited (at most {} per gateway, {} in all)",
                        gateway_client::reassembly::PER_GATEWAY,
                        gateway_client::reassembly::TOTAL
                    ),
                )
            } else {
                (
                    &self.metrics.reports_expired,
                    format!("its other parts did not come within {} s", self.max_skew),
                )
            };
            counter.fetch_add(1, Relaxed);
            let line = format!(
                "{}: gave up report seq {} with {} of {} parts (written and acked): {why}; its tunnels do not replace the list",
                d.gateway, d.seq, d.have, d.parts
            );
            if self.limiter.log("report_dropped", &d.gateway, &line, now) {
                self.metrics.log_lines_suppressed.fetch_add(1, Relaxed);
            }
        }
    }

    /// Says and counts a complete report whose seq is lower than its
    /// gateway's report before: its clock stepped back (or an older split
    /// report completed late). The report is taken all the same: newer
    /// means completed later (docs/protocol.md, "Which report is newer").
    fn note_seq_back(&mut self, report: &Report, peer: SocketAddr, now: u64) {
        let Some(before) = self.state.seq_went_back(report, now) else {
            return;
        };
        self.metrics.reports_out_of_order.fetch_add(1, Relaxed);
        let back = before.saturating_sub(report.seq) / 1_000_000;
        let line = format!(
            "{peer}: {}: report seq {} is {back} s below the last one ({before}): the gateway's clock stepped back? Taken as the newest, since it came last",
            report.gateway, report.seq
        );
        if self.limiter.log("seq_back", &report.gateway, &line, now) {
            self.metrics.log_lines_suppressed.fetch_add(1, Relaxed);
        }
    }

    /// Finishes the batch in flight, if any: waits until its rows are
    /// written and synced, then acks them (and the copies of its parts that
    /// came since), lets the state and the reassembler see them, publishes
    /// the snapshot once, alerts, and pokes `--on-collect`. If the write
    /// failed none of them is acked or remembered (each counts as
    /// `write_error`), so a retransmission is taken later.
    pub(crate) fn settle(&mut self, socket: &UdpSocket) -> Step {
        if self.in_flight.is_none() {
            return Step::Continue;
        }
        if let Err(e) = self.log.wait() {
            let now = self.in_flight.as_ref().map_or(0, |f| f.now);
            self.fail_in_flight(socket, &e, now);
            return Step::Continue;
        }
        let Some(InFlight {
            batch,
            taken,
            counts: (event_rows, tunnel_rows),
            now,
        }) = self.in_flight.take()
        else {
            return Step::Continue;
        };
        self.write_failing_since = None;
        self.metrics.event_rows.fetch_add(event_rows, Relaxed);
        self.metrics.tunnel_rows.fetch_add(tunnel_rows, Relaxed);

        let mut acks = Vec::with_capacity(taken.len());
        let mut alerts = Vec::new();
        let mut collected = false;
        let mut shutdown = None;
        for Taken { body, peer, source } in taken {
            self.metrics.count(Outcome::Accepted);
            let gw = &body.gateway;
            self.replay.record(gw, body.seq, body.part, body.sent, now);
            acks.push((wire::ack(&self.key, &body, "ok"), peer));
            let kind = body.kind;
            let what = heard(kind.into(), &body.text, &source, body.period);
            alerts.extend(self.state.seen(gw, what, now));
            match kind {
                MsgKind::Report => {
                    let (report, dropped) = self.reassembler.add(body, now);
                    self.gave_up(dropped, now);
                    if let Some(report) = report {
                        self.metrics.reports_completed.fetch_add(1, Relaxed);
                        self.note_seq_back(&report, peer, now);
                        self.note_capped(&report, peer, now);
                        alerts.extend(self.state.report(report, now));
                        collected = true;
                    }
                }
                MsgKind::Shutdown => {
                    shutdown = Some(Step::Shutdown {
                        gateway: body.gateway,
                        source,
                    });
                }
                MsgKind::Maintenance => {
                    let until = body.until.unwrap_or(body.sent);
                    self.silencer
                        .maintenance(&body.gateway, now, body.sent, until, &body.text);
                    collected = true;
                }
                _ => collected = true,
            }
        }
        self.publish();
        let oks = acks.len();
        acks.extend(batch.duplicates);
        self.send_acks(socket, &acks, oks, now);
        self.alert(alerts, now);
        if collected && let Some(c) = &self.on_collect {
            c.poke();
        }
        shutdown.unwrap_or(Step::Continue)
    }

    /// The batch in flight could not be written: nothing of it is on disk,
    /// so nothing is acked (not even the copies of its parts) or remembered.
    fn fail_in_flight(&mut self, socket: &UdpSocket, e: &Error, now: u64) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        if e.is_out_of_space() {
            self.write_failing_since = None;
        } else {
            self.write_failing_since.get_or_insert(f.now);
            self.last_write_error = e.to_string();
        }
        for t in &f.taken {
            let detail = format!("{}: {e}", t.body.gateway);
            self.refuse(socket, Outcome::WriteError, t.peer, &t.body, &detail, now);
        }
    }

    /// The error to exit with when every write has failed for longer than
    /// [`WRITE_FAILURE_LIMIT`] (an I/O error, a read-only file system, a
    /// log file that cannot be opened), so that cron starts a fresh
    /// collector and the failure shows as an exit in its log. A full disk
    /// is waited out instead: writes work again once space returns.
    pub(crate) fn write_failure(&self, now: u64) -> Option<Error> {
        let since = self.write_failing_since?;
        let failing = now.saturating_sub(since);
        (failing > WRITE_FAILURE_LIMIT).then(|| {
            Error::io(
                "every write has failed for over 300 s; exiting for cron to start a fresh collector; the last error",
                "the log files",
                std::io::Error::other(self.last_write_error.clone()),
            )
        })
    }

    /// At a shutdown: lets `--on-collect` make the run still owed (the
    /// pages then show the last reports) and waits for it, at most
    /// [`crate::on_collect::FINISH_WAIT`].
    pub(crate) fn finish(&mut self) {
        if let Some(c) = self.on_collect.take()
            && !c.finish(crate::on_collect::FINISH_WAIT)
        {
            say!(
                "--on-collect still running after {} s; not waiting for it",
                crate::on_collect::FINISH_WAIT.as_secs()
            );
        }
    }

    /// The once-a-second work: late/down, expiry, roll-over, log summaries.
    /// Settles the batch in flight first.
    pub(crate) fn tick(&mut self, socket: &UdpSocket, now: u64) {
        let step = self.settle(socket);
        debug_assert_eq!(step, Step::Continue, "a shutdown is settled at once");
        self.replay.expire(now);
        let dropped = self.reassembler.expire(now);
        self.gave_up(dropped, now);
        if let Err(e) = self.log.roll(now) {
            self.limiter.log("roll", "", &e.to_string(), now);
        }
        self.limiter.roll(now);
        let mut alerts = self.reload_config(now);
        let ticked = self.state.tick(now);
        // A gateway gone late or down: the pages say so at once too.
        if !ticked.is_empty()
            && let Some(c) = &self.on_collect
        {
            c.poke();
        }
        alerts.extend(ticked);
        let silences_changed = self.silencer.changed(now);
        if !alerts.is_empty() || std::mem::take(&mut self.refusals_changed) || silences_changed {
            self.publish();
        }
        self.metrics
            .reassembly_pending
            .store(self.reassembler.pending() as u64, Relaxed);
        self.metrics
            .replay_entries
            .store(self.replay.len() as u64, Relaxed);
        self.alert(alerts, now);
    }
}

/// Formats the rows of a datagram taken at `now`: its tunnels', then its
/// event's.
fn format_rows(rows: &mut Rows, t: &Taken, now: u64) {
    let body = &t.body;
    for tunnel in &body.tunnels {
        rows.tunnel(TunnelRef {
            received: now,
            gateway: &body.gateway,
            seq: body.seq,
            part: body.part,
            tunnel,
        });
    }
    rows.event(EventRef {
        received: now,
        gateway: &body.gateway,
        kind: body.kind.into(),
        seq: body.seq,
        part: body.part,
        parts: body.parts,
        sent: body.sent,
        source: &t.source,
        tunnels: u32::try_from(body.tunnels.len()).unwrap_or(u32::MAX),
        text: &body.text,
        period: body.period,
        until: body.until,
    });
}

/// What a datagram (or its row) said of its gateway.
fn heard<'a>(kind: EventKind, text: &'a str, source: &'a str, period: Option<u32>) -> Heard<'a> {
    Heard {
        kind,
        text,
        source,
        period,
    }
}

/// Whether the problem an alert held back by a silence reported is still
/// there: the expected tunnel in the same state, the gateway still late or
/// down, the tunnel's port still empty.
fn still_so(state: &State, a: &Alert) -> bool {
    let Some(g) = state.get(&a.gateway) else {
        return false;
    };
    match (&a.expected, &a.tunnel, a.kind) {
        (Some(x), _, _) => state.inventory().iter().any(|(e, j)| {
            e.gateway == a.gateway && e.listen == x.entry.listen && j.state == x.state
        }),
        (None, Some(t), AlertKind::TunnelDown) => !g
            .tunnels
            .iter()
            .any(|s| s.tunnel.listen_port == t.listen_port),
        (None, None, AlertKind::GatewayLate | AlertKind::GatewayDown) => {
            g.state != logs::GatewayState::Up
        }
        _ => false,
    }
}

/// The damping slot of a tunnel alert and the change it reports (the
/// slot's state before and after); `None` for a gateway's alert.
fn damping_slot(a: &Alert) -> Option<(Slot, &'static str, &'static str)> {
    let slot = |listen: u16, expected: bool| Slot {
        gateway: a.gateway.clone(),
        listen,
        expected,
    };
    match (&a.expected, &a.tunnel, a.kind) {
        (Some(x), _, _) => Some((
            slot(x.entry.listen, true),
            x.before.map_or("unknown", |s| s.as_str()),
            x.state.as_str(),
        )),
        (None, Some(t), AlertKind::TunnelUp) => {
            Some((slot(t.listen_port, false), "absent", "present"))
        }
        (None, Some(t), AlertKind::TunnelDown) => {
            Some((slot(t.listen_port, false), "present", "absent"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Snapshot;
    use std::sync::Mutex;
    use std::time::Duration;

    const KEY: &str = "9f3b1c0d2e4a5968778695a4b3c2d1e0f0e1d2c3b4a5968778695a4b3c2d1e0";

    fn setup(name: &str, now: u64) -> (Ingest, std::path::PathBuf, Arc<Metrics>) {
        let dir = std::env::temp_dir().join(format!("ingest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let metrics = Arc::new(Metrics::default());
        let log = Committer::start(crate::csvlog::LogWriter::open(&dir, now, 0).unwrap()).unwrap();
        let snapshot = Arc::new(Mutex::new(Arc::new(Snapshot::default())));
        let ingest = Ingest::new(
            Key::from_text(KEY),
            300,
            Staleness::default(),
            log,
            metrics.clone(),
            snapshot,
            Vec::new(),
            None,
        );
        (ingest, dir, metrics)
    }

    fn datagram(kind: MsgKind, seq: u64, now: u64) -> Vec<u8> {
        let body = Body {
            gateway: "gw".into(),
            kind,
            seq,
            sent: now,
            part: 1,
            parts: 1,
            text: String::new(),
            tunnels: vec![gateway_client::tunnel::Tunnel::default()],
            period: None,
            until: None,
        };
        wire::encode(&Key::from_text(KEY), &body)
    }

    /// An ingest on a fresh directory, its socket, and a client's.
    struct Fixture {
        ingest: Ingest,
        dir: std::path::PathBuf,
        metrics: Arc<Metrics>,
        server: UdpSocket,
        client: UdpSocket,
        peer: SocketAddr,
        now: u64,
    }

    fn fixture(name: &str) -> Fixture {
        // Noon of today (UTC): a test that moves `now` on by minutes stays
        // in the same day's files however near midnight it runs.
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = real - real % 86_400 + 43_200;
        let (ingest, dir, metrics) = setup(name, now);
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = client.local_addr().unwrap();
        Fixture {
            ingest,
            dir,
            metrics,
            server,
            client,
            peer,
            now,
        }
    }

    /// The acks `sock` receives within a short while: (seq, status).
    fn acks(sock: &UdpSocket) -> Vec<(u64, String)> {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            let ack = wire::decode(&Key::from_text(KEY), &buf[..n]).unwrap();
            out.push((ack.seq, ack.text));
        }
        out.sort();
        out
    }

    #[test]
    fn a_copy_within_a_batch_is_a_duplicate_and_a_shutdown_ends_the_batch() {
        let Fixture {
            mut ingest,
            dir,
            metrics,
            server,
            client,
            peer,
            now,
        } = fixture("batch");
        let a = datagram(MsgKind::Report, 1, now);
        let b = datagram(MsgKind::Report, 2, now);
        let stop = datagram(MsgKind::Shutdown, 3, now);
        let after = datagram(MsgKind::Report, 4, now);
        let batch = [&a, &a, &b, &stop, &after].map(|d| (d.as_slice(), peer));
        let step = ingest.handle_batch(&server, batch, now);
        assert!(matches!(step, Step::Shutdown { .. }), "{step:?}");
        assert_eq!(
            acks(&client),
            [
                (1, "duplicate".to_string()),
                (1, "ok".to_string()),
                (2, "ok".to_string()),
                (3, "ok".to_string())
            ]
        );
        let events = logs::files::read_events(&dir.join(format!("events-{}.csv", day_of(now))))
            .unwrap()
            .rows;
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(metrics.datagrams(Outcome::Accepted), 3);
        assert_eq!(metrics.datagrams(Outcome::Replay), 1);
        // Now written: a copy in a later batch is acked at once.
        ingest.handle(&server, &a, peer, now);
        assert_eq!(acks(&client), [(1, "duplicate".to_string())]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn persistent_write_errors_end_the_collector_after_a_bounded_time() {
        let Fixture {
            mut ingest,
            dir,
            server,
            peer,
            now,
            ..
        } = fixture("eio");
        // The events file becomes a directory: every write fails.
        let events = dir.join(format!("events-{}.csv", day_of(now)));
        std::fs::remove_file(&events).unwrap();
        std::fs::create_dir(&events).unwrap();
        ingest.handle(&server, &datagram(MsgKind::Report, 1, now), peer, now);
        assert!(ingest.write_failure(now + 1).is_none());
        let later = now + WRITE_FAILURE_LIMIT + 1;
        ingest.handle(&server, &datagram(MsgKind::Report, 2, later), peer, later);
        let e = ingest
            .write_failure(later)
            .expect("still running after persistent write errors");
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("every write has failed"), "{e}");
        // A write that works again clears it.
        std::fs::remove_dir(&events).unwrap();
        ingest.handle(&server, &datagram(MsgKind::Report, 3, later), peer, later);
        assert!(ingest.write_failure(later + 1000).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_copy_of_a_part_in_flight_is_acked_as_a_duplicate_once_it_is_synced() {
        let Fixture {
            mut ingest,
            dir,
            metrics,
            server,
            client,
            peer,
            now,
        } = fixture("in-flight");
        let a = datagram(MsgKind::Report, 1, now);
        let b = datagram(MsgKind::Report, 2, now);
        assert_eq!(
            ingest.take_batch(&server, [(&a[..], peer)], now),
            Step::Continue
        );
        assert!(ingest.in_flight());
        assert_eq!(acks(&client), [], "nothing is acked before its sync");
        // The next batch settles the first (ok, and the copy as duplicate)
        // and stays in flight itself.
        ingest.take_batch(&server, [(&a[..], peer), (&b[..], peer)], now);
        assert!(ingest.in_flight());
        assert_eq!(
            acks(&client),
            [(1, "duplicate".to_string()), (1, "ok".to_string())]
        );
        assert_eq!(ingest.settle(&server), Step::Continue);
        assert!(!ingest.in_flight());
        assert_eq!(acks(&client), [(2, "ok".to_string())]);
        let events = logs::files::read_events(&dir.join(format!("events-{}.csv", day_of(now))))
            .unwrap()
            .rows;
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2]);
        assert_eq!(metrics.datagrams(Outcome::Accepted), 2);
        assert_eq!(metrics.datagrams(Outcome::Replay), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
