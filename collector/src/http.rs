//! HTTP: `/status.json`, `/metrics`, `/logs/` and the site, on tiny_http,
//! kept off the ingest path and shielded from tiny_http's traps.
//!
//! Ingest never touches a socket of this side: it publishes an
//! `Arc<Snapshot>` behind a mutex held only to swap or clone the `Arc`, and
//! the counters are atomics. Everything here runs on threads of its own.
//!
//! tiny_http 0.12 has no read or write timeouts, no header size limit, one
//! thread per connection, and its accept thread silently dies on `EMFILE`. So
//! the public TCP port is not given to it. A small *gate* owns the listener:
//! it never stops accepting (an `accept` error is logged and retried), it
//! admits at most [`MAX_CONNECTIONS`] at once, and at most
//! [`MAX_CONNECTIONS_PER_CLIENT`] from one address (others get 503 at once), reads
//! the request head with a size limit and a deadline (431, 414, 408), lets
//! only GET and HEAD through (405), and forwards a clean request line with
//! `Connection: close` to tiny_http over a Unix socket in a private directory
//! (`DATA/.http/`). It copies the answer back with write timeouts and an
//! overall deadline, so a slow or idle client holds only its own threads;
//! there are as many tiny_http workers as admitted connections, so it cannot
//! stall other clients either. If tiny_http's side dies anyway (its accept
//! thread reports an error, or a thread of ours ends), [`HttpServer::check`]
//! says so and the collector exits non-zero for cron to restart it.
//!
//! Files are served only by names that appear in a directory listing and
//! parse as log names (or, for the site, are plain files of `--site`): no
//! path from a URL is ever joined onto the filesystem. Responses carry a
//! `Content-Type` and a `Content-Length` (the chunked threshold is raised),
//! and a log file is served up to the end of its last complete row at the
//! moment of the request, since ingest may be appending to it.
//!
//! To face a network, keep `--http` on loopback and put a reverse proxy in
//! front (see the README).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nanoserde::{SerJson, SerJsonState};
use tiny_http::{Header, Method, Response, Server, StatusCode};

use crate::error::Error;
use crate::metrics::{self, GatewaySeries, Metrics};
use crate::say::say;
use crate::state::Gateway;
use logs::Thresholds;
use logs::inventory::Inventory;

/// Connections served at once; more get 503 at once.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// Connections served at once from one client address; more from it get
/// 503 at once, so one client (slow, idle or hostile) can hold at most
/// half of [`MAX_CONNECTIONS`] and others keep being served. Behind a
/// reverse proxy every client has the proxy's address: it gets this many.
pub(crate) const MAX_CONNECTIONS_PER_CLIENT: usize = 16;
/// Largest request head (request line and headers), bytes.
pub(crate) const MAX_HEAD: usize = 8192;
/// Longest request target, bytes.
pub(crate) const MAX_URL: usize = 2048;
/// Time a client has to send its request head.
pub(crate) const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Time a client has to take its whole answer.
pub(crate) const ANSWER_DEADLINE: Duration = Duration::from_secs(120);
/// Per read or write on a client socket.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What ingest publishes for HTTP: the gateways as last written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    pub gateways: Vec<Arc<Gateway>>,
    pub thresholds: Thresholds,
    /// The expected tunnels and their states.
    pub inventory: Arc<Inventory>,
    /// The silences of the config file (active or not).
    pub silences: Arc<Vec<logs::silence::Silence>>,
    /// The last refused datagram of each reason.
    pub refusals: Vec<Refusal>,
    /// Per expected tunnel (in the inventory's order): flapping until then
    /// (`logs::damping`), or `None`.
    pub flapping: Vec<Option<u64>>,
}

/// A refused datagram, as `status.json` shows the last one of each reason:
/// `gateway` only when its signature checked out (before that, the name
/// in a body is anyone's claim), the source address always.
#[derive(Clone, Debug, Default)]
pub(crate) struct Refusal {
    pub time: u64,
    pub reason: &'static str,
    pub gateway: Option<String>,
    pub source: String,
    pub detail: String,
}

#[derive(SerJson)]
struct RefusalJson {
    time: String,
    reason: String,
    gateway: Option<String>,
    source: String,
    detail: String,
}

/// The slot ingest swaps a new snapshot into.
pub(crate) type SharedSnapshot = Arc<Mutex<Arc<Snapshot>>>;

/// Takes the current snapshot (holds the lock only to clone the `Arc`).
pub(crate) fn current(shared: &SharedSnapshot) -> Arc<Snapshot> {
    match shared.lock() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// One tunnel in `status.json`: the record's own JSON, every field
/// (`connections` `null` and `connected` `[]` when unknown), plus
/// `first_seen`.
struct TunnelJson<'a>(&'a crate::state::TunnelSeen);

impl SerJson for TunnelJson<'_> {
    fn ser_json(&self, _d: usize, s: &mut SerJsonState) {
        let mut json = self.0.tunnel.to_json_all();
        json.pop(); // the closing brace
        json.push_str(",\"first_seen\":");
        json.push_str(&self.0.first_seen.to_string());
        json.push('}');
        s.out.push_str(&json);
    }
}

#[derive(SerJson)]
struct GatewayJson<'a> {
    name: String,
    last_seen: String,
    last_seen_unix: u64,
    age_seconds: u64,
    state: String,
    last_kind: String,
    source: String,
    last_report: Option<String>,
    message: Option<String>,
    message_time: Option<String>,
    /// The period the gateway declares (`null`: none), and the thresholds
    /// it is judged by (`logs::Staleness`).
    period: OptNum,
    late_after_seconds: u64,
    down_after_seconds: u64,
    tunnels: Vec<TunnelJson<'a>>,
}

/// A tunnel record as the client sends it, every field (`null` when there
/// is none).
struct RecordJson<'a>(Option<&'a gateway_client::tunnel::Tunnel>);

impl SerJson for RecordJson<'_> {
    fn ser_json(&self, _d: usize, s: &mut SerJsonState) {
        match self.0 {
            Some(t) => s.out.push_str(&t.to_json_all()),
            None => s.out.push_str("null"),
        }
    }
}

/// A text or `null` (nanoserde leaves a `None` field out; the contract
/// has every key).
struct OptText(Option<String>);

impl SerJson for OptText {
    fn ser_json(&self, d: usize, s: &mut SerJsonState) {
        match &self.0 {
            Some(t) => t.ser_json(d, s),
            None => s.out.push_str("null"),
        }
    }
}

/// A number or `null`.
struct OptNum(Option<u32>);

impl SerJson for OptNum {
    fn ser_json(&self, _d: usize, s: &mut SerJsonState) {
        match self.0 {
            Some(n) => s.out.push_str(&n.to_string()),
            None => s.out.push_str("null"),
        }
    }
}

/// One expected tunnel: its `[[tunnel]]` entry, its state and since when,
/// and the tunnel that decided it.
#[derive(SerJson)]
struct ExpectedJson<'a> {
    gateway: String,
    listen: u16,
    target: String,
    roc: String,
    station: OptText,
    owner: OptText,
    state: String,
    since: u64,
    /// It changed state too often lately (`tunnel_flapping`): its alerts
    /// wait until it has been steady for an hour.
    flapping: bool,
    tunnel: RecordJson<'a>,
}

#[derive(SerJson)]
struct StatusJson<'a> {
    generated: String,
    late_after_seconds: u64,
    down_after_seconds: u64,
    gateways: Vec<GatewayJson<'a>>,
    expected: Vec<ExpectedJson<'a>>,
    last_refused: Vec<RefusalJson>,
    silences: Vec<SilenceJson>,
}

/// An active silence: its scope, reason and end.
#[derive(SerJson)]
struct SilenceJson {
    gateway: OptText,
    roc: OptText,
    from: u64,
    until: u64,
    until_time: String,
    reason: String,
    /// `config` ([[silence]]) or `gateway` (`gateway-client --maintenance`).
    origin: &'static str,
}

/// `status.json` for a snapshot at time `now`.
pub(crate) fn status_json(snap: &Snapshot, now: u64) -> String {
    let gateways = snap
        .gateways
        .iter()
        .map(|g| {
            let age = now.saturating_sub(g.last_seen);
            GatewayJson {
                name: g.name.clone(),
                last_seen: rfc3339(g.last_seen),
                last_seen_unix: g.last_seen,
                age_seconds: age,
                // As ingest last evaluated it (every second), the state its
                // alerts and /metrics follow.
                state: g.state.as_str().to_string(),
                last_kind: g.last_kind.as_str().to_string(),
                source: g.source.clone(),
                last_report: g.last_report.map(rfc3339),
                message: g.message.as_ref().map(|(_, m)| m.clone()),
                message_time: g.message.as_ref().map(|(t, _)| rfc3339(*t)),
                period: OptNum(g.period),
                late_after_seconds: g.thresholds.late,
                down_after_seconds: g.thresholds.down,
                tunnels: g.tunnels.iter().map(TunnelJson).collect(),
            }
        })
        .collect();
    let expected = snap
        .inventory
        .iter()
        .zip(snap.flapping.iter().chain(std::iter::repeat(&None)))
        .map(|((e, j), flapping)| ExpectedJson {
            gateway: e.gateway.clone(),
            listen: e.listen,
            target: e.target(),
            roc: e.roc.clone(),
            station: OptText(e.station.clone()),
            owner: OptText(e.owner.clone()),
            state: j.state.as_str().to_string(),
            since: j.since,
            flapping: flapping.is_some_and(|until| now < until),
            tunnel: RecordJson(j.tunnel.as_ref()),
        })
        .collect();
    StatusJson {
        generated: rfc3339(now),
        late_after_seconds: snap.thresholds.late,
        down_after_seconds: snap.thresholds.down,
        gateways,
        expected,
        last_refused: snap
            .refusals
            .iter()
            .map(|r| RefusalJson {
                time: rfc3339(r.time),
                reason: r.reason.to_string(),
                gateway: r.gateway.clone(),
                source: r.source.clone(),
                detail: r.detail.clone(),
            })
            .collect(),
        silences: snap
            .silences
            .iter()
            .filter(|s| s.active(now))
            .map(|s| SilenceJson {
                gateway: OptText(s.gateway.clone()),
                roc: OptText(s.roc.clone()),
                from: s.from,
                until: s.until,
                until_time: rfc3339(s.until),
                reason: s.reason.clone(),
                origin: if s.from_gateway { "gateway" } else { "config" },
            })
            .collect(),
    }
    .serialize_json()
}

/// `/metrics` for a snapshot at time `now`.
pub(crate) fn metrics_text(m: &Metrics, snap: &Snapshot, now: u64) -> String {
    let series: Vec<GatewaySeries> = snap
        .gateways
        .iter()
        .map(|g| GatewaySeries {
            name: g.name.clone(),
            last_seen: g.last_seen,
            state: g.state,
            tunnels: g.tunnels.len(),
            late: g.thresholds.late,
            down: g.thresholds.down,
        })
        .collect();
    let silenced: Vec<&logs::silence::Silence> =
        snap.silences.iter().filter(|s| s.active(now)).collect();
    metrics::render(m, &series, &snap.inventory, &silenced)
}

/// Decodes `%XX` escapes; `None` for a bad escape or a result that is not
/// UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The Content-Type for a file name, by extension.
pub(crate) fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Status,
    Metrics,
    Health,
    LogsIndex,
    LogsRedirect,
    Log(String),
    SiteIndex,
    Site(String),
    BadPath,
    NotFound,
}

/// Routes a raw request target (as tiny_http gives it: query included,
/// nothing decoded).
pub(crate) fn route(target: &str) -> Route {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let Some(path) = percent_decode(path) else {
        return Route::BadPath;
    };
    if !path.starts_with('/')
        || path.contains('\0')
        || path.contains('\\')
        || path.split('/').any(|seg| seg == ".." || seg == ".")
    {
        return Route::BadPath;
    }
    match path.as_str() {
        "/status.json" => Route::Status,
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Health,
        "/logs" => Route::LogsRedirect,
        "/logs/" => Route::LogsIndex,
        "/" | "/index.html" => Route::SiteIndex,
        p => {
            if let Some(name) = p.strip_prefix("/logs/") {
                if !name.contains('/') {
                    return Route::Log(name.to_string());
                }
            } else if let Some(name) = p.strip_prefix('/')
                && !name.contains('/')
                && !name.starts_with('.')
            {
                return Route::Site(name.to_string());
            }
            Route::NotFound
        }
    }
}

/// A running HTTP side.
pub(crate) struct HttpServer {
    dead: Arc<Mutex<Option<String>>>,
    threads: Vec<JoinHandle<()>>,
    socket_dir: PathBuf,
}

struct Ctx {
    data: PathBuf,
    site: Option<PathBuf>,
    snapshot: SharedSnapshot,
    metrics: Arc<Metrics>,
}

fn die(dead: &Mutex<Option<String>>, why: String) {
    if let Ok(mut d) = dead.lock()
        && d.is_none()
    {
        *d = Some(why);
    }
}

impl HttpServer {
    /// Binds `addr` and starts the gate, tiny_http and its workers.
    pub(crate) fn start(
        addr: SocketAddr,
        data: &Path,
        site: Option<PathBuf>,
        snapshot: SharedSnapshot,
        metrics: Arc<Metrics>,
    ) -> Result<HttpServer, Error> {
        let listener = TcpListener::bind(addr).map_err(|source| Error::Bind {
            what: "HTTP",
            addr: addr.to_string(),
            source,
        })?;
        let (inner, socket_dir, internal) = bind_internal(data)?;
        let server = Arc::new(
            Server::from_listener(inner, None).map_err(|e| Error::HttpDied(e.to_string()))?,
        );
        let dead = Arc::new(Mutex::new(None));
        let ctx = Arc::new(Ctx {
            data: data.to_path_buf(),
            site,
            snapshot,
            metrics: metrics.clone(),
        });
        let mut threads = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            let (server, ctx, dead) = (server.clone(), ctx.clone(), dead.clone());
            threads.push(spawn(&format!("http-{i}"), move || {
                worker(&server, &ctx, &dead)
            })?);
        }
        let (d, m) = (dead.clone(), metrics);
        threads.push(spawn("http-gate", move || {
            gate(&listener, &internal, &m, &d)
        })?);
        Ok(HttpServer {
            dead,
            threads,
            socket_dir,
        })
    }

    /// `Err` when the HTTP side no longer serves.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if let Ok(d) = self.dead.lock()
            && let Some(why) = d.as_ref()
        {
            return Err(Error::HttpDied(why.clone()));
        }
        if self.threads.iter().any(JoinHandle::is_finished) {
            return Err(Error::HttpDied("an HTTP thread ended".into()));
        }
        Ok(())
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.socket_dir);
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024)
        .spawn(f)
        .map_err(|e| Error::HttpDied(format!("cannot start a thread: {e}")))
}

/// Where tiny_http listens: a socket in `DATA/.http/` (mode 0700).
#[derive(Clone)]
enum Internal {
    Path(PathBuf),
}

fn bind_internal(data: &Path) -> Result<(UnixListener, PathBuf, Internal), Error> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = data.join(".http");
    let _ = std::fs::remove_dir_all(&dir); // ours: we hold the lock
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io("cannot create", &dir, e))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    let path = dir.join("s");
    let listener = UnixListener::bind(&path).map_err(|e| {
        Error::io(
            "cannot bind the internal HTTP socket (is the data directory path very long?)",
            &path,
            e,
        )
    })?;
    Ok((listener, dir, Internal::Path(path)))
}

fn connect_internal(internal: &Internal) -> std::io::Result<UnixStream> {
    match internal {
        Internal::Path(p) => UnixStream::connect(p),
    }
}

/// Accepts forever; an error (EMFILE...) is logged, rate-limited, and retried.
fn gate(
    listener: &TcpListener,
    internal: &Internal,
    metrics: &Arc<Metrics>,
    dead: &Arc<Mutex<Option<String>>>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let clients: Clients = Arc::new(Mutex::new(HashMap::new()));
    let errors = AtomicU64::new(0);
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                let full = active.load(Relaxed) >= MAX_CONNECTIONS;
                let Some(slot) = (!full).then(|| ClientSlot::take(&clients, peer)).flatten() else {
                    metrics.http_refused.fetch_add(1, Relaxed);
                    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
                    // On the accept thread: answer and close without waiting
                    // for the client, or a flood of idle connections would
                    // hold up accepting for everyone.
                    let why = match full {
                        true => "too many connections",
                        false => "too many connections from your address",
                    };
                    refuse_now(stream, 503, "Service Unavailable", why);
                    continue;
                };
                active.fetch_add(1, Relaxed);
                let (a, m, i) = (active.clone(), metrics.clone(), internal.clone());
                let spawned = std::thread::Builder::new()
                    .name("http-conn".into())
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        connection(stream, &i, &m);
                        drop(slot);
                        a.fetch_sub(1, Relaxed);
                    });
                if spawned.is_err() {
                    active.fetch_sub(1, Relaxed);
                    metrics.http_refused.fetch_add(1, Relaxed);
                }
            }
            Err(e) => {
                let n = errors.fetch_add(1, Relaxed);
                if n.is_power_of_two() || n == 0 {
                    say!("HTTP accept failed ({} so far): {e}", n + 1);
                }
                std::thread::sleep(Duration::from_millis(50));
                if e.kind() == std::io::ErrorKind::InvalidInput {
                    die(dead, format!("accept: {e}"));
                    return;
                }
            }
        }
    }
}

/// Connections open per client address.
type Clients = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One admitted connection's place in its address's count, given back
/// when dropped (the map holds only addresses with connections open).
struct ClientSlot {
    clients: Clients,
    ip: IpAddr,
}

impl ClientSlot {
    /// A place for `peer`, unless its address has
    /// [`MAX_CONNECTIONS_PER_CLIENT`] already.
    fn take(clients: &Clients, peer: SocketAddr) -> Option<ClientSlot> {
        let ip = peer.ip();
        let mut map = clients.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: clients.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Answers from the gate itself and closes.
fn refuse(stream: TcpStream, code: u16, reason: &str, detail: &str) {
    answer_and_drain(stream, code, reason, detail, false);
}

/// [`refuse`] without waiting: only what the client has already sent is
/// drained. For the accept thread, which must never wait on one client.
fn refuse_now(stream: TcpStream, code: u16, reason: &str, detail: &str) {
    answer_and_drain(stream, code, reason, detail, true);
}

fn answer_and_drain(mut stream: TcpStream, code: u16, reason: &str, detail: &str, now: bool) {
    let body = format!("{code} {reason}: {detail}\n");
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Drain a little so the client sees the answer rather than a reset.
    if now {
        let _ = stream.set_nonblocking(true);
    } else {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    }
    let mut sink = [0u8; 1024];
    for _ in 0..8 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// What the gate made of a request head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// Forward `METHOD TARGET`.
    Pass(String, String),
    Refuse(u16, &'static str, &'static str),
}

/// Checks a complete request head (up to and including the blank line).
pub(crate) fn check_head(head: &[u8]) -> Head {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .or_else(|| head.iter().position(|&b| b == b'\n'))
        .unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Head::Refuse(400, "Bad Request", "request line is not text");
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Refuse(400, "Bad Request", "malformed request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Head::Refuse(400, "Bad Request", "only HTTP/1.x is spoken here");
    }
    if target.len() > MAX_URL {
        return Head::Refuse(414, "URI Too Long", "request target too long");
    }
    if !target.starts_with('/') || !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Head::Refuse(400, "Bad Request", "bad request target");
    }
    if method != "GET" && method != "HEAD" {
        return Head::Refuse(405, "Method Not Allowed", "only GET and HEAD");
    }
    Head::Pass(method.to_string(), target.to_string())
}

fn connection(mut stream: TcpStream, internal: &Internal, metrics: &Metrics) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let start = Instant::now();
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if let Some(i) = head.windows(2).position(|w| w == b"\n\n") {
            break i + 2;
        }
        if head.len() > MAX_HEAD {
            metrics.http_refused.fetch_add(1, Relaxed);
            refuse(
                stream,
                431,
                "Request Header Fields Too Large",
                "request head too large",
            );
            return;
        }
        if start.elapsed() > HEAD_DEADLINE {
            metrics.http_refused.fetch_add(1, Relaxed);
            refuse(stream, 408, "Request Timeout", "request head too slow");
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                metrics.http_refused.fetch_add(1, Relaxed);
                refuse(stream, 408, "Request Timeout", "request head too slow");
                return;
            }
            Err(_) => return,
        }
    };
    let (method, target) = match check_head(&head[..end]) {
        Head::Pass(m, t) => (m, t),
        Head::Refuse(code, reason, detail) => {
            metrics.http_refused.fetch_add(1, Relaxed);
            refuse(stream, code, reason, detail);
            return;
        }
    };
    let Ok(mut inner) = connect_internal(internal) else {
        refuse(stream, 503, "Service Unavailable", "server busy");
        return;
    };
    let _ = inner.set_read_timeout(Some(IO_TIMEOUT * 6));
    let _ = inner.set_write_timeout(Some(IO_TIMEOUT));
    let request =
        format!("{method} {target} HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n");
    if inner.write_all(request.as_bytes()).is_err() {
        return;
    }
    let _ = inner.shutdown(std::net::Shutdown::Write);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if start.elapsed() > ANSWER_DEADLINE {
            break;
        }
        match inner.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|()| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).expect("static header")
    })
}

fn common_headers(content_type: &str) -> Vec<Header> {
    vec![
        header("Content-Type", content_type),
        header("Cache-Control", "no-cache"),
        header("X-Content-Type-Options", "nosniff"),
        header("Connection", "close"),
    ]
}

type Answer = Response<Box<dyn Read + Send>>;

fn bytes(code: u16, content_type: &str, body: Vec<u8>) -> Answer {
    let len = body.len();
    Response::new(
        StatusCode(code),
        common_headers(content_type),
        Box::new(std::io::Cursor::new(body)) as Box<dyn Read + Send>,
        Some(len),
        None,
    )
    .with_chunked_threshold(usize::MAX)
}

fn text(code: u16, body: &str) -> Answer {
    bytes(code, "text/plain; charset=utf-8", body.as_bytes().to_vec())
}

/// A file, up to `len` bytes (for a log: the end of its last complete row).
fn file(code: u16, content_type: &str, mut f: File, len: u64) -> Answer {
    let _ = f.seek(SeekFrom::Start(0));
    Response::new(
        StatusCode(code),
        common_headers(content_type),
        Box::new(f.take(len)) as Box<dyn Read + Send>,
        Some(usize::try_from(len).unwrap_or(usize::MAX)),
        None,
    )
    .with_chunked_threshold(usize::MAX)
}

/// The length of a log file up to the end of its last complete line.
fn complete_len(f: &mut File) -> std::io::Result<u64> {
    let len = f.metadata()?.len();
    let back = len.min(64 * 1024);
    f.seek(SeekFrom::Start(len - back))?;
    let mut tail = Vec::with_capacity(back as usize);
    f.take(back).read_to_end(&mut tail)?;
    let keep = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Ok(len - back + keep as u64)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn logs_index(data: &Path) -> Answer {
    let mut page = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>ROC tunnel monitor logs</title></head><body>\n<p><a href=\"/\">← back to the site</a></p>\n<h1>Logs</h1>\n<ul>\n",
    );
    for f in logs::files::list(data).unwrap_or_default() {
        let size = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
        let name = f.path.file_name().unwrap_or_default().to_string_lossy();
        let n = html_escape(&name);
        page.push_str(&format!("<li><a href=\"{n}\">{n}</a> {size} bytes</li>\n"));
    }
    page.push_str("</ul>\n</body></html>\n");
    bytes(200, "text/html; charset=utf-8", page.into_bytes())
}

fn builtin_index() -> Answer {
    let page = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>ROC tunnel monitor</title></head><body>\n<h1>ROC tunnel monitor collector</h1>\n<ul><li><a href=\"/status.json\">status.json</a></li><li><a href=\"/metrics\">metrics</a></li><li><a href=\"/logs/\">logs</a></li></ul>\n</body></html>\n";
    bytes(200, "text/html; charset=utf-8", page.as_bytes().to_vec())
}

/// A plain file named `name` in the listing of `dir`, if there is one.
fn listed_file(dir: &Path, name: &str) -> Option<File> {
    let entry = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_str() == Some(name))?;
    if !entry.file_type().ok()?.is_file() {
        return None;
    }
    File::open(entry.path()).ok()
}

/// Answers one request.
fn answer(method: &Method, url: &str, ctx: &Ctx) -> Answer {
    if *method != Method::Get && *method != Method::Head {
        return text(405, "only GET and HEAD\n");
    }
    let t = now();
    match route(url) {
        Route::Status => {
            let snap = current(&ctx.snapshot);
            bytes(200, "application/json", status_json(&snap, t).into_bytes())
        }
        Route::Metrics => {
            let snap = current(&ctx.snapshot);
            bytes(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics_text(&ctx.metrics, &snap, t).into_bytes(),
            )
        }
        Route::Health => text(200, "ok\n"),
        Route::LogsIndex => logs_index(&ctx.data),
        Route::LogsRedirect => {
            let mut r = text(301, "see /logs/\n");
            r.add_header(header("Location", "/logs/"));
            r
        }
        Route::Log(name) => {
            if logs::schema::parse_file_name(&name).is_none() {
                return text(404, "no such log\n");
            }
            match listed_file(&ctx.data, &name) {
                Some(mut f) => match complete_len(&mut f) {
                    Ok(len) => file(200, "text/csv; charset=utf-8", f, len),
                    Err(_) => text(500, "cannot read the log\n"),
                },
                None => text(404, "no such log\n"),
            }
        }
        Route::SiteIndex => match &ctx.site {
            Some(dir) => match listed_file(dir, "index.html") {
                Some(f) => site_file(f, "index.html"),
                None => builtin_index(),
            },
            None => builtin_index(),
        },
        Route::Site(name) => match ctx.site.as_ref().and_then(|dir| listed_file(dir, &name)) {
            Some(f) => site_file(f, &name),
            None => text(404, "not found\n"),
        },
        Route::BadPath => text(400, "bad path\n"),
        Route::NotFound => text(404, "not found\n"),
    }
}

fn site_file(f: File, name: &str) -> Answer {
    match f.metadata() {
        Ok(m) => file(200, content_type(name), f, m.len()),
        Err(_) => text(500, "cannot read the file\n"),
    }
}

/// Answers requests as they come. It waits without a timeout, so an idle
/// collector's 32 workers never wake; they end with the process.
fn worker(server: &Server, ctx: &Ctx, dead: &Mutex<Option<String>>) {
    loop {
        match server.recv() {
            Ok(rq) => {
                ctx.metrics.http_requests.fetch_add(1, Relaxed);
                let response = answer(rq.method(), rq.url(), ctx);
                let _ = rq.respond(response);
            }
            Err(e) => {
                die(dead, format!("tiny_http: {e}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_never_leave_their_directories() {
        assert_eq!(route("/status.json?x=1"), Route::Status);
        assert_eq!(
            route("/logs/events-2026-11-23.csv"),
            Route::Log("events-2026-11-23.csv".into())
        );
        assert_eq!(
            route("/%6cogs/events-2026-11-23.csv"),
            Route::Log("events-2026-11-23.csv".into())
        );
        for bad in [
            "/../etc/passwd",
            "/logs/../collector.lock",
            "/logs/%2e%2e/collector.lock",
            "/logs/%2E%2E%2Fcollector.lock",
            "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/logs/..%5c..%5cetc",
            "/logs/%00",
            "/logs/%zz",
            "/logs/%c0%ae%c0%ae/",
        ] {
            assert_eq!(route(bad), Route::BadPath, "{bad}");
        }
        assert_eq!(route("/logs/a/b"), Route::NotFound);
        assert_eq!(route("/.http"), Route::NotFound);
        assert_eq!(route("/history.html"), Route::Site("history.html".into()));
    }

    #[test]
    fn heads_are_checked() {
        assert_eq!(
            check_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Head::Pass("GET".into(), "/metrics".into())
        );
        assert!(matches!(
            check_head(b"POST / HTTP/1.1\r\n\r\n"),
            Head::Refuse(405, ..)
        ));
        assert!(matches!(
            check_head(b"GET / HTTP/2\r\n\r\n"),
            Head::Refuse(400, ..)
        ));
        assert!(matches!(
            check_head(b"GET /\xff HTTP/1.1\r\n\r\n"),
            Head::Refuse(400, ..)
        ));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URL));
        assert!(matches!(check_head(long.as_bytes()), Head::Refuse(414, ..)));
    }
}
