//! Logs with every kind of trouble the reading rules name, generated for
//! property tests: reports split in parts, parts missing, rows written twice
//! (retransmissions), tunnel rows without an event row, malformed rows (a
//! damaged report), heartbeats, messages and maintenance, headers after a
//! byte order mark, with columns swapped or in the older layout.
//!
//! The logs cross UTC midnight, and the parts of a report arrive seconds
//! apart, so some reports start on one day's files and end on the next.
//!
//! Shared by webgen's unit test of its fast reader against the reference
//! reader (`webgen/src/logs/fast_reader_agrees.rs`) and the integration
//! test of its cache (`webgen/tests/agrees_with_reference.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gateway_client::tunnel::{Health, Tunnel};
use logs::{EventKind, EventRow, TunnelRow};
use proptest::prelude::*;

/// One datagram to write, and what goes wrong with it.
#[derive(Clone, Debug)]
pub(crate) struct Datagram {
    pub(crate) gateway: usize,
    /// Seconds after the start of the logs.
    pub(crate) at: u64,
    pub(crate) kind: EventKind,
    /// For a report: the tunnels (indexes into a pool), in parts of 3.
    pub(crate) tunnels: Vec<usize>,
    pub(crate) health: u8,
    /// Written twice (a retransmission after a crash).
    pub(crate) twice: bool,
    /// Its last part's event row is missing (never acked).
    pub(crate) drop_last_part: bool,
    /// One of its tunnel rows has a malformed port.
    pub(crate) damage: bool,
}

pub(crate) fn datagram() -> impl Strategy<Value = Datagram> {
    (
        0..3usize,
        0..400u64,
        prop_oneof![6 => Just(EventKind::Report), 1 => Just(EventKind::Heartbeat), 1 => Just(EventKind::Message)],
        proptest::collection::vec(0..8usize, 0..8),
        any::<u8>(),
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(gateway, at, kind, mut tunnels, health, twice, drop_last_part, damage)| {
            tunnels.sort();
            tunnels.dedup();
            Datagram { gateway, at, kind, tunnels, health, twice, drop_last_part, damage }
        })
}

fn tunnel(i: usize, health: u8) -> Tunnel {
    let h = |b: u8| match b % 3 {
        0 => Health::Yes,
        1 => Health::No,
        _ => Health::Unknown,
    };
    Tunnel {
        pid: 1000 + i as u32,
        user: format!("novacr0{i}"),
        listen_port: 5900 + i as u16,
        target_host: format!("novadaq-far-master-0{}", i % 3),
        target_port: 5951,
        dest: "novadaq-far-gateway-01".into(),
        listening: h(health >> (i % 4)),
        vnc: h(health >> 4),
        ..Tunnel::default()
    }
}

/// Writes the datagrams as the collector would (tunnel rows, then the event
/// row, in the order received), with the trouble each asks for.
pub(crate) fn write(dir: &Path, style: u8, datagrams: &[Datagram]) {
    let start = 1_795_477_200; // 2026-11-23 23:50 UTC: the logs cross midnight
    let mut sorted = datagrams.to_vec();
    sorted.sort_by_key(|d| d.at);
    let mut events: BTreeMap<String, Vec<EventRow>> = BTreeMap::new();
    let mut tunnels: BTreeMap<String, Vec<TunnelRow>> = BTreeMap::new();
    for (n, d) in sorted.iter().enumerate() {
        let first = start + d.at * 3;
        let gateway = format!("gw-{}", d.gateway);
        let seq = first * 1000 + n as u64;
        let chunks: Vec<&[usize]> = if d.kind == EventKind::Report && !d.tunnels.is_empty() {
            d.tunnels.chunks(3).collect()
        } else {
            vec![&[]]
        };
        let parts = chunks.len() as u32;
        for copy in 0..1 + usize::from(d.twice) {
            for (p, chunk) in chunks.iter().enumerate() {
                let part = p as u32 + 1;
                // Parts a few seconds apart, the copy a little later.
                let received = first + 29 * p as u64 + 3 * copy as u64;
                let day = logs::files::day_of(received).to_string();
                for (k, &i) in chunk.iter().enumerate() {
                    let mut t = tunnel(i, d.health);
                    if d.damage && copy == 0 && k == chunk.len() - 1 {
                        t.listen_port = 0; // replaced by a non-number below
                    }
                    tunnels.entry(day.clone()).or_default().push(TunnelRow {
                        received,
                        gateway: gateway.clone(),
                        seq,
                        part,
                        tunnel: t,
                    });
                }
                if d.drop_last_part && parts > 1 && part == parts {
                    continue;
                }
                events.entry(day.clone()).or_default().push(EventRow {
                    received,
                    gateway: gateway.clone(),
                    kind: d.kind,
                    seq,
                    part,
                    parts,
                    sent: received,
                    source: "10.0.0.1:4000".into(),
                    tunnels: chunk.len() as u32,
                    text: if matches!(d.kind, EventKind::Message | EventKind::Maintenance) {
                        format!("note, \"{n}\"")
                    } else {
                        String::new()
                    },
                    period: None,
                    // Two hours of maintenance.
                    until: (d.kind == EventKind::Maintenance).then_some(received + 7200),
                });
            }
        }
        // A tunnel row of an attempt never acked (no event row).
        if d.at % 17 == 0 {
            let day = logs::files::day_of(first).to_string();
            tunnels.entry(day).or_default().push(TunnelRow {
                received: first,
                gateway: gateway.clone(),
                seq: seq + 500_000,
                part: 1,
                tunnel: tunnel(9, 0),
            });
        }
    }
    for (prefix, header, rows) in [
        (
            "events",
            &logs::schema::EVENT_HEADER[..],
            events
                .into_iter()
                .map(|(d, r)| {
                    (
                        d,
                        r.iter().map(|e| e.to_record().to_vec()).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>(),
        ),
        (
            "tunnels",
            &logs::schema::TUNNEL_HEADER[..],
            tunnels
                .into_iter()
                .map(|(d, r)| {
                    (
                        d,
                        r.iter().map(|t| t.to_record().to_vec()).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>(),
        ),
    ] {
        for (i, (day, records)) in rows.into_iter().enumerate() {
            let path = dir.join(format!("{prefix}-{day}.csv"));
            write_file(&path, header, records, (i + usize::from(style)) % 5);
        }
    }
}

/// One log file: `header` (style 0: after a byte order mark, which both
/// readers ignore; style 1: with two columns swapped, so both skip the
/// file; style 3: in the older layout, before the last two columns of each
/// file were added, which both read; else as written), then the records (a
/// tunnel row's listen port 0 made malformed, for the damaged reports).
fn write_file(path: &Path, header: &[&str], records: Vec<Vec<String>>, style: usize) {
    let mut file = std::fs::File::create(path).unwrap();
    let mut header = header.to_vec();
    let tunnels = header.len() == logs::schema::TUNNEL_HEADER.len();
    match style {
        0 => std::io::Write::write_all(&mut file, b"\xEF\xBB\xBF").unwrap(),
        1 => header.swap(1, 2),
        3 => header.truncate(header.len() - 2),
        _ => {}
    }
    let width = header.len();
    let mut w = csv::Writer::from_writer(file);
    w.write_record(&header).unwrap();
    for mut r in records {
        r.truncate(width);
        if tunnels && r[logs::TunnelCol::ListenPort as usize] == "0" {
            r[logs::TunnelCol::ListenPort as usize] = "59x0".into();
        }
        w.write_record(&r).unwrap();
    }
    w.flush().unwrap();
}

pub(crate) fn tmp(n: u64) -> PathBuf {
    let d = std::env::temp_dir().join(format!("webgen-agrees-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
