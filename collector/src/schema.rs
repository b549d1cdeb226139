//! The CSV log schema: which files exist, their columns, and one row type
//! per file. The collector writes these rows (`csvlog.rs`); webgen reads
//! them (`webgen/src/logs.rs`). `docs/logs.md` documents the same schema for
//! people.
//!
//! There is one file per kind of record per UTC day, named
//! `{events,tunnels}-YYYY-MM-DD.csv` after the day the collector *received*
//! the datagram. All times are Unix seconds (UTC).
//!
//! A datagram is in the logs when its event row is: the collector writes a
//! datagram's tunnel rows first, then its event row, then syncs, then acks.
//! Readers therefore ignore tunnel rows whose `(gateway, seq, part)` has no
//! event row, and count a row from a retransmission only once.
//!
//! The column order is written down once per kind, in [`EventRef::fields`]
//! and [`TunnelRef::fields`]: borrowed views of a row, which the collector
//! writes straight from a datagram's body without copying its strings, and
//! which the owned rows' `to_record` go through too.

use gateway_client::tunnel::{Health, Kind, Tunnel};
use jiff::civil::Date;

/// The two kinds of log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogKind {
    /// One row per datagram accepted: report part, heartbeat, message, shutdown.
    Events,
    /// One row per tunnel per accepted report part.
    Tunnels,
}

impl LogKind {
    pub const ALL: [LogKind; 2] = [LogKind::Events, LogKind::Tunnels];

    pub fn prefix(self) -> &'static str {
        match self {
            LogKind::Events => "events",
            LogKind::Tunnels => "tunnels",
        }
    }

    pub fn header(self) -> &'static [&'static str] {
        match self {
            LogKind::Events => &EVENT_HEADER,
            LogKind::Tunnels => &TUNNEL_HEADER,
        }
    }
}

/// `events-2026-11-23.csv`
pub fn file_name(kind: LogKind, day: Date) -> String {
    format!("{}-{}.csv", kind.prefix(), day)
}

/// The kind and day of a log file's name, or `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<(LogKind, Date)> {
    let stem = name.strip_suffix(".csv")?;
    LogKind::ALL.into_iter().find_map(|kind| {
        let day = stem.strip_prefix(kind.prefix())?.strip_prefix('-')?;
        // Exactly YYYY-MM-DD, nothing looser.
        if day.len() != 10 {
            return None;
        }
        day.parse::<Date>().ok().map(|d| (kind, d))
    })
}

pub const EVENT_HEADER: [&str; 10] = [
    "received", "gateway", "kind", "seq", "part", "parts", "sent", "source", "tunnels", "text",
];

pub const TUNNEL_HEADER: [&str; 17] = [
    "received",
    "gateway",
    "seq",
    "part",
    "pid",
    "user",
    "kind",
    "bind",
    "listen_port",
    "target_host",
    "target_port",
    "dest",
    "started",
    "start",
    "cpu_time",
    "listening",
    "vnc",
];

/// One accepted datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// When the collector received it.
    pub received: u64,
    pub gateway: String,
    /// `report`, `heartbeat`, `message` or `shutdown`.
    pub kind: String,
    pub seq: u64,
    /// Part `part` of `parts` (1-based); 1 of 1 for everything but long reports.
    pub part: u32,
    pub parts: u32,
    /// The gateway's send time.
    pub sent: u64,
    /// Source address, `ip:port`.
    pub source: String,
    /// Tunnels carried by this datagram.
    pub tunnels: u32,
    /// The operator's message, or empty.
    pub text: String,
}

/// One tunnel in one accepted report part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelRow {
    pub received: u64,
    pub gateway: String,
    pub seq: u64,
    pub part: u32,
    pub tunnel: Tunnel,
}

fn num<T: std::str::FromStr>(rec: &csv::StringRecord, i: usize, name: &str) -> Result<T, String> {
    let s = rec
        .get(i)
        .ok_or_else(|| format!("missing column '{name}'"))?;
    s.parse()
        .map_err(|_| format!("column '{name}': '{s}' is not a number in range"))
}

fn text(rec: &csv::StringRecord, i: usize, name: &str) -> Result<String, String> {
    rec.get(i)
        .map(str::to_string)
        .ok_or_else(|| format!("missing column '{name}'"))
}

fn check_len(rec: &csv::StringRecord, want: usize) -> Result<(), String> {
    if rec.len() == want {
        Ok(())
    } else {
        Err(format!("{} columns, expected {want}", rec.len()))
    }
}

/// One field of a row as it is written: text, or a number written in
/// decimal without copying it into a `String` first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    Text(&'a str),
    Num(u64),
}

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Text(s) => f.write_str(s),
            Field::Num(n) => write!(f, "{n}"),
        }
    }
}

/// An event row, borrowed (see [`EventRow`] for the fields).
#[derive(Clone, Copy, Debug)]
pub struct EventRef<'a> {
    pub received: u64,
    pub gateway: &'a str,
    pub kind: &'a str,
    pub seq: u64,
    pub part: u32,
    pub parts: u32,
    pub sent: u64,
    pub source: &'a str,
    pub tunnels: u32,
    pub text: &'a str,
}

impl<'a> EventRef<'a> {
    /// The columns, in [`EVENT_HEADER`]'s order.
    pub fn fields(&self) -> [Field<'a>; 10] {
        [
            Field::Num(self.received),
            Field::Text(self.gateway),
            Field::Text(self.kind),
            Field::Num(self.seq),
            Field::Num(self.part.into()),
            Field::Num(self.parts.into()),
            Field::Num(self.sent),
            Field::Text(self.source),
            Field::Num(self.tunnels.into()),
            Field::Text(self.text),
        ]
    }
}

/// A tunnel row, borrowed (see [`TunnelRow`] for the fields).
#[derive(Clone, Copy, Debug)]
pub struct TunnelRef<'a> {
    pub received: u64,
    pub gateway: &'a str,
    pub seq: u64,
    pub part: u32,
    pub tunnel: &'a Tunnel,
}

impl<'a> TunnelRef<'a> {
    /// The columns, in [`TUNNEL_HEADER`]'s order.
    pub fn fields(&self) -> [Field<'a>; 17] {
        let t = self.tunnel;
        [
            Field::Num(self.received),
            Field::Text(self.gateway),
            Field::Num(self.seq),
            Field::Num(self.part.into()),
            Field::Num(t.pid.into()),
            Field::Text(&t.user),
            Field::Text(t.kind.letter()),
            Field::Text(&t.bind),
            Field::Num(t.listen_port.into()),
            Field::Text(&t.target_host),
            Field::Num(t.target_port.into()),
            Field::Text(&t.dest),
            match t.started {
                Some(s) => Field::Num(s),
                None => Field::Text(""),
            },
            Field::Text(&t.start),
            Field::Text(&t.cpu_time),
            Field::Text(t.listening.as_str()),
            Field::Text(t.vnc.as_str()),
        ]
    }
}

impl EventRow {
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            received: self.received,
            gateway: &self.gateway,
            kind: &self.kind,
            seq: self.seq,
            part: self.part,
            parts: self.parts,
            sent: self.sent,
            source: &self.source,
            tunnels: self.tunnels,
            text: &self.text,
        }
    }

    pub fn to_record(&self) -> [String; 10] {
        self.as_ref().fields().map(|f| f.to_string())
    }

    pub fn from_record(rec: &csv::StringRecord) -> Result<EventRow, String> {
        check_len(rec, EVENT_HEADER.len())?;
        Ok(EventRow {
            received: num(rec, 0, "received")?,
            gateway: text(rec, 1, "gateway")?,
            kind: text(rec, 2, "kind")?,
            seq: num(rec, 3, "seq")?,
            part: num(rec, 4, "part")?,
            parts: num(rec, 5, "parts")?,
            sent: num(rec, 6, "sent")?,
            source: text(rec, 7, "source")?,
            tunnels: num(rec, 8, "tunnels")?,
            text: text(rec, 9, "text")?,
        })
    }
}

impl TunnelRow {
    pub fn as_ref(&self) -> TunnelRef<'_> {
        TunnelRef {
            received: self.received,
            gateway: &self.gateway,
            seq: self.seq,
            part: self.part,
            tunnel: &self.tunnel,
        }
    }

    pub fn to_record(&self) -> [String; 17] {
        self.as_ref().fields().map(|f| f.to_string())
    }

    pub fn from_record(rec: &csv::StringRecord) -> Result<TunnelRow, String> {
        check_len(rec, TUNNEL_HEADER.len())?;
        let kind = rec.get(6).unwrap_or("");
        let health = |i: usize, name: &str| {
            let s = rec.get(i).unwrap_or("");
            Health::parse(s)
                .ok_or_else(|| format!("column '{name}': '{s}' is not yes, no or unknown"))
        };
        let started = match rec.get(12) {
            Some("") | None => None,
            Some(_) => Some(num(rec, 12, "started")?),
        };
        Ok(TunnelRow {
            received: num(rec, 0, "received")?,
            gateway: text(rec, 1, "gateway")?,
            seq: num(rec, 2, "seq")?,
            part: num(rec, 3, "part")?,
            tunnel: Tunnel {
                pid: num(rec, 4, "pid")?,
                user: text(rec, 5, "user")?,
                kind: Kind::from_letter(kind)
                    .ok_or_else(|| format!("column 'kind': '{kind}' is not L, R or D"))?,
                bind: text(rec, 7, "bind")?,
                listen_port: num(rec, 8, "listen_port")?,
                target_host: text(rec, 9, "target_host")?,
                target_port: num(rec, 10, "target_port")?,
                dest: text(rec, 11, "dest")?,
                started,
                start: text(rec, 13, "start")?,
                cpu_time: text(rec, 14, "cpu_time")?,
                listening: health(15, "listening")?,
                vnc: health(16, "vnc")?,
                // Not in the CSV (yet): unknown.
                connections: None,
                connected: Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let d = jiff::civil::date(2026, 11, 23);
        assert_eq!(file_name(LogKind::Tunnels, d), "tunnels-2026-11-23.csv");
        assert_eq!(
            parse_file_name("tunnels-2026-11-23.csv"),
            Some((LogKind::Tunnels, d))
        );
        assert_eq!(
            parse_file_name("events-2026-11-23.csv"),
            Some((LogKind::Events, d))
        );
        for bad in [
            "../events-2026-11-23.csv",
            "events-2026-11-23.csv.tmp",
            "events-x.csv",
            "other.csv",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn rows_round_trip() {
        let e = EventRow {
            received: 10,
            gateway: "g".into(),
            kind: "message".into(),
            seq: 7,
            part: 1,
            parts: 1,
            sent: 9,
            source: "127.0.0.1:4000".into(),
            tunnels: 0,
            text: "hello, \"world\"\nbye".into(),
        };
        let rec = csv::StringRecord::from(e.to_record().to_vec());
        assert_eq!(EventRow::from_record(&rec).unwrap(), e);
        let t = TunnelRow {
            received: 10,
            gateway: "g".into(),
            seq: 7,
            part: 1,
            tunnel: Tunnel {
                pid: 5,
                user: "u".into(),
                listen_port: 5900,
                target_port: 5951,
                ..Tunnel::default()
            },
        };
        let rec = csv::StringRecord::from(t.to_record().to_vec());
        assert_eq!(TunnelRow::from_record(&rec).unwrap(), t);
    }
}
