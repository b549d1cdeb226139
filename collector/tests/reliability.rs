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
