//! The client's watch mode and its several collectors, with the real
//! binaries on 127.0.0.1: fake ssh processes (this crate's `fake-ssh`,
//! `ssh` in `ps`) hold real forwards, real collectors receive, and what
//! they received is read back from their `status.json`.
//!
//! 1. `--watch` with `--every 600`, so that only a change can bring a
//!    report within the test's bounds: a tunnel that appears and one that
//!    goes reach the collector, each report declaring its period (601 s in
//!    the events log); a second start for the same gateway exits 0 at
//!    once, silently; SIGTERM stops it with 0 and frees its lock.
//! 2. Two collectors, one not running: the running one gets each change
//!    meanwhile; the other is named once on stderr, gets the current state
//!    as soon as it runs, and that is said once.
//! 3. One-shot delivery to two collectors (`-a` twice, then the config's
//!    `address` list): exit 1 naming the one that did not acknowledge,
//!    exit 0 when both did.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{
    Error, Proc, Result, TempDir, cargo_bin, free_tcp_port, free_udp_port, http_get, make_key,
    need_tool, run, tcp_open, text, wait_for, write_file,
};

/// The bound of every wait: with `--every 600`, a report seen within it
/// came from a change.
const LIMIT: Duration = Duration::from_secs(30);

fn fake_ssh(tmp: &Path, port: u16) -> Result<Proc> {
    e2e::fake_ssh(
        Path::new(env!("CARGO_BIN_EXE_fake-ssh")),
        tmp,
        port,
        "novadaq-e2e-vnc-01:5901",
        true,
    )
}

/// A collector on UDP port `udp` (which may have been chosen before it
/// runs) and a free HTTP port; its files in `dir`.
fn collector(bin: &Path, dir: &Path, key: &Path, udp: u16) -> Result<(Proc, SocketAddr)> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("making", dir, e))?;
    let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()?));
    let mut proc = Proc::spawn(
        "collector",
        Command::new(bin)
            .arg("--data")
            .arg(dir.join("data"))
            .arg("--key-file")
            .arg(key)
            .args(["--udp", &format!("127.0.0.1:{udp}")])
            .args(["--http", &http.to_string()]),
        &dir.join("collector.log"),
    )?;
    wait_for("the collector's HTTP port", LIMIT, || {
        (tcp_open(http) || proc.exited().is_some()).then_some(())
    })?;
    if proc.exited().is_some() {
        return Err(proc.fail("the collector exited at start"));
    }
    Ok((proc, http))
}

/// The listen ports of `gateway`'s tunnels in the collector's status.json
/// (`None` while it has not reported).
fn ports(http: SocketAddr, gateway: &str) -> Option<Vec<u16>> {
    let (code, body) = http_get(http, "/status.json").ok()?;
    if code != 200 {
        return None;
    }
    let ours = body.split(&format!("{{\"name\":\"{gateway}\"")).nth(1)?;
    let ours = ours
        .split("{\"name\":")
        .next()?
        .split("\"expected\"")
        .next()?;
    let mut ports: Vec<u16> = ours
        .split("\"listen_port\":")
        .skip(1)
        .filter_map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    ports.sort_unstable();
    Some(ports)
}

/// Waits until `gateway`'s tunnels at the collector include each port of
/// `present` and none of `absent` (other tests' tunnels may be there too:
/// the client reports the whole machine).
fn wait_ports(
    http: SocketAddr,
    gateway: &str,
    present: &[u16],
    absent: &[u16],
    log: &dyn Fn() -> String,
) -> Result<()> {
    let what = format!("{gateway}'s tunnels with {present:?} and without {absent:?}");
    let mut last = None;
    let found = wait_for(&what, LIMIT, || {
        last = ports(http, gateway);
        let ports = last.as_deref()?;
        let ok =
            present.iter().all(|p| ports.contains(p)) && !absent.iter().any(|p| ports.contains(p));
        ok.then_some(())
    });
    found.map_err(|_| {
        Error::check(
            format!("{what} at {http}"),
            format!("last seen: {last:?}\nwatcher:\n{}", log()),
        )
    })
}

/// `gateway-client --watch` with a short interval and a long `--every`.
fn watch_cmd(client: &Path, key: &Path, gateway: &str, udp: &[u16]) -> Command {
    let mut cmd = Command::new(client);
    cmd.args(["--config", "/dev/null", "--watch", "--interval", "0.3"])
        .args(["--every", "600", "-q", "--name", gateway])
        .arg("--key-file")
        .arg(key);
    for port in udp {
        cmd.args(["-a", &format!("127.0.0.1:{port}")]);
    }
    cmd
}

/// The text of every events file in a collector's data folder.
fn read_events(data: &Path) -> Result<String> {
    let mut all = String::new();
    let dir = std::fs::read_dir(data).map_err(|e| Error::io("listing", data, e))?;
    for entry in dir.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("events-") && name.ends_with(".csv") {
            all.push_str(&e2e::read_file(&path)?);
        }
    }
    Ok(all)
}

fn lock_file(key: &Path, gateway: &str) -> PathBuf {
    key.with_file_name(format!("gateway-client-watch.{gateway}.lock"))
}

#[test]
fn watch_reports_each_change_at_once_and_runs_once_per_gateway() -> Result<()> {
    const GW: &str = "e2e-watch-gw";
    let collector_bin = cargo_bin("collector", "collector")?;
    let client = cargo_bin("gateway-client", "gateway-client")?;
    let flock = need_tool("flock", "util-linux")?;
    let tmp = TempDir::new("watch")?;
    let key = make_key(&tmp.join("key"))?;
    let udp = free_udp_port()?;
    let (_c, http) = collector(&collector_bin, &tmp.join("c"), &key, udp)?;
    let (pa, pb) = (free_tcp_port()?, free_tcp_port()?);
    let a = fake_ssh(tmp.path(), pa)?;

    let watch_log = tmp.join("watch.log");
    let mut watcher = Proc::spawn(
        "watcher",
        &mut watch_cmd(&client, &key, GW, &[udp]),
        &watch_log,
    )?;
    let log = || std::fs::read_to_string(&watch_log).unwrap_or_default();
    wait_ports(http, GW, &[pa], &[pb], &log)?;

    let second = run(&mut watch_cmd(&client, &key, GW, &[udp]), LIMIT)?;
    if !second.status.success() || !text(&second).is_empty() {
        return Err(Error::check(
            "a second watcher exiting 0 silently",
            text(&second),
        ));
    }

    let b = fake_ssh(tmp.path(), pb)?;
    wait_ports(http, GW, &[pa, pb], &[], &log)?;
    drop(a);
    wait_ports(http, GW, &[pb], &[pa], &log)?;
    if watcher.exited().is_some() {
        return Err(watcher.fail("the watcher running on"));
    }

    // Each report declared its period, --every plus 1 s: the events log's
    // `period` column (the last but one).
    let events = read_events(&tmp.join("c/data"))?;
    let ours: Vec<&str> = events
        .lines()
        .filter(|l| l.contains(&format!(",{GW},report,")))
        .collect();
    if ours.len() < 3 || !ours.iter().all(|l| l.ends_with(",601,")) {
        return Err(Error::check(
            "reports with period 601 in the events log",
            events,
        ));
    }

    let lock = lock_file(&key, GW);
    let held = run(
        Command::new(&flock).args(["-n"]).arg(&lock).arg("true"),
        LIMIT,
    )?;
    if held.status.success() {
        return Err(Error::check(
            "the lock held by the watcher",
            lock.display().to_string(),
        ));
    }
    let pid = watcher.pid().to_string();
    e2e::run_ok(Command::new("kill").args(["-TERM", &pid]), LIMIT)?;
    let status = watcher.wait_exit(LIMIT)?;
    if !status.success() || !log().is_empty() {
        return Err(Error::check(
            "exit 0, silently, on SIGTERM",
            format!("{status}\n{}", log()),
        ));
    }
    let free = run(
        Command::new(&flock).args(["-n"]).arg(&lock).arg("true"),
        LIMIT,
    )?;
    if !free.status.success() {
        return Err(Error::check("the lock free after the stop", text(&free)));
    }
    drop(b);
    Ok(())
}

#[test]
fn a_collector_that_does_not_answer_is_named_once_and_gets_the_current_state_when_it_runs()
-> Result<()> {
    const GW: &str = "e2e-watch-outage-gw";
    let collector_bin = cargo_bin("collector", "collector")?;
    let client = cargo_bin("gateway-client", "gateway-client")?;
    let tmp = TempDir::new("watch-outage")?;
    let key = make_key(&tmp.join("key"))?;
    let (up, later) = (free_udp_port()?, free_udp_port()?);
    let (_c1, http1) = collector(&collector_bin, &tmp.join("c1"), &key, up)?;
    let (pa, pb) = (free_tcp_port()?, free_tcp_port()?);
    let a = fake_ssh(tmp.path(), pa)?;

    let watch_log = tmp.join("watch.log");
    let cmd = &mut watch_cmd(&client, &key, GW, &[up, later]);
    let _watcher = Proc::spawn("watcher", cmd, &watch_log)?;
    let log = || std::fs::read_to_string(&watch_log).unwrap_or_default();
    wait_ports(http1, GW, &[pa], &[pb], &log)?;
    let down = format!("still watching: collector 127.0.0.1:{later} gets the current state");
    wait_for("the watcher to name the silent collector", LIMIT, || {
        log().contains(&down).then_some(())
    })
    .map_err(|_| Error::check(format!("'{down}' on stderr"), log()))?;

    // Changes while one collector is away reach the other at once.
    let b = fake_ssh(tmp.path(), pb)?;
    drop(a);
    wait_ports(http1, GW, &[pb], &[pa], &log)?;

    let (_c2, http2) = collector(&collector_bin, &tmp.join("c2"), &key, later)?;
    wait_ports(http2, GW, &[pb], &[pa], &log)?;
    let back = format!("collector 127.0.0.1:{later} answers again");
    wait_for("the watcher to say the collector answers", LIMIT, || {
        log().contains(&back).then_some(())
    })
    .map_err(|_| Error::check(format!("'{back}' on stderr"), log()))?;
    let said = log();
    if said.matches(&down).count() != 1 || said.matches(&back).count() != 1 {
        return Err(Error::check("each said once per outage", said));
    }
    drop(b);
    Ok(())
}

#[test]
fn one_report_to_two_collectors_names_the_one_that_did_not_acknowledge() -> Result<()> {
    const GW: &str = "e2e-two-collectors-gw";
    let collector_bin = cargo_bin("collector", "collector")?;
    let client = cargo_bin("gateway-client", "gateway-client")?;
    let tmp = TempDir::new("two-collectors")?;
    let key = make_key(&tmp.join("key"))?;
    let (u1, u2) = (free_udp_port()?, free_udp_port()?);
    let (_c1, http1) = collector(&collector_bin, &tmp.join("c1"), &key, u1)?;
    let report = |args: &[String]| {
        let mut cmd = Command::new(&client);
        cmd.args(["--name", GW, "--key-file"]).arg(&key).args(args);
        run(&mut cmd, LIMIT)
    };

    // -a twice, the second collector not running.
    let args = [
        "--config".to_string(),
        "/dev/null".into(),
        "-a".into(),
        format!("127.0.0.1:{u1}"),
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        u2.to_string(),
    ];
    let out = report(&args)?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let named = format!("1 of 2 collectors did not acknowledge: 127.0.0.1:{u2}");
    if out.status.code() != Some(1)
        || !stderr.contains(&named)
        || stderr.contains(&format!("127.0.0.1:{u1}"))
        || !stdout.contains(&format!("report sent to 127.0.0.1:{u1}"))
    {
        return Err(Error::check(format!("exit 1 and '{named}'"), text(&out)));
    }
    wait_ports(http1, GW, &[], &[], &|| text(&out))?;

    // The config's address list, both running: exit 0, both have it.
    let (_c2, http2) = collector(&collector_bin, &tmp.join("c2"), &key, u2)?;
    let config = tmp.join("gateway-client.conf");
    write_file(
        &config,
        &format!("# two collectors, one key\naddress = 127.0.0.1:{u1}, 127.0.0.1:{u2}\n"),
    )?;
    let out = report(&[
        "--config".to_string(),
        config.display().to_string(),
        "-m".into(),
        "both".into(),
    ])?;
    if !out.status.success() || text(&out).matches("message sent to").count() != 2 {
        return Err(Error::check("exit 0 and two acknowledgements", text(&out)));
    }
    let out = report(&[
        "--config".to_string(),
        config.display().to_string(),
        "-q".into(),
    ])?;
    if !out.status.success() || !text(&out).is_empty() {
        return Err(Error::check("exit 0, silently", text(&out)));
    }
    wait_ports(http2, GW, &[], &[], &|| text(&out))?;
    Ok(())
}
