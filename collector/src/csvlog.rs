//! The CSV log files: writing rows durably, repairing torn ends, rolling
//! over at UTC midnight, and retention.
//!
//! The schema (names, columns, row types) and reading the files back are in
//! the `logs` crate. This file
//! is about bytes on disk and the traps of the `csv` crate: `Writer::from_path`
//! truncates, `flush()` reaches only the page cache, and a row torn by a crash
//! silently merges with the next one on read. So each file is opened for
//! append with a plain [`File`]; the rows of a batch of datagrams (group
//! commit) are formatted into a buffer per file (as `csv` writes them) and written with one
//! `write_all` each, tunnel rows first, then the event rows, then each file
//! that was written to is `sync_data`ed once (the two at once, on two
//! threads). Only then may ingest ack.
//! If anything fails half way, both files are cut back to their last good
//! length, so a failed write never leaves a torn row for the next one to merge
//! with. On start, the files of today and yesterday are cut back to the end of
//! their last complete row (quote-aware: a message may hold a newline), which
//! repairs a row torn by `kill -9` or a power cut.
//!
//! A [`Committer`] runs the writer on a thread of its own, one batch at a
//! time, so that ingest can check and format the next batch while the disk
//! syncs this one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use jiff::civil::Date;

use crate::say::say;
use crate::error::Error;
use logs::files::day_of;
use logs::schema::{self, EventRef, Field, LogKind, TunnelRef};

/// The length of the longest prefix of `bytes` made of complete CSV rows:
/// just after the last newline that is outside a quoted field.
pub fn complete_rows_len(bytes: &[u8]) -> usize {
    let mut in_quotes = false;
    let mut end = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => end = i + 1,
            _ => {}
        }
    }
    end
}

/// Cuts a log file back to its last complete row. Returns the bytes cut.
pub(crate) fn repair(path: &Path) -> Result<u64, Error> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("cannot open the log file", path, e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read the log file", path, e))?;
    let keep = complete_rows_len(&bytes);
    if keep == bytes.len() {
        return Ok(0);
    }
    file.set_len(keep as u64)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io("cannot cut the torn row off", path, e))?;
    Ok((bytes.len() - keep) as u64)
}

/// One open log file and the length of its committed rows.
#[derive(Debug)]
struct OpenFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl OpenFile {
    fn create_or_append(dir: &Path, kind: LogKind, day: Date) -> Result<OpenFile, Error> {
        let path = dir.join(schema::file_name(kind, day));
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("cannot open the log file", &path, e))?;
        let mut len = file
            .metadata()
            .map_err(|e| Error::io("cannot stat the log file", &path, e))?
            .len();
        if len == 0 {
            let header = format_rows(std::iter::once(kind.header().iter().copied()));
            file.write_all(&header)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io("cannot write the header of", &path, e))?;
            len = header.len() as u64;
        }
        if created {
            // Make the new name itself durable.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(OpenFile { path, file, len })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all(bytes)
    }

    fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Back to the last committed length after a failed write.
    fn restore(&mut self) {
        let _ = self.file.set_len(self.len);
        let _ = self.file.sync_data();
    }
}

/// Syncs the files that were written to: both at once, on two threads,
/// when both were, else the one. A file with nothing new needs no sync: its
/// committed rows were synced before. On ext4 two `fdatasync`s at once share
/// one journal commit: on the development machine's shared disk, a 200-byte
/// append to each of two files and their syncs took 7.1–7.9 ms median in
/// turn and 2.5–3.9 ms at once (400 of each, interleaved). A thread per
/// batch costs some tens of µs, which group commit spreads over the batch.
fn sync_both(
    a: &OpenFile,
    a_written: bool,
    b: &OpenFile,
    b_written: bool,
) -> Result<(), (PathBuf, std::io::Error)> {
    let sync = |f: &OpenFile| f.sync().map_err(|err| (f.path.clone(), err));
    if !(a_written && b_written) {
        for (f, written) in [(a, a_written), (b, b_written)] {
            if written {
                sync(f)?;
            }
        }
        return Ok(());
    }
    std::thread::scope(|s| {
        let Ok(other) = std::thread::Builder::new()
            .name("log-sync".into())
            .spawn_scoped(s, || sync(a))
        else {
            // No thread to be had: in turn, then.
            return sync(a).and_then(|()| sync(b));
        };
        let rb = sync(b);
        let ra = other.join().unwrap_or_else(|_| {
            Err((
                a.path.clone(),
                std::io::Error::other("the sync thread panicked"),
            ))
        });
        ra.and(rb)
    })
}

/// Formats rows as CSV bytes (each ends in `\n`).
fn format_rows<I, R, F>(rows: I) -> Vec<u8>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut w = csv_writer();
    for row in rows {
        // Writing into a Vec cannot fail.
        let _ = w.write_record(row);
    }
    w.into_inner().unwrap_or_default()
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::with_capacity(512))
}

/// Appends one row, as the `csv` crate's default writer writes it: fields
/// separated by commas, a field quoted only when it holds a comma, a quote,
/// CR or LF (a quote inside doubled), the row ended by `\n`. Written here
/// rather than through `csv::Writer` because ingest formats a dozen rows
/// per report and the crate's writer spent ~200 instructions a field on
/// what is a scan and a copy; `rows_are_written_as_the_csv_crate_writes_them`
/// checks the two agree.
fn push_record(out: &mut Vec<u8>, fields: &[Field]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match *field {
            Field::Num(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            Field::Text(text) => {
                let text = text.as_bytes();
                if !text
                    .iter()
                    .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
                {
                    out.extend_from_slice(text);
                    continue;
                }
                out.push(b'"');
                for &b in text {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            }
        }
    }
    // A row of one empty field would read back as a blank line.
    if let [Field::Text("")] = fields {
        out.extend_from_slice(b"\"\"");
    }
    out.push(b'\n');
}

/// The rows of one batch, formatted as they are added (one buffer per
/// file), for [`LogWriter::append_rows`]. Strings are not copied on the way.
#[derive(Default)]
pub(crate) struct Rows {
    tunnels: Vec<u8>,
    events: Vec<u8>,
    tunnel_rows: u64,
    event_rows: u64,
    /// The latest `received` of the event rows: the day to write to.
    latest: Option<u64>,
}

impl Rows {
    pub(crate) fn tunnel(&mut self, row: TunnelRef) {
        push_record(&mut self.tunnels, &row.fields());
        self.tunnel_rows += 1;
    }

    pub(crate) fn event(&mut self, row: EventRef) {
        push_record(&mut self.events, &row.fields());
        self.event_rows += 1;
        self.latest = self.latest.max(Some(row.received));
    }

    /// (event rows, tunnel rows) added.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.event_rows, self.tunnel_rows)
    }
}

/// Appends rows to today's files. See the module doc for the guarantees.
#[derive(Debug)]
pub(crate) struct LogWriter {
    dir: PathBuf,
    day: Date,
    keep_days: u64,
    events: OpenFile,
    tunnels: OpenFile,
}

impl LogWriter {
    /// Repairs the recent files, applies retention, opens today's files.
    pub(crate) fn open(dir: &Path, now: u64, keep_days: u64) -> Result<LogWriter, Error> {
        let day = day_of(now);
        let yesterday = day.yesterday().unwrap_or(day);
        for d in [yesterday, day] {
            for kind in LogKind::ALL {
                let path = dir.join(schema::file_name(kind, d));
                let cut = repair(&path)?;
                if cut > 0 {
                    say!(
                        "{}: cut {cut} bytes of a torn last row",
                        path.display()
                    );
                }
            }
        }
        let w = LogWriter {
            dir: dir.to_path_buf(),
            day,
            keep_days,
            events: OpenFile::create_or_append(dir, LogKind::Events, day)?,
            tunnels: OpenFile::create_or_append(dir, LogKind::Tunnels, day)?,
        };
        w.apply_retention(day);
        Ok(w)
    }

    /// Switches to the files of the day of `now` if that is a new day.
    pub(crate) fn roll(&mut self, now: u64) -> Result<(), Error> {
        let day = day_of(now);
        if day == self.day {
            return Ok(());
        }
        let events = OpenFile::create_or_append(&self.dir, LogKind::Events, day)?;
        let tunnels = OpenFile::create_or_append(&self.dir, LogKind::Tunnels, day)?;
        self.events = events;
        self.tunnels = tunnels;
        self.day = day;
        self.apply_retention(day);
        Ok(())
    }

    /// Writes the rows of a batch of datagrams (group commit): all tunnel
    /// rows with one write, all event rows with one write, then one sync of
    /// each file. On error both files are as they were before: none of the
    /// batch's rows stays, whole or torn. Rolls over to the day of the
    /// latest `received` first.
    pub(crate) fn append_rows(&mut self, rows: Rows) -> Result<(), Error> {
        if let Some(received) = rows.latest {
            self.roll(received)?;
        }
        let (t, e) = (rows.tunnels, rows.events);
        let result = self
            .tunnels
            .write(&t)
            .map_err(|err| (self.tunnels.path.clone(), err))
            .and_then(|()| {
                self.events
                    .write(&e)
                    .map_err(|err| (self.events.path.clone(), err))
            })
            .and_then(|()| sync_both(&self.tunnels, !t.is_empty(), &self.events, !e.is_empty()));
        if let Err((path, err)) = result {
            // Whatever was written is undone, in both files (the committed
            // lengths move only once both are synced).
            self.tunnels.restore();
            self.events.restore();
            return Err(Error::io("cannot write to the log file", path, err));
        }
        self.tunnels.len += t.len() as u64;
        self.events.len += e.len() as u64;
        Ok(())
    }

    /// Deletes log files older than `keep_days` before `today`; 0 keeps all.
    /// Only names that parse as log names are touched.
    pub(crate) fn apply_retention(&self, today: Date) {
        if self.keep_days == 0 {
            return;
        }
        let days = i64::try_from(self.keep_days)
            .unwrap_or(i64::MAX)
            .min(100_000);
        let Ok(oldest) = today.checked_sub(jiff::Span::new().days(days)) else {
            return;
        };
        for f in logs::files::list(&self.dir).unwrap_or_default() {
            if f.day < oldest {
                let path = f.path;
                if let Err(e) = std::fs::remove_file(&path) {
                    say!("cannot delete old log {}: {e}", path.display());
                }
            }
        }
    }
}

/// What the [`Committer`]'s thread is asked to do.
enum Job {
    Append(Box<Rows>),
    Roll(u64),
}

/// A [`LogWriter`] on its own thread. [`Committer::submit`] hands it one
/// batch's rows and returns at once; [`Committer::wait`] gives that batch's
/// result. At most one batch is in flight: submitting another first waits
/// for the one before, so batches reach the disk in order.
pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Result<(), Error>>,
    in_flight: bool,
}

impl Committer {
    /// Starts the thread that owns `log`.
    pub(crate) fn start(mut log: LogWriter) -> std::io::Result<Committer> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                for job in job_rx {
                    let result = match job {
                        Job::Append(rows) => log.append_rows(*rows),
                        Job::Roll(now) => log.roll(now),
                    };
                    if done_tx.send(result).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Committer {
            jobs,
            done,
            in_flight: false,
        })
    }

    /// Hands a batch's rows to the writer. Call [`Committer::wait`] for the
    /// one in flight first.
    pub(crate) fn submit(&mut self, rows: Rows) -> Result<(), Error> {
        debug_assert!(!self.in_flight, "wait for the batch in flight first");
        self.send(Job::Append(Box::new(rows)))?;
        self.in_flight = true;
        Ok(())
    }

    /// The result of the batch in flight (`Ok` if there is none).
    pub(crate) fn wait(&mut self) -> Result<(), Error> {
        if !std::mem::take(&mut self.in_flight) {
            return Ok(());
        }
        self.result()
    }

    /// Switches the files to the day of `now` (see [`LogWriter::roll`]),
    /// after the batch in flight, whose result must be taken first.
    pub(crate) fn roll(&mut self, now: u64) -> Result<(), Error> {
        debug_assert!(!self.in_flight, "wait for the batch in flight first");
        self.send(Job::Roll(now))?;
        self.result()
    }

    fn send(&self, job: Job) -> Result<(), Error> {
        self.jobs.send(job).map_err(|_| Self::gone())
    }

    fn result(&self) -> Result<(), Error> {
        self.done.recv().unwrap_or_else(|_| Err(Self::gone()))
    }

    fn gone() -> Error {
        Error::io(
            "the log writer thread is gone; cannot write to",
            "the log files",
            std::io::Error::other("log-writer thread ended"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_client::tunnel::Tunnel;
    use logs::EventKind;
    use logs::files::{read_events, read_tunnels};
    use logs::schema::{EventRow, TunnelRow};
    use proptest::prelude::Strategy;

    /// One datagram's rows, written and synced as a batch of one.
    fn append(w: &mut LogWriter, tunnels: &[TunnelRow], event: &EventRow) -> Result<(), Error> {
        let mut rows = Rows::default();
        for t in tunnels {
            rows.tunnel(t.as_ref());
        }
        rows.event(event.as_ref());
        w.append_rows(rows)
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("csvlog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn event(received: u64, text: &str) -> EventRow {
        EventRow {
            received,
            gateway: "novadaq-far-gateway-01".into(),
            kind: EventKind::Message,
            seq: received * 1_000_000,
            part: 1,
            parts: 1,
            sent: received,
            source: "127.0.0.1:40000".into(),
            tunnels: 0,
            text: text.into(),
        }
    }

    #[test]
    fn complete_rows_len_respects_quotes() {
        assert_eq!(complete_rows_len(b"a,b\n1,2\n"), 8);
        assert_eq!(complete_rows_len(b"a,b\n1,2"), 4);
        assert_eq!(complete_rows_len(b"a,b\n1,\"x\ny"), 4);
        assert_eq!(complete_rows_len(b"a,b\n1,\"x\ny\"\"\"\n"), 14);
        assert_eq!(complete_rows_len(b"a,"), 0);
    }

    #[test]
    fn appends_keep_one_header_and_survive_reopen() {
        let dir = tmp("append");
        let now = 1_763_856_000; // 2025-11-23T00:00:00Z
        let mut w = LogWriter::open(&dir, now, 0).unwrap();
        let rows = vec![TunnelRow {
            received: now,
            gateway: "g".into(),
            seq: 1,
            part: 1,
            tunnel: Tunnel {
                pid: 7,
                ..Tunnel::default()
            },
        }];
        append(&mut w, &rows, &event(now, "line one\nline two")).unwrap();
        drop(w);
        let mut w = LogWriter::open(&dir, now + 5, 0).unwrap();
        append(&mut w, &[], &event(now + 5, "")).unwrap();
        let path = dir.join("events-2025-11-23.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("received,gateway").count(), 1, "{text}");
        let read = read_events(&path).unwrap();
        let (events, bad) = (read.rows, read.malformed);
        assert_eq!((events.len(), bad), (2, 0));
        assert_eq!(events[0].text, "line one\nline two");
        let tunnels = read_tunnels(&dir.join("tunnels-2025-11-23.csv"))
            .unwrap()
            .rows;
        assert_eq!(tunnels, rows);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_row_is_cut_on_open_not_merged() {
        let dir = tmp("torn");
        let now = 1_763_856_000;
        let mut w = LogWriter::open(&dir, now, 0).unwrap();
        append(&mut w, &[], &event(now, "kept")).unwrap();
        drop(w);
        let path = dir.join("events-2025-11-23.csv");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"1763856001,novadaq-far-gateway-01,message,17,1,1,176")
            .unwrap();
        drop(f);
        let mut w = LogWriter::open(&dir, now + 2, 0).unwrap();
        append(&mut w, &[], &event(now + 2, "after")).unwrap();
        let read = read_events(&path).unwrap();
        let (events, bad) = (read.rows, read.malformed);
        assert_eq!(bad, 0);
        let texts: Vec<_> = events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["kept", "after"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rolls_over_at_utc_midnight_and_deletes_old_files() {
        let dir = tmp("roll");
        std::fs::write(dir.join("events-2025-01-01.csv"), "x\n").unwrap();
        std::fs::write(dir.join("notes-2025-01-01.csv"), "x\n").unwrap();
        let midnight = 1_763_856_000; // 2025-11-23T00:00:00Z
        let mut w = LogWriter::open(&dir, midnight - 1, 30).unwrap();
        append(&mut w, &[], &event(midnight - 1, "before")).unwrap();
        append(&mut w, &[], &event(midnight, "after")).unwrap();
        let names: Vec<_> = logs::files::list(&dir)
            .unwrap()
            .into_iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "events-2025-11-22.csv",
                "events-2025-11-23.csv",
                "tunnels-2025-11-22.csv",
                "tunnels-2025-11-23.csv"
            ]
        );
        assert!(dir.join("notes-2025-01-01.csv").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        /// Rows, numbers and text with commas, quotes, CR, LF, spaces and
        /// non-ASCII, come out byte for byte as the `csv` crate writes them.
        #[test]
        fn rows_are_written_as_the_csv_crate_writes_them(
            row in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u64::ANY.prop_map(Field::Num),
                    "[a-z ,\"\r\n\té€]{0,8}".prop_map(|s| Field::Text(Box::leak(s.into_boxed_str()))),
                ],
                1..6,
            ),
        ) {
            let mut ours = Vec::new();
            push_record(&mut ours, &row);
            let theirs = format_rows([row.iter().map(|f| f.to_string())]);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }

    #[test]
    fn a_row_of_one_empty_field_is_quoted_as_csv_does() {
        let mut ours = Vec::new();
        push_record(&mut ours, &[Field::Text("")]);
        assert_eq!(ours, format_rows([[""]]));
    }
}
