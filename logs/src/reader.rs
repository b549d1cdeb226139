//! Reading the logs back: the rules that say which datagrams and which
//! complete reports the logs hold, and one plain reader that applies them.
//!
//! The rules (the collector writes a datagram's tunnel rows, then its event
//! row, then syncs, then acks):
//!
//! 1. Days are read oldest first, each day's events file, then its tunnels
//!    file. A row that does not parse is *malformed* and skipped; a file
//!    whose header is not the schema's is skipped whole.
//! 2. A datagram is in the logs when its event row is. An event row is
//!    taken once per `(gateway, seq, part)`: a later copy is a
//!    retransmission written again after a crash between write and ack.
//! 3. A report part needs `1 <= part <= parts <= MAX_PARTS`, and the same
//!    `parts` as the first part taken of its report; otherwise the row is
//!    malformed.
//! 4. A tunnel row belongs to the event row with its `(gateway, seq, part)`
//!    in the same day's files (the collector writes a datagram's rows and
//!    its event row together); one without is an *orphan* (an attempt never
//!    acked) and ignored.
//! 5. A report is *complete* once parts `1..=parts` are all taken; it
//!    happened when the last of them was received. Its tunnels are the
//!    tunnel rows of its parts, once per [`TunnelKey`] (a retransmission's
//!    rows may be there twice), as first written.
//! 6. A complete report with fewer tunnels than its event rows announce
//!    (some of its tunnel rows were malformed) is *damaged* and skipped:
//!    applying it would end, then restart, the sessions of the tunnels
//!    lost. Its event rows still count as signs of life.
//! 7. A complete report replaces its gateway's tunnel list when it is
//!    *newer* ([`replaces`]): completed later, by the second received and
//!    within one second by `seq`, which is the order [`read`] gives. Never
//!    by `seq` alone: it is the gateway's clock, which may step back.
//!
//! [`read`] is the reference: obviously correct rather than fast (it owns
//! every row, through the `csv` crate). The collector rebuilds its state
//! with it at start. webgen's fast reader applies the same rules without
//! owning rows, and is property-tested against it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use gateway_client::tunnel::Tunnel;
use jiff::civil::Date;

use crate::error::Error;
use crate::files::{self, DayFiles};
use crate::identity::TunnelKey;
use crate::kind::EventKind;
use crate::schema::{EventRow, TunnelRow};

/// Reports of more parts than this are malformed (a report of 10,000
/// tunnels needs well under a hundred 1,400-byte datagrams).
pub const MAX_PARTS: u32 = 4096;

/// What to read.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// The UTC days `from..=to`.
    pub from: Date,
    pub to: Date,
    /// Reports are assembled only from parts received on this day or later
    /// (tunnel rows of earlier days are not read); earlier ones are neither
    /// reported nor counted.
    pub reports_from: Date,
    /// Event rows received after this time are ignored.
    pub until: u64,
}

/// Rule 7: whether a complete report, completed in the second `received`
/// with `seq`, replaces the one that completed last, `last` (its second
/// and seq; `None` when there was none). Within one second the higher seq
/// wins (the order [`read`] gives); a report of another second always
/// does, so a gateway whose clock stepped back (lower seqs), or that once
/// sent a seq of 2^64-1, is not hidden for longer than that second. (An
/// earlier second than `last`'s is seen only live, after the collector's
/// own clock stepped back: that report came last, so it is taken.)
pub fn replaces(last: Option<(u64, u64)>, received: u64, seq: u64) -> bool {
    last.is_none_or(|(at, last_seq)| received != at || seq >= last_seq)
}

/// A complete report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub gateway: String,
    pub seq: u64,
    /// The gateway's send time (of its first part).
    pub sent: u64,
    /// When its last part was received.
    pub received: u64,
    pub tunnels: Vec<Tunnel>,
    /// The period its gateway declared (of its first part).
    pub period: Option<u32>,
}

/// One thing the logs say happened, in the order the collector received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An accepted datagram.
    Event(EventRow),
    /// A complete, undamaged report, right after the event that completed it.
    Report(Report),
}

/// A part of a report that was not complete at the end of the window, with
/// its tunnels (the collector hands these to its reassembler, so that a
/// report whose last part arrives after a restart still completes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub event: EventRow,
    pub tunnels: Vec<Tunnel>,
    /// Fewer tunnels than the event row announces.
    pub damaged: bool,
}

/// What reading skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    pub malformed_rows: usize,
    pub wrong_header_files: usize,
    pub duplicate_events: usize,
    pub orphan_rows: usize,
    pub damaged_reports: usize,
}

/// Everything read.
#[derive(Debug, Default)]
pub struct Logs {
    pub items: Vec<Item>,
    /// Parts of reports still incomplete, in the order received.
    pub pending: Vec<Part>,
    pub skipped: Skipped,
}

/// A report being assembled.
struct Assembly {
    parts: u32,
    /// The event rows taken, with the day of their file, by part.
    events: HashMap<u32, (Date, EventRow)>,
}

/// A report part's key: gateway, seq, part, and the day of the files that
/// hold its rows.
type PartKey = (String, u64, u32, Date);

/// Reads the logs of `dir` in `window` by the rules above. A missing
/// directory holds no logs.
pub fn read(dir: &Path, window: Window) -> Result<Logs, Error> {
    let days = match files::days(dir, window.from, window.to) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("cannot list the log directory", dir, e)),
    };
    let mut logs = Logs::default();
    let mut taken: HashSet<(String, u64, u32)> = HashSet::new();
    let mut rows: HashMap<PartKey, Vec<Tunnel>> = HashMap::new();
    let mut events: Vec<(Date, EventRow)> = Vec::new();
    for day in &days {
        let day_events = read_day(day, window, &mut taken, &mut rows, &mut logs.skipped)?;
        events.extend(day_events.into_iter().map(|e| (day.day, e)));
    }
    assemble(events, &rows, window, &mut logs);
    Ok(logs)
}

/// One day's accepted event rows, in the order received, and its tunnel
/// rows added to `rows`.
fn read_day(
    day: &DayFiles,
    window: Window,
    taken: &mut HashSet<(String, u64, u32)>,
    rows: &mut HashMap<PartKey, Vec<Tunnel>>,
    skipped: &mut Skipped,
) -> Result<Vec<EventRow>, Error> {
    let mut events = Vec::new();
    if let Some(path) = &day.events {
        let read = files::read_events(path)?;
        skipped.malformed_rows += read.malformed;
        skipped.wrong_header_files += usize::from(read.wrong_header);
        for e in read.rows {
            if e.received > window.until {
                continue;
            }
            if e.part == 0 || e.parts == 0 || e.part > e.parts || e.parts > MAX_PARTS {
                skipped.malformed_rows += 1;
                continue;
            }
            if !taken.insert((e.gateway.clone(), e.seq, e.part)) {
                skipped.duplicate_events += 1;
                continue;
            }
            events.push(e);
        }
    }
    // In the order received; rows of the same second in the order of their
    // seq, then as written.
    events.sort_by_key(|e| (e.received, e.seq));
    if let Some(path) = day
        .tunnels
        .as_ref()
        .filter(|_| day.day >= window.reports_from)
    {
        let read = files::read_tunnels(path)?;
        skipped.malformed_rows += read.malformed;
        skipped.wrong_header_files += usize::from(read.wrong_header);
        for r in read.rows {
            let TunnelRow {
                gateway,
                seq,
                part,
                tunnel,
                ..
            } = r;
            rows.entry((gateway, seq, part, day.day))
                .or_default()
                .push(tunnel);
        }
    }
    Ok(events)
}

/// Turns the accepted event rows into items: each event, and each report
/// right after the event that completed it.
fn assemble(
    events: Vec<(Date, EventRow)>,
    rows: &HashMap<PartKey, Vec<Tunnel>>,
    window: Window,
    logs: &mut Logs,
) {
    let mut used: HashSet<&PartKey> = HashSet::new();
    let mut assemblies: HashMap<(String, u64), Assembly> = HashMap::new();
    for (day, e) in events {
        let is_part =
            e.kind == EventKind::Report && files::day_of(e.received) >= window.reports_from;
        if !is_part {
            logs.items.push(Item::Event(e));
            continue;
        }
        let key = (e.gateway.clone(), e.seq);
        let asm = assemblies.entry(key.clone()).or_insert_with(|| Assembly {
            parts: e.parts,
            events: HashMap::new(),
        });
        if asm.parts != e.parts {
            logs.skipped.malformed_rows += 1;
            continue;
        }
        asm.events.insert(e.part, (day, e.clone()));
        logs.items.push(Item::Event(e));
        if asm.events.len() as u32 == asm.parts
            && let Some(asm) = assemblies.remove(&key)
        {
            if let Some(report) = complete(asm, rows, &mut used) {
                logs.items.push(Item::Report(report));
            } else {
                logs.skipped.damaged_reports += 1;
            }
        }
    }
    let mut pending: Vec<Part> = assemblies
        .into_values()
        .flat_map(|asm| asm.events.into_values())
        .map(|(day, event)| {
            let tunnels = part_tunnels(day, &event, rows, &mut used);
            Part {
                damaged: tunnels.len() < event.tunnels as usize,
                event,
                tunnels,
            }
        })
        .collect();
    pending.sort_by_key(|p| (p.event.received, p.event.seq, p.event.part));
    logs.pending = pending;
    logs.skipped.orphan_rows = rows
        .iter()
        .filter(|(k, _)| !used.contains(k))
        .map(|(_, v)| v.len())
        .sum();
}

/// A part's tunnels: its rows, once per identity, as first written.
fn part_tunnels<'a>(
    day: Date,
    event: &EventRow,
    rows: &'a HashMap<PartKey, Vec<Tunnel>>,
    used: &mut HashSet<&'a PartKey>,
) -> Vec<Tunnel> {
    let Some((key, list)) =
        rows.get_key_value(&(event.gateway.clone(), event.seq, event.part, day))
    else {
        return Vec::new();
    };
    used.insert(key);
    let mut seen = HashSet::new();
    list.iter()
        .filter(|t| seen.insert(TunnelKey::of(t)))
        .cloned()
        .collect()
}

/// The report of a complete assembly, or `None` when it is damaged.
fn complete<'a>(
    asm: Assembly,
    rows: &'a HashMap<PartKey, Vec<Tunnel>>,
    used: &mut HashSet<&'a PartKey>,
) -> Option<Report> {
    let mut parts: Vec<(Date, EventRow)> = asm.events.into_values().collect();
    parts.sort_by_key(|(_, e)| e.part);
    let announced: u64 = parts.iter().map(|(_, e)| u64::from(e.tunnels)).sum();
    let mut seen: HashSet<TunnelKey> = HashSet::new();
    let mut tunnels: Vec<Tunnel> = Vec::new();
    let per_part: Vec<Vec<Tunnel>> = parts
        .iter()
        .map(|(day, e)| part_tunnels(*day, e, rows, used))
        .collect();
    for t in per_part.iter().flatten() {
        if seen.insert(TunnelKey::of(t)) {
            tunnels.push(t.clone());
        }
    }
    if (tunnels.len() as u64) < announced {
        return None;
    }
    let first = &parts[0].1;
    Some(Report {
        gateway: first.gateway.clone(),
        seq: first.seq,
        sent: first.sent,
        received: parts
            .iter()
            .map(|(_, e)| e.received)
            .max()
            .unwrap_or(first.received),
        tunnels,
        period: first.period,
    })
}

#[cfg(test)]
mod tests {
    use super::replaces;

    #[test]
    fn a_report_replaces_the_last_by_second_then_seq_never_by_seq_alone() {
        assert!(replaces(None, 1000, 5));
        // Same second: the higher seq stays.
        assert!(replaces(Some((1000, 5)), 1000, 6));
        assert!(!replaces(Some((1000, 5)), 1000, 4));
        // A later second: taken whatever its seq (a clock stepped back, or
        // the last one had seq 2^64-1).
        assert!(replaces(Some((1000, 5_000_000)), 1060, 4_000_000));
        assert!(replaces(Some((1000, u64::MAX)), 1001, 1));
    }
}
