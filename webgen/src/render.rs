//! From facts to pages: the template environment ([`make_env`]), the
//! formatting of times, ages and numbers (done here in Rust: core minijinja
//! has no date filters and prints raw floats in full), the template contexts,
//! and atomic page writes.
//!
//! Every template is rendered with HTML auto-escaping forced on, whatever
//! its name, so text from the network (messages, user and host names) is
//! always text. Charts are inline SVG whose coordinates are computed here;
//! the templates only place them.

use std::error::Error as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use gateway_client::tunnel::{Health, Tunnel};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{AutoEscape, Environment, State, context};

use crate::error::Error;
use crate::history::{BUCKETS, GatewayHistory, IdleTunnel, Lane, RangeHistory, RocHistory};
use logs::EventKind;

use crate::logs::{Catalog, ReadStats, TunnelId};
use crate::state::{ExpectedNow, GatewayStatus, Message, Status, TunnelNow};
use logs::GatewayState;
use logs::inventory::TunnelState;

/// The templates built into the binary.
pub(crate) const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("history.html", include_str!("../templates/history.html")),
    (
        "history-gateway.html",
        include_str!("../templates/history-gateway.html"),
    ),
];

/// The template environment: the built-in templates, or with `dir` the
/// templates found there (a name missing there falls back to the built-in
/// one). Auto-escaping is HTML for every template.
pub(crate) fn make_env(dir: Option<&Path>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_function("gateway_section", gateway_section);
    match dir {
        None => {
            for (name, src) in TEMPLATES {
                env.add_template(name, src)
                    .expect("built-in templates parse (checked by tests)");
            }
        }
        Some(dir) => {
            let from_dir = minijinja::path_loader(dir.to_path_buf());
            env.set_loader(move |name| match from_dir(name)? {
                Some(src) => Ok(Some(src)),
                None => Ok(TEMPLATES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, s)| minijinja::TemplateSource::from(s.to_string()))),
            });
        }
    }
    env
}

/// Renders one template to a string.
pub(crate) fn render(env: &Environment<'_>, name: &str, ctx: Value) -> Result<String, Error> {
    let err = |source| Error::Template {
        name: name.to_string(),
        source,
    };
    env.get_template(name)
        .map_err(err)?
        .render(ctx)
        .map_err(err)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over the old page.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let page = Pending::new(path);
    page.fill(|f| f.write_all(bytes))?;
    page.commit()
}

/// Renders a template straight into the temporary file of the page at
/// `path` (the history page is megabytes: this keeps no copy of it in
/// memory), synced; [`Pending::commit`] puts it in place.
pub(crate) fn render_to_page(
    env: &Environment<'_>,
    name: &str,
    ctx: Value,
    path: &Path,
) -> Result<Pending, Error> {
    let template = env.get_template(name).map_err(|source| Error::Template {
        name: name.to_string(),
        source,
    })?;
    let page = Pending::new(path);
    let mut failed = None;
    page.fill(|f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        match template.render_captured_to(ctx, &mut w) {
            Ok(_) => w.flush(),
            // An I/O error is the file's; any other, the template's.
            Err(e) => match e.source().and_then(|s| s.downcast_ref::<std::io::Error>()) {
                Some(io) => Err(std::io::Error::new(io.kind(), io.to_string())),
                None => {
                    failed = Some(e);
                    Ok(())
                }
            },
        }
    })?;
    match failed {
        Some(source) => Err(Error::Template {
            name: name.to_string(),
            source,
        }),
        None => Ok(page),
    }
}

/// A page written to its temporary file, not yet in place; dropped, the
/// file is removed.
pub(crate) struct Pending {
    path: PathBuf,
    tmp: PathBuf,
    done: bool,
}

impl Pending {
    fn new(path: &Path) -> Pending {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        Pending {
            path: path.to_path_buf(),
            tmp: dir.join(format!(".{name}.{}.tmp", std::process::id())),
            done: false,
        }
    }

    fn error(&self, source: std::io::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Creates the temporary file, lets `write` fill it, and syncs it.
    fn fill(
        &self,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        let mut f = std::fs::File::create(&self.tmp).map_err(|e| self.error(e))?;
        write(&mut f)
            .and_then(|()| f.sync_all())
            .map_err(|e| self.error(e))
    }

    /// Renames the temporary file over the page.
    pub(crate) fn commit(mut self) -> Result<(), Error> {
        std::fs::rename(&self.tmp, &self.path).map_err(|e| self.error(e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Formats times for the pages: local time in the chosen zone, ages
/// relative to "now".
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    pub tz: TimeZone,
    /// The zone's name as shown on the pages.
    pub tz_name: String,
    pub now: u64,
}

impl Clock {
    pub(crate) fn new(tz: TimeZone, now: u64) -> Clock {
        let tz_name = tz
            .iana_name()
            .map(str::to_string)
            .unwrap_or_else(|| "host local time".to_string());
        Clock { tz, tz_name, now }
    }

    fn zoned(&self, t: u64) -> jiff::Zoned {
        let ts = i64::try_from(t)
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .unwrap_or(Timestamp::MAX);
        ts.to_zoned(self.tz.clone())
    }

    /// `2026-11-23 15:14`. The history page prints tens of thousands of
    /// these, so the digits are written here rather than by `strftime`
    /// (which reads its format string each time): the same text.
    pub(crate) fn time(&self, t: u64) -> String {
        let Some(d) = i64::try_from(t)
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(|ts| self.tz.to_offset(ts).to_datetime(ts))
        else {
            return self.zoned(t).strftime("%Y-%m-%d %H:%M").to_string();
        };
        let mut s = String::with_capacity(16);
        let two = |s: &mut String, n: i8| {
            s.push(char::from(b'0' + (n / 10) as u8));
            s.push(char::from(b'0' + (n % 10) as u8));
        };
        two(&mut s, (d.year() / 100) as i8);
        two(&mut s, (d.year() % 100) as i8);
        for (sep, n) in [
            ('-', d.month()),
            ('-', d.day()),
            (' ', d.hour()),
            (':', d.minute()),
        ] {
            s.push(sep);
            two(&mut s, n);
        }
        s
    }

    /// `2026-11-23 15:14:05 CST`
    pub(crate) fn time_full(&self, t: u64) -> String {
        self.zoned(t).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
    }

    /// `Mon 23 Nov 15:14`, for chart axes.
    pub(crate) fn short(&self, t: u64, with_day: bool) -> String {
        let z = self.zoned(t);
        if with_day {
            z.strftime("%a %d %b").to_string()
        } else {
            z.strftime("%H:%M").to_string()
        }
    }

    /// The zone's abbreviation now (`CST`) and offset (`UTC-06:00`).
    pub(crate) fn zone_label(&self) -> String {
        let z = self.zoned(self.now);
        let offset = z.offset();
        let secs = offset.seconds();
        let sign = if secs < 0 { '-' } else { '+' };
        let a = secs.unsigned_abs();
        format!(
            "{} ({}, UTC{sign}{:02}:{:02})",
            self.tz_name,
            z.strftime("%Z"),
            a / 3600,
            a % 3600 / 60
        )
    }

    /// `5 min ago` style age of a past time (`in the future` if after now).
    pub(crate) fn ago(&self, t: u64) -> String {
        if t > self.now {
            return "in the future".to_string();
        }
        format!("{} ago", duration(self.now - t))
    }
}

/// A duration in at most two units: `42 s`, `3 min`, `2 h 05 min`, `3 d 4 h`.
pub(crate) fn duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        if h > 0 {
            format!("{d} d {h} h")
        } else {
            format!("{d} d")
        }
    } else if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

/// A threshold exactly, unlike [`duration`]: 150 s is `2 min 30 s`, not `2 min`.
pub(crate) fn threshold(secs: u64) -> String {
    if (60..3600).contains(&secs) && !secs.is_multiple_of(60) {
        format!("{} min {} s", secs / 60, secs % 60)
    } else {
        duration(secs)
    }
}

/// `24 hours`, `7 days`, `90 minutes`: a range's name on the page.
pub(crate) fn range_title(secs: u64) -> String {
    let (n, unit) = if secs.is_multiple_of(86_400) && secs > 86_400 {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `12,345`
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with two decimals, never rounded up to 100
/// unless it is exactly 1: `99.99 %`, `100 %`.
pub(crate) fn percent(share: f64) -> String {
    if share >= 1.0 {
        return "100 %".to_string();
    }
    let hundredths = (share.max(0.0) * 10_000.0).floor() / 100.0;
    format!("{hundredths:.2} %")
}

/// `1 tunnel`, `2 tunnels`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

fn health(h: Health) -> &'static str {
    h.as_str()
}

/// The target as `host:port` (IPv6 in brackets), or `—` when there is none.
fn target(t: &Tunnel) -> String {
    let mut s = String::new();
    push_target(&mut s, t);
    s
}

fn push_target(s: &mut String, t: &Tunnel) {
    if t.target_host.is_empty() && t.target_port == 0 {
        s.push_str(match t.kind {
            gateway_client::tunnel::Kind::Dynamic => "SOCKS (dynamic)",
            _ => "—",
        });
    } else {
        push_host_port(s, &t.target_host, t.target_port);
    }
}

#[cfg(test)]
fn listen(t: &Tunnel) -> String {
    let mut s = String::new();
    push_listen(&mut s, t);
    s
}

fn push_listen(s: &mut String, t: &Tunnel) {
    if t.bind.is_empty() {
        push_number(s, t.listen_port.into());
    } else {
        push_host_port(s, &t.bind, t.listen_port);
    }
}

/// `host:port`, an IPv6 host in brackets. Written without `format!`: the
/// history page asks for tens of thousands.
fn push_host_port(s: &mut String, host: &str, port: u16) {
    if host.contains(':') {
        s.push('[');
        s.push_str(host);
        s.push(']');
    } else {
        s.push_str(host);
    }
    s.push(':');
    push_number(s, port.into());
}

/// A text value written by `write` into one reused buffer, then copied
/// into the value (inline when short): no string is made per field.
fn text_value(write: impl FnOnce(&mut String)) -> Value {
    thread_local! {
        static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    BUF.with_borrow_mut(|s| {
        s.clear();
        write(s);
        Value::from(s.as_str())
    })
}

/// Appends `n` in decimal.
fn push_number(s: &mut String, n: u32) {
    s.push_str(itoa::Buffer::new().format(n));
}

fn tunnel_value(clock: &Clock, t: &Tunnel) -> Value {
    let f = |name| tunnel_field(clock, t, name);
    context! {
        pid => f("pid"),
        kind => f("kind"),
        listen => f("listen"),
        listen_port => f("listen_port"),
        target => f("target"),
        display => f("display"),
        user => f("user"),
        dest => f("dest"),
        started => f("started"),
    }
}

fn tunnel_now(clock: &Clock, t: &TunnelNow) -> Value {
    context! {
        t => tunnel_value(clock, &t.tunnel),
        since => clock.time(t.since),
        since_age => duration(clock.now.saturating_sub(t.since)),
        listening => health(t.listening),
        vnc => health(t.vnc),
        broken => t.broken(),
        not_expected => t.expected == Some(false),
        connections => t.connections,
        in_use => in_use_text(t.connections, &t.connected),
    }
}

/// Names listed per tunnel on the status page; past that, a count.
const MAX_CONNECTED_SHOWN: usize = 5;

/// Who is on a tunnel, as the status page says it: `in use: 2 — novaroc1,
/// 192.0.2.15`, `idle`, or nothing when unknown. A list shorter than the
/// count (cut to fit a datagram) ends in `…`.
pub(crate) fn in_use_text(connections: Option<u32>, connected: &[String]) -> Option<String> {
    let n = connections?;
    if n == 0 {
        return Some("idle".to_string());
    }
    let shown = connected.len().min(MAX_CONNECTED_SHOWN);
    let mut text = format!("in use: {n}");
    if shown > 0 {
        text.push_str(" — ");
        text.push_str(&connected[..shown].join(", "));
        let more = (n as usize).saturating_sub(shown);
        if more > 0 && connected.len() > shown {
            text.push_str(&format!(" and {more} more"));
        } else if more > 0 {
            text.push_str(", …");
        }
    }
    Some(text)
}

/// Tunnel rows shown per gateway panel; past that, the broken ones are
/// kept first and the rest are counted.
pub(crate) const MAX_TUNNEL_ROWS: usize = 200;

/// How a gateway is judged, when not by the global thresholds: "reports
/// at least every 30 s: late after 1 min 15 s, down after 5 min".
fn judged_by(g: &GatewayStatus, global: logs::Thresholds) -> Option<String> {
    let t = g.thresholds;
    let rule = format!(
        "late after {}, down after {}",
        threshold(t.late),
        threshold(t.down)
    );
    match g.period {
        Some(p) => Some(format!(
            "reports at least every {}: {rule}",
            threshold(p.into())
        )),
        None if t != global => Some(rule),
        None => None,
    }
}

fn gateway_status(clock: &Clock, g: &GatewayStatus, global: logs::Thresholds) -> Value {
    let broken = g.tunnels.iter().filter(|t| t.broken()).count() as u64;
    let mut shown: Vec<&TunnelNow> = g.tunnels.iter().collect();
    if shown.len() > MAX_TUNNEL_ROWS {
        shown.sort_by_key(|t| !t.broken());
        shown.truncate(MAX_TUNNEL_ROWS);
        shown.sort_by_key(|t| (t.tunnel.listen_port, t.tunnel.pid));
    }
    context! {
        tunnels_more => g.tunnels.len() - shown.len(),
        name => g.name.as_str(),
        state => g.state.as_str(),
        last_heard => clock.time_full(g.last_heard),
        last_heard_ago => clock.ago(g.last_heard),
        judged_by => judged_by(g, global),
        last_report => g.last_report.map(|t| clock.time(t)),
        last_report_ago => g.last_report.map(|t| clock.ago(t)),
        tunnels => shown.iter().map(|t| tunnel_now(clock, t)).collect::<Vec<_>>(),
        tunnel_count => plural(g.tunnels.len() as u64, "tunnel", "tunnels"),
        broken => broken,
        broken_count => plural(broken, "broken", "broken"),
    }
}

fn message(clock: &Clock, gw: &str, m: &Message) -> Value {
    context! {
        time => clock.time(m.received),
        ago => clock.ago(m.received),
        gateway => gw,
        kind => match m.kind { EventKind::Shutdown => "shutdown", _ => "message" },
        text => m.text.as_str(),
    }
}

/// What every page shows in its header and footer.
fn page(clock: &Clock, stats: &ReadStats, name: &str, title: &str) -> Value {
    context! {
        name => name,
        title => title,
        generated => clock.time_full(clock.now),
        generated_unix => clock.now,
        tz => clock.zone_label(),
        has_data => stats.has_data(),
        malformed => stats.malformed(),
        malformed_text => plural(stats.malformed(), "malformed row", "malformed rows"),
        files => stats.files.len(),
        version => env!("CARGO_PKG_VERSION"),
    }
}

/// A state as the pages say it: `wrong target`.
pub(crate) fn state_text(state: TunnelState) -> &'static str {
    match state {
        TunnelState::WrongTarget => "wrong target",
        other => other.as_str(),
    }
}

/// Why an expected tunnel is in its state, in a few words.
fn why(clock: &Clock, s: &Status, e: &ExpectedNow) -> String {
    let gateway = s.gateways.iter().find(|g| g.name == e.entry.gateway);
    match (e.state, &e.tunnel) {
        (TunnelState::Up, _) => String::new(),
        (TunnelState::Broken, Some(t)) if t.listening == Health::No => {
            format!("pid {} runs but does not listen", t.pid)
        }
        (TunnelState::Broken, _) => "VNC did not answer through it".to_string(),
        (TunnelState::WrongTarget, Some(t)) => format!(
            "the port leads to {} (pid {}, {})",
            target(t),
            t.pid,
            t.user
        ),
        (TunnelState::WrongTarget, None) => "the port leads elsewhere".to_string(),
        (TunnelState::Missing, _) => {
            format!("nothing listens on port {}", e.entry.listen)
        }
        (TunnelState::Unknown, _) => match gateway {
            None => "its gateway has not reported in the logs".to_string(),
            Some(g) if g.state != GatewayState::Up => format!(
                "its gateway is {}, last heard {}",
                g.state.as_str(),
                clock.ago(g.last_heard)
            ),
            Some(_) => "no complete report from its gateway since it came back".to_string(),
        },
    }
}

/// The order of the problems list: tunnels known to be wrong first, then
/// unknown ones; then by ROC, gateway and port.
fn problem_order(e: &ExpectedNow) -> (bool, &str, &str, u16) {
    (
        !e.state.is_problem(),
        &e.entry.roc,
        &e.entry.gateway,
        e.entry.listen,
    )
}

fn expected_value(clock: &Clock, s: &Status, e: &ExpectedNow) -> Value {
    context! {
        roc => e.entry.roc.as_str(),
        station => e.entry.station.as_deref(),
        owner => e.entry.owner.as_deref(),
        gateway => e.entry.gateway.as_str(),
        listen => e.entry.listen,
        target => e.entry.target(),
        state => e.state.as_str(),
        state_text => state_text(e.state),
        problem => e.state.is_problem(),
        since => clock.time(e.since),
        since_unix => e.since,
        since_ago => clock.ago(e.since),
        why => why(clock, s, e),
        flapping => e.flapping,
    }
}

/// The silences active now, for the top of the status page.
fn silences(clock: &Clock, s: &Status) -> Vec<Value> {
    s.silences
        .iter()
        .map(|x| {
            let scope = match (&x.gateway, &x.roc) {
                (Some(g), Some(r)) => format!("{r}'s tunnels on {g}"),
                (Some(g), None) => g.clone(),
                (None, Some(r)) => format!("all of {r}"),
                (None, None) => "everything".to_string(),
            };
            context! {
                scope => scope,
                gateway => x.gateway.as_deref(),
                roc => x.roc.as_deref(),
                reason => x.reason.as_str(),
                until => clock.time(x.until),
                until_unix => x.until,
                left => duration(x.until.saturating_sub(clock.now)),
                origin => if x.from_gateway { "gateway" } else { "config" },
            }
        })
        .collect()
}

/// The top of the status page and the ROC panels: what is wrong first.
fn inventory_context(clock: &Clock, s: &Status) -> Value {
    let mut problems: Vec<&ExpectedNow> = s
        .expected
        .iter()
        .filter(|e| e.state != TunnelState::Up)
        .collect();
    problems.sort_by(|a, b| problem_order(a).cmp(&problem_order(b)));
    let up = s.expected.len() - problems.len();
    let count_of = |st: TunnelState| s.expected.iter().filter(|e| e.state == st).count() as u64;
    let counts: Vec<String> = TunnelState::ALL
        .into_iter()
        .filter(|&st| st != TunnelState::Up && count_of(st) > 0)
        .map(|st| format!("{} {}", count(count_of(st)), state_text(st)))
        .collect();
    let mut rocs: Vec<(&str, Vec<&ExpectedNow>)> = Vec::new();
    for e in &s.expected {
        match rocs.iter_mut().find(|(r, _)| *r == e.entry.roc) {
            Some((_, list)) => list.push(e),
            None => rocs.push((&e.entry.roc, vec![e])),
        }
    }
    context! {
        configured => s.inventory,
        total => s.expected.len(),
        total_text => plural(s.expected.len() as u64, "expected tunnel", "expected tunnels"),
        up => up,
        all_up => problems.is_empty(),
        counts => counts.join(", "),
        problems => problems.iter().map(|e| expected_value(clock, s, e)).collect::<Vec<_>>(),
        rocs => rocs.iter().map(|(name, list)| context! {
            name => *name,
            up => list.iter().filter(|e| e.state == TunnelState::Up).count(),
            total => list.len(),
            problems => list.iter().filter(|e| e.state.is_problem()).count(),
            unknown => list.iter().filter(|e| e.state == TunnelState::Unknown).count(),
            tunnels => list.iter().map(|e| expected_value(clock, s, e)).collect::<Vec<_>>(),
        }).collect::<Vec<_>>(),
    }
}

/// The context of `index.html`.
pub(crate) fn status_context(clock: &Clock, stats: &ReadStats, s: &Status) -> Value {
    let counts = |st: &str| s.gateways.iter().filter(|g| g.state.as_str() == st).count();
    let silent: Vec<Value> = s
        .gateways
        .iter()
        .filter(|g| g.state != GatewayState::Up)
        .map(|g| {
            context! {
                name => g.name.as_str(), state => g.state.as_str(),
                ago => clock.ago(g.last_heard), last_heard => clock.time(g.last_heard),
            }
        })
        .collect();
    context! {
        page => page(clock, stats, "index", "ROC tunnels — status"),
        inventory => inventory_context(clock, s),
        silences => silences(clock, s),
        silent => silent,
        gateways => s.gateways.iter().map(|g| gateway_status(clock, g, s.thresholds)).collect::<Vec<_>>(),
        summary => context! {
            up => counts("up"), late => counts("late"), down => counts("down"),
            tunnels => plural(s.gateways.iter().map(|g| g.tunnels.len() as u64).sum(), "tunnel", "tunnels"),
        },
        late_after => threshold(s.thresholds.late),
        down_after => threshold(s.thresholds.down),
        gone => s.gone.iter().map(|g| context! {
            gateway => g.gateway.as_str(),
            t => tunnel_value(clock, &g.tunnel),
            first => clock.time(g.first),
            last => clock.time(g.last),
            ended => clock.time(g.ended),
            ended_ago => clock.ago(g.ended),
            lasted => duration(g.last.saturating_sub(g.first)),
        }).collect::<Vec<_>>(),
        gone_more => s.gone_total.saturating_sub(s.gone.len()),
        gone_gateways => s.gone_gateways.iter().map(|(n, t)| context! {
            name => n.as_str(), last_heard => clock.time(*t), ago => clock.ago(*t),
        }).collect::<Vec<_>>(),
        messages => s.messages.iter().map(|(gw, m)| message(clock, gw, m)).collect::<Vec<_>>(),
        messages_more => s.messages_total.saturating_sub(s.messages.len() as u64),
    }
}

/// The left and right edges of each chart bucket as the charts print them
/// (`{:.1}`), formatted once: the same for every chart.
fn bucket_edges() -> &'static [(String, String)] {
    static EDGES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    EDGES.get_or_init(|| {
        let w = 1000.0 / BUCKETS as f64;
        (0..BUCKETS)
            .map(|i| {
                let x0 = i as f64 * w;
                (format!("{x0:.1}"), format!("{:.1}", x0 + w))
            })
            .collect()
    })
}

/// A chart's step line, one run per stretch of buckets with reports, and
/// the area under each; each height is formatted once per chart.
fn step_lines(g: &GatewayHistory, ymax: u32) -> (Vec<String>, Vec<String>) {
    let edges = bucket_edges();
    let mut heights: Vec<(u32, String)> = Vec::new();
    let (mut runs, mut areas) = (Vec::new(), Vec::new());
    let mut cur = String::new();
    let (mut first, mut last) = (0, 0);
    let mut close = |cur: &mut String, first: usize, last: usize| {
        runs.push(cur.trim_end().to_string());
        areas.push(format!("{},100 {cur}{},100", edges[first].0, edges[last].1));
        cur.clear();
    };
    for (i, b) in g.buckets.iter().enumerate() {
        match b {
            Some(b) => {
                if cur.is_empty() {
                    first = i;
                }
                let k = match heights.iter().position(|h| h.0 == b.max) {
                    Some(k) => k,
                    None => {
                        let y = 100.0 - f64::from(b.max) * 92.0 / f64::from(ymax);
                        heights.push((b.max, format!("{y:.1}")));
                        heights.len() - 1
                    }
                };
                let (x0, x1) = &edges[i];
                let y = &heights[k].1;
                for part in [x0, ",", y, " ", x1, ",", y, " "] {
                    cur.push_str(part);
                }
                last = i;
            }
            None if !cur.is_empty() => close(&mut cur, first, last),
            None => {}
        }
    }
    if !cur.is_empty() {
        close(&mut cur, first, last);
    }
    (runs, areas)
}

/// Chart geometry: the plot is a 0..1000 × 0..100 box (y down), scaled
/// to any width by the SVG viewBox with `preserveAspectRatio="none"`.
fn chart(clock: &Clock, r: &RangeHistory, g: &GatewayHistory) -> Value {
    let span = r.end.saturating_sub(r.start).max(1);
    let ymax = g.max_count.max(1);
    let y = |n: u32| 100.0 - f64::from(n) * 92.0 / f64::from(ymax);
    let (runs, areas) = step_lines(g, ymax);
    let xpos = |t: u64| (t.saturating_sub(r.start).min(span)) as f64 * 1000.0 / span as f64;
    let silences: Vec<Value> = g
        .silences
        .iter()
        .map(|&(a, b)| {
            let x = xpos(a.max(r.start));
            let x2 = xpos(b.min(r.end));
            context! { x => format!("{x:.1}"), w => format!("{:.1}", (x2 - x).max(1.0)) }
        })
        .collect();
    // Five time ticks, labelled with the day when the range spans days.
    let with_day = span > 2 * 86_400;
    let ticks: Vec<Value> = (0..=4)
        .map(|i| {
            let t = r.start + span * i / 4;
            context! { pct => i * 25, label => clock.short(t, with_day) }
        })
        .collect();
    // The part of the range before the logs begin.
    let nodata = r
        .data_start
        .filter(|&d| d > r.start)
        .map(|d| format!("{:.1}", xpos(d)));
    context! {
        nodata => nodata,
        runs => runs,
        areas => areas,
        silences => silences,
        ticks => ticks,
        ymax => g.max_count,
        gridy => format!("{:.1}", y(ymax)),
    }
}

/// What the history page's lazy values read from: the catalog the lanes'
/// tunnels are in, and the clock.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) clock: Clock,
}

/// The history page lists tens of thousands of lanes (most of them hidden
/// ones, without bars), and a map made for each, with every field of its
/// tunnel formatted, cost more than the page's rendering; so a lane's
/// tunnel, a hidden lane and the list of them are values made as the
/// template reads them, and dropped when it moves on. Their fields are the
/// maps' that [`tunnel_value`] and the hidden lanes had: the same text.
#[derive(Debug)]
struct TunnelView {
    src: Arc<Source>,
    id: TunnelId,
}

/// A tunnel's fields as the templates name them.
const TUNNEL_FIELDS: [&str; 9] = [
    "pid",
    "kind",
    "listen",
    "listen_port",
    "target",
    "display",
    "user",
    "dest",
    "started",
];

/// A tunnel's field `name` (one of [`TUNNEL_FIELDS`]).
fn tunnel_field(clock: &Clock, t: &Tunnel, name: &str) -> Option<Value> {
    Some(match name {
        "pid" => Value::from(t.pid),
        "kind" => Value::from(t.kind.letter()),
        "listen" => text_value(|s| push_listen(s, t)),
        "listen_port" => Value::from(t.listen_port),
        "target" => text_value(|s| push_target(s, t)),
        "display" => match t.vnc_display() {
            Some(d) => text_value(|s| {
                s.push(':');
                push_number(s, d.into());
            }),
            None => Value::from(()),
        },
        "user" => Value::from(t.user.as_str()),
        "dest" => Value::from(t.dest.as_str()),
        "started" => Value::from(t.started.map(|s| clock.time(s))),
        _ => return None,
    })
}

impl Object for TunnelView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let t = &self.src.catalog.tunnel(self.id).tunnel;
        tunnel_field(&self.src.clock, t, key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&TUNNEL_FIELDS)
    }
}

fn tunnel_view(src: &Arc<Source>, id: TunnelId) -> Value {
    Value::from_object(TunnelView {
        src: Arc::clone(src),
        id,
    })
}

/// A lane listed without bars: its tunnel, last seen, sessions, open and
/// broken.
#[derive(Clone, Copy, Debug)]
struct HiddenLane {
    id: TunnelId,
    last_seen: u64,
    sessions: usize,
    open: bool,
    broken: bool,
}

/// The hidden lanes of one gateway and range, a value each as the template
/// reaches it.
#[derive(Debug)]
struct HiddenLanes {
    src: Arc<Source>,
    lanes: Vec<HiddenLane>,
}

#[derive(Debug)]
struct HiddenLaneView {
    src: Arc<Source>,
    /// Its tunnel's value, which the template reads four or five times.
    t: Value,
    lane: HiddenLane,
}

impl Object for HiddenLanes {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let lane = *self.lanes.get(key.as_usize()?)?;
        Some(Value::from_object(HiddenLaneView {
            src: Arc::clone(&self.src),
            t: tunnel_view(&self.src, lane.id),
            lane,
        }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.lanes.len())
    }
}

impl Object for HiddenLaneView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let l = &self.lane;
        Some(match key.as_str()? {
            "t" => self.t.clone(),
            "last_seen" => Value::from(self.src.clock.time(l.last_seen)),
            "sessions" => Value::from(l.sessions),
            "open" => Value::from(l.open),
            "broken" => Value::from(l.broken),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["t", "last_seen", "sessions", "open", "broken"])
    }
}

fn hidden_lanes(src: &Arc<Source>, lanes: &[Lane<'_>]) -> Value {
    let lanes = lanes
        .iter()
        .map(|l| HiddenLane {
            id: l.id,
            last_seen: l.last_seen(),
            sessions: l.segments_total,
            open: l.open(),
            broken: l.broken,
        })
        .collect();
    Value::from_object(HiddenLanes {
        src: Arc::clone(src),
        lanes,
    })
}

fn lanes(src: &Arc<Source>, r: &RangeHistory, g: &GatewayHistory) -> Vec<Value> {
    let clock = &src.clock;
    let span = r.end.saturating_sub(r.start).max(1) as f64;
    g.lanes
        .iter()
        .map(|lane| {
            let latest = lane.segments.len().saturating_sub(1);
            let bars: Vec<Value> = lane
                .segments
                .iter()
                .enumerate()
                .map(|(i, &(first, last, open))| {
                    let (left, width) = placed(r, span, first, last);
                    context! {
                        left => left,
                        width => width,
                        first => clock.time(first),
                        last => clock.time(last),
                        lasted => duration(last.saturating_sub(first)),
                        open => open,
                        broken => lane.broken && i == latest,
                    }
                })
                .collect();
            context! {
                t => tunnel_view(src, lane.id),
                bars => bars,
                in_use => in_use_bars(clock, r, &lane.in_use),
                open => lane.open(),
                broken => lane.broken,
                sessions => lane.segments_total,
                more => lane.segments_total - lane.segments.len(),
            }
        })
        .collect()
}

/// Where a bar from `first` to `last` sits on range `r`'s track (`span`
/// seconds wide): its left edge and width in percent, as the page writes
/// them. A bar is at least 0.4 % wide and never runs past the track.
fn placed(r: &RangeHistory, span: f64, first: u64, last: u64) -> (String, String) {
    let a = first.max(r.start).saturating_sub(r.start) as f64 / span * 100.0;
    let e = last.min(r.end).saturating_sub(r.start) as f64 / span * 100.0;
    let left = a.min(99.6);
    let width = (e - a).max(0.4).min(100.0 - left);
    (format!("{left:.2}"), format!("{width:.2}"))
}

/// The marks of a lane's in-use stretches on its track, as its bars.
fn in_use_bars(clock: &Clock, r: &RangeHistory, stretches: &[(u64, u64)]) -> Vec<Value> {
    let span = r.end.saturating_sub(r.start).max(1) as f64;
    stretches
        .iter()
        .map(|&(first, last)| {
            let (left, width) = placed(r, span, first, last);
            context! {
                left => left,
                width => width,
                first => clock.time(first),
                last => clock.time(last),
                lasted => duration(last.saturating_sub(first)),
                first_unix => first,
                last_unix => last,
            }
        })
        .collect()
}

/// The candidates to close on the history page.
fn idle_value(clock: &Clock, idle: &[IdleTunnel], idle_after: u64) -> Value {
    context! {
        after => range_title(idle_after),
        after_secs => idle_after,
        tunnels => idle.iter().map(|i| context! {
            gateway => i.gateway.as_str(),
            t => tunnel_value(clock, &i.tunnel),
            since => clock.time(i.idle_since),
            since_unix => i.idle_since,
            idle_for => duration(i.last.saturating_sub(i.idle_since)),
            up_since => clock.time(i.up_since),
            last => clock.time(i.last),
        }).collect::<Vec<_>>(),
    }
}

fn roc_history(clock: &Clock, roc: &RocHistory) -> Value {
    context! {
        name => roc.name.as_str(),
        tunnels => roc.tunnels,
        availability => roc.availability().map(percent),
        up => duration(roc.up),
        expected => duration(roc.expected),
        outages => roc.outages.iter().map(|o| context! {
            gateway => o.entry.gateway.as_str(),
            listen => o.entry.listen,
            target => o.entry.target(),
            station => o.entry.station.as_deref(),
            state => o.state.as_str(),
            state_text => state_text(o.state),
            start => clock.time(o.start),
            end => o.end.map(|t| clock.time(t)),
            then => o.then.map(state_text),
            lasted => duration(o.end.unwrap_or(clock.now).saturating_sub(o.start)),
        }).collect::<Vec<_>>(),
        outages_more => roc.outages_total.saturating_sub(roc.outages.len()),
    }
}

/// A range's value on the history page.
pub(crate) fn range_value(
    src: &Arc<Source>,
    sections: &Arc<Sections>,
    range: usize,
    r: &RangeHistory,
) -> Value {
    let clock = &src.clock;
    let gateways: Vec<Value> = r
        .gateways
        .iter()
        .map(|g| {
            let value = context! {
                name => g.name.as_str(),
                availability => g.availability().map(percent),
                window => duration(g.window.1.saturating_sub(g.window.0)),
                window_partial => g.window.0 > r.start,
                window_start => clock.time(g.window.0),
                silent => duration(g.silent),
                reports => count(g.reports as u64),
                chart => chart(clock, r, g),
                lanes => lanes(src, r, g),
                lanes_more => g.hidden_lanes.len(),
                hidden_lanes => hidden_lanes(src, &g.hidden_lanes),
                lanes_total => g.lanes_total,
                sessions => count(g.sessions as u64),
                silences => g.silences.iter().map(|&(a, b)| context! {
                    from => clock.time(a), to => clock.time(b), lasted => duration(b - a),
                    ongoing => b == r.end,
                }).collect::<Vec<_>>(),
                silences_total => g.silences_total,
                silences_more => g.silences_total.saturating_sub(g.silences.len()),
            };
            sections.add(range, value)
        })
        .collect();
    context! {
        label => r.range.label.as_str(),
        title => range_title(r.range.secs),
        start => clock.time(r.start),
        end => clock.time(r.end),
        longer_than_data => r.longer_than_data(),
        data_start => r.data_start.map(|t| clock.time(t)),
        data_span => r.data_start.map(|t| duration(r.end.saturating_sub(t))),
        gateways => gateways,
        rocs => r.rocs.iter().map(|roc| roc_history(clock, roc)).collect::<Vec<_>>(),
        messages => r.messages.iter().map(|(gw, m)| message(clock, gw, m)).collect::<Vec<_>>(),
        messages_total => r.messages_total,
        messages_more => r.messages_total.saturating_sub(r.messages.len()),
    }
}

/// `gateway_section(g)` in a template: gateway `g`'s section of the history
/// page, `history-gateway.html` rendered with `g` (by [`Sections`] when `g`
/// is one of theirs).
fn gateway_section(state: &State<'_, '_>, g: Value) -> Result<Value, minijinja::Error> {
    let section = g.get_attr("section")?;
    let html = match section.downcast_object_ref::<SectionRef>() {
        Some(s) => s.sections.take(state.env(), s.range, s.index)?,
        None => render_section(state.env(), &g)?,
    };
    Ok(Value::from_safe_string(html))
}

fn render_section(env: &Environment<'_>, g: &Value) -> Result<String, minijinja::Error> {
    thread_local! {
        static IN_SECTION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    // A section asking for a section would recurse until the stack ran out.
    if IN_SECTION.replace(true) {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "gateway_section() inside history-gateway.html",
        ));
    }
    let html = env
        .get_template("history-gateway.html")
        .and_then(|t| t.render(context! { g => g }));
    IN_SECTION.set(false);
    html
}

/// The history page's gateway sections: most of the page (the lanes of
/// every gateway and range, tens of thousands), and most of a warm run's
/// time. While the page renders from its first section on, a second thread
/// renders them from the last one back ([`Sections::render_ahead`]); each
/// is rendered once, by the thread that claims it first, so the two meet
/// in the middle and the page takes what the other made.
pub(crate) struct Sections {
    made: Mutex<Made>,
    changed: Condvar,
}

#[derive(Default)]
struct Made {
    /// By range, then gateway, in the page's order: the gateway's value
    /// (without its `section`) and its section.
    ranges: Vec<Vec<(Value, Slot)>>,
    /// The page has asked for a section: its template uses them.
    started: bool,
    /// The page is rendered (or failed): none will be asked for now.
    ended: bool,
}

enum Slot {
    /// Not claimed yet.
    Waiting,
    /// Being rendered by the second thread.
    Claimed,
    /// Rendered by the second thread, for the page to take.
    Done(String),
    /// The page renders it when it asks (taken once already, or the second
    /// thread failed on it: the page's own render gives the error).
    Page,
}

/// What a gateway's value carries to find its section.
struct SectionRef {
    sections: Arc<Sections>,
    range: usize,
    index: usize,
}

impl std::fmt::Debug for SectionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gateway section {}.{}", self.range, self.index)
    }
}

impl Object for SectionRef {}

impl Sections {
    /// Sections for `ranges` ranges.
    pub(crate) fn new(ranges: usize) -> Sections {
        let made = Made {
            ranges: (0..ranges).map(|_| Vec::new()).collect(),
            ..Made::default()
        };
        Sections {
            made: Mutex::new(made),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Made> {
        self.made.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next gateway's value of range `range`, with its `section`.
    fn add(self: &Arc<Self>, range: usize, gateway: Value) -> Value {
        let mut made = self.lock();
        let Some(list) = made.ranges.get_mut(range) else {
            return gateway;
        };
        let index = list.len();
        list.push((gateway.clone(), Slot::Waiting));
        let section = Value::from_object(SectionRef {
            sections: Arc::clone(self),
            range,
            index,
        });
        context! { section => section, ..gateway }
    }

    /// A section for the page: the second thread's, or rendered here.
    fn take(
        &self,
        env: &Environment<'_>,
        range: usize,
        index: usize,
    ) -> Result<String, minijinja::Error> {
        let mut made = self.lock();
        if !made.started {
            made.started = true;
            self.changed.notify_all();
        }
        loop {
            let Some((gateway, slot)) = made.ranges.get_mut(range).and_then(|r| r.get_mut(index))
            else {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    "no such gateway section",
                ));
            };
            match std::mem::replace(slot, Slot::Page) {
                Slot::Done(html) => return Ok(html),
                Slot::Claimed => {
                    *slot = Slot::Claimed;
                    made = self
                        .changed
                        .wait(made)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Slot::Waiting | Slot::Page => {
                    let gateway = gateway.clone();
                    drop(made);
                    return render_section(env, &gateway);
                }
            }
        }
    }

    /// The second thread: once the page asks for its first section, renders
    /// them from the last one back until it reaches one the page has
    /// claimed, or the page is done.
    pub(crate) fn render_ahead(&self, env: &Environment<'_>) {
        let mut made = self.lock();
        while !made.started && !made.ended {
            made = self
                .changed
                .wait(made)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let order: Vec<(usize, usize)> = (made.ranges.iter().enumerate())
            .flat_map(|(r, list)| (0..list.len()).map(move |i| (r, i)))
            .rev()
            .collect();
        for (range, index) in order {
            if made.ended {
                return;
            }
            let Some((gateway, slot)) = made.ranges.get_mut(range).and_then(|r| r.get_mut(index))
            else {
                return;
            };
            if !matches!(slot, Slot::Waiting) {
                return;
            }
            *slot = Slot::Claimed;
            let gateway = gateway.clone();
            drop(made);
            let mut claim = Claim {
                sections: self,
                range,
                index,
                html: None,
            };
            claim.html = render_section(env, &gateway).ok();
            drop(claim);
            made = self.lock();
        }
    }

    /// Nothing more will be asked for: the second thread stops.
    pub(crate) fn end(&self) {
        self.lock().ended = true;
        self.changed.notify_all();
    }
}

/// A section the second thread is rendering: dropped, its slot gets what
/// was made, or goes back to the page (a failure, or a panic unwinding).
struct Claim<'a> {
    sections: &'a Sections,
    range: usize,
    index: usize,
    html: Option<String>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut made = self.sections.lock();
        if let Some((_, slot)) = made
            .ranges
            .get_mut(self.range)
            .and_then(|r| r.get_mut(self.index))
        {
            *slot = match self.html.take() {
                Some(html) => Slot::Done(html),
                None => Slot::Page,
            };
        }
        self.sections.changed.notify_all();
    }
}

/// The context of `history.html`: `ranges` made by [`range_value`];
/// `idle`: the candidates to close, idle for `idle_after` seconds.
pub(crate) fn history_context(
    src: &Arc<Source>,
    stats: &ReadStats,
    ranges: Vec<Value>,
    idle: &[IdleTunnel],
    idle_after: u64,
) -> Value {
    let clock = &src.clock;
    context! {
        page => page(clock, stats, "history", "ROC tunnels — history"),
        ranges => ranges,
        idle => idle_value(clock, idle, idle_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_is_on_a_tunnel() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(in_use_text(None, &[]), None);
        assert_eq!(in_use_text(Some(0), &[]).as_deref(), Some("idle"));
        assert_eq!(
            in_use_text(Some(2), &names(&["novaroc1", "192.0.2.15"])).as_deref(),
            Some("in use: 2 — novaroc1, 192.0.2.15")
        );
        // The list was cut to fit a datagram: the count stays.
        assert_eq!(
            in_use_text(Some(3), &names(&["novaroc1"])).as_deref(),
            Some("in use: 3 — novaroc1, …")
        );
        let seven = names(&["a", "b", "c", "d", "e", "f", "g"]);
        assert_eq!(
            in_use_text(Some(7), &seven).as_deref(),
            Some("in use: 7 — a, b, c, d, e and 2 more")
        );
    }

    #[test]
    fn addresses() {
        let t = |bind: &str, listen_port, host: &str, target_port| Tunnel {
            bind: bind.into(),
            listen_port,
            target_host: host.into(),
            target_port,
            ..Tunnel::default()
        };
        let cases = [
            (
                t("", 5901, "novadaq-far-dcm-03", 5927),
                "5901",
                "novadaq-far-dcm-03:5927",
            ),
            (t("127.0.0.1", 0, "", 1), "127.0.0.1:0", ":1"),
            (
                t("::1", 65535, "fe80::1", 10),
                "[::1]:65535",
                "[fe80::1]:10",
            ),
            (t("", 7, "", 0), "7", "—"),
        ];
        for (tunnel, want_listen, want_target) in cases {
            assert_eq!(listen(&tunnel), want_listen);
            assert_eq!(target(&tunnel), want_target);
        }
        let mut s = String::new();
        for n in [0, 9, 10, 59, 100, 4_294_967_295] {
            s.clear();
            push_number(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(4_320_000), "4,320,000");
        assert_eq!(percent(1.0), "100 %");
        assert_eq!(percent(0.99999), "99.99 %");
        assert_eq!(percent(0.1 + 0.2), "30.00 %");
        assert_eq!(percent(0.0), "0.00 %");
        assert_eq!(range_title(86_400), "24 hours");
        assert_eq!(range_title(30 * 86_400), "30 days");
        assert_eq!(range_title(5400), "90 minutes");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(180), "3 min");
        assert_eq!(duration(7500), "2 h 05 min");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5), "3 d 4 h");
    }

    #[test]
    fn times_in_zone() {
        let tz = TimeZone::get("America/Chicago").unwrap();
        let c = Clock::new(tz, 1_763_932_800); // 2025-11-23 21:20:00 UTC
        assert_eq!(c.time(1_763_932_800), "2025-11-23 15:20");
        assert_eq!(c.time_full(1_763_932_800), "2025-11-23 15:20:00 CST");
        assert_eq!(c.zone_label(), "America/Chicago (CST, UTC-06:00)");
        assert_eq!(c.ago(1_763_932_800 - 300), "5 min ago");
    }

    #[test]
    fn minutes_as_strftime_writes_them() {
        // Across a DST change each way, the epoch, and past what jiff holds.
        for zone in [
            "UTC",
            "America/Chicago",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
        ] {
            let c = Clock::new(TimeZone::get(zone).unwrap(), 0);
            let times = (1_772_900_000..1_773_000_000)
                .step_by(3_571)
                .chain((1_793_500_000..1_793_600_000).step_by(3_571))
                .chain([0, 59, 60, 253_402_300_799, u64::MAX]);
            for t in times {
                let slow = c.zoned(t).strftime("%Y-%m-%d %H:%M").to_string();
                assert_eq!(c.time(t), slow, "{zone} {t}");
            }
        }
    }

    #[test]
    fn sections_rendered_ahead_are_the_page_own() {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_function("gateway_section", gateway_section);
        env.add_template("history-gateway.html", "<p>{{ g.name }}</p>")
            .unwrap();
        env.add_template(
            "page.html",
            "{% for r in ranges %}[{% for g in r %}{{ gateway_section(g) }}{% endfor %}]{% endfor %}",
        )
        .unwrap();
        let names = |r: usize| (0..40).map(move |i| format!("gw{r}-{i}<"));
        let expected: String = (0..3)
            .map(|r| {
                format!(
                    "[{}]",
                    names(r)
                        .map(|n| format!("<p>{}</p>", n.replace('<', "&lt;")))
                        .collect::<String>()
                )
            })
            .collect();
        for _ in 0..20 {
            let sections = Arc::new(Sections::new(3));
            let ranges: Vec<Vec<Value>> = (0..3)
                .map(|r| {
                    names(r)
                        .map(|n| sections.add(r, context! { name => n }))
                        .collect()
                })
                .collect();
            let page = std::thread::scope(|s| {
                let ahead = s.spawn(|| sections.render_ahead(&env));
                let page = env
                    .get_template("page.html")
                    .unwrap()
                    .render(context! { ranges => ranges });
                sections.end();
                ahead.join().unwrap();
                page.unwrap()
            });
            assert_eq!(page, expected);
        }
        // A page that never asks: the second thread stops when it ends.
        let sections = Sections::new(1);
        std::thread::scope(|s| {
            let ahead = s.spawn(|| sections.render_ahead(&env));
            sections.end();
            ahead.join().unwrap();
        });
    }

    #[test]
    fn every_template_escapes() {
        let env = make_env(None);
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
        let mut env = make_env(None);
        env.add_template("plain.txt", "{{ x }}").unwrap();
        let out = env
            .get_template("plain.txt")
            .unwrap()
            .render(context! { x => "<b>" })
            .unwrap();
        assert_eq!(out, "&lt;b&gt;");
    }
}
