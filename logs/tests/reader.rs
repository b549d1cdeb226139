//! The reference reader on the fixture logs (`testdata/logs/`), whose facts
//! are written down by hand in `testdata/logs/README.md`.

use std::path::{Path, PathBuf};

use jiff::civil::date;
use logs::reader::{self, Item, Window};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/logs")
        .join(name)
}

fn window() -> Window {
    Window {
        from: date(2026, 11, 1),
        to: date(2026, 11, 30),
        reports_from: date(2026, 11, 1),
        until: u64::MAX,
    }
}

fn ports(r: &reader::Report) -> Vec<u16> {
    let mut p: Vec<u16> = r.tunnels.iter().map(|t| t.listen_port).collect();
    p.sort();
    p
}

#[test]
fn a_damaged_report_is_skipped_and_the_one_before_stays() {
    let logs = reader::read(&fixture("damaged"), window()).unwrap();
    let reports: Vec<_> = logs
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Report(r) => Some(r),
            Item::Event(_) => None,
        })
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].received, 1_795_428_000);
    assert_eq!(ports(reports[0]), [5901, 5902, 5903]);
    assert_eq!(logs.skipped.damaged_reports, 1);
    assert_eq!(logs.skipped.malformed_rows, 1);
    // Its events still count: two report parts and the heartbeat.
    let events = logs
        .items
        .iter()
        .filter(|i| matches!(i, Item::Event(_)))
        .count();
    assert_eq!(events, 3);
    assert!(logs.pending.is_empty());
}

#[test]
fn two_gateways_by_the_readme() {
    let logs = reader::read(&fixture("two-gateways"), window()).unwrap();
    let far: Vec<&reader::Report> = logs
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Report(r) if r.gateway == "novadaq-far-gateway-01" => Some(r),
            _ => None,
        })
        .collect();
    // 40 complete reports; the one written twice counts once.
    assert_eq!(far.len(), 40);
    let last = far.last().unwrap();
    assert_eq!(ports(last), [5900, 5901, 5910]);
    // The incomplete report at 17:57:41 (part 1 of 2) is pending.
    assert_eq!(logs.pending.len(), 1);
    assert_eq!(logs.pending[0].event.parts, 2);
    // The ghost row (no event row) and the torn and malformed rows.
    assert!(logs.skipped.orphan_rows >= 1);
    assert!(logs.skipped.duplicate_events >= 1);
}
