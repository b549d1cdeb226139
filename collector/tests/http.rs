//! The HTTP side of the real collector: logs and site served only by listed
//! names, traversal (plain and percent-encoded), methods, oversized and slow
//! requests, Content-Type and Content-Length, `promtool check metrics`, and a
//! real Prometheus server scraping the collector.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gateway_client::wire::{self, MsgKind};

fn collector_with_a_report(name: &str, extra: &[&str]) -> (TempDir, Collector) {
    let dir = TempDir::new(name);
    let c = Collector::start(dir.path(), extra);
    let b = body(MsgKind::Report, vec![tunnel(1), tunnel(2)]);
    assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    (dir, c)
}

#[test]
fn logs_are_listed_and_served_as_csv() {
    let (_dir, c) = collector_with_a_report("logs", &[]);
    let day = logs::files::day_of(now());
    let name = format!("events-{day}.csv");
    let index = c.get("/logs/");
    assert_eq!(index.status, 200);
    assert!(index.body_text().contains(&name), "{}", index.body_text());
    assert!(
        index.body_text().contains("<a href=\"/\">"),
        "no link back to the site: {}",
        index.body_text()
    );
    let f = c.get(&format!("/logs/{name}"));
    assert_eq!(f.status, 200);
    assert_eq!(
        f.header("Content-Type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let on_disk = std::fs::read(c.data.join(&name)).unwrap();
    assert_eq!(f.body, on_disk);
    assert_eq!(f.header("Content-Length"), Some(on_disk.len().to_string()));
    assert_eq!(c.get("/logs").status, 301);
    assert_eq!(c.get("/logs/events-1999-01-01.csv").status, 404);
}

#[test]
fn traversal_methods_and_oversized_requests_get_4xx() {
    let dir = TempDir::new("traversal");
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>site</h1>").unwrap();
    std::fs::write(site.join("history.html"), "<h1>history</h1>").unwrap();
    std::fs::write(site.join("sub/secret.txt"), "TOP-SECRET").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOP-SECRET").unwrap();
    let c = Collector::start(dir.path(), &["--site", site.to_str().unwrap()]);

    let home = c.get("/");
    assert_eq!(
        (home.status, home.body_text().as_str()),
        (200, "<h1>site</h1>")
    );
    assert_eq!(
        home.header("Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(c.get("/history.html?range=week").status, 200);

    for path in [
        "/../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/logs/../collector.lock",
        "/logs/%2e%2e%2fcollector.lock",
        "/logs/..%2f..%2fsecret.txt",
        "/logs/collector.lock",
        "/collector.lock",
        "/sub/secret.txt",
        "/sub%2fsecret.txt",
        "/.http/s",
        "/%00",
        "/%ff",
        "/etc/passwd",
        "//etc/passwd",
    ] {
        let r = c.get(path);
        assert!((400..500).contains(&r.status), "{path}: {}", r.status);
        assert!(!r.body_text().contains("TOP-SECRET"), "{path} leaked");
    }
    for (request, want) in [
        (
            "POST /status.json HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_string(),
            405,
        ),
        ("DELETE /logs/ HTTP/1.1\r\n\r\n".to_string(), 405),
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)), 414),
        (
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(20_000)),
            431,
        ),
        ("GET ../../etc/passwd HTTP/1.1\r\n\r\n".to_string(), 400),
        ("garbage\r\n\r\n".to_string(), 400),
    ] {
        let r = raw(c.http, request.as_bytes()).expect("an answer");
        assert_eq!(r.status, want, "{}", &request[..request.len().min(40)]);
    }
    let head = raw(c.http, b"HEAD /status.json HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(c.get("/healthz").status, 200, "still serving");
}

#[test]
fn idle_and_slow_clients_do_not_stall_others() {
    let (_dir, c) = collector_with_a_report("slow", &[]);
    // Idle connections that never send a byte, and one that sends half a head.
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(c.http).unwrap())
        .collect();
    idle[0]
        .write_all(b"GET /status.json HTTP/1.1\r\nHost:")
        .unwrap();
    for _ in 0..5 {
        let r = c.get("/status.json");
        assert_eq!(r.status, 200);
    }
    // A flood beyond the connection limit is refused, not queued forever.
    let more: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(c.http).ok())
        .collect();
    drop(more);
    drop(idle);
    let back = wait_for(20, || get(c.http, "/healthz").filter(|r| r.status == 200));
    assert!(back.is_some());
}

/// A thousand connections that never send a byte: each is answered (503 at
/// once beyond the connection limit, 408 when its head never comes) or
/// closed, UDP ingest acks all the while, and HTTP serves again afterwards.
#[test]
fn a_thousand_idle_connections_are_answered_or_closed_and_ingest_goes_on() {
    let (_dir, c) = collector_with_a_report("idle-1000", &[]);
    let mut conns = Vec::new();
    let mut not_connected = 0;
    for _ in 0..1000 {
        match TcpStream::connect_timeout(&c.http, Duration::from_secs(2)) {
            Ok(s) => conns.push(s),
            Err(_) => not_connected += 1,
        }
    }
    let heartbeat = wire::encode(&key(), &body(MsgKind::Heartbeat, Vec::new()));
    assert!(
        c.send(&heartbeat, 10).is_some(),
        "no ack while 1,000 HTTP connections were open"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut answered, mut closed, mut stuck) = (0, 0, 0);
    for s in &mut conns {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        s.set_read_timeout(Some(left)).unwrap();
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => closed += 1,
            Ok(n) if buf[..n].starts_with(b"HTTP/1.") => answered += 1,
            Ok(n) => panic!(
                "not an HTTP answer: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                closed += 1
            }
            Err(_) => stuck += 1,
        }
    }
    eprintln!("answered {answered}, closed {closed}, not connected {not_connected}, stuck {stuck}");
    assert_eq!(
        stuck, 0,
        "connections neither answered nor closed within 60 s"
    );
    assert_eq!(answered + closed + not_connected, 1000);
    drop(conns);
    let again = wire::encode(&key(), &body(MsgKind::Heartbeat, Vec::new()));
    assert!(c.send(&again, 10).is_some());
    let back = wait_for(20, || {
        get(c.http, "/status.json").filter(|r| r.status == 200)
    });
    assert!(
        back.is_some(),
        "HTTP did not come back: {}",
        c.stderr_text()
    );
}

#[test]
fn large_answers_are_not_chunked() {
    let dir = TempDir::new("large");
    let c = Collector::start(dir.path(), &[]);
    // Enough tunnel rows for a log file well over 32 KiB.
    for i in 0..5 {
        let b = body(
            MsgKind::Report,
            (0..200).map(|j| tunnel(i * 200 + j)).collect(),
        );
        for (_, d) in wire::encode_all(&key(), &b).unwrap() {
            assert!(c.send(&d, 5).is_some());
        }
    }
    let name = format!("tunnels-{}.csv", logs::files::day_of(now()));
    let r = c.get(&format!("/logs/{name}"));
    assert!(r.body.len() > 100_000, "{}", r.body.len());
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string()));
}

fn need(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{tool} is needed for this test: apt-get install -y prometheus"
    );
}

#[test]
fn promtool_accepts_the_metrics() {
    need("promtool");
    let (_dir, c) = collector_with_a_report("promtool", &[]);
    let _ = c.send(b"junk", 1);
    let metrics = c.get("/metrics");
    assert_eq!(
        metrics.header("Content-Type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.body_text();
    for want in [
        "roctm_collector_build_info{version=",
        &format!("roctm_gateway_last_seen_timestamp_seconds{{gateway=\"{GW}\"}} "),
        &format!("roctm_gateway_state{{gateway=\"{GW}\",state=\"up\"}} 1"),
        &format!("roctm_gateway_tunnels{{gateway=\"{GW}\"}} 2"),
        "roctm_collector_datagrams_total{outcome=\"malformed\"} 1",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills the Prometheus server this test started.
struct Killer(std::process::Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_collector() {
    need("prometheus");
    let (dir, c) = collector_with_a_report("prometheus", &[]);
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: collector\n    static_configs:\n      - targets: ['{}']\n",
            c.http
        ),
    )
    .unwrap();
    let web = free_tcp();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prom = Killer(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let query = format!("/api/v1/query?query=roctm_gateway_tunnels%7Bgateway%3D%22{GW}%22%7D");
    let scraped = wait_for(90, || {
        let targets = get(web, "/api/v1/targets")?.body_text();
        if !targets.contains("\"health\":\"up\"") {
            return None;
        }
        let r = get(web, &query)?.body_text();
        r.contains("\"2\"").then_some(r)
    });
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    let r = scraped.unwrap_or_else(|| panic!("Prometheus did not scrape the collector:\n{log}"));
    assert!(r.contains("\"status\":\"success\""), "{r}");
}
