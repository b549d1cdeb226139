//! `--on-collect` and `--notify` on the real collector, and its command
//! line: help, bad options and bad key files give one line and exit 2, and
//! so do a data folder or key file the collector's account cannot use, with
//! the cure in the line (the account is played by `nobody` through
//! `setpriv` when the tests run as root, as they do in CI).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use gateway_client::wire::{self, MsgKind};

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn on_collect_runs_after_a_burst_but_not_for_every_report() {
    let dir = TempDir::new("oncollect");
    let out = dir.path().join("runs.txt");
    // Each run records how many event rows were written when it ran (not
    // counting headers: a run across UTC midnight sees two files).
    let cmd = format!(
        "cat {}/data/events-*.csv | grep -vc '^received,' >> {}",
        dir.path().display(),
        out.display()
    );
    let c = Collector::start(dir.path(), &["--on-collect", &cmd]);
    let burst = 12;
    for i in 0..burst {
        let b = body(MsgKind::Report, vec![tunnel(i)]);
        assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    }
    // One row per report: the last run must see them all.
    let want = burst.to_string();
    let done = wait_for(30, || {
        let l = lines(&out);
        (l.last().map(|s| s.trim()) == Some(want.as_str())).then_some(l)
    });
    let runs = done.unwrap_or_else(|| panic!("last run never saw every report: {:?}", lines(&out)));
    assert!(
        runs.len() < burst as usize,
        "{} runs for {burst} reports",
        runs.len()
    );
    assert!(c.metric("roctm_collector_on_collect_runs_total{result=\"ok\"} ") >= 1);
}

#[test]
fn a_signed_shutdown_waits_for_the_run_still_owed() {
    let dir = TempDir::new("oncollect-shutdown");
    let out = dir.path().join("runs.txt");
    // Each run records how many report rows were written when it ran.
    let cmd = format!(
        "cat {}/data/events-*.csv | grep -c '^[0-9]*,{GW},report,' >> {}",
        dir.path().display(),
        out.display()
    );
    let mut c = Collector::start(dir.path(), &["--on-collect", &cmd]);
    // The first report starts a run; the rest come after it, during the
    // pause before the next may start, so they are owed a run when the
    // shutdown comes.
    let burst = 6;
    let report = |i| wire::encode(&key(), &body(MsgKind::Report, vec![tunnel(i)]));
    assert!(c.send(&report(0), 5).is_some());
    assert!(
        wait_for(20, || (!lines(&out).is_empty()).then_some(())).is_some(),
        "the first run never came"
    );
    for i in 1..burst {
        assert!(c.send(&report(i), 5).is_some());
    }
    let stop = body(MsgKind::Shutdown, vec![]);
    assert!(c.send(&wire::encode(&key(), &stop), 5).is_some());
    let status = c.wait_exit(30).expect("exits after a signed shutdown");
    assert!(status.success(), "{status}");
    let runs = lines(&out);
    assert_eq!(
        runs.last().map(|s| s.trim()),
        Some(burst.to_string().as_str()),
        "the last run must see every report: {runs:?}"
    );
}

#[test]
fn a_failing_on_collect_is_counted_not_fatal() {
    let dir = TempDir::new("oncollect-fail");
    let c = Collector::start(dir.path(), &["--on-collect", "exit 7"]);
    let b = body(MsgKind::Report, vec![]);
    assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    let failed = wait_for(20, || {
        (c.metric("roctm_collector_on_collect_runs_total{result=\"failed\"} ") == 1).then_some(())
    });
    assert!(failed.is_some());
    assert!(c.stderr_text().contains("--on-collect failed"));
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn notify_gets_gateway_and_tunnel_events() {
    let dir = TempDir::new("notify");
    let out = dir.path().join("alerts.txt");
    let cmd = format!(
        "echo \"$ROCTM_EVENT $ROCTM_GATEWAY $ROCTM_TUNNEL_LISTEN_PORT\" >> {}",
        out.display()
    );
    let c = Collector::start(
        dir.path(),
        &[
            "--notify", &cmd, "--late", "2", "--down", "4", "--hold", "0",
        ],
    );
    let send = |tunnels| {
        let b = body(MsgKind::Report, tunnels);
        assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    };
    send(vec![tunnel(1)]);
    send(vec![tunnel(1), tunnel(2)]);
    send(vec![tunnel(2)]);
    let want = [
        format!("gateway_up {GW} "),
        format!("tunnel_up {GW} 5902"),
        format!("tunnel_down {GW} 5901"),
        format!("gateway_late {GW} "),
        format!("gateway_down {GW} "),
    ];
    let got = wait_for(30, || {
        let l = lines(&out);
        (l.len() >= want.len()).then_some(l)
    });
    assert_eq!(got.unwrap_or_else(|| lines(&out)), want);
    // Back from down: one gateway_up, tunnel changes held back.
    send(vec![tunnel(3)]);
    let got = wait_for(20, || {
        let l = lines(&out);
        (l.len() > want.len()).then_some(l)
    });
    assert_eq!(
        got.unwrap_or_default().get(5),
        Some(&format!("gateway_up {GW} "))
    );
}

#[test]
fn a_hanging_notify_is_killed_and_ingest_goes_on() {
    let dir = TempDir::new("notify-hang");
    let c = Collector::start(dir.path(), &["--notify", "sleep 3"]);
    for i in 0..5 {
        let b = body(MsgKind::Report, vec![tunnel(i)]);
        assert!(c.send(&wire::encode(&key(), &b), 5).is_some(), "report {i}");
    }
    assert_eq!(c.outcome("accepted"), 5);
}

#[test]
fn help_and_version_exit_zero() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains(
        "collector --data DIR --udp ADDR:PORT --http ADDR:PORT --key-file FILE [--site DIR]"
    ));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .arg("-V")
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("collector ")
    );
}

fn run_with(dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = command(dir, free_udp(), free_tcp(), extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_options_and_key_files_give_one_line_and_exit_2() {
    let dir = TempDir::new("cli");
    let key_file = write_key(dir.path());
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = run_with(dir.path(), &[]);
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("collector: key file") && err.contains("chmod 600"),
        "{err}"
    );

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    for (args, want) in [
        (&["--late", "soon"][..], "--late 'soon'"),
        (&["--frobnicate"][..], "--frobnicate"),
        (
            &["--site", "/nonexistent/site"][..],
            "--site /nonexistent/site",
        ),
    ] {
        let (code, err) = run_with(dir.path(), args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("collector: ") && err.contains(want),
            "{err}"
        );
    }
    // A port already taken.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = command(dir.path(), taken.local_addr().unwrap(), free_tcp(), &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot bind the UDP address"));
}

/// The command, run as `nobody` (uid 65534) when we are root, so that file
/// permissions apply; as ourselves otherwise.
fn as_unprivileged(mut cmd: std::process::Command) -> std::process::Command {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        return cmd;
    }
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("setpriv is not installed: apt-get install -y util-linux");
    let mut wrapped = std::process::Command::new(setpriv);
    wrapped
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(std::process::Stdio::null());
    cmd = wrapped;
    cmd
}

fn exit_and_line(mut cmd: std::process::Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_data_folder_or_key_it_cannot_use_exits_2_with_the_cure() {
    use std::os::unix::fs::chown;
    let dir = TempDir::new("perm");
    let key_file = write_key(dir.path());
    // Everyone may walk into the test's folder; only the owner writes.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // A typo in --data: the parent does not exist, nothing is created.
    let typo = dir.path().join("no-such-parent/data");
    let (code, err) = exit_and_line(command_with_data(
        dir.path(),
        &typo,
        free_udp(),
        free_tcp(),
        &[],
    ));
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&typo.display().to_string()) && err.contains("install -d"),
        "{err}"
    );
    assert!(!dir.path().join("no-such-parent").exists());

    // A data folder of another account (root's, mode 755): exit 2, chown.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o555)).unwrap();
    let readable_key = dir.path().join("key-nobody");
    std::fs::copy(&key_file, &readable_key).unwrap();
    std::fs::set_permissions(&readable_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _ = chown(&readable_key, Some(65534), Some(65534));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_collector"));
    cmd.arg("--data")
        .arg(&theirs)
        .arg("--key-file")
        .arg(&readable_key)
        .args([
            "--udp",
            &free_udp().to_string(),
            "--http",
            &free_tcp().to_string(),
        ]);
    let (code, err) = exit_and_line(as_unprivileged(cmd));
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&theirs.display().to_string()) && err.contains("chown -R ACCOUNT:"),
        "{err}"
    );

    // A key file the account cannot read (root's, mode 600): exit 2, chown.
    let ours = dir.path().join("ours");
    std::fs::create_dir(&ours).unwrap();
    let _ = chown(&ours, Some(65534), Some(65534));
    std::fs::set_permissions(&ours, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let (code, err) = exit_and_line(as_unprivileged(command_with_data(
        dir.path(),
        &ours,
        free_udp(),
        free_tcp(),
        &[],
    )));
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("key file") && err.contains("cannot read it") && err.contains("chown"),
        "{err}"
    );
}

/// Issue: the collector logged nothing at start and died silently on
/// SIGTERM (exit 143). It says what runs where, and SIGTERM or SIGINT stop
/// it cleanly: logged, exit 0, the lock released, what was acked written.
#[test]
fn sigterm_and_sigint_stop_it_cleanly_after_a_start_line() {
    for signal in ["TERM", "INT"] {
        let dir = TempDir::new(&format!("signal-{signal}"));
        let mut c = Collector::start(dir.path(), &["--late", "2m"]);
        let start = wait_for(10, || {
            let text = c.stderr_text();
            text.contains(" started: ").then_some(text)
        })
        .expect("a start line");
        assert!(
            start.contains("late after 120s, down after 600s"),
            "{start}"
        );
        assert!(start.contains(&format!("UDP {}", c.udp)), "{start}");
        let b = body(MsgKind::Report, vec![tunnel(1)]);
        assert!(c.send(&wire::encode(&key(), &b), 5).is_some(), "acked");
        let pid = c.child.as_ref().unwrap().id();
        let kill = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = c.wait_exit(20).expect("exits after the signal");
        assert_eq!(status.code(), Some(0), "{}", c.stderr_text());
        assert!(
            c.stderr_text().contains(&format!("stopped by SIG{signal}")),
            "{}",
            c.stderr_text()
        );
        assert_eq!(c.events().len(), 1, "the acked report is in the logs");
        // The lock was released: a new collector starts on the same data.
        let again = Collector::start(dir.path(), &[]);
        assert!(
            wait_for(10, || again
                .stderr_text()
                .contains(" started: ")
                .then_some(()))
            .is_some()
        );
    }
}

/// `collector --stop --data DIR` stops the collector running there cleanly
/// (no gateway's identity needed), and says so when nothing runs.
#[test]
fn stop_stops_the_collector_on_its_data_folder() {
    let dir = TempDir::new("stop");
    let mut c = Collector::start(dir.path(), &[]);
    assert!(wait_for(10, || c.stderr_text().contains(" started: ").then_some(())).is_some());
    let stop = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_collector"))
            .arg("--stop")
            .arg("--data")
            .arg(dir.path().join("data"))
            .output()
            .unwrap()
    };
    let out = stop();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let pid = c.child.as_ref().unwrap().id();
    assert!(
        said.contains(&format!("stopped the collector (pid {pid})")),
        "{said}"
    );
    let status = c.wait_exit(20).expect("gone");
    assert_eq!(status.code(), Some(0));
    assert!(c.stderr_text().contains("stopped by SIGTERM"));
    let out = stop();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to stop"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .arg("--stop")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Issue: `gateway-client -s` run on the collector's host made a gateway of
/// that host, shown down for a month. A shutdown request is obeyed and
/// logged, but it is no sign of life: no gateway appears, after a restart
/// either.
#[test]
fn a_shutdown_from_an_unknown_name_makes_no_gateway() {
    let dir = TempDir::new("phantom");
    let mut c = Collector::start(dir.path(), &[]);
    let b = wire::Body {
        gateway: "monitor-host".into(),
        ..body(MsgKind::Shutdown, vec![])
    };
    assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    assert!(c.wait_exit(20).expect("stops").success());
    assert_eq!(c.events().len(), 1, "the shutdown is logged");
    let again = Collector::start(dir.path(), &[]);
    let status = again.get("/status.json").body_text();
    assert!(!status.contains("monitor-host"), "{status}");
}

/// Notify routes from the config file: each alert goes to every route whose
/// filters (events, roc, gateway) all match; failures are counted per route.
#[test]
fn alerts_go_to_the_routes_whose_filters_match() {
    let dir = TempDir::new("routes");
    let out = |n: u32| dir.path().join(format!("route-{n}.txt"));
    let write = |n: u32| {
        format!(
            "echo \"$ROCTM_EVENT $ROCTM_LISTEN\" >> {}",
            out(n).display()
        )
    };
    let config = dir.path().join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[notify]]
command = '{}'
events = ["gateway_up"]

[[notify]]
command = '{}'
roc = "Caltech"

[[notify]]
command = '{}'
gateway = "another-gateway"

[[notify]]
command = "exit 3"

[[tunnel]]
gateway = "{GW}"
listen = 5901
target = "novadaq-far-master-02:5951"
roc = "Caltech"

[[tunnel]]
gateway = "{GW}"
listen = 5909
target = "novadaq-far-master-02:5951"
roc = "Fermilab"
"#,
            write(1),
            write(2),
            write(3)
        ),
    )
    .unwrap();
    let c = Collector::start(
        dir.path(),
        &["--config", config.to_str().unwrap(), "--hold", "0"],
    );
    let send = |tunnels| {
        let b = body(MsgKind::Report, tunnels);
        assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    };
    send(vec![tunnel(1)]);
    send(vec![tunnel(2)]);
    let want2 = [
        "gateway_up ",
        "tunnel_missing 5909",
        "tunnel_down ",
        "tunnel_missing 5901",
    ];
    let got = wait_for(20, || {
        let l = lines(&out(2));
        (l.len() >= 3).then_some(l)
    })
    .unwrap_or_else(|| lines(&out(2)));
    // Route 2 (roc Caltech): the gateway's alert (it carries Caltech's
    // tunnels) and Caltech's tunnel, not Fermilab's.
    assert_eq!(got, [want2[0], want2[2], want2[3]]);
    let failed = "roctm_collector_notify_route_failures_total{route=\"4\"}";
    // Route 4 (no filters, always failing): all five alerts (with 5902's
    // tunnel_up, which concerns no ROC), counted.
    assert!(
        wait_for(20, || (c.metric(failed) == 5).then_some(())).is_some(),
        "{}",
        c.metric(failed)
    );
    assert_eq!(lines(&out(1)), ["gateway_up "]);
    assert!(!out(3).exists(), "route 3 is for another gateway");
}

/// Damping at the collector: a tunnel that comes and goes more than `flap`
/// times within an hour raises one tunnel_flapping alert, then nothing.
/// (Holding and cancelling with a controlled clock: `logs::damping`'s tests.)
#[test]
fn a_flapping_tunnel_alerts_once() {
    let dir = TempDir::new("flapping");
    let out = dir.path().join("alerts.txt");
    let cmd = format!(
        "echo \"$ROCTM_EVENT $ROCTM_TUNNEL_LISTEN_PORT\" >> {}",
        out.display()
    );
    let c = Collector::start(
        dir.path(),
        &["--notify", &cmd, "--hold", "0", "--flap", "2"],
    );
    for i in 0..7 {
        let tunnels = if i % 2 == 0 { vec![tunnel(1)] } else { vec![] };
        let b = body(MsgKind::Report, tunnels);
        assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    }
    let want = [
        "gateway_up ",
        "tunnel_down 5901",
        "tunnel_up 5901",
        "tunnel_flapping 5901",
    ];
    let got = wait_for(20, || {
        let l = lines(&out);
        (l.len() >= want.len()).then_some(l)
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(got.map(|_| lines(&out)).unwrap_or_default(), want);
}

/// A silence from the config file: while it is active the alerts in its
/// scope are not sent and status.json and /metrics show it; when it ends
/// and the problem is still there, the alert is sent then; a problem that
/// came and went within it is never sent.
#[test]
fn a_silence_holds_alerts_back_until_it_ends() {
    let dir = TempDir::new("silence");
    let out = dir.path().join("alerts.txt");
    let rfc = |t: u64| jiff::Timestamp::from_second(t as i64).unwrap().to_string();
    let start = now();
    let config = dir.path().join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
notify = 'echo "$ROCTM_EVENT $ROCTM_LISTEN" >> {}'

[[silence]]
gateway = "{GW}"
from = "{}"
until = "{}"
reason = "kernel update"

[[tunnel]]
gateway = "{GW}"
listen = 5901
target = "novadaq-far-master-02:5951"
roc = "Caltech"

[[tunnel]]
gateway = "{GW}"
listen = 5902
target = "novadaq-far-master-02:5951"
roc = "Caltech"
"#,
            out.display(),
            rfc(start - 60),
            rfc(start + 6)
        ),
    )
    .unwrap();
    let c = Collector::start(
        dir.path(),
        &["--config", config.to_str().unwrap(), "--hold", "0"],
    );
    let send = |tunnels| {
        let b = body(MsgKind::Report, tunnels);
        assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    };
    // Both missing, then 5902 back within the silence; 5901 stays missing.
    send(vec![]);
    send(vec![tunnel(2)]);
    let status = c.get("/status.json").body_text();
    assert!(
        status.contains("\"silences\":[{\"gateway\":\"novadaq-far-gateway-01\",\"roc\":null"),
        "{status}"
    );
    assert!(status.contains("\"reason\":\"kernel update\""), "{status}");
    let series = format!("roctm_silenced{{gateway=\"{GW}\",roc=\"\"}}");
    assert_eq!(c.metric(&series), start + 6);
    assert!(lines(&out).is_empty(), "{:?}", lines(&out));
    // The silence ends: 5901 is still missing, so its alert goes out now.
    let got = wait_for(20, || {
        let l = lines(&out);
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(got.unwrap_or_default(), ["tunnel_missing 5901"]);
    assert!(now() >= start + 6);
    let status = c.get("/status.json").body_text();
    assert!(status.contains("\"silences\":[]"), "{status}");
}

/// An expected tunnel that comes and goes more than `flap` times within an
/// hour raises one `tunnel_flapping` alert, and status.json marks it
/// flapping (the status page marks it by the same rule, in webgen).
#[test]
fn a_flapping_expected_tunnel_is_marked_in_status_json() {
    let dir = TempDir::new("flapping-expected");
    let out = dir.path().join("alerts.txt");
    let config = dir.path().join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
notify = 'echo "$ROCTM_EVENT $ROCTM_LISTEN" >> {}'
hold = "0s"
flap = 2

[[tunnel]]
gateway = "{GW}"
listen = 5901
target = "novadaq-far-master-02:5951"
roc = "Caltech"
"#,
            out.display(),
        ),
    )
    .unwrap();
    let c = Collector::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let send = |tunnels| {
        let b = body(MsgKind::Report, tunnels);
        assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    };
    let flapping = || {
        let s = c.get("/status.json").body_text();
        s.split("\"expected\":[")
            .nth(1)
            .and_then(|e| e.split("\"flapping\":").nth(1))
            .map(|v| v.starts_with("true"))
            .unwrap_or_else(|| panic!("no expected flapping field: {s}"))
    };
    send(vec![tunnel(1)]);
    assert!(!flapping());
    // Missing, up, missing: the third change is more than flap = 2.
    send(vec![]);
    send(vec![tunnel(1)]);
    assert!(!flapping());
    send(vec![]);
    assert!(flapping());
    // The expected tunnel's alerts (ROCTM_LISTEN set); the tunnel's own
    // (tunnel_down, tunnel_up) flap too, as a slot of their own.
    let expected = || {
        lines(&out)
            .into_iter()
            .filter(|l| l.ends_with(" 5901"))
            .collect::<Vec<_>>()
    };
    let got = wait_for(20, || {
        let l = expected();
        (l.len() >= 3).then_some(l)
    });
    assert_eq!(
        got.unwrap_or_default(),
        [
            "tunnel_missing 5901",
            "tunnel_restored 5901",
            "tunnel_flapping 5901"
        ]
    );
}
