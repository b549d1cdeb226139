//! The operator's scripts as an operator meets them in the first hour:
//! `scripts/make-key` into a folder that does not exist yet (as
//! `/etc/roc-tunnel-monitor` on a fresh host), `scripts/demo --help`,
//! Ctrl-C on a running `scripts/demo`, which must leave no process of its
//! process group behind (no collector, no fake tunnel, no `sleep`), and one
//! set of paths and addresses in the README, the docs, the crontab, the
//! systemd units and `collector --help`.
//!
//! The demo is started in a process group of its own, as a shell starts a
//! foreground job, and the test sends SIGINT to the whole group, as the
//! terminal does on Ctrl-C. Every wait is bounded; a demo that does not
//! come up or does not stop fails the test with its output.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{Error, Proc, Result, TempDir, read_file, repo_root, run, run_ok, text, wait_for};

const SHORT: Duration = Duration::from_secs(30);

#[test]
fn make_key_makes_the_folder_of_the_key() -> Result<()> {
    let tmp = TempDir::new("make-key")?;
    let key = tmp.join("etc/roc-tunnel-monitor/key");
    let out = run_ok(
        Command::new(repo_root().join("scripts/make-key")).arg(&key),
        SHORT,
    )?;
    let printed = text(&out);
    let written = read_file(&key)?;
    let hex = written.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::check("64 hex digits in the key", written));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .map_err(|e| Error::io("stat", p, e))
    };
    if mode(&key)? != 0o600 || mode(&tmp.join("etc/roc-tunnel-monitor"))? != 0o755 {
        return Err(Error::check(
            "the key mode 600 in a folder of mode 755",
            format!(
                "{:o} {:o}",
                mode(&key)?,
                mode(&tmp.join("etc/roc-tunnel-monitor"))?
            ),
        ));
    }
    if !printed.contains("made the folder") {
        return Err(Error::check("make-key to say it made the folder", printed));
    }
    // Again: refused, the key kept, one line, exit 1.
    let out = run(
        Command::new(repo_root().join("scripts/make-key")).arg(&key),
        SHORT,
    )?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.code() != Some(1) || err.lines().count() != 1 || read_file(&key)? != written {
        return Err(Error::check(
            "a second make-key on the same file to exit 1 with one line and keep the key",
            format!("{}\n{}", out.status, text(&out)),
        ));
    }
    Ok(())
}

#[test]
fn demo_help_is_plain_text() -> Result<()> {
    let out = run_ok(
        Command::new(repo_root().join("scripts/demo")).arg("--help"),
        SHORT,
    )?;
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    if help.lines().any(|l| l.starts_with('#')) || !help.contains("scripts/demo --check") {
        return Err(Error::check("--help without comment marks", help));
    }
    Ok(())
}

#[test]
fn paths_and_addresses_agree_everywhere() -> Result<()> {
    let root = repo_root();
    let help = run_ok(
        Command::new(e2e::cargo_bin("collector", "collector")?).arg("--help"),
        SHORT,
    )?;
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let mut texts = vec![("collector --help".to_string(), help.clone())];
    for name in [
        "README.md",
        "docs/operations.md",
        "docs/security.md",
        "scripts/crontab.collector",
        "scripts/systemd/roc-tunnel-collector.service",
        "scripts/systemd/roc-tunnel-webgen.service",
    ] {
        texts.push((name.to_string(), read_file(&root.join(name))?));
    }
    for (name, body) in &texts {
        for old in ["/etc/roctm", "/var/lib/roctm"] {
            if body.contains(old) {
                return Err(Error::check(
                    format!("{name} to use the paths of docs/operations.md, not {old}"),
                    body.clone(),
                ));
            }
        }
    }
    // Where the collector runs for real, UDP faces the gateways.
    for (name, body) in &texts[..2] {
        for want in ["--udp 0.0.0.0:9555", "/etc/roc-tunnel-monitor/key"] {
            if !body.contains(want) {
                return Err(Error::check(format!("'{want}' in {name}"), body.clone()));
            }
        }
    }
    for (name, body) in &texts[4..] {
        let wants: &[&str] = match name.as_str() {
            "scripts/crontab.collector" => &[
                "ROCTM_KEY=/etc/roc-tunnel-monitor/key",
                "ROCTM_DATA=/var/lib/roc-tunnel-monitor",
                "--udp 0.0.0.0:9555 --http 127.0.0.1:9556",
            ],
            "scripts/systemd/roc-tunnel-webgen.service" => &["--data /var/lib/roc-tunnel-monitor"],
            _ => &[
                "--key-file /etc/roc-tunnel-monitor/key",
                "--udp 0.0.0.0:9555 --http 127.0.0.1:9556",
            ],
        };
        for want in wants {
            if !body.contains(want) {
                return Err(Error::check(format!("'{want}' in {name}"), body.clone()));
            }
        }
    }
    Ok(())
}

/// The pids of the processes whose process group is `pgid` (from
/// `/proc/PID/stat`, field 5), with their command lines.
fn group_members(pgid: u32) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: fields start
        // after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // state, ppid, pgrp: a zombie is already gone but for its parent.
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) && fields[0] != "Z" {
            let cmd = std::fs::read(entry.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            found.push((pid, cmd));
        }
    }
    found
}

/// Kills what is left of the process group `0` on drop, whatever the test
/// did: the group was made for the demo under test and holds only what it
/// started.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !group_members(self.0).is_empty() {
            let _ = run(
                Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0)]),
                SHORT,
            );
        }
    }
}

#[test]
fn ctrl_c_on_the_demo_leaves_no_process_behind() -> Result<()> {
    let tmp = TempDir::new("demo-sigint")?;
    let log = tmp.join("demo.log");
    let mut demo = Proc::spawn(
        "scripts/demo",
        Command::new(repo_root().join("scripts/demo")).process_group(0),
        &log,
    )?;
    let pgid = demo.pid();
    let _guard = GroupGuard(pgid);
    // Up when it prints the URL (the first run builds in release: minutes).
    let up = wait_for("the demo to print its URL", e2e::BUILD_LIMIT, || {
        let printed = read_file(&log).unwrap_or_default();
        (printed.contains("Ctrl-C stops everything") || demo.exited().is_some()).then_some(())
    });
    if up.is_err() || demo.exited().is_some() {
        return Err(demo.fail("the demo to come up"));
    }
    let members = group_members(pgid);
    let names: Vec<&str> = members.iter().map(|(_, c)| c.as_str()).collect();
    for want in ["collector", "ssh -N", "fake-vnc"] {
        if !names.iter().any(|c| c.contains(want)) {
            return Err(Error::check(
                format!("a '{want}' process in the demo's process group"),
                names.join("\n"),
            ));
        }
    }

    // Ctrl-C: SIGINT to the whole foreground group.
    run_ok(
        Command::new("kill").args(["-INT", "--", &format!("-{pgid}")]),
        SHORT,
    )?;
    let status = demo
        .wait_exit(SHORT)
        .map_err(|_| demo.fail("the demo to stop on SIGINT"))?;
    let left = wait_for("the demo's process group to empty", SHORT, || {
        group_members(pgid).is_empty().then_some(())
    });
    if left.is_err() {
        let rest: Vec<String> = group_members(pgid)
            .into_iter()
            .map(|(p, c)| format!("{p} {c}"))
            .collect();
        // The guard kills them, so nothing is left for the next test.
        return Err(Error::check(
            "no process of the demo's group after Ctrl-C",
            rest.join("\n"),
        ));
    }
    if !status.success() {
        return Err(demo.fail(&format!("the demo to exit 0 on Ctrl-C ({status})")));
    }
    Ok(())
}
