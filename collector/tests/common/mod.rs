//! Test helpers: start the real `collector` binary on 127.0.0.1 with free
//! ports in a fresh directory, send it signed datagrams built with
//! `gateway_client::wire`, and read its HTTP answers with a raw socket.
//! Every wait is a bounded loop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gateway_client::key::Key;
use gateway_client::tunnel::{Health, Kind, Tunnel};
use gateway_client::wire::{self, Body, MsgKind};

pub const KEY: &str = "9f3b1c0d2e4a5968778695a4b3c2d1e0f0e1d2c3b4a5968778695a4b3c2d1e0";
pub const GW: &str = "novadaq-far-gateway-01";

pub fn key() -> Key {
    Key::from_text(KEY)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("collector-it-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn free_tcp() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits until `f` gives `Some`, at most `secs` seconds (and 1000 tries).
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    for _ in 0..1000 {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn tunnel(i: u32) -> Tunnel {
    Tunnel {
        pid: 20_000 + i,
        user: format!("novacr{:02}", i % 100),
        kind: Kind::Local,
        bind: String::new(),
        listen_port: 5900 + (i % 100) as u16,
        target_host: "novadaq-far-master-02".into(),
        target_port: 5951,
        dest: "novadaq-far-gateway-01.fnal.gov".into(),
        started: None,
        start: "Apr04".into(),
        cpu_time: "1:56".into(),
        listening: Health::Unknown,
        vnc: Health::Unknown,
        connections: None,
        connected: Vec::new(),
    }
}

static SEQ: AtomicU32 = AtomicU32::new(1);

/// A body of `kind` sent now, with a fresh seq.
pub fn body(kind: MsgKind, tunnels: Vec<Tunnel>) -> Body {
    let n = u64::from(SEQ.fetch_add(1, Ordering::SeqCst));
    let now = now();
    Body {
        gateway: GW.into(),
        kind,
        seq: now * 1_000_000 + n,
        sent: now,
        part: 1,
        parts: 1,
        text: String::new(),
        tunnels,
        period: None,
        until: None,
    }
}

/// A datagram with any body text, correctly signed.
pub fn signed_raw(body: &str) -> Vec<u8> {
    wire::frame(&key(), body.as_bytes())
}

/// The running collector.
pub struct Collector {
    pub child: Option<Child>,
    pub udp: SocketAddr,
    pub http: SocketAddr,
    pub data: PathBuf,
    pub key_file: PathBuf,
    pub stderr: PathBuf,
}

pub fn write_key(dir: &Path) -> PathBuf {
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    key_file
}

pub fn command(dir: &Path, udp: SocketAddr, http: SocketAddr, extra: &[&str]) -> Command {
    command_with_data(dir, &dir.join("data"), udp, http, extra)
}

/// [`command`] with the logs in `data` instead of `dir/data`.
pub fn command_with_data(
    dir: &Path,
    data: &Path,
    udp: SocketAddr,
    http: SocketAddr,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_collector"));
    cmd.arg("--data")
        .arg(data)
        .arg("--udp")
        .arg(udp.to_string())
        .arg("--http")
        .arg(http.to_string())
        .arg("--key-file")
        .arg(dir.join("key"))
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

impl Collector {
    /// Starts a collector in `dir` (key file at `dir/key`, data in
    /// `dir/data`), and waits until it answers HTTP.
    pub fn start(dir: &Path, extra: &[&str]) -> Collector {
        Collector::start_on(dir, free_udp(), free_tcp(), extra)
    }

    pub fn start_on(dir: &Path, udp: SocketAddr, http: SocketAddr, extra: &[&str]) -> Collector {
        Collector::start_in(dir, &dir.join("data"), udp, http, extra)
    }

    /// [`Collector::start_on`] with the logs in `data` (say, on a small tmpfs).
    pub fn start_in(
        dir: &Path,
        data: &Path,
        udp: SocketAddr,
        http: SocketAddr,
        extra: &[&str],
    ) -> Collector {
        let key_file = write_key(dir);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let stderr = dir.join(format!("stderr-{n}.txt"));
        let child = command_with_data(dir, data, udp, http, extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut c = Collector {
            child: Some(child),
            udp,
            http,
            data: data.to_path_buf(),
            key_file,
            stderr,
        };
        let up = wait_for(20, || {
            if let Some(Ok(Some(status))) = c.child.as_mut().map(|ch| ch.try_wait()) {
                panic!("collector exited early: {status}: {}", c.stderr_text());
            }
            get(c.http, "/healthz").filter(|r| r.status == 200)
        });
        assert!(
            up.is_some(),
            "collector did not answer HTTP: {}",
            c.stderr_text()
        );
        c
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends one datagram and waits for a signed ack (up to `tries` sends).
    pub fn send(&self, datagram: &[u8], tries: u32) -> Option<Body> {
        send_to(self.udp, datagram, tries)
    }

    pub fn get(&self, path: &str) -> Reply {
        get(self.http, path).unwrap_or_else(|| panic!("GET {path} failed: {}", self.stderr_text()))
    }

    pub fn metric(&self, line_prefix: &str) -> u64 {
        let text = self.get("/metrics").body_text();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line_prefix)
                    .map(|v| v.trim().parse::<u64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no metric {line_prefix} in\n{text}"))
    }

    pub fn outcome(&self, outcome: &str) -> u64 {
        self.metric(&format!(
            "roctm_collector_datagrams_total{{outcome=\"{outcome}\"}} "
        ))
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself, at most `secs`.
    pub fn wait_exit(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let status = wait_for(secs, || child.try_wait().ok().flatten());
        if status.is_some() {
            self.child = None;
        }
        status
    }

    pub fn events(&self) -> Vec<logs::EventRow> {
        let mut all = Vec::new();
        for f in logs::files::list(&self.data).unwrap() {
            if f.kind == logs::LogKind::Events {
                let read = logs::files::read_events(&f.path).unwrap();
                assert_eq!(read.malformed, 0, "unreadable event rows");
                all.extend(read.rows);
            }
        }
        all
    }

    pub fn tunnel_rows(&self) -> Vec<logs::TunnelRow> {
        let mut all = Vec::new();
        for f in logs::files::list(&self.data).unwrap() {
            if f.kind == logs::LogKind::Tunnels {
                let read = logs::files::read_tunnels(&f.path).unwrap();
                assert_eq!(read.malformed, 0, "unreadable tunnel rows");
                all.extend(read.rows);
            }
        }
        all
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Sends a datagram from a fresh socket and waits for the matching ack.
pub fn send_to(addr: SocketAddr, datagram: &[u8], tries: u32) -> Option<Body> {
    send_counting(addr, datagram, tries).0
}

/// [`send_to`], and how many times the datagram went out: a reply slower
/// than 300 ms (a sync on a loaded machine) makes it send again, and the
/// collector counts each copy.
pub fn send_counting(addr: SocketAddr, datagram: &[u8], tries: u32) -> (Option<Body>, u32) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for sent in 1..=tries {
        sock.send_to(datagram, addr).unwrap();
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Ok(b) = wire::decode(&key(), &buf[..n])
                        && b.kind == MsgKind::Ack
                    {
                        return (Some(b), sent);
                    }
                }
                Err(_) => break,
            }
        }
    }
    (None, tries)
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends raw bytes as a request and reads the whole answer (bounded).
pub fn raw(addr: SocketAddr, request: &[u8]) -> Option<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    let _ = s.write_all(request);
    let mut all = Vec::new();
    let _ = s.take(64 * 1024 * 1024).read_to_end(&mut all);
    let split = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Reply {
        status,
        head,
        body: all[split + 4..].to_vec(),
    })
}

pub fn get(addr: SocketAddr, path: &str) -> Option<Reply> {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The `gateway-client` binary, built (or found up to date) beside the
/// collector's, once per test process: `cargo test -p collector` alone does
/// not build other packages' binaries.
pub fn client_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let collector = PathBuf::from(env!("CARGO_BIN_EXE_collector"));
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "-q",
            "-p",
            "gateway-client",
            "--bin",
            "gateway-client",
        ]);
        if collector
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "release")
        {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build for gateway-client");
        assert!(status.success(), "cargo build -p gateway-client failed");
        collector.with_file_name("gateway-client")
    })
    .clone()
}

/// Asserts that no log file in `data` ends in a torn row.
pub fn assert_no_torn_rows(data: &Path) {
    for f in std::fs::read_dir(data).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|x| x == "csv") {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                collector::complete_rows_len(&bytes),
                bytes.len(),
                "{} ends in a torn row",
                path.display()
            );
        }
    }
}
