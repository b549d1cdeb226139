//! The benchmark data set under one directory (normally
//! `target/bench-data`), generated once from a seed and reused while its
//! stamp file says it was made with the same parameters:
//!
//! - `ps-<procs>-<forwards>.txt`: the `ps auxww` capture;
//! - `logs-<days>d/`: collector logs of 10 gateways × 10 tunnels; the
//!   longest set is generated, the shorter ones hold hard links to its last
//!   days' files (no extra disk, and readers see plain files).

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::logs::{self, Plan, Written};
use crate::pscapture;

/// The seed everything is generated from.
pub const SEED: u64 = 0x524F_4354_4D00_0001;
/// The logs end here: 2026-12-01T00:00:00Z (webgen runs with `--now` there).
pub const END: u64 = 1_796_083_200;
pub const GATEWAYS: usize = 10;
pub const TUNNELS: usize = 10;

/// Writes (or reuses) the capture; returns its path and forwards.
pub fn capture(dir: &Path, procs: usize, forwards: usize) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let path = dir.join(format!("ps-{procs}-{forwards}.txt"));
    if !path.exists() {
        let c = pscapture::generate(SEED, procs, forwards);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &c.text).map_err(|e| Error::io("cannot write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("cannot rename", &tmp, e))?;
    }
    Ok(path)
}

/// The directory of logs for the last `days` days of a `longest`-day set.
pub fn logs_dir(dir: &Path, days: u64) -> PathBuf {
    dir.join(format!("logs-{days}d"))
}

fn stamp(plan: &Plan) -> String {
    format!(
        "seed={} gateways={} days={} tunnels={} end={} generator=1\n",
        plan.seed, plan.gateways, plan.days, plan.tunnels, plan.end
    )
}

/// Generates (or reuses) `longest` days of logs and hard-linked subsets of
/// `subsets` days. Prints a line when it generates.
pub fn logs(dir: &Path, longest: u64, subsets: &[u64]) -> Result<(), Error> {
    let plan = Plan {
        seed: SEED,
        gateways: GATEWAYS,
        days: longest,
        tunnels: TUNNELS,
        end: END,
    };
    let full = logs_dir(dir, longest);
    let stamp_file = full.join(".generated");
    let want = stamp(&plan);
    if std::fs::read_to_string(&stamp_file).ok().as_deref() != Some(want.as_str()) {
        let _ = std::fs::remove_dir_all(&full);
        eprintln!(
            "bench: generating {longest} days of logs ({} gateways × {} tunnels) in {}",
            plan.gateways,
            plan.tunnels,
            full.display()
        );
        let t = std::time::Instant::now();
        let Written {
            events,
            tunnel_rows,
            bytes,
            ..
        } = logs::generate(&plan, &full)?;
        eprintln!(
            "bench: {events} event rows, {tunnel_rows} tunnel rows, {:.0} MB in {:.1} s",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        std::fs::write(&stamp_file, &want)
            .map_err(|e| Error::io("cannot write", &stamp_file, e))?;
    }
    let mut names: Vec<String> = std::fs::read_dir(&full)
        .map_err(|e| Error::io("cannot list", &full, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| ::logs::schema::parse_file_name(n).is_some())
        .collect();
    // Names end in the date: sorting by the date part orders the days.
    names.sort_by(|a, b| a[a.len() - 14..].cmp(&b[b.len() - 14..]));
    for &days in subsets {
        if days >= longest {
            continue;
        }
        let sub = logs_dir(dir, days);
        let _ = std::fs::remove_dir_all(&sub);
        std::fs::create_dir_all(&sub).map_err(|e| Error::io("cannot create", &sub, e))?;
        let keep = (days as usize * 2).min(names.len());
        for n in &names[names.len() - keep..] {
            let to = sub.join(n);
            std::fs::hard_link(full.join(n), &to).map_err(|e| Error::io("cannot link", &to, e))?;
        }
    }
    Ok(())
}

/// Rows (tunnel rows) and bytes in a log directory, counted by lines.
pub fn size_of(dir: &Path) -> Result<(u64, u64), Error> {
    let mut rows = 0;
    let mut bytes = 0;
    for e in std::fs::read_dir(dir)
        .map_err(|e| Error::io("cannot list", dir, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((kind, _)) = ::logs::schema::parse_file_name(&name) else {
            continue;
        };
        let data =
            std::fs::read(e.path()).map_err(|err| Error::io("cannot read", &e.path(), err))?;
        bytes += data.len() as u64;
        if kind == ::logs::schema::LogKind::Tunnels {
            rows += (data.iter().filter(|&&b| b == b'\n').count() as u64).saturating_sub(1);
        }
    }
    Ok((rows, bytes))
}
