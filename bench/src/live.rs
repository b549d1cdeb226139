//! A real collector process on loopback, and the two benchmarks that talk
//! to it over UDP with `gateway_client::wire`: the report-to-ack round trip
//! (one sender, one report at a time) and ingest under load (many senders,
//! each its own socket and gateway name, each waiting for its acks).
//!
//! The senders sign and verify with the collector's own [`FastKey`] (the
//! CPU's SHA instructions), not the client's portable HMAC: they stand in
//! for many gateways but share the two cores with the collector under test,
//! and what is measured is the collector.
//!
//! Afterwards the collector is stopped with a signed shutdown and its logs
//! are read back with `logs::schema`, to check that every acked part is
//! there and count the rows.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::logs::schema::{EventRow, LogKind, TunnelRow, parse_file_name};
use collector::FastKey;
use gateway_client::key::Key;
use gateway_client::tunnel::{Health, Kind, Tunnel};
use gateway_client::wire::{self, Body, MsgKind};

use crate::error::Error;

/// The key the benchmarks share with the collector they start.
pub const KEY_TEXT: &str = "bench-key-0123456789abcdef";

/// A running collector with its own data directory.
pub struct Collector {
    child: Option<Child>,
    pub udp: SocketAddr,
    pub http: SocketAddr,
    pub data: PathBuf,
    key: FastKey,
}

/// A UDP port that was free a moment ago (bind port 0, note it, let it go).
fn free_udp_port() -> Result<u16, Error> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::case("free port", e.to_string()))?;
    Ok(s.local_addr()
        .map_err(|e| Error::case("free port", e.to_string()))?
        .port())
}

/// A TCP port that was free a moment ago.
fn free_tcp_port() -> Result<u16, Error> {
    let t = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::case("free port", e.to_string()))?;
    Ok(t.local_addr()
        .map_err(|e| Error::case("free port", e.to_string()))?
        .port())
}

/// A process's CPU time (user + system) from `/proc/PID/stat`, or `None`
/// when it cannot be read.
pub fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tick = u64::try_from(tick).ok().filter(|t| *t > 0)?;
    Some(Duration::from_micros((utime + stime) * 1_000_000 / tick))
}

pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Collector {
    /// Starts `bin` on a fresh `data` directory (emptied first) and waits
    /// (at most 10 s) until its HTTP port answers, which it opens after UDP.
    pub fn start(bin: &Path, data: &Path) -> Result<Collector, Error> {
        Collector::start_with(bin, data, &[])
    }

    /// [`Collector::start`] with more options (`--site`, `--notify`, ...).
    pub fn start_with(bin: &Path, data: &Path, extra: &[String]) -> Result<Collector, Error> {
        let _ = std::fs::remove_dir_all(data);
        std::fs::create_dir_all(data).map_err(|e| Error::io("cannot create", data, e))?;
        let key_file = data.with_extension("key");
        std::fs::write(&key_file, KEY_TEXT).map_err(|e| Error::io("cannot write", &key_file, e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("cannot chmod", &key_file, e))?;
        }
        let udp_port = free_udp_port()?;
        let http_port = free_tcp_port()?;
        let udp: SocketAddr = ([127, 0, 0, 1], udp_port).into();
        let http: SocketAddr = ([127, 0, 0, 1], http_port).into();
        let child = Command::new(bin)
            .arg("--data")
            .arg(data)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--udp")
            .arg(udp.to_string())
            .arg("--http")
            .arg(http.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::command(&bin.display().to_string(), e.to_string()))?;
        let mut c = Collector {
            child: Some(child),
            udp,
            http,
            data: data.to_path_buf(),
            key: FastKey::new(&Key::from_text(KEY_TEXT)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&http, Duration::from_millis(100)).is_ok() {
                return Ok(c);
            }
            if let Some(ch) = c.child.as_mut()
                && let Ok(Some(status)) = ch.try_wait()
            {
                c.child = None;
                return Err(Error::case(
                    "collector",
                    format!("exited at start: {status}"),
                ));
            }
            if Instant::now() > deadline {
                return Err(Error::case("collector", "HTTP port not open after 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signed shutdown and waits (at most 10 s) for the exit; kills
    /// it when it does not go.
    pub fn stop(mut self) -> Result<(), Error> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let sock =
            UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::case("stop", e.to_string()))?;
        let body = Body {
            gateway: "bench-stop".to_string(),
            kind: MsgKind::Shutdown,
            seq: unix_micros(),
            sent: unix_micros() / 1_000_000,
            part: 1,
            parts: 1,
            text: String::new(),
            tunnels: Vec::new(),
            period: None,
            until: None,
        };
        let dgram = wire::encode(&self.key, &body);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let _ = sock.send_to(&dgram, self.udp);
            std::thread::sleep(Duration::from_millis(100));
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(());
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(Error::case(
            "collector",
            "did not stop on a signed shutdown; killed",
        ))
    }

    pub fn key(&self) -> &FastKey {
        &self.key
    }

    /// The collector's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The voluntary context switches of all the collector's threads so
    /// far (each a wakeup from a wait), from `/proc/PID/task/*/status`.
    pub fn wakeups(&self) -> Option<(u64, usize)> {
        let pid = self.child.as_ref()?.id();
        let mut total = 0;
        let mut threads = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            threads += 1;
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())?;
        }
        Some((total, threads))
    }

    /// The collector's CPU time so far (user + system, from
    /// `/proc/PID/stat`), or `None` when it cannot be read.
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_of(self.child.as_ref()?.id())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` realistic tunnels for gateway `gw`.
pub fn tunnels(n: usize, gw: &str) -> Vec<Tunnel> {
    (0..n)
        .map(|i| Tunnel {
            pid: 20_000 + i as u32,
            user: format!("novacr{:02}", i % 8),
            kind: Kind::Local,
            bind: String::new(),
            listen_port: 5900 + i as u16,
            target_host: "novadaq-far-master-01".to_string(),
            target_port: 5900 + i as u16,
            dest: gw.to_string(),
            started: Some(1_796_000_000),
            start: "Nov29".to_string(),
            cpu_time: "3:10".to_string(),
            listening: Health::Yes,
            vnc: Health::Unknown,
            connections: None,
            connected: Vec::new(),
        })
        .collect()
}

/// One sender: sends a report (all its parts) and waits for every ack,
/// resending what is not acked after `retry`, `tries` times at most.
struct Sender {
    sock: UdpSocket,
    to: SocketAddr,
    key: FastKey,
    buf: Vec<u8>,
}

/// How one report went.
enum Sent {
    Acked { resends: u32 },
    Lost,
}

impl Sender {
    fn new(to: SocketAddr, key: FastKey, retry: Duration) -> Result<Sender, Error> {
        let sock =
            UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::case("sender", e.to_string()))?;
        sock.set_read_timeout(Some(retry))
            .map_err(|e| Error::case("sender", e.to_string()))?;
        Ok(Sender {
            sock,
            to,
            key,
            buf: vec![0; 2048],
        })
    }

    fn send(&mut self, parts: &[(Body, Vec<u8>)], tries: u32) -> Sent {
        let mut acked = vec![false; parts.len()];
        for attempt in 0..tries {
            for (i, (_, bytes)) in parts.iter().enumerate() {
                if !acked[i] {
                    let _ = self.sock.send_to(bytes, self.to);
                }
            }
            while acked.iter().any(|a| !a) {
                let Ok((n, _)) = self.sock.recv_from(&mut self.buf) else {
                    break; // timeout: resend
                };
                let Ok(ack) = wire::decode(&self.key, &self.buf[..n]) else {
                    continue;
                };
                if ack.kind != MsgKind::Ack {
                    continue;
                }
                for (i, (b, _)) in parts.iter().enumerate() {
                    if b.seq == ack.seq && b.part == ack.part && b.gateway == ack.gateway {
                        acked[i] = true;
                    }
                }
            }
            if acked.iter().all(|a| *a) {
                return Sent::Acked { resends: attempt };
            }
        }
        Sent::Lost
    }
}

/// Numbers `report` as a gateway numbers its reports: `seq` the time of
/// sending in microseconds (past the one before), `sent` that time in
/// seconds. (A send time that stays put makes the collector's replay
/// guard, past its cap, refuse every later part as a replay.)
pub(crate) fn stamp(report: &mut Body) {
    report.seq = report.seq.max(unix_micros()) + 1;
    report.sent = report.seq / 1_000_000;
}

/// A report of `tunnels` from `gateway`, in one part until encoded.
pub(crate) fn report(gateway: &str, seq: u64, tunnels: &[Tunnel]) -> Body {
    Body {
        gateway: gateway.to_string(),
        kind: MsgKind::Report,
        seq,
        sent: seq / 1_000_000,
        part: 1,
        parts: 1,
        text: String::new(),
        tunnels: tunnels.to_vec(),
        period: None,
        until: None,
    }
}

/// Round trip results.
pub struct RoundTrip {
    pub latencies: Vec<Duration>,
    pub resends: u32,
    pub lost: u32,
}

/// `count` reports of `n_tunnels` tunnels (one datagram each when they fit),
/// one at a time; the time from the first send to the last ack, per report.
pub fn round_trip(c: &Collector, count: usize, n_tunnels: usize) -> Result<RoundTrip, Error> {
    let gw = "bench-rtt";
    let tun = tunnels(n_tunnels, gw);
    let mut s = Sender::new(c.udp, c.key().clone(), Duration::from_millis(500))?;
    let mut out = RoundTrip {
        latencies: Vec::with_capacity(count),
        resends: 0,
        lost: 0,
    };
    let mut seq = unix_micros();
    for _ in 0..count {
        seq = seq.max(unix_micros()) + 1;
        let parts = wire::encode_all(c.key(), &report(gw, seq, &tun))
            .map_err(|e| Error::case("round trip", e))?;
        let t = Instant::now();
        match s.send(&parts, 5) {
            Sent::Acked { resends } => {
                out.resends += resends;
                if resends == 0 {
                    out.latencies.push(t.elapsed());
                }
            }
            Sent::Lost => out.lost += 1,
        }
    }
    Ok(out)
}

/// Ingest results.
pub struct Ingest {
    pub elapsed: Duration,
    pub reports_acked: u64,
    pub parts_acked: u64,
    pub lost: u64,
    pub resends: u64,
    /// (gateway, seq, part) of every acked part.
    pub acked: Vec<(String, u64, u32)>,
    pub tunnels_per_report: usize,
}

/// Threads that drive the ingest senders (each thread polls its share).
pub const SENDER_THREADS: usize = 2;

/// One ingest sender: its own socket and gateway name, one report in
/// flight at a time (all its parts), resent after a second, given up after
/// five tries, as [`Sender::send`] does, but driven by a thread that polls
/// many senders' sockets at once, so that 64 senders do not cost 64 threads
/// woken for every ack on a two-core machine.
struct Flow {
    sock: UdpSocket,
    gw: String,
    /// The report it sends, again and again with a new `seq`.
    report: Body,
    parts: Vec<(Body, Vec<u8>)>,
    acked: Vec<bool>,
    tries: u32,
    sent_at: Instant,
    done: FlowTally,
}

#[derive(Default)]
struct FlowTally {
    acked: Vec<(String, u64, u32)>,
    reports: u64,
    lost: u64,
    resends: u64,
}

impl Flow {
    /// Signs the next report and sends all its parts.
    fn start_report(&mut self, key: &FastKey, to: SocketAddr) -> Result<(), Error> {
        stamp(&mut self.report);
        self.parts = wire::encode_all(key, &self.report).map_err(|e| Error::case("ingest", e))?;
        self.acked = vec![false; self.parts.len()];
        self.tries = 1;
        self.send_missing(to);
        Ok(())
    }

    fn send_missing(&mut self, to: SocketAddr) {
        for (i, (_, bytes)) in self.parts.iter().enumerate() {
            if !self.acked[i] {
                let _ = self.sock.send_to(bytes, to);
            }
        }
        self.sent_at = Instant::now();
    }

    /// Takes the acks queued on the socket; true when the report is done.
    fn take_acks(&mut self, key: &FastKey, buf: &mut [u8]) -> bool {
        while let Ok((n, _)) = self.sock.recv_from(buf) {
            let Ok(ack) = wire::decode(key, &buf[..n]) else {
                continue;
            };
            if ack.kind != MsgKind::Ack || ack.gateway != self.gw || ack.seq != self.report.seq {
                continue;
            }
            if let Some(i) = self.parts.iter().position(|(b, _)| b.part == ack.part) {
                self.acked[i] = true;
            }
        }
        if !self.acked.iter().all(|a| *a) {
            return false;
        }
        self.done.reports += 1;
        self.done.resends += u64::from(self.tries - 1);
        let gw = &self.gw;
        self.done
            .acked
            .extend(self.parts.iter().map(|(b, _)| (gw.clone(), b.seq, b.part)));
        true
    }
}

/// Runs `flows` until `stop`: polls their sockets, takes acks, starts the
/// next report of each flow whose report is acked, resends or gives up
/// after [`Flow`]'s limits. A report in flight at the stop is left unfinished
/// (not counted as acked).
fn drive(
    mut flows: Vec<Flow>,
    key: &FastKey,
    to: SocketAddr,
    stop: &AtomicBool,
) -> Result<Vec<FlowTally>, Error> {
    const RETRY: Duration = Duration::from_secs(1);
    const TRIES: u32 = 5;
    let mut buf = vec![0u8; 2048];
    for f in &mut flows {
        f.start_report(key, to)?;
    }
    let mut fds: Vec<libc::pollfd> = flows
        .iter()
        .map(|f| libc::pollfd {
            fd: f.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd of
        // the length given, for the duration of the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::case("ingest", format!("poll: {e}")));
        }
        let now = Instant::now();
        for (f, pfd) in flows.iter_mut().zip(&mut fds) {
            let readable = pfd.revents & libc::POLLIN != 0;
            pfd.revents = 0;
            if readable && f.take_acks(key, &mut buf) {
                f.start_report(key, to)?;
            } else if now.duration_since(f.sent_at) >= RETRY {
                if f.tries >= TRIES {
                    f.done.lost += 1;
                    f.start_report(key, to)?;
                } else {
                    f.tries += 1;
                    f.send_missing(to);
                }
            }
        }
    }
    Ok(flows.into_iter().map(|f| f.done).collect())
}

/// `senders` senders, each its own socket and gateway name, sending reports
/// of `n_tunnels` tunnels back to back for `duration`, each waiting for the
/// acks of all its parts before the next; [`SENDER_THREADS`] threads poll
/// them.
pub fn ingest(
    c: &Collector,
    senders: usize,
    n_tunnels: usize,
    duration: Duration,
) -> Result<Ingest, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut shares: Vec<Vec<Flow>> = (0..SENDER_THREADS).map(|_| Vec::new()).collect();
    for i in 0..senders {
        let gw = format!("bench-gw-{i:02}");
        let sock =
            UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::case("sender", e.to_string()))?;
        sock.set_nonblocking(true)
            .map_err(|e| Error::case("sender", e.to_string()))?;
        shares[i % SENDER_THREADS].push(Flow {
            sock,
            report: report(&gw, 0, &tunnels(n_tunnels, &gw)),
            gw,
            parts: Vec::new(),
            acked: Vec::new(),
            tries: 0,
            sent_at: Instant::now(),
            done: FlowTally::default(),
        });
    }
    let start = Instant::now();
    let handles: Vec<_> = shares
        .into_iter()
        .map(|flows| {
            let key = c.key().clone();
            let stop = stop.clone();
            let to = c.udp;
            std::thread::spawn(move || drive(flows, &key, to, &stop))
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut out = Ingest {
        elapsed: Duration::ZERO,
        reports_acked: 0,
        parts_acked: 0,
        lost: 0,
        resends: 0,
        acked: Vec::new(),
        tunnels_per_report: n_tunnels,
    };
    for h in handles {
        let tallies = h
            .join()
            .map_err(|_| Error::case("ingest", "a sender thread panicked"))??;
        for t in tallies {
            out.parts_acked += t.acked.len() as u64;
            out.acked.extend(t.acked);
            out.reports_acked += t.reports;
            out.lost += t.lost;
            out.resends += t.resends;
        }
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

/// What the logs hold after a run.
#[derive(Debug, Default)]
pub struct Counted {
    /// Report event rows (parts).
    pub report_parts: u64,
    pub tunnel_rows: u64,
    /// Acked parts with no event row.
    pub missing: u64,
    /// Event rows written more than once for one part.
    pub doubled: u64,
    pub bad_rows: u64,
}

/// Reads every log file in `data` and checks the acked parts against it.
pub fn count_logs(data: &Path, acked: &[(String, u64, u32)]) -> Result<Counted, Error> {
    let mut out = Counted::default();
    let mut seen: HashSet<(String, u64, u32)> = HashSet::new();
    let entries = std::fs::read_dir(data).map_err(|e| Error::io("cannot list", data, e))?;
    let mut files: Vec<(LogKind, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((kind, _)) = parse_file_name(&name) {
            files.push((kind, e.path()));
        }
    }
    for (kind, path) in files {
        let mut r = csv::Reader::from_path(&path).map_err(|e| Error::csv(&path, e))?;
        for rec in r.records() {
            let Ok(rec) = rec else {
                out.bad_rows += 1;
                continue;
            };
            match kind {
                LogKind::Events => match EventRow::from_record(&rec) {
                    Ok(e) if e.kind == ::logs::EventKind::Report => {
                        out.report_parts += 1;
                        if !seen.insert((e.gateway, e.seq, e.part)) {
                            out.doubled += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => out.bad_rows += 1,
                },
                LogKind::Tunnels => match TunnelRow::from_record(&rec) {
                    Ok(_) => out.tunnel_rows += 1,
                    Err(_) => out.bad_rows += 1,
                },
            }
        }
    }
    out.missing = acked.iter().filter(|a| !seen.contains(*a)).count() as u64;
    Ok(out)
}
