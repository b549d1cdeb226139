//! Who is on a tunnel, on real connections (issue 13, item 5): a real
//! OpenSSH server on 127.0.0.1 with throwaway keys plays the gateway, and
//! four throwaway accounts play the people on it:
//!
//! - the *owner* holds the tunnel: a real `ssh -N -L PORT:127.0.0.1:FAR`
//!   into that sshd, `FAR` a listener of this test that holds every
//!   connection open (a VNC server would);
//! - a *shifter* logs into the gateway with its own `ssh -N -L` session
//!   and forwards into the tunnel's port, so the shifter's sshd session on
//!   the gateway (a process running as the shifter) makes the connection;
//! - a *local* account connects to the tunnel's port directly (bash's
//!   `/dev/tcp`);
//! - a *watcher*, unprivileged and owning none of these, runs the client
//!   live (`--dry-run --json`).
//!
//! The client must report `connections: 2` on the owner's forward and the
//! shifter's and the local account's names (the accounts owning the peer
//! sockets), then, after the local account's connection closes, 1 and the
//! shifter alone.
//!
//! It needs root (accounts, sshd) and the Debian packages openssh-server,
//! openssh-client, passwd and procps.
//!
//! Then the pages (issue 13, item 3), in headless Chromium: two fake ssh
//! forwards, one with a connection held into it, reported by the real
//! client to the real collector; webgen's `index.html` says "in use: 1 —
//! ACCOUNT" on the one and "idle" on the other, and `history.html` marks the
//! stretch in use on the first's bar. After the connection closes and
//! another report, both are idle, and with `--idle-after 0s` both are
//! listed as candidates to close, each idle since the first report that
//! found it so. Needs the Debian package chromium.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::sshd::{Account, SSH_OPTS, Sshd};
use e2e::{
    Collector, Error, Proc, Result, TempDir, cargo_bin, chromium_dom, current_user, free_tcp_port,
    make_key, need_tool, run, run_ok, set_mode, tcp_open, text, wait_for,
};

const LIMIT: Duration = Duration::from_secs(30);
const GATEWAY: &str = "e2e-connections-gateway";

/// The far end of the tunnel: accepts on 127.0.0.1 and holds every
/// connection open until dropped.
struct Far {
    port: u16,
    accepted: Arc<AtomicUsize>,
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Far {
    fn start() -> Result<Far> {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| Error::io("binding", "127.0.0.1:0", e))?;
        let port = l
            .local_addr()
            .map_err(|e| Error::io("local address", "127.0.0.1:0", e))?
            .port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (count, keep) = (accepted.clone(), held.clone());
        // Ends with the test process; at most a handful of connections come.
        std::thread::spawn(move || {
            for conn in l.incoming().flatten().take(100) {
                if let Ok(mut v) = keep.lock() {
                    v.push(conn);
                }
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Ok(Far {
            port,
            accepted,
            _held: held,
        })
    }

    /// How many connections came through so far (the checks that a
    /// forward listens make some too).
    fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until `n` connections came through.
    fn wait(&self, n: usize, what: &str) -> Result<()> {
        wait_for(what, LIMIT, || (self.count() >= n).then_some(()))
    }
}

/// `account`'s `ssh -N -L forward` into `sshd`, running until dropped; waits
/// until its forward listens on 127.0.0.1:`port`.
fn ssh_forward(
    account: &Account,
    key: &Path,
    sshd: &Sshd,
    port: u16,
    to: u16,
    log: &Path,
) -> Result<Proc> {
    let mut cmd = account.command("ssh");
    cmd.args(SSH_OPTS)
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-i"])
        .arg(key)
        .arg("-p")
        .arg(sshd.port.to_string())
        .arg("-L")
        .arg(format!("{port}:127.0.0.1:{to}"))
        .arg(format!("{}@127.0.0.1", account.name));
    let mut p = Proc::spawn(&format!("{}'s ssh -L {port}", account.name), &mut cmd, log)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_for(
        &format!("{}'s forward to listen", account.name),
        LIMIT,
        || (tcp_open(addr) || p.exited().is_some()).then_some(()),
    )?;
    if p.exited().is_some() {
        return Err(p.fail(&format!(
            "{}'s ssh exited at start\nsshd log:\n{}",
            account.name,
            sshd.log()
        )));
    }
    Ok(p)
}

/// `connections` and `connected` of the `L` forward on `port` in the
/// client's `--json` output, as text: `2 [a,b]`, `null []`.
fn who(json: &str, port: u16) -> Option<String> {
    let line = json.lines().find(|l| {
        l.contains(&format!(
            "\"kind\":\"L\",\"bind\":\"\",\"listen_port\":{port},"
        ))
    })?;
    let n = line.split("\"connections\":").nth(1)?.split(',').next()?;
    let list = line.split("\"connected\":[").nth(1)?.split(']').next()?;
    Some(format!("{n} [{}]", list.replace('"', "")))
}

/// The client, live, as `watcher`: its `--json` output.
fn client_json(watcher: &Account, client: &Path) -> Result<String> {
    let out = run(
        watcher
            .command(client)
            .args(["--dry-run", "--json", "--name", GATEWAY]),
        LIMIT,
    )?;
    if !out.status.success() {
        return Err(Error::check(
            format!("the client as {} to exit 0", watcher.name),
            text(&out),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs the client as `watcher` until it reports `want` (`who`'s text) on
/// `port`: a bounded number of runs in a bounded time (a connection that
/// just closed, such as a check that a forward listens, may take a moment
/// to leave ESTABLISHED on a busy machine).
fn expect_who(watcher: &Account, client: &Path, port: u16, want: &str) -> Result<()> {
    let mut last = String::new();
    let found = wait_for(&format!("a run that finds {want}"), LIMIT, || {
        last = client_json(watcher, client).ok()?;
        (who(&last, port).as_deref() == Some(want)).then_some(())
    });
    found.map_err(|_| {
        Error::check(
            format!("{want} on port {port} (the client as {})", watcher.name),
            last,
        )
    })
}

/// The client binary, copied where every account may run it.
fn client_copy(tmp: &TempDir) -> Result<PathBuf> {
    let built = cargo_bin("gateway-client", "gateway-client")?;
    let copy = tmp.join("gateway-client");
    std::fs::copy(&built, &copy).map_err(|e| Error::io("copying", &built, e))?;
    set_mode(&copy, 0o755)?;
    Ok(copy)
}

#[test]
fn two_accounts_on_a_real_tunnel_then_one() -> Result<()> {
    if !e2e::is_root() {
        return Err(Error::NotRoot {
            why: "it adds four throwaway accounts and runs sshd".into(),
        });
    }
    for (tool, package) in [
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
        ("useradd", "passwd"),
        ("ps", "procps"),
        ("bash", "bash"),
    ] {
        need_tool(tool, package)?;
    }
    let tmp = TempDir::new("connections")?;
    let client = client_copy(&tmp)?;
    let pid = std::process::id();
    let account = |role: &str| Account::create(&format!("roctm-{role}-{pid}"), &tmp.join(role));
    let (owner, shifter) = (account("owner")?, account("shifter")?);
    let (local, watcher) = (account("local")?, account("watcher")?);
    let (owner_key, shifter_key) = (owner.keygen()?, shifter.keygen()?);
    let sshd = Sshd::start(
        &tmp,
        free_tcp_port()?,
        &[&owner.name, &shifter.name],
        &[&owner_key, &shifter_key],
    )?;

    let far = Far::start()?;
    let port = free_tcp_port()?;
    let log = |name: &str| tmp.path().join(format!("{name}.log"));
    let _tunnel = ssh_forward(&owner, &owner_key, &sshd, port, far.port, &log("owner"))?;
    // Before anyone is on it.
    expect_who(&watcher, &client, port, "0 []")?;

    // The shifter through its own session into the gateway's sshd.
    let hop = free_tcp_port()?;
    let _hop = ssh_forward(&shifter, &shifter_key, &sshd, hop, port, &log("shifter"))?;
    let before = far.count();
    let _via_sshd = TcpStream::connect((Ipv4Addr::LOCALHOST, hop))
        .map_err(|e| Error::io("connecting", format!("127.0.0.1:{hop}"), e))?;
    far.wait(
        before + 1,
        "the shifter's connection to come through the tunnel",
    )?;
    // The local account directly, from a process of its own.
    let mut direct = local.command("bash");
    direct.args([
        "-c",
        &format!("exec 3<>/dev/tcp/127.0.0.1/{port} && exec sleep 300"),
    ]);
    let direct = Proc::spawn("the local account's connection", &mut direct, &log("local"))?;
    far.wait(
        before + 2,
        "the local account's connection to come through the tunnel",
    )?;

    let mut both = [shifter.name.as_str(), local.name.as_str()];
    both.sort_unstable();
    expect_who(&watcher, &client, port, &format!("2 [{}]", both.join(",")))?;

    // One connection closes: the next run finds the other alone. The
    // owner's ssh closes its end when it reads the end of the stream;
    // each run is bounded, and so is the number of runs.
    drop(direct);
    expect_who(&watcher, &client, port, &format!("1 [{}]", shifter.name))?;
    Ok(())
}

/// The part of `html` from the first `open` to the next `close`.
fn element<'a>(html: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = html.find(open)?;
    let end = html[start..].find(close)? + start + close.len();
    Some(&html[start..end])
}

/// The rendered `index.html` row of the tunnel on `port`, and its "In use" cell.
fn in_use_cell(dom: &str, port: u16) -> Result<String> {
    let row = element(dom, &format!("data-listen-port=\"{port}\""), "</tr>")
        .ok_or_else(|| Error::check(format!("a row for port {port}"), dom))?;
    let cell = element(row, "class=\"inuse", "</td>")
        .ok_or_else(|| Error::check(format!("an In use cell for port {port}"), row))?;
    Ok(cell.to_string())
}

/// Reports the forwards once (the real client, live) and renders the pages
/// with `--idle-after 0s`; returns the DOMs of index.html and history.html.
fn report_and_render(
    tmp: &TempDir,
    collector: &Collector,
    key: &Path,
    round: u32,
) -> Result<(String, String)> {
    let client = cargo_bin("gateway-client", "gateway-client")?;
    run_ok(
        Command::new(client)
            .args(["--config", "/dev/null", "-q", "--name", GATEWAY, "-a"])
            .arg(collector.udp.ip().to_string())
            .arg("-p")
            .arg(collector.udp.port().to_string())
            .arg("--key-file")
            .arg(key),
        LIMIT,
    )?;
    let site = tmp.join(&format!("site-{round}"));
    run_ok(
        Command::new(cargo_bin("webgen", "webgen")?)
            .args([
                "--config",
                "/dev/null",
                "-q",
                "--idle-after",
                "0s",
                "--data",
            ])
            .arg(tmp.join("collector").join("data"))
            .arg("--out")
            .arg(&site),
        LIMIT,
    )?;
    let profile = tmp.join(&format!("chromium-{round}"));
    let page =
        |name: &str| chromium_dom(&format!("file://{}", site.join(name).display()), &profile);
    Ok((page("index.html")?, page("history.html")?))
}

#[test]
fn in_use_and_idle_on_the_pages() -> Result<()> {
    need_tool("/usr/bin/chromium", "chromium").or_else(|_| need_tool("chromium", "chromium"))?;
    let tmp = TempDir::new("connections-pages")?;
    let key = make_key(&tmp.join("collector.key"))?;
    let collector = Collector::start(
        &cargo_bin("collector", "collector")?,
        &tmp.join("collector"),
        &key,
    )?;
    let fake = Path::new(env!("CARGO_BIN_EXE_fake-ssh"));
    let (busy, idle) = (free_tcp_port()?, free_tcp_port()?);
    let _busy = e2e::fake_ssh(fake, tmp.path(), busy, "novadaq-far-master-01:5901", true)?;
    let _idle = e2e::fake_ssh(fake, tmp.path(), idle, "novadaq-far-master-02:5902", true)?;
    let me = current_user()?;

    // A viewer on the first: the fake ssh holds the connection open.
    let viewer = TcpStream::connect((Ipv4Addr::LOCALHOST, busy))
        .map_err(|e| Error::io("connecting", format!("127.0.0.1:{busy}"), e))?;
    let (index, history) = report_and_render(&tmp, &collector, &key, 1)?;
    let want = format!("in use: 1 — {me}");
    let cell = in_use_cell(&index, busy)?;
    if !cell.contains(&want) || !cell.contains("data-connections=\"1\"") {
        return Err(Error::check(format!("'{want}' for port {busy}"), cell));
    }
    let cell = in_use_cell(&index, idle)?;
    if !cell.contains(">idle<") {
        return Err(Error::check(format!("'idle' for port {idle}"), cell));
    }
    let day = element(&history, "data-range=\"24h\"", "</section>")
        .ok_or_else(|| Error::check("the 24h range", history.clone()))?;
    let lane = |port: u16| element(day, &format!("<span class=\"mono\">{port}</span>"), "</li>");
    match (lane(busy), lane(idle)) {
        (Some(b), Some(i)) if b.contains("class=\"use\"") && !i.contains("class=\"use\"") => {}
        _ => {
            return Err(Error::check(
                format!("an in-use mark on the lane of port {busy} only"),
                day,
            ));
        }
    }

    // The viewer leaves: both idle, both candidates with --idle-after 0s.
    drop(viewer);
    let (index, history) = report_and_render(&tmp, &collector, &key, 2)?;
    let cell = in_use_cell(&index, busy)?;
    if !cell.contains(">idle<") {
        return Err(Error::check(
            format!("'idle' for port {busy} after the viewer left"),
            cell,
        ));
    }
    let list = element(&history, "id=\"idle\"", "</section>")
        .ok_or_else(|| Error::check("the idle tunnels' section", history.clone()))?;
    let since = |port: u16| -> Option<u64> {
        let row = element(list, &format!("data-listen=\"{port}\""), ">")?;
        row.split("data-since=\"")
            .nth(1)?
            .split('"')
            .next()?
            .parse()
            .ok()
    };
    match (since(busy), since(idle)) {
        (Some(b), Some(i)) if b > i => Ok(()),
        _ => Err(Error::check(
            format!("ports {busy} and {idle} idle, {busy} since a later report"),
            list,
        )),
    }
}
