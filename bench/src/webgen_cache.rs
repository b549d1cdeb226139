//! The `cache` case: what webgen's cache of the closed UTC days saves
//! (`webgen/src/cache.rs`), measured side by side in one run.
//!
//! The last generated day plays *today*: its files are cut to the rows
//! received by `now`, the days before it are the history (hard links into
//! the generated set). Three runs of webgen on the same logs at the same
//! `now`, in rounds whose order rotates (the machine is shared: medians of
//! interleaved runs):
//!
//! - **full**: `--no-cache`, what every run cost before;
//! - **cold**: with the cache, its directory emptied first: the run that
//!   reads everything and writes the checkpoint;
//! - **warm**: the checkpoint made by a run a minute before (today's files
//!   cut a minute earlier), then one more minute of logs: the run that
//!   `--on-collect` and cron make all day.
//!
//! Scenarios: 30 days × 10 gateways at 00:02 (the case); the same
//! at 23:59, when today's own files are almost a day long (the most a warm
//! run reads); and `--range 365d` over 90 days at 00:02, whose warm run
//! must stay within the same budget (10 % of the 30-day full run). The
//! pages of the three runs must be the same bytes, and a row says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cases::{Row, Setup};
use crate::data;
use crate::error::Error;
use crate::measure::{self, Measured, fmt_bytes, fmt_duration};

/// One scenario: the history behind today, how far into today, the range.
struct Scenario {
    /// Closed days before today.
    days: u64,
    /// Seconds of today's logs (cut there; `now` is the cut).
    into_today: u64,
    range: Option<&'static str>,
    rounds: usize,
}

/// Medians of the three kinds of run.
struct Figures {
    full: (Duration, Duration),
    cold: (Duration, Duration),
    warm: (Duration, Duration),
    checkpoint: u64,
    identical: bool,
}

/// The case: a row per scenario and kind of run, the ratios, and whether
/// the pages were the same bytes.
pub fn webgen_cache(setup: &Setup) -> Result<Vec<Row>, Error> {
    let bin = setup.bin.join("webgen");
    if !bin.exists() {
        return Ok(Vec::new());
    }
    let longest = setup
        .scale
        .scale_days
        .iter()
        .copied()
        .chain([setup.scale.webgen_days])
        .max()
        .unwrap_or(1);
    let month = setup.scale.webgen_days.min(longest - 1).max(1);
    let quarter = longest - 1;
    let rounds = if setup.scale.quick { 1 } else { 5 };
    let scenarios = [
        Scenario {
            days: month,
            into_today: 120,
            range: None,
            rounds,
        },
        Scenario {
            days: month,
            into_today: 86_340,
            range: None,
            rounds: rounds.min(3),
        },
        Scenario {
            days: quarter,
            into_today: 120,
            range: Some("365d"),
            rounds: rounds.min(3),
        },
    ];
    let mut rows = Vec::new();
    let mut month_full: Option<(Duration, Duration)> = None;
    for s in &scenarios {
        let f = measure_scenario(setup, &bin, longest, s)?;
        let label = format!(
            "webgen {}{} d × {} gateways, today to {}",
            s.range
                .map_or(String::new(), |r| format!("--range {r} over ")),
            s.days,
            data::GATEWAYS,
            clock(s.into_today)
        );
        let base = if s.range.is_some() {
            month_full.unwrap_or(f.full)
        } else {
            f.full
        };
        if s.range.is_none() && s.into_today == 120 {
            month_full = Some(f.full);
        }
        rows.extend(scenario_rows(&label, s, &f, base, month));
    }
    Ok(rows)
}

fn clock(secs: u64) -> String {
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

fn scenario_rows(
    label: &str,
    s: &Scenario,
    f: &Figures,
    base: (Duration, Duration),
    month: u64,
) -> Vec<Row> {
    let pair =
        |(w, c): (Duration, Duration)| format!("{} wall, {} CPU", fmt_duration(w), fmt_duration(c));
    let share = |(w, c): (Duration, Duration), (bw, bc): (Duration, Duration)| {
        (
            w.as_secs_f64() / bw.as_secs_f64().max(1e-9),
            c.as_secs_f64() / bc.as_secs_f64().max(1e-9),
        )
    };
    let (ww, wc) = share(f.warm, base);
    let base_name = match s.range {
        Some(_) => format!("the {month} d full run"),
        None => "full".to_string(),
    };
    vec![
        Row {
            case: label.to_string(),
            figure: format!(
                "full (--no-cache) {} · cold cache {} · warm cache, one more minute {} (medians of {} interleaved rounds); checkpoint {}",
                pair(f.full),
                pair(f.cold),
                pair(f.warm),
                s.rounds,
                fmt_bytes(f.checkpoint)
            ),
            target: String::new(),
            met: None,
        },
        Row {
            case: format!("{label}: warm ÷ {base_name}"),
            figure: format!(
                "{:.1} % of the wall time, {:.1} % of the CPU time; cold ÷ full {:.2}× wall",
                ww * 100.0,
                wc * 100.0,
                f.cold.0.as_secs_f64() / f.full.0.as_secs_f64().max(1e-9)
            ),
            target: "≤ 10 %".to_string(),
            met: Some(ww <= 0.10 && wc <= 0.10),
        },
        Row {
            case: format!("{label}: pages with and without the cache"),
            figure: if f.identical {
                "the same bytes (index.html, history.html)".to_string()
            } else {
                "DIFFERENT".to_string()
            },
            target: "the same bytes".to_string(),
            met: Some(f.identical),
        },
    ]
}

/// Builds the scenario's logs and runs its rounds.
fn measure_scenario(
    setup: &Setup,
    bin: &Path,
    longest: u64,
    s: &Scenario,
) -> Result<Figures, Error> {
    let root = setup.data.join(format!("cache-{}d", s.days));
    let logs = root.join("logs");
    let generated = data::logs_dir(&setup.data, longest);
    let today = link_history(&generated, &logs, s.days)?;
    let now = day_start(&today)? + s.into_today;
    let cache = root.join("cache");
    let out = |k: &str| root.join(format!("site-{k}"));
    let run = |out: &Path, now: u64, extra: &[&str]| -> Result<Measured, Error> {
        let mut cmd = Command::new(bin);
        cmd.arg("--data")
            .arg(&logs)
            .arg("--out")
            .arg(out)
            .args(["--now", &now.to_string(), "--tz", "UTC", "-q"])
            .args(extra);
        if let Some(r) = s.range {
            cmd.args(["--range", r]);
        }
        measure::run_clean(&cmd)
    };
    let cache_arg = cache.to_string_lossy().into_owned();
    let with_cache = ["--cache", cache_arg.as_str()];
    let (mut full, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..s.rounds {
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    cut_today(&generated, &logs, &today, now)?;
                    full.push(run(&out("full"), now, &["--no-cache"])?);
                }
                1 => {
                    cut_today(&generated, &logs, &today, now)?;
                    let _ = std::fs::remove_dir_all(&cache);
                    cold.push(run(&out("cold"), now, &with_cache)?);
                }
                _ => {
                    // The run a minute before made the checkpoint (or found
                    // it current); then one more minute of logs.
                    cut_today(&generated, &logs, &today, now - 60)?;
                    run(&out("before"), now - 60, &with_cache)?;
                    cut_today(&generated, &logs, &today, now)?;
                    warm.push(run(&out("warm"), now, &with_cache)?);
                }
            }
        }
    }
    let checkpoint = std::fs::metadata(cache.join("checkpoint.bin")).map_or(0, |m| m.len());
    let identical = ["index.html", "history.html"].iter().all(|page| {
        let read = |k: &str| std::fs::read(out(k).join(page)).ok();
        let full = read("full");
        full.is_some() && full == read("cold") && full == read("warm")
    });
    let med = |ms: &[Measured]| {
        let mut w: Vec<Duration> = ms.iter().map(|m| m.wall).collect();
        let mut c: Vec<Duration> = ms.iter().map(|m| m.cpu).collect();
        (measure::median(&mut w), measure::median(&mut c))
    };
    Ok(Figures {
        full: med(&full),
        cold: med(&cold),
        warm: med(&warm),
        checkpoint,
        identical,
    })
}

/// Fills `logs` with hard links to the `days` days before the last
/// generated day; returns that day's date (`YYYY-MM-DD`), today.
fn link_history(generated: &Path, logs: &Path, days: u64) -> Result<String, Error> {
    let mut dates: Vec<String> = std::fs::read_dir(generated)
        .map_err(|e| Error::io("cannot list", generated, e))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            ::logs::schema::parse_file_name(&name).map(|(_, day)| day.to_string())
        })
        .collect();
    dates.sort();
    dates.dedup();
    let today = dates
        .pop()
        .ok_or_else(|| Error::case("cache", format!("no logs in {}", generated.display())))?;
    let _ = std::fs::remove_dir_all(logs);
    std::fs::create_dir_all(logs).map_err(|e| Error::io("cannot create", logs, e))?;
    let keep = dates.len().saturating_sub(days as usize);
    for date in &dates[keep..] {
        for kind in ["events", "tunnels"] {
            let name = format!("{kind}-{date}.csv");
            let to = logs.join(&name);
            std::fs::hard_link(generated.join(&name), &to)
                .map_err(|e| Error::io("cannot link", &to, e))?;
        }
    }
    Ok(today)
}

fn day_start(date: &str) -> Result<u64, Error> {
    let d: jiff::civil::Date = date
        .parse()
        .map_err(|e| Error::case("cache", format!("day {date}: {e}")))?;
    let ts = d
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| Error::case("cache", format!("day {date}: {e}")))?
        .timestamp()
        .as_second();
    u64::try_from(ts).map_err(|_| Error::case("cache", format!("day {date}: before 1970")))
}

/// Today's two files as the collector has them at `now`: the generated
/// day's rows received by then (the generator writes them in that order),
/// cut at the first later row with the `csv` crate's positions.
fn cut_today(generated: &Path, logs: &Path, today: &str, now: u64) -> Result<(), Error> {
    for kind in ["events", "tunnels"] {
        let name = format!("{kind}-{today}.csv");
        let from = generated.join(&name);
        let bytes = std::fs::read(&from).map_err(|e| Error::io("cannot read", &from, e))?;
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&bytes[..]);
        let mut rec = csv::ByteRecord::new();
        let mut end = bytes.len();
        let mut first = true;
        loop {
            let at = rdr.position().byte() as usize;
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                _ => break,
            }
            let received = std::str::from_utf8(rec.get(0).unwrap_or(b""))
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            if !first && received.is_none_or(|r| r > now) {
                end = at;
                break;
            }
            first = false;
        }
        let to: PathBuf = logs.join(&name);
        write_atomic(&to, &bytes[..end])?;
    }
    Ok(())
}

/// A new file (a new inode), as the collector's own files are made.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("cannot rename", &tmp, e))
}
