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

use std::path::Path;
use std::process::Command;

use e2e::sshd::{Account, Sshd, keygen};
use e2e::{
    Collector, Error, Result, TempDir, free_tcp_port, make_key, need_tool, read_file, repo_root,
    run, text,
};

const MARK: &str = "# roc-tunnel-monitor gateway-client";
const GATEWAY: &str = "e2e-deploy-gateway";
const ACCEPTED: &str = "roctm_collector_datagrams_total{outcome=\"accepted\"}";
const BAD_SIGNATURE: &str = "roctm_collector_datagrams_total{outcome=\"bad_signature\"}";

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
    let sshd = Sshd::start(&tmp, ssh_port, &[&user], &[&identity])?;
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
