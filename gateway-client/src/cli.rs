//! The command line (lexopt) and the optional config file.
//!
//! The options of the original tool stay as operators know them: `-a HOST`
//! and `-p PORT` choose the collector, `-b` sends a heartbeat, `-m TEXT` a
//! message, `-s` a shutdown. `-a` may be repeated (and `address` in the
//! config may be a comma-separated list): every collector named gets every
//! report. A config file (`gateway-client.conf` beside the binary, or
//! `--config FILE`) holds `key = value` lines for the long options, so a
//! crontab line can stay short; the command line wins.

use std::ffi::OsString;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Where the collector listens unless told otherwise.
pub(crate) const DEFAULT_ADDRESS: &str = "127.0.0.1";
pub(crate) const DEFAULT_PORT: u16 = 9555;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Watch mode: time between two looks at the processes.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Watch mode: the longest time between two reports.
pub(crate) const DEFAULT_EVERY: Duration = Duration::from_secs(30);
/// Name of the config and key files looked for beside the binary.
pub(crate) const CONFIG_NAME: &str = "gateway-client.conf";
pub(crate) const KEY_NAME: &str = "gateway-client.key";

pub(crate) const HELP: &str = "\
gateway-client: report this gateway's SSH tunnels to the ROC tunnel monitor

USAGE:
    gateway-client [OPTIONS]          report the tunnels found in `ps auxww`, once
    gateway-client --watch [OPTIONS]  keep watching: report each change at once
    gateway-client -b                 send a heartbeat
    gateway-client -m TEXT            send an operator's message
    gateway-client -s                 ask the collector to shut down
    gateway-client --maintenance DURATION -m REASON
                                      silence this gateway's alerts for DURATION

OPTIONS:
    -a HOST[:PORT]      a collector; repeat it to deliver to several [default: 127.0.0.1,
                        or `address` in the config]. IPv6: [ADDR]:PORT, or ADDR alone
    -p PORT             collector UDP port, for each -a given without one
                        [default: 9555, or `port` in the config]
    -b                  send a heartbeat instead of a report
    -m TEXT             send TEXT as a message instead of a report
    -s                  send a (signed) shutdown request to the collector
    --maintenance DURATION
                        silence this gateway's alerts for DURATION (`90s`, `30m`,
                        `2h`, `1d`, or seconds) from now, for planned work; -m says
                        why (required, shown on the pages); `0` ends it early
    --watch             keep running and report changes at once (see WATCH MODE)
    --interval SECS     watch: time between two looks at the processes
                        [default: 2, or `interval` in the config]
    --every SECS        watch: the longest time between two reports
                        [default: 30, or `every` in the config]
    --ps-file FILE      parse a saved `ps aux` capture instead of running ps ('-' = stdin)
    --dry-run           find the tunnels but send nothing
    --json              print one JSON object per tunnel, one per line
    --name NAME         gateway name [default: this host's name]
    --key-file FILE     shared key (mode 600) [default: gateway-client.key beside the binary]
    --timeout SECS      give up when not acknowledged within SECS [default: 10]
    --probe             also check that a VNC server answers through each VNC forward
    --config FILE       read defaults from FILE [default: gateway-client.conf beside the binary, if any]
    -q, --quiet         print nothing on success (for cron)
    -h, --help          print this help
    -V, --version       print the version

CONFIG FILE:
    `key = value` lines, `#` starts a comment. Keys: address, port, name,
    key-file, timeout, probe (true/false), interval, every. `address` may
    list several collectors, comma-separated, each HOST or HOST:PORT
    ([ADDR]:PORT for IPv6), e.g. `address = mon-a.example, mon-b.example:9556`.
    Relative paths are taken from the config file's folder.

SEVERAL COLLECTORS:
    Every report goes to every collector named (-a repeated, or the list in
    `address`), at the same time; each one that does not acknowledge is
    named on stderr, and the exit status is 0 only when all acknowledged.

WATCH MODE:
    For the crontab line `* * * * * gateway-client --watch -q`: cron starts
    it, and starts it again within a minute after a crash or a reboot. A
    lock file beside the key file (gateway-client-watch.NAME.lock) keeps one
    running per gateway name: a second start exits 0 at once, silently.
    Every --interval it reads /proc (no ps), and it sends a report at once
    when the tunnels change (one appears or goes, starts or stops listening,
    its number of connections changes), and at least every --every. Each
    report declares a period of --every rounded up to whole seconds: the longest
    the gateway will stay silent (the collector judges it late after 2.5
    periods). A collector that does not answer is named once on stderr, and
    once more when it answers again; meanwhile the client keeps watching and
    sends it the current state, never a backlog. SIGTERM or SIGINT stop it
    (exit 0); so does the replacement of its binary, config or key file, and
    cron then starts the new one. With --probe the VNC check runs before
    each report, not at every look.

EXIT STATUS:
    0   the collector acknowledged everything (or --dry-run found what it found);
        watch mode: stopped by a signal, already running, or its files replaced
    1   a collector did not acknowledge: not running, wrong key, network, timeout
    2   bad command line or config file, or a message too long to send
    3   local failure: key file, running ps, reading the capture; watch mode:
        the lock file, or /proc unreadable at start
";

/// What to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Report,
    Heartbeat,
    Message(String),
    Shutdown,
    /// Silence this gateway's alerts for `seconds` (0 ends a silence).
    Maintenance {
        seconds: u64,
        reason: String,
    },
}

/// One collector as written: a host, and the port given with it if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

/// One collector to deliver to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Collector {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl std::fmt::Display for Collector {
    /// `host:port`, `[v6]:port`: as `-a` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Seconds as written on the command line (`2`, `0.3`, `1.25`), without
/// float formatting (which would weigh on the static binary).
pub(crate) fn secs_text(d: Duration) -> String {
    let ms = d.subsec_millis();
    if ms == 0 {
        return d.as_secs().to_string();
    }
    let frac = format!("{ms:03}");
    format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
}

/// Watch mode's timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Watch {
    pub(crate) interval: Duration,
    pub(crate) every: Duration,
}

impl Watch {
    /// The period each report declares: the longest the gateway stays
    /// silent, `every` rounded up to whole seconds. The loop wakes for the
    /// forced report `every` after the one before; the time a look and a
    /// send take, a retransmission and the collector's whole seconds are
    /// covered by the judging's margin (late after 2.5 periods), so that a
    /// watching gateway that dies shows late 75 s after its last report
    /// with the default `--every 30`.
    pub(crate) fn period(&self) -> u32 {
        let whole = self.every.as_secs() + u64::from(self.every.subsec_nanos() > 0);
        u32::try_from(whole).unwrap_or(u32::MAX)
    }
}

/// The settled options: command line over config file over defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) mode: Mode,
    /// At least one.
    pub(crate) collectors: Vec<Collector>,
    pub(crate) ps_file: Option<PathBuf>,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
    pub(crate) name: Option<String>,
    pub(crate) key_file: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) probe: bool,
    pub(crate) quiet: bool,
    /// `--watch`, with its timing.
    pub(crate) watch: Option<Watch>,
    /// The config file read, if any (watch mode stops when it is replaced).
    pub(crate) config: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Action {
    Help,
    Version,
    Run(Box<Args>),
}

/// Options as given, before defaults fill the gaps.
#[derive(Debug, Default)]
struct Given {
    addresses: Option<Vec<Target>>,
    port: Option<u16>,
    name: Option<String>,
    key_file: Option<PathBuf>,
    timeout: Option<Duration>,
    probe: Option<bool>,
    interval: Option<Duration>,
    every: Option<Duration>,
}

/// What only the command line gives.
#[derive(Debug, Default)]
struct Flags {
    given: Given,
    modes: Vec<Mode>,
    ps_file: Option<PathBuf>,
    dry_run: bool,
    json: bool,
    quiet: bool,
    watch: bool,
    /// `--maintenance`, in seconds.
    maintenance: Option<u64>,
    config: Option<PathBuf>,
}

const OPTION_NAMES: &[&str] = &[
    "-a",
    "-p",
    "-b",
    "-m",
    "-s",
    "--maintenance",
    "-q",
    "-h",
    "-V",
    "--ps-file",
    "--dry-run",
    "--json",
    "--name",
    "--key-file",
    "--timeout",
    "--probe",
    "--config",
    "--quiet",
    "--help",
    "--version",
    "--watch",
    "--interval",
    "--every",
];

/// lexopt's `value()` takes the next argument whatever it is, so `-m -a host`
/// would send the message "-a". Refuse a value that is one of our options.
fn value(parser: &mut lexopt::Parser, flag: &str) -> Result<String, Error> {
    let v = parser.value().map_err(|e| Error::Usage(e.to_string()))?;
    let v = v
        .into_string()
        .map_err(|v| Error::Usage(format!("{flag}: {v:?} is not valid UTF-8")))?;
    if OPTION_NAMES.contains(&v.as_str()) {
        return Err(Error::Usage(format!(
            "{flag} needs a value, but the next argument is the option {v}"
        )));
    }
    Ok(v)
}

pub(crate) fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{what}: '{s}' is not a port number (1-65535)")),
    }
}

pub(crate) fn parse_timeout(s: &str, what: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => Ok(Duration::from_secs_f64(t)),
        _ => Err(format!(
            "{what}: '{s}' is not a number of seconds between 0 and 3600"
        )),
    }
}

/// A number of seconds from `min` to `max`.
fn parse_seconds(s: &str, what: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    match s.trim().parse::<f64>().map(Duration::try_from_secs_f64) {
        Ok(Ok(t)) if t >= min && t <= max => Ok(t),
        _ => Err(format!(
            "{what}: '{s}' is not a number of seconds from {} to {}",
            secs_text(min),
            secs_text(max)
        )),
    }
}

fn parse_interval(s: &str, what: &str) -> Result<Duration, String> {
    // Below a tenth of a second the loop would be busy for nothing.
    parse_seconds(
        s,
        what,
        Duration::from_millis(100),
        Duration::from_secs(3600),
    )
}

fn parse_every(s: &str, what: &str) -> Result<Duration, String> {
    parse_seconds(s, what, Duration::from_secs(1), Duration::from_secs(86_400))
}

fn parse_bool(s: &str, what: &str) -> Result<bool, String> {
    match s.trim() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("{what}: '{s}' is not true or false")),
    }
}

/// One collector as written: `HOST`, `HOST:PORT`, `[IPV6]:PORT`, `[IPV6]`
/// or a bare IPv6 address (`::1`, which has no room for a port).
pub(crate) fn parse_target(s: &str, what: &str) -> Result<Target, String> {
    let s = s.trim();
    let bad = |why: &str| Err(format!("{what}: '{s}' {why}"));
    if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return bad("has no closing ']' (write [ADDR]:PORT)");
        };
        if host.parse::<Ipv6Addr>().is_err() {
            return bad("holds no IPv6 address between the brackets");
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(parse_port(p, what)?),
                None => return bad("has text after ']' that is not :PORT"),
            },
        };
        return Ok(Target {
            host: host.to_string(),
            port,
        });
    }
    match s.matches(':').count() {
        0 if !s.is_empty() => Ok(Target {
            host: s.to_string(),
            port: None,
        }),
        0 => bad("is empty: give a host name or address"),
        1 => {
            let (host, port) = s.split_once(':').unwrap_or((s, ""));
            if host.is_empty() {
                return bad("has no host before ':'");
            }
            Ok(Target {
                host: host.to_string(),
                port: Some(parse_port(port, what)?),
            })
        }
        _ if s.parse::<Ipv6Addr>().is_ok() => Ok(Target {
            host: s.to_string(),
            port: None,
        }),
        _ => bad("is neither HOST:PORT nor an IPv6 address (write [ADDR]:PORT)"),
    }
}

/// A comma-separated list of collectors (the config's `address`).
fn parse_targets(s: &str, what: &str) -> Result<Vec<Target>, String> {
    s.split(',').map(|t| parse_target(t, what)).collect()
}

impl Flags {
    /// The mode, checked against the options that go with it.
    fn mode(&mut self) -> Result<Mode, Error> {
        if let Some(seconds) = self.maintenance {
            self.modes = maintenance_mode(seconds, std::mem::take(&mut self.modes))?;
        }
        if self.modes.len() > 1 {
            return Err(Error::Usage(
                "give at most one of -b, -m, -s and --maintenance".into(),
            ));
        }
        let mode = self.modes.pop().unwrap_or(Mode::Report);
        if mode != Mode::Report && (self.ps_file.is_some() || self.json) {
            return Err(Error::Usage(
                "--ps-file and --json go with a report, not with -b, -m, -s or --maintenance"
                    .into(),
            ));
        }
        if self.watch && (mode != Mode::Report || self.ps_file.is_some() || self.json) {
            return Err(Error::Usage(
                "--watch reports the live tunnels: it goes with neither -b, -m, -s, --maintenance, --ps-file nor --json".into(),
            ));
        }
        let g = &self.given;
        if !self.watch && (g.interval.is_some() || g.every.is_some()) {
            return Err(Error::Usage(
                "--interval and --every go with --watch".into(),
            ));
        }
        Ok(mode)
    }
}

/// Parses the command line (without the program name).
pub(crate) fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Action, Error> {
    use lexopt::prelude::*;
    let usage = Error::Usage;
    let mut parser = lexopt::Parser::from_args(args);
    let mut flags = Flags::default();
    while let Some(arg) = parser.next().map_err(|e| usage(e.to_string()))? {
        let g = &mut flags.given;
        match arg {
            Short('a') => {
                let t = parse_target(&value(&mut parser, "-a")?, "-a").map_err(usage)?;
                g.addresses.get_or_insert_with(Vec::new).push(t);
            }
            Short('p') => {
                g.port = Some(parse_port(&value(&mut parser, "-p")?, "-p").map_err(usage)?)
            }
            Short('b') => flags.modes.push(Mode::Heartbeat),
            Short('m') => {
                let text = value(&mut parser, "-m")?;
                if text.trim().is_empty() {
                    return Err(usage("-m needs a message to send, got an empty one".into()));
                }
                flags.modes.push(Mode::Message(text))
            }
            Short('s') => flags.modes.push(Mode::Shutdown),
            Long("maintenance") => {
                let v = value(&mut parser, "--maintenance")?;
                flags.maintenance = Some(parse_duration(&v, "--maintenance").map_err(usage)?);
            }
            Long("watch") => flags.watch = true,
            Long("interval") => {
                let v = value(&mut parser, "--interval")?;
                g.interval = Some(parse_interval(&v, "--interval").map_err(usage)?)
            }
            Long("every") => {
                let v = value(&mut parser, "--every")?;
                g.every = Some(parse_every(&v, "--every").map_err(usage)?)
            }
            Long("ps-file") => {
                flags.ps_file = Some(PathBuf::from(value(&mut parser, "--ps-file")?))
            }
            Long("dry-run") => flags.dry_run = true,
            Long("json") => flags.json = true,
            Long("name") => g.name = Some(value(&mut parser, "--name")?),
            Long("key-file") => g.key_file = Some(value(&mut parser, "--key-file")?.into()),
            Long("timeout") => {
                let v = value(&mut parser, "--timeout")?;
                g.timeout = Some(parse_timeout(&v, "--timeout").map_err(usage)?)
            }
            Long("probe") => g.probe = Some(true),
            Long("config") => flags.config = Some(PathBuf::from(value(&mut parser, "--config")?)),
            Short('q') | Long("quiet") => flags.quiet = true,
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('V') | Long("version") => return Ok(Action::Version),
            _ => return Err(usage(arg.unexpected().to_string())),
        }
    }
    settle(flags)
}

/// The options settled: command line over config file over defaults.
fn settle(mut flags: Flags) -> Result<Action, Error> {
    let mode = flags.mode()?;

    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let (file, required) = match flags.config.take() {
        Some(p) => (Some(p), true),
        None => (exe_dir.as_ref().map(|d| d.join(CONFIG_NAME)), false),
    };
    let (from_file, config) = match file {
        Some(path) if required || path.is_file() => (read_config(&path)?, Some(path)),
        _ => (Given::default(), None),
    };
    let key_default = exe_dir
        .map(|d| d.join(KEY_NAME))
        .unwrap_or_else(|| PathBuf::from(KEY_NAME));
    let given = flags.given;
    let watch = if flags.watch {
        Some(settle_watch(&given, &from_file)?)
    } else {
        None
    };
    Ok(Action::Run(Box::new(Args {
        mode,
        collectors: settle_collectors(&given, &from_file)?,
        ps_file: flags.ps_file,
        dry_run: flags.dry_run,
        json: flags.json,
        name: given.name.or(from_file.name),
        key_file: given.key_file.or(from_file.key_file).unwrap_or(key_default),
        timeout: given
            .timeout
            .or(from_file.timeout)
            .unwrap_or(DEFAULT_TIMEOUT),
        probe: given.probe.or(from_file.probe).unwrap_or(false),
        quiet: flags.quiet,
        watch,
        config,
    })))
}

/// The collectors: `-a` (all of them) over the config's `address`, each
/// with its own port, else `-p`, else the config's `port`, else 9555. The
/// same one twice is refused.
fn settle_collectors(given: &Given, file: &Given) -> Result<Vec<Collector>, Error> {
    let default = [Target {
        host: DEFAULT_ADDRESS.to_string(),
        port: None,
    }];
    let targets = given
        .addresses
        .as_deref()
        .or(file.addresses.as_deref())
        .unwrap_or(&default);
    let port = given.port.or(file.port).unwrap_or(DEFAULT_PORT);
    let mut out: Vec<Collector> = Vec::new();
    for t in targets {
        let c = Collector {
            host: t.host.clone(),
            port: t.port.unwrap_or(port),
        };
        if out.contains(&c) {
            return Err(Error::Usage(format!(
                "the collector {c} is named twice (-a or `address` in the config): name each once"
            )));
        }
        out.push(c);
    }
    Ok(out)
}

/// `--interval` and `--every` over the config's `interval` and `every`.
fn settle_watch(given: &Given, file: &Given) -> Result<Watch, Error> {
    let w = Watch {
        interval: given.interval.or(file.interval).unwrap_or(DEFAULT_INTERVAL),
        every: given.every.or(file.every).unwrap_or(DEFAULT_EVERY),
    };
    if w.every < w.interval {
        return Err(Error::Usage(format!(
            "--every ({} s) is shorter than --interval ({} s): a report cannot come more often than a look",
            secs_text(w.every),
            secs_text(w.interval)
        )));
    }
    Ok(w)
}

/// The modes with `--maintenance SECONDS` in: its reason is `-m`'s text,
/// which it needs unless it ends a silence (0).
fn maintenance_mode(seconds: u64, mut modes: Vec<Mode>) -> Result<Vec<Mode>, Error> {
    let reason = match modes.iter().position(|m| matches!(m, Mode::Message(_))) {
        Some(i) => match modes.remove(i) {
            Mode::Message(text) => text,
            _ => unreachable!("position found a message"),
        },
        None if seconds == 0 => String::new(),
        None => {
            return Err(Error::Usage(
                "--maintenance needs -m REASON: say what the work is (the pages show it)".into(),
            ));
        }
    };
    modes.push(Mode::Maintenance { seconds, reason });
    Ok(modes)
}

/// A duration: whole seconds, or a number with `s`, `m`, `h` or `d`.
pub(crate) fn parse_duration(s: &str, what: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{what}: '{s}' is not a duration; give seconds or a number with s, m, h or d (`2h`)"
        )
    };
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .filter(|&v| v <= 366 * 86_400)
        .ok_or_else(|| format!("{what}: '{s}' is longer than a year; give at most 366d"))
}

/// Reads a config file; see [`parse_config`].
fn read_config(path: &Path) -> Result<Given, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        line: 0,
        msg: format!(
            "cannot read it: {e} (check --config, or leave it out to use {CONFIG_NAME} beside the binary)"
        ),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_config(&text, base).map_err(|(line, msg)| Error::Config {
        path: path.to_path_buf(),
        line,
        msg,
    })
}

/// The config's keys, for the message about an unknown one.
const CONFIG_KEYS: &str = "address, port, name, key-file, timeout, probe, interval, every";

/// Parses config text; relative paths are taken from `base`. Errors carry
/// the line number. A key given twice is refused (which one would win is
/// a guess), and a name that could not be sent is refused here, where its
/// line is known.
fn parse_config(text: &str, base: &Path) -> Result<Given, (usize, String)> {
    let mut g = Given::default();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err((n, format!("expected 'key = value', got '{line}'")));
        };
        let (k, v) = (k.trim(), v.trim());
        if let Some((_, first)) = seen.iter().find(|(key, _)| key == k) {
            return Err((
                n,
                format!("'{k}' is given again (first on line {first}): keep one of the two"),
            ));
        }
        seen.push((k.to_string(), n));
        let at = |e| (n, e);
        match k {
            "address" => g.addresses = Some(parse_targets(v, k).map_err(at)?),
            "port" => g.port = Some(parse_port(v, k).map_err(at)?),
            "name" => {
                crate::wire::check_name(v).map_err(|e| (n, format!("name: {e}")))?;
                g.name = Some(v.to_string());
            }
            "key-file" => g.key_file = Some(base.join(v)),
            "timeout" => g.timeout = Some(parse_timeout(v, k).map_err(at)?),
            "probe" => g.probe = Some(parse_bool(v, k).map_err(at)?),
            "interval" => g.interval = Some(parse_interval(v, k).map_err(at)?),
            "every" => g.every = Some(parse_every(v, k).map_err(at)?),
            _ => return Err((n, format!("unknown key '{k}' (known: {CONFIG_KEYS})"))),
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, String> {
        match parse_args(args.iter().map(OsString::from)) {
            Ok(Action::Run(a)) => Ok(*a),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn seed_options_keep_their_meaning() {
        let a = run(&["-a", "collector.example", "-p", "6000", "-m", "my message"]).unwrap();
        assert_eq!(
            a.collectors,
            [Collector {
                host: "collector.example".into(),
                port: 6000
            }]
        );
        assert_eq!(a.mode, Mode::Message("my message".into()));
        assert_eq!(run(&["-b"]).unwrap().mode, Mode::Heartbeat);
        assert_eq!(run(&["-s"]).unwrap().mode, Mode::Shutdown);
        assert_eq!(
            run(&["--maintenance", "2h", "-m", "kernel update"])
                .unwrap()
                .mode,
            Mode::Maintenance {
                seconds: 7200,
                reason: "kernel update".into()
            }
        );
        assert_eq!(
            run(&["--maintenance", "0"]).unwrap().mode,
            Mode::Maintenance {
                seconds: 0,
                reason: String::new()
            }
        );
        assert_eq!(run(&[]).unwrap().mode, Mode::Report);
    }

    #[test]
    fn a_value_that_is_an_option_is_refused() {
        let e = run(&["-m", "-a", "host"]).unwrap_err();
        assert!(e.contains("-m needs a value"), "{e}");
        // A message that merely starts with '-' is fine.
        assert_eq!(
            run(&["-m", "-- late shift --"]).unwrap().mode,
            Mode::Message("-- late shift --".into())
        );
    }

    #[test]
    fn bad_values_name_the_option() {
        assert!(run(&["-p", "99999"]).unwrap_err().contains("-p: '99999'"));
        assert!(run(&["--timeout", "-1"]).unwrap_err().contains("--timeout"));
        assert!(run(&["-b", "-s"]).unwrap_err().contains("at most one"));
        assert!(
            run(&["--maintenance", "2h"])
                .unwrap_err()
                .contains("needs -m")
        );
        assert!(
            run(&["--maintenance", "1h", "-m", "x", "-s"])
                .unwrap_err()
                .contains("at most one")
        );
        for bad in ["2w", "h", "-1", "1.5h", "400d"] {
            let e = run(&["--maintenance", bad, "-m", "x"]).unwrap_err();
            assert!(e.contains("--maintenance"), "{bad}: {e}");
        }
        assert!(run(&["--bogus"]).unwrap_err().contains("--bogus"));
    }

    #[test]
    fn config_lines_and_errors() {
        let g = parse_config(
            "# comment\naddress = mon.example # trailing\nport=7000\nkey-file = k\nprobe = yes\n",
            Path::new("/etc/x"),
        )
        .unwrap();
        assert_eq!(
            g.addresses,
            Some(vec![Target {
                host: "mon.example".into(),
                port: None
            }])
        );
        assert_eq!(g.port, Some(7000));
        assert_eq!(g.key_file, Some(PathBuf::from("/etc/x/k")));
        assert_eq!(g.probe, Some(true));
        assert_eq!(
            parse_config("\n\nport = x\n", Path::new("."))
                .unwrap_err()
                .0,
            3
        );
        assert!(
            parse_config("colour = red", Path::new("."))
                .unwrap_err()
                .1
                .contains("unknown key")
        );
    }

    #[test]
    fn a_bad_name_in_the_config_file_is_reported_with_its_line() {
        let (line, msg) = parse_config(
            "port = 7000
name = bad name
",
            Path::new("."),
        )
        .unwrap_err();
        assert_eq!(line, 2, "{msg}");
        assert!(msg.starts_with("name: "), "{msg}");
    }

    #[test]
    fn a_key_given_twice_in_the_config_file_is_refused() {
        let (line, msg) = parse_config(
            "name = gw-a
port = 7000
name = gw-b
",
            Path::new("."),
        )
        .unwrap_err();
        assert_eq!(line, 3);
        assert!(msg.contains("first on line 1"), "{msg}");
    }

    #[test]
    fn seconds_as_written() {
        assert_eq!(secs_text(Duration::from_secs(2)), "2");
        assert_eq!(secs_text(Duration::from_millis(300)), "0.3");
        assert_eq!(secs_text(Duration::from_millis(1250)), "1.25");
    }
}
