//! The log files of a directory: which there are, by kind and UTC day, and
//! their rows read back with the `csv` crate (rows that do not parse are
//! skipped and counted, never fatal).
//!
//! Writing is the collector's business (its `csvlog.rs`); this is the half
//! that both products read with.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use jiff::civil::Date;

use crate::error::Error;
use crate::schema::{self, EventRow, LogKind, TunnelRow};

/// The UTC day of a Unix time.
pub fn day_of(secs: u64) -> Date {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    jiff::Timestamp::from_second(secs)
        .unwrap_or(jiff::Timestamp::MAX)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// A log file found in a directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogFile {
    pub kind: LogKind,
    pub day: Date,
    pub path: PathBuf,
}

/// The log files in `dir`: entries whose names parse as log names (see
/// [`schema::parse_file_name`]) and that are not directories, sorted by
/// kind, then day. Nothing else in the directory is looked at.
pub fn list(dir: &Path) -> std::io::Result<Vec<LogFile>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some((kind, day)) = entry.file_name().to_str().and_then(schema::parse_file_name) else {
            continue;
        };
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        out.push(LogFile {
            kind,
            day,
            path: entry.path(),
        });
    }
    out.sort();
    Ok(out)
}

/// One UTC day's pair of files (either may be missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFiles {
    pub day: Date,
    pub events: Option<PathBuf>,
    pub tunnels: Option<PathBuf>,
}

/// The log files of `dir` for the days `from..=to`, by day, oldest first.
pub fn days(dir: &Path, from: Date, to: Date) -> std::io::Result<Vec<DayFiles>> {
    let mut days: BTreeMap<Date, DayFiles> = BTreeMap::new();
    for f in list(dir)? {
        if f.day < from || f.day > to {
            continue;
        }
        let slot = days.entry(f.day).or_insert_with(|| DayFiles {
            day: f.day,
            events: None,
            tunnels: None,
        });
        match f.kind {
            LogKind::Events => slot.events = Some(f.path),
            LogKind::Tunnels => slot.tunnels = Some(f.path),
        }
    }
    Ok(days.into_values().collect())
}

/// The rows of one file that parse, and what was skipped.
#[derive(Debug)]
pub struct FileRows<T> {
    pub rows: Vec<T>,
    /// Rows that did not parse.
    pub malformed: usize,
    /// The header is not the schema's: no row was read.
    pub wrong_header: bool,
}

/// Reads the rows of one file. Its first row must be the header of `kind`,
/// the current one or an older layout ([`schema::LogKind::width_of`]),
/// else the file is skipped whole (its columns would mean something else);
/// a UTF-8 byte order mark before it is ignored (the `csv` reader drops it;
/// an editor may add one). Rows that do not have the header's number of
/// columns or do not parse are skipped and counted. A missing file has no
/// rows.
fn read_rows<T>(
    path: &Path,
    kind: LogKind,
    parse: fn(&csv::StringRecord) -> Result<T, String>,
) -> Result<FileRows<T>, Error> {
    let mut out = FileRows {
        rows: Vec::new(),
        malformed: 0,
        wrong_header: false,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("cannot open the log file", path, e)),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let mut record = csv::StringRecord::new();
    let mut first = true;
    let mut width = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) if first => {
                first = false;
                match kind.width_of(record.iter().map(str::as_bytes)) {
                    Some(w) => width = w,
                    None => {
                        out.wrong_header = true;
                        return Ok(out);
                    }
                }
            }
            Ok(true) if record.len() != width => out.malformed += 1,
            Ok(true) => match parse(&record) {
                Ok(row) => out.rows.push(row),
                Err(_) => out.malformed += 1,
            },
            Ok(false) => break,
            Err(e) if e.is_io_error() => {
                return Err(Error::io(
                    "cannot read the log file",
                    path,
                    std::io::Error::other(e.to_string()),
                ));
            }
            Err(_) if first => {
                out.wrong_header = true;
                return Ok(out);
            }
            Err(_) => out.malformed += 1,
        }
    }
    Ok(out)
}

/// The event rows of one file.
pub fn read_events(path: &Path) -> Result<FileRows<EventRow>, Error> {
    read_rows(path, LogKind::Events, EventRow::from_record)
}

/// The tunnel rows of one file.
pub fn read_tunnels(path: &Path) -> Result<FileRows<TunnelRow>, Error> {
    read_rows(path, LogKind::Tunnels, TunnelRow::from_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_utf8_bom_before_the_header_is_ignored() {
        let dir = std::env::temp_dir().join(format!("logs-bom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events-2025-11-23.csv");
        let text = format!(
            "\u{feff}{}\n1763856000,gw,message,1,1,1,1763856000,10.0.0.1:4000,0,hi,,\n",
            schema::EVENT_HEADER.join(",")
        );
        std::fs::write(&path, text).unwrap();
        let read = read_events(&path).unwrap();
        assert!(!read.wrong_header);
        assert_eq!((read.rows.len(), read.malformed), (1, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Files written before `period`/`until` and `connections`/`connected`
    /// existed are read, the new fields unknown; a row must have its own
    /// file's number of columns.
    #[test]
    fn files_in_the_older_layouts_are_read() {
        let dir = std::env::temp_dir().join(format!("logs-older-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events-2025-11-23.csv");
        std::fs::write(
            &events,
            "received,gateway,kind,seq,part,parts,sent,source,tunnels,text\n\
             1763856000,gw,heartbeat,1,1,1,1763856000,10.0.0.1:4000,0,\n\
             1763856060,gw,heartbeat,2,1,1,1763856060,10.0.0.1:4000,0,,35,\n",
        )
        .unwrap();
        let read = read_events(&events).unwrap();
        assert!(!read.wrong_header);
        assert_eq!((read.rows.len(), read.malformed), (1, 1));
        assert_eq!((read.rows[0].seq, read.rows[0].period), (1, None));

        let tunnels = dir.join("tunnels-2025-11-23.csv");
        let old = &schema::TUNNEL_HEADER[..17];
        std::fs::write(
            &tunnels,
            format!(
                "{}\n1763856000,gw,1,1,4242,novacr01,L,,5900,master,5951,gw,,Apr04,1:56,yes,unknown\n",
                old.join(",")
            ),
        )
        .unwrap();
        let read = read_tunnels(&tunnels).unwrap();
        assert_eq!((read.rows.len(), read.malformed), (1, 0));
        let t = &read.rows[0].tunnel;
        assert_eq!(
            (t.listen_port, t.connections, t.connected.len()),
            (5900, None, 0)
        );

        // A header of another width than a known layout is not read.
        let cut = &schema::TUNNEL_HEADER[..16];
        std::fs::write(&tunnels, format!("{}\n", cut.join(","))).unwrap();
        assert!(read_tunnels(&tunnels).unwrap().wrong_header);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
