//! The push client next to its peers (`bench --peers`, issue 18 item 4,
//! the client half): with the live case's real forwards running, one round
//! runs, in an order that rotates from round to round,
//!
//! - `gateway-client -q` sending for real to a collector on 127.0.0.1 and
//!   waiting for its ack (the cron job as deployed), and `--dry-run -q`;
//! - `sh -c 'ps auxww | grep ssh | curl … --data-binary @- http://127.0.0.1:PORT/'`,
//!   the shell one-liner, posting to a small HTTP endpoint in this process;
//! - `send_nsca` (Debian's nsca-client) sending one passive check result to
//!   an NSCA sink in this process on 127.0.0.1 (it sends the server's
//!   132-byte greeting, an IV and a time stamp, and reads the packet);
//! - `ps auxww` alone.
//!
//! Each run is timed by the `bench measure` helper (wall from spawn to exit,
//! CPU of the process and its children from `wait4`); the table gives the
//! medians and each peer's ratio to the client. `scripts/bench --peers`
//! installs curl and nsca-client first; here a missing program fails the
//! case with its name.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::cases::{Row, Setup};
use crate::error::Error;
use crate::live::Collector;
use crate::measure::{self, Measured, fmt_duration};

/// One program of the comparison: its label and how to start it (the
/// file to give it on stdin, if any).
struct Peer {
    label: &'static str,
    cmd: Command,
    stdin: Option<PathBuf>,
    walls: Vec<Duration>,
    cpus: Vec<Duration>,
}

/// The programs a peer needs, with the Debian package that has each.
const NEEDED: [(&str, &str); 2] = [("curl", "curl"), ("send_nsca", "nsca-client")];

/// The case: see the module doc.
pub fn run(setup: &Setup) -> Result<Vec<Row>, Error> {
    for (program, package) in NEEDED {
        find(program).ok_or_else(|| {
            Error::case(
                "peers",
                format!(
                    "no {program} in PATH: install Debian's {package} (scripts/bench --peers does)"
                ),
            )
        })?;
    }
    let collector_bin = setup.bin.join("collector");
    let dir = setup.scratch.join("peers");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let fw = crate::cases::live_forwards(setup)?;
    let collector = Collector::start(&collector_bin, &dir.join("collector"))?;
    let http = Sink::start(Protocol::Http)?;
    let nsca = Sink::start(Protocol::Nsca)?;
    let mut peers = peers(setup, &dir, &collector, &http, &nsca)?;
    let rounds = setup.scale.live_rounds;
    for round in 0..rounds + 3 {
        for k in 0..peers.len() {
            let i = (k + round) % peers.len();
            let m = measure_one(&peers[i])?;
            if round >= 3 {
                peers[i].walls.push(m.wall);
                peers[i].cpus.push(m.cpu);
            }
        }
    }
    let received = (http.count(), nsca.count());
    drop(fw);
    collector.stop()?;
    Ok(rows(&mut peers, rounds, received))
}

/// The programs compared, the client first.
fn peers(
    setup: &Setup,
    dir: &Path,
    collector: &Collector,
    http: &Sink,
    nsca: &Sink,
) -> Result<Vec<Peer>, Error> {
    let client = setup.bin.join("gateway-client");
    let key = dir.join("collector").with_extension("key");
    let mut send = Command::new(&client);
    send.args(["-q", "--name", "bench-gw", "-a", "127.0.0.1", "-p"])
        .arg(collector.udp.port().to_string())
        .arg("--key-file")
        .arg(&key);
    let mut dry = Command::new(&client);
    dry.args(["--dry-run", "-q", "--name", "bench-gw"]);
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(format!(
        "ps auxww | grep ssh | curl -sS -o /dev/null --data-binary @- http://{}/report",
        http.addr
    ));
    let config = dir.join("send_nsca.cfg");
    std::fs::write(&config, "encryption_method=1\npassword=bench\n")
        .map_err(|e| Error::io("cannot write", &config, e))?;
    let check = dir.join("check.txt");
    std::fs::write(&check, "bench-gw\ttunnels\t0\t20 tunnels up\n")
        .map_err(|e| Error::io("cannot write", &check, e))?;
    let mut send_nsca = Command::new(find("send_nsca").unwrap_or_default());
    send_nsca
        .args(["--quiet", "-H", "127.0.0.1", "-p"])
        .arg(nsca.addr.port().to_string())
        .arg("-c")
        .arg(&config);
    let mut ps = Command::new(find("ps").unwrap_or_else(|| PathBuf::from("ps")));
    ps.arg("auxww");
    let peer = |label, cmd, stdin| Peer {
        label,
        cmd,
        stdin,
        walls: Vec::new(),
        cpus: Vec::new(),
    };
    Ok(vec![
        peer("gateway-client live, real send and ack", send, None),
        peer("gateway-client live --dry-run", dry, None),
        peer(r"sh -c 'ps auxww \| grep ssh \| curl'", shell, None),
        peer("send_nsca, one check result", send_nsca, Some(check)),
        peer("ps auxww alone", ps, None),
    ])
}

/// One timed run of a peer.
fn measure_one(p: &Peer) -> Result<Measured, Error> {
    match &p.stdin {
        None => measure::run_clean(&p.cmd),
        Some(file) => measure::run_clean_with_stdin(&p.cmd, file),
    }
}

/// The table rows: each peer's medians and its ratio to the client's.
fn rows(peers: &mut [Peer], rounds: usize, (posts, packets): (u64, u64)) -> Vec<Row> {
    let mut medians: Vec<(Duration, Duration)> = Vec::new();
    for p in peers.iter_mut() {
        medians.push((measure::median(&mut p.walls), measure::median(&mut p.cpus)));
    }
    let (client_wall, client_cpu) = medians[0];
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    peers
        .iter()
        .zip(&medians)
        .map(|(p, &(wall, cpu))| {
            let note = match p.label {
                l if l.contains("curl") => format!("; the endpoint got {posts} posts"),
                l if l.contains("send_nsca") => format!("; the sink got {packets} packets"),
                _ => String::new(),
            };
            Row::new(
                format!("peers: {}", p.label),
                format!(
                    "{} median wall, {} CPU; {:.2}× the client's wall, {:.2}× its CPU (median of {rounds} interleaved rounds){note}",
                    fmt_duration(wall),
                    fmt_duration(cpu),
                    ratio(wall, client_wall),
                    ratio(cpu, client_cpu),
                ),
                "",
                None,
            )
        })
        .collect()
}

/// The first `name` in `PATH`, then in `/usr/sbin` (where Debian puts
/// `send_nsca`, not in a user's `PATH`).
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What a [`Sink`] speaks.
#[derive(Clone, Copy)]
enum Protocol {
    /// HTTP/1.1: reads a request with its body, answers 204.
    Http,
    /// NSCA: sends the server's greeting, reads the client's packet.
    Nsca,
}

/// A server on 127.0.0.1 (a free port) on its own thread, one connection
/// at a time, counting what it received; stopped when dropped.
struct Sink {
    addr: SocketAddr,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    fn start(protocol: Protocol) -> Result<Sink, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::case("peers", format!("cannot listen: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::case("peers", e.to_string()))?;
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let served = match protocol {
                    Protocol::Http => serve_http(&mut conn),
                    Protocol::Nsca => serve_nsca(&mut conn),
                };
                if served.is_ok() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(Sink { addr, count, stop })
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop to see the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One HTTP request: headers (answering `Expect: 100-continue`), then a
/// body of `Content-Length` bytes; the answer is `204 No Content`.
fn serve_http(conn: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    let head_end = loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if head.contains("expect: 100-continue") {
        conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut got = buf.len() - head_end;
    while got < length {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
}

/// One NSCA exchange: the 128-byte IV and the 4-byte time stamp, then the
/// client's packet, read to its end.
fn serve_nsca(conn: &mut TcpStream) -> std::io::Result<()> {
    let mut hello = [0x5au8; 132];
    let now = crate::live::unix_micros() / 1_000_000;
    hello[128..].copy_from_slice(&(now as u32).to_be_bytes());
    conn.write_all(&hello)?;
    let mut packet = Vec::new();
    conn.read_to_end(&mut packet)?;
    if packet.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}
