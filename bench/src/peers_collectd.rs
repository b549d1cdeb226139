//! The collector side by side with collectd (`scripts/bench --peers`, case
//! `peers-collectd`): the same offered loads, one after the other in one run.
//!
//! collectd 5 receives with its network plugin under `SecurityLevel Sign`
//! (every packet HMAC-SHA-256 signed, as our datagrams are) and writes with
//! its csv plugin (one line per value, into a file per value and day), the
//! nearest thing it has to our signed reports and CSV logs. It runs with
//! this module's configuration and nothing else loaded, in the foreground,
//! on a fresh directory.
//!
//! A *report* is what one gateway sends once: for the collector, a report
//! of 10 tunnels (two datagrams, acked; [`crate::live::tunnels`]); for
//! collectd, one signed packet of 10 values (one gauge per tunnel, named
//! by its port), which holds less than our report. Each load is offered
//! open-loop at a fixed rate from 16 gateway names, by one thread that
//! sends what is due every millisecond, for a fixed time; then a short
//! grace for what is queued. Achieved: reports acked (ours) or written to
//! the csv files (collectd's, counted in the files) by the end of the
//! grace, per second of offering. CPU: the daemon's user + system time over
//! the same window (`/proc/PID/stat`), per report achieved. RSS: the peak
//! (`VmHWM`) of the whole run of that daemon.
//!
//! The two daemons alternate (which goes first alternates too), each load
//! `rounds` times; the figures are the medians of the rounds.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use collector::FastKey;
use gateway_client::key::Key;
use gateway_client::wire::{self, Mac, MsgKind};

use crate::cases::{Row, Setup};
use crate::error::Error;
use crate::live::{self, Collector};

const CASE: &str = "peers-collectd";
/// Where Debian's collectd-core puts the daemon, its plugins and types.
const COLLECTD: &str = "/usr/sbin/collectd";
const PLUGIN_DIR: &str = "/usr/lib/collectd";
const TYPES_DB: &str = "/usr/share/collectd/types.db";
const USER: &str = "bench";
const PASSWORD: &str = "bench-collectd-secret";
/// Gateway names (collectd: host names) the load is spread over.
const GATEWAYS: usize = 16;
const TUNNELS: usize = 10;
/// After the offering, for what is queued.
const GRACE: Duration = Duration::from_millis(500);

/// One daemon at one load.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    /// Reports done per second of offering.
    rate: f64,
    /// CPU time per report done.
    cpu_per_report: Duration,
    /// Peak resident memory, bytes.
    peak_rss: u64,
}

/// The loads offered (reports a second) and for how long.
fn loads(quick: bool) -> Vec<(u32, Duration)> {
    let secs = |full: u64, q: u64| Duration::from_secs(if quick { q } else { full });
    vec![
        (100, secs(10, 3)),
        (1_000, secs(5, 2)),
        (10_000, secs(5, 2)),
    ]
}

/// Runs the case: for each load, the collector and collectd in turn,
/// `rounds` times, and one row per load with both and their ratios.
pub fn peers_collectd(setup: &Setup) -> Result<Vec<Row>, Error> {
    if !Path::new(COLLECTD).exists() {
        return Err(Error::case(
            CASE,
            format!(
                "{COLLECTD} is missing: install Debian's collectd-core (scripts/bench --peers does)"
            ),
        ));
    }
    let bin = setup.bin.join("collector");
    let rounds = if setup.scale.quick { 1 } else { 2 };
    let mut rows = Vec::new();
    for (i, (rate, secs)) in loads(setup.scale.quick).into_iter().enumerate() {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for round in 0..rounds {
            let collector_first = (i + round) % 2 == 0;
            for first in [true, false] {
                if first == collector_first {
                    let dir = setup.scratch.join("peers-collector");
                    ours.push(run_collector(&bin, &dir, rate, secs)?);
                } else {
                    let dir = setup.scratch.join("peers-collectd");
                    theirs.push(run_collectd(&dir, rate, secs)?);
                }
            }
        }
        rows.push(row(rate, &median(&mut ours), &median(&mut theirs)));
    }
    Ok(rows)
}

fn median(runs: &mut [Run]) -> Run {
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let rate = mid(runs.iter().map(|r| r.rate).collect());
    let cpu = mid(runs
        .iter()
        .map(|r| r.cpu_per_report.as_secs_f64())
        .collect());
    let rss = mid(runs.iter().map(|r| r.peak_rss as f64).collect());
    Run {
        rate,
        cpu_per_report: Duration::from_secs_f64(cpu),
        peak_rss: rss as u64,
    }
}

fn row(offered: u32, ours: &Run, theirs: &Run) -> Row {
    let us = |r: &Run| r.cpu_per_report.as_secs_f64() * 1e6;
    let mb = |r: &Run| r.peak_rss as f64 / 1e6;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let figure = format!(
        "collector {:.0} reports/s, {:.1} µs CPU a report, peak RSS {:.1} MB; collectd {:.0} reports/s, {:.1} µs CPU a report, peak RSS {:.1} MB; collector/collectd: rate {:.2}×, CPU a report {:.2}×, RSS {:.2}×",
        ours.rate,
        us(ours),
        mb(ours),
        theirs.rate,
        us(theirs),
        mb(theirs),
        ratio(ours.rate, theirs.rate),
        ratio(us(ours), us(theirs)),
        ratio(mb(ours), mb(theirs)),
    );
    let (target, met) = if offered <= 100 {
        (
            "CPU a report ≤ collectd's",
            Some(ours.cpu_per_report <= theirs.cpu_per_report),
        )
    } else {
        ("—", None)
    };
    Row {
        case: format!(
            "peers: collector vs collectd (network Sign + csv), {offered} reports/s offered"
        ),
        figure,
        target: target.to_string(),
        met,
    }
}

/// A process's peak resident memory (`VmHWM`) in bytes.
fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Calls `send(i)` for report `i` = 0, 1, ... at `rate` a second for
/// `secs`, sending what is due every millisecond. Returns how many.
fn offer(rate: u32, secs: Duration, mut send: impl FnMut(u64)) -> u64 {
    let total = (f64::from(rate) * secs.as_secs_f64()) as u64;
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        let due = ((start.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1).min(total);
        while done < due {
            send(done);
            done += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    done
}

/// The collector at one load: reports of 10 tunnels, acks counted.
fn run_collector(bin: &Path, dir: &Path, rate: u32, secs: Duration) -> Result<Run, Error> {
    let c = Collector::start(bin, dir)?;
    let pid = c
        .pid()
        .ok_or_else(|| Error::case(CASE, "the collector has no process"))?;
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::case(CASE, e.to_string()))?;
    let acks = sock
        .try_clone()
        .map_err(|e| Error::case(CASE, e.to_string()))?;
    acks.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| Error::case(CASE, e.to_string()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let key = c.key().clone();
        let stop = stop.clone();
        std::thread::spawn(move || count_acks(&acks, &key, &stop))
    };
    let names: Vec<String> = (0..GATEWAYS).map(|g| format!("peer-gw-{g:02}")).collect();
    let mut bodies: Vec<_> = names
        .iter()
        .map(|gw| live::report(gw, 0, &live::tunnels(TUNNELS, gw)))
        .collect();
    let cpu_before = live::cpu_of(pid);
    let start = Instant::now();
    let mut parts_sent = 0u64;
    let mut failed = None;
    offer(rate, secs, |i| {
        let body = &mut bodies[i as usize % GATEWAYS];
        live::stamp(body);
        match wire::encode_all(c.key(), body) {
            Ok(parts) => {
                for (_, bytes) in parts {
                    let _ = sock.send_to(&bytes, c.udp);
                    parts_sent += 1;
                }
            }
            Err(e) => failed = Some(e),
        }
    });
    std::thread::sleep(GRACE);
    let elapsed = start.elapsed() - GRACE;
    let cpu = live::cpu_of(pid)
        .zip(cpu_before)
        .map(|(a, b)| a.saturating_sub(b));
    let peak = peak_rss_of(pid);
    stop.store(true, Ordering::Relaxed);
    let acked_parts = counter
        .join()
        .map_err(|_| Error::case(CASE, "the ack counter panicked"))?;
    c.stop()?;
    let _ = std::fs::remove_dir_all(dir);
    if let Some(e) = failed {
        return Err(Error::case(CASE, e));
    }
    let (Some(cpu), Some(peak)) = (cpu, peak) else {
        return Err(Error::case(CASE, "cannot read the collector's /proc/PID"));
    };
    // Parts per report, as sent: every acked part counts its share.
    let reports_sent = (f64::from(rate) * secs.as_secs_f64()).max(1.0);
    let reports = acked_parts as f64 * reports_sent / parts_sent.max(1) as f64;
    Ok(done(reports, elapsed, cpu, peak))
}

fn done(reports: f64, elapsed: Duration, cpu: Duration, peak_rss: u64) -> Run {
    Run {
        rate: reports / elapsed.as_secs_f64().max(1e-9),
        cpu_per_report: if reports > 0.0 {
            cpu.div_f64(reports)
        } else {
            Duration::ZERO
        },
        peak_rss,
    }
}

/// Counts the `ok` acks coming back on `sock` until `stop`.
fn count_acks(sock: &UdpSocket, key: &FastKey, stop: &AtomicBool) -> u64 {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if let Ok(ack) = wire::decode(key, &buf[..len])
            && ack.kind == MsgKind::Ack
            && ack.text == "ok"
        {
            n += 1;
        }
    }
    n
}

/// A collectd started on `dir` with this module's configuration.
struct Collectd {
    child: Child,
    dir: PathBuf,
}

impl Collectd {
    fn start(dir: &Path, port: u16) -> Result<Collectd, Error> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("csv")).map_err(|e| Error::io("cannot create", dir, e))?;
        let auth = dir.join("passwd");
        std::fs::write(&auth, format!("{USER}: {PASSWORD}\n"))
            .map_err(|e| Error::io("cannot write", &auth, e))?;
        let conf = dir.join("collectd.conf");
        // collectd moves into BaseDir: every path it is given must be
        // absolute, or its csv files land below BaseDir a second time.
        let absolute = std::path::absolute(dir).map_err(|e| Error::io("cannot resolve", dir, e))?;
        std::fs::write(&conf, config(&absolute, port))
            .map_err(|e| Error::io("cannot write", &conf, e))?;
        let log = dir.join("collectd.log");
        let stderr =
            std::fs::File::create(&log).map_err(|e| Error::io("cannot create", &log, e))?;
        let child = Command::new(COLLECTD)
            .arg("-f")
            .arg("-C")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| Error::command(COLLECTD, e.to_string()))?;
        let mut d = Collectd {
            child,
            dir: dir.to_path_buf(),
        };
        d.wait_listening(port)?;
        Ok(d)
    }

    /// Waits (at most 10 s) until the UDP port is bound (`/proc/net/udp`).
    fn wait_listening(&mut self, port: u16) -> Result<(), Error> {
        let needle = format!(":{port:04X} ");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::case(
                    CASE,
                    format!("collectd exited at start ({status}): {}", self.log_tail()),
                ));
            }
            let udp = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
            if udp.lines().any(|l| l.contains(&needle)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Error::case(
            CASE,
            format!("collectd not listening after 10 s: {}", self.log_tail()),
        ))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("collectd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// SIGTERM, and at most 10 s for the exit; then SIGKILL.
    fn stop(mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // child's, not yet waited for.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collectd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// collectd's configuration: the network plugin listening on 127.0.0.1
/// with `SecurityLevel Sign`, the csv plugin writing under `dir/csv`, the
/// daemon's defaults otherwise.
fn config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        r#"Hostname "bench-collectd"
FQDNLookup false
BaseDir "{d}"
PIDFile "{d}/collectd.pid"
PluginDir "{PLUGIN_DIR}"
TypesDB "{TYPES_DB}"
Interval 10
LoadPlugin network
LoadPlugin csv
<Plugin network>
  <Listen "127.0.0.1" "{port}">
    SecurityLevel Sign
    AuthFile "{d}/passwd"
  </Listen>
</Plugin>
<Plugin csv>
  DataDir "{d}/csv"
  StoreRates false
</Plugin>
"#
    )
}

/// collectd's network protocol, as much as one signed packet of gauges
/// needs (collectd's `network.c`): parts of type, length (both 16-bit big
/// endian) and content; strings end in NUL; times in 2^-30 s.
mod proto {
    pub const HOST: u16 = 0x0000;
    pub const PLUGIN: u16 = 0x0002;
    pub const PLUGIN_INSTANCE: u16 = 0x0003;
    pub const TYPE: u16 = 0x0004;
    pub const TYPE_INSTANCE: u16 = 0x0005;
    pub const VALUES: u16 = 0x0006;
    pub const TIME_HR: u16 = 0x0008;
    pub const INTERVAL_HR: u16 = 0x0009;
    pub const SIGN_SHA256: u16 = 0x0200;
    const GAUGE: u8 = 1;

    fn head(out: &mut Vec<u8>, kind: u16, len: usize) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }

    pub fn string(out: &mut Vec<u8>, kind: u16, s: &str) {
        head(out, kind, 4 + s.len() + 1);
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    pub fn number(out: &mut Vec<u8>, kind: u16, n: u64) {
        head(out, kind, 12);
        out.extend_from_slice(&n.to_be_bytes());
    }

    /// One gauge value (gauges are little endian, unlike everything else).
    pub fn gauge(out: &mut Vec<u8>, v: f64) {
        head(out, VALUES, 4 + 2 + 1 + 8);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.push(GAUGE);
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// `parts` signed: the signature part (HMAC-SHA-256 over the user name
    /// and the parts after it), then the parts.
    pub fn signed(mac: &impl super::Mac, user: &str, parts: &[u8]) -> Vec<u8> {
        let mut signed_data = Vec::with_capacity(user.len() + parts.len());
        signed_data.extend_from_slice(user.as_bytes());
        signed_data.extend_from_slice(parts);
        let hmac = mac.mac(&signed_data);
        let mut out = Vec::with_capacity(4 + 32 + signed_data.len());
        head(&mut out, SIGN_SHA256, 4 + 32 + user.len());
        out.extend_from_slice(&hmac);
        out.extend_from_slice(&signed_data);
        out
    }
}

/// One report as collectd gets it: host `gw`, time `time_hr`, one gauge
/// per tunnel (plugin `tunnel`, instance its port, type `gauge`,
/// `listening`), signed.
fn collectd_packet(key: &FastKey, gw: &str, time_hr: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(512);
    proto::string(&mut p, proto::HOST, gw);
    proto::number(&mut p, proto::TIME_HR, time_hr);
    proto::number(&mut p, proto::INTERVAL_HR, 60 << 30);
    proto::string(&mut p, proto::PLUGIN, "tunnel");
    proto::string(&mut p, proto::TYPE, "gauge");
    proto::string(&mut p, proto::TYPE_INSTANCE, "listening");
    for t in 0..TUNNELS {
        proto::string(&mut p, proto::PLUGIN_INSTANCE, &(5900 + t).to_string());
        proto::gauge(&mut p, 1.0);
    }
    proto::signed(key, USER, &p)
}

/// collectd at one load: signed packets of 10 gauges, lines counted in
/// its csv files.
fn run_collectd(dir: &Path, rate: u32, secs: Duration) -> Result<Run, Error> {
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(|e| Error::case(CASE, e.to_string()))?
        .port();
    let d = Collectd::start(dir, port)?;
    let pid = d.child.id();
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::case(CASE, e.to_string()))?;
    let key = FastKey::new(&Key::from_text(PASSWORD));
    let names: Vec<String> = (0..GATEWAYS).map(|g| format!("peer-gw-{g:02}")).collect();
    // Strictly increasing times per host: collectd drops a value not newer
    // than the last of its name.
    // collectd's time: seconds in units of 2^-30 (shifting the micros
    // first would overflow 64 bits).
    let us = live::unix_micros();
    let t0 = ((us / 1_000_000) << 30) + (((us % 1_000_000) << 30) / 1_000_000);
    let cpu_before = live::cpu_of(pid);
    let start = Instant::now();
    offer(rate, secs, |i| {
        let time_hr = t0 + (start.elapsed().as_nanos() as u64) + i;
        let packet = collectd_packet(&key, &names[i as usize % GATEWAYS], time_hr);
        let _ = sock.send_to(&packet, to);
    });
    std::thread::sleep(GRACE);
    let elapsed = start.elapsed() - GRACE;
    let cpu = live::cpu_of(pid)
        .zip(cpu_before)
        .map(|(a, b)| a.saturating_sub(b));
    let peak = peak_rss_of(pid);
    let lines = csv_lines(&dir.join("csv"))?;
    let tail = d.log_tail();
    d.stop();
    let (Some(cpu), Some(peak)) = (cpu, peak) else {
        return Err(Error::case(CASE, "cannot read collectd's /proc/PID"));
    };
    if lines == 0 {
        return Err(Error::case(
            CASE,
            format!("collectd wrote no value (its log: {tail})"),
        ));
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(done(lines as f64 / TUNNELS as f64, elapsed, cpu, peak))
}

/// Value lines in the csv plugin's files under `dir` (each file's header
/// line not counted).
fn csv_lines(dir: &Path) -> Result<u64, Error> {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| Error::io("cannot list", &d, e))? {
            let path = e.map_err(|e| Error::io("cannot list", &d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
                let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
                n += lines.saturating_sub(1);
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet laid out as collectd's network.c reads it: the signature
    /// part first, its length covering the user name, and the HMAC over
    /// the user name and the rest.
    #[test]
    fn a_signed_packet_is_laid_out_as_collectd_reads_it() {
        let key = FastKey::new(&Key::from_text(PASSWORD));
        let p = collectd_packet(&key, "gw", 1 << 30);
        assert_eq!(&p[..2], &[0x02, 0x00]);
        let sign_len = u16::from_be_bytes([p[2], p[3]]) as usize;
        assert_eq!(sign_len, 4 + 32 + USER.len());
        assert_eq!(&p[36..36 + USER.len()], USER.as_bytes());
        assert_eq!(&p[4..36], &key.mac(&p[36..]));
        // Then the parts, each whole: host first.
        let mut at = sign_len;
        let mut kinds = Vec::new();
        while at < p.len() {
            let kind = u16::from_be_bytes([p[at], p[at + 1]]);
            let len = u16::from_be_bytes([p[at + 2], p[at + 3]]) as usize;
            assert!(len >= 4 && at + len <= p.len());
            kinds.push(kind);
            at += len;
        }
        assert_eq!(at, p.len());
        assert_eq!(kinds[0], proto::HOST);
        assert_eq!(
            kinds.iter().filter(|k| **k == proto::VALUES).count(),
            TUNNELS
        );
    }
}
