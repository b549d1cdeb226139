//! The collector of the ROC tunnel monitor: it receives the gateways' signed
//! UDP reports, writes them to CSV logs, and serves status, metrics, the logs
//! and the generated site over HTTP.
//!
//! [`run`] goes from the command line ([`cli`]) to a running collector: it
//! takes the single-instance [`lock`], reads the key, binds the UDP socket,
//! opens the logs ([`csvlog`], whose columns are in [`schema`]), rebuilds
//! what it knew from them, starts the HTTP side ([`http`]) and the command
//! runners ([`notify`], [`on_collect`]), then loops in [`ingest`] until a
//! signed shutdown arrives or something fatal happens.
//!
//! The invariants that the rest is built around:
//!
//! - **Nothing is acked before its rows are written and synced**, so after a
//!   `kill -9` at any moment every acked datagram is in the logs, and the next
//!   start cuts any torn last row off.
//! - **Signatures are checked before anything is parsed** (in
//!   `gateway_client::wire`), and no datagram, however hostile, can panic,
//!   hang or grow memory without bound: every table (replay set, pending
//!   reassembly, gateways, alert queue, log lines) has a cap.
//! - **Ingest never waits on HTTP or on commands**: it publishes a snapshot
//!   and pokes queues; HTTP, `--notify` and `--on-collect` run on their own
//!   threads.
//! - **HTTP serves only names from directory listings**, never a path joined
//!   from a URL.
//!
//! Errors that stop the collector are one [`Error`] with the input it failed
//! on; problems with one datagram are counted ([`metrics`]) and logged.

#![warn(unreachable_pub)]

mod cli;
mod command;
mod csvlog;
mod error;
mod http;
mod ingest;
mod lock;
mod mac;
mod metrics;
mod notify;
mod on_collect;
mod reload;
mod replay;
mod say;
mod silencer;
mod state;
mod udp;

use std::ffi::OsString;
use std::net::UdpSocket;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_client::key::Key;
use signal_hook::consts::{SIGINT, SIGTERM};

pub use csvlog::complete_rows_len;
pub use error::Error;
pub use mac::FastKey;
pub use state::MAX_GATEWAYS;

use crate::cli::{Args, Command};
use crate::http::{HttpServer, Snapshot};
use crate::ingest::{Ingest, Step};
use crate::metrics::Metrics;
use crate::say::say;
use crate::udp::RecvBatch;

/// How a run ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `--help`: print this text.
    Help(&'static str),
    /// `--version`: print this line.
    Version(String),
    /// Another collector holds the lock: exit 0 without a word.
    AlreadyRunning,
    /// A signed shutdown, SIGTERM or SIGINT stopped it; the line says what.
    Shutdown(String),
}

/// The UDP receive buffer asked for. Datagrams wait there while a batch is
/// written and synced; the kernel's default (about 208 KiB, some 150 full
/// datagrams) overflows when many gateways send at once, and every datagram
/// dropped costs its gateway a resend a second later. The kernel grants at
/// most `net.core.rmem_max`; `/metrics` shows what it granted.
pub(crate) const UDP_RECEIVE_BUFFER: usize = 4 << 20;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs the collector with the arguments after the program name.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<Outcome, Error> {
    match cli::parse_args(args)? {
        Command::Help => Ok(Outcome::Help(cli::HELP)),
        Command::Version => Ok(Outcome::Version(format!(
            "collector {}",
            env!("CARGO_PKG_VERSION")
        ))),
        Command::Run(args) => serve(&args),
        Command::Stop(dir) => stop(&dir),
    }
}

/// How long `--stop` waits for the collector to be gone: its clean stop
/// may wait for a `--on-collect` run it owes.
const STOP_WAIT: Duration = Duration::from_secs(90);

/// `--stop`: SIGTERM to the collector holding the lock on `dir`, then wait
/// until the lock is free.
fn stop(dir: &std::path::Path) -> Result<Outcome, Error> {
    let Some(pid) = lock::Lock::holder(dir)? else {
        return Ok(Outcome::Shutdown(format!(
            "no collector runs on {}; nothing to stop",
            dir.display()
        )));
    };
    let signalled = i32::try_from(pid).is_ok_and(|p| {
        // SAFETY: kill(2) with a pid read from the lock file while its
        // holder still held the lock; it has no memory effects.
        unsafe { libc::kill(p, libc::SIGTERM) == 0 }
    });
    if !signalled {
        return Err(Error::io(
            "cannot signal the collector (pid from collector.lock) running on",
            dir,
            std::io::Error::last_os_error(),
        ));
    }
    let start = std::time::Instant::now();
    while start.elapsed() < STOP_WAIT {
        if lock::Lock::holder(dir)?.is_none() {
            return Ok(Outcome::Shutdown(format!(
                "stopped the collector (pid {pid})"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Error::io(
        "the collector did not stop within 90 s of SIGTERM; it runs on",
        dir,
        std::io::Error::other(format!("pid {pid}")),
    ))
}

fn serve(args: &Args) -> Result<Outcome, Error> {
    match Collector::open(args)? {
        Some(collector) => collector.run(),
        None => Ok(Outcome::AlreadyRunning),
    }
}

/// A collector opened and ready to loop: the lock held, the sockets bound,
/// the logs open and read back, HTTP serving.
struct Collector {
    lock: lock::Lock,
    socket: UdpSocket,
    ingest: Ingest,
    http: HttpServer,
    /// The number of the SIGTERM or SIGINT received, 0 while none was.
    stop: Arc<AtomicUsize>,
}

impl Collector {
    /// Takes the lock (`None`: another collector has it), checks the key
    /// and the site, binds, opens and reads back the logs, and starts the
    /// threads: HTTP, the log writer, `--notify`, `--on-collect`.
    fn open(args: &Args) -> Result<Option<Collector>, Error> {
        // The key first: a bad one is one line, before anything is made.
        let key = Key::from_file(&args.key_file)?;
        if let Some(site) = &args.site
            && !site.is_dir()
        {
            return Err(Error::Usage(format!(
                "--site {} is not a directory (make it, e.g. install -d -o ACCOUNT -g ACCOUNT {}: webgen writes the pages there)",
                site.display(),
                site.display()
            )));
        }
        // Only the last component is made, and said: a typo in a longer path
        // must not grow a tree of folders that nobody reads.
        if !args.data.is_dir() {
            std::fs::create_dir(&args.data)
                .map_err(|e| Error::data_dir("cannot create the data directory", &args.data, e))?;
            say!("created the data directory {}", args.data.display());
        }
        let Some(lock) = lock::Lock::acquire(&args.data)? else {
            return Ok(None);
        };
        let now = unix_now();
        let metrics = Arc::new(Metrics::default());
        metrics.start_time.store(now, Relaxed);
        let socket = bind_udp(args, &metrics)?;
        let log =
            csvlog::LogWriter::open(&args.data, now, args.keep_days)?.with_metrics(metrics.clone());
        let snapshot = Arc::new(Mutex::new(Arc::new(Snapshot::default())));
        let spawn_err = |what: &'static str| {
            move |e: std::io::Error| Error::io("cannot start the thread for", what, e)
        };
        let page_url = args.config.as_ref().and_then(|c| c.page_url.clone());
        let notifiers = args
            .notify
            .iter()
            .map(|(label, route)| {
                notify::Notifier::start(
                    label.clone(),
                    route.clone(),
                    page_url.clone(),
                    metrics.clone(),
                )
                .map_err(spawn_err("--notify"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let on_collect = match &args.on_collect {
            Some(cmd) => Some(
                on_collect::OnCollect::start(cmd.clone(), metrics.clone())
                    .map_err(spawn_err("--on-collect"))?,
            ),
            None => None,
        };
        let log = csvlog::Committer::start(log).map_err(spawn_err("the log writer"))?;
        let mut ingest = Ingest::new(
            key,
            args.max_skew,
            logs::Staleness::new(
                args.thresholds,
                args.config.as_ref().map_or(&[], |c| &c.gateways),
            ),
            log,
            metrics.clone(),
            snapshot.clone(),
            notifiers,
            on_collect,
        );
        let expected = args
            .config
            .as_ref()
            .map(|c| c.tunnels.clone())
            .unwrap_or_default();
        let silences = args
            .config
            .as_ref()
            .map(|c| c.silences.clone())
            .unwrap_or_default();
        ingest.use_config(expected, silences, reload::Reload::new(args), now);
        ingest.use_damping(args.damping);
        ingest.rebuild(&args.data, now)?;
        let http = HttpServer::start(args.http, &args.data, args.site.clone(), snapshot, metrics)?;
        let stop = Arc::new(AtomicUsize::new(0));
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register_usize(signal, stop.clone(), signal as usize)
                .map_err(|e| Error::io("cannot handle the signal", "SIGTERM/SIGINT", e))?;
        }
        say!("{}", start_line(args));
        Ok(Some(Collector {
            lock,
            socket,
            ingest,
            http,
            stop,
        }))
    }

    /// Receives, writes, acks and ticks until a signed shutdown or a fatal
    /// error.
    fn run(self) -> Result<Outcome, Error> {
        let Collector {
            lock,
            socket,
            mut ingest,
            http,
            stop,
        } = self;
        let mut batch = RecvBatch::default();
        let mut last_tick = 0;
        let mut udp_errors = 0u32;
        loop {
            // While a batch is being synced, what comes is checked into the
            // next batch (up to a full batch), which is handed to the writer
            // once the sync is done: under load one sync covers everything
            // that came during the one before, and the checking overlaps
            // the disk. With nothing new coming, the loop waits for the
            // sync (its acks go out) and commits what was gathered before
            // it waits on the socket again.
            let waiting = ingest.in_flight() || ingest.gathered() > 0;
            let received = if waiting {
                Ok(batch.take_more(&socket))
            } else {
                batch.recv(&socket).map(|()| 1)
            };
            let now = unix_now();
            match received {
                Ok(new) => {
                    udp_errors = 0;
                    let mut step = Step::Continue;
                    if !batch.is_empty() {
                        step = ingest.gather(&socket, batch.datagrams(), now);
                        batch.clear();
                    }
                    let commit =
                        new == 0 || ingest.gathered() >= udp::MAX_BATCH || ingest.in_flight_done();
                    if step == Step::Continue && commit {
                        step = ingest.commit(&socket);
                    }
                    if let Step::Shutdown { gateway, source } = step {
                        ingest.finish();
                        drop(http);
                        lock.release();
                        return Ok(Outcome::Shutdown(format!(
                            "stopped by a signed shutdown from {gateway} ({source})"
                        )));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // ICMP errors and the like: note, pause, go on; give up only
                    // when nothing but errors comes for a long while.
                    udp_errors += 1;
                    if udp_errors.is_power_of_two() {
                        say!("UDP receive failed ({udp_errors} in a row): {e}");
                    }
                    if udp_errors > 10_000 {
                        return Err(Error::Udp(e));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if now != last_tick {
                last_tick = now;
                ingest.tick(&socket, now);
                if let Some(e) = ingest.write_failure(now) {
                    return Err(e);
                }
                http.check()?;
            }
            let signal = stop.load(Relaxed);
            if signal != 0 {
                // The batch in flight is written, synced and acked first.
                ingest.settle(&socket);
                ingest.finish();
                drop(http);
                lock.release();
                let name = if signal == SIGINT as usize {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                return Ok(Outcome::Shutdown(format!("stopped by {name}")));
            }
        }
    }
}

/// The line logged once a collector is up: what runs, where, and by which
/// thresholds, so `collector.log` says the start went well.
fn start_line(args: &Args) -> String {
    let keep = match args.keep_days {
        0 => "all logs kept".to_string(),
        n => format!("logs kept {n} days"),
    };
    format!(
        "collector {} started: data {}, UDP {}, HTTP {}, late after {}s, down after {}s, {keep}",
        env!("CARGO_PKG_VERSION"),
        args.data.display(),
        args.udp,
        args.http,
        args.thresholds.late,
        args.thresholds.down,
    )
}

/// The UDP socket: bound, with a read timeout for the ticks and the large
/// receive buffer asked for (what the kernel granted goes to `/metrics`).
fn bind_udp(args: &Args, metrics: &Metrics) -> Result<UdpSocket, Error> {
    let socket = UdpSocket::bind(args.udp).map_err(|source| Error::Bind {
        what: "UDP",
        addr: args.udp.to_string(),
        source,
    })?;
    socket
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .map_err(Error::Udp)?;
    let udp = socket2::SockRef::from(&socket);
    // Not fatal: the default buffer works, only with more resends under load.
    let _ = udp.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    if let Ok(granted) = udp.recv_buffer_size() {
        metrics.udp_receive_buffer.store(granted as u64, Relaxed);
    }
    Ok(socket)
}
