//! The command line: one [`Config`] from one lexopt loop, with the help
//! text written by hand in [`HELP`].

use std::ffi::OsString;
use std::path::PathBuf;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::error::Error;
use crate::history::Range;
use logs::config;
use logs::damping::Damping;
use logs::inventory::Expected;
use logs::silence::Silence;
use logs::{Staleness, Thresholds};

pub(crate) const HELP: &str = "\
webgen: renders the ROC tunnel monitor's pages from the collector's CSV logs

USAGE:
    webgen --data DIR --out DIR [OPTIONS]
    webgen --suggest-inventory DURATION --data DIR [OPTIONS]

Reads events-*.csv and tunnels-*.csv in DIR and writes index.html (status
now) and history.html (last 24 h, 7 d, 30 d) into the output directory.
Both are self-contained: inline CSS and SVG, no JavaScript needed.

With an inventory (the [[tunnel]] entries of the config file), the status
page opens with what is wrong: each expected tunnel missing, broken, on a
wrong target or unknown (its gateway late or down), or \"All N expected
tunnels up\"; then a panel per ROC; the history page shows each ROC's
availability and outages.

OPTIONS:
    --config FILE     the monitoring host's config file (TOML, shared with the
                      collector): late, down, [[gateway]] thresholds, tz,
                      idle_after and the inventory (its keep_days, notify
                      and page_url are the collector's);
                      the flags below override it; a file that cannot be
                      read or is wrong is exit 2, FILE:LINE: what is wrong
                      [/etc/roc-tunnel-monitor/monitor.toml when it exists]
    --data DIR        the collector's log directory (empty: the pages say
                      there is no data yet; missing: the same, and one
                      warning on stderr naming it)
    --out DIR         where to write the pages (created if missing); each
                      page is written to a temporary file, then renamed
    --late DURATION   a gateway not heard for this long is late [150s]; one
                      that declares a period: after 2.5 periods
    --down DURATION   a gateway not heard for this long is down [10m]; one
                      that declares a period: after 10 periods
    --recent DURATION how far back 'went away recently' looks [24h]
    --idle-after DURATION
                      a tunnel whose every report for this long found no
                      connection on it is listed on the history page as a
                      candidate to close [7d]
    --range DURATION  add a history range ending now, e.g. 2h or 90d
                      (repeatable; 24h, 7d and 30d are always shown)
    --tz ZONE         IANA time zone for the pages, e.g. America/Chicago
                      [the host's]
    --templates DIR   use the templates in DIR (base.html, macros.html,
                      index.html, history.html, history-gateway.html: a
                      gateway's section of history.html, given only g;
                      missing ones are built in); DIR must exist
    --now TIME        take TIME as now: Unix seconds or RFC 3339
                      (for tests and replays of old logs) [the clock]
    --cache DIR       keep the state after the last closed UTC day here, so
                      that the next run reads only today's logs (created if
                      missing; one file; the pages are the same with and
                      without it; a cache that cannot be written is a
                      warning, never a failure) [OUT/.webgen-cache]
    --no-cache        read every day in view on every run
    --suggest-inventory DURATION
                      print, instead of writing pages, an inventory (the
                      config file's [[tunnel]] entries) of the -L forwards
                      up at least 80 % of the last DURATION (of the part
                      the logs cover), e.g. 7d, and up now; roc is set to
                      the account holding each: name the ROCs, then add
                      the entries to the config file
    -q, --quiet       print nothing on success (warnings still go to stderr)
    -h, --help        print this help
    -V, --version     print the version

DURATION is a number with an optional unit: s (default), m, h or d.

Malformed or truncated rows in the logs are skipped and counted on stderr;
they never stop the pages.

EXIT STATUS:
    0   pages written (even with skipped rows), or the inventory printed
    1   the data directory could not be listed or a page not written
    2   bad command line, unknown time zone, missing --templates DIR, or a
        config file that cannot be read or is wrong (FILE:LINE: what is wrong)
";

/// Everything one run needs.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub data: PathBuf,
    pub out: PathBuf,
    /// The thresholds: the global ones and the `[[gateway]]` overrides.
    pub staleness: Staleness,
    pub recent: u64,
    /// How long a tunnel must have been idle to be a candidate to close.
    pub idle_after: u64,
    /// In display order; the defaults first.
    pub ranges: Vec<Range>,
    pub tz: TimeZone,
    pub templates: Option<PathBuf>,
    /// Unix seconds.
    pub now: u64,
    pub quiet: bool,
    /// The expected tunnels of the config file (empty: no inventory).
    pub inventory: Vec<Expected>,
    /// The config file's silences (`[[silence]]`).
    pub silences: Vec<Silence>,
    /// The config file's `flap`: more state changes an hour than this
    /// mark an expected tunnel flapping.
    pub flap: u32,
    /// `--suggest-inventory`: print an inventory of the tunnels up over
    /// this many seconds instead of writing pages.
    pub suggest: Option<u64>,
    /// Where the checkpoint of the closed days lives (`cache`); `None`:
    /// no cache.
    pub cache: Option<PathBuf>,
}

/// What the command line asked for.
#[derive(Debug)]
pub(crate) enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

/// `150`, `150s`, `10m`, `24h`, `7d` to seconds (`logs::duration`, the
/// collector's syntax too).
pub(crate) fn parse_duration(flag: &str, s: &str) -> Result<u64, Error> {
    logs::duration::parse(s).map_err(|e| Error::Usage(format!("{flag} {e}")))
}

/// The label of a range: the largest whole unit, `24h` stays `24h`.
fn range_label(secs: u64) -> String {
    if secs.is_multiple_of(86_400) && secs > 86_400 {
        format!("{}d", secs / 86_400)
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Unix seconds or RFC 3339 to Unix seconds.
pub(crate) fn parse_now(s: &str) -> Result<u64, Error> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let ts: Timestamp = s.parse().map_err(|e| {
        Error::Usage(format!(
            "--now '{s}': not Unix seconds or an RFC 3339 time ({e})"
        ))
    })?;
    u64::try_from(ts.as_second()).map_err(|_| Error::Usage(format!("--now '{s}': before 1970")))
}

pub(crate) fn parse_tz(s: &str) -> Result<TimeZone, Error> {
    TimeZone::get(s).map_err(|e| Error::TimeZone {
        zone: s.to_string(),
        reason: format!(
            "not a time zone known here ({e}); give an IANA name such as America/Chicago, Europe/Zurich or UTC (`timedatectl list-timezones` lists them)"
        ),
    })
}

fn path(flag: &str, v: OsString) -> Result<PathBuf, Error> {
    if v.is_empty() {
        return Err(Error::Usage(format!("{flag} needs a directory, got ''")));
    }
    Ok(PathBuf::from(v))
}

fn string(flag: &str, v: OsString) -> Result<String, Error> {
    v.into_string()
        .map_err(|v| Error::Usage(format!("{flag} '{}': not UTF-8", v.to_string_lossy())))
}

/// What the command line says, before the config file fills the rest.
#[derive(Default)]
struct Flags {
    config: Option<PathBuf>,
    data: Option<PathBuf>,
    out: Option<PathBuf>,
    late: Option<u64>,
    down: Option<u64>,
    recent: Option<u64>,
    idle_after: Option<u64>,
    extra_ranges: Vec<u64>,
    tz: Option<TimeZone>,
    templates: Option<PathBuf>,
    now: Option<u64>,
    quiet: bool,
    suggest: Option<u64>,
    cache: Option<PathBuf>,
    no_cache: bool,
}

fn duration_value(parser: &mut lexopt::Parser, flag: &str) -> Result<u64, Error> {
    parse_duration(flag, &string(flag, parser.value()?)?)
}

/// The flags as given; `Err(Ok(command))` for help and version.
fn flags(args: impl IntoIterator<Item = OsString>) -> Result<Result<Flags, Command>, Error> {
    use lexopt::prelude::*;
    let mut f = Flags::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("config") => f.config = Some(path("--config", parser.value()?)?),
            Long("data") => f.data = Some(path("--data", parser.value()?)?),
            Long("out") => f.out = Some(path("--out", parser.value()?)?),
            Long("late") => f.late = Some(duration_value(&mut parser, "--late")?),
            Long("down") => f.down = Some(duration_value(&mut parser, "--down")?),
            Long("recent") => f.recent = Some(duration_value(&mut parser, "--recent")?),
            Long("idle-after") => {
                f.idle_after = Some(duration_value(&mut parser, "--idle-after")?);
            }
            Long("range") => {
                let secs = duration_value(&mut parser, "--range")?;
                if secs == 0 {
                    return Err(Error::Usage("--range '0': must be longer than zero".into()));
                }
                f.extra_ranges.push(secs);
            }
            Long("suggest-inventory") => {
                let secs = duration_value(&mut parser, "--suggest-inventory")?;
                if secs == 0 {
                    return Err(Error::Usage(
                        "--suggest-inventory '0': must be longer than zero, e.g. 7d".into(),
                    ));
                }
                f.suggest = Some(secs);
            }
            Long("tz") => f.tz = Some(parse_tz(&string("--tz", parser.value()?)?)?),
            Long("templates") => f.templates = Some(path("--templates", parser.value()?)?),
            Long("now") => f.now = Some(parse_now(&string("--now", parser.value()?)?)?),
            Long("cache") => f.cache = Some(path("--cache", parser.value()?)?),
            Long("no-cache") => f.no_cache = true,
            Short('q') | Long("quiet") => f.quiet = true,
            Short('h') | Long("help") => return Ok(Err(Command::Help)),
            Short('V') | Long("version") => return Ok(Err(Command::Version)),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(Ok(f))
}

pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, Error> {
    let f = match flags(args)? {
        Ok(f) => f,
        Err(command) => return Ok(command),
    };
    let file = match config::locate(f.config.as_deref()) {
        Some(p) => config::load(&p).map_err(Error::Config)?,
        None => config::Config::default(),
    };
    let late = f.late.or(file.late).unwrap_or(Thresholds::DEFAULT.late);
    let down = f.down.or(file.down).unwrap_or(Thresholds::DEFAULT.down);
    let thresholds = Thresholds::new(late, down).map_err(|e| {
        let from_file =
            (f.late.is_none() && file.late.is_some()) || (f.down.is_none() && file.down.is_some());
        match from_file {
            true => Error::Usage(format!("{e} (late or down from {})", file.path.display())),
            false => Error::Usage(format!("--{e}")),
        }
    })?;
    let mut ranges: Vec<Range> = Vec::new();
    for secs in [86_400, 7 * 86_400, 30 * 86_400]
        .into_iter()
        .chain(f.extra_ranges)
    {
        if !ranges.iter().any(|r| r.secs == secs) {
            ranges.push(Range {
                label: range_label(secs),
                secs,
            });
        }
    }
    if let Some(dir) = &f.templates
        && !dir.is_dir()
    {
        return Err(Error::Usage(format!(
            "--templates {}: no such directory (leave --templates out for the built-in templates)",
            dir.display()
        )));
    }
    let data = f
        .data
        .ok_or_else(|| Error::Usage("missing --data DIR".into()))?;
    let out = match (f.out, f.suggest) {
        (Some(out), _) => out,
        (None, Some(_)) => PathBuf::new(),
        (None, None) => return Err(Error::Usage("missing --out DIR".into())),
    };
    let tz = match (f.tz, &file.tz) {
        (Some(tz), _) => tz,
        (None, Some(name)) => parse_tz(name)?,
        (None, None) => TimeZone::try_system().unwrap_or(TimeZone::UTC),
    };
    let now = match f.now {
        Some(n) => n,
        None => u64::try_from(Timestamp::now().as_second()).unwrap_or(0),
    };
    if f.no_cache && f.cache.is_some() {
        return Err(Error::Usage(
            "--cache and --no-cache: give one or the other".into(),
        ));
    }
    let cache = match (f.no_cache, f.cache) {
        (true, _) => None,
        (false, Some(dir)) => Some(dir),
        (false, None) => Some(out.join(".webgen-cache")),
    };
    Ok(Command::Run(Box::new(Config {
        data,
        out,
        staleness: Staleness::new(thresholds, &file.gateways),
        recent: f.recent.unwrap_or(86_400),
        idle_after: f
            .idle_after
            .or(file.idle_after)
            .unwrap_or(logs::usage::DEFAULT_IDLE_AFTER),
        ranges,
        tz,
        templates: f.templates,
        now,
        quiet: f.quiet,
        inventory: file.tunnels,
        silences: file.silences,
        flap: file.flap.unwrap_or(Damping::DEFAULT.flap),
        suggest: f.suggest,
        cache,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("--late", "150").unwrap(), 150);
        assert_eq!(parse_duration("--late", "150s").unwrap(), 150);
        assert_eq!(parse_duration("--down", "10m").unwrap(), 600);
        assert_eq!(parse_duration("--range", "90d").unwrap(), 90 * 86_400);
        for bad in ["", "m", "10x", "-5", "1.5h", "99999999999999999999d"] {
            let e = parse_duration("--late", bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--late '{bad}'")), "{e}");
        }
    }

    #[test]
    fn now_both_ways() {
        assert_eq!(parse_now("1764000000").unwrap(), 1_764_000_000);
        assert_eq!(parse_now("2025-11-24T16:00:00Z").unwrap(), 1_764_000_000);
        assert!(parse_now("yesterday").is_err());
    }

    #[test]
    fn ranges_and_defaults() {
        let Command::Run(c) =
            parse(args("--data d --out o --range 2h --range 7d --now 5")).unwrap()
        else {
            panic!()
        };
        let labels: Vec<&str> = c.ranges.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["24h", "7d", "30d", "2h"]);
        assert_eq!(c.staleness.global, Thresholds::default());
        assert_eq!(c.idle_after, logs::usage::DEFAULT_IDLE_AFTER);
        assert_eq!(c.now, 5);
        let Command::Run(c) = parse(args("--data d --out o --idle-after 2d")).unwrap() else {
            panic!()
        };
        assert_eq!(c.idle_after, 2 * 86_400);
        assert!(
            parse(args("--out o"))
                .unwrap_err()
                .to_string()
                .contains("--data")
        );
        assert!(parse(args("--data d --out o --late 10m --down 5m")).is_err());
        assert!(matches!(
            parse(args("--data d --out o --tz Mars/Olympus")),
            Err(Error::TimeZone { .. })
        ));
    }
}
