//! Noticing an edited config file: every [`CHECK_EVERY`] seconds the file's
//! modification time, size and inode are compared with those of the last
//! load; when they differ, the file is loaded again and checked. A good
//! file gives the new inventory and thresholds (the command line's
//! `--late`/`--down` still win); a bad one is refused with its
//! `FILE:LINE: what is wrong`, and the previous config stays in force.
//!
//! What is taken from an edited file: the inventory, `late`, `down`, the
//! `[[gateway]]` overrides, `hold` and `flap`.
//! `keep_days`, `notify` and `page_url` are read at start only.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use logs::Staleness;
use logs::config::Config;
use logs::damping::Damping;

use crate::cli::Args;

/// Seconds between two looks at the file (an edit is in force within
/// about this long, well inside the 10 s promised).
pub(crate) const CHECK_EVERY: u64 = 2;

/// What identifies one version of the file on disk.
type Stamp = Option<(i64, i64, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.mtime(), m.mtime_nsec(), m.len(), m.ino()))
}

/// The watch on the config file given at start.
pub(crate) struct Reload {
    path: PathBuf,
    stamp: Stamp,
    last_check: u64,
    late_flag: Option<u64>,
    down_flag: Option<u64>,
    hold_flag: Option<u64>,
    flap_flag: Option<u32>,
}

/// An edited file, loaded and checked.
pub(crate) struct Loaded {
    pub config: Config,
    pub staleness: Staleness,
    pub damping: Damping,
}

impl Reload {
    /// Watches the file the collector started with, if it started with one.
    pub(crate) fn new(args: &Args) -> Option<Reload> {
        let config = args.config.as_ref()?;
        Some(Reload {
            stamp: stamp(&config.path),
            path: config.path.clone(),
            last_check: 0,
            late_flag: args.late_flag,
            down_flag: args.down_flag,
            hold_flag: args.hold_flag,
            flap_flag: args.flap_flag,
        })
    }

    /// At most every [`CHECK_EVERY`] seconds: `None` when the file is as
    /// it was, else the new config or why it is refused (one line).
    pub(crate) fn poll(&mut self, now: u64) -> Option<Result<Loaded, String>> {
        if now < self.last_check.saturating_add(CHECK_EVERY) {
            return None;
        }
        self.last_check = now;
        let current = stamp(&self.path);
        if current == self.stamp {
            return None;
        }
        self.stamp = current;
        Some(self.load())
    }

    fn load(&self) -> Result<Loaded, String> {
        let config = logs::config::load(&self.path).map_err(|e| e.to_string())?;
        let thresholds = crate::cli::thresholds(self.late_flag, self.down_flag, Some(&config))
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let damping = crate::cli::damping(self.hold_flag, self.flap_flag, Some(&config));
        Ok(Loaded {
            staleness: Staleness::new(thresholds, &config.gateways),
            config,
            damping,
        })
    }
}
