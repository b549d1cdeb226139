//! The cache that makes a run's cost independent of the history's length.
//!
//! A run reads the logs of every day in view (30 and more), though only
//! today's grow: the UTC days before today are closed, and the collector
//! writes nothing more to them. So the state reading reaches after the last
//! closed day — the run's catalog, what it found so far, what that day
//! hands the next ([`Reading`]) and the whole aggregate built from the
//! stream ([`Tracker`]) — is saved in one file, the *checkpoint*, and the
//! next run reads on from it: only today's files (and any day closed since)
//! are parsed. The pages are the same byte for byte with and without it
//! (`e2e/tests/webgen_cache.rs` checks that on generated logs).
//!
//! The checkpoint is used only when everything it was made from is the
//! same, else the run reads the logs whole and saves a new one:
//!
//! - the same format and the same webgen binary (its size and modification
//!   time): a build whose model differs never reads an older one, even if
//!   [`FORMAT`] was not bumped;
//! - the same data directory (as given and canonical: the warnings name
//!   files by the path given), first day read (the longest range), late
//!   and down thresholds with the `[[gateway]]` overrides, and inventory
//!   (the config), all in one fingerprint;
//! - each closed day's files the same ([`FileKey`]: name, device, inode,
//!   size, modification and change time to the nanosecond, and a hash of
//!   the first and last 4 KiB). A file rewritten in place, even with the
//!   same size and its modification time set back, has a new change time
//!   (which no user can set); a file replaced has a new inode; a day that
//!   appears or disappears changes the list;
//! - no row of those days was received after this run's `--now`;
//! - its own checksum.
//!
//! What is saved is the merged model, not page fragments: a new field in
//! the catalog's tunnels, the events or the tracker is carried by adding it
//! here (the encoders destructure every struct they write, so a new field
//! does not compile until it is saved and read back) and bumping [`FORMAT`].
//!
//! The cache lives in `--cache DIR` (default `OUT/.webgen-cache`, which the
//! collector never serves: it serves only the site's plain files); `--no-cache`
//! turns it off. A cache that cannot be read or written never stops the
//! pages: the run warns and reads the logs whole.

use std::collections::VecDeque;
use std::fs::File;
use std::hash::Hasher;
use std::io::ErrorKind;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gateway_client::tunnel::{Health, Kind, Tunnel};
use jiff::civil::Date;
use logs::files::DayFiles;
use logs::inventory::{Inventory, Judged, TunnelState};
use logs::silence::{Maintenance, Silence};
use logs::usage::Usage;
use logs::{EventKind, Thresholds};

use crate::cli::Config;
use crate::error::Error;
use crate::expected::Judging;
use crate::logs::{
    self as reading, Assembly, Carry, Catalog, FileStats, GwId, Obs, ReadStats, Reading,
    TunnelEntry, TunnelId,
};
use crate::series::Series;
use crate::state::{GatewayTrack, InUse, Message, Session, Tracker};

/// The checkpoint's format: bump it whenever what is saved changes shape
/// or meaning.
const FORMAT: u32 = 3;
const MAGIC: &[u8] = b"roc-tunnel-monitor webgen checkpoint\n";
const CHECKPOINT: &str = "checkpoint.bin";
/// Bytes hashed at each end of a log file for its key.
const EDGE: usize = 4096;

/// The logs read, with or without the cache.
pub(crate) struct Read {
    pub catalog: Catalog,
    pub tracker: Tracker,
    pub stats: ReadStats,
    /// Why the cache was not used or not saved, for stderr (none when it
    /// worked or was simply out of date).
    pub warnings: Vec<String>,
    /// The closed days read back from the checkpoint instead of the logs.
    pub resumed: usize,
}

/// Reads the logs of `cfg.data` for the UTC days `from..=to` into a
/// tracker, reading on from the checkpoint in `cfg.cache` when it is
/// current and saving a new one when more days have closed.
pub(crate) fn read(cfg: &Config, from: Date, to: Date) -> Result<Read, Error> {
    let mut tracker = Tracker::new(cfg.staleness.clone(), cfg.inventory.clone());
    let mut warnings = Vec::new();
    let Some(days) = reading::list_days(&cfg.data, from, to)? else {
        let stats = ReadStats {
            missing_dir: true,
            ..ReadStats::default()
        };
        return Ok(Read {
            catalog: Catalog::default(),
            tracker,
            stats,
            warnings,
            resumed: 0,
        });
    };
    let mut state = Reading::default();
    let Some(dir) = &cfg.cache else {
        reading::read_days(&days, cfg.now, &mut state, &mut tracker);
        let (catalog, stats) = state.finish();
        return Ok(Read {
            catalog,
            tracker,
            stats,
            warnings,
            resumed: 0,
        });
    };
    let today = logs::files::day_of(cfg.now);
    let closed = days.iter().take_while(|d| d.day < today).count();
    // Keys first, files read after: a file changed in between is saved
    // under its old key, so the next run reads it again. The checkpoint is
    // read meanwhile (each is a few milliseconds of a warm run).
    let path = dir.join(CHECKPOINT);
    let (keys, saved) = std::thread::scope(|s| {
        let keys = s.spawn(|| {
            (days[..closed].iter())
                .map(DayKey::of)
                .collect::<Option<Vec<DayKey>>>()
        });
        let saved = std::fs::read(&path);
        (keys.join(), saved)
    });
    let keys = keys.map_err(|_| Error::Thread("the cache's keys"))?;
    let fingerprint = fingerprint(cfg, from);
    let mut resumed = 0;
    if let Some(keys) = &keys {
        match load(saved, &fingerprint, keys, cfg) {
            Ok(Some((n, saved, saved_tracker))) => {
                resumed = n;
                state = saved;
                tracker = saved_tracker;
            }
            Ok(None) => {}
            Err(why) => warnings.push(format!(
                "cache {}: {why}: read the logs whole instead (it is made anew)",
                path.display()
            )),
        }
    }
    reading::read_days(&days[resumed..closed], cfg.now, &mut state, &mut tracker);
    let unseen = state.stats.latest_checked.is_some_and(|t| t > cfg.now);
    if let Some(keys) = &keys
        && closed > resumed
        && !unseen
        && let Err(why) = save(dir, &path, &fingerprint, keys, &state, &tracker)
    {
        warnings.push(format!(
            "cache {}: cannot write it ({why}): the pages are made without it (check --cache, or turn it off with --no-cache)",
            dir.display()
        ));
    }
    reading::read_days(&days[closed..], cfg.now, &mut state, &mut tracker);
    let (catalog, stats) = state.finish();
    Ok(Read {
        catalog,
        tracker,
        stats,
        warnings,
        resumed,
    })
}

/// What the checkpoint depends on besides the log files.
fn fingerprint(cfg: &Config, from: Date) -> String {
    let build = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| format!("{} {}.{:09}", m.len(), m.mtime(), m.mtime_nsec()))
        .unwrap_or_default();
    // As given too: the files' paths in the warnings are spelled that way.
    let data = std::fs::canonicalize(&cfg.data).unwrap_or_else(|_| cfg.data.clone());
    format!(
        "format {FORMAT}; webgen {} ({build}); data {} ({}); from {from}; {:?}; inventory {:?}",
        env!("CARGO_PKG_VERSION"),
        data.display(),
        cfg.data.display(),
        cfg.staleness,
        cfg.inventory
    )
}

/// What identifies one version of a log file (see the module doc).
#[derive(Debug, PartialEq, Eq)]
struct FileKey {
    name: Vec<u8>,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    head: u64,
    tail: u64,
}

impl FileKey {
    /// `None` when the file cannot be opened or read (reading then says why).
    fn of(path: &Path) -> Option<FileKey> {
        let f = File::open(path).ok()?;
        let m = f.metadata().ok()?;
        let mut buf = vec![0u8; EDGE];
        let hash = |at: u64, buf: &mut [u8]| -> Option<u64> {
            let n = read_full_at(&f, buf, at)?;
            let mut h = rustc_hash::FxHasher::default();
            h.write(&buf[..n]);
            h.write_usize(n);
            Some(h.finish())
        };
        let head = hash(0, &mut buf)?;
        let tail = hash(m.size().saturating_sub(EDGE as u64), &mut buf)?;
        Some(FileKey {
            name: path.file_name()?.as_bytes().to_vec(),
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            head,
            tail,
        })
    }

    fn put(&self, o: &mut Out) {
        let FileKey {
            name,
            dev,
            ino,
            size,
            mtime,
            ctime,
            head,
            tail,
        } = self;
        o.bytes(name);
        for v in [*dev, *ino, *size, *head, *tail] {
            o.u(v);
        }
        for v in [mtime.0, mtime.1, ctime.0, ctime.1] {
            o.i(v);
        }
    }

    fn get(i: &mut In) -> Option<FileKey> {
        let name = i.bytes()?.to_vec();
        let (dev, ino, size, head, tail) = (i.u()?, i.u()?, i.u()?, i.u()?, i.u()?);
        let mtime = (i.i()?, i.i()?);
        let ctime = (i.i()?, i.i()?);
        Some(FileKey {
            name,
            dev,
            ino,
            size,
            mtime,
            ctime,
            head,
            tail,
        })
    }
}

/// Reads up to `buf.len()` bytes at `at`; how many (fewer only at the end).
fn read_full_at(f: &File, buf: &mut [u8], at: u64) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(n)
}

/// One day's files as the checkpoint knows them.
#[derive(Debug, PartialEq, Eq)]
struct DayKey {
    day: String,
    events: Option<FileKey>,
    tunnels: Option<FileKey>,
}

impl DayKey {
    fn of(d: &DayFiles) -> Option<DayKey> {
        let key = |p: &Option<PathBuf>| match p {
            Some(p) => FileKey::of(p).map(Some),
            None => Some(None),
        };
        Some(DayKey {
            day: d.day.to_string(),
            events: key(&d.events)?,
            tunnels: key(&d.tunnels)?,
        })
    }

    fn put(&self, o: &mut Out) {
        o.str(&self.day);
        for k in [&self.events, &self.tunnels] {
            o.flag(k.is_some());
            if let Some(k) = k {
                k.put(o);
            }
        }
    }

    fn get(i: &mut In) -> Option<DayKey> {
        let day = i.string()?;
        let events = i.opt(FileKey::get)?;
        let tunnels = i.opt(FileKey::get)?;
        Some(DayKey {
            day,
            events,
            tunnels,
        })
    }
}

/// The checkpoint read (`saved`), when it was made from the same
/// fingerprint and its days are the first of `keys`: how many days it
/// holds, and the state after them. `Ok(None)`: none, or out of date;
/// `Err`: unreadable.
fn load(
    saved: std::io::Result<Vec<u8>>,
    fingerprint: &str,
    keys: &[DayKey],
    cfg: &Config,
) -> Result<Option<(usize, Reading, Tracker)>, String> {
    let bytes = match saved {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it ({e})")),
    };
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        return Err("not a webgen checkpoint".into());
    };
    let Some((format, body)) = body.split_first_chunk::<4>() else {
        return Err("damaged (too short)".into());
    };
    if u32::from_le_bytes(*format) != FORMAT {
        return Ok(None);
    }
    let Some((body, sum)) = body.split_last_chunk::<8>() else {
        return Err("damaged (too short)".into());
    };
    if checksum(body) != u64::from_le_bytes(*sum) {
        return Err("damaged (its checksum does not match)".into());
    }
    let mut i = In { b: body, pos: 0 };
    let damaged = || "damaged (cannot be decoded)".to_string();
    if i.bytes().ok_or_else(damaged)? != fingerprint.as_bytes() {
        return Ok(None);
    }
    let latest = i.opt(In::u).ok_or_else(damaged)?;
    if latest.is_some_and(|t| t > cfg.now) {
        return Ok(None);
    }
    let n = i.count().ok_or_else(damaged)?;
    if n > keys.len() {
        return Ok(None);
    }
    for key in &keys[..n] {
        if DayKey::get(&mut i).ok_or_else(damaged)? != *key {
            return Ok(None);
        }
    }
    // The two halves of the state are decoded on a thread each: they are
    // about the same size, and a warm run spends a quarter of its time here.
    let reading = i.bytes().ok_or_else(damaged)?;
    let mut rest = In {
        b: &i.b[i.pos..],
        pos: 0,
    };
    let (state, tracker) = std::thread::scope(|s| {
        let tracker = s.spawn(|| {
            let mut size = || usize::try_from(rest.u()?).ok();
            let (gateways, tunnels) = (size()?, size()?);
            let t = get_tracker(&mut rest, cfg, gateways, tunnels)?;
            (rest.pos == rest.b.len()).then_some((gateways, tunnels, t))
        });
        let mut i = In { b: reading, pos: 0 };
        let state = get_reading(&mut i).filter(|_| i.pos == i.b.len());
        // A thread that failed is a checkpoint not read, like a damaged one.
        (state, tracker.join().ok().flatten())
    });
    match (state, tracker) {
        (Some(state), Some((gateways, tunnels, tracker)))
            if gateways == state.catalog.gateways.len()
                && tunnels == state.catalog.tunnels.len() =>
        {
            Ok(Some((n, state, tracker)))
        }
        _ => Err(damaged()),
    }
}

/// Writes the checkpoint atomically (a temporary file, then a rename, so
/// two runs at once each leave a whole one).
fn save(
    dir: &Path,
    path: &Path,
    fingerprint: &str,
    keys: &[DayKey],
    state: &Reading,
    tracker: &Tracker,
) -> std::io::Result<()> {
    let mut o = Out(Vec::with_capacity(1 << 20));
    o.bytes(fingerprint.as_bytes());
    o.flag(state.stats.latest_checked.is_some());
    if let Some(t) = state.stats.latest_checked {
        o.u(t);
    }
    o.u(keys.len() as u64);
    for k in keys {
        k.put(&mut o);
    }
    // The reading with its length, so that the tracker after it can be
    // decoded at the same time (see `load`).
    let mut reading = Out(Vec::with_capacity(1 << 20));
    put_reading(&mut reading, state);
    o.bytes(&reading.0);
    o.u(state.catalog.gateways.len() as u64);
    o.u(state.catalog.tunnels.len() as u64);
    put_tracker(&mut o, tracker);
    let sum = checksum(&o.0);
    let mut file = Vec::with_capacity(MAGIC.len() + 4 + o.0.len() + 8);
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&FORMAT.to_le_bytes());
    file.extend_from_slice(&o.0);
    file.extend_from_slice(&sum.to_le_bytes());
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{CHECKPOINT}.{}.{nanos}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, &file).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn checksum(b: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(b);
    h.write_usize(b.len());
    h.finish()
}

/// The encoder: unsigned LEB128 numbers, zigzag for signed ones, and
/// length-prefixed bytes.
struct Out(Vec<u8>);

impl Out {
    fn u(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn i(&mut self, v: i64) {
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }

    fn flag(&mut self, b: bool) {
        self.0.push(u8::from(b));
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn opt_u(&mut self, v: Option<u64>) {
        self.flag(v.is_some());
        if let Some(v) = v {
            self.u(v);
        }
    }

    fn opt_str(&mut self, v: &Option<String>) {
        self.flag(v.is_some());
        if let Some(v) = v {
            self.str(v);
        }
    }
}

/// The decoder: every read is checked, so a damaged file is `None`, never a
/// panic or a huge allocation.
struct In<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> In<'a> {
    fn u(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u()?).ok()
    }

    fn u16(&mut self) -> Option<u16> {
        u16::try_from(self.u()?).ok()
    }

    fn i(&mut self) -> Option<i64> {
        let v = self.u()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// A count of items that take at least a byte each.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u()?).ok()?;
        (n <= self.b.len() - self.pos).then_some(n)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.count()?;
        let b = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Some(b)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn opt<T>(&mut self, get: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.flag()? {
            false => Some(None),
            true => get(self).map(Some),
        }
    }

    fn vec<T>(&mut self, mut get: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = self.count()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(get(self)?);
        }
        Some(v)
    }
}

fn health_byte(h: Health) -> u8 {
    match h {
        Health::Yes => 0,
        Health::No => 1,
        Health::Unknown => 2,
    }
}

/// The health [`health_byte`] wrote.
fn health_of_byte(b: u8) -> Option<Health> {
    match b {
        0 => Some(Health::Yes),
        1 => Some(Health::No),
        2 => Some(Health::Unknown),
        _ => None,
    }
}

fn get_health(i: &mut In) -> Option<Health> {
    health_of_byte(i.byte()?)
}

fn kind_byte(k: EventKind) -> u8 {
    match k {
        EventKind::Report => 0,
        EventKind::Heartbeat => 1,
        EventKind::Message => 2,
        EventKind::Shutdown => 3,
        EventKind::Maintenance => 4,
        EventKind::Other => 5,
    }
}

fn get_kind(i: &mut In) -> Option<EventKind> {
    Some(match i.byte()? {
        0 => EventKind::Report,
        1 => EventKind::Heartbeat,
        2 => EventKind::Message,
        3 => EventKind::Shutdown,
        4 => EventKind::Maintenance,
        5 => EventKind::Other,
        _ => return None,
    })
}

fn state_byte(s: TunnelState) -> u8 {
    match s {
        TunnelState::Up => 0,
        TunnelState::Broken => 1,
        TunnelState::WrongTarget => 2,
        TunnelState::Missing => 3,
        TunnelState::Unknown => 4,
    }
}

fn get_state(i: &mut In) -> Option<TunnelState> {
    Some(match i.byte()? {
        0 => TunnelState::Up,
        1 => TunnelState::Broken,
        2 => TunnelState::WrongTarget,
        3 => TunnelState::Missing,
        4 => TunnelState::Unknown,
        _ => return None,
    })
}

fn put_tunnel(o: &mut Out, t: &Tunnel) {
    let Tunnel {
        pid,
        user,
        kind,
        bind,
        listen_port,
        target_host,
        target_port,
        dest,
        started,
        start,
        cpu_time,
        listening,
        vnc,
        connections,
        connected,
    } = t;
    o.u(u64::from(*pid));
    o.str(user);
    o.0.push(match kind {
        Kind::Local => 0,
        Kind::Remote => 1,
        Kind::Dynamic => 2,
    });
    o.str(bind);
    o.u(u64::from(*listen_port));
    o.str(target_host);
    o.u(u64::from(*target_port));
    o.str(dest);
    o.opt_u(*started);
    o.str(start);
    o.str(cpu_time);
    o.0.push(health_byte(*listening));
    o.0.push(health_byte(*vnc));
    o.opt_u(connections.map(u64::from));
    o.u(connected.len() as u64);
    for c in connected {
        o.str(c);
    }
}

fn get_tunnel(i: &mut In) -> Option<Tunnel> {
    Some(Tunnel {
        pid: i.u32()?,
        user: i.string()?,
        kind: match i.byte()? {
            0 => Kind::Local,
            1 => Kind::Remote,
            2 => Kind::Dynamic,
            _ => return None,
        },
        bind: i.string()?,
        listen_port: i.u16()?,
        target_host: i.string()?,
        target_port: i.u16()?,
        dest: i.string()?,
        started: i.opt(In::u)?,
        start: i.string()?,
        cpu_time: i.string()?,
        listening: get_health(i)?,
        vnc: get_health(i)?,
        connections: i.opt(In::u32)?,
        connected: i.vec(In::string)?,
    })
}

fn put_obs(o: &mut Out, obs: &[Obs]) {
    o.u(obs.len() as u64);
    for Obs {
        id,
        listening,
        vnc,
        connections,
        connected,
    } in obs
    {
        o.u(u64::from(*id));
        o.0.push(health_byte(*listening) << 2 | health_byte(*vnc));
        o.opt_u(connections.map(u64::from));
        o.opt_str(&connected.as_deref().map(str::to_string));
    }
}

fn get_obs(i: &mut In, tunnels: usize) -> Option<Vec<Obs>> {
    i.vec(|i| {
        let id = i.u32().filter(|&id| (id as usize) < tunnels)?;
        let h = i.byte()?;
        let listening = health_of_byte(h >> 2)?;
        let vnc = health_of_byte(h & 3)?;
        let connections = i.opt(In::u32)?;
        let connected = i.opt(In::string)?.map(Arc::<str>::from);
        Some(Obs {
            id,
            listening,
            vnc,
            connections,
            connected,
        })
    })
}

fn put_catalog(o: &mut Out, c: &Catalog) {
    let Catalog {
        gateways,
        gw_index: _,
        tunnels,
        tunnel_index,
    } = c;
    o.u(gateways.len() as u64);
    for g in gateways {
        o.str(g);
    }
    o.u(tunnels.len() as u64);
    for TunnelEntry { gateway, tunnel } in tunnels {
        o.u(u64::from(*gateway));
        put_tunnel(o, tunnel);
    }
    o.u(tunnel_index.len() as u64);
    for (key, id) in tunnel_index {
        o.bytes(key);
        o.u(u64::from(*id));
    }
}

fn get_catalog(i: &mut In) -> Option<Catalog> {
    let mut c = Catalog {
        gateways: i.vec(In::string)?,
        ..Catalog::default()
    };
    for (id, g) in c.gateways.iter().enumerate() {
        c.gw_index
            .insert(g.as_bytes().into(), GwId::try_from(id).ok()?);
    }
    let gateways = c.gateways.len();
    c.tunnels = i.vec(|i| {
        let gateway = i.u32().filter(|&g| (g as usize) < gateways)?;
        let tunnel = get_tunnel(i)?;
        Some(TunnelEntry { gateway, tunnel })
    })?;
    let n = i.count()?;
    c.tunnel_index.reserve(n);
    for _ in 0..n {
        let key = i.bytes()?;
        let id: TunnelId = i.u32().filter(|&t| (t as usize) < c.tunnels.len())?;
        c.tunnel_index.insert(key.into(), id);
    }
    Some(c)
}

fn put_stats(o: &mut Out, s: &ReadStats) {
    let ReadStats {
        missing_dir,
        files,
        orphan_rows,
        duplicate_rows,
        incomplete_reports,
        damaged_reports,
        first_received,
        last_received,
        latest_checked,
    } = s;
    o.flag(*missing_dir);
    o.u(files.len() as u64);
    for f in files {
        let FileStats {
            path,
            rows,
            malformed,
            first_bad,
            problem,
        } = f;
        o.bytes(path.as_os_str().as_bytes());
        o.u(*rows);
        o.u(*malformed);
        o.flag(first_bad.is_some());
        if let Some((line, why)) = first_bad {
            o.u(*line);
            o.str(why);
        }
        o.opt_str(problem);
    }
    for v in [
        *orphan_rows,
        *duplicate_rows,
        *incomplete_reports,
        *damaged_reports,
    ] {
        o.u(v);
    }
    for v in [*first_received, *last_received, *latest_checked] {
        o.opt_u(v);
    }
}

fn get_stats(i: &mut In) -> Option<ReadStats> {
    Some(ReadStats {
        missing_dir: i.flag()?,
        files: i.vec(|i| {
            Some(FileStats {
                path: PathBuf::from(std::ffi::OsString::from_vec(i.bytes()?.to_vec())),
                rows: i.u()?,
                malformed: i.u()?,
                first_bad: i.opt(|i| Some((i.u()?, i.string()?)))?,
                problem: i.opt(In::string)?,
            })
        })?,
        orphan_rows: i.u()?,
        duplicate_rows: i.u()?,
        incomplete_reports: i.u()?,
        damaged_reports: i.u()?,
        first_received: i.opt(In::u)?,
        last_received: i.opt(In::u)?,
        latest_checked: i.opt(In::u)?,
    })
}

fn put_reading(o: &mut Out, r: &Reading) {
    let Reading {
        catalog,
        stats,
        carry,
    } = r;
    put_catalog(o, catalog);
    put_stats(o, stats);
    let Carry { previous, partial } = carry;
    // Sorted, so that the seqs (large numbers, close together) go as
    // differences.
    let mut keys: Vec<&(GwId, u64, u32)> = previous.iter().collect();
    keys.sort_unstable_by_key(|k| (k.1, k.0, k.2));
    o.u(keys.len() as u64);
    let mut last = 0;
    for &&(gw, seq, part) in &keys {
        o.u(u64::from(gw));
        o.u(seq - last);
        o.u(u64::from(part));
        last = seq;
    }
    o.u(partial.len() as u64);
    for (&(gw, seq), asm) in partial {
        let Assembly {
            parts,
            have,
            missing,
            received,
            tunnels,
        } = asm;
        o.u(u64::from(gw));
        o.u(seq);
        o.u(u64::from(*parts));
        for h in have {
            o.opt_u(h.map(u64::from));
        }
        o.u(u64::from(*missing));
        o.u(*received);
        put_obs(o, tunnels);
    }
}

fn get_reading(i: &mut In) -> Option<Reading> {
    let catalog = get_catalog(i)?;
    let stats = get_stats(i)?;
    let (gateways, tunnels) = (catalog.gateways.len(), catalog.tunnels.len());
    let gw = |i: &mut In| i.u32().filter(|&g| (g as usize) < gateways);
    let mut carry = Carry::default();
    let n = i.count()?;
    carry.previous.reserve(n);
    let mut last: u64 = 0;
    for _ in 0..n {
        let g = gw(i)?;
        let seq = last.checked_add(i.u()?)?;
        carry.previous.insert((g, seq, i.u32()?));
        last = seq;
    }
    let n = i.count()?;
    for _ in 0..n {
        let key = (gw(i)?, i.u()?);
        let parts = i.u32().filter(|&p| p <= logs::reader::MAX_PARTS)?;
        let have = (0..parts)
            .map(|_| i.opt(In::u32))
            .collect::<Option<Vec<_>>>()?;
        let missing = i.u32()?;
        // What `logs` counts on: one slot per part, `missing` the empty ones.
        if missing as usize != have.iter().filter(|h| h.is_none()).count() {
            return None;
        }
        let received = i.u()?;
        let tunnels = get_obs(i, tunnels)?;
        let asm = Assembly {
            parts,
            have,
            missing,
            received,
            tunnels,
        };
        carry.partial.insert(key, asm);
    }
    Some(Reading {
        catalog,
        stats,
        carry,
    })
}

fn put_session(o: &mut Out, s: &Session) {
    let Session {
        id,
        first,
        last,
        ended,
        listening,
        vnc,
        connections,
        usage,
    } = s;
    o.u(u64::from(*id));
    o.u(*first);
    o.u(*last);
    o.opt_u(*ended);
    o.0.push(health_byte(*listening) << 2 | health_byte(*vnc));
    o.opt_u(connections.map(u64::from));
    let Usage { in_use, idle_since } = *usage;
    o.flag(in_use.is_some());
    if let Some((a, b)) = in_use {
        o.u(a);
        o.u(b);
    }
    o.opt_u(idle_since);
}

fn get_session(i: &mut In, tunnels: usize) -> Option<Session> {
    let id = i.u32().filter(|&t| (t as usize) < tunnels)?;
    let (first, last, ended) = (i.u()?, i.u()?, i.opt(In::u)?);
    let h = i.byte()?;
    let (listening, vnc) = (health_of_byte(h >> 2)?, health_of_byte(h & 3)?);
    let connections = i.opt(In::u32)?;
    let in_use = i.opt(|i| Some((i.u()?, i.u()?)))?;
    let idle_since = i.opt(In::u)?;
    Some(Session {
        id,
        first,
        last,
        ended,
        listening,
        vnc,
        connections,
        usage: Usage { in_use, idle_since },
    })
}

fn put_gateway(o: &mut Out, g: &GatewayTrack) {
    let GatewayTrack {
        id,
        first_heard,
        last_heard,
        events,
        reports,
        last_report,
        open,
        closed,
        closed_dropped,
        series,
        silences,
        in_use,
        in_use_dropped,
        connected,
        period,
        thresholds,
    } = g;
    o.u(u64::from(*id));
    o.opt_u(period.map(u64::from));
    o.u(thresholds.late);
    o.u(thresholds.down);
    for v in [*first_heard, *last_heard, *events, *reports] {
        o.u(v);
    }
    o.opt_u(*last_report);
    for list in [open, closed] {
        o.u(list.len() as u64);
        for s in list {
            put_session(o, s);
        }
    }
    o.u(*closed_dropped);
    // One entry a report: as differences, most a byte or two.
    o.u(series.len() as u64);
    o.0.extend_from_slice(series.bytes());
    o.u(silences.len() as u64);
    for &(a, b) in silences {
        o.u(a);
        o.u(b);
    }
    o.u(in_use.len() as u64);
    for &InUse { id, first, last } in in_use {
        o.u(u64::from(id));
        o.u(first);
        o.u(last);
    }
    o.u(*in_use_dropped);
    o.u(connected.len() as u64);
    for (id, who) in connected {
        o.u(u64::from(*id));
        o.str(who);
    }
}

fn get_gateway(i: &mut In, id: usize, tunnels: usize) -> Option<GatewayTrack> {
    let gid = i.u32().filter(|&g| g as usize == id)?;
    let period = i.opt(In::u32)?;
    let thresholds = Thresholds {
        late: i.u()?,
        down: i.u()?,
    };
    let (first_heard, last_heard, events, reports) = (i.u()?, i.u()?, i.u()?, i.u()?);
    let last_report = i.opt(In::u)?;
    let open = i.vec(|i| get_session(i, tunnels))?;
    let closed = i.vec(|i| get_session(i, tunnels))?;
    let closed_dropped = i.u()?;
    let n = i.count()?;
    let (series, used) = Series::read(&i.b[i.pos..], n)?;
    i.pos += used;
    let silences = i.vec(|i| Some((i.u()?, i.u()?)))?;
    let in_use = i.vec(|i| {
        let id = i.u32().filter(|&t| (t as usize) < tunnels)?;
        Some(InUse {
            id,
            first: i.u()?,
            last: i.u()?,
        })
    })?;
    let in_use_dropped = i.u()?;
    let connected = i.vec(|i| {
        let id = i.u32().filter(|&t| (t as usize) < tunnels)?;
        Some((id, Arc::<str>::from(i.string()?)))
    })?;
    Some(GatewayTrack {
        id: gid,
        first_heard,
        last_heard,
        events,
        reports,
        last_report,
        open,
        closed,
        closed_dropped,
        series,
        silences,
        in_use,
        in_use_dropped,
        connected,
        period,
        thresholds,
    })
}

fn put_tracker(o: &mut Out, t: &Tracker) {
    // The config's (in the fingerprint), and a lookup filled again as needed.
    let Tracker {
        staleness: _,
        gateways,
        messages,
        messages_total,
        judging,
        maintenance,
    } = t;
    let Judging {
        entries: _,
        inventory,
        timeline,
        named: _,
        judged_seq,
    } = judging;
    o.u(gateways.len() as u64);
    for g in gateways {
        o.flag(g.is_some());
        if let Some(g) = g {
            put_gateway(o, g);
        }
    }
    o.u(messages.len() as u64);
    for m in messages {
        let Message {
            received,
            gateway,
            kind,
            text,
        } = m;
        o.u(*received);
        o.u(u64::from(*gateway));
        o.0.push(kind_byte(*kind));
        o.str(text);
    }
    o.u(*messages_total);
    o.flag(inventory.is_some());
    if let Some(inv) = inventory {
        o.u(inv.entries().len() as u64);
        for (_, judged) in inv.iter() {
            let Judged {
                state,
                since,
                tunnel,
                last_known,
            } = judged;
            o.0.push(state_byte(*state));
            o.u(*since);
            o.flag(tunnel.is_some());
            if let Some(tunnel) = tunnel {
                put_tunnel(o, tunnel);
            }
            o.flag(last_known.is_some());
            if let Some(s) = last_known {
                o.0.push(state_byte(*s));
            }
        }
    }
    o.u(timeline.len() as u64);
    for states in timeline {
        o.u(states.len() as u64);
        for &(at, s) in states {
            o.u(at);
            o.0.push(state_byte(s));
        }
    }
    o.u(judged_seq.len() as u64);
    for &s in judged_seq {
        o.opt_u(s);
    }
    put_maintenance(o, maintenance);
}

/// Each gateway's maintenance silence, read back through
/// [`Maintenance::request`] (a request of the same length, sent at 0,
/// received when the silence began, makes the same silence).
fn put_maintenance(o: &mut Out, m: &Maintenance) {
    let silences: Vec<&Silence> = m.silences().collect();
    o.u(silences.len() as u64);
    for s in silences {
        let Silence {
            gateway,
            roc: _,
            from,
            until,
            reason,
            from_gateway: _,
        } = s;
        o.str(gateway.as_deref().unwrap_or(""));
        o.u(*from);
        o.u(*until);
        o.str(reason);
    }
}

fn get_maintenance(i: &mut In) -> Option<Maintenance> {
    let mut m = Maintenance::default();
    let n = i.count()?;
    for _ in 0..n {
        let gateway = i.string()?;
        let from = i.u()?;
        let until = i.u()?.checked_sub(from).filter(|&l| l > 0)?;
        let reason = i.string()?;
        m.request(&gateway, from, 0, until, &reason);
    }
    Some(m)
}

/// The tracker of a catalog of `gateways` and `tunnels` (checked against
/// the catalog read beside it).
fn get_tracker(i: &mut In, cfg: &Config, gateways: usize, tunnels: usize) -> Option<Tracker> {
    let mut t = Tracker::new(cfg.staleness.clone(), cfg.inventory.clone());
    let n = i.count().filter(|&n| n <= gateways)?;
    for id in 0..n {
        let g = i.opt(|i| get_gateway(i, id, tunnels))?;
        t.gateways.push(g);
    }
    let messages = i.vec(|i| {
        Some(Message {
            received: i.u()?,
            gateway: i.u32().filter(|&g| (g as usize) < gateways)?,
            kind: get_kind(i)?,
            text: i.string()?,
        })
    })?;
    t.messages = VecDeque::from(messages);
    t.messages_total = i.u()?;
    let judged = i.opt(|i| {
        i.vec(|i| {
            Some(Judged {
                state: get_state(i)?,
                since: i.u()?,
                tunnel: i.opt(get_tunnel)?,
                last_known: i.opt(get_state)?,
            })
        })
    })?;
    let timeline = i.vec(|i| i.vec(|i| Some((i.u()?, get_state(i)?))))?;
    // What judging counts on: one timeline per entry once it has started.
    let entries = cfg.inventory.len();
    if judged.is_some() != (timeline.len() == entries && entries > 0) {
        return None;
    }
    t.judging.inventory = match judged {
        Some(j) => Some(Inventory::restore(cfg.inventory.clone(), j)?),
        None => None,
    };
    t.judging.timeline = timeline;
    t.judging.judged_seq = i.vec(|i| i.opt(In::u))?;
    t.maintenance = get_maintenance(i)?;
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_damage_is_none() {
        let mut o = Out(Vec::new());
        let nums = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        for &n in &nums {
            o.u(n);
        }
        for n in [0, -1, 1, i64::MIN, i64::MAX] {
            o.i(n);
        }
        o.str("héllo");
        let mut i = In { b: &o.0, pos: 0 };
        for &n in &nums {
            assert_eq!(i.u(), Some(n));
        }
        for n in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(i.i(), Some(n));
        }
        assert_eq!(i.string().as_deref(), Some("héllo"));
        assert_eq!(i.u(), None);
        // Eleven continuation bytes, a length past the end: None, no panic.
        let mut i = In {
            b: &[0xff; 11],
            pos: 0,
        };
        assert_eq!(i.u(), None);
        let mut i = In {
            b: &[5, b'a'],
            pos: 0,
        };
        assert_eq!(i.bytes(), None);
    }

    #[test]
    fn a_tunnel_round_trips() {
        let t = Tunnel {
            pid: 4242,
            user: "novacr01".into(),
            kind: Kind::Remote,
            bind: "::1".into(),
            listen_port: 5901,
            target_host: "novadaq-far-master-01".into(),
            target_port: 5951,
            dest: "gw".into(),
            started: Some(1_796_000_000),
            start: "21:06".into(),
            cpu_time: "0:03".into(),
            listening: Health::No,
            vnc: Health::Yes,
            connections: Some(2),
            connected: vec!["alice".into(), "10.0.0.9".into()],
        };
        let mut o = Out(Vec::new());
        put_tunnel(&mut o, &t);
        let mut i = In { b: &o.0, pos: 0 };
        assert_eq!(get_tunnel(&mut i), Some(t));
        assert_eq!(i.pos, o.0.len());
    }
}
