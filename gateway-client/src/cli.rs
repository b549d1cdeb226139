//! The command line (lexopt) and the optional config file.
//!
//! The options of the original tool stay as operators know them: `-a HOST`
//! and `-p PORT` choose the collector, `-b` sends a heartbeat, `-m TEXT` a
//! message, `-s` a shutdown. A config file (`gateway-client.conf` beside the
//! binary, or `--config FILE`) holds `key = value` lines for the long
//! options, so a crontab line can stay short; the command line wins.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Where the collector listens unless told otherwise.
pub(crate) const DEFAULT_ADDRESS: &str = "127.0.0.1";
pub(crate) const DEFAULT_PORT: u16 = 9555;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Name of the config and key files looked for beside the binary.
pub(crate) const CONFIG_NAME: &str = "gateway-client.conf";
pub(crate) const KEY_NAME: &str = "gateway-client.key";

pub(crate) const HELP: &str = "\
gateway-client: report this gateway's SSH tunnels to the ROC tunnel monitor

USAGE:
    gateway-client [OPTIONS]          report the tunnels found in `ps auxww`
    gateway-client -b                 send a heartbeat
    gateway-client -m TEXT            send an operator's message
    gateway-client -s                 ask the collector to shut down
    gateway-client --maintenance DURATION -m REASON
                                      silence this gateway's alerts for DURATION

OPTIONS:
    -a HOST             collector host [default: 127.0.0.1, or `address` in the config]
    -p PORT             collector UDP port [default: 9555, or `port` in the config]
    -b                  send a heartbeat instead of a report
    -m TEXT             send TEXT as a message instead of a report
    -s                  send a (signed) shutdown request to the collector
    --maintenance DURATION
                        silence this gateway's alerts for DURATION (`90s`, `30m`,
                        `2h`, `1d`, or seconds) from now, for planned work; -m says
                        why (required, shown on the pages); `0` ends it early
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
    key-file, timeout, probe (true/false). Relative paths are taken from the
    config file's folder.

EXIT STATUS:
    0   the collector acknowledged everything (or --dry-run found what it found)
    1   the collector did not acknowledge: not running, wrong key, network, timeout
    2   bad command line or config file, or a message too long to send
    3   local failure: key file, running ps, reading the capture
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

/// The settled options: command line over config file over defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Args {
    pub mode: Mode,
    pub address: String,
    pub port: u16,
    pub ps_file: Option<PathBuf>,
    pub dry_run: bool,
    pub json: bool,
    pub name: Option<String>,
    pub key_file: PathBuf,
    pub timeout: Duration,
    pub probe: bool,
    pub quiet: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Action {
    Help,
    Version,
    Run(Args),
}

/// Options as given, before defaults fill the gaps.
#[derive(Debug, Default)]
struct Given {
    address: Option<String>,
    port: Option<u16>,
    name: Option<String>,
    key_file: Option<PathBuf>,
    timeout: Option<Duration>,
    probe: Option<bool>,
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

fn parse_bool(s: &str, what: &str) -> Result<bool, String> {
    match s.trim() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("{what}: '{s}' is not true or false")),
    }
}

/// Parses the command line (without the program name).
pub(crate) fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Action, Error> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| Error::Usage(e.to_string());
    let mut parser = lexopt::Parser::from_args(args);
    let mut given = Given::default();
    let mut modes = Vec::new();
    let mut maintenance = None;
    let (mut ps_file, mut dry_run, mut json, mut quiet, mut config) =
        (None, false, false, false, None);
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('a') => given.address = Some(value(&mut parser, "-a")?),
            Short('p') => {
                given.port =
                    Some(parse_port(&value(&mut parser, "-p")?, "-p").map_err(Error::Usage)?)
            }
            Short('b') => modes.push(Mode::Heartbeat),
            Short('m') => {
                let text = value(&mut parser, "-m")?;
                if text.trim().is_empty() {
                    return Err(Error::Usage(
                        "-m needs a message to send, got an empty one".into(),
                    ));
                }
                modes.push(Mode::Message(text))
            }
            Short('s') => modes.push(Mode::Shutdown),
            Long("maintenance") => {
                let v = value(&mut parser, "--maintenance")?;
                maintenance = Some(parse_duration(&v, "--maintenance").map_err(Error::Usage)?);
            }
            Long("ps-file") => ps_file = Some(PathBuf::from(value(&mut parser, "--ps-file")?)),
            Long("dry-run") => dry_run = true,
            Long("json") => json = true,
            Long("name") => given.name = Some(value(&mut parser, "--name")?),
            Long("key-file") => given.key_file = Some(value(&mut parser, "--key-file")?.into()),
            Long("timeout") => {
                given.timeout = Some(
                    parse_timeout(&value(&mut parser, "--timeout")?, "--timeout")
                        .map_err(Error::Usage)?,
                )
            }
            Long("probe") => given.probe = Some(true),
            Long("config") => config = Some(PathBuf::from(value(&mut parser, "--config")?)),
            Short('q') | Long("quiet") => quiet = true,
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('V') | Long("version") => return Ok(Action::Version),
            _ => return Err(usage(arg.unexpected())),
        }
    }
    if let Some(seconds) = maintenance {
        modes = maintenance_mode(seconds, modes)?;
    }
    if modes.len() > 1 {
        return Err(Error::Usage(
            "give at most one of -b, -m, -s and --maintenance".into(),
        ));
    }
    let mode = modes.pop().unwrap_or(Mode::Report);
    if mode != Mode::Report && (ps_file.is_some() || json) {
        return Err(Error::Usage(
            "--ps-file and --json go with a report, not with -b, -m, -s or --maintenance".into(),
        ));
    }

    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let (file, required) = match config {
        Some(p) => (Some(p), true),
        None => (exe_dir.as_ref().map(|d| d.join(CONFIG_NAME)), false),
    };
    let from_file = match file {
        Some(path) if required || path.is_file() => read_config(&path)?,
        _ => Given::default(),
    };
    let key_default = exe_dir
        .map(|d| d.join(KEY_NAME))
        .unwrap_or_else(|| PathBuf::from(KEY_NAME));
    Ok(Action::Run(Args {
        mode,
        address: given
            .address
            .or(from_file.address)
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string()),
        port: given.port.or(from_file.port).unwrap_or(DEFAULT_PORT),
        ps_file,
        dry_run,
        json,
        name: given.name.or(from_file.name),
        key_file: given.key_file.or(from_file.key_file).unwrap_or(key_default),
        timeout: given
            .timeout
            .or(from_file.timeout)
            .unwrap_or(DEFAULT_TIMEOUT),
        probe: given.probe.or(from_file.probe).unwrap_or(false),
        quiet,
    }))
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
        match k {
            "address" => g.address = Some(v.to_string()),
            "port" => g.port = Some(parse_port(v, k).map_err(|e| (n, e))?),
            "name" => {
                crate::wire::check_name(v).map_err(|e| (n, format!("name: {e}")))?;
                g.name = Some(v.to_string());
            }
            "key-file" => g.key_file = Some(base.join(v)),
            "timeout" => g.timeout = Some(parse_timeout(v, k).map_err(|e| (n, e))?),
            "probe" => g.probe = Some(parse_bool(v, k).map_err(|e| (n, e))?),
            _ => {
                return Err((
                    n,
                    format!(
                        "unknown key '{k}' (known: address, port, name, key-file, timeout, probe)"
                    ),
                ));
            }
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, String> {
        match parse_args(args.iter().map(OsString::from)) {
            Ok(Action::Run(a)) => Ok(a),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn seed_options_keep_their_meaning() {
        let a = run(&["-a", "collector.example", "-p", "6000", "-m", "my message"]).unwrap();
        assert_eq!((a.address.as_str(), a.port), ("collector.example", 6000));
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
        assert_eq!(g.address.as_deref(), Some("mon.example"));
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
}
