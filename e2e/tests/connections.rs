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

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::sshd::{Account, SSH_OPTS, Sshd};
use e2e::{
    Error, Proc, Result, TempDir, cargo_bin, free_tcp_port, need_tool, run, set_mode, tcp_open,
    text, wait_for,
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

    /// Waits until `n` connections came through.
    fn wait(&self, n: usize, what: &str) -> Result<()> {
        wait_for(what, LIMIT, || {
            (self.accepted.load(Ordering::SeqCst) >= n).then_some(())
        })
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
    let json = client_json(&watcher, &client)?;
    if who(&json, port).as_deref() != Some("0 []") {
        return Err(Error::check(format!("0 [] on port {port}"), json));
    }

    // The shifter through its own session into the gateway's sshd.
    let hop = free_tcp_port()?;
    let _hop = ssh_forward(&shifter, &shifter_key, &sshd, hop, port, &log("shifter"))?;
    let _via_sshd = TcpStream::connect((Ipv4Addr::LOCALHOST, hop))
        .map_err(|e| Error::io("connecting", format!("127.0.0.1:{hop}"), e))?;
    far.wait(1, "the shifter's connection to come through the tunnel")?;
    // The local account directly, from a process of its own.
    let mut direct = local.command("bash");
    direct.args([
        "-c",
        &format!("exec 3<>/dev/tcp/127.0.0.1/{port} && exec sleep 300"),
    ]);
    let direct = Proc::spawn("the local account's connection", &mut direct, &log("local"))?;
    far.wait(
        2,
        "the local account's connection to come through the tunnel",
    )?;

    let mut both = [shifter.name.as_str(), local.name.as_str()];
    both.sort_unstable();
    let want = format!("2 [{}]", both.join(","));
    let json = client_json(&watcher, &client)?;
    if who(&json, port).as_deref() != Some(want.as_str()) {
        return Err(Error::check(
            format!("{want} on port {port} (the client as {})", watcher.name),
            json,
        ));
    }

    // One connection closes: the next run finds the other alone. The
    // owner's ssh closes its end when it reads the end of the stream;
    // each run is bounded, and so is the number of runs.
    drop(direct);
    let want = format!("1 [{}]", shifter.name);
    let mut last = String::new();
    let found = wait_for("a run that finds one connection", LIMIT, || {
        last = client_json(&watcher, &client).ok()?;
        (who(&last, port).as_deref() == Some(want.as_str())).then_some(())
    });
    if found.is_err() {
        return Err(Error::check(
            format!("{want} on port {port} after the local connection closed"),
            last,
        ));
    }
    Ok(())
}
