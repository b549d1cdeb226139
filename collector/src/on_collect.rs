//! `--on-collect CMD`: regenerate the site after accepted reports.
//!
//! Ingest only [`OnCollect::poke`]s: sets a flag and wakes one thread, never
//! waits. That thread runs `sh -c CMD` when the flag is set, one run at a
//! time, starts are at least [`MIN_INTERVAL`] apart, and a poke that comes
//! while a run is going (or during the pause after it) causes exactly one
//! more run: a burst of reports gives one run at its start and one after it,
//! so the last report is always reflected. Failures are logged and counted;
//! a run that hangs is killed after [`LIMIT`].

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::command;
use crate::metrics::Metrics;

/// Least time between two starts.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// A run is killed after this long.
pub const LIMIT: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Flag {
    dirty: Mutex<bool>,
    wake: Condvar,
}

pub struct OnCollect {
    flag: Arc<Flag>,
}

impl OnCollect {
    /// Starts the thread that runs `cmd`.
    pub fn start(cmd: String, metrics: Arc<Metrics>) -> std::io::Result<OnCollect> {
        let flag = Arc::new(Flag::default());
        let f = flag.clone();
        std::thread::Builder::new()
            .name("on-collect".into())
            .spawn(move || worker(&cmd, &f, &metrics))?;
        Ok(OnCollect { flag })
    }

    /// Asks for a run; returns at once.
    pub fn poke(&self) {
        if let Ok(mut dirty) = self.flag.dirty.lock() {
            *dirty = true;
            self.flag.wake.notify_one();
        }
    }
}

fn worker(cmd: &str, flag: &Flag, metrics: &Metrics) {
    loop {
        {
            let Ok(mut dirty) = flag.dirty.lock() else {
                return;
            };
            while !*dirty {
                dirty = match flag.wake.wait(dirty) {
                    Ok(d) => d,
                    Err(_) => return,
                };
            }
            *dirty = false;
        }
        let started = Instant::now();
        match command::run(cmd, &[], LIMIT) {
            Ok(()) => {
                metrics.on_collect_ok.fetch_add(1, Relaxed);
            }
            Err(why) => {
                metrics.on_collect_failed.fetch_add(1, Relaxed);
                eprintln!("collector: --on-collect failed: {why}");
            }
        }
        if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}
