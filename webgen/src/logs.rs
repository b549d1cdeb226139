//! Reading the collector's CSV logs as one ordered stream of events and
//! complete reports.
//!
//! The schema (file names, columns, row types) is `collector::schema`; this
//! module applies its reading rules: a datagram is in the logs when its
//! *event* row is, so tunnel rows whose `(gateway, seq, part)` has no event
//! row are ignored; a report is complete when event rows cover parts
//! `1..=parts`; a row written twice (a retransmission after a crash between
//! write and ack) counts once. Malformed or truncated rows are skipped and
//! counted per file, never fatal.
//!
//! The logs are read one UTC day at a time and never held whole: the events
//! file of a day is read first (one row per datagram, small), then its
//! tunnels file is streamed through one reused [`csv::ByteRecord`], filled
//! by `csvread::FastReader` (plain lines split directly, anything quoted through
//! `csv_core`, same records and line numbers as `csv::Reader`). Each
//! tunnel is interned once in the [`Catalog`] under its identity (gateway,
//! pid, kind, bind, listen port, target host and port), so a report is just a
//! sorted list of small [`Obs`] values. Days are parsed in parallel (one
//! per core, each with ids of its own) and merged in order: their ids are
//! mapped to the run's [`Catalog`], and their events and complete reports
//! handed, in the order they were received, to a [`Visitor`] that
//! aggregates on the fly (`state::Tracker`).
//!
//! A datagram's tunnel rows sit in the same day's files as its event row
//! (the collector writes them together; rule 4 of `logs::reader`). The
//! parts of one report may not: a report still incomplete at the end of a
//! day is carried to the next day's merge ([`Carry`]), where its last parts
//! complete it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use gateway_client::tunnel::{Health, Tunnel};
use jiff::civil::Date;
use logs::files::DayFiles;
use logs::reader::MAX_PARTS;
use logs::schema::{self, Column, EventCol, EventRow, LogKind, TunnelCol, TunnelRow};
use logs::{EventKind, IDENTITY};

use crate::csvread::FastReader;
use crate::error::Error;

/// Index of a gateway in [`Catalog::gateways`].
pub(crate) type GwId = u32;
/// Index of a tunnel in [`Catalog::tunnels`].
pub(crate) type TunnelId = u32;

/// Every gateway and tunnel seen, each stored once.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub gateways: Vec<String>,
    pub(crate) gw_index: FastMap<Box<[u8]>, GwId>,
    /// The tunnel as first seen (owner, destination and ps columns included).
    pub tunnels: Vec<TunnelEntry>,
    /// By the gateway's id (4 bytes, little-endian), then each identity
    /// column's length (4 bytes) and bytes.
    pub(crate) tunnel_index: FastMap<Box<[u8]>, TunnelId>,
}

#[derive(Debug)]
pub(crate) struct TunnelEntry {
    pub gateway: GwId,
    pub tunnel: Tunnel,
}

impl Catalog {
    fn gateway_id(&mut self, name: &str) -> GwId {
        if let Some(&id) = self.gw_index.get(name.as_bytes()) {
            return id;
        }
        let id = self.gateways.len() as GwId;
        self.gateways.push(name.to_string());
        self.gw_index.insert(name.as_bytes().into(), id);
        id
    }

    fn find_gateway(&self, name: &[u8]) -> Option<GwId> {
        self.gw_index.get(name).copied()
    }

    pub(crate) fn gateway(&self, id: GwId) -> &str {
        &self.gateways[id as usize]
    }

    pub(crate) fn tunnel(&self, id: TunnelId) -> &TunnelEntry {
        &self.tunnels[id as usize]
    }
}

/// One tunnel in one report, with the health it had then and who was on
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Obs {
    pub id: TunnelId,
    pub listening: Health,
    pub vnc: Health,
    /// Connections to it (`None`: unknown, as in older files).
    pub connections: Option<u32>,
    /// Who made them, as the `connected` column holds it (entries joined by
    /// a space); `None` when none or unknown. Shared by the rows of a day
    /// that say the same.
    pub connected: Option<Arc<str>>,
}

/// One accepted datagram (each part of a long report is one).
#[derive(Debug)]
pub(crate) struct Event {
    pub received: u64,
    pub gateway: GwId,
    pub kind: EventKind,
    pub seq: u64,
    /// Part `part` of a report (1 for everything else).
    pub part: u32,
    /// The operator's message (empty for everything else).
    pub text: String,
    /// The gateway's send time.
    pub sent: u64,
    /// The end of a `maintenance` silence, by the gateway's clock.
    pub until: Option<u64>,
    /// The longest silence the gateway declared (`logs::declared_period`).
    pub period: Option<u32>,
}

impl Event {
    /// Keeps the event unless the previous day already had it; records its key.
    fn part_key_ok(
        &self,
        previous: &FastSet<(GwId, u64, u32)>,
        seen: &mut FastSet<(GwId, u64, u32)>,
        stats: &mut ReadStats,
    ) -> bool {
        let key = (self.gateway, self.seq, self.part);
        if previous.contains(&key) {
            stats.duplicate_rows += 1;
            return false;
        }
        seen.insert(key);
        true
    }
}

/// One complete report: every tunnel the gateway saw at `sent`.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    /// When its last part was received.
    pub received: u64,
    pub gateway: GwId,
    pub seq: u64,
    /// Sorted by tunnel id, each tunnel once.
    pub tunnels: &'a [Obs],
}

/// The consumer of the stream. Calls come in the order the collector
/// received the datagrams; a report comes right after the event row that
/// completed it.
pub(crate) trait Visitor {
    fn event(&mut self, catalog: &Catalog, event: &Event);
    fn report(&mut self, catalog: &Catalog, report: &Report<'_>);
}

/// What reading found, for stderr and the pages' footers.
#[derive(Debug, Default)]
pub(crate) struct ReadStats {
    /// The data directory does not exist.
    pub missing_dir: bool,
    pub files: Vec<FileStats>,
    /// Tunnel rows with no event row for their (gateway, seq, part).
    pub orphan_rows: u64,
    /// Rows seen again (retransmissions), counted once.
    pub duplicate_rows: u64,
    /// Reports with parts missing at the end of their day.
    pub incomplete_reports: u64,
    /// Complete reports with fewer valid tunnel rows than their event rows
    /// announce (some were malformed): skipped.
    pub damaged_reports: u64,
    /// Earliest and latest `received` of an accepted event row.
    pub first_received: Option<u64>,
    pub last_received: Option<u64>,
    /// The latest `received` of the event rows checked against `until`
    /// (taken or not): a day whose rows are all before a later `until`
    /// reads the same then (what `cache` needs to know).
    pub(crate) latest_checked: Option<u64>,
}

impl ReadStats {
    /// Adds a day's findings to the run's.
    fn absorb(&mut self, day: ReadStats) {
        self.files.extend(day.files);
        self.orphan_rows += day.orphan_rows;
        self.duplicate_rows += day.duplicate_rows;
        self.incomplete_reports += day.incomplete_reports;
        self.damaged_reports += day.damaged_reports;
        self.latest_checked = self.latest_checked.max(day.latest_checked);
        for t in [day.first_received, day.last_received]
            .into_iter()
            .flatten()
        {
            self.first_received = Some(self.first_received.map_or(t, |f| f.min(t)));
            self.last_received = Some(self.last_received.map_or(t, |l| l.max(t)));
        }
    }

    pub(crate) fn malformed(&self) -> u64 {
        self.files.iter().map(|f| f.malformed).sum()
    }

    pub(crate) fn has_data(&self) -> bool {
        self.first_received.is_some()
    }

    /// One line per file with skipped rows or trouble, ready for stderr.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.files {
            if let Some(problem) = &f.problem {
                out.push(format!("{}: {problem}", f.path.display()));
            }
            if f.malformed > 0 {
                let (line, why) = f.first_bad.clone().unwrap_or_default();
                out.push(format!(
                    "{}: skipped {} malformed row{} (first at line {line}: {why})",
                    f.path.display(),
                    f.malformed,
                    if f.malformed == 1 { "" } else { "s" }
                ));
            }
        }
        if self.damaged_reports > 0 {
            out.push(format!(
                "skipped {} report{} missing malformed tunnel rows",
                self.damaged_reports,
                if self.damaged_reports == 1 { "" } else { "s" }
            ));
        }
        out
    }
}

#[derive(Debug)]
pub(crate) struct FileStats {
    pub path: PathBuf,
    pub rows: u64,
    pub malformed: u64,
    /// Line number and reason of the first malformed row.
    pub first_bad: Option<(u64, String)>,
    /// Why the file could not be read (whole or from some point on).
    pub problem: Option<String>,
}

impl FileStats {
    fn new(path: PathBuf) -> FileStats {
        FileStats {
            path,
            rows: 0,
            malformed: 0,
            first_bad: None,
            problem: None,
        }
    }

    fn bad(&mut self, line: u64, why: impl Into<String>) {
        self.malformed += 1;
        if self.first_bad.is_none() {
            self.first_bad = Some((line, why.into()));
        }
    }
}

/// The log files of a directory, by day, for the days in `from..=to`.
/// A missing directory is `Ok(None)`: there is no data yet.
pub(crate) fn list_days(dir: &Path, from: Date, to: Date) -> Result<Option<Vec<DayFiles>>, Error> {
    match logs::files::days(dir, from, to) {
        Ok(days) => Ok(Some(days)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::DataDir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// A report being put together from its parts.
pub(crate) struct Assembly {
    pub(crate) parts: u32,
    /// By part: `None` until its event row is taken, then the tunnels that
    /// row says the part carries (one allocation for both facts).
    pub(crate) have: Vec<Option<u32>>,
    pub(crate) missing: u32,
    pub(crate) received: u64,
    pub(crate) tunnels: Vec<Obs>,
}

impl Assembly {
    /// Adds the parts of `later` (the same report, read on a later day)
    /// that this one lacks, with their tunnels.
    fn absorb(&mut self, later: Assembly) {
        for (i, have) in later.have.iter().enumerate() {
            if have.is_some() && self.have[i].is_none() {
                self.have[i] = *have;
                self.missing -= 1;
            }
        }
        self.received = self.received.max(later.received);
        self.tunnels.extend(later.tunnels);
    }

    /// The tunnels the event rows taken say the parts carry.
    fn expected(&self) -> u64 {
        self.have.iter().flatten().map(|&n| u64::from(n)).sum()
    }

    /// A complete assembly's tunnels, each once (rule 5 of `logs::reader`),
    /// and how many rows were repeats; `None` when it is damaged (rule 6).
    fn finish(mut self) -> (Option<Vec<Obs>>, u64) {
        self.tunnels.sort_unstable_by_key(|o| o.id);
        let before = self.tunnels.len();
        self.tunnels.dedup_by_key(|o| o.id);
        let repeats = (before - self.tunnels.len()) as u64;
        let expected = self.expected();
        // Some of its tunnel rows were malformed: taking it as it is would
        // end, then restart, the sessions of the tunnels lost.
        let damaged = (self.tunnels.len() as u64) < expected;
        ((!damaged).then_some(self.tunnels), repeats)
    }
}

/// What a day hands the next: its datagram keys (a retransmission written
/// again after midnight counts once) and the reports it left incomplete
/// (their last parts may come after midnight), by run ids.
#[derive(Default)]
pub(crate) struct Carry {
    pub(crate) previous: FastSet<(GwId, u64, u32)>,
    pub(crate) partial: FastMap<(GwId, u64), Assembly>,
}

/// Everything reading hands from one day to the next: the run's catalog,
/// what was found so far, and the [`Carry`]. `cache` saves it after the
/// closed days and reads on from it.
#[derive(Default)]
pub(crate) struct Reading {
    pub(crate) catalog: Catalog,
    pub(crate) stats: ReadStats,
    pub(crate) carry: Carry,
}

impl Reading {
    /// After the last day: the reports still incomplete are counted.
    pub(crate) fn finish(mut self) -> (Catalog, ReadStats) {
        self.stats.incomplete_reports += self.carry.partial.len() as u64;
        (self.catalog, self.stats)
    }
}

/// Reads the logs of `dir` for the UTC days `from..=to`, skipping rows
/// received after `until`, and feeds them to `visitor` in order.
pub(crate) fn read(
    dir: &Path,
    from: Date,
    to: Date,
    until: u64,
    catalog: &mut Catalog,
    visitor: &mut impl Visitor,
) -> Result<ReadStats, Error> {
    let Some(days) = list_days(dir, from, to)? else {
        return Ok(ReadStats {
            missing_dir: true,
            ..ReadStats::default()
        });
    };
    let mut reading = Reading {
        catalog: std::mem::take(catalog),
        ..Reading::default()
    };
    read_days(&days, until, &mut reading, visitor);
    let (read_catalog, stats) = reading.finish();
    *catalog = read_catalog;
    Ok(stats)
}

/// Reads `days` (in order, the days after those `reading` holds) into
/// `reading`, feeding the visitor, skipping rows received after `until`.
pub(crate) fn read_days(
    days: &[DayFiles],
    until: u64,
    reading: &mut Reading,
    visitor: &mut impl Visitor,
) {
    let Reading {
        catalog,
        stats,
        carry,
    } = reading;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    if threads == 1 || days.len() < 2 {
        for day in days {
            merge_day(parse_day(day, until), catalog, visitor, stats, carry);
        }
        return;
    }
    // Days are parsed in parallel (one per core) while this thread merges
    // the ones before them into the stream, in order. At most `threads`
    // days are handed out ahead of the merge, so memory stays that of a
    // few days however long the history.
    let (job_tx, job_rx) = mpsc::channel::<usize>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, std::thread::Result<DayData>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (job_rx, done_tx) = (&job_rx, done_tx.clone());
            s.spawn(move || {
                while let Ok(Ok(i)) = job_rx.lock().map(|rx| rx.recv()) {
                    let day = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        parse_day(&days[i], until)
                    }));
                    if done_tx.send((i, day)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut handed_out = 0;
        while handed_out < days.len().min(threads) {
            let _ = job_tx.send(handed_out);
            handed_out += 1;
        }
        let mut parsed: std::collections::BTreeMap<usize, std::thread::Result<DayData>> =
            Default::default();
        for want in 0..days.len() {
            let day = loop {
                if let Some(d) = parsed.remove(&want) {
                    break d;
                }
                // The workers live (and answer every day handed out) as long
                // as `job_tx` does; a panic comes back as an `Err` day.
                let (i, d) = done_rx
                    .recv()
                    .expect("the log-reading threads outlive the merge");
                parsed.insert(i, d);
            };
            if handed_out < days.len() {
                let _ = job_tx.send(handed_out);
                handed_out += 1;
            }
            match day {
                Ok(day) => merge_day(day, catalog, visitor, stats, carry),
                Err(panic) => {
                    drop(job_tx);
                    std::panic::resume_unwind(panic);
                }
            }
        }
        // No more days: the workers' `recv` fails and they end.
        drop(job_tx);
    });
}

/// One day's files, parsed on their own: ids are local to the day until
/// [`merge_day`] maps them to the run's [`Catalog`].
struct DayData {
    catalog: Catalog,
    stats: ReadStats,
    events: Vec<Event>,
    reports: Vec<Complete>,
    /// Reports still missing parts at the end of the day.
    partial: Partial,
}

/// A complete report: (received, seq, gateway, tunnels sorted by id).
type Complete = (u64, u64, GwId, Vec<Obs>);
/// Reports still missing parts, by (gateway, seq).
type Partial = Vec<((GwId, u64), Assembly)>;

fn open(path: &Path, stats: &mut FileStats) -> Option<FastReader<File>> {
    match File::open(path) {
        Ok(f) => Some(FastReader::new(f)),
        Err(e) => {
            stats.problem = Some(format!("cannot open: {e}"));
            None
        }
    }
}

/// Checks the first row against `kind`'s header, the current one or an
/// older layout ([`LogKind::width_of`]), and returns the file's number of
/// columns; `None` (noting why) when the file is not in a schema this
/// version reads. A UTF-8 byte order mark before it is ignored, as the
/// reference reader (`logs::files`, through the `csv` crate) ignores it.
fn check_header(rec: &csv::ByteRecord, kind: LogKind, fs: &mut FileStats) -> Option<usize> {
    let fields = rec.iter().enumerate().map(|(i, a)| match i {
        0 => a.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(a),
        _ => a,
    });
    let width = kind.width_of(fields);
    if width.is_none() {
        fs.problem = Some(format!(
            "header is not '{}': file skipped",
            kind.header().join(",")
        ));
    }
    width
}

/// The row read last, through the schema's own parser (`from_record`), for
/// a row the fast path does not take: that parser decides, and says why a
/// row is malformed. `None` once the row is counted as bad.
fn schema_row<R: Read, T>(
    rdr: &FastReader<R>,
    raw: &mut csv::ByteRecord,
    fs: &mut FileStats,
    line: u64,
    parse: fn(&csv::StringRecord) -> Result<T, String>,
) -> Option<T> {
    rdr.to_byte_record(raw);
    let Ok(rec) = csv::StringRecord::from_byte_record(raw.clone()) else {
        fs.bad(line, "not UTF-8");
        return None;
    };
    parse(&rec).map_err(|why| fs.bad(line, why)).ok()
}

/// Walks a log file: checks its header row against `kind`'s, then calls
/// `row` with the reader on each data row and its line number, counting the
/// rows. A row without the header's number of columns is malformed. A read
/// error ends the walk and is noted as the file's problem; a wrong header
/// skips the file.
fn for_each_row<R: Read>(
    rdr: &mut FastReader<R>,
    kind: LogKind,
    fs: &mut FileStats,
    mut row: impl FnMut(&mut FastReader<R>, u64, &mut FileStats),
) {
    let mut raw = csv::ByteRecord::new();
    let mut line: u64 = 0;
    let mut first = true;
    let mut width = 0;
    loop {
        match rdr.read_record() {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                fs.problem = Some(format!("read error after line {line}: {e}"));
                break;
            }
        }
        line = rdr.line();
        if first {
            first = false;
            rdr.to_byte_record(&mut raw);
            match check_header(&raw, kind, fs) {
                Some(w) => width = w,
                None => break,
            }
            continue;
        }
        fs.rows += 1;
        if rdr.len() != width {
            fs.bad(line, format!("{} columns, expected {width}", rdr.len()));
            continue;
        }
        row(rdr, line, fs);
    }
}

/// One day being parsed: what its events file said so far.
#[derive(Default)]
struct DayParse {
    catalog: Catalog,
    stats: ReadStats,
    seen: FastSet<(GwId, u64, u32)>,
    events: Vec<Event>,
    assemblies: FastMap<(GwId, u64), Assembly>,
}

impl DayParse {
    /// Takes one event row (rules 2 and 3 of `logs::reader`), received no
    /// later than `until`.
    fn event(&mut self, row: EventView, line: u64, until: u64, fs: &mut FileStats) {
        if row.part == 0 || row.parts == 0 || row.part > row.parts || row.parts > MAX_PARTS {
            fs.bad(
                line,
                format!("part {} of {} is impossible", row.part, row.parts),
            );
            return;
        }
        let latest = &mut self.stats.latest_checked;
        *latest = (*latest).max(Some(row.received));
        if row.received > until {
            return;
        }
        let gw = self.catalog.gateway_id(row.gateway);
        let key = (gw, row.seq, row.part);
        if !self.seen.insert(key) {
            self.stats.duplicate_rows += 1;
            return;
        }
        if row.kind == EventKind::Report && !self.report_part(&row, gw, line, fs) {
            self.seen.remove(&key);
            return;
        }
        let stats = &mut self.stats;
        stats.first_received = Some(
            stats
                .first_received
                .map_or(row.received, |f| f.min(row.received)),
        );
        stats.last_received = Some(
            stats
                .last_received
                .map_or(row.received, |l| l.max(row.received)),
        );
        self.events.push(Event {
            received: row.received,
            gateway: gw,
            kind: row.kind,
            seq: row.seq,
            part: row.part,
            text: if row.kind == EventKind::Report {
                String::new()
            } else {
                row.text.to_string()
            },
            sent: row.sent,
            until: row.until,
            period: row.period,
        });
    }

    /// Adds a report part to its assembly; false (and the row is bad) when
    /// it disagrees with an earlier part on the number of parts.
    fn report_part(&mut self, row: &EventView, gw: GwId, line: u64, fs: &mut FileStats) -> bool {
        let asm = self
            .assemblies
            .entry((gw, row.seq))
            .or_insert_with(|| Assembly {
                parts: row.parts,
                have: vec![None; row.parts as usize],
                missing: row.parts,
                received: row.received,
                tunnels: Vec::new(),
            });
        if asm.parts != row.parts {
            fs.bad(
                line,
                format!(
                    "part {} of {} but an earlier part said {} parts",
                    row.part, row.parts, asm.parts
                ),
            );
            return false;
        }
        asm.have[row.part as usize - 1] = Some(row.tunnels);
        asm.missing -= 1;
        asm.received = asm.received.max(row.received);
        true
    }

    /// The complete, undamaged reports (rules 5 and 6), in the order they
    /// were completed, and the incomplete ones (for the next day).
    fn reports(&mut self) -> (Vec<Complete>, Partial) {
        let stats = &mut self.stats;
        let mut reports: Vec<Complete> = Vec::new();
        let mut partial = Vec::new();
        for ((gw, seq), asm) in std::mem::take(&mut self.assemblies) {
            if asm.missing > 0 {
                partial.push(((gw, seq), asm));
                continue;
            }
            let received = asm.received;
            let (tunnels, repeats) = asm.finish();
            stats.duplicate_rows += repeats;
            match tunnels {
                Some(t) => reports.push((received, seq, gw, t)),
                None => stats.damaged_reports += 1,
            }
        }
        // In the order they were completed (the map's order is random), here on
        // the day's own thread: the merge then finds them sorted.
        reports.sort_unstable_by_key(|r| (r.0, r.2, r.1));
        (reports, partial)
    }
}

fn parse_day(day: &DayFiles, until: u64) -> DayData {
    let mut p = DayParse::default();
    if let Some(path) = &day.events {
        let mut fs = FileStats::new(path.clone());
        if let Some(mut rdr) = open(path, &mut fs) {
            let mut raw = csv::ByteRecord::new();
            for_each_row(&mut rdr, LogKind::Events, &mut fs, |rdr, line, fs| {
                match EventView::parse(rdr) {
                    Some(row) => p.event(row, line, until, fs),
                    None => {
                        // Something unusual: the schema's own parser decides,
                        // and says why a row is malformed.
                        if let Some(row) =
                            schema_row(rdr, &mut raw, fs, line, EventRow::from_record)
                        {
                            p.event(EventView::of(&row), line, until, fs);
                        }
                    }
                }
            });
        }
        p.stats.files.push(fs);
    }
    if let Some(path) = &day.tunnels {
        let mut fs = FileStats::new(path.clone());
        // With no report event that day, no tunnel row there can count.
        if !p.assemblies.is_empty()
            && let Some(rdr) = open(path, &mut fs)
        {
            read_tunnels(
                rdr,
                &mut p.catalog,
                &mut p.assemblies,
                &mut fs,
                &mut p.stats,
            );
        }
        p.stats.files.push(fs);
    }
    let (reports, partial) = p.reports();
    DayData {
        catalog: p.catalog,
        stats: p.stats,
        events: p.events,
        reports,
        partial,
    }
}

/// The run's id of each of a day's tunnels (by the day's id), adding those
/// the run has not seen yet to its catalog.
fn map_tunnels(local: &Catalog, gw_map: &[GwId], catalog: &mut Catalog) -> Vec<TunnelId> {
    let mut tunnel_map: Vec<TunnelId> = vec![0; local.tunnels.len()];
    let mut key: Vec<u8> = Vec::with_capacity(128);
    // In the day's order of first sight, so that the run's ids are too
    // (the index's own order is a hash's).
    let mut by_id: Vec<(&[u8], TunnelId)> = local
        .tunnel_index
        .iter()
        .map(|(k, &id)| (&k[..], id))
        .collect();
    by_id.sort_unstable_by_key(|&(_, id)| id);
    for (local_key, local_id) in by_id {
        let entry = &local.tunnels[local_id as usize];
        let gw = gw_map[entry.gateway as usize];
        key.clear();
        key.extend_from_slice(&gw.to_le_bytes());
        key.extend_from_slice(&local_key[4..]);
        let id = match catalog.tunnel_index.get(key.as_slice()) {
            Some(&id) => id,
            None => {
                let id = catalog.tunnels.len() as TunnelId;
                catalog.tunnels.push(TunnelEntry {
                    gateway: gw,
                    tunnel: entry.tunnel.clone(),
                });
                catalog.tunnel_index.insert(key.as_slice().into(), id);
                id
            }
        };
        tunnel_map[local_id as usize] = id;
    }
    tunnel_map
}

/// The reports the day before left incomplete, completed by this day's
/// parts (`partial`, by run ids) or given up (counted): what completes goes
/// to `reports`, the rest is carried on to the next day.
fn complete_carried(
    partial: Partial,
    carry: &mut Carry,
    reports: &mut Vec<Complete>,
    stats: &mut ReadStats,
) {
    let mut carried = std::mem::take(&mut carry.partial);
    for (key, asm) in partial {
        let asm = match carried.remove(&key) {
            Some(mut before) if before.parts == asm.parts => {
                before.absorb(asm);
                before
            }
            Some(_) => {
                stats.incomplete_reports += 1;
                asm
            }
            None => asm,
        };
        if asm.missing > 0 {
            carry.partial.insert(key, asm);
            continue;
        }
        let received = asm.received;
        let (tunnels, repeats) = asm.finish();
        stats.duplicate_rows += repeats;
        match tunnels {
            Some(t) => reports.push((received, key.1, key.0, t)),
            None => stats.damaged_reports += 1,
        }
    }
    // Complete reports of this day that were partial the day before (their
    // first parts written again after midnight) replace those.
    for r in reports.iter() {
        carried.remove(&(r.2, r.1));
    }
    stats.incomplete_reports += carried.len() as u64;
}

/// The run's ids of a day's incomplete reports.
fn map_partial(partial: Partial, gw_map: &[GwId], tunnel_map: &[TunnelId]) -> Partial {
    partial
        .into_iter()
        .map(|((gw, seq), mut asm)| {
            for o in asm.tunnels.iter_mut() {
                o.id = tunnel_map[o.id as usize];
            }
            ((gw_map[gw as usize], seq), asm)
        })
        .collect()
}

/// Maps a parsed day's ids into the run's catalog, drops what the previous
/// day already had (a retransmission written again after midnight),
/// completes the reports the day before left incomplete, and hands the
/// day's events and complete reports to the visitor in order.
fn merge_day(
    day: DayData,
    catalog: &mut Catalog,
    visitor: &mut impl Visitor,
    stats: &mut ReadStats,
    carry: &mut Carry,
) {
    let DayData {
        catalog: local,
        stats: day_stats,
        mut events,
        mut reports,
        partial,
    } = day;
    stats.absorb(day_stats);

    let gw_map: Vec<GwId> = local
        .gateways
        .iter()
        .map(|n| catalog.gateway_id(n))
        .collect();
    let tunnel_map = map_tunnels(&local, &gw_map, catalog);
    let mut seen: FastSet<(GwId, u64, u32)> = FastSet::default();
    let previous = &carry.previous;
    events.retain_mut(|e| {
        e.gateway = gw_map[e.gateway as usize];
        e.part_key_ok(previous, &mut seen, stats)
    });
    reports.retain_mut(|r| {
        r.2 = gw_map[r.2 as usize];
        // Written the day before already (unless only in part).
        if previous.contains(&(r.2, r.1, 1)) && !carry.partial.contains_key(&(r.2, r.1)) {
            return false;
        }
        for o in r.3.iter_mut() {
            o.id = tunnel_map[o.id as usize];
        }
        r.3.sort_unstable_by_key(|o| o.id);
        true
    });
    let partial = map_partial(partial, &gw_map, &tunnel_map);
    complete_carried(partial, carry, &mut reports, stats);
    carry.previous = std::mem::take(&mut seen);
    // Sorted by `parse_day` already, unless mapping the gateway ids changed
    // the order of two reports received in the same second.
    if !reports.is_sorted_by_key(|r| (r.0, r.2, r.1)) {
        reports.sort_unstable_by_key(|r| (r.0, r.2, r.1));
    }
    // The order of a stable sort by (received, seq), ties in file order:
    // sorting small keys with the index as the last one gives it without
    // moving the events (cheaper on this, the one serial thread). The
    // collector writes rows as it receives them, so `received` does not go
    // down in a file and only each second's few rows need sorting.
    let mut order: Vec<(u64, u64, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.received, e.seq, i))
        .collect();
    if order.is_sorted_by_key(|o| o.0) {
        for second in order.chunk_by_mut(|a, b| a.0 == b.0) {
            second.sort_unstable();
        }
    } else {
        order.sort_unstable();
    }

    let mut reports = reports.into_iter().peekable();
    for ev in order.iter().map(|&(_, _, i)| &events[i]) {
        // Reports completed strictly before this event go first.
        while let Some(r) = reports.next_if(|r| r.0 < ev.received) {
            emit_report(catalog, visitor, r);
        }
        visitor.event(catalog, ev);
    }
    for r in reports {
        emit_report(catalog, visitor, r);
    }
}

fn emit_report(
    catalog: &Catalog,
    visitor: &mut impl Visitor,
    (received, seq, gateway, tunnels): (u64, u64, GwId, Vec<Obs>),
) {
    visitor.report(
        catalog,
        &Report {
            received,
            gateway,
            seq,
            tunnels: &tunnels,
        },
    );
}

/// The columns of an event row that reading uses, borrowed from the reader.
struct EventView<'a> {
    received: u64,
    gateway: &'a str,
    kind: EventKind,
    seq: u64,
    part: u32,
    parts: u32,
    tunnels: u32,
    text: &'a str,
    sent: u64,
    until: Option<u64>,
    period: Option<u32>,
}

impl<'a> EventView<'a> {
    /// The common case without allocating: ten UTF-8 columns, the numbers
    /// plain digits in range. `None` for anything else, which then goes
    /// through `EventRow::from_record`; what this accepts, that accepts
    /// with the same values.
    fn parse<R: Read>(rdr: &'a FastReader<R>) -> Option<EventView<'a>> {
        use EventCol as C;
        if !LogKind::Events.widths().contains(&rdr.len()) {
            return None;
        }
        let get = |c: C| rdr.get(c.index());
        let s = |c: C| get(c).and_then(|b| std::str::from_utf8(b).ok());
        let n = |c: C| get(c).and_then(uint);
        let n32 = |c: C| n(c).and_then(|v| u32::try_from(v).ok());
        // `source` and `kind` are checked only (an unknown kind is still a
        // kind, but the row must be text); `period` and `until` are empty
        // or missing in older files.
        let sent = n(C::Sent)?;
        let until = match get(C::Until) {
            None | Some(b"") => None,
            Some(b) => Some(uint(b)?),
        };
        let period = match get(C::Period) {
            None | Some(b"") => None,
            Some(b) => Some(u32::try_from(uint(b)?).ok()?),
        };
        let kind = get(C::Kind)?;
        if !text_ok(get(C::Source)?) || !text_ok(kind) {
            return None;
        }
        Some(EventView {
            received: n(C::Received)?,
            gateway: s(C::Gateway)?,
            kind: EventKind::from_bytes(kind),
            seq: n(C::Seq)?,
            part: n32(C::Part)?,
            parts: n32(C::Parts)?,
            tunnels: n32(C::Tunnels)?,
            text: match get(C::Text)? {
                b"" => "",
                b => std::str::from_utf8(b).ok()?,
            },
            sent,
            until,
            period,
        })
    }

    fn of(row: &'a EventRow) -> EventView<'a> {
        EventView {
            received: row.received,
            gateway: &row.gateway,
            kind: row.kind,
            seq: row.seq,
            part: row.part,
            parts: row.parts,
            tunnels: row.tunnels,
            text: &row.text,
            sent: row.sent,
            until: row.until,
            period: row.period,
        }
    }
}

/// Whether a column is text (UTF-8), checking ASCII, the common case, first.
#[inline]
fn text_ok(b: &[u8]) -> bool {
    b.is_ascii() || std::str::from_utf8(b).is_ok()
}

/// Parses an unsigned decimal number (no sign, no spaces), or `None`.
///
/// Log rows carry three or four numbers of 10 to 16 digits each, so the
/// digits are taken eight at a time: one test that all eight bytes are
/// digits and three multiplications to combine them (the SWAR method of
/// simdjson and Lemire's fast_float), after the first `len % 8` one by one.
/// Always inlined: it runs half a million times a day of logs, and the call
/// itself was a fifth of its cost.
#[inline(always)]
fn uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b.len() <= 19 {
        // At most 19 digits cannot overflow a u64.
        let (head, body) = b.split_at(b.len() % 8);
        let mut n: u64 = 0;
        for &c in head {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            n = n * 10 + u64::from(d);
        }
        for c in body.chunks_exact(8) {
            let w = u64::from_le_bytes(c.try_into().ok()?);
            if !eight_digits(w) {
                return None;
            }
            n = n * 100_000_000 + eight_digits_value(w);
        }
        return Some(n);
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// Whether all eight bytes of `w` are ASCII digits: each byte's high nibble
/// must be 3 both as it is and after adding 6 (a carry out of a byte only
/// comes from a byte that already fails).
#[inline]
fn eight_digits(w: u64) -> bool {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    (w & HIGH) | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4) == 0x3333_3333_3333_3333
}

/// The value of eight ASCII digits read little-endian (the first digit in
/// the low byte): pairs, then fours, then all eight.
#[inline]
fn eight_digits_value(w: u64) -> u64 {
    let w = w & 0x0f0f_0f0f_0f0f_0f0f;
    let w = (w.wrapping_mul(10) + (w >> 8)) & 0x00ff_00ff_00ff_00ff;
    let w = (w.wrapping_mul(100) + (w >> 16)) & 0x0000_ffff_0000_ffff;
    (w.wrapping_mul(10_000) + (w >> 32)) & 0xffff_ffff
}

fn health(b: &[u8]) -> Option<Health> {
    match b {
        b"yes" => Some(Health::Yes),
        b"no" => Some(Health::No),
        b"unknown" | b"" => Some(Health::Unknown),
        _ => None,
    }
}

/// Maps and sets for the per-row lookups, with rustc's Fx hash instead of
/// SipHash: the keys come from our own log files, so SipHash's protection
/// against chosen collisions buys nothing here, and it cost 15 % of a run.
/// (Fx also beat the hand-written hasher that was here by 3 % of a run.)
type FastMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;
type FastSet<K> = HashSet<K, rustc_hash::FxBuildHasher>;

/// Validates the columns of one tunnel row that are not its identity
/// (times, seq, part, health, the owner and `ps` columns) without
/// allocating; returns its event key and health. The identity columns are
/// checked in full by `TunnelRow::from_record` the first time that identity
/// is seen; after that a row with the same identity bytes has the same,
/// valid, values.
fn check_tunnel<R: Read>(rec: &FastReader<R>) -> Result<Checked, String> {
    use TunnelCol as C;
    if !LogKind::Tunnels.widths().contains(&rec.len()) {
        let n = schema::TUNNEL_HEADER.len();
        return Err(format!("{} columns, expected {n}", rec.len()));
    }
    let f = |c: C| rec.get(c.index()).unwrap_or(b"");
    // Straight-line checks (no closure returning a `Result` per column: that
    // call cost more than the parse); the message is built only on failure.
    if uint(f(C::Received)).is_none() {
        return Err(not_a_number(rec, C::Received));
    }
    let Some(seq) = uint(f(C::Seq)) else {
        return Err(not_a_number(rec, C::Seq));
    };
    let Some(part) = uint(f(C::Part)).and_then(|v| u32::try_from(v).ok()) else {
        return Err(not_a_number(rec, C::Part));
    };
    if !f(C::Started).is_empty() && uint(f(C::Started)).is_none() {
        return Err(not_a_number(rec, C::Started));
    }
    let connections = match f(C::Connections) {
        b"" => None,
        b => match uint(b).and_then(|v| u32::try_from(v).ok()) {
            Some(n) => Some(n),
            None => return Err(not_a_number(rec, C::Connections)),
        },
    };
    if !(text_ok(f(C::User))
        && text_ok(f(C::Start))
        && text_ok(f(C::CpuTime))
        && text_ok(f(C::Connected)))
    {
        return Err("not UTF-8".into());
    }
    let listening =
        health(f(C::Listening)).ok_or("column 'listening' is not yes, no or unknown")?;
    let vnc = health(f(C::Vnc)).ok_or("column 'vnc' is not yes, no or unknown")?;
    Ok(Checked {
        seq,
        part,
        listening,
        vnc,
        connections,
    })
}

/// What [`check_tunnel`] read of a row besides its identity.
struct Checked {
    seq: u64,
    part: u32,
    listening: Health,
    vnc: Health,
    connections: Option<u32>,
}

/// The row's `connected` column (empty in older files), once checked;
/// `seen` holds the day's lists, so that equal ones are one allocation.
fn connected<R: Read>(
    rec: &FastReader<R>,
    seen: &mut FastMap<Box<[u8]>, Arc<str>>,
) -> Option<Arc<str>> {
    let b = rec.get(TunnelCol::Connected.index()).unwrap_or(b"");
    if b.is_empty() {
        return None;
    }
    if let Some(a) = seen.get(b) {
        return Some(a.clone());
    }
    let a: Arc<str> = std::str::from_utf8(b).ok()?.into();
    seen.insert(b.into(), a.clone());
    Some(a)
}

#[cold]
fn not_a_number<R: Read>(rec: &FastReader<R>, col: TunnelCol) -> String {
    format!(
        "column '{}': '{}' is not a number in range",
        col.name(),
        String::from_utf8_lossy(rec.get(col.index()).unwrap_or(b""))
    )
}

fn read_tunnels<R: Read>(
    mut rdr: FastReader<R>,
    catalog: &mut Catalog,
    assemblies: &mut FastMap<(GwId, u64), Assembly>,
    fs: &mut FileStats,
    stats: &mut ReadStats,
) {
    let mut raw = csv::ByteRecord::new();
    let mut key: Vec<u8> = Vec::with_capacity(128);
    // A cache in front of the tunnel index, per gateway: the raw bytes of
    // the columns from pid to target port (the identity's span, commas included)
    // of a plain line, looked up without building a key. Equal bytes mean
    // an equal identity, so a hit is what the index would answer.
    let (first, last) = (IDENTITY[0].index(), IDENTITY[IDENTITY.len() - 1].index());
    let mut by_line: Vec<FastMap<Box<[u8]>, TunnelId>> = Vec::new();
    let mut who: FastMap<Box<[u8]>, Arc<str>> = FastMap::default();
    for_each_row(&mut rdr, LogKind::Tunnels, fs, |rdr, line, fs| {
        let Checked {
            seq,
            part,
            listening,
            vnc,
            connections,
        } = match check_tunnel(rdr) {
            Ok(v) => v,
            Err(why) => {
                fs.bad(line, why);
                return;
            }
        };
        let Some(gw) = catalog.find_gateway(rdr.get(TunnelCol::Gateway.index()).unwrap_or(b""))
        else {
            stats.orphan_rows += 1;
            return;
        };
        let Some(asm) = assemblies.get_mut(&(gw, seq)) else {
            stats.orphan_rows += 1;
            return;
        };
        if part == 0 || part > asm.parts || asm.have[part as usize - 1].is_none() {
            stats.orphan_rows += 1;
            return;
        }
        let raw_identity = rdr.raw_fields(first, last);
        let known = raw_identity
            .and_then(|bytes| by_line.get(gw as usize).and_then(|m| m.get(bytes)))
            .copied();
        let id = match known {
            Some(id) => id,
            None => {
                // Identity: the gateway and the identity columns.
                key.clear();
                key.extend_from_slice(&gw.to_le_bytes());
                for col in IDENTITY {
                    let v = rdr.get(col.index()).unwrap_or(b"");
                    key.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    key.extend_from_slice(v);
                }
                let id = match catalog.tunnel_index.get(key.as_slice()) {
                    Some(&id) => id,
                    None => {
                        let Some(row) = schema_row(rdr, &mut raw, fs, line, TunnelRow::from_record)
                        else {
                            return;
                        };
                        let id = catalog.tunnels.len() as TunnelId;
                        catalog.tunnels.push(TunnelEntry {
                            gateway: gw,
                            tunnel: row.tunnel,
                        });
                        catalog.tunnel_index.insert(key.as_slice().into(), id);
                        id
                    }
                };
                if let Some(bytes) = raw_identity {
                    if by_line.len() <= gw as usize {
                        by_line.resize_with(gw as usize + 1, FastMap::default);
                    }
                    by_line[gw as usize].insert(bytes.into(), id);
                }
                id
            }
        };
        push_obs(
            asm,
            Obs {
                id,
                listening,
                vnc,
                connections,
                connected: connected(rdr, &mut who),
            },
        );
    });
}

fn push_obs(asm: &mut Assembly, obs: Obs) {
    if asm.tunnels.capacity() == 0 {
        // Its event rows said how many; growing 4, 8, 16 cost more than
        // the rest of a row's work (bounded: the count is input).
        asm.tunnels.reserve(asm.expected().min(1024) as usize);
    }
    asm.tunnels.push(obs);
}

#[cfg(test)]
mod fast_reader_agrees;
#[cfg(test)]
mod read_rules;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_is_strict() {
        assert_eq!(uint(b"0"), Some(0));
        assert_eq!(uint(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.0",
            b"18446744073709551616",
            b"x",
        ] {
            assert_eq!(uint(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        for ok in [
            "9999999999999999999",
            "10000000000000000000",
            "0000000000000000000",
            "00000000000000000001",
            "1795996802821888",
            "4294967296",
            "99999999999999999999",
        ] {
            assert_eq!(uint(ok.as_bytes()), ok.parse::<u64>().ok(), "{ok}");
        }
    }

    /// `uint` against the standard parser on every length up to 21 (more
    /// than 20 digits are refused even with leading zeros, as before) and on
    /// the bytes around the digits, including those that carry.
    #[test]
    fn uint_agrees_with_std() {
        let alphabet = b"0123456789/:+- \xf9\xfa\xff\x00";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut s = Vec::new();
        for len in 0..=21 {
            for round in 0..4000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.clear();
                for i in 0..len {
                    let r = (x >> (i % 8 * 8)) as usize ^ (i * 7);
                    // Mostly digits, with a stray byte in about one row in three.
                    let c = if round % 3 == 0 && i == (x as usize) % len {
                        alphabet[10 + r % (alphabet.len() - 10)]
                    } else {
                        alphabet[r % 10]
                    };
                    s.push(c);
                }
                let want = if s.len() <= 20 && s.iter().all(u8::is_ascii_digit) {
                    std::str::from_utf8(&s)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                } else {
                    None
                };
                assert_eq!(uint(&s), want, "{:?}", String::from_utf8_lossy(&s));
            }
        }
        for n in [0, 9, 10, 99_999_999, 100_000_000, u64::MAX / 10, u64::MAX] {
            assert_eq!(uint(n.to_string().as_bytes()), Some(n));
        }
    }

    /// What the allocation-free event parser accepts, the schema's parser
    /// accepts with the same values; the rest is left to the schema's.
    #[test]
    fn event_view_agrees_with_schema() {
        let rows: &[&[u8]] = &[
            b"1795996803,gw-01,report,1795996802821888,1,2,1795996802,10.0.0.1:4000,5,\n",
            b"1795996803,gw-01,message,17,1,1,1795996802,10.0.0.1:4000,0,\"hello, \"\"world\"\"\"\n",
            b"1795996803,gw-01,report,+17,1,1,1795996802,10.0.0.1:4000,0,\n",
            b"1795996803,gw-01,report,17,1,4294967296,1795996802,src,0,\n",
            b"1795996803,gw-01,report,17,1,1,x,src,0,\n",
            b"1795996803,gw-\xff,report,17,1,1,1,src,0,\n",
            b"1795996803,gw-01,report,17,1,1,1,src,0\n",
            b"1795996803,gw-01,report,17,1,1,1,src,0,a,b\n",
            b"1795996803,\xc3\xa9,heartbeat,17,1,1,1,src,0,\xe2\x82\xac\n",
        ];
        for row in rows {
            let mut rdr = FastReader::new(*row);
            assert!(rdr.read_record().unwrap());
            let mut raw = csv::ByteRecord::new();
            rdr.to_byte_record(&mut raw);
            let schema = csv::StringRecord::from_byte_record(raw)
                .ok()
                .and_then(|r| EventRow::from_record(&r).ok());
            let name = String::from_utf8_lossy(row);
            match (EventView::parse(&rdr), &schema) {
                (Some(v), Some(r)) => {
                    let w = EventView::of(r);
                    assert_eq!(
                        (
                            v.received, v.gateway, v.kind, v.seq, v.part, v.parts, v.tunnels,
                            v.text
                        ),
                        (
                            w.received, w.gateway, w.kind, w.seq, w.part, w.parts, w.tunnels,
                            w.text
                        ),
                        "{name}"
                    );
                }
                (Some(_), None) => panic!("accepted what the schema rejects: {name}"),
                (None, _) => {}
            }
        }
        let mut rdr = FastReader::new(rows[0]);
        assert!(rdr.read_record().unwrap());
        assert!(EventView::parse(&rdr).is_some());
    }
}
