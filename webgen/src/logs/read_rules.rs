//! The log reader's rules, checked on the fixture logs and on small logs
//! written here: what counts, what is skipped, what is counted once.

use std::path::{Path, PathBuf};

use crate::logs::{self, Catalog, Event, Report, Visitor};
use ::logs::EventKind;
use jiff::civil::date;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/logs")
        .join(name)
}

/// Records the stream as text lines, to compare with hand-written ones.
#[derive(Default)]
struct Record(Vec<String>);

impl Visitor for Record {
    fn event(&mut self, c: &Catalog, e: &Event) {
        if e.kind != EventKind::Report {
            self.0.push(format!(
                "{} {} {:?} {}",
                e.received,
                c.gateway(e.gateway),
                e.kind,
                e.text
            ));
        }
    }
    fn report(&mut self, c: &Catalog, r: &Report<'_>) {
        let mut ports: Vec<String> = r
            .tunnels
            .iter()
            .map(|o| c.tunnel(o.id).tunnel.listen_port.to_string())
            .collect();
        ports.sort();
        self.0.push(format!(
            "{} {} report {}",
            r.received,
            c.gateway(r.gateway),
            ports.join(",")
        ));
    }
}

fn read(dir: &Path, until: u64) -> (logs::ReadStats, Vec<String>) {
    let mut catalog = Catalog::default();
    let mut rec = Record::default();
    let stats = logs::read(
        dir,
        date(2026, 1, 1),
        date(2027, 1, 1),
        until,
        &mut catalog,
        &mut rec,
    )
    .unwrap();
    (stats, rec.0)
}

#[test]
fn fixture_counts() {
    let (stats, lines) = read(&fixture("two-gateways"), u64::MAX);
    assert_eq!(stats.malformed(), 5);
    assert_eq!(stats.orphan_rows, 1, "the 'ghost' row without an event row");
    // The retransmitted report: one event row and three tunnel rows again.
    assert_eq!(stats.duplicate_rows, 4);
    assert_eq!(stats.incomplete_reports, 1);
    assert_eq!(stats.first_received, Some(1_795_381_210)); // 2026-11-22 21:00:10
    assert_eq!(stats.last_received, Some(1_795_456_780)); // 17:59:40
    let reports = lines.iter().filter(|l| l.contains(" report ")).count();
    assert_eq!(reports, 40 + 26);
    // The two-part report of 17:50:40 holds all its tunnels.
    assert!(lines.contains(&"1795456240 novadaq-far-gateway-01 report 5900,5901,5910".to_string()));
    assert!(!lines.iter().any(|l| l.contains("5920")));
}

fn write_logs(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("logs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

const EV: &str = "received,gateway,kind,seq,part,parts,sent,source,tunnels,text\n";
const TU: &str = "received,gateway,seq,part,pid,user,kind,bind,listen_port,target_host,target_port,dest,started,start,cpu_time,listening,vnc\n";

#[test]
fn retransmission_after_midnight_counts_once() {
    // A report acked late: written at 23:59:59 and again at 00:00:01.
    let ev1 = format!(
        "{EV}1795392000,g,report,7,1,1,1795391999,1.2.3.4:5,1,\n1795391999,g,report,7,1,1,1795391999,1.2.3.4:5,1,\n"
    );
    let tu1 = format!("{TU}1795391999,g,7,1,10,u,L,,5900,h,5901,h,,,,yes,yes\n");
    let ev2 = format!(
        "{EV}1795392001,g,report,7,1,1,1795391999,1.2.3.4:5,1,\n1795392060,g,message,8,1,1,1795392060,1.2.3.4:5,0,hi\n"
    );
    let tu2 = format!("{TU}1795392001,g,7,1,10,u,L,,5900,h,5901,h,,,,yes,yes\n");
    let dir = write_logs(
        "midnight",
        &[
            ("events-2026-11-22.csv", &ev1),
            ("tunnels-2026-11-22.csv", &tu1),
            ("events-2026-11-23.csv", &ev2),
            ("tunnels-2026-11-23.csv", &tu2),
        ],
    );
    let (stats, lines) = read(&dir, u64::MAX);
    assert_eq!(
        lines,
        ["1795392000 g report 5900", "1795392060 g Message hi"],
        "one report; the rows are sorted by received within the day"
    );
    assert_eq!(stats.duplicate_rows, 2);
    assert_eq!(stats.malformed(), 0);
}

#[test]
fn wrong_header_skips_the_file_and_says_so() {
    let dir = write_logs(
        "header",
        &[
            ("events-2026-11-23.csv", "when,who\n1795392000,g\n"),
            ("notes.csv", "x\n"),
        ],
    );
    let (stats, lines) = read(&dir, u64::MAX);
    assert!(lines.is_empty());
    let w = stats.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].ends_with("header is not 'received,gateway,kind,seq,part,parts,sent,source,tunnels,text,period,until': file skipped"));
}

#[test]
fn bad_bytes_and_impossible_parts_are_malformed() {
    let mut ev = EV.as_bytes().to_vec();
    ev.extend_from_slice(b"1795392000,g,message,1,1,1,1795392000,a,0,caf\xe9\n");
    ev.extend_from_slice(b"1795392001,g,report,2,3,2,1795392000,a,0,\n");
    ev.extend_from_slice(b"1795392002,g,report,3,1,1,1795392000,a,1,\n");
    let dir = write_logs("bytes", &[]);
    std::fs::write(dir.join("events-2026-11-23.csv"), ev).unwrap();
    std::fs::write(
        dir.join("tunnels-2026-11-23.csv"),
        format!("{TU}1795392002,g,3,1,10,u,X,,5900,h,5901,h,,,,yes,yes\n1795392002,g,3,1,10,u,L,,5900,h,5901,h,,,,maybe,yes\n"),
    )
    .unwrap();
    let (stats, lines) = read(&dir, u64::MAX);
    // The report announced one tunnel and its only row was malformed.
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(stats.malformed(), 4);
    assert_eq!(stats.damaged_reports, 1);
}

#[test]
fn rows_after_now_are_not_read() {
    let (_, lines) = read(&fixture("two-gateways"), 1_795_456_240);
    assert_eq!(
        lines.last().unwrap(),
        "1795456240 novadaq-far-gateway-01 report 5900,5901,5910"
    );
}
