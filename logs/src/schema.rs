//! The CSV log schema: which files exist, their columns, and one row type
//! per file. The collector writes these rows (its `csvlog.rs`); webgen reads
//! them (its `logs.rs`) and so does the collector at start, both by the
//! rules of [`crate::reader`]. `docs/logs.md` documents the same schema for
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
//! The columns are declared once per kind, in order, as the enums
//! [`EventCol`] and [`TunnelCol`]; the header rows are made from them, and
//! every reader and writer names a column instead of counting to it.
//! [`EventRef`] and [`TunnelRef`] are borrowed views of a row, which the
//! collector writes straight from a datagram's body without copying its
//! strings, and which the owned rows' `to_record` go through too.

use gateway_client::tunnel::{Health, Kind, Tunnel};
use jiff::civil::Date;

use crate::kind::EventKind;

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

    pub(crate) fn prefix(self) -> &'static str {
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

    /// The number of columns of each layout this version reads, the
    /// current one first. Columns are only ever added at the end, so an
    /// older layout's header is the current header cut short: events files
    /// before `period` and `until` had 10 columns, tunnels files before
    /// `connections` and `connected` 17.
    pub fn widths(self) -> &'static [usize] {
        const EVENTS: [usize; 2] = [EVENT_HEADER.len(), 10];
        const TUNNELS: [usize; 2] = [TUNNEL_HEADER.len(), 17];
        match self {
            LogKind::Events => &EVENTS,
            LogKind::Tunnels => &TUNNELS,
        }
    }

    /// The number of columns of a file whose header row is `header`: one
    /// of [`LogKind::widths`] when the header is the current one or an
    /// older layout of it, else `None` (the file is not read).
    pub fn width_of<'a>(self, header: impl IntoIterator<Item = &'a [u8]>) -> Option<usize> {
        let want = self.header();
        let mut n = 0;
        for got in header {
            if want.get(n).is_none_or(|w| w.as_bytes() != got) {
                return None;
            }
            n += 1;
        }
        self.widths().contains(&n).then_some(n)
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

/// A column of a log file: its place in the row and its name in the header.
pub trait Column: Copy {
    /// The column's index in a row.
    fn index(self) -> usize;
    /// The column's name in the header row.
    fn name(self) -> &'static str;
}

/// Declares a file's columns once, in order: the enum, its `ALL` list, its
/// names, and the header row made of them.
macro_rules! columns {
    ($(#[$doc:meta])* $ty:ident, $header:ident, $n:literal: $($col:ident = $name:literal,)*) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $ty { $($col,)* }

        impl $ty {
            /// Every column, in the order of the file.
            pub(crate) const ALL: [$ty; $n] = [$($ty::$col,)*];
        }

        impl Column for $ty {
            fn index(self) -> usize {
                self as usize
            }
            fn name(self) -> &'static str {
                match self { $($ty::$col => $name,)* }
            }
        }

        #[doc = concat!("The header row, in [`", stringify!($ty), "`]'s order.")]
        pub const $header: [&str; $n] = [$($name,)*];
    };
}

columns! {
    /// The columns of an events file: one row per accepted datagram.
    EventCol, EVENT_HEADER, 12:
    Received = "received",
    Gateway = "gateway",
    Kind = "kind",
    Seq = "seq",
    Part = "part",
    Parts = "parts",
    Sent = "sent",
    Source = "source",
    Tunnels = "tunnels",
    Text = "text",
    Period = "period",
    Until = "until",
}

columns! {
    /// The columns of a tunnels file: one row per tunnel per report part.
    TunnelCol, TUNNEL_HEADER, 19:
    Received = "received",
    Gateway = "gateway",
    Seq = "seq",
    Part = "part",
    Pid = "pid",
    User = "user",
    Kind = "kind",
    Bind = "bind",
    ListenPort = "listen_port",
    TargetHost = "target_host",
    TargetPort = "target_port",
    Dest = "dest",
    Started = "started",
    Start = "start",
    CpuTime = "cpu_time",
    Listening = "listening",
    Vnc = "vnc",
    Connections = "connections",
    Connected = "connected",
}

/// One accepted datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// When the collector received it.
    pub received: u64,
    pub gateway: String,
    pub kind: EventKind,
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
    /// The longest silence the gateway declared (`period` on the wire),
    /// seconds; `None` when it declared none, and in older files.
    pub period: Option<u32>,
    /// The end of a maintenance silence (`maintenance` rows), Unix seconds.
    pub until: Option<u64>,
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

/// A column's text, or why there is none.
fn text(rec: &csv::StringRecord, col: impl Column) -> Result<&str, String> {
    rec.get(col.index())
        .ok_or_else(|| format!("missing column '{}'", col.name()))
}

/// A column's number, `None` when empty or missing (a column an older
/// layout does not have), or why it is not one.
fn opt_num<T: std::str::FromStr>(
    rec: &csv::StringRecord,
    col: impl Column,
) -> Result<Option<T>, String> {
    match rec.get(col.index()) {
        None | Some("") => Ok(None),
        Some(_) => num(rec, col).map(Some),
    }
}

/// A column's number, or why it is not one.
fn num<T: std::str::FromStr>(rec: &csv::StringRecord, col: impl Column) -> Result<T, String> {
    let s = text(rec, col)?;
    s.parse()
        .map_err(|_| format!("column '{}': '{s}' is not a number in range", col.name()))
}

/// A row has the columns of one of its kind's layouts ([`LogKind::widths`];
/// the file's header says which, and the readers check the row against it).
fn check_len(rec: &csv::StringRecord, kind: LogKind) -> Result<(), String> {
    let widths = kind.widths();
    if widths.contains(&rec.len()) {
        Ok(())
    } else {
        Err(format!("{} columns, expected {}", rec.len(), widths[0]))
    }
}

/// One field of a row as it is written: text, or a number written in
/// decimal without copying it into a `String` first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    Text(&'a str),
    Num(u64),
    /// Strings written joined by a single space (`connected`).
    List(&'a [String]),
}

impl Field<'_> {
    /// A number, or the empty field for `None`.
    fn opt(n: Option<u64>) -> Field<'static> {
        n.map_or(Field::Text(""), Field::Num)
    }
}

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Text(s) => f.write_str(s),
            Field::Num(n) => write!(f, "{n}"),
            Field::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    f.write_str(item)?;
                }
                Ok(())
            }
        }
    }
}

/// The entries of a `connected` column: split on spaces, none when empty.
pub fn connected_list(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// An event row, borrowed (see [`EventRow`] for the fields).
#[derive(Clone, Copy, Debug)]
pub struct EventRef<'a> {
    pub received: u64,
    pub gateway: &'a str,
    pub kind: EventKind,
    pub seq: u64,
    pub part: u32,
    pub parts: u32,
    pub sent: u64,
    pub source: &'a str,
    pub tunnels: u32,
    pub text: &'a str,
    pub period: Option<u32>,
    pub until: Option<u64>,
}

impl<'a> EventRef<'a> {
    /// The columns, in [`EVENT_HEADER`]'s order.
    pub fn fields(&self) -> [Field<'a>; EVENT_HEADER.len()] {
        EventCol::ALL.map(|col| match col {
            EventCol::Received => Field::Num(self.received),
            EventCol::Gateway => Field::Text(self.gateway),
            EventCol::Kind => Field::Text(self.kind.as_str()),
            EventCol::Seq => Field::Num(self.seq),
            EventCol::Part => Field::Num(self.part.into()),
            EventCol::Parts => Field::Num(self.parts.into()),
            EventCol::Sent => Field::Num(self.sent),
            EventCol::Source => Field::Text(self.source),
            EventCol::Tunnels => Field::Num(self.tunnels.into()),
            EventCol::Text => Field::Text(self.text),
            EventCol::Period => Field::opt(self.period.map(u64::from)),
            EventCol::Until => Field::opt(self.until),
        })
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
    pub fn fields(&self) -> [Field<'a>; TUNNEL_HEADER.len()] {
        let t = self.tunnel;
        TunnelCol::ALL.map(|col| match col {
            TunnelCol::Received => Field::Num(self.received),
            TunnelCol::Gateway => Field::Text(self.gateway),
            TunnelCol::Seq => Field::Num(self.seq),
            TunnelCol::Part => Field::Num(self.part.into()),
            TunnelCol::Pid => Field::Num(t.pid.into()),
            TunnelCol::User => Field::Text(&t.user),
            TunnelCol::Kind => Field::Text(t.kind.letter()),
            TunnelCol::Bind => Field::Text(&t.bind),
            TunnelCol::ListenPort => Field::Num(t.listen_port.into()),
            TunnelCol::TargetHost => Field::Text(&t.target_host),
            TunnelCol::TargetPort => Field::Num(t.target_port.into()),
            TunnelCol::Dest => Field::Text(&t.dest),
            TunnelCol::Started => match t.started {
                Some(s) => Field::Num(s),
                None => Field::Text(""),
            },
            TunnelCol::Start => Field::Text(&t.start),
            TunnelCol::CpuTime => Field::Text(&t.cpu_time),
            TunnelCol::Listening => Field::Text(t.listening.as_str()),
            TunnelCol::Vnc => Field::Text(t.vnc.as_str()),
            TunnelCol::Connections => Field::opt(t.connections.map(u64::from)),
            TunnelCol::Connected => Field::List(&t.connected),
        })
    }
}

/// A row seen as the writer's borrowed row (what the collector writes).
impl<'a> From<&'a EventRow> for EventRef<'a> {
    fn from(row: &'a EventRow) -> EventRef<'a> {
        EventRef {
            received: row.received,
            gateway: &row.gateway,
            kind: row.kind,
            seq: row.seq,
            part: row.part,
            parts: row.parts,
            sent: row.sent,
            source: &row.source,
            tunnels: row.tunnels,
            text: &row.text,
            period: row.period,
            until: row.until,
        }
    }
}

impl EventRow {
    /// The row's fields as the collector writes them.
    pub fn to_record(&self) -> [String; EVENT_HEADER.len()] {
        EventRef::from(self).fields().map(|f| f.to_string())
    }

    /// The row of a record, or why it is malformed.
    pub fn from_record(rec: &csv::StringRecord) -> Result<EventRow, String> {
        use EventCol as C;
        check_len(rec, LogKind::Events)?;
        Ok(EventRow {
            received: num(rec, C::Received)?,
            gateway: text(rec, C::Gateway)?.to_string(),
            kind: EventKind::parse(text(rec, C::Kind)?),
            seq: num(rec, C::Seq)?,
            part: num(rec, C::Part)?,
            parts: num(rec, C::Parts)?,
            sent: num(rec, C::Sent)?,
            source: text(rec, C::Source)?.to_string(),
            tunnels: num(rec, C::Tunnels)?,
            text: text(rec, C::Text)?.to_string(),
            period: opt_num(rec, C::Period)?,
            until: opt_num(rec, C::Until)?,
        })
    }
}

/// A row seen as the writer's borrowed row (what the collector writes).
impl<'a> From<&'a TunnelRow> for TunnelRef<'a> {
    fn from(row: &'a TunnelRow) -> TunnelRef<'a> {
        TunnelRef {
            received: row.received,
            gateway: &row.gateway,
            seq: row.seq,
            part: row.part,
            tunnel: &row.tunnel,
        }
    }
}

impl TunnelRow {
    /// The row's fields as the collector writes them.
    pub fn to_record(&self) -> [String; TUNNEL_HEADER.len()] {
        TunnelRef::from(self).fields().map(|f| f.to_string())
    }

    /// The row of a record, or why it is malformed.
    pub fn from_record(rec: &csv::StringRecord) -> Result<TunnelRow, String> {
        use TunnelCol as C;
        check_len(rec, LogKind::Tunnels)?;
        let health = |col: C| {
            let s = text(rec, col)?;
            Health::parse(s)
                .ok_or_else(|| format!("column '{}': '{s}' is not yes, no or unknown", col.name()))
        };
        let kind = text(rec, C::Kind)?;
        let started = match text(rec, C::Started)? {
            "" => None,
            _ => Some(num(rec, C::Started)?),
        };
        Ok(TunnelRow {
            received: num(rec, C::Received)?,
            gateway: text(rec, C::Gateway)?.to_string(),
            seq: num(rec, C::Seq)?,
            part: num(rec, C::Part)?,
            tunnel: Tunnel {
                pid: num(rec, C::Pid)?,
                user: text(rec, C::User)?.to_string(),
                kind: Kind::from_letter(kind)
                    .ok_or_else(|| format!("column 'kind': '{kind}' is not L, R or D"))?,
                bind: text(rec, C::Bind)?.to_string(),
                listen_port: num(rec, C::ListenPort)?,
                target_host: text(rec, C::TargetHost)?.to_string(),
                target_port: num(rec, C::TargetPort)?,
                dest: text(rec, C::Dest)?.to_string(),
                started,
                start: text(rec, C::Start)?.to_string(),
                cpu_time: text(rec, C::CpuTime)?.to_string(),
                listening: health(C::Listening)?,
                vnc: health(C::Vnc)?,
                connections: opt_num(rec, C::Connections)?,
                connected: connected_list(rec.get(C::Connected.index()).unwrap_or("")),
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
            kind: EventKind::Message,
            seq: 7,
            part: 1,
            parts: 1,
            sent: 9,
            source: "127.0.0.1:4000".into(),
            tunnels: 0,
            text: "hello, \"world\"\nbye".into(),
            period: None,
            until: None,
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
        // Who is on it, and a declared period: written and read back.
        let t = TunnelRow {
            tunnel: Tunnel {
                connections: Some(2),
                connected: vec!["192.0.2.15".into(), "novaroc1".into()],
                ..t.tunnel
            },
            ..t
        };
        let rec = csv::StringRecord::from(t.to_record().to_vec());
        assert_eq!(&rec[TunnelCol::Connected.index()], "192.0.2.15 novaroc1");
        assert_eq!(TunnelRow::from_record(&rec).unwrap(), t);
        let e = EventRow {
            period: Some(35),
            until: Some(1_763_863_200),
            ..e
        };
        let rec = csv::StringRecord::from(e.to_record().to_vec());
        assert_eq!(EventRow::from_record(&rec).unwrap(), e);
    }
}
