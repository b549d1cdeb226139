//! `scripts/deploy-gateway` against a real OpenSSH server.
//!
//! The test plays both sides on this machine: an `sshd` on 127.0.0.1 at a
//! free port with a throwaway host key, a throwaway account (home folder in
//! a temporary folder, removed at the end with its crontab) that accepts a
//! throwaway client key, and the real collector on 127.0.0.1. It deploys
//! twice and checks what an operator would: the files and the key's mode on
//! the gateway, the config (with `--probe`: `probe = true`), exactly one
//! cron line (the account's other lines kept), and the collector's ack of
//! the first report (the deploy's output, the collector's `/metrics` and
//! `status.json`). A third deploy with `--watch` and a second collector
//! (same key): the watch line replaces the other, the config lists both
//! collectors, both acknowledge. Then two failures: a collector
//! with another key (exit 3, counted as `bad_signature`) and no SSH server
//! (exit 1).
//!
//! It needs root (to add the account and run sshd) and the Debian packages
//! openssh-server, openssh-client and cron.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{
    Collector, Error, Proc, Result, TempDir, free_tcp_port, make_key, need_tool, read_file,
    repo_root, run, run_ok, set_mode, tcp_open, text, wait_for, write_file,
};

const MARK: &str = "# roc-tunnel-monitor gateway-client";
const GATEWAY: &str = "e2e-deploy-gateway";
const SHORT: Duration = Duration::from_secs(30);
const ACCEPTED: &str = "roctm_collector_datagrams_total{outcome=\"accepted\"}";
const BAD_SIGNATURE: &str = "roctm_collector_datagrams_total{outcome=\"bad_signature\"}";

/// A local account for the test, removed with its crontab on drop.
struct Account {
    name: String,
    home: PathBuf,
}

impl Account {
    fn create(name: &str, home: &Path) -> Result<Account> {
        // A leftover from a test that was killed: remove it first.
        let _ = run(Command::new("userdel").arg(name), SHORT);
        // Password '*': no password login, but not "locked" for sshd.
        run_ok(
            Command::new("useradd")
                .args(["--no-create-home", "--shell", "/bin/sh", "--password", "*"])
                .arg("--home-dir")
                .arg(home)
                .arg(name),
            SHORT,
        )?;
        let account = Account {
            name: name.to_string(),
            home: home.to_path_buf(),
        };
        std::fs::create_dir(home).map_err(|e| Error::io("making the home folder", home, e))?;
        run_ok(
            Command::new("chown").arg(format!("{name}:")).arg(home),
            SHORT,
        )?;
        Ok(account)
    }

    fn crontab(&self) -> Result<String> {
        let out = run(
            Command::new("crontab").args(["-l", "-u", &self.name]),
            SHORT,
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn set_crontab(&self, lines: &str, dir: &Path) -> Result<()> {
        let file = dir.join("crontab.before");
        write_file(&file, lines)?;
        run_ok(
            Command::new("crontab").args(["-u", &self.name]).arg(&file),
            SHORT,
        )?;
        Ok(())
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = run(
            Command::new("crontab").args(["-r", "-u", &self.name]),
            SHORT,
        );
        let _ = run(
            Command::new("pkill").args(["-KILL", "-u", &self.name]),
            SHORT,
        );
        let _ = run(Command::new("userdel").arg(&self.name), SHORT);
    }
}

/// ssh-keygen: a new ed25519 key pair without a passphrase.
fn keygen(path: &Path) -> Result<()> {
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "roctm-e2e", "-f"])
            .arg(path),
        SHORT,
    )?;
    Ok(())
}

/// An sshd on 127.0.0.1:`port` that lets `user` in with `client_key`.
fn start_sshd(tmp: &TempDir, port: u16, user: &str, client_key: &Path) -> Result<Proc> {
    let sshd = need_tool("/usr/sbin/sshd", "openssh-server")?;
    // Privilege separation needs this folder; a fresh container may lack it.
    std::fs::create_dir_all("/run/sshd").map_err(|e| Error::io("making", "/run/sshd", e))?;
    let host_key = tmp.join("ssh_host_ed25519_key");
    keygen(&host_key)?;
    let authorized = tmp.join("authorized_keys");
    let public = read_file(&client_key.with_extension("pub"))?;
    write_file(&authorized, &public)?;
    set_mode(&authorized, 0o644)?;
    let config = tmp.join("sshd_config");
    write_file(
        &config,
        &format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {host}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {authorized}\n\
             AllowUsers {user}\n\
             PermitRootLogin no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             Subsystem sftp internal-sftp\n\
             LogLevel VERBOSE\n",
            host = host_key.display(),
            pid = tmp.join("sshd.pid").display(),
            authorized = authorized.display(),
        ),
    )?;
    run_ok(Command::new(&sshd).arg("-t").arg("-f").arg(&config), SHORT)?;
    let mut proc = Proc::spawn(
        "sshd",
        Command::new(&sshd).args(["-D", "-e", "-f"]).arg(&config),
        &tmp.join("sshd.log"),
    )?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_for("sshd to listen", SHORT, || {
        (tcp_open(addr) || proc.exited().is_some()).then_some(())
    })?;
    if proc.exited().is_some() {
        return Err(proc.fail("sshd exited at start"));
    }
    Ok(proc)
}

/// Runs `scripts/deploy-gateway` with the test's SSH settings.
fn deploy(ssh_port: u16, identity: &Path, args: &[&str], target: &str) -> Result<(i32, String)> {
    let out = run(
        Command::new(repo_root().join("scripts/deploy-gateway"))
            .arg("-p")
            .arg(ssh_port.to_string())
            .arg("-i")
            .arg(identity)
            .args(args)
            .arg(target)
            .env(
                "DEPLOY_SSH_OPTS",
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            ),
        e2e::BUILD_LIMIT,
    )?;
    Ok((out.status.code().unwrap_or(-1), text(&out)))
}

/// The lines of a crontab that carry our mark.
fn marked(crontab: &str) -> Vec<&str> {
    crontab.lines().filter(|l| l.contains(MARK)).collect()
}

/// What the watch-mode deploy needs of the main test.
struct Watching<'a> {
    ssh_port: u16,
    identity: &'a Path,
    args: &'a [&'a str],
    target: &'a str,
    account: &'a Account,
    dir: &'a Path,
    collector: &'a Collector,
    collector_bin: &'a Path,
    key: &'a Path,
    tmp: &'a Path,
}

/// Watch mode, and a second collector with the same key: the watch line
/// replaces the other, the config lists both, and both got the report.
fn watch_deploy_to_two_collectors(w: &Watching) -> Result<()> {
    let reports_before = w.collector.metric(ACCEPTED)?;
    let second = Collector::start(w.collector_bin, &w.tmp.join("second"), w.key)?;
    let second_arg = second.udp.to_string();
    let mut watching = w.args.to_vec();
    watching.extend(["--watch", "--collector", &second_arg]);
    let (code, out) = deploy(w.ssh_port, w.identity, &watching, w.target)?;
    if code != 0 || !out.contains("cron starts its watching client within a minute") {
        return Err(Error::check("the watch deploy to exit 0", out));
    }
    let watch_line = format!(
        "* * * * * {}/gateway-client --watch -q {MARK}",
        w.dir.display()
    );
    let crontab = w.account.crontab()?;
    if marked(&crontab) != [watch_line.as_str()] {
        return Err(Error::check(format!("one line '{watch_line}'"), crontab));
    }
    let conf = read_file(&w.dir.join("gateway-client.conf"))?;
    let both = format!("address = {}, {second_arg}", w.collector.udp);
    if !conf.lines().any(|l| l == both) {
        return Err(Error::check(
            format!("'{both}' in gateway-client.conf"),
            conf,
        ));
    }
    if w.collector.metric(ACCEPTED)? <= reports_before || second.metric(ACCEPTED)? == 0 {
        return Err(Error::check("the report at both collectors", out));
    }
    Ok(())
}

#[test]
fn deploy_over_ssh_twice_one_cron_line_and_an_ack() -> Result<()> {
    if !e2e::is_root() {
        return Err(Error::NotRoot {
            why: "it adds a throwaway account and runs sshd".into(),
        });
    }
    for (tool, package) in [
        ("ssh", "openssh-client"),
        ("scp", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
        ("crontab", "cron"),
        ("useradd", "passwd"),
    ] {
        need_tool(tool, package)?;
    }
    // Build once up front, so that both deploys find it built.
    e2e::build_static_client()?;

    let tmp = TempDir::new("deploy")?;
    let user = format!("roctm-e2e-{}", std::process::id());
    let account = Account::create(&user, &tmp.join("home"))?;
    let identity = tmp.join("id_ed25519");
    keygen(&identity)?;
    let ssh_port = free_tcp_port()?;
    let sshd = start_sshd(&tmp, ssh_port, &user, &identity)?;
    let key = make_key(&tmp.join("roctm.key"))?;
    let collector_bin = e2e::cargo_bin("collector", "collector")?;
    let collector = Collector::start(&collector_bin, &tmp.join("collector"), &key)?;
    let target = format!("{user}@127.0.0.1");
    let collector_arg = collector.udp.to_string();
    let args = [
        "--collector",
        &collector_arg,
        "--key",
        key.to_str().unwrap_or_default(),
        "--name",
        GATEWAY,
        "--probe",
    ];

    // The account already has a cron job of its own: it must survive.
    let own = "# the account's own jobs\n17 3 * * * /bin/true\n";
    account.set_crontab(own, tmp.path())?;

    let (code, out) = deploy(ssh_port, &identity, &args, &target)?;
    if code != 0 {
        return Err(Error::check(
            format!("the first deploy to exit 0, not {code}"),
            format!("{out}\nsshd log:\n{}", sshd.log()),
        ));
    }
    if !out.contains("acknowledged") {
        return Err(Error::check("the client's ack in the deploy output", out));
    }
    let reports = collector.metric(ACCEPTED)?;
    let (_, status) = e2e::http_get(collector.http, "/status.json")?;
    if reports == 0 || !status.contains(GATEWAY) {
        return Err(Error::check(
            format!("a report from {GATEWAY} at the collector"),
            format!(
                "{reports} accepted; status.json: {status}\n{}",
                collector.proc.log()
            ),
        ));
    }

    // What is on the gateway.
    let dir = account.home.join("roc-tunnel-monitor");
    for f in [
        "gateway-client",
        "gateway-client.conf",
        "gateway-client.key",
    ] {
        if !dir.join(f).is_file() {
            return Err(Error::check(format!("{f} in {}", dir.display()), out));
        }
    }
    let meta = std::fs::metadata(dir.join("gateway-client.key"))
        .map_err(|e| Error::io("stat", dir.join("gateway-client.key"), e))?;
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o777;
        if mode != 0o600 {
            return Err(Error::check("the key at mode 600", format!("{mode:o}")));
        }
        let owner = std::fs::metadata(&account.home)
            .map_err(|e| Error::io("stat", &account.home, e))?
            .uid();
        if meta.uid() != owner {
            return Err(Error::check(
                "the key owned by the account",
                meta.uid().to_string(),
            ));
        }
    }
    if read_file(&dir.join("gateway-client.key"))?.trim() != read_file(&key)?.trim() {
        return Err(Error::check(
            "the collector's key on the gateway",
            "another key",
        ));
    }
    let conf = read_file(&dir.join("gateway-client.conf"))?;
    for want in [
        format!("address = {}", collector.udp.ip()),
        format!("port = {}", collector.udp.port()),
        format!("name = {GATEWAY}"),
        "probe = true".to_string(),
    ] {
        if !conf.lines().any(|l| l == want) {
            return Err(Error::check(
                format!("'{want}' in gateway-client.conf"),
                conf,
            ));
        }
    }

    let line = format!("* * * * * {}/gateway-client -q {MARK}", dir.display());
    let crontab = account.crontab()?;
    if marked(&crontab) != [line.as_str()] || !crontab.contains("17 3 * * * /bin/true") {
        return Err(Error::check(
            format!("the account's own job and one line '{line}'"),
            crontab,
        ));
    }

    // The rest needs no new build: copy the client built above.
    let client = repo_root().join("target/static/gateway-client");
    let client = client.to_str().unwrap_or_default();
    let mut with_client = args.to_vec();
    with_client.extend(["--client", client]);

    // Again: still one line, and a second ack.
    let (code, out) = deploy(ssh_port, &identity, &with_client, &target)?;
    if code != 0 {
        return Err(Error::check("the second deploy to exit 0", out));
    }
    let crontab = account.crontab()?;
    if marked(&crontab) != [line.as_str()] || !crontab.contains("17 3 * * * /bin/true") {
        return Err(Error::check(
            "still one cron line after two deploys",
            crontab,
        ));
    }
    let reports_after = collector.metric(ACCEPTED)?;
    if reports_after <= reports {
        return Err(Error::check("a second report after the second deploy", out));
    }

    watch_deploy_to_two_collectors(&Watching {
        ssh_port,
        identity: &identity,
        args: &with_client,
        target: &target,
        account: &account,
        dir: &dir,
        collector: &collector,
        collector_bin: &collector_bin,
        key: &key,
        tmp: tmp.path(),
    })?;

    // A collector with another key never acks: the deploy says so, exit 3.
    let other_key = make_key(&tmp.join("other.key"))?;
    let other = Collector::start(&collector_bin, &tmp.join("other"), &other_key)?;
    let other_arg = other.udp.to_string();
    let (code, out) = deploy(
        ssh_port,
        &identity,
        &[
            "--collector",
            &other_arg,
            "--key",
            key.to_str().unwrap_or_default(),
            "--name",
            GATEWAY,
            "--timeout",
            "2",
            "--client",
            client,
        ],
        &target,
    )?;
    if code != 3 || !out.contains("did not acknowledge") {
        return Err(Error::check(
            format!("exit 3 and 'did not acknowledge' for a wrong key, exit {code}"),
            out,
        ));
    }
    if other.metric(BAD_SIGNATURE)? == 0 {
        return Err(Error::check(
            "the wrong-key collector to see a bad signature",
            out,
        ));
    }

    // No SSH server there: exit 1, naming ssh.
    let closed = free_tcp_port()?;
    let (code, out) = deploy(closed, &identity, &with_client, &target)?;
    if code != 1 || !out.contains("ssh to") {
        return Err(Error::check(
            format!("exit 1 and 'ssh to ... failed' with no server, exit {code}"),
            out,
        ));
    }
    drop(sshd);
    drop(account);
    Ok(())
}
