//! The real `gateway-client` binary against the real collector on 127.0.0.1:
//! a report from a `ps` capture, a heartbeat, a message, a split report and
//! both kinds of shutdown, followed from the ack to the CSV rows and
//! `status.json`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Collector, TempDir, client_bin, wait_for};

fn client(c: &Collector, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(client_bin())
        .args([
            "--config",
            "/dev/null",
            "-a",
            "127.0.0.1",
            "-p",
            &c.udp.port().to_string(),
            "--timeout",
            "5",
        ])
        .arg("--key-file")
        .arg(&c.key_file)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn capture(dir: &Path, forwards: usize) -> PathBuf {
    let mut s = String::from(
        "USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n",
    );
    s.push_str("root           1  0.0  0.0 167744 11432 ?        Ss   Nov20   0:03 /sbin/init\n");
    s.push_str("root         812  0.0  0.0  15428  9072 ?        Ss   Nov20   0:00 sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups\n");
    for i in 0..forwards {
        s.push_str(&format!(
            "novacr{:02}  {:>6}  0.0  0.0  14540  5628 ?        Ss   Nov22   1:56 /usr/bin/ssh -fN -L {}:novadaq-far-master-02:{} novacr@novadaq-far-gateway-01\n",
            i % 100,
            2000 + i,
            5900 + i,
            5951 + i % 40
        ));
    }
    let p = dir.join(format!("ps-{forwards}.txt"));
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn report_heartbeat_message_reach_the_logs_and_status() {
    let dir = TempDir::new("client");
    let c = Collector::start(dir.path(), &[]);
    let ps = capture(dir.path(), 2);
    let (code, out, err) = client(
        &c,
        &[
            "--name",
            "novadaq-far-gateway-01",
            "--ps-file",
            ps.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acknowledged"), "{out}");
    assert!(
        out.contains("5900") && out.contains("novadaq-far-master-02:5951"),
        "{out}"
    );
    let (code, out, err) = client(&c, &["-q", "--name", "novadaq-far-gateway-01", "-b"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let (code, _, err) = client(
        &c,
        &[
            "-q",
            "--name",
            "novadaq-near-gateway-01",
            "-m",
            "shift change: <b>Zoë</b>",
        ],
    );
    assert_eq!(code, 0, "{err}");

    // Acked means written: the rows are there now, no waiting.
    let events = c.events();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| (e.gateway.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("novadaq-far-gateway-01", "report"),
            ("novadaq-far-gateway-01", "heartbeat"),
            ("novadaq-near-gateway-01", "message")
        ]
    );
    assert_eq!(events[0].tunnels, 2);
    assert_eq!(events[2].text, "shift change: <b>Zoë</b>");
    let rows = c.tunnel_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[1].tunnel.listen_port, rows[1].tunnel.target_port),
        (5901, 5952)
    );
    assert_eq!(rows[1].tunnel.user, "novacr01");

    let status = c.get("/status.json").body_text();
    assert!(
        status.contains("\"novadaq-far-gateway-01\"") && status.contains("\"state\":\"up\""),
        "{status}"
    );
    assert!(status.contains("\"listen_port\":5901"), "{status}");
}

#[test]
fn a_split_report_of_300_tunnels_is_acked_whole() {
    let dir = TempDir::new("client-split");
    let c = Collector::start(dir.path(), &[]);
    let ps = capture(dir.path(), 300);
    let (code, out, err) = client(
        &c,
        &[
            "--name",
            "novadaq-far-gateway-01",
            "--ps-file",
            ps.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("datagrams: acknowledged"), "{out}");
    assert_eq!(c.tunnel_rows().len(), 300);
    let parts = c.events().len();
    assert!(parts > 10, "{parts} parts");
    let status = wait_for(10, || {
        let s = c.get("/status.json").body_text();
        s.contains("\"listen_port\":6199").then_some(s)
    });
    assert!(
        status.is_some(),
        "status.json never showed the whole report"
    );
}

#[test]
fn a_shutdown_signed_with_the_wrong_key_is_refused_and_the_right_one_obeyed() {
    let dir = TempDir::new("client-shutdown");
    let mut c = Collector::start(dir.path(), &[]);
    let wrong = dir.path().join("wrong-key");
    std::fs::write(&wrong, "not-the-collector-key-but-long-enough\n").unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = Command::new(client_bin())
        .args([
            "--config",
            "/dev/null",
            "-p",
            &c.udp.port().to_string(),
            "--timeout",
            "1",
            "-s",
        ])
        .arg("--key-file")
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        c.wait_exit(1).is_none(),
        "collector stopped on a wrongly signed shutdown"
    );
    assert!(c.outcome("bad_signature") >= 1);

    let (code, _, err) = client(&c, &["-q", "-s"]);
    assert_eq!(code, 0, "{err}");
    let status = c
        .wait_exit(10)
        .expect("collector stops on a signed shutdown");
    assert_eq!(status.code(), Some(0));
    assert!(
        c.events()
            .iter()
            .any(|e| e.kind == logs::EventKind::Shutdown)
    );
}
