//! Live mode on real processes: a stand-in `ssh` (`tests/helpers/fake_ssh.rs`,
//! compiled here with `rustc` into a file named `ssh`) runs with a tunnel's
//! command line, and [`live::collect`] must find it in the real `ps`, name
//! its owner, give its start time, and tell whether its forward listens and
//! whether a VNC server answers through it. Listeners are on 127.0.0.1
//! only; other processes on the machine may be ssh too, so each test looks
//! at its own children's pids only. Also: a hung or failing `ps`.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_client::live;
use gateway_client::{Health, Kind, Tunnel};

/// The stand-in ssh, compiled once per test run.
fn fake_ssh() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-fake-ssh");
        fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/fake_ssh.rs");
        let tmp = dir.join(format!("ssh.{}", std::process::id()));
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = Command::new(&rustc)
            .args(["--edition", "2024", "-C", "debuginfo=0", "-o"])
            .arg(&tmp)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {rustc:?} to build the fake ssh: {e}"));
        assert!(
            out.status.success(),
            "rustc failed on {}: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = dir.join("ssh");
        fs::rename(&tmp, &bin).unwrap();
        bin
    })
}

/// A child process, killed and reaped when dropped.
struct Proc {
    child: Child,
    spawned: u64,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How to start a fake ssh.
#[derive(Default)]
struct Spawn {
    /// A listening socket it holds and answers on (as its stdin).
    listener: Option<TcpListener>,
    /// What it answers with (default: an RFB greeting).
    banner: Option<&'static str>,
    /// argv[0] as `ps` shows it (default: the helper's full path).
    arg0: Option<&'static str>,
    /// Run under this uid (needs root).
    uid: Option<u32>,
    /// A port on 127.0.0.1 it binds itself and holds, never accepting.
    bind: Option<u16>,
}

fn spawn(args: &[String], how: Spawn) -> Proc {
    try_spawn(args, how).expect("start the fake ssh")
}

fn try_spawn(args: &[String], how: Spawn) -> std::io::Result<Proc> {
    let bin = fake_ssh();
    let mut c = Command::new(bin);
    c.args(args)
        .env("FAKE_SSH_SECONDS", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // ps joins argv with spaces: a path with a space would not read as ssh.
    let arg0 = how
        .arg0
        .or(bin.to_str().filter(|p| p.contains(' ')).map(|_| "ssh"));
    if let Some(a) = arg0 {
        c.arg0(a);
    }
    match how.listener {
        Some(l) => {
            c.env("FAKE_SSH_LISTEN", "stdin")
                .stdin(Stdio::from(OwnedFd::from(l)));
        }
        None => {
            c.stdin(Stdio::null());
        }
    }
    if let Some(b) = how.banner {
        c.env("FAKE_SSH_BANNER", b);
    }
    if let Some(u) = how.uid {
        c.uid(u);
    }
    if let Some(port) = how.bind {
        c.env("FAKE_SSH_BIND", format!("127.0.0.1:{port}"));
    }
    let spawned = now();
    let child = c.spawn()?;
    Ok(Proc { child, spawned })
}

fn s(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn bound() -> (TcpListener, u16) {
    // Below the kernel's range of ephemeral ports, as forwards are (59xx):
    // a port from that range could also be the local port of a client
    // connection another test makes meanwhile, which would then look like
    // a connection accepted by the forward (same address, port and uid).
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u32 = range
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(10_000).max(1);
    let seed = std::process::id() ^ now() as u32 ^ NEXT.fetch_add(7919, Ordering::Relaxed);
    for i in 0..2000 {
        let port = 10_000 + (seed.wrapping_add(i * 104_729) % span);
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            return (l, port as u16);
        }
    }
    panic!("no free port between 10000 and {low} in 2000 tries");
}

/// Spreads the ports [`bound`] tries from one call to the next.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A port nothing listens on (bound and released; another process could
/// take it meanwhile, and then it is still not ours).
fn free_port() -> u16 {
    bound().1
}

/// The live tunnels of one process.
fn tunnels_of(all: &[Tunnel], p: &Proc) -> Vec<Tunnel> {
    all.iter().filter(|t| t.pid == p.pid()).cloned().collect()
}

/// A test that cannot run here says why; under CI (`CI` set) that is a
/// failure, never a silent pass.
fn skip(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "cannot run under CI: {why}"
    );
    eprintln!("skipped: {why}");
}

fn collect(probe: bool) -> Vec<Tunnel> {
    let _probing = probe.then(|| PROBES.write().unwrap_or_else(|e| e.into_inner()));
    live::collect(Duration::from_secs(10), probe, true)
        .expect("live collect")
        .tunnels
}

/// A probe (`collect(true)`) connects to every forward on the machine, so
/// it would be one more connection in another test's count: the tests
/// that count connections hold [`no_probes`] for as long as they count.
static PROBES: RwLock<()> = RwLock::new(());

fn no_probes() -> RwLockReadGuard<'static, ()> {
    PROBES.read().unwrap_or_else(|e| e.into_inner())
}

/// The account name of our uid, read independently of the library.
fn my_user() -> String {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid)
        .map_or(uid.clone(), |f| f[0].to_string())
}

fn have_proc() -> bool {
    Path::new("/proc/net/tcp").exists()
}

fn check_started(t: &Tunnel, p: &Proc) {
    let started = t.started.expect("start time from /proc");
    assert!(
        started + 5 >= p.spawned && started <= p.spawned + 5,
        "started {started}, spawned at {}",
        p.spawned
    );
}

#[test]
fn listening_forward_with_a_vnc_server_behind_it() {
    let (l, port) = bound();
    let p = spawn(
        &s(&[
            "-N",
            "-L",
            &format!("{port}:localhost:5951"),
            "fakehost.invalid",
        ]),
        Spawn {
            listener: Some(l),
            ..Spawn::default()
        },
    );
    let all = collect(true);
    let mine = tunnels_of(&all, &p);
    assert_eq!(mine.len(), 1, "{mine:?}");
    let t = &mine[0];
    assert_eq!(
        (
            t.kind,
            t.bind.as_str(),
            t.listen_port,
            t.target_host.as_str(),
            t.target_port
        ),
        (Kind::Local, "", port, "localhost", 5951)
    );
    assert_eq!(t.dest, "fakehost.invalid");
    assert_eq!(t.user, my_user());
    if have_proc() {
        check_started(t, &p);
        assert_eq!(t.listening, Health::Yes);
    }
    assert_eq!(t.vnc, Health::Yes);
}

#[test]
fn port_held_by_another_process_is_not_listening() {
    // This test process holds the port; the ssh has the forward on its
    // command line but no listener (ExitOnForwardFailure=no).
    let (held, port) = bound();
    let p = spawn(
        &s(&[
            "-f",
            "-N",
            &format!("-L127.0.0.1:{port}:vnc-host:5902"),
            "user@fakehost.invalid",
        ]),
        Spawn::default(),
    );
    let all = collect(true);
    let mine = tunnels_of(&all, &p);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        (mine[0].bind.as_str(), mine[0].listen_port),
        ("127.0.0.1", port)
    );
    assert_eq!(mine[0].dest, "fakehost.invalid");
    if have_proc() {
        assert_eq!(mine[0].listening, Health::No);
        // Not probed: the port is someone else's.
        assert_eq!(mine[0].vnc, Health::No);
    }
    drop(held);
}

#[test]
fn nothing_listening_and_mixed_forwards() {
    let (l, port) = bound();
    let dead = free_port();
    let far = free_port();
    let p = spawn(
        &s(&[
            "-N",
            "-o",
            "ExitOnForwardFailure=no",
            "-L",
            &format!("{dead}:localhost:5903"),
            "-D",
            &port.to_string(),
            "-R",
            &format!("{far}:localhost:5904"),
            "fakehost.invalid",
        ]),
        Spawn {
            listener: Some(l),
            ..Spawn::default()
        },
    );
    let all = collect(true);
    let mine = tunnels_of(&all, &p);
    let got: Vec<(Kind, u16, Health, Health)> = mine
        .iter()
        .map(|t| (t.kind, t.listen_port, t.listening, t.vnc))
        .collect();
    if have_proc() {
        assert_eq!(
            got,
            vec![
                // Nothing listens: no, and no VNC server answers through it.
                (Kind::Local, dead, Health::No, Health::No),
                // The process holds a socket on the -D port.
                (Kind::Dynamic, port, Health::Yes, Health::Unknown),
                // Listens on the far side: unknown, never probed.
                (Kind::Remote, far, Health::Unknown, Health::Unknown),
            ]
        );
    } else {
        assert_eq!(got.len(), 3);
    }
}

/// A forward bound to `[::1]` (read from `/proc/net/tcp6`), probed there.
#[test]
fn ipv6_loopback_forward() {
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        skip("no IPv6 loopback here");
        return;
    };
    let port = l.local_addr().unwrap().port();
    let p = spawn(
        &s(&[
            "-N",
            "-L",
            &format!("[::1]:{port}:[fd00::5]:5906"),
            "-p",
            "2222",
            "fakehost.invalid",
        ]),
        Spawn {
            listener: Some(l),
            ..Spawn::default()
        },
    );
    let mine = tunnels_of(&collect(true), &p);
    assert_eq!(mine.len(), 1, "{mine:?}");
    let t = &mine[0];
    assert_eq!(
        (
            t.bind.as_str(),
            t.listen_port,
            t.target_host.as_str(),
            t.target_port
        ),
        ("::1", port, "fd00::5", 5906)
    );
    if have_proc() {
        assert_eq!(t.listening, Health::Yes);
    }
    assert_eq!(t.vnc, Health::Yes);
}

#[test]
fn probe_finds_something_else_than_vnc() {
    let (l, port) = bound();
    let p = spawn(
        &s(&[
            "-N",
            "-L",
            &format!("{port}:localhost:5905"),
            "fakehost.invalid",
        ]),
        Spawn {
            listener: Some(l),
            banner: Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
            arg0: Some("ssh"),
            ..Spawn::default()
        },
    );
    let without = tunnels_of(&collect(false), &p);
    assert_eq!(without.len(), 1, "{without:?}");
    assert_eq!(
        without[0].vnc,
        Health::Unknown,
        "not probed without --probe"
    );
    let with = tunnels_of(&collect(true), &p);
    assert_eq!(with.len(), 1, "{with:?}");
    if have_proc() {
        assert_eq!(with[0].listening, Health::Yes);
    }
    assert_eq!(with[0].vnc, Health::No);
}

/// A process of an account that /etc/passwd does not know: the user is
/// its numeric uid, as ps prints it too.
#[test]
fn account_without_a_name() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        == Some("0");
    let uid = 54321;
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    if !root || passwd.lines().any(|l| l.split(':').nth(2) == Some("54321")) {
        skip(&format!("needs root and a free uid {uid}"));
        return;
    }
    let p = match try_spawn(
        &s(&["-N", "-L", "15999:localhost:5999", "fakehost.invalid"]),
        Spawn {
            uid: Some(uid),
            ..Spawn::default()
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            skip(&format!(
                "uid {uid} cannot run {}: {e}",
                fake_ssh().display()
            ));
            return;
        }
    };
    let mine = tunnels_of(&collect(false), &p);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].user, uid.to_string());
    check_started(&mine[0], &p);
}

/// ps cuts a long account name to `name+`; live mode gives it in full.
/// Runs the fake ssh as the first long-named account of /etc/passwd
/// (`systemd-network` on Debian), which needs root.
#[test]
fn long_account_name_in_full() {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let uids: Vec<&str> = passwd.lines().filter_map(|l| l.split(':').nth(2)).collect();
    let long = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let unique = f.len() > 2 && uids.iter().filter(|u| **u == f[2]).count() == 1;
        (unique && f[0].len() > 8 && f[2] != "0" && !f[0].contains(' '))
            .then(|| (f[0].to_string(), f[2].parse::<u32>().ok()))
    });
    let (Some((name, Some(uid))), true) = (long, my_user() == "root") else {
        skip("needs root and an account with a name longer than 8");
        return;
    };
    let p = match try_spawn(
        &s(&["-N", "-L", "15998:localhost:5998", "fakehost.invalid"]),
        Spawn {
            uid: Some(uid),
            ..Spawn::default()
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            skip(&format!("{name} cannot run {}: {e}", fake_ssh().display()));
            return;
        }
    };
    // What ps itself printed for the process: cut.
    let ps = Command::new("ps").arg("auxww").output().unwrap();
    let text = String::from_utf8_lossy(&ps.stdout);
    let pid = p.pid().to_string();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().take(2).any(|w| w == pid))
        .expect("the fake ssh is in ps");
    let ps_user = line.split_whitespace().next().unwrap();
    if text.starts_with("USER") {
        // procps marks the cut with a `+` (busybox cuts silently).
        assert!(ps_user.ends_with('+'), "{line}");
    }
    assert!(name.starts_with(ps_user.trim_end_matches('+')), "{line}");
    assert_ne!(ps_user, name);
    let mine = tunnels_of(&collect(false), &p);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].user, name);
    check_started(&mine[0], &p);
}

/// An argument holding spaces (`-i "/keys/my key"`) shows in ps as several
/// words, which no reading of the ps text can split back. Live mode reads
/// the exact argv from /proc and still finds the forward.
#[test]
fn argument_with_spaces_is_read_from_proc() {
    let p = spawn(
        &s(&[
            "-i",
            "/home/novacr01/my keys/id_ed25519",
            "-o",
            "LocalForward 15998 localhost:5998",
            "-N",
            "-L",
            "15997:localhost:5997",
            "fakehost.invalid",
        ]),
        Spawn::default(),
    );
    let mine = tunnels_of(&collect(false), &p);
    let ports: Vec<_> = mine
        .iter()
        .map(|t| (t.listen_port, t.target_port, t.dest.as_str()))
        .collect();
    assert!(have_proc(), "this test needs /proc");
    assert_eq!(
        ports,
        [
            (15998, 5998, "fakehost.invalid"),
            (15997, 5997, "fakehost.invalid")
        ]
    );
}

/// A fake ssh holding one forward (`-L PORT:localhost:5951`) and
/// listening on it, as ssh does.
fn forward_on(port: u16) -> Proc {
    let forward = format!("{port}:localhost:5951");
    let how = Spawn {
        bind: Some(port),
        ..Spawn::default()
    };
    spawn(&s(&["-N", "-L", &forward, "fakehost.invalid"]), how)
}

/// Connects to 127.0.0.1:`port` once the fake ssh there listens (it binds
/// after it starts): at most 100 tries, 20 ms apart.
fn connect_when_listening(port: u16) -> TcpStream {
    for _ in 0..100 {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port} after 2 s");
}

/// `connections` and `connected` of a forward: two connections from this
/// process (so from our account), then one after the other closes. At most
/// 50 rescans, 20 ms apart, for the kernel to see the close.
#[test]
fn connections_to_a_forward_and_who_made_them() {
    let _quiet = no_probes();
    let port = free_port();
    let p = forward_on(port);
    let c1 = connect_when_listening(port);
    let c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mine = tunnels_of(&collect(false), &p);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].listening, Health::Yes);
    assert_eq!(mine[0].connections, Some(2));
    assert_eq!(mine[0].connected, vec![my_user(), my_user()]);
    drop(c1);
    let mut last = None;
    for _ in 0..50 {
        let mine = tunnels_of(&collect(false), &p);
        last = Some(mine[0].clone());
        if mine[0].connections == Some(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = last.unwrap();
    assert_eq!(last.connections, Some(1), "{last:?}");
    assert_eq!(last.connected, vec![my_user()]);
    drop(c2);
}

/// The client run as an account that owns none of the tunnels (nobody,
/// 65534) still counts the connections and names who made them (root, this
/// test); it cannot read the tunnel's fds, so `listening` is unknown, which
/// root's run answers (yes). Needs root to run the three accounts.
#[test]
fn an_unprivileged_account_sees_who_is_on_a_tunnel() {
    let _quiet = no_probes();
    let owner = 54323;
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let nobody = passwd.lines().any(|l| l.starts_with("nobody:x:65534:"));
    if my_user() != "root" || !nobody {
        skip("needs root and the account nobody (65534)");
        return;
    }
    let port = free_port();
    let p = spawn(
        &s(&[
            "-N",
            "-L",
            &format!("{port}:localhost:5951"),
            "fakehost.invalid",
        ]),
        Spawn {
            bind: Some(port),
            uid: Some(owner),
            ..Spawn::default()
        },
    );
    let c1 = connect_when_listening(port);
    let c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gateway-client"))
        .args(["--dry-run", "--json"])
        .uid(65534)
        .gid(65534)
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("run gateway-client as nobody");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let pid = format!("\"pid\":{},", p.pid());
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{{{pid}")))
        .unwrap_or_else(|| panic!("no tunnel of pid {} in:\n{text}", p.pid()));
    assert!(line.contains(r#""listening":"unknown""#), "{line}");
    assert!(
        line.contains(r#""connections":2,"connected":["root","root"]"#),
        "{line}"
    );
    // Root reads the fds: the forward listens.
    let mine = tunnels_of(&collect(false), &p);
    assert_eq!(mine[0].listening, Health::Yes);
    assert_eq!(mine[0].connections, Some(2));
    drop((c1, c2));
}

/// The rescan without ps finds the same forward from /proc alone, with its
/// listener and connection; without counting connections they are unknown.
#[test]
fn rescan_without_ps() {
    let _quiet = no_probes();
    let port = free_port();
    let p = forward_on(port);
    let c = connect_when_listening(port);
    let ctx = live::Context::without_sockets();
    let found = live::rescan(&ctx, true).unwrap();
    let mine = tunnels_of(&found, &p);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].user, my_user());
    assert_eq!((mine[0].kind, mine[0].listen_port), (Kind::Local, port));
    assert_eq!(mine[0].listening, Health::Yes);
    assert_eq!(mine[0].connections, Some(1));
    assert_eq!(mine[0].connected, vec![my_user()]);
    // As ps prints START (the comparison with collect is below).
    assert!(!mine[0].start.is_empty(), "{:?}", mine[0]);
    check_started(&mine[0], &p);
    let fast = tunnels_of(&live::rescan(&ctx, false).unwrap(), &p);
    assert_eq!(fast[0].listening, Health::Yes);
    assert_eq!((fast[0].connections, fast[0].connected.len()), (None, 0));
    drop(c);
}

/// Rescans with one `Context` kept, as a watch mode keeps it, give the
/// ESTABLISHED sockets of the last walk again while the kernel's counters
/// say none came or went: a connection made or closed in between is seen
/// by the next rescan all the same, and the records are those of a rescan
/// with a fresh `Context`.
#[test]
fn rescans_with_a_kept_context_follow_connections() {
    let _quiet = no_probes();
    let port = free_port();
    let p = forward_on(port);
    let c1 = connect_when_listening(port);
    let ctx = live::Context::without_sockets();
    let count = |ctx: &live::Context| {
        let mine = tunnels_of(&live::rescan(ctx, true).unwrap(), &p);
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0].listening, Health::Yes);
        mine[0].connections
    };
    assert_eq!(count(&ctx), Some(1));
    assert_eq!(count(&ctx), Some(1), "kept rows, nothing changed");
    // The forward accepts (and sees a close) in its own time: rescans
    // until `want`, at most 100 and 5 s.
    let settle = |want: u32| {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        let mut seen = count(&ctx);
        for _ in 0..100 {
            if seen == Some(want) || std::time::Instant::now() > end {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            seen = count(&ctx);
        }
        seen
    };
    let c2 = connect_when_listening(port);
    assert_eq!(settle(2), Some(2), "a new connection after the last walk");
    assert_eq!(
        count(&ctx),
        count(&live::Context::without_sockets()),
        "kept context and fresh one agree"
    );
    drop(c1);
    assert_eq!(
        settle(1),
        Some(1),
        "a connection closed after the last walk"
    );
    drop(c2);
}

/// The ssh-like command lines of a real capture (`testdata/ps/NAME.txt`,
/// procps `auxww`): the COMMAND column of every line that mentions ssh,
/// tunnels and look-alikes (sshd, ssh-agent, sftp, `grep ssh`) alike.
fn capture_commands(name: &str) -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/ps")
        .join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| l.contains("ssh"))
        .map(|l| l.split_whitespace().skip(10).map(str::to_string).collect())
        .filter(|argv: &Vec<String>| !argv.is_empty())
        .collect()
}

/// Records sorted, with `start` (ps's minute, which ps computes from its
/// own idea of the boot time, a second off /proc's at times) checked
/// apart: equal, except for a process that started within a second of a
/// minute's turn.
fn same_records(mut oneshot: Vec<Tunnel>, mut watch: Vec<Tunnel>) {
    let key = |t: &Tunnel| (t.pid, t.kind, t.listen_port, t.bind.clone());
    oneshot.sort_by_key(key);
    watch.sort_by_key(key);
    assert_eq!(oneshot.len(), watch.len(), "{oneshot:#?}\n{watch:#?}");
    for (a, mut b) in oneshot.into_iter().zip(watch) {
        let near_turn = b.started.is_some_and(|s| matches!(s % 60, 59 | 0));
        if a.start != b.start && near_turn {
            b.start = a.start.clone();
        }
        assert_eq!(a, b, "one-shot (left) and watch mode's look (right) differ");
    }
}

/// Watch mode's look (`live::rescan`: /proc alone) gives the very records
/// of the one-shot run (`live::collect`: ps, then /proc) for the same live
/// processes: the ssh command lines of two real captures (tunnels of every
/// form the parser knows, and the look-alikes that are not tunnels), and a
/// forward that listens with two connections in it. The processes are
/// looked at with collect, rescan, collect; a pass where the two collects
/// differ (a process still starting) is done again, at most 5 times.
#[test]
fn a_look_gives_the_records_of_the_one_shot_run() {
    let _quiet = no_probes();
    assert!(have_proc(), "this test needs /proc");
    let mut procs = Vec::new();
    for name in ["procps-auxww.txt", "after-restart-auxww.txt"] {
        for argv in capture_commands(name) {
            let arg0: &'static str = Box::leak(argv[0].clone().into_boxed_str());
            let how = Spawn {
                arg0: Some(arg0),
                ..Spawn::default()
            };
            procs.push(spawn(&argv[1..], how));
        }
    }
    assert!(procs.len() >= 20, "{} processes", procs.len());
    let port = free_port();
    let forward = format!("{port}:novadaq-far-master-01:5901");
    let how = Spawn {
        bind: Some(port),
        ..Spawn::default()
    };
    procs.push(spawn(&s(&["-N", "-L", &forward, "novacr01@gw"]), how));
    let conns = (connect_when_listening(port), connect_when_listening(port));
    let pids: Vec<u32> = procs.iter().map(Proc::pid).collect();
    let ours = |all: Vec<Tunnel>| -> Vec<Tunnel> {
        all.into_iter().filter(|t| pids.contains(&t.pid)).collect()
    };
    let ctx = live::Context::without_sockets();
    for _ in 0..5 {
        let before = ours(collect(false));
        let look = ours(live::rescan(&ctx, true).unwrap());
        let after = ours(collect(false));
        if before != after {
            continue;
        }
        assert!(before.len() >= 20, "{before:#?}");
        let listening = before.iter().find(|t| t.listen_port == port).unwrap();
        assert_eq!(
            (listening.listening, listening.connections),
            (Health::Yes, Some(2))
        );
        same_records(before, look);
        drop(conns);
        return;
    }
    panic!("the processes kept changing between two ps runs in 5 passes");
}
