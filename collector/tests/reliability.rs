//! Regression tests for the faults of issue 17, each named after its bug,
//! against the real collector on 127.0.0.1: a dead stderr, log files
//! deleted or replaced under it, a clock that jumped, a key file that
//! blocks, and key holders who flood one gateway's replay guard, pending
//! reports or tunnel list.

mod common;

use std::process::{Command, Stdio};

use common::*;
use gateway_client::wire::{self, MsgKind};

/// A report of `n` tunnels, signed, as one datagram.
fn report(n: u32) -> Vec<u8> {
    wire::encode(&key(), &body(MsgKind::Report, (0..n).map(tunnel).collect()))
}

#[test]
fn a_dead_stderr_pipe_does_not_abort_the_collector() {
    let dir = TempDir::new("dead-stderr");
    write_key(dir.path());
    let (udp, http) = (free_udp(), free_tcp());
    let mut child = command(dir.path(), udp, http, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let up = wait_for(20, || get(http, "/healthz").filter(|r| r.status == 200));
    assert!(up.is_some(), "the collector did not answer HTTP");
    // The reader of stderr goes away: every log line now fails with EPIPE.
    drop(child.stderr.take());
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..20 {
        sock.send_to(b"hello", udp).unwrap();
    }
    let ack = send_to(udp, &report(1), 10);
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "the collector died after a log line to a dead pipe");
    assert!(ack.is_some(), "no ack after log lines to a dead pipe");
}

#[test]
fn deleted_log_files_are_recreated_before_the_ack() {
    let dir = TempDir::new("deleted-logs");
    let c = Collector::start(dir.path(), &[]);
    assert!(c.send(&report(2), 10).is_some());
    for f in logs::files::list(&c.data).unwrap() {
        std::fs::remove_file(&f.path).unwrap();
    }
    let b = body(MsgKind::Message, Vec::new());
    let seq = b.seq;
    assert!(c.send(&wire::encode(&key(), &b), 10).is_some());
    let r = body(MsgKind::Report, vec![tunnel(7)]);
    let report_seq = r.seq;
    assert!(c.send(&wire::encode(&key(), &r), 10).is_some());
    // What was acked after the rm is in the files the paths name now.
    let events = c.events();
    assert!(events.iter().any(|e| e.seq == seq), "{events:?}");
    assert!(events.iter().any(|e| e.seq == report_seq), "{events:?}");
    assert!(c.tunnel_rows().iter().any(|t| t.seq == report_seq));
    assert!(c.metric("roctm_collector_log_files_reopened_total ") >= 1);
    assert!(c.stderr_text().contains("reopened"), "{}", c.stderr_text());
}

#[test]
fn a_log_file_replaced_by_a_directory_is_never_acked_into() {
    let dir = TempDir::new("dir-logs");
    let c = Collector::start(dir.path(), &[]);
    assert!(c.send(&report(1), 10).is_some());
    let events = logs::files::list(&c.data)
        .unwrap()
        .into_iter()
        .find(|f| f.kind == logs::LogKind::Events)
        .unwrap()
        .path;
    std::fs::remove_file(&events).unwrap();
    std::fs::create_dir(&events).unwrap();
    let b = body(MsgKind::Message, Vec::new());
    assert!(
        c.send(&wire::encode(&key(), &b), 3).is_none(),
        "acked though its event file is a directory"
    );
    assert!(c.outcome("write_error") >= 1);
    std::fs::remove_dir(&events).unwrap();
    assert!(c.send(&wire::encode(&key(), &b), 10).is_some());
    assert!(c.events().iter().any(|e| e.seq == b.seq));
}

/// An empty log file (its header only) of `kind` for the day `days` from
/// today (negative: before).
fn log_file(data: &std::path::Path, kind: logs::LogKind, days: i64) -> std::path::PathBuf {
    let day = logs::files::day_of(now())
        .checked_add(jiff::Span::new().days(days))
        .unwrap();
    let path = data.join(logs::schema::file_name(kind, day));
    std::fs::write(&path, format!("{}\n", kind.header().join(","))).unwrap();
    path
}

#[test]
fn a_clock_far_ahead_of_the_logs_deletes_no_history() {
    // As after `faketime +150d`: every file held is older than --keep-days
    // by the clock. And one file dated after today.
    let dir = TempDir::new("clock-jump");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut files: Vec<_> = (150..200)
        .map(|d| log_file(&data, logs::LogKind::Events, -d))
        .collect();
    files.push(log_file(&data, logs::LogKind::Tunnels, 30));
    let c = Collector::start(dir.path(), &["--keep-days", "90"]);
    assert!(c.send(&report(1), 10).is_some());
    for f in &files {
        assert!(f.exists(), "{} was deleted", f.display());
    }
    let stderr = c.stderr_text();
    assert!(
        stderr.contains("retention: not deleting any log file"),
        "{stderr}"
    );
    assert!(stderr.contains("after today"), "{stderr}");
}

/// The pids of `gateway`'s tunnels in `status.json`.
fn status_pids(c: &Collector, gateway: &str) -> Vec<u32> {
    let text = c.get("/status.json").body_text();
    let start = text
        .find(&format!("\"name\":\"{gateway}\""))
        .unwrap_or_else(|| panic!("{gateway} not in {text}"));
    let rest = &text[start..];
    let end = rest[1..].find("\"name\":\"").map_or(rest.len(), |i| i + 1);
    rest[..end]
        .split("\"pid\":")
        .skip(1)
        .map(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// Waits until the clock's second is past `t` (reports a second apart
/// complete in that order whatever their seq).
fn next_second(t: u64) {
    assert!(wait_for(5, || (now() > t).then_some(())).is_some());
}

fn report_with(seq: u64, sent: u64, tunnels: Vec<gateway_client::tunnel::Tunnel>) -> Vec<u8> {
    let mut b = body(MsgKind::Report, tunnels);
    b.seq = seq;
    b.sent = sent;
    wire::encode(&key(), &b)
}

#[test]
fn a_clock_step_back_does_not_hide_the_next_reports() {
    let dir = TempDir::new("step-back");
    let c = Collector::start(dir.path(), &[]);
    let t = now();
    // Under a clock 240 s ahead, then at the right time.
    let ahead = report_with((t + 240) * 1_000_000, t + 240, vec![tunnel(1)]);
    assert!(c.send(&ahead, 10).is_some());
    next_second(t);
    let right = report_with(t * 1_000_000, t, vec![tunnel(2)]);
    assert!(c.send(&right, 10).is_some());
    assert_eq!(status_pids(&c, GW), [tunnel(2).pid]);
    assert_eq!(c.metric("roctm_collector_reports_out_of_order_total "), 1);
    assert!(
        c.stderr_text().contains("stepped back"),
        "{}",
        c.stderr_text()
    );
}

#[test]
fn a_report_with_seq_2_64_minus_1_does_not_freeze_the_gateway() {
    let dir = TempDir::new("max-seq");
    let mut c = Collector::start(dir.path(), &[]);
    let t = now();
    assert!(
        c.send(&report_with(u64::MAX, t, vec![tunnel(1)]), 10)
            .is_some()
    );
    next_second(t);
    assert!(
        c.send(&report_with(t * 1_000_000, t, vec![tunnel(2)]), 10)
            .is_some()
    );
    assert_eq!(status_pids(&c, GW), [tunnel(2).pid]);
    // The same after a restart, which reads the logs back.
    let (udp, http) = (c.udp, c.http);
    c.kill9();
    let c = Collector::start_on(dir.path(), udp, http, &[]);
    assert_eq!(status_pids(&c, GW), [tunnel(2).pid]);
}

/// The parts of a report of `n` tunnels from `gateway`.
fn split_report(gateway: &str, n: u32) -> Vec<Vec<u8>> {
    let mut b = body(MsgKind::Report, (0..n).map(tunnel).collect());
    b.gateway = gateway.into();
    wire::encode_all(&key(), &b)
        .unwrap()
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

#[test]
fn an_acked_split_report_survives_a_burst_of_other_incomplete_reports() {
    let dir = TempDir::new("pending-burst");
    let c = Collector::start(dir.path(), &[]);
    let real = split_report(GW, 20);
    assert!(real.len() >= 2, "the report did not split");
    assert!(c.send(&real[0], 10).is_some());
    // 100 incomplete reports of ten other gateways between its parts, a
    // second later (so that its report is the oldest waiting).
    next_second(now());
    for i in 0..100 {
        let other = split_report(&format!("other-gateway-{}", i % 10), 20);
        assert!(c.send(&other[0], 10).is_some());
    }
    for part in &real[1..] {
        assert!(c.send(part, 10).is_some());
    }
    assert_eq!(status_pids(&c, GW).len(), 20);
    // What the burst pushed out was counted and said.
    assert_eq!(
        c.metric("roctm_collector_reports_dropped_total{reason=\"evicted\"} "),
        60
    );
    assert!(c.stderr_text().contains("gave up report seq"));
}

#[test]
fn a_report_of_many_tunnels_is_capped_in_the_state() {
    let dir = TempDir::new("tunnel-cap");
    let c = Collector::start(dir.path(), &[]);
    for part in split_report(GW, 600) {
        assert!(c.send(&part, 10).is_some());
    }
    assert_eq!(status_pids(&c, GW).len(), 512);
    assert_eq!(c.metric("roctm_collector_tunnels_capped_total "), 1);
    assert_eq!(c.tunnel_rows().len(), 600, "the logs keep every tunnel");
}

/// GET `path` from the source address `from` (any 127.x address is
/// loopback on Linux); `None` when the connection fails.
fn get_from(from: &str, to: std::net::SocketAddr, path: &str) -> Option<Reply> {
    use std::io::{Read, Write};
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&local.into()).ok()?;
    sock.connect_timeout(&to.into(), std::time::Duration::from_secs(2))
        .ok()?;
    let mut s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut all = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some(Reply {
        status,
        head: text.clone(),
        body: all,
    })
}

#[test]
fn one_slow_http_client_does_not_deny_the_others() {
    let dir = TempDir::new("http-share");
    let c = Collector::start(dir.path(), &[]);
    // 40 connections from one address that send half a head and wait.
    let slow: Vec<std::net::TcpStream> = (0..40)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(c.http).ok()?;
            std::io::Write::write_all(&mut s, b"GET /status.json HTTP/1.1\r\nHost:").ok()?;
            Some(s)
        })
        .collect();
    assert_eq!(slow.len(), 40);
    let mut codes = Vec::new();
    for _ in 0..50 {
        codes.push(get_from("127.0.0.2", c.http, "/status.json").map(|r| r.status));
    }
    let ok = codes.iter().filter(|c| **c == Some(200)).count();
    assert_eq!(ok, 50, "fetches from another address: {codes:?}");
    drop(slow);
}

#[test]
fn a_key_file_that_is_a_fifo_does_not_hang_the_collector() {
    let dir = TempDir::new("key-fifo");
    let fifo = dir.path().join("key");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils) is needed for this test");
    assert!(made.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stderr = dir.path().join("stderr");
    let mut child = command(dir.path(), free_udp(), free_tcp(), &[])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let status = wait_for(30, || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = std::fs::read_to_string(&stderr).unwrap();
    let status = status.expect("the collector hung on a FIFO as its key file");
    assert!(!status.success(), "{text}");
    assert!(text.contains("a FIFO, not a regular file"), "{text}");
}

/// A datagram in `gateway`'s name sent `ago` seconds ago.
fn stale_from(gateway: &str, ago: u64) -> Vec<u8> {
    let mut b = body(MsgKind::Heartbeat, Vec::new());
    b.gateway = gateway.into();
    b.sent -= ago;
    wire::encode(&key(), &b)
}

#[test]
fn a_second_refused_gateway_is_named_though_the_first_keeps_retrying() {
    let dir = TempDir::new("diagnose");
    let c = Collector::start(dir.path(), &[]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..30 {
        sock.send_to(&stale_from("first-gateway", 1000), c.udp)
            .unwrap();
    }
    sock.send_to(&stale_from("second-gateway", 1000), c.udp)
        .unwrap();
    let mut bad = wire::encode(&key(), &body(MsgKind::Heartbeat, Vec::new()));
    let last = bad.len() - 2;
    bad[last] ^= 1;
    sock.send_to(&bad, c.udp).unwrap();
    assert!(c.send(&report(1), 10).is_some());
    let named = wait_for(10, || {
        c.stderr_text().contains("second-gateway").then_some(())
    });
    assert!(named.is_some(), "{}", c.stderr_text());
    // status.json names the last refusal of each reason: the gateway when
    // the signature checked out, the source address always.
    let status = wait_for(10, || {
        let s = c.get("/status.json").body_text();
        s.contains("\"reason\":\"bad_signature\"").then_some(s)
    })
    .expect("no bad_signature refusal in status.json");
    assert!(
        status.contains("\"gateway\":\"second-gateway\""),
        "{status}"
    );
    assert!(status.contains("\"reason\":\"stale\""), "{status}");
}

#[test]
fn a_stale_datagram_gets_a_signed_refusal_that_old_clients_ignore() {
    let dir = TempDir::new("refusal");
    let c = Collector::start(dir.path(), &[]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let stale = stale_from(GW, 1000);
    sock.send_to(&stale, c.udp).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).expect("no refusal came back");
    let reply = &buf[..n];
    // An older client's decode does not take it for an ack.
    assert!(wire::decode(&key(), reply).is_err());
    let text = String::from_utf8_lossy(reply);
    let (header, body) = text.split_once('\n').unwrap();
    let signed = wire::frame(&key(), body.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&signed).split_once('\n').unwrap().0,
        header
    );
    assert!(body.contains("\"kind\":\"refusal\""), "{body}");
    assert!(body.contains("\"text\":\"stale: "), "{body}");
}

#[test]
fn the_client_says_when_the_collector_cannot_write() {
    let dir = TempDir::new("client-write-error");
    let c = Collector::start(dir.path(), &[]);
    assert!(c.send(&report(1), 10).is_some());
    for f in logs::files::list(&c.data).unwrap() {
        std::fs::remove_file(&f.path).unwrap();
        std::fs::create_dir(&f.path).unwrap();
    }
    let out = Command::new(client_bin())
        .args(["--config", "/dev/null", "-a", "127.0.0.1", "-p"])
        .arg(c.udp.port().to_string())
        .args(["--timeout", "3", "--name", GW, "-b", "--key-file"])
        .arg(&c.key_file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could not write the report") && stderr.contains("disk may be full"),
        "{stderr}"
    );
}

#[test]
fn a_data_directory_whose_log_file_cannot_be_opened_exits_2() {
    let dir = TempDir::new("data-exit-2");
    write_key(dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let events = data.join(logs::schema::file_name(
        logs::LogKind::Events,
        logs::files::day_of(now()),
    ));
    std::fs::create_dir(&events).unwrap();
    let out = command(dir.path(), free_udp(), free_tcp(), &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&events.display().to_string()), "{stderr}");
}
