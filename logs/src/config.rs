//! The monitoring host's config file: one TOML file that the collector and
//! webgen both read (`--config FILE`, by default [`DEFAULT_PATH`] when it
//! exists), so that they can never disagree on what they share.
//!
//! ```toml
//! late = "150s"          # a gateway silent this long is late
//! down = "10m"           # ... and down
//! tz = "America/Chicago" # the pages' time zone (webgen)
//! keep_days = 90         # log retention (collector)
//! notify = "/usr/local/bin/roc-alert"   # run on every alert (collector)
//! page_url = "https://monitor.example.org/"  # named in alerts
//! hold = "30s"           # a tunnel alert waits until its state held this long
//! flap = 4               # more changes in an hour: one tunnel_flapping
//! idle_after = "7d"      # a tunnel idle this long: a candidate to close (webgen)
//!
//! # or, instead of notify = "...", routes (see `crate::route`):
//! # [[notify]]
//! # command = "contrib/notify/mail caltech-shift@example.org"
//! # events = ["tunnel_missing", "tunnel_broken", "tunnel_restored"]
//! # roc = "Caltech"
//!
//! # a gateway judged by its own thresholds (over the global ones and
//! # those of the period it declares; see `crate::Staleness`)
//! [[gateway]]
//! name = "novadaq-near-gateway-01"
//! late = "5m"            # optional
//! down = "30m"           # optional
//!
//! [[tunnel]]
//! gateway = "novadaq-far-gateway-01"
//! listen = 5901
//! target = "novadaq-far-master-02:5951"
//! roc = "Caltech"
//! station = "far-master-02 :51"   # optional
//! owner = "novacr01"              # optional
//! ```
//!
//! Every key is optional; a command-line flag overrides the file's value.
//! Unknown keys, wrong types and bad values are refused as one
//! `FILE:LINE: what is wrong` ([`ConfigError`]), never half taken.
//! Durations are written as on the command line ([`crate::duration`]).

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::duration;
use crate::gateway::{Override, Thresholds};
use crate::inventory::Expected;
use crate::route::{EVENTS, Route};
use crate::silence::Silence;

/// Where both binaries look for the file when `--config` is not given.
pub(crate) const DEFAULT_PATH: &str = "/etc/roc-tunnel-monitor/monitor.toml";

/// The file as written (before checking the values).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    late: Option<Spanned<Duration>>,
    down: Option<Spanned<Duration>>,
    tz: Option<Spanned<String>>,
    keep_days: Option<Spanned<i64>>,
    notify: Option<Spanned<toml::Value>>,
    page_url: Option<Spanned<String>>,
    hold: Option<Spanned<Duration>>,
    flap: Option<Spanned<i64>>,
    idle_after: Option<Spanned<Duration>>,
    #[serde(default)]
    gateway: Vec<Spanned<GatewayEntry>>,
    #[serde(default)]
    tunnel: Vec<Spanned<TunnelEntry>>,
    #[serde(default)]
    silence: Vec<Spanned<SilenceEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayEntry {
    name: String,
    late: Option<Duration>,
    down: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceEntry {
    gateway: Option<String>,
    roc: Option<String>,
    from: String,
    until: String,
    reason: String,
}

/// A duration as a string (`"150s"`) or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum Duration {
    Text(String),
    Seconds(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TunnelEntry {
    gateway: Spanned<String>,
    listen: Spanned<i64>,
    target: Spanned<String>,
    roc: Spanned<String>,
    station: Option<String>,
    owner: Option<String>,
}

/// What the file says, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Only what the file sets; the binaries' defaults fill the rest.
    pub late: Option<u64>,
    pub down: Option<u64>,
    /// An IANA time zone name, checked to exist.
    pub tz: Option<String>,
    pub keep_days: Option<u64>,
    /// The notify routes (`notify = "CMD"` is one without filters).
    pub notify: Vec<Route>,
    pub page_url: Option<String>,
    /// Damping of tunnel alerts (`crate::damping`).
    pub hold: Option<u64>,
    pub flap: Option<u32>,
    /// How long a tunnel must have been idle to be a candidate to close
    /// (`crate::usage`).
    pub idle_after: Option<u64>,
    /// The `[[gateway]]` thresholds, in file order (one per name).
    pub gateways: Vec<Override>,
    /// The expected tunnels, in file order.
    pub tunnels: Vec<Expected>,
    /// Planned silences, in file order.
    pub silences: Vec<Silence>,
}

impl Config {
    /// "24 expected tunnels on 2 gateways", for the log line of a load.
    pub fn summary(&self) -> String {
        let mut gateways: Vec<&str> = self.tunnels.iter().map(|t| t.gateway.as_str()).collect();
        gateways.sort_unstable();
        gateways.dedup();
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} on {}",
            plural(self.tunnels.len(), "expected tunnel", "expected tunnels"),
            plural(gateways.len(), "gateway", "gateways")
        )
    }
}

/// Why a config file was refused: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; 0 when the file could not be read at all.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.path.display(), self.message),
            n => write!(f, "{}:{n}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The file named by `--config`, else [`DEFAULT_PATH`] when it exists,
/// else none.
pub fn locate(flag: Option<&Path>) -> Option<PathBuf> {
    match flag {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
    }
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        message: format!(
            "cannot read the config file ({e}); give an existing file to --config, or leave it out"
        ),
    })?;
    parse(path, &text)
}

/// Checks `text` as the config file `path`.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let at = |span: Option<Range<usize>>, message: String| ConfigError {
        path: path.to_path_buf(),
        line: span.map_or(1, |s| line_of(text, s.start)),
        message,
    };
    let file: File = toml::from_str(text).map_err(|e| at(e.span(), e.message().to_string()))?;
    let duration = |d: Option<Spanned<Duration>>, key: &str| -> Result<Option<u64>, ConfigError> {
        let Some(d) = d else { return Ok(None) };
        let span = d.span();
        seconds(d.into_inner())
            .map(Some)
            .map_err(|e| at(Some(span), format!("{key} {e}")))
    };
    let mut config = Config {
        path: path.to_path_buf(),
        late: duration(file.late, "late")?,
        down: duration(file.down, "down")?,
        ..Config::default()
    };
    if let (Some(late), Some(down)) = (config.late, config.down) {
        Thresholds::new(late, down).map_err(|e| at(None, e))?;
    }
    if let Some(tz) = file.tz {
        let span = tz.span();
        let name = tz.into_inner();
        jiff::tz::TimeZone::get(&name).map_err(|_| {
            at(
                Some(span),
                format!("tz '{name}' is not a time zone known here; give an IANA name such as America/Chicago or UTC"),
            )
        })?;
        config.tz = Some(name);
    }
    if let Some(k) = file.keep_days {
        let span = k.span();
        let n = *k.get_ref();
        config.keep_days = Some(u64::try_from(n).ok().filter(|&n| n <= 100_000).ok_or_else(
            || {
                at(
                    Some(span),
                    format!("keep_days {n}: must be from 0 (keep all) to 100000"),
                )
            },
        )?);
    }
    if let Some(n) = file.notify {
        config.notify = routes(n, &at)?;
    }
    config.page_url = nonempty(file.page_url, "page_url", &at)?;
    config.hold = duration(file.hold, "hold")?;
    config.idle_after = duration(file.idle_after, "idle_after")?;
    if let Some(f) = file.flap {
        let span = f.span();
        let n = *f.get_ref();
        config.flap = Some(u32::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| {
            at(
                Some(span),
                format!("flap {n}: must be 1 or more (changes within an hour)"),
            )
        })?);
    }
    config.gateways = gateways(file.gateway, &at)?;
    for t in file.tunnel {
        let entry = expected(t, &at)?;
        if let Some(first) = config
            .tunnels
            .iter()
            .find(|e| e.gateway == entry.0.gateway && e.listen == entry.0.listen)
        {
            return Err(at(
                Some(entry.1),
                format!(
                    "a second [[tunnel]] for {} port {} (the first leads to {}): one per gateway and listen port",
                    first.gateway,
                    first.listen,
                    first.target()
                ),
            ));
        }
        config.tunnels.push(entry.0);
    }
    for s in file.silence {
        config.silences.push(silence(s, &at)?);
    }
    Ok(config)
}

/// A duration's seconds, or what is wrong with it (after the key).
fn seconds(d: Duration) -> Result<u64, String> {
    match d {
        Duration::Text(s) => duration::parse(&s).map_err(|e| e.to_string()),
        Duration::Seconds(n) => u64::try_from(n).map_err(|_| format!("'{n}': not negative")),
    }
}

/// The `[[gateway]]` tables, checked, one per name.
fn gateways(
    tables: Vec<Spanned<GatewayEntry>>,
    at: &impl Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<Vec<Override>, ConfigError> {
    let mut out: Vec<Override> = Vec::with_capacity(tables.len());
    for g in tables {
        let (entry, span) = gateway(g, at)?;
        if out.iter().any(|o| o.name == entry.name) {
            return Err(at(
                Some(span),
                format!(
                    "a second [[gateway]] for {}: one per gateway, with late, down or both",
                    entry.name
                ),
            ));
        }
        out.push(entry);
    }
    Ok(out)
}

/// One `[[gateway]]`, checked, and the span of the table.
fn gateway(
    g: Spanned<GatewayEntry>,
    at: &impl Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<(Override, Range<usize>), ConfigError> {
    let span = g.span();
    let g = g.into_inner();
    let bad = |why: String| at(Some(span.clone()), format!("[[gateway]] {why}"));
    let name = g.name.trim().to_string();
    if name.is_empty() {
        return Err(bad("name is empty: name the gateway as it reports".into()));
    }
    let secs = |d: Option<Duration>, key: &str| -> Result<Option<u64>, ConfigError> {
        d.map(|d| seconds(d).map_err(|e| bad(format!("{name}: {key} {e}"))))
            .transpose()
    };
    let (late, down) = (secs(g.late, "late")?, secs(g.down, "down")?);
    match (late, down) {
        (None, None) => Err(bad(format!(
            "{name}: gives neither late nor down; give one or both, or leave the table out"
        ))),
        (Some(0), _) | (_, Some(0)) => {
            Err(bad(format!("{name}: late and down must be at least 1s")))
        }
        (Some(l), Some(d)) if d <= l => Err(bad(format!(
            "{name}: down ({d}s) must be longer than late ({l}s)"
        ))),
        _ => Ok((Override { name, late, down }, span)),
    }
}

fn nonempty(
    v: Option<Spanned<String>>,
    key: &str,
    at: &impl Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<Option<String>, ConfigError> {
    match v {
        Some(s) if s.get_ref().trim().is_empty() => Err(at(
            Some(s.span()),
            format!("{key} is empty; leave it out instead"),
        )),
        Some(s) => Ok(Some(s.into_inner())),
        None => Ok(None),
    }
}

/// One `[[notify]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    command: String,
    events: Option<Vec<String>>,
    roc: Option<String>,
    gateway: Option<String>,
}

/// `notify = "CMD"` (one route without filters) or `[[notify]]` tables.
fn routes(
    n: Spanned<toml::Value>,
    at: &impl Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<Vec<Route>, ConfigError> {
    let span = n.span();
    let bad = |why: String| at(Some(span.clone()), why);
    match n.into_inner() {
        toml::Value::String(cmd) if cmd.trim().is_empty() => {
            Err(bad("notify is empty; leave it out instead".into()))
        }
        toml::Value::String(cmd) => Ok(vec![Route::all(cmd)]),
        toml::Value::Array(tables) => tables
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let what = format!("[[notify]] number {}", i + 1);
                let e = RouteEntry::deserialize(t)
                    .map_err(|e| bad(format!("{what}: {}", e.message())))?;
                if e.command.trim().is_empty() {
                    return Err(bad(format!("{what}: command is empty")));
                }
                let events = e.events.unwrap_or_default();
                if let Some(x) = events.iter().find(|x| !EVENTS.contains(&x.as_str())) {
                    return Err(bad(format!(
                        "{what}: events: '{x}' is not one of {}",
                        EVENTS.join(", ")
                    )));
                }
                Ok(Route {
                    command: e.command,
                    events,
                    roc: e.roc,
                    gateway: e.gateway,
                })
            })
            .collect(),
        _ => Err(bad(
            "notify must be a command (notify = \"CMD\") or [[notify]] tables".into(),
        )),
    }
}

/// One `[[silence]]`, checked.
fn silence(
    s: Spanned<SilenceEntry>,
    at: &impl Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<Silence, ConfigError> {
    let span = s.span();
    let s = s.into_inner();
    let bad = |why: String| at(Some(span.clone()), format!("[[silence]] {why}"));
    let time = |key: &str, v: &str| -> Result<u64, ConfigError> {
        let t: jiff::Timestamp = v.parse().map_err(|_| {
            bad(format!(
                "{key} '{v}': not an RFC 3339 time such as 2026-12-07T08:00:00+01:00"
            ))
        })?;
        u64::try_from(t.as_second()).map_err(|_| bad(format!("{key} '{v}': before 1970")))
    };
    let (from, until) = (time("from", &s.from)?, time("until", &s.until)?);
    if until <= from {
        return Err(bad(format!(
            "until '{}' is not after from '{}'",
            s.until, s.from
        )));
    }
    let nonblank = |v: Option<String>| v.filter(|x| !x.trim().is_empty());
    let (gateway, roc) = (nonblank(s.gateway), nonblank(s.roc));
    if gateway.is_none() && roc.is_none() {
        return Err(bad("needs gateway, roc or both: what is silenced".into()));
    }
    if s.reason.trim().is_empty() {
        return Err(bad("reason is empty: say why, for the page".into()));
    }
    Ok(Silence {
        gateway,
        roc,
        from,
        until,
        reason: s.reason,
        from_gateway: false,
    })
}

/// One `[[tunnel]]`, checked, and the span of the table.
fn expected(
    t: Spanned<TunnelEntry>,
    at: &impl Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<(Expected, Range<usize>), ConfigError> {
    let table = t.span();
    let t = t.into_inner();
    let text = |s: &Spanned<String>, key: &str| -> Result<String, ConfigError> {
        let v = s.get_ref().trim();
        if v.is_empty() {
            return Err(at(Some(s.span()), format!("[[tunnel]] {key} is empty")));
        }
        Ok(v.to_string())
    };
    let gateway = text(&t.gateway, "gateway")?;
    let roc = text(&t.roc, "roc")?;
    let listen = u16::try_from(*t.listen.get_ref())
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| {
            at(
                Some(t.listen.span()),
                format!(
                    "[[tunnel]] listen {}: not a port from 1 to 65535",
                    t.listen.get_ref()
                ),
            )
        })?;
    let target = text(&t.target, "target")?;
    let bad_target = || {
        at(
            Some(t.target.span()),
            format!(
                "[[tunnel]] target '{target}': expected HOST:PORT, e.g. novadaq-far-master-02:5951"
            ),
        )
    };
    let (host, port) = target.rsplit_once(':').ok_or_else(bad_target)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(bad_target)?;
    if host.is_empty() {
        return Err(bad_target());
    }
    Ok((
        Expected {
            gateway,
            listen,
            target_host: host.to_string(),
            target_port: port,
            roc,
            station: t.station.filter(|s| !s.trim().is_empty()),
            owner: t.owner.filter(|s| !s.trim().is_empty()),
        },
        table,
    ))
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, String> {
        parse(Path::new("monitor.toml"), text).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
late = "2m"
down = 600
tz = "America/Chicago"
keep_days = 30
notify = "/usr/local/bin/roc-alert"

[[tunnel]]
gateway = "novadaq-far-gateway-01"
listen = 5901
target = "novadaq-far-master-02:5951"
roc = "Caltech"
station = "far-master-02 :51"
owner = "novacr01"

[[tunnel]]
gateway = "novadaq-near-gateway-01"
listen = 5902
target = "novadaq-near-master-01:5901"
roc = "Fermilab"
"#;

    #[test]
    fn a_whole_file() {
        let c = check(GOOD).unwrap();
        assert_eq!(
            (c.late, c.down, c.keep_days),
            (Some(120), Some(600), Some(30))
        );
        assert_eq!(c.tz.as_deref(), Some("America/Chicago"));
        assert_eq!(c.tunnels.len(), 2);
        assert_eq!(c.tunnels[0].target(), "novadaq-far-master-02:5951");
        assert_eq!(c.tunnels[0].owner.as_deref(), Some("novacr01"));
        assert_eq!(c.tunnels[1].station, None);
        assert_eq!(c.summary(), "2 expected tunnels on 2 gateways");
        assert_eq!(c.notify, [Route::all("/usr/local/bin/roc-alert".into())]);
        assert_eq!(
            check("").unwrap().summary(),
            "0 expected tunnels on 0 gateways"
        );
    }

    #[test]
    fn idle_after() {
        assert_eq!(
            check("idle_after = \"7d\"\n").unwrap().idle_after,
            Some(604_800)
        );
        assert_eq!(check("idle_after = 3600\n").unwrap().idle_after, Some(3600));
        assert_eq!(check("").unwrap().idle_after, None);
        let e = check("\nidle_after = \"2w\"\n").unwrap_err();
        assert!(
            e.starts_with("monitor.toml:2: idle_after '2w': unit must be"),
            "{e}"
        );
    }

    #[test]
    fn silences() {
        let c = check(
            "[[silence]]\ngateway = \"far\"\nfrom = \"2026-12-07T08:00:00+01:00\"\nuntil = \"2026-12-07T10:00:00+01:00\"\nreason = \"kernel update\"\n",
        )
        .unwrap();
        assert_eq!(c.silences.len(), 1);
        assert_eq!(c.silences[0].until - c.silences[0].from, 7200);
        assert_eq!(c.silences[0].from, 1_796_626_800);
        for (text, want) in [
            (
                "[[silence]]\nfrom = \"2026-12-07T08:00:00Z\"\nuntil = \"2026-12-07T09:00:00Z\"\nreason = \"r\"\n",
                "monitor.toml:1: [[silence]] needs gateway, roc or both",
            ),
            (
                "\n[[silence]]\nroc = \"C\"\nfrom = \"tomorrow\"\nuntil = \"2026-12-07T09:00:00Z\"\nreason = \"r\"\n",
                "monitor.toml:2: [[silence]] from 'tomorrow': not an RFC 3339 time",
            ),
            (
                "[[silence]]\nroc = \"C\"\nfrom = \"2026-12-07T09:00:00Z\"\nuntil = \"2026-12-07T08:00:00Z\"\nreason = \"r\"\n",
                "is not after from",
            ),
            (
                "[[silence]]\nroc = \"C\"\nfrom = \"2026-12-07T08:00:00Z\"\nuntil = \"2026-12-07T09:00:00Z\"\nreason = \" \"\n",
                "reason is empty",
            ),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn gateway_overrides() {
        let c = check(
            "[[gateway]]\nname = \"near\"\nlate = \"5m\"\ndown = \"30m\"\n\n[[gateway]]\nname = \"far\"\nlate = 90\n",
        )
        .unwrap();
        assert_eq!(
            c.gateways,
            [
                Override {
                    name: "near".into(),
                    late: Some(300),
                    down: Some(1800)
                },
                Override {
                    name: "far".into(),
                    late: Some(90),
                    down: None
                }
            ]
        );
        for (text, want) in [
            (
                "[[gateway]]\nname = \"g\"\n",
                "monitor.toml:1: [[gateway]] g: gives neither late nor down",
            ),
            (
                "\n[[gateway]]\nname = \"g\"\nlate = \"5m\"\ndown = \"1m\"\n",
                "monitor.toml:2: [[gateway]] g: down (60s) must be longer than late (300s)",
            ),
            (
                "[[gateway]]\nname = \"g\"\nlate = \"5x\"\n",
                "[[gateway]] g: late '5x': unit must be",
            ),
            ("[[gateway]]\nname = \"g\"\ndown = 0\n", "at least 1s"),
            ("[[gateway]]\nname = \" \"\nlate = 9\n", "name is empty"),
            (
                "[[gateway]]\nname = \"g\"\nlate = 9\nperiod = 3\n",
                "unknown field `period`",
            ),
            ("[[gateway]]\nlate = 9\n", "missing field `name`"),
            (
                "[[gateway]]\nname = \"g\"\nlate = 9\n\n[[gateway]]\nname = \"g\"\ndown = 99\n",
                "monitor.toml:5: a second [[gateway]] for g",
            ),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn notify_routes() {
        let c = check(
            "[[notify]]\ncommand = \"mail-caltech\"\nroc = \"Caltech\"\nevents = [\"tunnel_missing\"]\n\n[[notify]]\ncommand = \"page-expert\"\ngateway = \"far\"\n",
        )
        .unwrap();
        assert_eq!(c.notify.len(), 2);
        assert_eq!(c.notify[0].roc.as_deref(), Some("Caltech"));
        assert_eq!(c.notify[0].events, ["tunnel_missing"]);
        assert_eq!(c.notify[1].gateway.as_deref(), Some("far"));
        assert!(c.notify[1].events.is_empty());
        let e = check("notify = \"a\"\n[[notify]]\ncommand = \"b\"\n").unwrap_err();
        assert!(e.contains("monitor.toml:"), "{e}");
    }

    #[test]
    fn mistakes_name_the_line() {
        for (text, want) in [
            ("lat = \"2m\"\n", "monitor.toml:1: unknown field `lat`"),
            (
                "\n\nlate = \"2x\"\n",
                "monitor.toml:3: late '2x': unit must be",
            ),
            ("late = true\n", "monitor.toml:1:"),
            ("late = \"10m\"\ndown = \"5m\"\n", "must be longer"),
            (
                "tz = \"Mars/Olympus\"\n",
                "monitor.toml:1: tz 'Mars/Olympus' is not a time zone",
            ),
            ("keep_days = -1\n", "keep_days -1"),
            ("notify = \" \"\n", "notify is empty"),
            ("notify = 3\n", "monitor.toml:1: notify must be a command"),
            (
                "[[notify]]\ncommand = \"x\"\nevents = [\"tunnel_lost\"]\n",
                "[[notify]] number 1: events: 'tunnel_lost' is not one of gateway_late",
            ),
            (
                "[[notify]]\ncommand = \"x\"\nrocc = \"C\"\n",
                "unknown field `rocc`",
            ),
            ("late = \n", "monitor.toml:1:"),
            (
                "[[tunnel]]\ngateway = \"g\"\nlisten = 70000\ntarget = \"h:1\"\nroc = \"r\"\n",
                "monitor.toml:3: [[tunnel]] listen 70000",
            ),
            (
                "[[tunnel]]\ngateway = \"g\"\nlisten = 1\ntarget = \"h\"\nroc = \"r\"\n",
                "monitor.toml:4: [[tunnel]] target 'h': expected HOST:PORT",
            ),
            (
                "[[tunnel]]\ngateway = \"g\"\nlisten = 1\ntarget = \"h:1\"\n",
                "missing field `roc`",
            ),
            (
                "[[tunnel]]\ngateway = \"g\"\nlisten = 1\ntarget = \"h:1\"\nroc = \"r\"\nport = 2\n",
                "unknown field `port`",
            ),
            (
                "[[tunnel]]\ngateway = \"g\"\nlisten = 1\ntarget = \"h:1\"\nroc = \"r\"\n\n[[tunnel]]\ngateway = \"g\"\nlisten = 1\ntarget = \"i:2\"\nroc = \"s\"\n",
                "monitor.toml:7: a second [[tunnel]] for g port 1",
            ),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_missing_file_says_so_without_a_line() {
        let e = load(Path::new("/nonexistent/monitor.toml")).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/monitor.toml: cannot read"),
            "{e}"
        );
    }
}
