//! `--on-collect CMD`: regenerate the site after accepted reports.
//!
//! Ingest only [`OnCollect::poke`]s: sets a flag and wakes one thread, never
//! waits. That thread runs `sh -c CMD` when the flag is set, one run at a
//! time. A poke when idle (no run going, and the last one started at least
//! [`MIN_INTERVAL`] ago) starts a run at once: a lone report, or a gateway
//! going late, is on the pages as soon as the command has run. Only under a
//! burst does the throttle show: starts are at least [`MIN_INTERVAL`]
//! apart, and a poke that comes while a run is going (or during the pause
//! after it) causes exactly one more run: a burst of reports gives one run
//! at its start and one after it, so the last report is always reflected. Failures are logged and counted;
//! a run that hangs is killed after [`LIMIT`].
//!
//! At a signed shutdown, [`OnCollect::finish`] skips the pause: a run still
//! owed is made at once, and the collector waits for it (at most
//! [`FINISH_WAIT`]) before it exits, so the pages show the last reports.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::command;
use crate::metrics::Metrics;
use crate::say::say;

/// Least time between two starts.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// A run is killed after this long.
pub(crate) const LIMIT: Duration = Duration::from_secs(300);
/// How long a shutdown waits for the runs still owed.
pub(crate) const FINISH_WAIT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Wants {
    /// A run is owed.
    dirty: bool,
    /// Shutting down: no pause, and stop once nothing is owed.
    finishing: bool,
}

#[derive(Default)]
struct Flag {
    wants: Mutex<Wants>,
    wake: Condvar,
}

pub(crate) struct OnCollect {
    flag: Arc<Flag>,
    /// Closed (the sender dropped) when the thread ends.
    ended: mpsc::Receiver<()>,
}

impl OnCollect {
    /// Starts the thread that runs `cmd`.
    pub(crate) fn start(cmd: String, metrics: Arc<Metrics>) -> std::io::Result<OnCollect> {
        let flag = Arc::new(Flag::default());
        let f = flag.clone();
        let (ending, ended) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("on-collect".into())
            .spawn(move || {
                worker(&cmd, &f, &metrics);
                drop(ending);
            })?;
        Ok(OnCollect { flag, ended })
    }

    /// Asks for a run; returns at once.
    pub(crate) fn poke(&self) {
        if let Ok(mut wants) = self.flag.wants.lock() {
            wants.dirty = true;
            self.flag.wake.notify_one();
        }
    }

    /// Makes the run still owed, if any, without the pause, and waits for
    /// the thread to end, at most `wait`. Says whether it ended in time.
    pub(crate) fn finish(self, wait: Duration) -> bool {
        if let Ok(mut wants) = self.flag.wants.lock() {
            wants.finishing = true;
            self.flag.wake.notify_one();
        }
        matches!(
            self.ended.recv_timeout(wait),
            Err(mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

fn worker(cmd: &str, flag: &Flag, metrics: &Metrics) {
    loop {
        {
            let Ok(mut wants) = flag.wants.lock() else {
                return;
            };
            while !wants.dirty && !wants.finishing {
                wants = match flag.wake.wait(wants) {
                    Ok(w) => w,
                    Err(_) => return,
                };
            }
            if !wants.dirty {
                return; // finishing, and nothing owed
            }
            wants.dirty = false;
        }
        let started = Instant::now();
        match command::run(cmd, &[], LIMIT) {
            Ok(()) => {
                metrics.on_collect_ok.fetch_add(1, Relaxed);
            }
            Err(why) => {
                metrics.on_collect_failed.fetch_add(1, Relaxed);
                say!("--on-collect failed: {why}");
            }
        }
        // The pause before the next start, cut short by a shutdown.
        let Ok(mut wants) = flag.wants.lock() else {
            return;
        };
        while !wants.finishing {
            let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) else {
                break;
            };
            wants = match flag.wake.wait_timeout(wants, rest) {
                Ok((w, _)) => w,
                Err(_) => return,
            };
        }
    }
}
