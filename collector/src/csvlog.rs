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
//!
//! The files a batch went into must be the ones their paths name: someone
//! may `rm` a log file, or replace it (by a copy, an editor's save, a
//! directory), while the collector holds it open, and rows written to an
//! unlinked file are acked and lost. So the open file's device and inode
//! are compared with the path's before the batch is written and again after
//! its sync; when they differ the path is opened again (a new file gets its
//! header), said on stderr and counted, and rows synced into a file that is
//! no longer named are written again into the one that is. A path that
//! cannot be opened as a file fails the batch: nothing is acked.
//!
//! A file whose first line is not the header the collector writes (other
//! or reordered columns; a UTF-8 byte order mark before it is fine, both
//! readers ignore it) is never appended to: both readers skip such a file
//! whole, so acked rows in it would vanish from the pages. It is renamed
//! aside (`NAME.csv.set-aside-UNIXTIME`, which no reader takes
//! for a log), said and counted, and a fresh file is started. The one
//! exception is a file in an older layout of the schema (the day the
//! collector was upgraded): it is rewritten in the current layout, each
//! row given the new columns empty ([`upgrade_layout`]), so that the day
//! stays one file with one header.
//!
//! Retention ([`retention_plan`]) never trusts one clock reading: it keeps
//! the newest `--keep-days` days held whatever the clock says, refuses to
//! delete anything while the clock is more than [`MAX_CLOCK_LEAD_DAYS`]
//! ahead of the newest earlier log, and keeps (and names) files dated after
//! today.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, mpsc};

use jiff::civil::Date;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::say::say;
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

/// One open log file, the length of its committed rows, and which file it
/// is (device and inode), to tell when its path names another.
#[derive(Debug)]
struct OpenFile {
    path: PathBuf,
    file: File,
    len: u64,
    id: (u64, u64),
}

/// What opening a log file found, for the caller to say and count.
#[derive(Debug, Default, PartialEq, Eq)]
struct Opened {
    /// A file with another header was renamed to this.
    set_aside: Option<PathBuf>,
    /// A file in an older layout was rewritten in the current one: its
    /// number of columns before, and of rows.
    upgraded: Option<(usize, usize)>,
}

impl OpenFile {
    /// Opens the day's file for append (made, with its header, when new).
    /// A file that starts with another header is renamed aside first.
    fn create_or_append(dir: &Path, kind: LogKind, day: Date) -> Result<(OpenFile, Opened), Error> {
        let path = dir.join(schema::file_name(kind, day));
        let header = format_rows(std::iter::once(kind.header().iter().copied()));
        let mut opened = Opened::default();
        if !starts_with_header(&path, &header)? {
            opened.upgraded = upgrade_layout(&path, kind)?;
        }
        if opened.upgraded.is_none() && !starts_with_header(&path, &header)? {
            let aside = set_aside_name(&path);
            std::fs::rename(&path, &aside).map_err(|e| {
                Error::io(
                    "cannot rename aside the log file with another header",
                    &path,
                    e,
                )
            })?;
            opened.set_aside = Some(aside);
        }
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("cannot open the log file", &path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io("cannot stat the log file", &path, e))?;
        if !meta.is_file() {
            return Err(Error::io(
                "cannot write to the log file",
                &path,
                std::io::Error::other("not a regular file (move it away)"),
            ));
        }
        let mut len = meta.len();
        if len == 0 {
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
        let id = (meta.dev(), meta.ino());
        Ok((
            OpenFile {
                path,
                file,
                len,
                id,
            },
            opened,
        ))
    }

    /// Whether the path still names this open file (not deleted, not
    /// replaced by another file or a directory).
    fn still_named(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.is_file() && (m.dev(), m.ino()) == self.id)
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

/// Whether the file at `path` is missing, empty, or starts with exactly
/// `header` (the only header the collector appends under), maybe after a
/// UTF-8 byte order mark.
fn starts_with_header(path: &Path, header: &[u8]) -> Result<bool, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(Error::io("cannot open the log file", path, e)),
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        // Not a file: opening it for append says why.
        return Ok(true);
    }
    let mut first = Vec::with_capacity(header.len() + BOM.len());
    file.take((header.len() + BOM.len()) as u64)
        .read_to_end(&mut first)
        .map_err(|e| Error::io("cannot read the log file", path, e))?;
    let after_bom = first.strip_prefix(BOM).unwrap_or(&first);
    Ok(first.is_empty() || after_bom.starts_with(header))
}

/// Rewrites the file at `path` in the current layout when its header is an
/// older layout of `kind`'s ([`LogKind::width_of`]): the rows of the older
/// width get the new columns, empty; any other row (malformed either way)
/// is kept as it was. The new file is written beside it, synced and
/// renamed over it. Returns the older width and the number of rows, or
/// `None` when the file is not in an older layout.
fn upgrade_layout(path: &Path, kind: LogKind) -> Result<Option<(usize, usize)>, Error> {
    let file = File::open(path).map_err(|e| Error::io("cannot open the log file", path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let mut records = reader.byte_records();
    let width = match records.next() {
        Some(Ok(header)) => kind.width_of(header.iter()),
        _ => None,
    };
    let Some(width) = width.filter(|&w| w != kind.header().len()) else {
        return Ok(None);
    };
    let mut out = csv_writer();
    let _ = out.write_record(kind.header());
    let mut rows = 0;
    for record in records {
        let mut record = record
            .map_err(|e| Error::io("cannot read the log file", path, std::io::Error::other(e)))?;
        if record.len() == width {
            while record.len() < kind.header().len() {
                record.push_field(b"");
            }
        }
        let _ = out.write_byte_record(&record);
        rows += 1;
    }
    let bytes = out.into_inner().unwrap_or_default();
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".upgrading");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes)
        .and_then(|()| File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io("cannot rewrite in the current layout the log file", path, e))?;
    if let Some(dir) = path.parent().and_then(|d| File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(Some((width, rows)))
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `NAME.set-aside-UNIXTIME` beside `path` (no reader takes it for a log).
fn set_aside_name(path: &Path) -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".set-aside-{now}"));
    path.with_file_name(name)
}

/// Syncs the files that were written to: both at once, on two threads,
/// when both were, else the one. A file with nothing new needs no sync: its
/// committed rows were synced before. On ext4 two `fdatasync`s at once share
/// one journal commit: on the development machine's shared disk, a 200-byte
/// append to each of two files and their syncs took 7.1–7.9 ms median in
/// turn and 2.5–3.9 ms at once (400 of each, interleaved). The second
/// thread is the [`SyncHelper`], kept for the writer's life (one started
/// per batch cost a thread's start and end every batch); without it, in
/// turn.
fn sync_both(
    helper: Option<&SyncHelper>,
    a: &OpenFile,
    a_written: bool,
    b: &OpenFile,
    b_written: bool,
) -> Result<(), (PathBuf, std::io::Error)> {
    let sync = |f: &OpenFile| f.sync().map_err(|err| (f.path.clone(), err));
    let Some(helper) = helper.filter(|_| a_written && b_written) else {
        for (f, written) in [(a, a_written), (b, b_written)] {
            if written {
                sync(f)?;
            }
        }
        return Ok(());
    };
    // The helper syncs `a` through a duplicate of its descriptor; without
    // one, or without the helper, the two go in turn.
    let handed = a
        .file
        .try_clone()
        .is_ok_and(|dup| helper.jobs.send(dup).is_ok());
    if !handed {
        return sync(a).and_then(|()| sync(b));
    }
    let rb = sync(b);
    let ra = helper
        .done
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the sync thread is gone")))
        .map_err(|err| (a.path.clone(), err));
    ra.and(rb)
}

/// The log writer's second thread: it syncs the file it is handed (a
/// duplicate descriptor of it) while the writer syncs the other.
#[derive(Debug)]
struct SyncHelper {
    jobs: mpsc::Sender<File>,
    done: mpsc::Receiver<std::io::Result<()>>,
}

impl SyncHelper {
    /// `None` when no thread can be had (the files are then synced in turn).
    fn start() -> Option<SyncHelper> {
        let (jobs, job_rx) = mpsc::channel::<File>();
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("log-sync".into())
            .spawn(move || {
                for file in job_rx {
                    if done_tx.send(file.sync_data()).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(SyncHelper { jobs, done })
    }
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
            Field::Text(text) => push_text(out, text.as_bytes()),
            Field::List([]) => {}
            Field::List(_) => push_text(out, field.to_string().as_bytes()),
        }
    }
    // A row of one empty field would read back as a blank line.
    if let [Field::Text("")] = fields {
        out.extend_from_slice(b"\"\"");
    }
    out.push(b'\n');
}

/// One text field, quoted only when it must be.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    if !text
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        out.extend_from_slice(text);
        return;
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

    /// Empty again, keeping the buffers' memory for the next batch.
    fn clear(&mut self) {
        self.tunnels.clear();
        self.events.clear();
        self.tunnel_rows = 0;
        self.event_rows = 0;
        self.latest = None;
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
    metrics: Arc<Metrics>,
    /// Syncs one file while this thread syncs the other.
    sync_helper: Option<SyncHelper>,
}

impl LogWriter {
    /// Repairs the recent files, applies retention, opens today's files.
    /// A failure is one of the data directory (exit status 2).
    pub(crate) fn open(dir: &Path, now: u64, keep_days: u64) -> Result<LogWriter, Error> {
        LogWriter::open_files(dir, now, keep_days).map_err(Error::in_data_dir)
    }

    fn open_files(dir: &Path, now: u64, keep_days: u64) -> Result<LogWriter, Error> {
        let day = day_of(now);
        let yesterday = day.yesterday().unwrap_or(day);
        for d in [yesterday, day] {
            for kind in LogKind::ALL {
                let path = dir.join(schema::file_name(kind, d));
                let cut = repair(&path)?;
                if cut > 0 {
                    say!("{}: cut {cut} bytes of a torn last row", path.display());
                }
            }
        }
        let metrics = Arc::new(Metrics::default());
        let w = LogWriter {
            dir: dir.to_path_buf(),
            day,
            keep_days,
            events: open_file(dir, LogKind::Events, day, &metrics)?,
            tunnels: open_file(dir, LogKind::Tunnels, day, &metrics)?,
            metrics,
            sync_helper: SyncHelper::start(),
        };
        w.apply_retention(day);
        Ok(w)
    }

    /// Counts what happens to the files (reopened, set aside) in `metrics`
    /// from now on.
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> LogWriter {
        for (counter, n) in [
            (
                &metrics.log_files_reopened,
                &self.metrics.log_files_reopened,
            ),
            (
                &metrics.log_files_set_aside,
                &self.metrics.log_files_set_aside,
            ),
        ] {
            counter.fetch_add(n.load(Relaxed), Relaxed);
        }
        self.metrics = metrics;
        self
    }

    /// Switches to the files of the day of `now` if that is a new day.
    pub(crate) fn roll(&mut self, now: u64) -> Result<(), Error> {
        let day = day_of(now);
        if day == self.day {
            return Ok(());
        }
        let events = open_file(&self.dir, LogKind::Events, day, &self.metrics)?;
        let tunnels = open_file(&self.dir, LogKind::Tunnels, day, &self.metrics)?;
        self.events = events;
        self.tunnels = tunnels;
        self.day = day;
        self.apply_retention(day);
        Ok(())
    }

    /// Opens again, by name, a file whose path no longer names the open
    /// one (deleted or replaced), saying so and counting it.
    fn reopen_if_gone(&mut self) -> Result<(), Error> {
        for kind in LogKind::ALL {
            let f = match kind {
                LogKind::Events => &mut self.events,
                LogKind::Tunnels => &mut self.tunnels,
            };
            if f.still_named() {
                continue;
            }
            say!(
                "{}: the log file was deleted or replaced while open; reopened it by name (rows written to it before are in the old file, or gone with it)",
                f.path.display()
            );
            self.metrics.log_files_reopened.fetch_add(1, Relaxed);
            *f = open_file(&self.dir, kind, self.day, &self.metrics)?;
        }
        Ok(())
    }

    /// Writes the rows of a batch of datagrams (group commit): all tunnel
    /// rows with one write, all event rows with one write, then one sync of
    /// each file. On error both files are as they were before: none of the
    /// batch's rows stays, whole or torn. Rolls over to the day of the
    /// latest `received` first. Returns only once the rows are synced in
    /// the files that the paths name (see the module doc).
    pub(crate) fn append_rows(&mut self, rows: &Rows) -> Result<(), Error> {
        if let Some(received) = rows.latest {
            self.roll(received)?;
        }
        let (t, e) = (&rows.tunnels, &rows.events);
        // Twice at most: a file replaced during one batch's write is
        // reopened and the batch written again; replaced during that too,
        // the batch fails (not acked) and the client sends again.
        for _ in 0..2 {
            self.reopen_if_gone()?;
            self.write_synced(t, e)?;
            if self.tunnels.still_named() && self.events.still_named() {
                return Ok(());
            }
        }
        Err(Error::io(
            "cannot write to the log file",
            &self.events.path,
            std::io::Error::other("it was deleted or replaced twice during one write"),
        ))
    }

    /// Writes and syncs a batch's bytes into the open files; on error,
    /// undoes what was written.
    fn write_synced(&mut self, t: &[u8], e: &[u8]) -> Result<(), Error> {
        let result = self
            .tunnels
            .write(t)
            .map_err(|err| (self.tunnels.path.clone(), err))
            .and_then(|()| {
                self.events
                    .write(e)
                    .map_err(|err| (self.events.path.clone(), err))
            })
            .and_then(|()| {
                sync_both(
                    self.sync_helper.as_ref(),
                    &self.tunnels,
                    !t.is_empty(),
                    &self.events,
                    !e.is_empty(),
                )
            });
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

    /// Deletes what [`retention_plan`] says may go, says why when it
    /// refuses, and names files dated after today. Only names that parse
    /// as log names are touched.
    pub(crate) fn apply_retention(&self, today: Date) {
        if self.keep_days == 0 {
            return;
        }
        let files = logs::files::list(&self.dir).unwrap_or_default();
        let held: BTreeSet<Date> = files.iter().map(|f| f.day).collect();
        let plan = retention_plan(&held, today, self.keep_days);
        if let Some(why) = &plan.refused {
            say!("retention: not deleting any log file: {why}");
        }
        if let (Some(first), Some(last)) = (plan.future.first(), plan.future.last()) {
            say!(
                "retention: log files dated {first} to {last} are after today ({today}): written while the clock was ahead? They are kept and not shown; check them and move them out of {}",
                self.dir.display()
            );
        }
        for f in files.into_iter().filter(|f| plan.delete.contains(&f.day)) {
            if let Err(e) = std::fs::remove_file(&f.path) {
                say!("cannot delete old log {}: {e}", f.path.display());
            }
        }
    }
}

/// [`OpenFile::create_or_append`], saying and counting a file set aside.
fn open_file(dir: &Path, kind: LogKind, day: Date, metrics: &Metrics) -> Result<OpenFile, Error> {
    let (file, opened) = OpenFile::create_or_append(dir, kind, day)?;
    if let Some(aside) = opened.set_aside {
        say!(
            "{}: its first line is not the header the collector writes (a BOM, other or reordered columns?), so nothing is appended to it: renamed it to {} and started a new file",
            file.path.display(),
            aside.display()
        );
        metrics.log_files_set_aside.fetch_add(1, Relaxed);
    }
    if let Some((width, rows)) = opened.upgraded {
        say!(
            "{}: written by an earlier version ({width} columns): rewrote it with the {} columns of this one, the new ones empty in its {rows} rows",
            file.path.display(),
            kind.header().len()
        );
    }
    Ok(file)
}

/// How far (days) the clock may be ahead of the newest log before today
/// for retention still to delete: more, and the clock is more likely wrong
/// than the collector was stopped that long (in which case deleting waits
/// for the next day's roll-over, when yesterday's logs exist).
pub(crate) const MAX_CLOCK_LEAD_DAYS: i32 = 2;

/// What retention may do on `today` with the days `held`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RetentionPlan {
    /// Days whose files go.
    pub delete: Vec<Date>,
    /// Days after today: kept, and named.
    pub future: Vec<Date>,
    /// Why nothing is deleted, when it is refused.
    pub refused: Option<String>,
}

/// Retention's decision, from the days held and the clock's day alone (a
/// pure function, tested with any clock):
///
/// - files older than `keep_days` before `today` go, except that the newest
///   `keep_days` days held up to today always stay (a clock that jumps
///   ahead cannot empty the history, and a collector that was stopped keeps
///   what it had);
/// - nothing goes while `today` is more than [`MAX_CLOCK_LEAD_DAYS`] after
///   the newest day held before today (one clock reading far ahead of
///   every log is not trusted);
/// - days after today are never deleted, and are reported.
pub(crate) fn retention_plan(held: &BTreeSet<Date>, today: Date, keep_days: u64) -> RetentionPlan {
    let mut plan = RetentionPlan {
        future: held.iter().filter(|d| **d > today).copied().collect(),
        ..RetentionPlan::default()
    };
    if keep_days == 0 {
        return plan;
    }
    let before: Vec<Date> = held.iter().filter(|d| **d < today).copied().collect();
    if let Some(&newest) = before.last() {
        let lead = newest.until(today).map_or(i32::MAX, |s| s.get_days());
        if lead > MAX_CLOCK_LEAD_DAYS {
            plan.refused = Some(format!(
                "the clock says {today}, {lead} days after the newest earlier log ({newest}); if the clock is wrong, fix it; if the collector was stopped that long, deleting resumes after the next midnight"
            ));
            return plan;
        }
    }
    let keep = usize::try_from(keep_days).unwrap_or(usize::MAX);
    let days = i64::try_from(keep_days).unwrap_or(i64::MAX).min(100_000);
    let Ok(oldest) = today.checked_sub(jiff::Span::new().days(days)) else {
        return plan;
    };
    // The newest `keep` days held up to today stay whatever the clock says.
    let held_to_today = before.len() + usize::from(held.contains(&today));
    let protected_from = held_to_today.saturating_sub(keep);
    plan.delete = before
        .iter()
        .enumerate()
        .filter(|&(i, d)| *d < oldest && i < protected_from)
        .map(|(_, d)| *d)
        .collect();
    plan
}

/// What the [`Committer`]'s thread is asked to do.
enum Job {
    Append(Box<Rows>),
    Roll(u64),
}

/// What the writer's thread answers: the result, and an append's rows
/// (emptied) for the next batch.
type Done = (Result<(), Error>, Option<Box<Rows>>);

/// A [`LogWriter`] on its own thread. [`Committer::submit`] hands it one
/// batch's rows and returns at once; [`Committer::wait`] gives that batch's
/// result. At most one batch is in flight: submitting another first waits
/// for the one before, so batches reach the disk in order. The rows of a
/// batch come back emptied with its result, and [`Committer::rows`] hands
/// them out again, so that the buffers are not grown anew every batch.
pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Done>,
    in_flight: bool,
    /// The in-flight batch's result, when [`Committer::is_done`] took it.
    ready: Option<Done>,
    spare: Option<Box<Rows>>,
    /// The day the writer's files are known to be of: a roll to it is not
    /// sent (the once-a-second tick must not wake the writer).
    day: Date,
}

impl Committer {
    /// Starts the thread that owns `log`.
    pub(crate) fn start(mut log: LogWriter) -> std::io::Result<Committer> {
        let day = log.day;
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                for job in job_rx {
                    let result = match job {
                        Job::Append(mut rows) => {
                            let result = log.append_rows(&rows);
                            rows.clear();
                            (result, Some(rows))
                        }
                        Job::Roll(now) => (log.roll(now), None),
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
            ready: None,
            spare: None,
            day,
        })
    }

    /// Hands a batch's rows to the writer. Call [`Committer::wait`] for the
    /// one in flight first.
    pub(crate) fn submit(&mut self, rows: Box<Rows>) -> Result<(), Error> {
        debug_assert!(!self.in_flight, "wait for the batch in flight first");
        self.send(Job::Append(rows))?;
        self.in_flight = true;
        Ok(())
    }

    /// Empty rows for the next batch (the last batch's buffers when they
    /// came back).
    pub(crate) fn rows(&mut self) -> Box<Rows> {
        self.spare.take().unwrap_or_default()
    }

    /// Whether the batch in flight (if any) is written and synced (or
    /// failed), so that [`Committer::wait`] would not wait.
    pub(crate) fn is_done(&mut self) -> bool {
        if !self.in_flight || self.ready.is_some() {
            return true;
        }
        match self.done.try_recv() {
            Ok(r) => {
                self.ready = Some(r);
                true
            }
            Err(mpsc::TryRecvError::Empty) => false,
            // `wait` says the writer is gone.
            Err(mpsc::TryRecvError::Disconnected) => true,
        }
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
        let day = day_of(now);
        if day == self.day {
            return Ok(());
        }
        self.send(Job::Roll(now))?;
        self.result()?;
        self.day = day;
        Ok(())
    }

    fn send(&self, job: Job) -> Result<(), Error> {
        self.jobs.send(job).map_err(|_| Self::gone())
    }

    fn result(&mut self) -> Result<(), Error> {
        let (result, rows) = match self.ready.take() {
            Some(r) => r,
            None => self
                .done
                .recv()
                .unwrap_or_else(|_| (Err(Self::gone()), None)),
        };
        if rows.is_some() {
            self.spare = rows;
        }
        result
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
            rows.tunnel(t.into());
        }
        rows.event(event.into());
        w.append_rows(&rows)
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
            period: None,
            until: None,
        }
    }

    #[test]
    fn a_log_file_deleted_while_open_is_reopened_before_the_rows_are_written() {
        let dir = tmp("deleted");
        let now = 1_763_856_000;
        let mut w = LogWriter::open(&dir, now, 0).unwrap();
        append(&mut w, &[], &event(now, "before")).unwrap();
        let path = dir.join("events-2025-11-23.csv");
        std::fs::remove_file(&path).unwrap();
        append(&mut w, &[], &event(now + 1, "after")).unwrap();
        let read = read_events(&path).unwrap();
        let texts: Vec<_> = read.rows.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["after"]);
        assert_eq!(w.metrics.log_files_reopened.load(Relaxed), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_file_with_a_bom_is_appended_to_as_both_readers_read_it() {
        let dir = tmp("bom");
        let now = 1_763_856_000;
        let path = dir.join("events-2025-11-23.csv");
        let header = format_rows(std::iter::once(LogKind::Events.header().iter().copied()));
        let mut bom = BOM.to_vec();
        bom.extend_from_slice(&header);
        std::fs::write(&path, &bom).unwrap();
        let mut w = LogWriter::open(&dir, now, 0).unwrap();
        append(&mut w, &[], &event(now, "new")).unwrap();
        assert_eq!(read_events(&path).unwrap().rows.len(), 1);
        assert_eq!(w.metrics.log_files_set_aside.load(Relaxed), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_file_with_another_header_is_set_aside_not_appended_to() {
        let dir = tmp("swapped");
        let now = 1_763_856_000;
        let path = dir.join("events-2025-11-23.csv");
        let mut names = LogKind::Events.header().to_vec();
        names.swap(1, 2);
        let bom = format_rows(std::iter::once(names.iter().copied()));
        std::fs::write(&path, &bom).unwrap();
        let mut w = LogWriter::open(&dir, now, 0).unwrap();
        append(&mut w, &[], &event(now, "new")).unwrap();
        let read = read_events(&path).unwrap();
        assert!(!read.wrong_header);
        assert_eq!(read.rows.len(), 1);
        assert_eq!(w.metrics.log_files_set_aside.load(Relaxed), 1);
        let aside: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".set-aside-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(aside[0].path()).unwrap(), bom);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The day a new version starts, today's file in the older layout is
    /// rewritten in the current one (its rows kept, the new columns empty)
    /// and appended to: one file, one header, every row read.
    #[test]
    fn todays_file_in_an_older_layout_is_rewritten_then_appended_to() {
        let dir = tmp("older");
        let now = 1_763_856_000;
        let path = dir.join("events-2025-11-23.csv");
        let old = format!(
            "{}\n{now},gw,message,1,1,1,{now},10.0.0.1:4000,0,\"a, \"\"quoted\"\"\nline\"\n",
            LogKind::Events.header()[..10].join(",")
        );
        std::fs::write(&path, &old).unwrap();
        let mut w = LogWriter::open(&dir, now, 0).unwrap();
        append(&mut w, &[], &event(now, "new")).unwrap();
        let read = read_events(&path).unwrap();
        assert!(!read.wrong_header);
        assert_eq!(read.malformed, 0);
        let texts: Vec<_> = read.rows.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["a, \"quoted\"\nline", "new"]);
        assert_eq!(read.rows[0].period, None);
        assert_eq!(w.metrics.log_files_set_aside.load(Relaxed), 0);
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.starts_with(&LogKind::Events.header().join(",")));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "no file set aside or left behind: {names:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
        let mut w = LogWriter::open(&dir, midnight - 1, 1).unwrap();
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

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    /// `n` consecutive days ending with `last`.
    fn days_to(last: &str, n: i64) -> BTreeSet<Date> {
        let last = date(last);
        (0..n)
            .map(|i| last.checked_sub(jiff::Span::new().days(i)).unwrap())
            .collect()
    }

    #[test]
    fn retention_deletes_what_is_older_than_keep_days() {
        let held = days_to("2025-11-23", 101);
        let plan = retention_plan(&held, date("2025-11-23"), 90);
        assert_eq!(plan.refused, None);
        assert_eq!(plan.delete.len(), 10);
        assert_eq!(plan.delete.last(), Some(&date("2025-08-24")));
    }

    #[test]
    fn a_forward_clock_jump_deletes_no_history() {
        // 90 days held, then the clock reads 100 days later (with or
        // without that day's new files).
        let mut held = days_to("2025-11-23", 90);
        let jumped = date("2026-03-03");
        let plan = retention_plan(&held, jumped, 90);
        assert!(plan.delete.is_empty(), "{plan:?}");
        assert!(
            plan.refused.as_deref().unwrap().contains("100 days"),
            "{plan:?}"
        );
        held.insert(jumped);
        assert!(retention_plan(&held, jumped, 90).delete.is_empty());
        // The clock stays wrong for another day: the newest 90 days held
        // stay; a real day goes for each day written under the wrong clock.
        let next = jumped.tomorrow().unwrap();
        held.insert(next);
        let plan = retention_plan(&held, next, 90);
        assert_eq!(plan.refused, None);
        assert_eq!(plan.delete, [date("2025-08-26"), date("2025-08-27")]);
    }

    #[test]
    fn future_dated_log_files_are_kept_and_named() {
        let mut held = days_to("2025-11-23", 5);
        held.insert(date("2026-03-03"));
        let plan = retention_plan(&held, date("2025-11-23"), 2);
        assert_eq!(plan.future, [date("2026-03-03")]);
        assert!(!plan.delete.contains(&date("2026-03-03")));
        assert_eq!(plan.delete, [date("2025-11-19"), date("2025-11-20")]);
    }

    proptest::proptest! {
        /// Retention never deletes the newest `keep` days held up to today,
        /// never a day after today, whatever the clock says.
        #[test]
        fn retention_keeps_the_newest_days_held(
            offsets in proptest::collection::btree_set(0i64..400, 0..60),
            today in 0i64..800,
            keep in 1u64..100,
        ) {
            let base = date("2025-01-01");
            let day = |n: i64| base.checked_add(jiff::Span::new().days(n)).unwrap();
            let held: BTreeSet<Date> = offsets.iter().map(|&n| day(n)).collect();
            let today = day(today);
            let plan = retention_plan(&held, today, keep);
            let newest: Vec<Date> = held.iter().rev().filter(|d| **d <= today).take(keep as usize).copied().collect();
            for d in &plan.delete {
                proptest::prop_assert!(!newest.contains(d) && *d < today);
            }
        }
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
