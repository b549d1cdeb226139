//! What holds alerts back, on the status page: the silences active now
//! (the config file's `[[silence]]` and a gateway's `gateway-client
//! --maintenance`, read back from the `maintenance` events of the logs)
//! and the expected tunnels flapping by the collector's damping rule.
//!
//! The logs are written here, row by row, with a controlled clock: a
//! gateway reports every minute for half an hour; its expected tunnel on
//! 5901 goes and comes back every two minutes from minute 10 to 20 (five
//! alerting changes, more than `flap = 4` within an hour), then stays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use gateway_client::tunnel::{Health, Kind, Tunnel};
use logs::EventKind;
use logs::schema::{EventRow, LogKind, TunnelRow};
use scraper::{Html, Selector};

const GW: &str = "novadaq-far-gateway-01";
/// 2026-11-23T12:00:00Z
const T0: u64 = 1_795_435_200;

fn fresh_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "silences-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn event(received: u64, kind: EventKind, tunnels: u32, text: &str, until: Option<u64>) -> EventRow {
    EventRow {
        received,
        gateway: GW.into(),
        kind,
        // A maintenance request's seq differs from a report's of the same second.
        seq: received * 1_000_000 + u64::from(kind == EventKind::Maintenance),
        part: 1,
        parts: 1,
        sent: received,
        source: "127.0.0.1:40000".into(),
        tunnels,
        text: text.into(),
        period: None,
        until,
    }
}

fn tunnel(port: u16) -> Tunnel {
    Tunnel {
        pid: 4000 + u32::from(port),
        user: "novacr01".into(),
        kind: Kind::Local,
        bind: String::new(),
        listen_port: port,
        target_host: "novadaq-far-master-02".into(),
        target_port: 5951,
        dest: GW.into(),
        started: Some(T0 - 3600),
        start: "11:00".into(),
        cpu_time: "0:01".into(),
        listening: Health::Yes,
        vnc: Health::Unknown,
        connections: None,
        connected: Vec::new(),
    }
}

/// Writes the day's two files: reports every minute from T0 for 30
/// minutes (5902 always there, 5901 absent in minutes 10-11, 14-15 and
/// 18-19), and the `maintenance` events given.
fn write_logs(dir: &Path, maintenance: &[EventRow]) {
    let mut events = Vec::new();
    let mut tunnels = Vec::new();
    for minute in 0..30u64 {
        let t = T0 + minute * 60;
        let gone = (10..20).contains(&minute) && (minute / 2) % 2 == 1;
        let mut list = vec![tunnel(5902)];
        if !gone {
            list.push(tunnel(5901));
        }
        let e = event(t, EventKind::Report, list.len() as u32, "", None);
        for tun in list {
            tunnels.push(TunnelRow {
                received: t,
                gateway: GW.into(),
                seq: e.seq,
                part: 1,
                tunnel: tun,
            });
        }
        events.push(e);
    }
    events.extend(maintenance.iter().cloned());
    events.sort_by_key(|e| e.received);
    let day = "2026-11-23";
    let mut w = csv::Writer::from_path(dir.join(format!("events-{day}.csv"))).unwrap();
    w.write_record(LogKind::Events.header()).unwrap();
    for e in &events {
        w.write_record(e.to_record()).unwrap();
    }
    w.flush().unwrap();
    let mut w = csv::Writer::from_path(dir.join(format!("tunnels-{day}.csv"))).unwrap();
    w.write_record(LogKind::Tunnels.header()).unwrap();
    for t in &tunnels {
        w.write_record(t.to_record()).unwrap();
    }
    w.flush().unwrap();
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("monitor.toml");
    let text = format!(
        r#"late = "150s"
down = "10m"
tz = "UTC"
flap = 4

[[silence]]
roc = "Fermilab"
from = "2026-11-23T11:00:00Z"
until = "2026-11-23T14:00:00Z"
reason = "control room move"

[[silence]]
gateway = "{GW}"
from = "2026-11-22T11:00:00Z"
until = "2026-11-22T14:00:00Z"
reason = "long over"

[[tunnel]]
gateway = "{GW}"
listen = 5901
target = "novadaq-far-master-02:5951"
roc = "Caltech"

[[tunnel]]
gateway = "{GW}"
listen = 5902
target = "novadaq-far-master-02:5951"
roc = "Fermilab"
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs webgen at `now` and returns the status page.
fn index(data: &Path, now: u64) -> Html {
    let out = data.join("out");
    let config = config(data);
    Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .args(["--now", &now.to_string(), "-q"])
        .assert()
        .success();
    Html::parse_document(&std::fs::read_to_string(out.join("index.html")).unwrap())
}

/// (data-origin, data-gateway, data-roc, data-until, reason) of each listed
/// silence.
fn silences(page: &Html) -> Vec<(String, String, String, String, String)> {
    let li = Selector::parse("#silences li.silence").unwrap();
    let reason = Selector::parse(".reason").unwrap();
    page.select(&li)
        .map(|e| {
            let a = |n: &str| e.value().attr(n).unwrap_or("").to_string();
            let r = e
                .select(&reason)
                .next()
                .map(|r| r.text().collect::<String>())
                .unwrap_or_default();
            (
                a("data-origin"),
                a("data-gateway"),
                a("data-roc"),
                a("data-until"),
                r,
            )
        })
        .collect()
}

/// The listen ports of the ROC panels' rows marked flapping.
fn flapping(page: &Html) -> Vec<String> {
    let row = Selector::parse("tr.expected").unwrap();
    let badge = Selector::parse(".badge.flapping").unwrap();
    page.select(&row)
        .filter(|r| r.select(&badge).next().is_some())
        .map(|r| r.value().attr("data-listen").unwrap_or("").to_string())
        .collect()
}

#[test]
fn active_silences_are_listed_with_scope_reason_end_and_origin() {
    let dir = fresh_dir("listed");
    // Asked at minute 20 for an hour by the gateway, whose clock is 30 s
    // behind: silenced from the collector's T0+1200 to T0+4800.
    let mut m = event(T0 + 1200, EventKind::Maintenance, 0, "kernel update", None);
    m.sent = T0 + 1170;
    m.until = Some(T0 + 1170 + 3600);
    write_logs(&dir, &[m]);
    let page = index(&dir, T0 + 1800);
    let want_end = (T0 + 4800).to_string();
    assert_eq!(
        silences(&page),
        [
            (
                "gateway".to_string(),
                GW.to_string(),
                String::new(),
                want_end,
                "kernel update".to_string()
            ),
            (
                "config".to_string(),
                String::new(),
                "Fermilab".to_string(),
                "1795442400".to_string(),
                "control room move".to_string()
            ),
        ],
        "ending soonest first; the silence of the day before is not listed"
    );
    // After its end it is no longer listed (the config's is over too).
    assert!(silences(&index(&dir, T0 + 4800 + 7200)).is_empty());
}

#[test]
fn maintenance_0_ends_the_gateways_silence() {
    let dir = fresh_dir("ended");
    let mut start = event(T0 + 600, EventKind::Maintenance, 0, "kernel update", None);
    start.until = Some(T0 + 600 + 7200);
    let end = event(T0 + 900, EventKind::Maintenance, 0, "", Some(T0 + 900));
    write_logs(&dir, &[start.clone()]);
    let origins = |p: &Html| silences(p).into_iter().map(|s| s.0).collect::<Vec<_>>();
    assert_eq!(origins(&index(&dir, T0 + 1800)), ["config", "gateway"]);
    write_logs(&dir, &[start, end]);
    assert_eq!(origins(&index(&dir, T0 + 1800)), ["config"]);
}

#[test]
fn a_tunnel_that_changed_state_too_often_is_marked_flapping_until_steady_for_an_hour() {
    let dir = fresh_dir("flapping");
    write_logs(&dir, &[]);
    // Five changes of 5901 in minutes 10-20 (missing, up, missing, up,
    // missing, up: the fifth flaps); 5902 never changed.
    assert_eq!(flapping(&index(&dir, T0 + 1800)), ["5901"]);
    // The last change was at minute 20; steady for an hour after it, no
    // longer. (The gateway is silent by then, which does not change it.)
    assert_eq!(flapping(&index(&dir, T0 + 1200 + 3599)), ["5901"]);
    assert!(flapping(&index(&dir, T0 + 1200 + 3600)).is_empty());
}
