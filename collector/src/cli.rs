//! The command line: one [`Args`] struct, a `const HELP`, and a lexopt loop.
//!
//! Defaults are plain values before the loop; the required `--data` and
//! `--key-file` are checked at the end. Every mistake is one [`Error::Usage`]
//! line naming the flag and the bad value.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use logs::Thresholds;
use logs::config::Config;
use logs::damping::Damping;
use logs::route::Route;

use crate::error::Error;

pub(crate) const HELP: &str = "\
collector: receives the gateways' signed UDP reports, writes them to CSV logs
and serves status, metrics, the logs and the site over HTTP.

Usage:
  collector --data DIR --udp ADDR:PORT --http ADDR:PORT --key-file FILE [--site DIR]

Options:
  --data DIR          where the CSV logs and the lock file live (required; its
                      parent folder must exist)
  --key-file FILE     shared secret, as text (white space around it ignored);
                      must not be readable by group or others (required)
  --udp ADDR:PORT     where reports arrive [default: 127.0.0.1:9555, this
                      host only; 0.0.0.0:9555 for gateways elsewhere]; a
                      host name (localhost:9555) takes its first address
  --http ADDR:PORT    status.json, /metrics, /logs/ and the site
                      [default: 127.0.0.1:9556]; keep it on loopback and put
                      a reverse proxy in front when it must face a network
  --site DIR          serve the files of DIR at / (e.g. webgen's output)
  --config FILE       the monitoring host's config file, shared with webgen:
                      late, down, keep_days, notify, page_url, thresholds
                      of single gateways ([[gateway]]) and the inventory
                      of expected tunnels ([[tunnel]]); the flags below
                      win over it [default: /etc/roc-tunnel-monitor/
                      monitor.toml when it exists]. An edited file is
                      loaded within 10 s (inventory, late, down,
                      [[gateway]]); a bad edit is refused and logged, the
                      last good one stays
  --late DURATION     a gateway silent this long is late [default: 150s];
                      one that declares a period (gateway-client --watch)
                      is late after 2.5 periods instead
  --down DURATION     a gateway silent this long is down [default: 10m];
                      one that declares a period: after 10 periods
  --hold DURATION     a tunnel alert is sent once its state held this long;
                      a change back before cancels it [default: 30s]
  --flap N            a tunnel that changes state more than N times in an
                      hour raises one tunnel_flapping alert, then is quiet
                      until steady for an hour [default: 4]
  --keep-days N       delete log files older than N days; 0 keeps all
                      [default: 90]
  --max-skew DURATION refuse datagrams whose send time is further than this
                      from our clock (stale) [default: 5m]
  --on-collect CMD    run CMD with sh -c after accepted reports are written
                      and when a gateway goes late or down (typically
                      webgen): at once when idle; never two at once, starts
                      at least 5 s apart, and once more after a burst
  --notify CMD        run CMD with sh -c on every alert (replaces the config
                      file's notify routes), with ROCTM_EVENT
                      (gateway_late, gateway_down, gateway_up, tunnel_up,
                      tunnel_down), ROCTM_GATEWAY, ROCTM_TUNNEL, ROCTM_TIME,
                      ROCTM_AGE_SECONDS in its environment; killed after 30 s
  --stop              stop the collector running on --data DIR (SIGTERM to
                      the pid in its lock file) and wait until it is gone;
                      nothing running there is not an error
  -h, --help          print this help
  -V, --version       print the version

DURATION is a number with an optional unit: s (default), m, h or d, as in
webgen's options: 150, 150s, 10m, 1h.

A second collector started on the same --data exits 0 at once without a word,
so cron may start it every minute (scripts/crontab.collector has the full
line; --udp 0.0.0.0:9555 so that the gateways reach it):
  * * * * * collector --data /var/lib/roc-tunnel-monitor --udp 0.0.0.0:9555 --key-file /etc/roc-tunnel-monitor/key --site /var/lib/roc-tunnel-monitor/site

Exit status:
  0  stopped by SIGTERM or SIGINT (the batch in flight written and acked
     first) or a signed shutdown, or another collector already runs, or help
  1  a failure while running (the HTTP server died, every write to the
     logs failed for 300 s other than for a full disk); cron starting it
     again is the cure
  2  a bad option, config file, key file, data directory or address: fix what the
     message names (a data directory or key file of another account:
     chown it to the collector's account)
";

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Run(Box<Args>),
    /// `--stop --data DIR`: stop the collector running on DIR.
    Stop(PathBuf),
    Help,
    Version,
}

/// Every option, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub data: PathBuf,
    pub key_file: PathBuf,
    pub udp: SocketAddr,
    pub http: SocketAddr,
    pub site: Option<PathBuf>,
    pub thresholds: Thresholds,
    pub keep_days: u64,
    pub max_skew: u64,
    pub on_collect: Option<String>,
    /// Notify routes, labelled for `/metrics`: `--notify CMD` (`flag`),
    /// else the config file's `notify` (1, 2, ... in file order).
    pub notify: Vec<(String, Route)>,
    /// The config file as loaded at start (the inventory, `page_url`).
    pub config: Option<Config>,
    /// `--late` and `--down` as given on the command line, which win over
    /// the config file, also when it is edited.
    pub late_flag: Option<u64>,
    pub down_flag: Option<u64>,
    /// The damping of tunnel alerts: flags, else the file, else defaults.
    pub damping: Damping,
    pub hold_flag: Option<u64>,
    pub flap_flag: Option<u32>,
}

/// The damping: the flags', else the config file's, else the defaults.
pub(crate) fn damping(hold: Option<u64>, flap: Option<u32>, config: Option<&Config>) -> Damping {
    Damping {
        hold: hold
            .or(config.and_then(|c| c.hold))
            .unwrap_or(Damping::DEFAULT.hold),
        flap: flap
            .or(config.and_then(|c| c.flap))
            .unwrap_or(Damping::DEFAULT.flap),
    }
}

/// The thresholds: the flags', else the config file's, else the defaults,
/// checked together.
pub(crate) fn thresholds(
    late_flag: Option<u64>,
    down_flag: Option<u64>,
    config: Option<&Config>,
) -> Result<Thresholds, String> {
    Thresholds::new(
        late_flag
            .or(config.and_then(|c| c.late))
            .unwrap_or(Thresholds::DEFAULT.late),
        down_flag
            .or(config.and_then(|c| c.down))
            .unwrap_or(Thresholds::DEFAULT.down),
    )
}

/// `ADDR:PORT`, or `HOST:PORT` with a host name that resolves here (the
/// first address it resolves to, e.g. 127.0.0.1 for `localhost`).
fn parse_addr(flag: &str, value: OsString) -> Result<SocketAddr, Error> {
    use std::net::ToSocketAddrs;
    let s = value.to_string_lossy();
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let resolved = if s.contains(':') {
        s.to_socket_addrs().ok().and_then(|mut a| a.next())
    } else {
        None
    };
    resolved.ok_or_else(|| {
        Error::Usage(format!(
            "{flag} '{s}' is not ADDR:PORT or HOST:PORT with a host name known here (for example 0.0.0.0:9555, 127.0.0.1:9556 or [::1]:9555)"
        ))
    })
}

fn parse_secs(flag: &str, value: OsString, min: u64, max: u64) -> Result<u64, Error> {
    let s = value.to_string_lossy();
    match s.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::Usage(format!(
            "{flag} '{s}' is not a whole number from {min} to {max}"
        ))),
    }
}

/// A duration (`150`, `150s`, `10m`, ...) from `min` to `max` seconds.
fn parse_duration(flag: &str, value: OsString, min: u64, max: u64) -> Result<u64, Error> {
    let s = value.to_string_lossy();
    match logs::duration::parse(&s) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(_) => Err(Error::Usage(format!(
            "{flag} '{s}': must be from {min}s to {max}s"
        ))),
        Err(e) => Err(Error::Usage(format!("{flag} {e}"))),
    }
}

fn parse_cmd(flag: &str, value: OsString) -> Result<String, Error> {
    match value.into_string() {
        Ok(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(Error::Usage(format!(
            "{flag} needs a non-empty UTF-8 command"
        ))),
    }
}

/// Parses the arguments after the program name.
pub(crate) fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Error> {
    use lexopt::prelude::*;
    let mut data = None;
    let mut key_file = None;
    let mut udp: SocketAddr = "127.0.0.1:9555".parse().expect("literal address");
    let mut http: SocketAddr = "127.0.0.1:9556".parse().expect("literal address");
    let mut site = None;
    let mut late_flag = None;
    let mut down_flag = None;
    let mut keep_days = None;
    let mut config_flag: Option<PathBuf> = None;
    let mut stop = false;
    let mut hold_flag = None;
    let mut flap_flag = None;
    let mut max_skew = 300;
    let mut on_collect = None;
    let mut notify = None;

    const DAY: u64 = 86_400;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("data") => data = Some(PathBuf::from(parser.value()?)),
            Long("key-file") => key_file = Some(PathBuf::from(parser.value()?)),
            Long("udp") => udp = parse_addr("--udp", parser.value()?)?,
            Long("http") => http = parse_addr("--http", parser.value()?)?,
            Long("site") => site = Some(PathBuf::from(parser.value()?)),
            Long("late") => {
                late_flag = Some(parse_duration("--late", parser.value()?, 1, 30 * DAY)?)
            }
            Long("down") => {
                down_flag = Some(parse_duration("--down", parser.value()?, 1, 365 * DAY)?)
            }
            Long("keep-days") => {
                keep_days = Some(parse_secs("--keep-days", parser.value()?, 0, 100_000)?)
            }
            Long("config") => config_flag = Some(PathBuf::from(parser.value()?)),
            Long("stop") => stop = true,
            Long("hold") => hold_flag = Some(parse_duration("--hold", parser.value()?, 0, DAY)?),
            Long("flap") => {
                flap_flag = Some(parse_secs("--flap", parser.value()?, 1, 1000)? as u32)
            }
            Long("max-skew") => max_skew = parse_duration("--max-skew", parser.value()?, 1, DAY)?,
            Long("on-collect") => on_collect = Some(parse_cmd("--on-collect", parser.value()?)?),
            Long("notify") => notify = Some(parse_cmd("--notify", parser.value()?)?),
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if stop {
        return match data {
            Some(d) => Ok(Command::Stop(d)),
            None => Err(Error::Usage(
                "--stop needs --data DIR, the running collector's".into(),
            )),
        };
    }
    let config = match logs::config::locate(config_flag.as_deref()) {
        Some(path) => Some(logs::config::load(&path).map_err(Error::Config)?),
        None => None,
    };
    let notify: Vec<(String, Route)> = match notify {
        Some(cmd) => vec![("flag".to_string(), Route::all(cmd))],
        None => config
            .iter()
            .flat_map(|c| c.notify.iter().cloned())
            .enumerate()
            .map(|(i, r)| ((i + 1).to_string(), r))
            .collect(),
    };
    let keep_days = keep_days
        .or_else(|| config.as_ref().and_then(|c| c.keep_days))
        .unwrap_or(90);
    let thresholds = thresholds(late_flag, down_flag, config.as_ref()).map_err(|e| {
        match (&config, late_flag.is_some() || down_flag.is_some()) {
            (Some(c), false) => Error::Usage(format!("{}: {e}", c.path.display())),
            _ => Error::Usage(format!("--{e}")),
        }
    })?;
    let damp = damping(hold_flag, flap_flag, config.as_ref());
    Ok(Command::Run(Box::new(Args {
        data: data.ok_or_else(|| Error::Usage("missing --data DIR".into()))?,
        key_file: key_file.ok_or_else(|| Error::Usage("missing --key-file FILE".into()))?,
        udp,
        http,
        site,
        thresholds,
        keep_days,
        max_skew,
        on_collect,
        notify,
        config,
        late_flag,
        down_flag,
        damping: damp,
        hold_flag,
        flap_flag,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, Error> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn defaults_are_loopback() {
        let Command::Run(a) = parse(&["--data", "d", "--key-file", "k"]).unwrap() else {
            panic!("not run")
        };
        assert_eq!(a.udp.to_string(), "127.0.0.1:9555");
        assert_eq!(a.http.to_string(), "127.0.0.1:9556");
        assert_eq!(
            (
                a.thresholds.late,
                a.thresholds.down,
                a.keep_days,
                a.max_skew
            ),
            (150, 600, 90, 300)
        );
    }

    #[test]
    fn mistakes_name_the_flag() {
        for (args, want) in [
            (&["--key-file", "k"][..], "missing --data"),
            (&["--data", "d"][..], "missing --key-file"),
            (
                &["--data", "d", "--key-file", "k", "--udp", "9555"][..],
                "--udp '9555'",
            ),
            (
                &["--data", "d", "--key-file", "k", "--late", "-3"][..],
                "--late '-3'",
            ),
            (
                &["--data", "d", "--key-file", "k", "--late", "700"][..],
                "must be longer",
            ),
            (
                &["--data", "d", "--key-file", "k", "--down", "10x"][..],
                "--down '10x': unit must be",
            ),
            (&["--bogus"][..], "--bogus"),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    /// The same syntax as webgen's (issue: `collector --late 10m` was refused).
    #[test]
    fn late_and_down_take_durations_like_webgen() {
        let Command::Run(a) = parse(&[
            "--data",
            "d",
            "--key-file",
            "k",
            "--late",
            "10m",
            "--down",
            "1h",
            "--max-skew",
            "2m",
        ])
        .unwrap() else {
            panic!("not run")
        };
        assert_eq!(
            (a.thresholds.late, a.thresholds.down, a.max_skew),
            (600, 3600, 120)
        );
    }

    #[test]
    fn a_host_name_resolves() {
        let Command::Run(a) =
            parse(&["--data", "d", "--key-file", "k", "--udp", "localhost:19877"]).unwrap()
        else {
            panic!("not run")
        };
        assert!(a.udp.ip().is_loopback(), "{}", a.udp);
        assert_eq!(a.udp.port(), 19877);
        let e = parse(&[
            "--data",
            "d",
            "--key-file",
            "k",
            "--udp",
            "no-such-host.invalid:1",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("no-such-host.invalid:1"), "{e}");
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&["-h"]).unwrap(), Command::Help);
        assert_eq!(parse(&["-V"]).unwrap(), Command::Version);
    }
}
