//! Watch mode (`--watch`): the client keeps running, looks at the tunnels
//! every `--interval`, and reports at once when they change, and at least
//! every `--every`.
//!
//! Each look is [`live::rescan`]: `/proc` and the sockets, no `ps` (a look
//! costs a few milliseconds of CPU, see `docs/benchmarks.md`). What counts
//! as a change is what the page shows ([`Look`]): a tunnel appears or goes,
//! starts or stops listening, or its number of connections changes; CPU
//! time does not. Every report declares the period of [`Watch::period`].
//!
//! Each collector has a worker thread of its own, fed through an
//! [`Outbox`] that holds only the newest state: a collector that does not
//! answer delays no other one and no look, gets no backlog of stale
//! reports, and is sent the current state (with a fresh sequence number
//! and time) every `--interval` until it answers. Its worker says so on
//! stderr once per outage, and once when it answers again.
//!
//! The main thread holds SIGTERM and SIGINT blocked and waits for them
//! between looks ([`StopSignals`]); it also stops when the binary, the
//! config file or the key file is replaced, so that cron starts the new
//! one. One watcher per gateway name: [`lock`].

use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::{Args, Collector, Watch};
use crate::error::{EXIT_OK, Error};
use crate::key::Key;
use crate::printout::{print_delivery, print_header};
use crate::send::{self, Delivery};
use crate::signals::StopSignals;
use crate::tunnel::{Health, Kind, Tunnel};
use crate::wire::{self, Body, MsgKind};
use crate::{health, live, lock};

/// What of a tunnel, when it changes, is reported at once.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Look {
    pid: u32,
    kind: Kind,
    bind: String,
    listen_port: u16,
    target_host: String,
    target_port: u16,
    dest: String,
    user: String,
    started: Option<u64>,
    listening: u8,
    connections: Option<u32>,
}

/// The looks of a list of tunnels, in a fixed order.
fn looks_of(tunnels: &[Tunnel]) -> Vec<Look> {
    let mut looks: Vec<Look> = tunnels
        .iter()
        .map(|t| Look {
            pid: t.pid,
            kind: t.kind,
            bind: t.bind.clone(),
            listen_port: t.listen_port,
            target_host: t.target_host.clone(),
            target_port: t.target_port,
            dest: t.dest.clone(),
            user: t.user.clone(),
            started: t.started,
            listening: match t.listening {
                Health::Yes => 2,
                Health::No => 1,
                Health::Unknown => 0,
            },
            connections: t.connections,
        })
        .collect();
    looks.sort();
    looks
}

/// The newest state for one collector's worker, and whether to stop.
#[derive(Default)]
struct Outbox {
    slot: Mutex<Slot>,
    wake: Condvar,
}

#[derive(Default)]
struct Slot {
    job: Option<Arc<Vec<Tunnel>>>,
    stop: bool,
}

impl Outbox {
    /// Puts the newest state in, replacing one not yet taken.
    fn post(&self, tunnels: Arc<Vec<Tunnel>>) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        slot.job = Some(tunnels);
        self.wake.notify_one();
    }

    fn stop(&self) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        slot.stop = true;
        self.wake.notify_one();
    }

    /// The next state to send: a newer one when it comes, else `pending`
    /// (a state not yet acknowledged) again after `retry`, else waits for
    /// one. `None`: stop.
    fn next(&self, pending: Option<Arc<Vec<Tunnel>>>, retry: Duration) -> Option<Arc<Vec<Tunnel>>> {
        let deadline = Instant::now() + retry;
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if slot.stop {
                return None;
            }
            if let Some(job) = slot.job.take() {
                return Some(job);
            }
            slot = match &pending {
                None => self.wake.wait(slot).unwrap_or_else(PoisonError::into_inner),
                Some(_) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return pending;
                    }
                    let waited = self.wake.wait_timeout(slot, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
    }
}

/// What every worker sends with.
struct Sender {
    gateway: String,
    key: Key,
    period: u32,
    timeout: Duration,
    /// How long a worker waits before sending an unacknowledged state again.
    retry: Duration,
}

impl Sender {
    /// Signs the tunnels as a report of now and delivers it to `c`.
    fn send(&self, c: &Collector, tunnels: &[Tunnel]) -> Result<Delivery, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let body = Body {
            gateway: self.gateway.clone(),
            kind: MsgKind::Report,
            seq: u64::try_from(now.as_micros()).unwrap_or(u64::MAX),
            sent: now.as_secs(),
            part: 1,
            parts: 1,
            text: String::new(),
            tunnels: tunnels.to_vec(),
            period: Some(self.period),
            until: None,
        };
        let parts = wire::encode_all(&self.key, &body).map_err(Error::Encode)?;
        let addr = send::resolve(&c.host, c.port)?;
        send::deliver(addr, &self.key, &parts, self.timeout)
    }
}

/// One collector's worker: sends each newest state until acknowledged;
/// acknowledgements go to `acked` for the printout.
fn worker(c: Collector, s: Arc<Sender>, outbox: Arc<Outbox>, acked: mpsc::Sender<Delivery>) {
    let mut down = false;
    let mut pending = None;
    while let Some(job) = outbox.next(pending.take(), s.retry) {
        match s.send(&c, &job) {
            Ok(d) => {
                if down {
                    eprintln!(
                        "gateway-client: collector {c} answers again: it has the current state"
                    );
                    down = false;
                }
                let _ = acked.send(d);
            }
            Err(e) => {
                if !down {
                    eprintln!(
                        "gateway-client: {e}; still watching: collector {c} gets the current state as soon as it answers"
                    );
                    down = true;
                }
                pending = Some(job);
            }
        }
    }
}

/// The binary, config file and key file as they were at start: watch mode
/// stops when one is replaced, and cron starts the new set.
struct Files {
    watched: Vec<(PathBuf, Option<Stamp>)>,
}

/// A file's device, inode and modification time (seconds, nanoseconds).
type Stamp = (u64, u64, i64, i64);

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec()))
}

impl Files {
    /// The regular files among the config and key files.
    fn note(args: &Args) -> Files {
        let watched = args
            .config
            .iter()
            .chain([&args.key_file])
            .filter(|p| p.is_file())
            .map(|p| (p.clone(), stamp(p)))
            .collect();
        Files { watched }
    }

    /// What was replaced, if anything.
    fn replaced(&self) -> Option<String> {
        if let Ok(exe) = fs::read_link("/proc/self/exe")
            && exe.as_os_str().as_bytes().ends_with(b" (deleted)")
        {
            return Some(format!("its binary {} was replaced", exe.display()));
        }
        self.watched
            .iter()
            .find(|(p, s)| stamp(p) != *s)
            .map(|(p, _)| format!("{} changed", p.display()))
    }
}

/// The main loop's state.
struct Watcher<'a, W: Write> {
    args: &'a Args,
    watch: Watch,
    name: String,
    out: &'a mut W,
    ctx: live::Context,
    outboxes: Vec<Arc<Outbox>>,
    acked: mpsc::Receiver<Delivery>,
    last: Option<Vec<Look>>,
    last_report: Option<Instant>,
    /// `/proc` could not be read at the last look (said once).
    blind: bool,
}

impl<W: Write> Watcher<'_, W> {
    /// One look's outcome: a report when the tunnels changed or one is due.
    fn look(&mut self, at: Instant, scan: io::Result<Vec<Tunnel>>) {
        let tunnels = match scan {
            Ok(t) => t,
            Err(e) => {
                if !self.blind {
                    eprintln!("gateway-client: cannot read /proc: {e}; trying again at every look");
                    self.blind = true;
                }
                return;
            }
        };
        if std::mem::take(&mut self.blind) {
            eprintln!("gateway-client: /proc can be read again");
        }
        let looks = looks_of(&tunnels);
        let changed = self.last.as_ref() != Some(&looks);
        let due = self.next_due().is_none_or(|t| at >= t);
        if !changed && !due {
            return;
        }
        if !changed {
            // Accounts added meanwhile get their names.
            self.ctx = live::Context::without_sockets();
        }
        self.last = Some(looks);
        self.last_report = Some(at);
        self.report(tunnels);
    }

    /// When the next report is due whatever happens: `every` after the
    /// last one (the loop wakes then, between two looks if need be).
    fn next_due(&self) -> Option<Instant> {
        self.last_report.map(|t| t + self.watch.every)
    }

    /// Prints (unless `-q`) and hands the state to every worker.
    fn report(&mut self, mut tunnels: Vec<Tunnel>) {
        if self.args.probe {
            health::probe_vnc(&mut tunnels);
        }
        if !self.args.quiet {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let _ = print_header(self.out, &self.name, now, MsgKind::Report, "", &tunnels);
            if self.args.dry_run {
                let _ = writeln!(self.out, "--- dry run: nothing sent");
            }
            let _ = self.out.flush();
        }
        let job = Arc::new(tunnels);
        for o in &self.outboxes {
            o.post(job.clone());
        }
    }

    /// Prints the acknowledgements that came (unless `-q`).
    fn print_acks(&mut self) {
        while let Ok(d) = self.acked.try_recv() {
            if !self.args.quiet {
                let _ = print_delivery(self.out, MsgKind::Report, &d);
                let _ = self.out.flush();
            }
        }
    }
}

/// Starts one worker per collector; returns their outboxes.
fn start_workers(args: &Args, sender: Sender, acked: &mpsc::Sender<Delivery>) -> Vec<Arc<Outbox>> {
    let sender = Arc::new(sender);
    args.collectors
        .iter()
        .map(|c| {
            let outbox = Arc::new(Outbox::default());
            let (c, s, o, a) = (c.clone(), sender.clone(), outbox.clone(), acked.clone());
            std::thread::spawn(move || worker(c, s, o, a));
            outbox
        })
        .collect()
}

/// Runs watch mode until a stop signal (or its files are replaced);
/// returns the exit status. Exits 0 at once, silently, when another
/// watcher holds the gateway's lock.
pub(crate) fn watch(
    args: &Args,
    watch: Watch,
    name: String,
    out: &mut impl Write,
) -> Result<i32, Error> {
    let key = if args.dry_run {
        None
    } else {
        Some(Key::from_file(&args.key_file)?)
    };
    // A dry run sends nothing, so it keeps no real watcher from starting.
    let _lock = match key {
        None => None,
        Some(_) => {
            let path = lock::path_for(&args.key_file, &name);
            match lock::try_lock(&path) {
                Ok(Some(l)) => Some(l),
                Ok(None) => return Ok(EXIT_OK),
                Err(source) => return Err(Error::Lock { path, source }),
            }
        }
    };
    let stop = StopSignals::block().map_err(Error::Signals)?;
    let ctx = live::Context::without_sockets();
    let mut scan = Ok(live::rescan(&ctx, true).map_err(Error::Proc)?);
    let files = Files::note(args);
    let (tx, acked) = mpsc::channel();
    let outboxes = match key {
        None => Vec::new(),
        Some(key) => {
            let sender = Sender {
                gateway: name.clone(),
                key,
                period: watch.period(),
                timeout: args.timeout,
                retry: watch.interval,
            };
            start_workers(args, sender, &tx)
        }
    };
    if !args.quiet {
        print_start(out, args, watch).map_err(Error::Output)?;
    }
    let mut w = Watcher {
        args,
        watch,
        name,
        out,
        ctx,
        outboxes,
        acked,
        last: None,
        last_report: None,
        blind: false,
    };
    loop {
        let at = Instant::now();
        if let Some(what) = files.replaced() {
            if !args.quiet {
                let _ = writeln!(w.out, "--- stopping: {what} (cron starts the new one)");
            }
            break;
        }
        w.look(at, scan);
        w.print_acks();
        let wake = w
            .next_due()
            .map_or(at + watch.interval, |due| due.min(at + watch.interval));
        if stop.wait_until(wake) {
            break;
        }
        scan = live::rescan(&w.ctx, true);
    }
    for o in &w.outboxes {
        o.stop();
    }
    Ok(EXIT_OK)
}

/// The first line of watch mode's printout.
fn print_start(out: &mut impl Write, args: &Args, w: Watch) -> io::Result<()> {
    let to = if args.dry_run {
        "nowhere (dry run)".to_string()
    } else {
        args.collectors
            .iter()
            .map(Collector::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        out,
        "--- watching: a look every {} s, a report at each change and at least every {} s (declared period {} s), to {to}",
        w.interval.as_secs_f64(),
        w.every.as_secs_f64(),
        w.period()
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(pid: u32, port: u16) -> Tunnel {
        Tunnel {
            pid,
            user: "novacr01".into(),
            listen_port: port,
            target_host: "novadaq-far-master-01".into(),
            target_port: 5901,
            dest: "novadaq-far-gateway-01".into(),
            listening: Health::Yes,
            connections: Some(1),
            cpu_time: "0:00".into(),
            ..Tunnel::default()
        }
    }

    /// What changes a report and what does not.
    #[test]
    fn a_change_is_what_the_page_shows() {
        let base = vec![tunnel(10, 5901), tunnel(11, 5902)];
        let same = looks_of(&base);
        let mut reordered = base.clone();
        reordered.reverse();
        assert_eq!(looks_of(&reordered), same);
        let mut cpu = base.clone();
        cpu[0].cpu_time = "0:07".into();
        cpu[0].start = "21:06".into();
        assert_eq!(looks_of(&cpu), same, "CPU time is no change");
        let changes: [fn(&mut Vec<Tunnel>); 5] = [
            |t| {
                t.pop();
            },
            |t| t.push(tunnel(12, 5903)),
            |t| t[0].listening = Health::No,
            |t| t[0].connections = Some(2),
            |t| t[1].connections = None,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut t = base.clone();
            change(&mut t);
            assert_ne!(looks_of(&t), same, "change {i}");
        }
    }

    #[test]
    fn the_newest_state_replaces_one_not_yet_sent() {
        let o = Outbox::default();
        o.post(Arc::new(vec![tunnel(1, 5901)]));
        o.post(Arc::new(vec![tunnel(2, 5902)]));
        let got = o.next(None, Duration::ZERO).unwrap();
        assert_eq!(got[0].pid, 2);
        // Nothing new: the pending state comes back after the retry time.
        let again = o.next(Some(got), Duration::from_millis(1)).unwrap();
        assert_eq!(again[0].pid, 2);
        o.stop();
        assert!(o.next(Some(again), Duration::from_secs(60)).is_none());
    }

    #[test]
    fn the_period_covers_every() {
        let w = |every: f64| Watch {
            interval: Duration::from_secs(2),
            every: Duration::from_secs_f64(every),
        };
        assert_eq!(w(30.0).period(), 31);
        assert_eq!(w(29.5).period(), 31);
        assert_eq!(w(1.0).period(), 2);
    }
}
