//! From a tunnel on a gateway to the status page in a browser, with every
//! part real: a process whose command line is a shifter's tunnel
//! (`ssh -N -L PORT:novadaq-e2e-vnc-07:5907 shifter@…`, played by the
//! `fake-ssh` binary of this crate), the static client built by
//! `scripts/build-static` reading its config and key from its own folder as
//! on a gateway, the collector started by the very command line of
//! `scripts/crontab.collector` (only the ports changed to free ones on
//! 127.0.0.1), webgen run by the collector's `--on-collect`, and the page
//! served by the collector loaded in headless Chromium. The tunnel's port,
//! target and owner must be on the rendered page, under the gateway, up.
//!
//! Along the way: a second collector started by cron exits 0 at once (single
//! instance), cron's own webgen line works, and a signed shutdown from the
//! client stops the collector cleanly.
//!
//! Needs the Debian packages chromium and binutils (readelf, for the static
//! build's check) and the Rust target x86_64-unknown-linux-musl.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{
    Error, Proc, Result, TempDir, build_static_client, cargo_bin, chromium_dom, current_user,
    free_tcp_port, free_udp_port, http_get, make_key, need_tool, read_file, repo_root, run, run_ok,
    set_mode, tcp_open, text, wait_for, write_file,
};

const GATEWAY: &str = "e2e-far-gateway-01";
const VNC_HOST: &str = "novadaq-e2e-vnc-07";
const LIMIT: Duration = Duration::from_secs(60);

/// The command of the cron job in `file` whose command starts with `start`,
/// without the five time fields.
fn cron_job(file: &Path, start: &str) -> Result<String> {
    let crontab = read_file(file)?;
    crontab
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let fields: Vec<&str> = l.splitn(6, ' ').collect();
            (fields.len() == 6).then(|| fields[5].to_string())
        })
        .find(|cmd| cmd.starts_with(start))
        .ok_or_else(|| Error::check(format!("a job '{start} …' in {}", file.display()), crontab))
}

/// `text` with `from` replaced by `to`, which must be there.
fn replace(text: &str, from: &str, to: &str) -> Result<String> {
    if !text.contains(from) {
        return Err(Error::check(
            format!("'{from}' in the cron job (update this test with the crontab)"),
            text,
        ));
    }
    Ok(text.replace(from, to))
}

/// The part of `html` from the first `open` (a tag's start, with its
/// attributes) to the matching `close`, not counting nesting.
fn element<'a>(html: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = html.find(open)?;
    let end = html[start..].find(close)? + start + close.len();
    Some(&html[start..end])
}

#[test]
fn gateway_to_page_in_a_browser() -> Result<()> {
    // Fail fast on what is not there.
    need_tool("/usr/bin/chromium", "chromium").or_else(|_| need_tool("chromium", "chromium"))?;
    let client = build_static_client()?;
    let collector = cargo_bin("collector", "collector")?;
    cargo_bin("webgen", "webgen")?;
    let bin_dir = collector
        .parent()
        .ok_or_else(|| Error::check("a folder", collector.display().to_string()))?;

    let tmp = TempDir::new("page")?;
    let (data, site) = (tmp.join("data"), tmp.join("site"));
    for d in [&data, &site] {
        std::fs::create_dir(d).map_err(|e| Error::io("making", d, e))?;
    }
    let key = make_key(&tmp.join("collector.key"))?;
    let (udp, http) = (free_udp_port()?, free_tcp_port()?);
    let http_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, http));

    // The collector, as cron starts it.
    let job = cron_job(
        &repo_root().join("scripts/crontab.collector"),
        "$ROCTM_BIN/collector ",
    )?;
    let job = replace(
        &job,
        "--udp 0.0.0.0:9555",
        &format!("--udp 127.0.0.1:{udp}"),
    )?;
    let job = replace(
        &job,
        "--http 127.0.0.1:9556",
        &format!("--http 127.0.0.1:{http}"),
    )?;
    let cron_env = |cmd: &mut Command| {
        cmd.env("ROCTM_BIN", bin_dir)
            .env("ROCTM_DATA", &data)
            .env("ROCTM_SITE", &site)
            .env("ROCTM_KEY", &key);
    };
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!("exec {job}"));
    cron_env(&mut sh);
    let mut collector = Proc::spawn("collector", &mut sh, &tmp.join("collector.out"))?;
    let collector_log = data.join("collector.log");
    let log = || std::fs::read_to_string(&collector_log).unwrap_or_default();
    wait_for("the collector's HTTP port", LIMIT, || {
        (tcp_open(http_addr) || collector.exited().is_some()).then_some(())
    })?;
    if let Some(status) = collector.exited() {
        return Err(Error::check(
            "the collector to keep running",
            format!("{status}\n{}", log()),
        ));
    }

    // Cron starts it again a minute later: that one leaves at once, exit 0.
    let mut again = Command::new("sh");
    again.arg("-c").arg(&job);
    cron_env(&mut again);
    let out = run(&mut again, LIMIT)?;
    if !out.status.success() || collector.exited().is_some() {
        return Err(Error::check(
            "a second collector to exit 0 and the first to keep running",
            format!("{}\n{}{}", out.status, text(&out), log()),
        ));
    }

    // A shifter's tunnel on the "gateway" (this machine).
    let port = free_tcp_port()?;
    let forward = format!("{port}:{VNC_HOST}:5907");
    let _tunnel = Proc::spawn(
        "fake ssh",
        Command::new(env!("CARGO_BIN_EXE_fake-ssh"))
            .arg0("ssh")
            .args(["-N", "-L", &forward, "shifter@novadaq-e2e-gateway"])
            .env("FAKE_SSH_SECONDS", "600"),
        &tmp.join("fake-ssh.log"),
    )?;
    wait_for("the fake tunnel to listen", LIMIT, || {
        tcp_open(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).then_some(())
    })?;
    let owner = current_user()?;

    // The client as deployed: binary, config and key in one folder.
    let gw = tmp.join("gateway");
    std::fs::create_dir(&gw).map_err(|e| Error::io("making", &gw, e))?;
    let gw_client = gw.join("gateway-client");
    std::fs::copy(&client, &gw_client).map_err(|e| Error::io("copying", &client, e))?;
    std::fs::copy(&key, gw.join("gateway-client.key"))
        .map_err(|e| Error::io("copying", &key, e))?;
    set_mode(&gw.join("gateway-client.key"), 0o600)?;
    write_file(
        &gw.join("gateway-client.conf"),
        &format!(
            "address = 127.0.0.1\nport = {udp}\nname = {GATEWAY}\nkey-file = gateway-client.key\n"
        ),
    )?;
    let out = run_ok(&mut Command::new(&gw_client), LIMIT)?;
    let printed = text(&out);
    if !printed.contains("acknowledged") || !printed.contains(VNC_HOST) {
        return Err(Error::check(
            "the client to list the tunnel and see an ack",
            printed,
        ));
    }

    // --on-collect runs webgen: wait for the page to show the tunnel.
    let mut last = String::new();
    let waited = wait_for("the tunnel on the served page", LIMIT, || {
        match http_get(http_addr, "/index.html") {
            Ok((200, body)) if body.contains(&format!("data-listen-port=\"{port}\"")) => Some(()),
            Ok((code, body)) => {
                last = format!("HTTP {code}\n{body}");
                None
            }
            Err(e) => {
                last = e.to_string();
                None
            }
        }
    });
    if waited.is_err() {
        return Err(Error::check(
            "the tunnel on /index.html",
            format!("{last}\ncollector log:\n{}", log()),
        ));
    }

    // The page as a browser shows it.
    let dom = chromium_dom(&format!("http://127.0.0.1:{http}/"), &tmp.join("chromium"))?;
    // webgen's markup: <section … data-gateway="NAME" data-state="up"> holds
    // a <tr … data-listen-port="PORT"> whose cells are the tunnel's.
    let section = element(&dom, &format!("data-gateway=\"{GATEWAY}\""), "</section>")
        .ok_or_else(|| Error::check(format!("a section for {GATEWAY}"), dom.clone()))?;
    if !section.contains("data-state=\"up\"") {
        return Err(Error::check(format!("{GATEWAY} up"), section));
    }
    let row = element(section, &format!("data-listen-port=\"{port}\""), "</tr>")
        .ok_or_else(|| Error::check(format!("a row for port {port}"), section))?;
    for want in [
        port.to_string(),
        VNC_HOST.to_string(),
        "5907".to_string(),
        // port 59NN is VNC display :NN
        ">:7<".to_string(),
        format!("class=\"owner\">{owner}<"),
        "novadaq-e2e-gateway".to_string(),
    ] {
        if !row.contains(&want) {
            return Err(Error::check(format!("'{want}' in the tunnel's row"), row));
        }
    }

    // The fake ssh listens on its port: the forward may show as listening
    // or not yet checked, never as not listening.
    let listening = element(row, "class=\"listening\"", "</td>").unwrap_or_default();
    if listening.contains("class=\"h no\"") {
        return Err(Error::check("the listening forward not shown as 'no'", row));
    }

    // status.json says the same.
    let (code, status) = http_get(http_addr, "/status.json")?;
    if code != 200 || !status.contains(GATEWAY) || !status.contains(VNC_HOST) {
        return Err(Error::check(
            "the gateway and tunnel in status.json",
            status,
        ));
    }

    // Cron's own webgen line (for silence) runs cleanly on the same data.
    let job = cron_job(
        &repo_root().join("scripts/crontab.collector"),
        "$ROCTM_BIN/webgen ",
    )?;
    let mut webgen = Command::new("sh");
    webgen.arg("-c").arg(&job);
    cron_env(&mut webgen);
    let out = run(&mut webgen, LIMIT)?;
    let page = read_file(&site.join("index.html"))?;
    if !out.status.success() || !page.contains(&format!("data-listen-port=\"{port}\"")) {
        return Err(Error::check(
            "cron's webgen to exit 0 and keep the tunnel on the page",
            format!("{}\n{}", out.status, text(&out)),
        ));
    }

    // A signed shutdown stops the collector, exit 0.
    run_ok(Command::new(&gw_client).arg("-s"), LIMIT)?;
    let status = collector.wait_exit(LIMIT)?;
    if !status.success() {
        return Err(Error::check(
            "the collector to stop with exit 0",
            format!("{status}\n{}", log()),
        ));
    }
    Ok(())
}
