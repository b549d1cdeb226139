//! Hostile input against the real collector on 127.0.0.1: a flood of
//! 100,000 datagrams at full speed, every kind of bad datagram there is,
//! then proof that the collector is alive, acks a valid report, counted
//! every datagram it was sent, and did not grow its memory with the flood.
//!
//! The kinds of datagram: random garbage, bad signatures (another key),
//! duplicates of an accepted report (replays), stale send times, oversized
//! (up to the largest UDP datagram), truncated, huge numbers, deep nesting,
//! invalid UTF-8 (signed and not), acks sent to the collector, unknown
//! versions and part numbers, and valid datagrams from 2,000 unknown
//! gateways (the gateway table is bounded: the first ones are accepted, the
//! rest refused as `gateway_limit`).
//!
//! The outcome of every datagram is predicted before it is sent, with
//! `wire::decode` and the collector's documented order of checks, so the
//! counters can be checked exactly. UDP may drop on loopback when the
//! collector's receive buffer is full, and a full-speed flood does fill it,
//! so the accounting is done in two phases:
//!
//! 1. **Flood**: 100,000 datagrams as fast as one socket sends them. The
//!    kernel counts the datagrams it dropped for the collector's socket
//!    (`drops` in `/proc/net/udp`), so *received + dropped == sent* is exact
//!    (a loopback backlog drop, `/proc/net/softnet_stat`, is allowed for
//!    too). No outcome may be counted more often than it was sent.
//! 2. **Paced**: a few thousand of the same kinds, in bursts small enough for
//!    the receive buffer, each burst waiting until the collector has counted
//!    it. No drops, so every outcome counter must match the prediction
//!    exactly.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use gateway_client::key::Key;
use gateway_client::wire::{self, Body, MsgKind};

/// Datagrams in the flood.
const FLOOD: usize = 100_000;
/// The collector's gateway table holds at most this many gateways.
const MAX_GATEWAYS: usize = collector::MAX_GATEWAYS;
/// `--max-skew` default.
const MAX_SKEW: u64 = 300;
/// How far from now a stale datagram's send time is (far outside the skew).
const STALE_BY: u64 = 100_000;

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One datagram to send and the outcome counter it must land in.
struct Shot {
    bytes: Vec<u8>,
    outcome: &'static str,
}

/// What the collector will make of a datagram, by its documented order of
/// checks. `fresh` is the outcome of a datagram that passes them all (the
/// caller knows whether it is a duplicate or a new gateway).
fn predict(d: &[u8], now: u64, fresh: &'static str) -> &'static str {
    match wire::decode(&key(), d) {
        Err(e) => e.reason.as_str(),
        Ok(b) if b.kind == MsgKind::Ack => "malformed",
        Ok(b) if b.sent.abs_diff(now) > MAX_SKEW => "stale",
        Ok(_) => fresh,
    }
}

/// A body from `GW`, sent now, with a fresh seq.
fn gw_body(kind: MsgKind) -> Body {
    body(kind, vec![tunnel(1)])
}

/// Bodies with numbers that overflow or are out of range for their field.
fn huge_numbers(now: u64) -> Vec<String> {
    let head = |seq: &str, sent: &str, part: &str, parts: &str| {
        format!(
            r#"{{"v":1,"gw":"{GW}","kind":"report","seq":{seq},"sent":{sent},"part":{part},"parts":{parts},"text":"","tunnels":[]}}"#
        )
    };
    let n = now.to_string();
    let big = "9".repeat(300);
    vec![
        head(&big, &n, "1", "1"),
        head("1", &big, "1", "1"),
        head("1", "18446744073709551616", "1", "1"),
        head("1", "18446744073709551615", "1", "1"),
        head("1", "0", "1", "1"),
        head("1", &n, "4294967296", "4294967296"),
        head("1", &n, "1", "4294967295"),
        head("1", &n, "1001", "1001"),
        head("1", &n, "0", "0"),
        head("1", &n, "1e9", "1"),
        head("1", &n, "-1", "1"),
        head("1", &n, "1.0", "1"),
        format!(
            r#"{{"v":1,"gw":"{GW}","kind":"report","seq":1,"sent":{n},"part":1,"parts":1,"text":"","tunnels":[{{"pid":99999999999,"listen_port":70000}}]}}"#
        ),
        format!(
            r#"{{"v":18446744073709551615,"gw":"{GW}","kind":"report","seq":1,"sent":{n},"part":1,"parts":1}}"#
        ),
    ]
}

/// Bodies nested far deeper than the reader allows.
fn deep_nesting() -> Vec<String> {
    vec![
        "[".repeat(1300),
        format!(r#"{{"v":1,"gw":{}"#, "[".repeat(1200)),
        format!("{}1{}", "[".repeat(600), "]".repeat(600)),
        "{\"a\":".repeat(200) + "1" + &"}".repeat(200),
        format!(
            r#"{{"v":1,"tunnels":[{}]}}"#,
            "{\"x\":[".repeat(100) + &"]}".repeat(100)
        ),
    ]
}

/// Builds the datagrams of every hostile kind; `names` hands out unknown
/// gateway names (each used once).
struct Arsenal {
    now: u64,
    rng: Rng,
    duplicate: Vec<u8>,
    stale: Vec<Vec<u8>>,
    bad_sig: Vec<Vec<u8>>,
    signed_junk: Vec<Vec<u8>>,
    truncated_src: Vec<Vec<u8>>,
    next_name: usize,
}

impl Arsenal {
    /// `duplicate` is an accepted datagram to replay; unknown gateway names
    /// are numbered from `first_name`, so two arsenals never share one.
    fn new(now: u64, duplicate: Vec<u8>, seed: u64, first_name: usize) -> Arsenal {
        let other = Key::from_text("an attacker's key, not the shared one");
        let mut stale = Vec::new();
        for (i, sent) in [now - STALE_BY, now + STALE_BY, 0, u64::MAX, 1_000_000_000]
            .into_iter()
            .enumerate()
        {
            let b = Body {
                sent,
                seq: sent.wrapping_mul(1_000_000).wrapping_add(i as u64),
                ..gw_body(MsgKind::Report)
            };
            stale.push(wire::encode(&key(), &b));
            let hb = Body {
                sent,
                ..gw_body(MsgKind::Heartbeat)
            };
            stale.push(wire::encode(&key(), &hb));
        }
        let bad_sig = (0..20)
            .map(|i| {
                let b = gw_body(if i % 2 == 0 {
                    MsgKind::Report
                } else {
                    MsgKind::Shutdown
                });
                wire::encode(&other, &b)
            })
            .collect();
        let mut signed_junk: Vec<Vec<u8>> = huge_numbers(now)
            .into_iter()
            .chain(deep_nesting())
            .map(|b| wire::frame(&key(), b.as_bytes()))
            .collect();
        // Invalid UTF-8, signed: past the signature, refused by the reader.
        for bad in [
            &b"\xff\xfe"[..],
            b"{\"v\":1,\"gw\":\"\xc3\x28\"}",
            b"{\"v\":1,\"gw\":\"\xed\xa0\x80\"}",
            b"{\"v\":1,\"gw\":\"\xf4\x90\x80\x80\"}",
            b"\xc0\xaf",
        ] {
            signed_junk.push(wire::frame(&key(), bad));
        }
        // Acks sent to the collector, other versions, bad part numbers.
        signed_junk.push(wire::ack(&key(), &gw_body(MsgKind::Report), "ok"));
        let mut v2 = wire::encode(&key(), &gw_body(MsgKind::Report));
        v2[6] = b'2';
        signed_junk.push(v2);
        signed_junk.push(wire::encode(
            &key(),
            &Body {
                part: 3,
                parts: 2,
                ..gw_body(MsgKind::Report)
            },
        ));
        signed_junk.push(wire::encode(
            &key(),
            &Body {
                part: 1,
                parts: 2,
                ..gw_body(MsgKind::Heartbeat)
            },
        ));
        let truncated_src = (0..10)
            .map(|i| wire::encode(&key(), &body(MsgKind::Report, (0..i).map(tunnel).collect())))
            .collect();
        Arsenal {
            now,
            rng: Rng(seed),
            duplicate,
            stale,
            bad_sig,
            signed_junk,
            truncated_src,
            next_name: first_name,
        }
    }

    /// A valid heartbeat from a gateway never seen before.
    fn unknown_gateway(&mut self) -> Vec<u8> {
        self.next_name += 1;
        let b = Body {
            gateway: format!("flood-{:05}", self.next_name),
            ..gw_body(MsgKind::Heartbeat)
        };
        wire::encode(&key(), &b)
    }

    /// One hostile datagram; `max_oversize` caps the size of oversized ones.
    /// `unknown` is what a valid datagram from a new gateway becomes.
    fn shot(&mut self, max_oversize: usize, unknown: &'static str) -> Shot {
        let now = self.now;
        let kind = self.rng.below(11);
        let pick = |rng: &mut Rng, v: &Vec<Vec<u8>>| v[rng.below(v.len())].clone();
        let (bytes, fresh) = match kind {
            0 => {
                let n = self.rng.below(1401);
                (self.rng.bytes(n), "")
            }
            1 => (pick(&mut self.rng, &self.bad_sig), ""),
            2 => (self.duplicate.clone(), "replay"),
            3 => (pick(&mut self.rng, &self.stale), ""),
            4 => {
                // Mostly just over the limit, one in ten up to `max_oversize`.
                let top = if self.rng.below(10) == 0 {
                    max_oversize
                } else {
                    4000.min(max_oversize)
                };
                let n = 1401 + self.rng.below(top - 1400);
                let mut d = b"ROCTM/1 ".to_vec();
                d.extend(self.rng.bytes(n - d.len()));
                (d, "")
            }
            5 => {
                let src = pick(&mut self.rng, &self.truncated_src);
                let cut = self.rng.below(src.len());
                (src[..cut].to_vec(), "")
            }
            6..=7 => (pick(&mut self.rng, &self.signed_junk), ""),
            8 => {
                // Invalid UTF-8 and control bytes behind a plausible header.
                let mut d = b"ROCTM/1 ".to_vec();
                d.extend(self.rng.bytes(64));
                d.push(b'\n');
                d.extend(b"\xff\xfe\x00{\"v\":1}");
                (d, "")
            }
            _ => (self.unknown_gateway(), unknown),
        };
        let outcome = predict(&bytes, now, fresh);
        assert!(
            !outcome.is_empty(),
            "test bug: kind {kind} made a datagram the collector would accept"
        );
        Shot { bytes, outcome }
    }
}

/// The collector's UDP socket's `drops` counter from `/proc/net/udp`.
fn socket_drops(addr: SocketAddr) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    let want = format!("0100007F:{:04X}", addr.port());
    text.lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&want.as_str())).then(|| f.last()?.parse::<u64>().ok())?
        })
        .unwrap_or_else(|| panic!("no socket {want} in /proc/net/udp"))
}

/// Packets dropped by the kernel's input backlogs, all CPUs (hex column 2).
fn backlog_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .sum()
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Every outcome counter, from one `/metrics` page.
fn outcomes(c: &Collector) -> BTreeMap<String, u64> {
    let text = c.get("/metrics").body_text();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("roctm_collector_datagrams_total{outcome=\"")?;
            let (name, value) = rest.split_once("\"} ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn tally(shots: &[Shot]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for s in shots {
        *m.entry(s.outcome.to_string()).or_insert(0) += 1;
    }
    m
}

fn sends(sock: &UdpSocket, to: SocketAddr, d: &[u8]) -> bool {
    // A send may fail for want of buffer space; try again a bounded number
    // of times, and count only what left.
    for _ in 0..100 {
        if sock.send_to(d, to).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Sends a valid report and returns how long the ack took.
fn acked_report(c: &Collector) -> Duration {
    let b = gw_body(MsgKind::Report);
    let t = Instant::now();
    let ack = c
        .send(&wire::encode(&key(), &b), 10)
        .unwrap_or_else(|| panic!("no ack for a valid report: {}", c.stderr_text()));
    assert_eq!((ack.seq, ack.text.as_str()), (b.seq, "ok"));
    t.elapsed()
}

#[test]
fn a_flood_of_hostile_datagrams_is_counted_and_survived() {
    let dir = TempDir::new("hostile");
    let mut c = Collector::start(dir.path(), &[]);
    let pid = c.child.as_ref().unwrap().id();
    let now = now();

    // A report from the real gateway: accepted, and the source of replays.
    let first = gw_body(MsgKind::Report);
    let first_dgram = wire::encode(&key(), &first);
    assert_eq!(c.send(&first_dgram, 10).unwrap().text, "ok");
    let latency_before = acked_report(&c);
    let rss_before = vm_rss_kb(pid);
    let mut arsenal = Arsenal::new(now, first_dgram, 0x5eed_0007, 0);

    // Phase 1: the flood. Gateway-table room depends on what got dropped,
    // so a new gateway's outcome is "accepted or gateway_limit" here.
    let shots: Vec<Shot> = (0..FLOOD)
        .map(|_| arsenal.shot(65_000, "new_gateway"))
        .collect();
    let before = outcomes(&c);
    let (drops0, backlog0) = (socket_drops(c.udp), backlog_drops());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = Vec::with_capacity(FLOOD);
    let started = Instant::now();
    for s in shots {
        if sends(&sock, c.udp, &s.bytes) {
            sent.push(s);
        }
    }
    let flood_time = started.elapsed();
    assert!(
        sent.len() >= FLOOD * 99 / 100,
        "only {} of {FLOOD} left",
        sent.len()
    );
    let n = sent.len() as u64;
    // Wait until every datagram is either counted or known dropped.
    let settled = wait_for(300, || {
        let got: u64 = delta(&outcomes(&c), &before).values().sum();
        let dropped = socket_drops(c.udp) - drops0;
        (got + dropped >= n).then_some((got, dropped))
    });
    let (got, dropped) = settled.unwrap_or_else(|| panic!("the collector did not drain the flood"));
    let backlog = backlog_drops() - backlog0;
    let d1 = delta(&outcomes(&c), &before);
    eprintln!(
        "flood: {n} datagrams sent in {flood_time:?}; collector counted {got}, \
         its socket dropped {dropped}, backlog drops {backlog}: {d1:?}"
    );
    assert!(
        got + dropped <= n && n <= got + dropped + backlog,
        "counted {got} + dropped {dropped} (+ backlog {backlog}) != sent {n}"
    );
    let want = tally(&sent);
    for (outcome, count) in &d1 {
        let allowed = match outcome.as_str() {
            "accepted" | "gateway_limit" => want.get("new_gateway"),
            o => want.get(o),
        };
        assert!(
            *count <= allowed.copied().unwrap_or(0),
            "{outcome}: counted {count}, sent {allowed:?}: {d1:?}"
        );
    }
    let accepted_1 = d1.get("accepted").copied().unwrap_or(0);
    assert!((accepted_1 as usize) < MAX_GATEWAYS);
    if dropped == 0 && backlog == 0 {
        for (o, w) in &want {
            if o != "new_gateway" {
                assert_eq!(d1.get(o), Some(w), "{o}: {d1:?}");
            }
        }
    }

    // Phase 2: paced, exact. Bursts of 20 datagrams of at most 2,000 bytes
    // fit the smallest default receive buffer (212,992 bytes) many times.
    // A fresh arsenal: send times of now, and a newly accepted report to
    // replay (the first one may have left the skew window by now).
    let second = gw_body(MsgKind::Report);
    let second_dgram = wire::encode(&key(), &second);
    assert_eq!(c.send(&second_dgram, 10).unwrap().text, "ok");
    let mut arsenal = Arsenal::new(common::now(), second_dgram, 0x5eed_0008, arsenal.next_name);
    let room = MAX_GATEWAYS - 1 - accepted_1 as usize;
    // How many new gateways got through the flood depends on how many
    // datagrams the kernel dropped, so fill the table to within 10 of its
    // limit first: the paced phase then surely meets both outcomes of a new
    // gateway (accepted, then gateway_limit).
    let fill = room.saturating_sub(10);
    for _ in 0..fill {
        let d = arsenal.unknown_gateway();
        let ack = c.send(&d, 10).map(|b| b.text);
        assert_eq!(ack.as_deref(), Some("ok"), "filling the gateway table");
    }
    let room = room - fill;
    let mut new_seen = 0;
    let mut paced = Vec::new();
    for _ in 0..4000 {
        let mut s = arsenal.shot(2000, "new_gateway");
        if s.outcome == "new_gateway" {
            new_seen += 1;
            s.outcome = if new_seen <= room {
                "accepted"
            } else {
                "gateway_limit"
            };
        }
        paced.push(s);
    }
    let before2 = outcomes(&c);
    let drops2 = socket_drops(c.udp);
    let mut counted = 0u64;
    for burst in paced.chunks(20) {
        for s in burst {
            assert!(sends(&sock, c.udp, &s.bytes), "a paced send failed");
        }
        counted += burst.len() as u64;
        let caught_up = wait_for(60, || {
            let got: u64 = delta(&outcomes(&c), &before2).values().sum();
            (got >= counted).then_some(())
        });
        assert!(
            caught_up.is_some(),
            "the collector counted fewer than the {counted} paced datagrams sent \
             (socket drops {}): {}",
            socket_drops(c.udp) - drops2,
            c.stderr_text()
        );
    }
    assert_eq!(socket_drops(c.udp), drops2, "paced datagrams were dropped");
    let d2 = delta(&outcomes(&c), &before2);
    assert_eq!(d2, tally(&paced), "every paced datagram in its counter");
    eprintln!("paced: {d2:?}");
    let wanted_kinds = [
        "bad_signature",
        "malformed",
        "oversized",
        "replay",
        "stale",
        "unknown_part",
        "unknown_version",
        "gateway_limit",
    ];
    for k in wanted_kinds {
        assert!(d2.contains_key(k), "no {k} datagram in the paced phase");
    }
    // Every replay was a duplicate of an accepted part: acked again as such.
    let dup_acks = c.metric("roctm_collector_acks_total{status=\"duplicate\"} ");
    assert!(dup_acks >= d2["replay"]);

    // Alive, acks a valid report, memory did not grow with the flood.
    assert!(
        c.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the collector died: {}",
        c.stderr_text()
    );
    let latency_after = acked_report(&c);
    let rss_after = vm_rss_kb(pid);
    eprintln!(
        "ack latency before {latency_before:?}, after {latency_after:?}; \
         VmRSS before {rss_before} kB, after {rss_after} kB"
    );
    assert!(
        rss_after < rss_before + 50 * 1024,
        "VmRSS grew from {rss_before} kB to {rss_after} kB"
    );
    // The logs read back cleanly (events() asserts no unreadable row), and
    // hold exactly what was accepted: four valid reports from the real
    // gateway, the heartbeats that filled the table, and the unknown
    // gateways that fit in it.
    let events = c.events();
    let accepted_total = accepted_1 + fill as u64 + d2.get("accepted").copied().unwrap_or(0);
    assert_eq!(events.len() as u64, 4 + accepted_total);
    assert_eq!(events.iter().filter(|e| e.gateway == GW).count(), 4);
    // The rejection log lines were rate-limited, not one per datagram.
    let lines = c.stderr_text().lines().count();
    assert!(lines < 2000, "{lines} lines on stderr");
    c.kill9();
}
