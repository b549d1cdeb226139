//! webgen's fast log reader against the reference reader of the `logs`
//! crate (`logs::reader::read`), on generated logs with every kind of
//! trouble the reading rules name (`webgen/tests/troubled_logs`). Both must
//! see the same events and the same complete reports, gateway by gateway.

use std::collections::BTreeMap;
use std::path::Path;

use ::logs::EventKind;
use ::logs::reader::{self, Item, Window};
use jiff::civil::date;
use proptest::prelude::*;

use super::{Catalog, Event, Report, Visitor};

#[path = "../../tests/troubled_logs/mod.rs"]
mod troubled_logs;
use troubled_logs::{Datagram, datagram, tmp, write};

/// What a reader saw of one gateway: its events (received, kind, seq, part,
/// text) and its complete reports (received, seq, tunnels as
/// (pid, port, target, listening, vnc), sorted).
type Tunnels = Vec<(u32, u16, String, &'static str, &'static str)>;
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    events: Vec<(u64, &'static str, u64, u32, String)>,
    reports: Vec<(u64, u64, Tunnels)>,
}

#[derive(Default)]
struct Fast(BTreeMap<String, Seen>);

impl Visitor for Fast {
    fn event(&mut self, c: &Catalog, e: &Event) {
        let g = self.0.entry(c.gateway(e.gateway).to_string()).or_default();
        g.events
            .push((e.received, e.kind.as_str(), e.seq, e.part, e.text.clone()));
    }
    fn report(&mut self, c: &Catalog, r: &Report<'_>) {
        let g = self.0.entry(c.gateway(r.gateway).to_string()).or_default();
        let mut t: Tunnels = r
            .tunnels
            .iter()
            .map(|o| {
                let t = &c.tunnel(o.id).tunnel;
                (
                    t.pid,
                    t.listen_port,
                    t.target_host.clone(),
                    o.listening.as_str(),
                    o.vnc.as_str(),
                )
            })
            .collect();
        t.sort();
        g.reports.push((r.received, r.seq, t));
    }
}

fn reference(dir: &Path) -> BTreeMap<String, Seen> {
    let window = Window {
        from: date(2026, 1, 1),
        to: date(2027, 1, 1),
        reports_from: date(2026, 1, 1),
        until: u64::MAX,
    };
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    for item in reader::read(dir, window).unwrap().items {
        match item {
            Item::Event(e) => {
                let text = if e.kind == EventKind::Report {
                    String::new()
                } else {
                    e.text
                };
                out.entry(e.gateway.clone()).or_default().events.push((
                    e.received,
                    e.kind.as_str(),
                    e.seq,
                    e.part,
                    text,
                ));
            }
            Item::Report(r) => {
                let mut t: Tunnels = r
                    .tunnels
                    .iter()
                    .map(|t| {
                        (
                            t.pid,
                            t.listen_port,
                            t.target_host.clone(),
                            t.listening.as_str(),
                            t.vnc.as_str(),
                        )
                    })
                    .collect();
                t.sort();
                out.entry(r.gateway)
                    .or_default()
                    .reports
                    .push((r.received, r.seq, t));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn the_fast_reader_sees_what_the_reference_sees(
        datagrams in proptest::collection::vec(datagram(), 1..40),
        n in any::<u64>(),
        style in any::<u8>(),
    ) {
        let dir = tmp(n);
        write(&dir, style, &datagrams);
        let mut catalog = Catalog::default();
        let mut fast = Fast::default();
        super::read(&dir, date(2026, 1, 1), date(2027, 1, 1), u64::MAX, &mut catalog, &mut fast).unwrap();
        let want = reference(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        prop_assert_eq!(fast.0, want);
    }
}

/// Found by the property test: a report written twice, the first copy at
/// 23:59:57 with its only tunnel row malformed, the copy after midnight
/// whole. A part's rows are those of its event row's day (rule 4), so the
/// report is damaged for both readers.
#[test]
fn a_copy_after_midnight_does_not_mend_a_damaged_report() {
    let dir = tmp(u64::MAX);
    let d = Datagram {
        gateway: 0,
        at: 399,
        kind: EventKind::Report,
        tunnels: vec![0],
        health: 0,
        twice: true,
        drop_last_part: false,
        damage: true,
    };
    write(&dir, 2, &[d]); // style 2: plain headers
    let mut catalog = Catalog::default();
    let mut fast = Fast::default();
    super::read(
        &dir,
        date(2026, 1, 1),
        date(2027, 1, 1),
        u64::MAX,
        &mut catalog,
        &mut fast,
    )
    .unwrap();
    let want = reference(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(fast.0, want);
    assert!(want["gw-0"].reports.is_empty());
}
