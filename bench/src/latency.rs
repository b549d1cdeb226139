//! Detection latency: how long after a tunnel's ssh process dies the
//! monitor says so. The whole chain is real: a watching client
//! (`gateway-client --watch --interval 1`) reporting to a collector that
//! runs `--notify` (a script that writes down when it starts, with the
//! alert damping off: `--hold 0`) and `--on-collect` (webgen writing the
//! site it serves). A `live-ssh` process holding a real forward is started,
//! and once `status.json` and `index.html` both list it, it is killed
//! (SIGKILL); the clock runs from the kill to
//!
//! - (a) the notify command starting for its `tunnel_down`,
//! - (b) `status.json` no longer listing its port,
//! - (c) `index.html` (as the collector serves it) no longer listing it.
//!
//! Twenty times (five with `--quick`), after an idle pause that varies from
//! round to round (1, 3, 5 or 7 s, plus a fraction of a second that moves
//! the kill across the watcher's one-second cycle), so that some kills
//! come while `--on-collect` is still in its pause after the previous run,
//! as a tunnel dying at any moment would. The figures are the median and the
//! worst of each. The baseline beside them is cron's: a client run once a
//! minute sees a death after 30 s on average and 60 s at worst, and its
//! page then reloaded once a minute (a figure from the schedule, not
//! measured: a round would take minutes).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cases::{Row, Setup};
use crate::error::Error;
use crate::live::{Collector, unix_micros};
use crate::measure::{self, fmt_duration};

/// The longest any one wait may take before the round is given up.
const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// The gateway name of the watching client.
const GATEWAY: &str = "bench-latency";

/// A child killed when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` from the collector: the body, when the answer is 200.
fn get(http: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&http, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {http}\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.take(32 << 20).read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

/// Whether `status.json` lists a tunnel listening on `port`.
fn status_lists(http: SocketAddr, port: u16) -> Option<bool> {
    Some(get(http, "/status.json")?.contains(&format!("\"listen_port\":{port},")))
}

/// Whether `index.html` lists a tunnel listening on `port`.
fn page_lists(http: SocketAddr, port: u16) -> Option<bool> {
    Some(get(http, "/index.html")?.contains(&format!("data-listen-port=\"{port}\"")))
}

/// When (Unix microseconds) the notify script recorded `tunnel_down` for
/// `port`, if it has.
fn notified(log: &Path, port: u16) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    let want = format!(" tunnel_down {port}");
    text.lines().find_map(|l| {
        let (time, rest) = l.split_once(' ')?;
        (format!(" {rest}") == want).then_some(())?;
        let (s, frac) = time.split_once('.')?;
        let micros: u64 = frac.get(..6)?.parse().ok()?;
        Some(s.parse::<u64>().ok()? * 1_000_000 + micros)
    })
}

/// Polls `f` every 20 ms until it is true, at most [`WAIT_LIMIT`].
fn until(what: &str, mut f: impl FnMut() -> bool) -> Result<(), Error> {
    let end = Instant::now() + WAIT_LIMIT;
    while Instant::now() < end {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::case("latency", format!("{what}: not within 30 s")))
}

/// A fake ssh holding one forward on a free port, listening.
fn forward(live_ssh: &Path, round: usize) -> Result<(Kid, u16), Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::case("latency", e.to_string()))?
        .port();
    let child = Command::new(live_ssh)
        .arg0("ssh")
        .args(["-N", "-L"])
        .arg(format!(
            "127.0.0.1:{port}:novadaq-far-master-02:{}",
            5900 + round
        ))
        .arg("novacr01@novadaq-far-gateway-01")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::command(&live_ssh.display().to_string(), e.to_string()))?;
    let kid = Kid(child);
    until("the forward to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    Ok((kid, port))
}

/// The three latencies of one kill.
struct Round {
    notify: Duration,
    status: Duration,
    page: Duration,
}

/// One round: a forward up and on both, a pause, the kill, the three times.
fn round(setup: &Setup, c: &Collector, log: &Path, i: usize) -> Result<Round, Error> {
    let (mut kid, port) = forward(&setup.bin.join("live-ssh"), i)?;
    until("status.json to list the new forward", || {
        status_lists(c.http, port) == Some(true)
    })?;
    until("index.html to list the new forward", || {
        page_lists(c.http, port) == Some(true)
    })?;
    // Whole seconds would land every kill at the same point of the
    // watcher's one-second cycle; a fraction that moves round to round
    // spreads them over it.
    let pause = 1000 * [1, 3, 5, 7][i % 4] + (i as u64 * 370) % 1000;
    std::thread::sleep(Duration::from_millis(pause));
    let killed = unix_micros();
    let start = Instant::now();
    let _ = kid.0.kill();
    let _ = kid.0.wait();
    let (mut notify, mut status, mut page) = (None, None, None);
    until(
        "the notify, status.json and index.html to see the kill",
        || {
            if status.is_none() && status_lists(c.http, port) == Some(false) {
                status = Some(start.elapsed());
            }
            if page.is_none() && page_lists(c.http, port) == Some(false) {
                page = Some(start.elapsed());
            }
            if notify.is_none() {
                notify =
                    notified(log, port).map(|at| Duration::from_micros(at.saturating_sub(killed)));
            }
            notify.is_some() && status.is_some() && page.is_some()
        },
    )?;
    Ok(Round {
        notify: notify.unwrap_or_default(),
        status: status.unwrap_or_default(),
        page: page.unwrap_or_default(),
    })
}

/// "median 1.2 s, worst 1.9 s" of `xs`.
fn summary(xs: &mut [Duration]) -> (Duration, Duration, String) {
    let median = measure::median(xs);
    let worst = xs.iter().copied().max().unwrap_or_default();
    let text = format!(
        "median {}, worst {} ({} kills)",
        fmt_duration(median),
        fmt_duration(worst),
        xs.len()
    );
    (median, worst, text)
}

/// The collector (with `--notify`, `--hold 0`, `--on-collect` webgen and
/// the site) and the watcher reporting to it; the notify script's log.
fn start(setup: &Setup) -> Result<(Collector, Kid, std::path::PathBuf), Error> {
    let dir = setup.scratch.join("latency");
    let _ = std::fs::remove_dir_all(&dir);
    let site = dir.join("site");
    std::fs::create_dir_all(&site).map_err(|e| Error::io("cannot create", &site, e))?;
    let log = dir.join("notified.txt");
    let notify = dir.join("notify.sh");
    std::fs::write(
        &notify,
        format!(
            "#!/bin/sh\necho \"$(date +%s.%N) $ROCTM_EVENT $ROCTM_TUNNEL_LISTEN_PORT\" >> {}\n",
            log.display()
        ),
    )
    .map_err(|e| Error::io("cannot write", &notify, e))?;
    let data = dir.join("data");
    let webgen = format!(
        "{} --data {} --out {} -q",
        setup.bin.join("webgen").display(),
        data.display(),
        site.display()
    );
    let extra = [
        "--site".to_string(),
        site.display().to_string(),
        "--on-collect".into(),
        webgen,
        "--notify".into(),
        format!("sh {}", notify.display()),
        "--hold".into(),
        "0".into(),
    ];
    let c = Collector::start_with(&setup.bin.join("collector"), &data, &extra)?;
    let watcher = Kid(Command::new(setup.bin.join("gateway-client"))
        .args(["--config", "/dev/null", "--watch", "--interval", "1", "-q"])
        .args(["--name", GATEWAY, "-a", &c.udp.to_string(), "--key-file"])
        .arg(data.with_extension("key"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::command("gateway-client --watch", e.to_string()))?);
    Ok((c, watcher, log))
}

/// The case: its collector, watcher and rounds.
pub fn case(setup: &Setup) -> Result<Vec<Row>, Error> {
    let (c, watcher, log) = start(setup)?;
    let rounds = if setup.scale.quick { 5 } else { 20 };
    let (mut a, mut b, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let r = round(setup, &c, &log, i)?;
        eprintln!(
            "bench:   kill {}: notify {}, status.json {}, index.html {}",
            i + 1,
            fmt_duration(r.notify),
            fmt_duration(r.status),
            fmt_duration(r.page)
        );
        a.push(r.notify);
        b.push(r.status);
        p.push(r.page);
    }
    drop(watcher);
    c.stop()?;
    let cron = "cron's one-shot client: 30 s on average, 60 s at worst (+ up to 60 s for the page)";
    let secs = Duration::from_secs;
    let row = |what: &str, xs: &mut Vec<Duration>, goal: &str, met: bool| {
        let (_, _, text) = summary(xs);
        Row {
            case: format!("kill to {what} (watch --interval 1)"),
            figure: format!("{text}; {cron}"),
            target: goal.to_string(),
            met: Some(met),
        }
    };
    let (am, aw, _) = summary(&mut a);
    let (bm, bw, _) = summary(&mut b);
    let (_, pw, _) = summary(&mut p);
    Ok(vec![
        row(
            "notify starting (--hold 0)",
            &mut a,
            "median ≤ 2 s, worst ≤ 5 s",
            am <= secs(2) && aw <= secs(5),
        ),
        row(
            "status.json without the tunnel",
            &mut b,
            "median ≤ 2 s, worst ≤ 5 s",
            bm <= secs(2) && bw <= secs(5),
        ),
        row(
            "index.html without the tunnel",
            &mut p,
            "worst ≤ 10 s",
            pw <= secs(10),
        ),
    ])
}
