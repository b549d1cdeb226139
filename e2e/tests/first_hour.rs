//! The operator's first hour: `docs/operations.md` followed literally on
//! this machine, with a real cron daemon, must give a working collector and
//! gateway within two cron minutes and leave no error line in
//! `collector.log`.
//!
//! The commands are read from the documentation itself (each found by its
//! start, so a change of the docs that this test does not follow fails it)
//! and run with only the edits the docs allow: the paths of the table at
//! the top moved into a temporary folder, the account named `roctmwalk`
//! instead of `roctm` (both are made and removed by the test), and the two
//! ports moved to free ones on 127.0.0.1 ("change them in both places").
//! The crontab files are the shipped ones with those edits only. Then:
//!
//! 1. collector host, steps 1–5: the account, the binaries (`install -D`),
//!    the key (`scripts/make-key` into a folder that does not exist yet,
//!    `chown`), the data folder and its `site/` (`install -d`), and
//!    `crontab -u ACCOUNT` with `scripts/crontab.collector`;
//! 2. a gateway "by hand": a second account with the static client, the
//!    documented `gateway-client.conf` and the key in
//!    `~/roc-tunnel-monitor/`, and the line of `scripts/crontab.gateway`;
//!    a shifter's tunnel (the `fake-ssh` binary of this crate) for it to
//!    find;
//! 3. `cron -f` started by the test (or the cron daemon already running);
//! 4. after the second cron minute since the crontabs were installed: the
//!    collector answers `status.json` with the gateway up and no other
//!    gateway, the page it serves shows the tunnel, webgen's pages are in
//!    `site/`, and `collector.log` holds no error line;
//! 5. the documented stop ("Stopping the collector") stops it.
//!
//! It takes a little over two minutes. It needs root (accounts, crontabs,
//! cron) and the Debian package cron; without them it fails, naming them.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use e2e::{
    Error, Proc, Result, TempDir, build_static_client, cargo_bin, free_tcp_port, free_udp_port,
    http_get, is_root, need_tool, read_file, repo_root, run, run_ok, set_mode, tcp_open, text,
    wait_for, write_file,
};

const SHORT: Duration = Duration::from_secs(30);
const ACCOUNT: &str = "roctmwalk";
const GW_ACCOUNT: &str = "novadaqwalk";
const GATEWAY: &str = "e2e-walk-gateway-01";
const VNC_HOST: &str = "novadaq-walk-vnc-03";

/// A local account made for the test; on drop its crontab, its processes
/// and the account itself are removed.
struct Account {
    name: String,
    home: PathBuf,
}

impl Account {
    fn create(name: &str, home: &Path) -> Result<Account> {
        // A leftover from a test that was killed: remove it first.
        let _ = run(Command::new("crontab").args(["-r", "-u", name]), SHORT);
        let _ = run(Command::new("userdel").arg(name), SHORT);
        run_ok(
            Command::new("useradd")
                .args(["--system", "--create-home", "--shell", "/bin/sh"])
                .arg("--home-dir")
                .arg(home)
                .arg(name),
            SHORT,
        )?;
        Ok(Account {
            name: name.to_string(),
            home: home.to_path_buf(),
        })
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

/// `docs/operations.md` with every run of white space made one space, so a
/// command wrapped over two lines reads as one.
fn operations_doc() -> Result<String> {
    let doc = read_file(&repo_root().join("docs/operations.md"))?;
    Ok(doc.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The command in backticks in `doc` that starts with `start`.
fn doc_command(doc: &str, start: &str) -> Result<String> {
    let from = doc
        .find(&format!("`{start}"))
        .ok_or_else(|| Error::check(format!("`{start}…` in docs/operations.md"), "not there"))?;
    let rest = &doc[from + 1..];
    let end = rest.find('`').unwrap_or(rest.len());
    Ok(rest[..end].to_string())
}

/// `text` with every whole word `from` (not part of a longer name) made `to`.
fn replace_word(text: &str, from: &str, to: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + from.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(word) || after.is_some_and(word) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

/// The documented edits: the default paths and the account moved.
struct Paths {
    bin: PathBuf,
    etc: PathBuf,
    data: PathBuf,
    built: PathBuf,
}

impl Paths {
    fn apply(&self, cmd: &str) -> String {
        let cmd = cmd
            .replace(
                "/opt/roc-tunnel-monitor/bin",
                &self.bin.display().to_string(),
            )
            .replace("/etc/roc-tunnel-monitor", &self.etc.display().to_string())
            .replace(
                "/var/lib/roc-tunnel-monitor",
                &self.data.display().to_string(),
            )
            .replace("target/release/", &format!("{}/", self.built.display()));
        replace_word(&cmd, "roctm", ACCOUNT)
    }
}

/// Runs a documented command (after the edits) with `sh -c` in the
/// repository, as the operator types it.
fn run_documented(paths: &Paths, doc: &str, start: &str) -> Result<String> {
    let cmd = paths.apply(&doc_command(doc, start)?);
    let out = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .current_dir(repo_root()),
        SHORT,
    )?;
    Ok(text(&out))
}

/// `text` with `from` replaced by `to`, which must be there.
fn edit(text: &str, from: &str, to: &str, file: &str) -> Result<String> {
    if !text.contains(from) {
        return Err(Error::check(
            format!("'{from}' in {file} (update this test with the file)"),
            text,
        ));
    }
    Ok(text.replace(from, to))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The lines of `collector.log` that report a problem.
fn error_lines(log: &str) -> Vec<&str> {
    const SIGNS: [&str; 9] = [
        "error",
        "cannot",
        "fail",
        "not a directory",
        "try --help",
        "denied",
        "No such file",
        "refused",
        "panicked",
    ];
    log.lines()
        .filter(|l| {
            let lower = l.to_lowercase();
            SIGNS.iter().any(|s| lower.contains(&s.to_lowercase()))
        })
        .collect()
}

#[test]
fn docs_followed_literally_with_cron_give_a_working_collector_and_gateway() -> Result<()> {
    if !is_root() {
        return Err(Error::NotRoot {
            why: "it adds two accounts, installs their crontabs and runs cron".into(),
        });
    }
    let cron = need_tool("/usr/sbin/cron", "cron").or_else(|_| need_tool("cron", "cron"))?;
    need_tool("crontab", "cron")?;
    need_tool("flock", "util-linux")?;
    let client = build_static_client()?;
    let collector = cargo_bin("collector", "collector")?;
    cargo_bin("webgen", "webgen")?;
    let built = collector
        .parent()
        .ok_or_else(|| Error::check("a folder", collector.display().to_string()))?
        .to_path_buf();

    let tmp = TempDir::new("first-hour")?;
    let paths = Paths {
        bin: tmp.join("opt/roc-tunnel-monitor/bin"),
        etc: tmp.join("etc/roc-tunnel-monitor"),
        data: tmp.join("var/lib/roc-tunnel-monitor"),
        built,
    };
    std::fs::create_dir_all(tmp.join("var/lib")).map_err(|e| Error::io("making", tmp.path(), e))?;
    let doc = operations_doc()?;

    // The collector host, steps 1 to 5.
    doc_command(&doc, "useradd --system --create-home roctm")?;
    let account = Account::create(ACCOUNT, &tmp.join("home-roctm"))?;
    run_documented(&paths, &doc, "install -D -m 755 target/release/collector")?;
    let made = run_documented(&paths, &doc, "scripts/make-key /etc/roc-tunnel-monitor/key")?;
    if !made.contains("made the folder") {
        return Err(Error::check("make-key to make the key's folder", made));
    }
    run_documented(&paths, &doc, "chown roctm: /etc/roc-tunnel-monitor/key")?;
    run_documented(
        &paths,
        &doc,
        "install -d -o roctm -g roctm /var/lib/roc-tunnel-monitor",
    )?;
    let key = paths.etc.join("key");

    let (udp, http) = (free_udp_port()?, free_tcp_port()?);
    let http_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, http));
    let shipped = read_file(&repo_root().join("scripts/crontab.collector"))?;
    let mut crontab = shipped.clone();
    for (from, to) in [
        (
            "ROCTM_BIN=/opt/roc-tunnel-monitor/bin\n",
            format!("ROCTM_BIN={}\n", paths.bin.display()),
        ),
        (
            "ROCTM_DATA=/var/lib/roc-tunnel-monitor\n",
            format!("ROCTM_DATA={}\n", paths.data.display()),
        ),
        (
            "ROCTM_SITE=/var/lib/roc-tunnel-monitor/site\n",
            format!("ROCTM_SITE={}\n", paths.data.join("site").display()),
        ),
        (
            "ROCTM_KEY=/etc/roc-tunnel-monitor/key\n",
            format!("ROCTM_KEY={}\n", key.display()),
        ),
        ("--udp 0.0.0.0:9555", format!("--udp 127.0.0.1:{udp}")),
        ("--http 127.0.0.1:9556", format!("--http 127.0.0.1:{http}")),
    ] {
        crontab = edit(&crontab, from, &to, "scripts/crontab.collector")?;
    }
    let crontab_file = tmp.join("crontab.collector");
    write_file(&crontab_file, &crontab)?;
    let install = doc_command(&doc, "crontab -u roctm scripts/crontab.collector")?;
    let install = paths.apply(&install).replace(
        "scripts/crontab.collector",
        &crontab_file.display().to_string(),
    );

    // A gateway by hand ("The gateways", "By hand instead"), as a second account.
    let gw_account = Account::create(GW_ACCOUNT, &tmp.join("home-novadaq"))?;
    let gw_dir = gw_account.home.join("roc-tunnel-monitor");
    std::fs::create_dir_all(&gw_dir).map_err(|e| Error::io("making", &gw_dir, e))?;
    std::fs::copy(&client, gw_dir.join("gateway-client"))
        .map_err(|e| Error::io("copying", &client, e))?;
    std::fs::copy(&key, gw_dir.join("gateway-client.key"))
        .map_err(|e| Error::io("copying", &key, e))?;
    set_mode(&gw_dir.join("gateway-client.key"), 0o600)?;
    let raw_doc = read_file(&repo_root().join("docs/operations.md"))?;
    let conf = raw_doc
        .split("```text\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .filter(|c| c.contains("key-file = gateway-client.key"))
        .ok_or_else(|| Error::check("the gateway-client.conf example in docs/operations.md", ""))?;
    let conf = edit(
        conf,
        "address = monitor.example.org",
        "address = 127.0.0.1",
        "the docs' conf",
    )?;
    let conf = edit(
        &conf,
        "port = 9555",
        &format!("port = {udp}"),
        "the docs' conf",
    )?;
    let conf = edit(
        &conf,
        "name = novadaq-far-gateway-01",
        &format!("name = {GATEWAY}"),
        "the docs' conf",
    )?;
    write_file(&gw_dir.join("gateway-client.conf"), &conf)?;
    run_ok(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{GW_ACCOUNT}:"))
            .arg(&gw_account.home),
        SHORT,
    )?;
    let gw_line = read_file(&repo_root().join("scripts/crontab.gateway"))?
        .lines()
        .find(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| Error::check("a cron line in scripts/crontab.gateway", ""))?;
    let gw_crontab = tmp.join("crontab.gateway");
    write_file(&gw_crontab, &format!("{gw_line}\n"))?;

    // A shifter's tunnel on the "gateway".
    let port = free_tcp_port()?;
    let forward = format!("{port}:{VNC_HOST}:5903");
    let _tunnel = Proc::spawn(
        "fake ssh",
        Command::new(env!("CARGO_BIN_EXE_fake-ssh"))
            .arg0("ssh")
            .args(["-N", "-L", &forward, "shifter@novadaq-walk-far-master"])
            .env("FAKE_SSH_SECONDS", "600"),
        &tmp.join("fake-ssh.log"),
    )?;
    wait_for("the fake tunnel to listen", SHORT, || {
        tcp_open(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).then_some(())
    })?;

    // Cron: ours, unless one runs already (there can be only one).
    let running = run(Command::new("pgrep").args(["-x", "cron"]), SHORT)?
        .status
        .success();
    let mut daemon = None;
    if !running {
        let mut proc = Proc::spawn("cron", Command::new(&cron).arg("-f"), &tmp.join("cron.log"))?;
        std::thread::sleep(Duration::from_millis(500));
        if proc.exited().is_some() {
            return Err(proc.fail("cron -f to keep running"));
        }
        daemon = Some(proc);
    }

    // Both crontabs in, as the docs say; from here, two cron minutes.
    run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(&install)
            .current_dir(repo_root()),
        SHORT,
    )?;
    run_ok(
        Command::new("crontab")
            .args(["-u", GW_ACCOUNT])
            .arg(&gw_crontab),
        SHORT,
    )?;
    let installed = unix_now();
    let second_minute = (installed / 60 + 2) * 60;
    // A job starts at the minute; give the collector and the client 30 s.
    let check_at = second_minute + 30;
    wait_for("the second cron minute", Duration::from_secs(200), || {
        (unix_now() >= check_at).then_some(())
    })?;

    let log_path = paths.data.join("collector.log");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let cron_log = daemon.as_ref().map(|d| d.log()).unwrap_or_default();
    let context = |what: &str| format!("{what}\ncollector.log:\n{log}\ncron's log:\n{cron_log}");
    let (code, status) = http_get(http_addr, "/status.json").map_err(|e| {
        Error::check(
            "the collector to answer status.json",
            context(&e.to_string()),
        )
    })?;
    let up = format!("{{\"name\":\"{GATEWAY}\"");
    if code != 200 || !status.contains(&up) || status.matches("{\"name\":").count() != 1 {
        return Err(Error::check(
            format!("status.json with {GATEWAY} and no other gateway"),
            context(&status),
        ));
    }
    let entry = &status[status.find(&up).unwrap_or(0)..];
    if !entry.contains("\"state\":\"up\"") {
        return Err(Error::check(
            format!("{GATEWAY} up in status.json"),
            context(&status),
        ));
    }
    let (code, page) = http_get(http_addr, "/index.html")?;
    let section = page
        .find(&format!("data-gateway=\"{GATEWAY}\""))
        .map(|i| &page[i..])
        .unwrap_or_default();
    if code != 200
        || !section.starts_with(&format!("data-gateway=\"{GATEWAY}\" data-state=\"up\""))
        || !section.contains(&format!("data-listen-port=\"{port}\""))
    {
        return Err(Error::check(
            format!("the page to show {GATEWAY} up with the tunnel on port {port}"),
            context(&page),
        ));
    }
    for page in ["index.html", "history.html"] {
        if !paths.data.join("site").join(page).is_file() {
            return Err(Error::check(
                format!("webgen's {page} in site/"),
                context(""),
            ));
        }
    }
    let errors = error_lines(&log);
    if !errors.is_empty() {
        return Err(Error::check(
            "no error line in collector.log",
            context(&errors.join("\n")),
        ));
    }

    // The documented stop. Cron must not start another first.
    let _ = run(Command::new("crontab").args(["-r", "-u", ACCOUNT]), SHORT);
    drop(daemon);
    let raw_stop = raw_doc
        .split("## Stopping the collector")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .ok_or_else(|| Error::check("the stop command in docs/operations.md", ""))?;
    run_ok(
        Command::new("setpriv")
            .args([
                "--reuid",
                ACCOUNT,
                "--regid",
                ACCOUNT,
                "--init-groups",
                "sh",
                "-c",
            ])
            .arg(paths.apply(raw_stop)),
        SHORT,
    )?;
    let lock = paths.data.join("collector.lock");
    wait_for("the collector to stop", SHORT, || {
        run(
            Command::new("flock").arg("-n").arg(&lock).arg("true"),
            SHORT,
        )
        .ok()
        .filter(|o| o.status.success())
    })
    .map_err(|_| Error::check("the documented stop to stop the collector", context("")))?;
    drop(account);
    drop(gw_account);
    Ok(())
}
