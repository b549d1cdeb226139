//! Seeded collector logs: `gateways` gateways reporting once a minute for
//! `days` UTC days ending at `end`, each holding about `tunnels` tunnels,
//! written exactly as the collector writes them (`logs::schema`: one
//! `events-YYYY-MM-DD.csv` and one `tunnels-YYYY-MM-DD.csv` per UTC day, a
//! header row, rows in the order they were received).
//!
//! What happens in them, per gateway:
//!
//! - a report every minute, split into parts as the wire codec would split it
//!   (about five tunnels to a 1,400-byte datagram), one event row per part
//!   and one tunnel row per tunnel;
//! - tunnels coming and going: each ends with a chance of 1 in 720 a minute
//!   (half a day on average) and a new one (new pid, user, port) takes its
//!   place after 0 to 5 minutes;
//! - silences: with a chance of 1 in 2,000 a minute the gateway goes quiet
//!   for 3 to 90 minutes (late, then down, then back);
//! - now and then an operator's message (with commas and quotes in it) and a
//!   heartbeat;
//! - who is on each `L` and `D` forward ([`who_is_on`]): in use about one
//!   hour in four, idle otherwise; unknown for `R` forwards.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use ::logs::schema::{EventRow, LogKind, TunnelRow, file_name};
use gateway_client::tunnel::{Health, Kind, Tunnel};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::error::Error;
use crate::rng::Rng;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    pub gateways: usize,
    pub days: u64,
    pub tunnels: usize,
    /// Unix seconds; a UTC midnight keeps whole days in every file.
    pub end: u64,
}

/// Rows written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub events: u64,
    pub tunnel_rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// The gateways' names: the two real ones first.
pub fn gateway_name(i: usize) -> String {
    match i {
        0 => "novadaq-far-gateway-01".to_string(),
        1 => "novadaq-near-gateway-01".to_string(),
        _ => format!("roc-gateway-{:02}", i + 1),
    }
}

/// A tunnel slot: the tunnel in it, or the minute a new one comes.
enum Slot {
    Up(Tunnel),
    Down { back_at: u64 },
}

struct Gateway {
    name: String,
    source: String,
    /// Seconds after the minute at which it sends.
    offset: u64,
    slots: Vec<Slot>,
    silent_until: u64,
    rng: Rng,
}

fn new_tunnel(rng: &mut Rng, gw: usize, slot: usize, now: u64) -> Tunnel {
    const USERS: [&str; 6] = [
        "novacr05", "novacr06", "novadaq", "novaope+", "rocshift", "dunepro",
    ];
    const HOSTS: [&str; 4] = [
        "novadaq-far-master-01",
        "novadaq-far-master-02",
        "novadaq-near-master-01",
        "novadaq-far-dcm-03",
    ];
    let kind = match rng.below(20) {
        0 => Kind::Dynamic,
        1 => Kind::Remote,
        _ => Kind::Local,
    };
    let display = rng.below(60) as u16;
    let (target_host, target_port) = match kind {
        Kind::Dynamic => (String::new(), 0),
        Kind::Remote => ("localhost".to_string(), 22),
        Kind::Local => (rng.pick(&HOSTS).to_string(), 5900 + display),
    };
    Tunnel {
        pid: rng.range(1000, 4_000_000) as u32,
        user: rng.pick(&USERS).to_string(),
        kind,
        bind: if rng.one_in(5) {
            "127.0.0.1".to_string()
        } else {
            String::new()
        },
        listen_port: (5900 + slot as u64 + 100 * (gw as u64 % 10)) as u16,
        target_host,
        target_port,
        dest: gateway_name(gw),
        started: Some(now.saturating_sub(rng.below(3600))),
        start: format!("{:02}:{:02}", now / 3600 % 24, now / 60 % 60),
        cpu_time: "0:00".to_string(),
        listening: if rng.one_in(50) {
            Health::No
        } else {
            Health::Yes
        },
        vnc: Health::Unknown,
        // Not in the CSV logs.
        connections: None,
        connected: Vec::new(),
    }
}

/// Who is on tunnel `t` in the minute `received`: for `L` and `D` forwards,
/// one or two connections for a whole hour of its life in about one hour
/// in four, else none; unknown for `R` forwards (as the client says). Derived from
/// the pid and the hour, not drawn from the random stream, so that the rest
/// of the logs stay what the seed made them.
fn who_is_on(t: &mut Tunnel, received: u64) {
    const WHO: [&str; 3] = ["192.0.2.15", "novaroc1", "novaroc2"];
    t.connected.clear();
    if t.kind == Kind::Remote {
        t.connections = None;
        return;
    }
    // The hours since it started: the same whatever `end` the logs have.
    let hour = received.saturating_sub(t.started.unwrap_or(received)) / 3600;
    let h = ((u64::from(t.pid) << 20) ^ hour).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
    let n = if h < 4 { 1 + h % 2 } else { 0 };
    t.connections = Some(n as u32);
    for i in 0..n {
        t.connected.push(WHO[((h + i) % 3) as usize].to_string());
    }
    t.connected.sort();
}

/// Room for tunnels in one datagram: 1,400 bytes less the header line and
/// the body's other fields (as `gateway_client::wire::encode_all` reckons).
const ROOM: usize = 1400 - 73 - 140;

fn parts_of(tunnels: &[Tunnel]) -> Vec<&[Tunnel]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, t) in tunnels.iter().enumerate() {
        let len = t.to_json().len() + 1;
        if used + len > ROOM && i > start {
            parts.push(&tunnels[start..i]);
            start = i;
            used = 0;
        }
        used += len;
    }
    parts.push(&tunnels[start..]);
    parts
}

/// One day's two files.
struct DayFiles {
    day: Date,
    events: csv::Writer<BufWriter<File>>,
    tunnels: csv::Writer<BufWriter<File>>,
}

fn open(dir: &Path, kind: LogKind, day: Date) -> Result<csv::Writer<BufWriter<File>>, Error> {
    let path = dir.join(file_name(kind, day));
    let file = File::create(&path).map_err(|e| Error::io("cannot create", &path, e))?;
    let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
    w.write_record(kind.header())
        .map_err(|e| Error::csv(&path, e))?;
    Ok(w)
}

fn day_of(unix: u64) -> Date {
    Timestamp::from_second(unix as i64)
        .map(|t| t.to_zoned(TimeZone::UTC).date())
        .unwrap_or_default()
}

/// Writes the logs into `dir` (created), replacing files of the same names.
pub fn generate(plan: &Plan, dir: &Path) -> Result<Written, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let start = plan.end - plan.days * 86_400;
    let mut gws: Vec<Gateway> = (0..plan.gateways)
        .map(|g| {
            let mut rng = Rng::fork(plan.seed, 0x4757 + g as u64);
            let slots = (0..plan.tunnels)
                .map(|s| Slot::Up(new_tunnel(&mut rng, g, s, start)))
                .collect();
            Gateway {
                name: gateway_name(g),
                source: format!("131.225.20.{}:{}", 21 + g % 200, 40_000 + g),
                offset: (g as u64 * 7 + 3) % 60,
                slots,
                silent_until: 0,
                rng,
            }
        })
        .collect();
    let mut written = Written::default();
    let mut files: Option<DayFiles> = None;
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut minute = start;
    while minute < plan.end {
        for (g, gw) in gws.iter_mut().enumerate() {
            let received = minute + gw.offset;
            let day = day_of(received);
            if files.as_ref().is_none_or(|f| f.day != day) {
                if let Some(f) = files.take() {
                    finish(f, dir)?;
                }
                paths.push(dir.join(file_name(LogKind::Events, day)));
                paths.push(dir.join(file_name(LogKind::Tunnels, day)));
                files = Some(DayFiles {
                    day,
                    events: open(dir, LogKind::Events, day)?,
                    tunnels: open(dir, LogKind::Tunnels, day)?,
                });
            }
            let f = files.as_mut().expect("opened above");
            minute_of(gw, g, received, f, dir, &mut written)?;
        }
        minute += 60;
    }
    if let Some(f) = files.take() {
        finish(f, dir)?;
    }
    for p in &paths {
        written.files += 1;
        written.bytes += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    }
    Ok(written)
}

fn finish(f: DayFiles, dir: &Path) -> Result<(), Error> {
    for (mut w, kind) in [(f.events, LogKind::Events), (f.tunnels, LogKind::Tunnels)] {
        w.flush()
            .map_err(|e| Error::io("cannot write", &dir.join(file_name(kind, f.day)), e))?;
    }
    Ok(())
}

fn minute_of(
    gw: &mut Gateway,
    g: usize,
    received: u64,
    f: &mut DayFiles,
    dir: &Path,
    written: &mut Written,
) -> Result<(), Error> {
    let rng = &mut gw.rng;
    // Tunnels come and go whether or not the gateway is heard.
    for (s, slot) in gw.slots.iter_mut().enumerate() {
        match slot {
            Slot::Up(_) if rng.one_in(720) => {
                *slot = Slot::Down {
                    back_at: received + 60 * rng.below(6),
                }
            }
            Slot::Down { back_at } if *back_at <= received => {
                *slot = Slot::Up(new_tunnel(rng, g, s, received));
            }
            _ => {}
        }
    }
    if received < gw.silent_until {
        return Ok(());
    }
    if rng.one_in(2000) {
        gw.silent_until = received + 60 * rng.range(3, 90);
        return Ok(());
    }
    let sent = received - rng.below(2);
    let seq = sent * 1_000_000 + rng.below(1_000_000);
    let events_path = || dir.join(file_name(LogKind::Events, f.day));
    let tunnels_path = || dir.join(file_name(LogKind::Tunnels, f.day));
    let up: Vec<Tunnel> = gw
        .slots
        .iter()
        .filter_map(|s| match s {
            Slot::Up(t) => {
                let mut t = t.clone();
                who_is_on(&mut t, received);
                Some(t)
            }
            Slot::Down { .. } => None,
        })
        .collect();
    let parts = parts_of(&up);
    let n = parts.len() as u32;
    for (i, part) in parts.iter().enumerate() {
        let part_no = i as u32 + 1;
        for t in *part {
            let row = TunnelRow {
                received,
                gateway: gw.name.clone(),
                seq,
                part: part_no,
                tunnel: t.clone(),
            };
            f.tunnels
                .write_record(row.to_record())
                .map_err(|e| Error::csv(&tunnels_path(), e))?;
            written.tunnel_rows += 1;
        }
        let ev = EventRow {
            received,
            gateway: gw.name.clone(),
            kind: ::logs::EventKind::Report,
            seq,
            part: part_no,
            parts: n,
            sent,
            source: gw.source.clone(),
            tunnels: part.len() as u32,
            text: String::new(),
            period: None,
            until: None,
        };
        f.events
            .write_record(ev.to_record())
            .map_err(|e| Error::csv(&events_path(), e))?;
        written.events += 1;
    }
    let extra = match rng.below(1440) {
        0 => Some((
            "message",
            format!(
                "shift change, \"{}\" takes over; far VNC :{} restarted",
                gw.name,
                rng.below(60)
            ),
        )),
        1 | 2 => Some(("heartbeat", String::new())),
        _ => None,
    };
    if let Some((kind, text)) = extra {
        let ev = EventRow {
            received,
            gateway: gw.name.clone(),
            kind: ::logs::EventKind::from_bytes(kind.as_bytes()),
            seq: seq + 1,
            part: 1,
            parts: 1,
            sent,
            source: gw.source.clone(),
            tunnels: 0,
            text,
            period: None,
            until: None,
        };
        f.events
            .write_record(ev.to_record())
            .map_err(|e| Error::csv(&events_path(), e))?;
        written.events += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bench-logs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn one_day_reads_back_with_the_schema() {
        let dir = tmp("one-day");
        let plan = Plan {
            seed: 3,
            gateways: 2,
            days: 1,
            tunnels: 10,
            end: 1_796_083_200, // 2026-12-01T00:00:00Z
        };
        let w = generate(&plan, &dir).unwrap();
        assert_eq!(w.files, 2);
        let mut events = 0;
        let mut tunnel_rows = 0;
        for kind in LogKind::ALL {
            let path = dir.join(file_name(kind, jiff::civil::date(2026, 11, 30)));
            let mut r = csv::Reader::from_path(&path).unwrap();
            assert_eq!(r.headers().unwrap(), kind.header());
            for rec in r.records() {
                let rec = rec.unwrap();
                match kind {
                    LogKind::Events => {
                        EventRow::from_record(&rec).unwrap();
                        events += 1;
                    }
                    LogKind::Tunnels => {
                        TunnelRow::from_record(&rec).unwrap();
                        tunnel_rows += 1;
                    }
                }
            }
        }
        assert_eq!((events, tunnel_rows), (w.events, w.tunnel_rows));
        // Two gateways, 1,440 minutes, about ten tunnels each.
        assert!(w.tunnel_rows > 2 * 1440 * 9, "{w:?}");
        assert!(w.tunnel_rows <= 2 * 1440 * 10, "{w:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
