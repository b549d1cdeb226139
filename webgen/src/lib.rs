//! webgen turns the collector's CSV logs into the ROC tunnel monitor's
//! static site: `index.html`, the status now, and `history.html`, what
//! happened over the last day, week and month. A cron job or the
//! collector's `--on-collect` runs it after each collection; any web server
//! can serve the result, because both pages are self-contained (inline CSS
//! and SVG, no fetches, readable without JavaScript).
//!
//! The run is a pipeline with one module per step:
//!
//! - `logs` streams the log files day by day and hands a [`logs::Visitor`]
//!   every accepted event and every complete report, in the order they were
//!   received. It applies the schema's reading rules (see
//!   `collector::schema`) and skips and counts bad rows.
//! - `state` holds [`state::Tracker`], the visitor that aggregates on the fly
//!   (last heard, tunnel sessions, counts, silences, messages), and derives
//!   the [`state::Status`] now.
//! - `expected` judges the inventory's expected tunnels (the config file's
//!   `[[tunnel]]`s, read by `cli` through `logs::config`) with
//!   `logs::inventory` as the logs stream by, for the tracker.
//! - `history` derives each range's charts, availability, sessions,
//!   messages and each ROC's availability and outages from the same tracker.
//! - `series` keeps each gateway's tunnel count per report, packed.
//! - `render` formats times and numbers in Rust, builds the template
//!   contexts, renders the minijinja templates (embedded, or from
//!   `--templates DIR`; HTML escaping always on) and writes each page
//!   atomically.
//!
//! Memory follows the number of gateways, tunnels and reports, never the
//! number of rows: no row outlives the day it was read in.
//!
//! `suggest` is `--suggest-inventory`: a first inventory from the logs.
//!
//! [`run`] is the binary; `execute` is the same without printing.

#![warn(unreachable_pub)]

mod cache;
mod cli;
mod csvread;
mod error;
mod expected;
mod history;
mod logs;
mod render;
mod series;
mod state;
mod suggest;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;

use crate::cli::{Command, Config};
use crate::error::Error;
use crate::logs::ReadStats;
use crate::render::Clock;
use crate::state::Status;

/// Items listed on the status page per list (tunnels gone, messages).
const STATUS_LIST_LIMIT: usize = 30;

/// What a run did.
#[derive(Debug)]
struct Summary {
    pages: Vec<PathBuf>,
    stats: ReadStats,
    gateways: usize,
    /// The cache's troubles (it never stops the pages).
    warnings: Vec<String>,
    /// Closed days read back from the cache instead of the logs.
    resumed: usize,
}

/// Parses the arguments (without the program name), runs, prints warnings
/// and errors as `webgen: ...` lines on stderr, and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cfg = match cli::parse(args) {
        Ok(Command::Run(cfg)) => cfg,
        Ok(Command::Help) => {
            say(&mut std::io::stdout(), format_args!("{}", cli::HELP));
            return error::EXIT_OK;
        }
        Ok(Command::Version) => {
            say(
                &mut std::io::stdout(),
                format_args!("webgen {}\n", env!("CARGO_PKG_VERSION")),
            );
            return error::EXIT_OK;
        }
        Err(e) => {
            say(&mut std::io::stderr(), format_args!("webgen: {e}\n"));
            return e.exit_code();
        }
    };
    if let Some(secs) = cfg.suggest {
        return match suggest::suggest(&cfg, secs) {
            Ok(text) => {
                print!("{text}");
                error::EXIT_OK
            }
            Err(e) => {
                eprintln!("webgen: {e}");
                e.exit_code()
            }
        };
    }
    match execute(&cfg) {
        Ok(summary) => {
            if !cfg.data.is_dir() {
                say(
                    &mut std::io::stderr(),
                    format_args!(
                        "webgen: warning: data directory {} does not exist: the pages say there is no data yet (check --data)\n",
                        cfg.data.display()
                    ),
                );
            }
            for w in summary.stats.warnings().iter().chain(&summary.warnings) {
                say(
                    &mut std::io::stderr(),
                    format_args!("webgen: warning: {w}\n"),
                );
            }
            if !cfg.quiet {
                let s = &summary.stats;
                let pages: Vec<String> = summary
                    .pages
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                let n = |count: usize, one: &str, many: &str| {
                    format!("{count} {}", if count == 1 { one } else { many })
                };
                let cached = match summary.resumed {
                    0 => String::new(),
                    d => format!("; {} from the cache", n(d, "closed day", "closed days")),
                };
                say(
                    &mut std::io::stdout(),
                    format_args!(
                        "webgen: wrote {} ({}, {}, {} skipped{cached})\n",
                        pages.join(", "),
                        n(summary.gateways, "gateway", "gateways"),
                        n(s.files.len(), "log file", "log files"),
                        n(s.malformed() as usize, "malformed row", "malformed rows")
                    ),
                );
            }
            error::EXIT_OK
        }
        Err(e) => {
            say(&mut std::io::stderr(), format_args!("webgen: {e}\n"));
            e.exit_code()
        }
    }
}

/// Reads the logs, builds both pages and writes them. Prints nothing.
fn execute(cfg: &Config) -> Result<Summary, Error> {
    let longest = cfg.ranges.iter().map(|r| r.secs).max().unwrap_or(0);
    let day = |t: u64| {
        let ts = i64::try_from(t)
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .unwrap_or(Timestamp::MAX);
        ts.to_zoned(jiff::tz::TimeZone::UTC).date()
    };
    // One extra day before the longest range, for the sessions running into it.
    let from = day(cfg.now.saturating_sub(longest).saturating_sub(86_400));
    let to = day(cfg.now);

    let cache::Read {
        catalog,
        mut tracker,
        stats,
        warnings,
        resumed,
    } = cache::read(cfg, from, to)?;
    tracker.finish(&catalog, cfg.now);
    // Shared with the history page's values, made as its template reads them.
    let catalog = Arc::new(catalog);
    let source = Arc::new(render::Source {
        catalog: Arc::clone(&catalog),
        clock: Clock::new(cfg.tz.clone(), cfg.now),
    });
    let env = render::make_env(cfg.templates.as_deref());
    let sections = Arc::new(render::Sections::new(cfg.ranges.len()));
    let (index, ranges, gateways) =
        status_and_ranges(cfg, &tracker, &source, &sections, &stats, &env)?;
    let idle = history::idle(&tracker, &catalog, cfg.idle_after);
    let history_context = render::history_context(&source, &stats, ranges, &idle, cfg.idle_after);
    std::fs::create_dir_all(&cfg.out).map_err(|source| Error::Write {
        path: cfg.out.clone(),
        source,
    })?;
    let pages = vec![cfg.out.join("index.html"), cfg.out.join("history.html")];
    // Written to its file as it renders, its gateways' sections rendered
    // ahead on a second thread; put in place after the index.
    let history = std::thread::scope(|s| {
        let ahead = s.spawn(|| sections.render_ahead(&env));
        let page = {
            let _end = EndSections(&sections);
            render::render_to_page(&env, "history.html", history_context.clone(), &pages[1])
        };
        ahead
            .join()
            .map_err(|_| Error::Thread("the history page"))?;
        page
    })?;
    // The process ends after this run: the model and the pages' contexts are
    // hundreds of thousands of small allocations, and freeing them one by one
    // was a tenth of a run that reads from the cache. Exiting frees them at
    // once.
    std::mem::forget((idle, history_context));
    std::mem::forget((tracker, catalog, source, sections));

    render::write_atomic(&pages[0], index.as_bytes())?;
    history.commit()?;
    Ok(Summary {
        pages,
        gateways,
        stats,
        warnings,
        resumed,
    })
}

/// The status page rendered, the history page's ranges as its values, and
/// the number of gateways. The longest range is most of the ranges' work
/// (the 365 d one over a quarter of logs, a sixth of a warm run): it is
/// built on a second thread while this one builds the others and the
/// status page.
fn status_and_ranges(
    cfg: &Config,
    tracker: &state::Tracker,
    source: &Arc<render::Source>,
    sections: &Arc<render::Sections>,
    stats: &ReadStats,
    env: &minijinja::Environment<'_>,
) -> Result<(String, Vec<minijinja::Value>, usize), Error> {
    let value = |i: usize, range: &history::Range| {
        let r = history::build(
            tracker,
            &source.catalog,
            cfg.now,
            range,
            stats.first_received,
        );
        let v = render::range_value(source, sections, i, &r);
        // Freed at exit (see `execute`).
        std::mem::forget(r);
        v
    };
    let longest = (0..cfg.ranges.len()).max_by_key(|&i| cfg.ranges[i].secs);
    std::thread::scope(|s| {
        let far = longest.map(|i| s.spawn(move || value(i, &cfg.ranges[i])));
        let mut ranges: Vec<Option<minijinja::Value>> = (cfg.ranges.iter().enumerate())
            .map(|(i, r)| (Some(i) != longest).then(|| value(i, r)))
            .collect();
        let mut status = Status::build(
            tracker,
            &source.catalog,
            cfg.now,
            cfg.staleness.global,
            cfg.recent,
            STATUS_LIST_LIMIT,
        );
        status.add_silences(&cfg.silences, &tracker.maintenance, cfg.now);
        status.judge_flapping(&tracker.judging, cfg.flap, cfg.now);
        let index_context = render::status_context(&source.clock, stats, &status);
        let index = render::render(env, "index.html", index_context.clone());
        let gateways = status.gateways.len();
        std::mem::forget((status, index_context));
        if let (Some(i), Some(far)) = (longest, far) {
            ranges[i] = Some(far.join().map_err(|_| Error::Thread("a history range"))?);
        }
        Ok((index?, ranges.into_iter().flatten().collect(), gateways))
    })
}

/// Ends the history page's second thread however its render ends (an
/// unwinding panic included), so that waiting for it never hangs.
struct EndSections<'a>(&'a render::Sections);

impl Drop for EndSections<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Writes one message in one write, ignoring a failure: `print!` and
/// `eprintln!` panic when the write fails (a pipe whose reader is gone, a
/// full disk under cron's `>>`), and webgen's pages matter more than its
/// messages.
fn say(w: &mut impl std::io::Write, args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    let _ = w.write_all(text.as_bytes()).and_then(|()| w.flush());
}
