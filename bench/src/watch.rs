//! The cost of `gateway-client --watch`: the CPU time of the watching
//! process over a minute at `--interval 2`, on a machine with the live
//! case's real forwards and 300 extra processes (sleepers), reporting to a
//! real collector; side by side with cron's one-shot run (the client with
//! `ps`, as the crontab runs it once a minute), measured in the same minute,
//! interleaved: a one-shot run every ten seconds while the watcher runs.
//!
//! The watcher's CPU is the sum over its threads of the time on CPU in
//! `/proc/PID/task/TID/schedstat` (nanoseconds), read after a warm-up (the
//! first look and report) and at the end; the one-shot run's is `wait4`'s
//! (`measure::run_clean`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cases::{Row, Setup};
use crate::error::Error;
use crate::forwards::Forwards;
use crate::live::Collector;
use crate::measure::{self, fmt_duration};

/// Extra processes on the machine while the watcher runs.
const EXTRA_PROCS: usize = 300;
/// The target: the watcher's share of one core.
const TARGET_SHARE: f64 = 0.005;

/// Processes that only sleep, killed when dropped.
struct Sleepers(Vec<Child>);

impl Sleepers {
    fn start(n: usize) -> Result<Sleepers, Error> {
        let mut s = Sleepers(Vec::with_capacity(n));
        for _ in 0..n {
            let child = Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| Error::command("sleep", e.to_string()))?;
            s.0.push(child);
        }
        Ok(s)
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A child killed when dropped.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The CPU time of all the threads of process `pid` so far.
fn process_cpu(pid: u32) -> Option<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(ns))
}

/// How many processes the machine runs (the numbered entries of `/proc`).
pub(crate) fn processes() -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .count()
        })
        .unwrap_or(0)
}

/// One build's watcher over `span`, with the one-shot run of the same
/// build every ten seconds meanwhile.
fn measure_build(bin: &Path, c: &Collector, span: Duration, label: &str) -> Result<Row, Error> {
    let key = c.data.with_extension("key");
    let to = c.udp.to_string();
    let name = format!("bench-watch-{}", label.replace(' ', "-"));
    let mut w = Watcher(
        Command::new(bin)
            .args(["--config", "/dev/null", "--watch", "--interval", "2", "-q"])
            .args(["--name", &name, "-a", &to, "--key-file"])
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::command(&bin.display().to_string(), e.to_string()))?,
    );
    let pid = w.0.id();
    // The first look and report, the threads started.
    std::thread::sleep(Duration::from_secs(3));
    let cpu_of = |what| process_cpu(pid).ok_or_else(|| Error::case("watch", what));
    let (start, before) = (Instant::now(), cpu_of("the watcher ended at start")?);
    let mut oneshot = Vec::new();
    let one = || {
        let mut cmd = Command::new(bin);
        cmd.args([
            "--config",
            "/dev/null",
            "-q",
            "--name",
            &name,
            "-a",
            &to,
            "--key-file",
        ])
        .arg(&key);
        cmd
    };
    while start.elapsed() < span {
        oneshot.push(measure::run_clean(&one())?.cpu);
        let next = Duration::from_secs(10 * oneshot.len() as u64).min(span);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
    let used = cpu_of("the watcher ended")?.saturating_sub(before);
    let elapsed = start.elapsed();
    if let Ok(Some(status)) = w.0.try_wait() {
        return Err(Error::case(
            "watch",
            format!("the watcher exited: {status}"),
        ));
    }
    let share = used.as_secs_f64() / elapsed.as_secs_f64();
    let runs = oneshot.len();
    let once = measure::median(&mut oneshot);
    Ok(Row {
        case: format!(
            "gateway-client --watch --interval 2, CPU over {} s ({label})",
            elapsed.as_secs()
        ),
        figure: format!(
            "{} CPU = {:.3}% of one core ({} processes on the machine); cron's one-shot run: {} CPU once a minute = {:.3}% (median of {runs}, interleaved)",
            fmt_duration(used),
            share * 100.0,
            processes(),
            fmt_duration(once),
            once.as_secs_f64() / 60.0 * 100.0,
        ),
        target: format!("≤ {}% of one core", TARGET_SHARE * 100.0),
        met: Some(share <= TARGET_SHARE),
    })
}

/// The watch case: every build there is, one after the other, on the same
/// forwards and sleepers.
pub fn case(setup: &Setup) -> Result<Vec<Row>, Error> {
    let collector = setup.bin.join("collector");
    let c = Collector::start(&collector, &setup.scratch.join("watch-collector"))?;
    let fw = Forwards::start(&setup.bin.join("live-ssh"), 10, 2, 2)?;
    let sleepers = Sleepers::start(EXTRA_PROCS)?;
    let span = if setup.scale.quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(60)
    };
    let mut rows = Vec::new();
    for (label, dir) in setup.builds() {
        let bin = dir.join("gateway-client");
        if bin.exists() {
            rows.push(measure_build(&bin, &c, span, label)?);
        }
    }
    drop((sleepers, fw));
    c.stop()?;
    Ok(rows)
}
