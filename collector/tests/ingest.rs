//! The real collector binary receiving real signed datagrams on 127.0.0.1:
//! report to ack to CSV rows to status.json, split reports, duplicates,
//! every rejection reason, the nanoserde traps, both kinds of shutdown,
//! single instance, restart memory, and kill -9 under load.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use gateway_client::key::Key;
use gateway_client::wire::{self, Body, MsgKind};

#[test]
fn report_is_acked_written_and_shown_in_status() {
    let dir = TempDir::new("report");
    let c = Collector::start(dir.path(), &[]);
    let b = body(MsgKind::Report, vec![tunnel(1), tunnel(2)]);
    let ack = c.send(&wire::encode(&key(), &b), 5).expect("ack");
    assert_eq!(
        (ack.seq, ack.part, ack.parts, ack.text.as_str()),
        (b.seq, 1, 1, "ok")
    );
    assert_eq!(ack.gateway, GW);

    let events = c.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.kind.as_str(), e.seq, e.sent, e.tunnels),
        ("report", b.seq, b.sent, 2)
    );
    assert!(e.source.starts_with("127.0.0.1:"), "{}", e.source);
    let rows = c.tunnel_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].tunnel, tunnel(2));

    let status = c.get("/status.json");
    assert_eq!(status.status, 200);
    assert_eq!(
        status.header("Content-Type").as_deref(),
        Some("application/json")
    );
    let json: serde_json::Value = serde_json::from_str(&status.body_text()).expect("valid JSON");
    let gws = json["gateways"].as_array().expect("gateways");
    assert_eq!(gws.len(), 1);
    let g = &gws[0];
    assert_eq!(g["name"], GW);
    assert_eq!(g["state"], "up");
    let seen = g["last_seen"].as_str().expect("last_seen");
    assert!(seen.parse::<jiff::Timestamp>().is_ok(), "RFC 3339: {seen}");
    let tunnels = g["tunnels"].as_array().expect("tunnels");
    assert_eq!(tunnels.len(), 2);
    let t = gateway_client::Tunnel::from_json_line(&tunnels[0].to_string()).unwrap();
    assert_eq!(t, tunnel(1));
    // Every field, the unknown connections too, as the client's --json.
    assert!(
        status
            .body_text()
            .contains(r#""connections":null,"connected":[],"first_seen":"#),
        "{}",
        status.body_text()
    );
}

#[test]
fn split_report_is_written_part_by_part_and_reassembled() {
    let dir = TempDir::new("split");
    let c = Collector::start(dir.path(), &[]);
    let b = body(MsgKind::Report, (0..120).map(tunnel).collect());
    let mut parts = wire::encode_all(&key(), &b).unwrap();
    assert!(parts.len() > 3, "{} parts", parts.len());
    parts.reverse();
    for (p, bytes) in &parts {
        let ack = c
            .send(bytes, 5)
            .unwrap_or_else(|| panic!("no ack for part {}: {}", p.part, c.stderr_text()));
        assert_eq!(
            (ack.part, ack.parts, ack.text.as_str()),
            (p.part, p.parts, "ok")
        );
    }
    let events = c.events();
    assert_eq!(events.len(), parts.len());
    assert_eq!(events.iter().map(|e| e.tunnels).sum::<u32>(), 120);
    assert_eq!(c.tunnel_rows().len(), 120);
    assert_eq!(
        c.metric(&format!("roctm_gateway_tunnels{{gateway=\"{GW}\"}} ")),
        120
    );
    assert_eq!(c.metric("roctm_collector_reports_completed_total "), 1);
}

#[test]
fn a_duplicate_is_acked_again_but_not_written() {
    let dir = TempDir::new("dup");
    let c = Collector::start(dir.path(), &[]);
    let d = wire::encode(&key(), &body(MsgKind::Report, vec![tunnel(1)]));
    let (first, n1) = common::send_counting(c.udp, &d, 5);
    // A first ack slower than the resend gives way to the copy's.
    let first = first.expect("acked").text;
    assert!(first == "ok" || (n1 > 1 && first == "duplicate"), "{first}");
    let (second, n2) = common::send_counting(c.udp, &d, 5);
    assert_eq!(second.expect("acked").text, "duplicate");
    assert_eq!(c.events().len(), 1);
    assert_eq!(c.tunnel_rows().len(), 1);
    // Every copy after the first is a replay, however many went out.
    let copies = u64::from(n1 + n2 - 1);
    assert_eq!(c.outcome("replay"), copies);
    assert_eq!(c.outcome("accepted"), 1);
    assert_eq!(
        c.metric("roctm_collector_acks_total{status=\"duplicate\"} "),
        copies
    );
}

#[test]
fn every_rejection_reason_is_counted_and_gets_no_ack() {
    let dir = TempDir::new("reject");
    let c = Collector::start(dir.path(), &[]);
    let good = body(MsgKind::Heartbeat, vec![]);
    let other_key = Key::from_text("a different key of enough length");
    let mut v2 = wire::encode(&key(), &good);
    v2[6] = b'2';
    let stale = Body {
        sent: now() - 3600,
        ..body(MsgKind::Heartbeat, vec![])
    };
    let bad_part = Body {
        part: 3,
        parts: 2,
        ..body(MsgKind::Report, vec![])
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad_signature", wire::encode(&other_key, &good)),
        ("malformed", b"hello, collector".to_vec()),
        ("oversized", vec![b'x'; 2000]),
        ("unknown_version", v2),
        ("stale", wire::encode(&key(), &stale)),
        ("unknown_part", wire::encode(&key(), &bad_part)),
    ];
    for (reason, d) in &cases {
        assert!(c.send(d, 1).is_none(), "{reason} was acked");
    }
    for (reason, _) in &cases {
        assert_eq!(c.outcome(reason), 1, "{reason}");
    }
    assert_eq!(c.outcome("accepted"), 0);
    assert!(c.events().is_empty());
    let err = c.stderr_text();
    for (reason, _) in &cases {
        assert!(
            err.contains(&format!(": {reason}: ")),
            "no log line for {reason}:\n{err}"
        );
    }
}

#[test]
fn rejection_logs_are_rate_limited() {
    let dir = TempDir::new("flood");
    let c = Collector::start(dir.path(), &[]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        sock.send_to(b"junk", c.udp).unwrap();
    }
    let counted = wait_for(10, || (c.outcome("malformed") == 200).then_some(()));
    assert!(counted.is_some(), "not all 200 counted");
    let lines = c
        .stderr_text()
        .lines()
        .filter(|l| l.contains(": malformed: "))
        .count();
    assert!(lines <= 20, "{lines} lines logged");
    assert!(c.metric("roctm_collector_log_lines_suppressed_total ") >= 180);
}

#[test]
fn signed_hostile_json_is_malformed_and_the_collector_lives() {
    let dir = TempDir::new("hostile");
    let c = Collector::start(dir.path(), &[]);
    for hostile in [
        r#"{"zz":}"#,
        r#"{"v":1,"zz":[1,2"#,
        r#""zz":[1,2"#,
        "[[[[[[[[[[[[[[[[[[[[",
    ] {
        assert!(c.send(&signed_raw(hostile), 1).is_none(), "{hostile} acked");
    }
    assert_eq!(c.outcome("malformed"), 4);
    let ack = c.send(&wire::encode(&key(), &body(MsgKind::Heartbeat, vec![])), 5);
    assert_eq!(ack.map(|a| a.text), Some("ok".into()));
}

#[test]
fn signed_shutdown_stops_cleanly_and_unsigned_is_refused() {
    let dir = TempDir::new("shutdown");
    let mut c = Collector::start(dir.path(), &[]);
    let unsigned = wire::encode(
        &Key::from_text("not the shared key, but long enough"),
        &body(MsgKind::Shutdown, vec![]),
    );
    assert!(c.send(&unsigned, 1).is_none());
    assert_eq!(c.outcome("bad_signature"), 1);
    assert_eq!(c.get("/healthz").status, 200, "still serving");

    let b = body(MsgKind::Shutdown, vec![]);
    let ack = c.send(&wire::encode(&key(), &b), 5).expect("ack");
    assert_eq!(ack.seq, b.seq);
    let status = c.wait_exit(20).expect("exits after a signed shutdown");
    assert!(status.success(), "{status}");
    assert!(c.stderr_text().contains("stopped by a signed shutdown"));
    let kinds: Vec<_> = c.events().into_iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["shutdown"]);
    // The lock was released: a new collector starts on the same data.
    let again = Collector::start(dir.path(), &[]);
    assert_eq!(again.events().len(), 1);
}

#[test]
fn a_second_collector_exits_zero_without_a_word() {
    let dir = TempDir::new("single");
    let c = Collector::start(dir.path(), &[]);
    let out = command(dir.path(), free_udp(), free_tcp(), &[])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn restart_remembers_gateways_and_accepted_parts() {
    let dir = TempDir::new("restart");
    let mut c = Collector::start(dir.path(), &[]);
    let d = wire::encode(&key(), &body(MsgKind::Report, vec![tunnel(1), tunnel(2)]));
    assert_eq!(c.send(&d, 5).unwrap().text, "ok");
    let (udp, http) = (c.udp, c.http);
    c.kill9();
    let c = Collector::start_on(dir.path(), udp, http, &[]);
    let status = c.get("/status.json").body_text();
    assert!(status.contains(GW), "{status}");
    assert_eq!(
        c.metric(&format!("roctm_gateway_tunnels{{gateway=\"{GW}\"}} ")),
        2
    );
    // The same datagram again is a duplicate, not a new report.
    assert_eq!(c.send(&d, 5).unwrap().text, "duplicate");
    assert_eq!(c.events().len(), 1);
}

/// Sends reports one after another, each retried until acked, until told
/// to stop; returns the seqs that were acked.
fn steady_sender(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..100_000u32 {
        if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            break;
        }
        let b = body(MsgKind::Report, vec![tunnel(i % 7), tunnel(i % 7 + 1)]);
        if let Some(ack) = send_to(addr, &wire::encode(&key(), &b), 2)
            && ack.seq == b.seq
        {
            acked.push(b.seq);
        }
    }
    acked
}

#[test]
fn kill_9_under_load_loses_no_acked_report() {
    let dir = TempDir::new("kill9");
    let mut c = Collector::start(dir.path(), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, s) = (c.udp, stop.clone());
    let sender = std::thread::spawn(move || steady_sender(addr, s));
    // Kill it while the sender is busy.
    let busy = wait_for(30, || (c.outcome("accepted") >= 40).then_some(()));
    assert!(busy.is_some(), "load did not start");
    c.kill9();
    stop.store(true, Ordering::SeqCst);
    let acked = sender.join().unwrap();
    assert!(acked.len() >= 40);

    let (udp, http) = (c.udp, c.http);
    let c = Collector::start_on(dir.path(), udp, http, &[]);
    let events = c.events(); // asserts no unreadable row
    let written: std::collections::HashSet<u64> = events.iter().map(|e| e.seq).collect();
    let missing: Vec<_> = acked.iter().filter(|s| !written.contains(s)).collect();
    assert!(missing.is_empty(), "acked but not written: {missing:?}");
    // Every event row has its tunnel rows.
    let rows = c.tunnel_rows();
    for e in &events {
        let n = rows.iter().filter(|r| r.seq == e.seq).count();
        assert!(
            n >= e.tunnels as usize,
            "seq {}: {n} rows for {}",
            e.seq,
            e.tunnels
        );
    }
}

/// One burst sender: its own socket and gateway, `reports` reports of 3
/// tunnels sent in windows of 10, each datagram sent twice back to back (the
/// copy usually lands in the same receive batch), then the missing acks
/// resent. Returns the seqs acked "ok" or "duplicate".
fn burst_sender(addr: std::net::SocketAddr, sender: u64, reports: u64) -> Vec<u64> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let gateway = format!("burst-gw-{sender:02}");
    let base = now() * 1_000_000 + sender * 1_000;
    let mut acked = Vec::new();
    let mut buf = [0u8; 2048];
    let seqs: Vec<u64> = (0..reports).map(|j| base + j).collect();
    for window in seqs.chunks(10) {
        let datagrams: Vec<(u64, Vec<u8>)> = window
            .iter()
            .map(|&seq| {
                let b = Body {
                    gateway: gateway.clone(),
                    seq,
                    ..body(MsgKind::Report, vec![tunnel(1), tunnel(2), tunnel(3)])
                };
                (seq, wire::encode(&key(), &b))
            })
            .collect();
        let mut missing: std::collections::BTreeSet<u64> = window.iter().copied().collect();
        // At most 100 rounds of 200 ms: generous for a loaded machine, and bounded.
        for _ in 0..100 {
            for (seq, d) in &datagrams {
                if missing.contains(seq) {
                    sock.send_to(d, addr).unwrap();
                    sock.send_to(d, addr).unwrap();
                }
            }
            while !missing.is_empty() {
                let Ok((n, _)) = sock.recv_from(&mut buf) else {
                    break;
                };
                let Ok(ack) = wire::decode(&key(), &buf[..n]) else {
                    continue;
                };
                assert_eq!(ack.kind, MsgKind::Ack);
                assert!(["ok", "duplicate"].contains(&ack.text.as_str()), "{ack:?}");
                if missing.remove(&ack.seq) {
                    acked.push(ack.seq);
                }
            }
            if missing.is_empty() {
                break;
            }
        }
    }
    acked
}

#[test]
fn a_burst_from_64_senders_is_all_acked_and_all_written_once() {
    const SENDERS: u64 = 64;
    const REPORTS: u64 = 50;
    let dir = TempDir::new("burst");
    let c = Collector::start(dir.path(), &[]);
    let addr = c.udp;
    let threads: Vec<_> = (0..SENDERS)
        .map(|s| std::thread::spawn(move || (s, burst_sender(addr, s, REPORTS))))
        .collect();
    let mut acked = std::collections::BTreeSet::new();
    for t in threads {
        let (s, seqs) = t.join().unwrap();
        assert_eq!(seqs.len() as u64, REPORTS, "sender {s}: not all acked");
        for seq in seqs {
            acked.insert((format!("burst-gw-{s:02}"), seq));
        }
    }
    assert_eq!(acked.len() as u64, SENDERS * REPORTS);
    let events = c.events();
    let mut written = std::collections::BTreeMap::new();
    for e in &events {
        assert_eq!((e.kind.as_str(), e.part, e.tunnels), ("report", 1, 3));
        *written.entry((e.gateway.clone(), e.seq)).or_insert(0) += 1;
    }
    assert!(written.values().all(|&n| n == 1), "a part written twice");
    for a in &acked {
        assert!(written.contains_key(a), "acked but not written: {a:?}");
    }
    assert_eq!(events.len() as u64, SENDERS * REPORTS);
    assert_eq!(c.tunnel_rows().len() as u64, SENDERS * REPORTS * 3);
    assert_eq!(c.outcome("accepted"), SENDERS * REPORTS);
    assert_eq!(
        c.metric("roctm_collector_acks_total{status=\"ok\"} "),
        SENDERS * REPORTS
    );
    // The copies (those the socket's receive buffer did not drop).
    assert!(c.outcome("replay") > 0);
    assert_eq!(c.outcome("write_error"), 0);
    assert_eq!(
        c.metric("roctm_collector_reports_completed_total "),
        SENDERS * REPORTS
    );
}
