//! Support for the operator-level tests in `tests/`: the system is driven the
//! way an operator drives it, through its scripts and real binaries, and
//! these helpers keep that safe and bounded.
//!
//! - [`TempDir`] is a folder removed when the test ends (kept when
//!   `ROCTM_E2E_KEEP` is set, for a look after a failure).
//! - [`Proc`] is a background process (sshd, the collector, a fake tunnel)
//!   that is killed when it goes out of scope, whatever the test did.
//! - [`run`] runs a command to its end within a time limit; [`wait_for`]
//!   polls for a condition within a time limit. Nothing waits forever.
//! - [`free_tcp_port`], [`free_udp_port`], [`http_get`]: loopback only.
//! - [`build_static_client`] and [`cargo_bin`] build the binaries under
//!   test; [`chromium_dom`] loads a page in headless Chromium and returns the
//!   DOM it rendered; [`webdriver`] keeps a page open in headless Chromium
//!   and reads it as it changes; [`Collector`] runs a real collector on
//!   free ports.
//! - [`sshd`]: a real OpenSSH server on 127.0.0.1 and throwaway accounts.
//!
//! A tool a test needs that is missing is an [`Error::Missing`] naming the
//! Debian package: these tests fail, they never skip.

pub mod error;
pub mod sshd;
pub mod webdriver;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use error::Error;

pub type Result<T> = std::result::Result<T, Error>;

/// How long a build may take (a cold release build on two shared cores).
pub const BUILD_LIMIT: Duration = Duration::from_secs(25 * 60);

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A folder under the system's temporary folder, removed on drop. Mode 755,
/// so that a test account may reach a home folder made inside it.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> Result<TempDir> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("roctm-e2e-{label}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| Error::io("making a temporary folder", &path, e))?;
        set_mode(&path, 0o755)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ROCTM_E2E_KEEP").is_some() {
            eprintln!("e2e: kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `chmod MODE PATH`.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {mode:o}"), path, e))
}

/// Writes a file, naming it in the error.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("writing", path, e))
}

/// Reads a text file, naming it in the error.
pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))
}

/// A background process, killed and reaped on drop. Its stdout and stderr go
/// to a log file, shown by [`Proc::log`] when a test fails.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Proc> {
        let out = std::fs::File::create(log).map_err(|e| Error::io("creating log", log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io("creating log", log, e))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io(format!("starting {name}"), cmd.get_program(), e))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An error saying that `what` failed, with this process's log.
    pub fn fail(&self, what: &str) -> Error {
        Error::check(what, format!("{} log:\n{}", self.name, self.log()))
    }

    /// Waits up to `limit` for the process to end by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<ExitStatus> {
        let name = self.name.clone();
        wait_for(&format!("{name} to exit"), limit, || self.exited())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 100 ms until it gives `Some`, for at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() >= limit {
            return Err(Error::Timeout {
                what: format!("waiting for {what}"),
                secs: limit.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The command as a shell would show it, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to its end with stdin closed, killing it after `limit`.
/// Returns its output whatever its exit status; see [`run_ok`].
pub fn run(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let shown = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting", &shown, e))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let waited = wait_for(&shown, limit, || child.try_wait().ok().flatten());
    let status = match waited {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Stdout and stderr as one text, for messages and checks.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// [`run`], and an [`Error::Command`] unless it exits 0.
pub fn run_ok(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let out = run(cmd, limit)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            cmd: describe(cmd),
            status: out.status.to_string(),
            output: text(&out),
        })
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("binding a TCP port", "127.0.0.1:0", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("local address", "127.0.0.1:0", e))
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> Result<u16> {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("binding a UDP port", "127.0.0.1:0", e))?;
    s.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("local address", "127.0.0.1:0", e))
}

/// Whether something accepts TCP connections at `addr`.
pub fn tcp_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// `GET path` over HTTP/1.0: the status code and the body (at most 16 MiB).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let url = format!("http://{addr}{path}");
    let io = |e| Error::io("HTTP GET", &url, e);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    s.take(16 << 20).read_to_end(&mut raw).map_err(io)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Error::check(format!("an HTTP answer from {url}"), head.to_string()))?;
    Ok((code, body.to_string()))
}

/// The path of a tool, from an absolute path or a search of `PATH`.
pub fn need_tool(tool: &str, package: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let missing = || Error::Missing {
        tool: tool.to_string(),
        package: package.to_string(),
    };
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(missing())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| executable(p))
        .ok_or_else(missing)
}

/// The effective user is root (owner of `/proc/self`).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The name of the account running the tests.
pub fn current_user() -> Result<String> {
    let out = run_ok(Command::new("id").arg("-un"), Duration::from_secs(10))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds the static client with `scripts/build-static` and returns
/// `target/static/gateway-client`. The script builds under `target/` of the
/// repository, so `CARGO_TARGET_DIR` is not passed on.
pub fn build_static_client() -> Result<PathBuf> {
    let root = repo_root();
    need_tool("readelf", "binutils")?;
    run_ok(
        Command::new(root.join("scripts/build-static"))
            .current_dir(&root)
            .env_remove("CARGO_TARGET_DIR"),
        BUILD_LIMIT,
    )?;
    Ok(root.join("target/static/gateway-client"))
}

/// Builds `bin` of `package` in the target folder these tests were built in
/// (same profile) and returns its path.
pub fn cargo_bin(package: &str, bin: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding", "this test", e))?;
    // target/PROFILE/deps/TEST-HASH
    let profile_dir = exe.parent().and_then(Path::parent).ok_or_else(|| {
        Error::check(
            "a test binary under target/PROFILE/deps",
            exe.display().to_string(),
        )
    })?;
    let target = profile_dir
        .parent()
        .ok_or_else(|| Error::check("a target folder", profile_dir.display().to_string()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root())
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", target);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => {}
    }
    run_ok(&mut cmd, BUILD_LIMIT)?;
    Ok(profile_dir.join(bin))
}

/// Writes a new key with `scripts/make-key` and returns its path.
pub fn make_key(path: &Path) -> Result<PathBuf> {
    run_ok(
        Command::new(repo_root().join("scripts/make-key")).arg(path),
        Duration::from_secs(30),
    )?;
    Ok(path.to_path_buf())
}

/// Starts the `fake-ssh` binary `bin` (pass `env!("CARGO_BIN_EXE_fake-ssh")`)
/// as a shifter's tunnel holding `-L port:target`, listening on 127.0.0.1
/// unless `listen` is false (a broken forward), and waits until it listens.
pub fn fake_ssh(bin: &Path, tmp: &Path, port: u16, target: &str, listen: bool) -> Result<Proc> {
    use std::os::unix::process::CommandExt;
    let forward = format!("{port}:{target}");
    let mut cmd = Command::new(bin);
    cmd.arg0("ssh")
        .args(["-N", "-L", &forward, "shifter@novadaq-e2e-gateway"])
        .env("FAKE_SSH_SECONDS", "300");
    if !listen {
        cmd.env("FAKE_SSH_LISTEN", "no");
    }
    let p = Proc::spawn(
        "fake ssh",
        &mut cmd,
        &tmp.join(format!("fake-ssh-{port}-{listen}.log")),
    )?;
    if listen {
        wait_for("the fake tunnel to listen", Duration::from_secs(30), || {
            tcp_open(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).then_some(())
        })?;
    }
    Ok(p)
}

/// Loads `url` in headless Chromium and returns the DOM after rendering.
/// `profile` is an empty folder for Chromium's user data.
pub fn chromium_dom(url: &str, profile: &Path) -> Result<String> {
    let chromium = need_tool("/usr/bin/chromium", "chromium")
        .or_else(|_| need_tool("chromium", "chromium"))?;
    let out = run_ok(
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(url),
        Duration::from_secs(120),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A real collector on 127.0.0.1 at free ports, its data in `dir/data`;
/// stopped on drop.
pub struct Collector {
    pub proc: Proc,
    pub udp: SocketAddr,
    pub http: SocketAddr,
}

impl Collector {
    /// Starts `bin` with `key` and waits until its HTTP port answers.
    pub fn start(bin: &Path, dir: &Path, key: &Path) -> Result<Collector> {
        Collector::start_with(bin, dir, key, &[])
    }

    /// [`Collector::start`] with `extra` arguments (`--config FILE` ...).
    pub fn start_with(
        bin: &Path,
        dir: &Path,
        key: &Path,
        extra: &[&std::ffi::OsStr],
    ) -> Result<Collector> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(|e| Error::io("making", &data, e))?;
        let udp = SocketAddr::from((Ipv4Addr::LOCALHOST, free_udp_port()?));
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()?));
        let mut proc = Proc::spawn(
            "collector",
            Command::new(bin)
                .arg("--data")
                .arg(&data)
                .arg("--key-file")
                .arg(key)
                .arg("--udp")
                .arg(udp.to_string())
                .arg("--http")
                .arg(http.to_string())
                .args(extra),
            &dir.join("collector.log"),
        )?;
        wait_for("the collector's HTTP port", Duration::from_secs(60), || {
            (tcp_open(http) || proc.exited().is_some()).then_some(())
        })?;
        if proc.exited().is_some() {
            return Err(proc.fail("the collector exited at start"));
        }
        Ok(Collector { proc, udp, http })
    }

    /// The value of one series of `/metrics`, e.g.
    /// `roctm_collector_datagrams_total{outcome="accepted"}`.
    pub fn metric(&self, series: &str) -> Result<u64> {
        let (code, body) = http_get(self.http, "/metrics")?;
        let value = body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok());
        match (code, value) {
            (200, Some(v)) if v >= 0.0 => Ok(v as u64),
            _ => Err(Error::check(
                format!("{series} in /metrics"),
                format!("HTTP {code}\n{body}"),
            )),
        }
    }
}

/// Now, Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD` of a Unix time (UTC), by the civil-from-days algorithm.
pub fn utc_day(secs: u64) -> String {
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 in UTC of a Unix time: `2026-11-23T12:00:00Z`.
pub fn utc_rfc3339(secs: u64) -> String {
    let s = secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        utc_day(secs),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}
