//! Runs the real `gateway-client` binary: options, exit codes, output, and
//! delivery against a small acknowledging UDP peer on 127.0.0.1 (the real
//! collector is exercised in the collector's own tests).

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gateway_client::key::Key;
use gateway_client::wire::{self, Body, MsgKind};

const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("gwc-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn key_file(&self) -> PathBuf {
        let p = self.0.join("key");
        std::fs::write(&p, format!("{KEY}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gateway-client"));
    // No config file beside the test binary's build dir may leak in.
    c.args(["--config", "/dev/null"]);
    c
}

/// A collector stand-in: acks what it can decode, after dropping the first
/// `drop_first` datagrams, signing acks with `ack_key`. Stops after `limit`
/// datagrams or 30 s.
struct Acker {
    port: u16,
    got: Arc<Mutex<Vec<Body>>>,
    handle: Option<JoinHandle<()>>,
}

impl Acker {
    fn start(drop_first: usize, ack_key: &str, limit: usize) -> Acker {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let (key, ack_key, seen) = (Key::from_text(KEY), Key::from_text(ack_key), got.clone());
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut buf = [0u8; 2048];
            let mut n_seen = 0;
            while Instant::now() < deadline && n_seen < limit {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                n_seen += 1;
                if n_seen <= drop_first {
                    continue;
                }
                if let Ok(body) = wire::decode(&key, &buf[..n]) {
                    // Record before acking: once acked, the client may exit
                    // and the test read what was received.
                    let ack = wire::ack(&ack_key, &body, "ok");
                    seen.lock().unwrap().push(body);
                    let _ = sock.send_to(&ack, peer);
                }
            }
        });
        Acker {
            port,
            got,
            handle: Some(handle),
        }
    }

    fn bodies(&self) -> Vec<Body> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Acker {
    fn drop(&mut self) {
        // The thread ends by its own limits; don't wait for it here.
        drop(self.handle.take());
    }
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ps_capture(dir: &Path, forwards: usize) -> PathBuf {
    let mut s = String::from(
        "USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n\
         root           1  0.0  0.0 167744 11432 ?        Ss   Nov20   0:03 /sbin/init\n",
    );
    for i in 0..forwards {
        s.push_str(&format!(
            "novacr{:02}   {:>6}  0.0  0.0  14540  5628 ?        Ss   Nov22   0:01 ssh -N -L {}:novadaq-far-master-{:02}:{} novacr@novadaq-far-gateway-01\n",
            i % 100,
            10_000 + i,
            20_000 + i,
            i % 7,
            5900 + i % 100
        ));
    }
    let p = dir.join("capture.txt");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn help_and_version() {
    let (code, out, _) = run(client().arg("--help"));
    assert_eq!(code, 0);
    assert!(
        out.contains("EXIT STATUS") && out.contains("-m TEXT"),
        "{out}"
    );
    let (code, out, _) = run(client().arg("-V"));
    assert_eq!((code, out.starts_with("gateway-client ")), (0, true));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [
        &["--bogus"][..],
        &["-m", "-a", "host"],
        &["-p", "0"],
        &["-b", "-s"],
        &["-b", "--json"],
    ] {
        let (code, out, err) = run(client().args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("gateway-client: "), "{args:?}: {err}");
    }
}

#[test]
fn mistakes_name_their_cure() {
    // No key file: say how to name one and how to make one (exit 3).
    let (code, _, err) = run(client().args(["-b", "--key-file", "/nonexistent/k", "-p", "9"]));
    assert_eq!(code, 3, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/k")
            && err.contains("--key-file")
            && err.contains("scripts/make-key"),
        "{err}"
    );
    // A config file that is not there: no ':0:', and the option to check.
    let (code, _, err) = run(Command::new(env!("CARGO_BIN_EXE_gateway-client")).args([
        "--config",
        "/nonexistent.conf",
        "-b",
    ]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent.conf") && !err.contains(":0:") && err.contains("--config"),
        "{err}"
    );
    // An empty message is refused, not sent.
    for empty in ["", "   "] {
        let (code, _, err) = run(client().args(["-m", empty, "-p", "9"]));
        assert_eq!(code, 2, "{empty:?}: {err}");
        assert!(err.contains("-m needs a message"), "{err}");
    }
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = TempDir::new("mode");
    let key = dir.key_file();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run(client()
        .arg("-b")
        .arg("--key-file")
        .arg(&key)
        .args(["-p", "9"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn heartbeat_is_acknowledged_and_quiet_is_quiet() {
    let dir = TempDir::new("hb");
    let key = dir.key_file();
    let acker = Acker::start(0, KEY, 2);
    let port = acker.port.to_string();
    let (code, out, err) = run(client()
        .args(["-b", "-a", "127.0.0.1", "-p", &port, "--name", "gw-test"])
        .arg("--key-file")
        .arg(&key));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("--- gateway: gw-test") && out.contains("acknowledged"),
        "{out}"
    );
    let (code, out, err) = run(client()
        .args([
            "-q",
            "-m",
            "shift <change>",
            "-p",
            &port,
            "--name",
            "gw-test",
        ])
        .arg("--key-file")
        .arg(&key));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let bodies = acker.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0].kind, MsgKind::Heartbeat);
    assert_eq!(
        (bodies[1].kind, bodies[1].text.as_str()),
        (MsgKind::Message, "shift <change>")
    );
}

#[test]
fn a_lost_datagram_is_sent_again() {
    let dir = TempDir::new("retry");
    let key = dir.key_file();
    let acker = Acker::start(2, KEY, 10);
    let port = acker.port.to_string();
    let (code, out, err) = run(client()
        .args(["-b", "-p", &port, "--name", "gw"])
        .arg("--key-file")
        .arg(&key));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(3 sends)"), "{out}");
}

#[test]
fn acks_signed_with_another_key_are_ignored() {
    let dir = TempDir::new("wrongkey");
    let key = dir.key_file();
    let acker = Acker::start(0, "some other key, not the shared one", 100);
    let port = acker.port.to_string();
    let (code, _, err) = run(client()
        .args(["-b", "-p", &port, "--timeout", "0.5", "--name", "gw"])
        .arg("--key-file")
        .arg(&key));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no acknowledgement") && err.contains("0 of 1"),
        "{err}"
    );
}

#[test]
fn nothing_listening_fails_fast_with_one_line() {
    let dir = TempDir::new("refused");
    let key = dir.key_file();
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let (code, out, err) = run(client()
        .args(["-b", "-p", &port.to_string(), "--name", "gw"])
        .arg("--key-file")
        .arg(&key));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("refused") || err.contains("no acknowledgement"),
        "{err}"
    );
    assert!(!out.contains("acknowledged in"), "{out}");
}

#[test]
fn a_report_of_500_tunnels_is_split_and_all_parts_acked() {
    let dir = TempDir::new("split");
    let key = dir.key_file();
    let capture = ps_capture(&dir.0, 500);
    let acker = Acker::start(0, KEY, 10_000);
    let port = acker.port.to_string();
    let (code, out, err) = run(client()
        .args(["-q", "-p", &port, "--name", "gw"])
        .arg("--key-file")
        .arg(&key)
        .arg("--ps-file")
        .arg(&capture));
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let bodies = acker.bodies();
    assert!(bodies.len() > 10, "{} parts", bodies.len());
    let mut r = gateway_client::reassembly::Reassembler::new(60);
    let report = bodies
        .into_iter()
        .find_map(|b| r.add(b, 0).0)
        .expect("report complete");
    assert_eq!(report.tunnels.len(), 500);
    assert_eq!(report.tunnels[499].listen_port, 20_499);
}

#[test]
fn json_lines_and_a_closed_pipe() {
    let dir = TempDir::new("json");
    let capture = ps_capture(&dir.0, 3);
    let (code, out, err) = run(client()
        .args(["--dry-run", "--json", "--ps-file"])
        .arg(&capture));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let t = gateway_client::Tunnel::from_json_line(lines[2]).unwrap();
    assert_eq!(
        (t.pid, t.listen_port, t.target_port, t.user.as_str()),
        (10_002, 20_002, 5902, "novacr02")
    );
    // From a capture nobody's connections are known: both fields, unknown.
    for l in &lines {
        assert!(l.ends_with(r#","connections":null,"connected":[]}"#), "{l}");
    }
    // The table has the column, `-` for unknown.
    let (code, table, err) = run(client().args(["--dry-run", "--ps-file"]).arg(&capture));
    assert_eq!(code, 0, "{err}");
    let head = table.lines().find(|l| l.starts_with("KIND")).unwrap();
    assert!(head.trim_end().ends_with("VNC-ANSWER CONNECTED"), "{head}");
    let row = table.lines().find(|l| l.starts_with("L ")).unwrap();
    assert!(row.trim_end().ends_with(" -"), "{row}");

    // `| head -1`: the reader goes away early; no panic, exit 0.
    let big = ps_capture(&dir.0, 5000);
    let mut child = client()
        .args(["--dry-run", "--json", "--ps-file"])
        .arg(&big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn a_message_too_long_for_a_datagram_is_refused() {
    let dir = TempDir::new("long");
    let key = dir.key_file();
    let (code, _, err) = run(client()
        .args(["-m", &"x".repeat(3000), "-p", "9", "--name", "gw"])
        .arg("--key-file")
        .arg(&key));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("too long"), "{err}");
}

#[test]
fn config_file_sets_defaults_and_command_line_wins() {
    let dir = TempDir::new("conf");
    let key = dir.key_file();
    let acker = Acker::start(0, KEY, 5);
    let conf = dir.0.join("gateway-client.conf");
    std::fs::write(
        &conf,
        format!(
            "# test\naddress = 127.0.0.1\nport = {}\nkey-file = key\nname = from-config\n",
            acker.port
        ),
    )
    .unwrap();
    let (code, out, err) = run(Command::new(env!("CARGO_BIN_EXE_gateway-client"))
        .arg("--config")
        .arg(&conf)
        .arg("-b"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("--- gateway: from-config"), "{out}");
    let (code, out, _) = run(Command::new(env!("CARGO_BIN_EXE_gateway-client"))
        .arg("--config")
        .arg(&conf)
        .args(["-b", "--name", "from-flag"]));
    assert_eq!(code, 0);
    assert!(out.contains("--- gateway: from-flag"), "{out}");
    std::fs::write(&conf, "port = 70000\n").unwrap();
    let (code, _, err) = run(Command::new(env!("CARGO_BIN_EXE_gateway-client"))
        .arg("--config")
        .arg(&conf)
        .arg("-b"));
    assert_eq!(code, 2);
    assert!(err.contains("gateway-client.conf:1: port"), "{err}");
    drop(key);
}

/// Watch mode declares its period (`--every` rounded up to whole seconds) in each
/// report; the one-shot run declares none. SIGTERM stops the watcher: exit 0.
#[test]
fn watch_reports_declare_their_period_and_one_shot_reports_none() {
    let dir = TempDir::new("period");
    let key = dir.key_file();
    let acker = Acker::start(0, KEY, 10);
    let port = acker.port.to_string();
    let common = ["-q", "--name", "gw-period", "-p", &port, "--key-file"];
    let (code, _, err) = run(client().args(common).arg(&key));
    assert_eq!(code, 0, "{err}");
    let mut watcher = client()
        .args(["--watch", "--interval", "0.2", "--every", "7.5"])
        .args(common)
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // At most 30 s for its first two reports (a loaded machine); a
    // SIGTERM before it blocks the signal would kill it unhandled.
    for _ in 0..300 {
        if acker.bodies().len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(acker.bodies().len() >= 2, "the watcher's first two reports");
    let pid = watcher.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..100 {
        status = watcher.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = watcher.kill();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit on SIGTERM");
    let bodies = acker.bodies();
    assert!(bodies.len() >= 2, "{bodies:?}");
    assert_eq!((bodies[0].kind, bodies[0].period), (MsgKind::Report, None));
    assert_eq!(
        (bodies[1].kind, bodies[1].period),
        (MsgKind::Report, Some(8))
    );
}

#[test]
fn watch_and_collector_mistakes_exit_2_naming_the_option() {
    for (args, said) in [
        (&["--watch", "-b"][..], "--watch"),
        (&["--watch", "--json"], "--watch"),
        (&["--interval", "1"], "go with --watch"),
        (&["--watch", "--interval", "0"], "--interval"),
        (&["--watch", "--every", "1", "--interval", "2"], "--every"),
        (&["-a", "[::1"], "-a: '[::1'"),
        (&["-a", "host:port"], "-a: 'port'"),
        (&["-a", "a.example", "-a", "a.example:9555"], "named twice"),
    ] {
        let (code, out, err) = run(client().args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
}

/// A watcher stops by itself (exit 0) when its config file is replaced, as
/// a re-deploy replaces it, so that cron starts the new set.
#[test]
fn a_watcher_stops_when_its_config_file_is_replaced() {
    let dir = TempDir::new("replaced");
    let key = dir.key_file();
    let acker = Acker::start(0, KEY, 10);
    let conf = dir.0.join("gateway-client.conf");
    let text = format!("name = gw-replaced\nport = {}\n", acker.port);
    std::fs::write(&conf, &text).unwrap();
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_gateway-client"))
        .args(["--watch", "--interval", "0.2", "-q", "--config"])
        .arg(&conf)
        .arg("--key-file")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if !acker.bodies().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!acker.bodies().is_empty(), "no report from the watcher");
    let new = dir.0.join("gateway-client.conf.new");
    std::fs::write(&new, &text).unwrap();
    std::fs::rename(&new, &conf).unwrap();
    let mut status = None;
    for _ in 0..100 {
        status = watcher.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}
