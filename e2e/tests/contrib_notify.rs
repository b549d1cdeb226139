//! The ready notify commands of `contrib/notify/` against real receivers on
//! 127.0.0.1: `mail` through a real SMTP server (aiosmtpd, run by
//! `tests/support/smtp_receiver.py`) and through a recording `sendmail`,
//! `webhook` to a real HTTP server playing a Slack or Mattermost incoming
//! webhook (`tests/support/webhook_receiver.py`). Each test reads what the
//! receiver got, decoded, and checks the text a person reads; failures must
//! exit 1 with one line on stderr, bad use exit 2.
//!
//! Last, the whole path: the real collector runs `webhook` as its
//! `--notify` command, and the real gateway-client's reports (a fake ssh
//! tunnel coming and going) and then its silence make alerts that arrive at
//! the receiver.
//!
//! Needs the Debian packages python3 and python3-aiosmtpd (for
//! /usr/bin/python3, Debian's own).

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use e2e::{
    Error, Proc, Result, TempDir, cargo_bin, current_user, free_tcp_port, free_udp_port, http_get,
    make_key, need_tool, repo_root, run, set_mode, tcp_open, text, wait_for, write_file,
};

const LIMIT: Duration = Duration::from_secs(60);
const GW: &str = "novadaq-far-gateway-01";

fn script(name: &str) -> PathBuf {
    repo_root().join("contrib/notify").join(name)
}

fn support(name: &str) -> PathBuf {
    repo_root().join("e2e/tests/support").join(name)
}

/// A receiver: the process, and the folder where it saves what it gets.
struct Receiver {
    proc: Proc,
    port: u16,
    saved: PathBuf,
}

impl Receiver {
    /// Starts `python support/SCRIPT PORT DIR` and waits until it listens.
    fn start(tmp: &TempDir, python: &Path, script: &str) -> Result<Receiver> {
        let port = free_tcp_port()?;
        let saved = tmp.join(&format!("{script}.saved"));
        std::fs::create_dir(&saved).map_err(|e| Error::io("making", &saved, e))?;
        let mut proc = Proc::spawn(
            script,
            Command::new(python)
                .arg(support(script))
                .arg(port.to_string())
                .arg(&saved),
            &tmp.join(&format!("{script}.log")),
        )?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_for(&format!("{script} to listen"), LIMIT, || {
            (tcp_open(addr) || proc.exited().is_some()).then_some(())
        })?;
        if proc.exited().is_some() {
            return Err(proc.fail(&format!("{script} exited at start")));
        }
        Ok(Receiver { proc, port, saved })
    }

    /// What it saved so far, in the order it came.
    fn got(&self) -> Vec<String> {
        (1..)
            .map(|n| self.saved.join(format!("{n}.txt")))
            .take_while(|p| p.exists())
            .take(1000)
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    /// Waits until it has saved `n` things, and returns them all.
    fn wait_got(&self, n: usize) -> Result<Vec<String>> {
        wait_for(&format!("{n} received"), LIMIT, || {
            let got = self.got();
            (got.len() >= n).then_some(got)
        })
        .map_err(|e| {
            Error::check(
                format!("{e}; receiver"),
                format!("{:?}\nlog:\n{}", self.got(), self.proc.log()),
            )
        })
    }
}

/// Debian's python3 with aiosmtpd (python3-aiosmtpd installs it for that
/// interpreter only).
fn python_with_aiosmtpd() -> Result<PathBuf> {
    let python = need_tool("/usr/bin/python3", "python3")?;
    let out = run(
        Command::new(&python).args(["-c", "import aiosmtpd.controller"]),
        LIMIT,
    )?;
    if !out.status.success() {
        return Err(Error::Missing {
            tool: "the Python module aiosmtpd".into(),
            package: "python3-aiosmtpd".into(),
        });
    }
    Ok(python)
}

/// A `python3` for the webhook receiver and the scripts under test.
fn python() -> Result<PathBuf> {
    need_tool("python3", "python3")
}

/// Runs a contrib script with exactly `env` (and PATH) in its environment.
fn notify(name: &str, args: &[&str], env: &[(&str, &str)], path: Option<&Path>) -> Result<Output> {
    python()?;
    let mut search = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = path {
        let mut first = dir.as_os_str().to_owned();
        first.push(":");
        first.push(&search);
        search = first;
    }
    let mut cmd = Command::new(script(name));
    cmd.args(args).env_clear().env("PATH", search);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd, LIMIT)
}

/// Checks that `out` failed with `code` and one line on stderr holding
/// every one of `words`.
fn failed(out: &Output, code: i32, words: &[&str]) -> Result<()> {
    let err = String::from_utf8_lossy(&out.stderr);
    let ok = out.status.code() == Some(code)
        && err.lines().count() == 1
        && words.iter().all(|w| err.contains(w));
    if ok {
        Ok(())
    } else {
        Err(Error::check(
            format!("exit {code} and one stderr line with {words:?}"),
            format!("{}\n{}", out.status, text(out)),
        ))
    }
}

fn expect(what: &str, ok: bool, got: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::check(what, got))
    }
}

/// The body after the receiver's header lines.
fn body(saved: &str) -> &str {
    saved.split_once("\n\n").map_or("", |(_, b)| b)
}

/// A tunnel alert with every variable the collector may give: today's and
/// those of the tunnel inventory and the connection count.
fn broken_alert(roc: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("ROCTM_EVENT", "tunnel_broken"),
        ("ROCTM_GATEWAY", GW),
        ("ROCTM_TIME", "2025-11-23T00:00:00Z"),
        ("ROCTM_UNIX_TIME", "1763856000"),
        ("ROCTM_AGE_SECONDS", "0"),
        (
            "ROCTM_TUNNEL",
            "novacr01: L 5901 -> novadaq-far-master-02:5951 via novadaq-far-gateway-01 (pid 4242)",
        ),
        ("ROCTM_TUNNEL_USER", "novacr01"),
        ("ROCTM_TUNNEL_LISTEN_PORT", "5901"),
        ("ROCTM_TUNNEL_TARGET", "novadaq-far-master-02:5951"),
        ("ROCTM_TUNNEL_PID", "4242"),
        ("ROCTM_ROC", roc),
        ("ROCTM_STATION", "far-master-02 :51"),
        ("ROCTM_LISTEN", "5901"),
        ("ROCTM_TARGET", "novadaq-far-master-02:5951"),
        ("ROCTM_STATE", "broken"),
        ("ROCTM_CONNECTIONS", "2"),
        ("ROCTM_CONNECTED", "novaroc1, 192.0.2.15"),
        ("ROCTM_PAGE_URL", "https://monitor.example.org/roc/"),
    ]
}

/// What a person reads for [`broken_alert`], `roc` as the text shows it.
fn broken_text(roc: &str) -> String {
    format!(
        "Expected tunnel broken: port 5901 on {GW} for {roc} (far-master-02 :51)

Gateway: {GW}
ROC: {roc}
Station: far-master-02 :51
Port: 5901
Target: novadaq-far-master-02:5951
Account: novacr01 (pid 4242)
State: broken
In use: yes, 2 connections at the last report (novaroc1, 192.0.2.15)
Since: 2025-11-23 00:00:00 UTC
Event: tunnel_broken
Page: https://monitor.example.org/roc/
"
    )
}

/// A tunnel alert as the collector gives it today (no inventory).
fn tunnel_down_today() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ROCTM_EVENT", "tunnel_down"),
        ("ROCTM_GATEWAY", GW),
        ("ROCTM_TIME", "2025-11-23T00:00:00Z"),
        ("ROCTM_UNIX_TIME", "1763856000"),
        ("ROCTM_AGE_SECONDS", "0"),
        (
            "ROCTM_TUNNEL",
            "novacr01: L 5901 -> novadaq-far-master-02:5951 via novadaq-far-gateway-01 (pid 4242)",
        ),
        ("ROCTM_TUNNEL_USER", "novacr01"),
        ("ROCTM_TUNNEL_LISTEN_PORT", "5901"),
        ("ROCTM_TUNNEL_TARGET", "novadaq-far-master-02:5951"),
        ("ROCTM_TUNNEL_PID", "4242"),
    ]
}

fn gateway_down_today() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ROCTM_EVENT", "gateway_down"),
        ("ROCTM_GATEWAY", GW),
        ("ROCTM_TIME", "2025-11-23T00:00:00Z"),
        ("ROCTM_UNIX_TIME", "1763856000"),
        ("ROCTM_AGE_SECONDS", "600"),
    ]
}

#[test]
fn mail_through_smtp_carries_the_whole_alert() -> Result<()> {
    let python = python_with_aiosmtpd()?;
    let tmp = TempDir::new("mail-smtp")?;
    let smtp = Receiver::start(&tmp, &python, "smtp_receiver.py")?;
    let server = format!("127.0.0.1:{}", smtp.port);
    let roc = "Universidade Federal de Goiás";
    let mut env: Vec<(&str, &str)> = broken_alert(roc);
    env.push(("ROCTM_SMTP", &server));
    env.push(("ROCTM_MAIL_FROM", "roctm@monitor.example.org"));
    let out = notify(
        "mail",
        &["ops@example.org", "shift@example.org"],
        &env,
        None,
    )?;
    expect("mail to exit 0", out.status.success(), &text(&out))?;
    let got = smtp.wait_got(1)?;
    let mail = &got[0];
    for line in [
        "envelope-from: roctm@monitor.example.org".to_string(),
        "envelope-to: ops@example.org".to_string(),
        "envelope-to: shift@example.org".to_string(),
        format!(
            "Subject: ROC tunnels: Expected tunnel broken: port 5901 on {GW} for {roc} (far-master-02 :51)"
        ),
        "From: roctm@monitor.example.org".to_string(),
        "To: ops@example.org, shift@example.org".to_string(),
        "Auto-Submitted: auto-generated".to_string(),
        "X-ROCTM-Event: tunnel_broken".to_string(),
        format!("X-ROCTM-Gateway: {GW}"),
    ] {
        expect(
            &format!("the line '{line}' in the mail"),
            mail.lines().any(|l| l == line),
            mail,
        )?;
    }
    for header in ["Date: ", "Message-ID: <"] {
        expect(
            &format!("a {header} header"),
            mail.lines().any(|l| l.starts_with(header)),
            mail,
        )?;
    }
    expect(
        "the alert's text as the body",
        body(mail) == broken_text(roc),
        mail,
    )?;
    Ok(())
}

#[test]
fn mail_leaves_out_what_the_alert_does_not_say() -> Result<()> {
    let python = python_with_aiosmtpd()?;
    let tmp = TempDir::new("mail-today")?;
    let smtp = Receiver::start(&tmp, &python, "smtp_receiver.py")?;
    let server = format!("127.0.0.1:{}", smtp.port);
    for alert in [tunnel_down_today(), gateway_down_today()] {
        let mut env: Vec<(&str, &str)> = alert;
        env.push(("ROCTM_SMTP", &server));
        let out = notify("mail", &["ops@example.org"], &env, None)?;
        expect("mail to exit 0", out.status.success(), &text(&out))?;
    }
    let got = smtp.wait_got(2)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| Error::io("reading", "/proc/sys/kernel/hostname", e))?;
    expect(
        "the default sender roc-tunnel-monitor@HOSTNAME",
        got[0].starts_with(&format!(
            "envelope-from: roc-tunnel-monitor@{}\n",
            host.trim()
        )),
        &got[0],
    )?;
    let tunnel = format!(
        "Tunnel gone: port 5901 on {GW}

Gateway: {GW}
Port: 5901
Target: novadaq-far-master-02:5951
Account: novacr01 (pid 4242)
Since: 2025-11-23 00:00:00 UTC
Event: tunnel_down
"
    );
    expect("the tunnel_down text", body(&got[0]) == tunnel, &got[0])?;
    let gateway = format!(
        "Gateway {GW} is down: silent for 10 min

Gateway: {GW}
Silent since: 2025-11-22 23:50:00 UTC
Event: gateway_down
"
    );
    expect("the gateway_down text", body(&got[1]) == gateway, &got[1])?;
    expect(
        "the gateway_down subject",
        got[1]
            .lines()
            .any(|l| l == format!("Subject: ROC tunnels: Gateway {GW} is down: silent for 10 min")),
        &got[1],
    )?;
    Ok(())
}

#[test]
fn mail_failures_exit_1_with_one_line_and_bad_use_exits_2() -> Result<()> {
    let python = python_with_aiosmtpd()?;
    let tmp = TempDir::new("mail-fail")?;
    let smtp = Receiver::start(&tmp, &python, "smtp_receiver.py")?;
    let server = format!("127.0.0.1:{}", smtp.port);
    let with = |extra: &[(&'static str, &str)]| {
        let mut env: Vec<(&str, String)> = gateway_down_today()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    };
    let call = |args: &[&str], env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        notify("mail", args, &env, None)
    };

    // The server refuses the only recipient.
    let out = call(
        &["refuse-me@example.org"],
        &with(&[("ROCTM_SMTP", &server)]),
    )?;
    failed(
        &out,
        1,
        &[
            "mail: ",
            "gateway_down",
            GW,
            "refuse-me@example.org",
            "refused",
        ],
    )?;
    // Nothing listens.
    let closed = format!("127.0.0.1:{}", free_tcp_port()?);
    let out = call(&["ops@example.org"], &with(&[("ROCTM_SMTP", &closed)]))?;
    failed(&out, 1, &["mail: ", &closed])?;
    // Not host:port.
    let out = call(
        &["ops@example.org"],
        &with(&[("ROCTM_SMTP", "mail.example.org:smtp")]),
    )?;
    failed(&out, 1, &["mail.example.org:smtp", "host:port"])?;
    // No recipient, or no alert.
    let out = call(&[], &with(&[("ROCTM_SMTP", &server)]))?;
    failed(&out, 2, &["usage: mail TO"])?;
    let out = notify(
        "mail",
        &["ops@example.org"],
        &[("ROCTM_SMTP", &server)],
        None,
    )?;
    failed(&out, 2, &["ROCTM_EVENT"])?;
    expect(
        "nothing delivered",
        smtp.got().is_empty(),
        &smtp.got().join("\n"),
    )?;
    Ok(())
}

#[test]
fn mail_without_smtp_hands_the_message_to_sendmail() -> Result<()> {
    python()?;
    let tmp = TempDir::new("mail-sendmail")?;
    // A sendmail that records its arguments and the message, as the real
    // one's interface is: options, --, recipients; the message on stdin.
    let bin = tmp.join("bin");
    std::fs::create_dir(&bin).map_err(|e| Error::io("making", &bin, e))?;
    let fake = bin.join("sendmail");
    write_file(
        &fake,
        &format!(
            "#!/bin/sh\n# Records what mail hands to sendmail.\nprintf '%s\\n' \"$@\" > {dir}/args\ncat > {dir}/message\nexit \"${{FAKE_SENDMAIL_EXIT:-0}}\"\n",
            dir = tmp.path().display()
        ),
    )?;
    set_mode(&fake, 0o755)?;
    let mut env = gateway_down_today();
    env.push(("ROCTM_MAIL_FROM", "roctm@monitor.example.org"));
    let out = notify("mail", &["ops@example.org"], &env, Some(&bin))?;
    expect("mail to exit 0", out.status.success(), &text(&out))?;
    let args = std::fs::read_to_string(tmp.join("args")).unwrap_or_default();
    expect(
        "sendmail -oi -f FROM -- TO",
        args == "-oi\n-f\nroctm@monitor.example.org\n--\nops@example.org\n",
        &args,
    )?;
    // Header lines unfolded (a long subject is folded onto two lines).
    let message = std::fs::read_to_string(tmp.join("message"))
        .unwrap_or_default()
        .replace("\n ", " ");
    for want in [
        format!("Subject: ROC tunnels: Gateway {GW} is down: silent for 10 min"),
        "To: ops@example.org".to_string(),
        "From: roctm@monitor.example.org".to_string(),
        "Silent since: 2025-11-22 23:50:00 UTC".to_string(),
    ] {
        expect(
            &format!("'{want}' in the message"),
            message.lines().any(|l| l == want),
            &message,
        )?;
    }

    // sendmail fails: its last word is in mail's one line.
    write_file(
        &fake,
        "#!/bin/sh\n# A sendmail whose relay is unreachable.\ncat > /dev/null\necho 'sendmail: cannot connect to relay.example.org:587' >&2\nexit 75\n",
    )?;
    let out = notify("mail", &["ops@example.org"], &env, Some(&bin))?;
    failed(
        &out,
        1,
        &["exited with 75", "cannot connect to relay.example.org:587"],
    )?;
    Ok(())
}

#[test]
fn a_line_break_in_a_value_cannot_add_a_mail_header() -> Result<()> {
    let python = python_with_aiosmtpd()?;
    let tmp = TempDir::new("mail-header")?;
    let smtp = Receiver::start(&tmp, &python, "smtp_receiver.py")?;
    let server = format!("127.0.0.1:{}", smtp.port);
    let env = [
        ("ROCTM_EVENT", "gateway_late"),
        ("ROCTM_GATEWAY", "gw\r\nBcc: victim@example.org"),
        ("ROCTM_ROC", "Caltech\nEvent: forged"),
        ("ROCTM_SMTP", server.as_str()),
    ];
    let out = notify("mail", &["ops@example.org"], &env, None)?;
    expect("mail to exit 0", out.status.success(), &text(&out))?;
    let mail = &smtp.wait_got(1)?[0];
    expect(
        "one recipient and no Bcc header",
        mail.lines()
            .filter(|l| l.starts_with("envelope-to: "))
            .count()
            == 1
            && !mail.lines().any(|l| l.starts_with("Bcc:")),
        mail,
    )?;
    expect(
        "the values on one line each",
        mail.lines()
            .any(|l| l == "Subject: ROC tunnels: Gateway gw Bcc: victim@example.org is late")
            && body(mail)
                .lines()
                .any(|l| l == "ROC: Caltech Event: forged")
            && body(mail)
                .lines()
                .filter(|l| l.starts_with("Event: "))
                .count()
                == 1,
        mail,
    )?;
    // A recipient that looks like an option is refused before anything runs.
    let out = notify("mail", &["-oQ/tmp/x"], &env, None)?;
    failed(&out, 2, &["usage: mail TO"])?;
    Ok(())
}

#[test]
fn webhook_posts_slack_json_with_the_alert_text() -> Result<()> {
    let python = python()?;
    let tmp = TempDir::new("webhook")?;
    let hook = Receiver::start(&tmp, &python, "webhook_receiver.py")?;
    let url = format!("http://127.0.0.1:{}/hooks/T00/B00/XXXX", hook.port);
    let out = notify("webhook", &[&url], &broken_alert("Texas A&M"), None)?;
    expect("webhook to exit 0", out.status.success(), &text(&out))?;
    let got = hook.wait_got(1)?;
    let post = &got[0];
    for line in [
        "method: POST",
        "path: /hooks/T00/B00/XXXX",
        "content-type: application/json",
        "keys: text",
    ] {
        expect(
            &format!("'{line}' in the post"),
            post.lines().any(|l| l == line),
            post,
        )?;
    }
    // Slack's escaping: & < > as entities.
    expect(
        "the alert's text, & escaped",
        body(post) == broken_text("Texas A&amp;M"),
        post,
    )?;
    Ok(())
}

#[test]
fn webhook_failures_exit_1_with_one_line_and_bad_use_exits_2() -> Result<()> {
    let python = python()?;
    let tmp = TempDir::new("webhook-fail")?;
    let hook = Receiver::start(&tmp, &python, "webhook_receiver.py")?;
    let env = tunnel_down_today();
    // The hook was removed: 404 no_service, and the secret path stays out
    // of the message (it goes to collector.log).
    let url = format!("http://127.0.0.1:{}/status/404/SECRET", hook.port);
    let out = notify("webhook", &[&url], &env, None)?;
    failed(
        &out,
        1,
        &["webhook: ", "tunnel_down", GW, "404", "no_service"],
    )?;
    expect(
        "the hook's path left out",
        !text(&out).contains("SECRET"),
        &text(&out),
    )?;
    // Nothing listens.
    let closed = format!("http://127.0.0.1:{}/hooks/SECRET", free_tcp_port()?);
    let out = notify("webhook", &[&closed], &env, None)?;
    failed(&out, 1, &["cannot reach http://127.0.0.1:"])?;
    expect(
        "the hook's path left out",
        !text(&out).contains("SECRET"),
        &text(&out),
    )?;
    // Bad use.
    let out = notify("webhook", &["ftp://example.org/hook"], &env, None)?;
    failed(&out, 2, &["usage: webhook URL"])?;
    let hook_url = format!("http://127.0.0.1:{}/hooks/x", hook.port);
    let out = notify("webhook", &[&hook_url], &[], None)?;
    failed(&out, 2, &["ROCTM_EVENT"])?;
    expect(
        "only the 404 post arrived",
        hook.got().len() == 1,
        &hook.got().join("\n---\n"),
    )?;
    Ok(())
}

/// The alerts' texts that hold `headline` (one line).
fn posts_with<'a>(posts: &'a [String], headline: &str) -> Vec<&'a String> {
    posts
        .iter()
        .filter(|p| body(p).lines().next() == Some(headline))
        .collect()
}

#[test]
fn the_collector_posts_real_alerts_through_the_webhook() -> Result<()> {
    let python = python()?;
    let collector = cargo_bin("collector", "collector")?;
    let client = cargo_bin("gateway-client", "gateway-client")?;
    let tmp = TempDir::new("webhook-collector")?;
    let hook = Receiver::start(&tmp, &python, "webhook_receiver.py")?;
    let key = make_key(&tmp.join("collector.key"))?;
    let data = tmp.join("data");
    std::fs::create_dir(&data).map_err(|e| Error::io("making", &data, e))?;
    let udp = free_udp_port()?;
    let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()?));
    let gateway = "e2e-contrib-gateway-01";
    let page = "https://monitor.example.org/roc/";
    // The page's address reaches the command through the collector's
    // environment (until the config's page_url does it).
    let notify_cmd = format!(
        "'{}' 'http://127.0.0.1:{}/hooks/roc'",
        script("webhook").display(),
        hook.port
    );
    let mut proc = Proc::spawn(
        "collector",
        Command::new(&collector)
            .arg("--data")
            .arg(&data)
            .arg("--key-file")
            .arg(&key)
            .args(["--udp", &format!("127.0.0.1:{udp}")])
            .args(["--http", &http.to_string()])
            .args(["--notify", &notify_cmd, "--hold", "0"])
            .args(["--late", "5", "--down", "600"])
            .env("ROCTM_PAGE_URL", page)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY"),
        &tmp.join("collector.log"),
    )?;
    wait_for("the collector's HTTP port", LIMIT, || {
        (tcp_open(http) || proc.exited().is_some()).then_some(())
    })?;
    if proc.exited().is_some() {
        return Err(proc.fail("the collector exited at start"));
    }
    let report = || {
        let out = run(
            Command::new(&client)
                .args(["-a", "127.0.0.1", "-p", &udp.to_string()])
                .args(["--name", gateway, "--timeout", "10"])
                .arg("--key-file")
                .arg(&key),
            LIMIT,
        )?;
        expect(
            "the client's report acknowledged",
            out.status.success(),
            &text(&out),
        )
    };

    // First report: a new gateway (its tunnels are not news).
    report()?;
    // A shifter's tunnel comes up: the next report has it.
    let port = free_tcp_port()?;
    let vnc = "novadaq-e2e-vnc-07";
    let tunnel = Proc::spawn(
        "fake ssh",
        Command::new(env!("CARGO_BIN_EXE_fake-ssh"))
            .arg0("ssh")
            .args(["-N", "-L", &format!("{port}:{vnc}:5907"), "shifter@gw"])
            .env("FAKE_SSH_SECONDS", "600"),
        &tmp.join("fake-ssh.log"),
    )?;
    wait_for("the fake tunnel to listen", LIMIT, || {
        tcp_open(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).then_some(())
    })?;
    let pid = tunnel.pid();
    report()?;
    // It goes: the next report lacks it. Then silence: late.
    drop(tunnel);
    report()?;

    let up = format!("Gateway {gateway} is reporting");
    let tunnel_up = format!("Tunnel up: port {port} on {gateway}");
    let tunnel_gone = format!("Tunnel gone: port {port} on {gateway}");
    let late = format!("Gateway {gateway} is late: silent for ");
    let posts = wait_for("the four alerts at the webhook", LIMIT, || {
        let posts = hook.got();
        let all = !posts_with(&posts, &up).is_empty()
            && !posts_with(&posts, &tunnel_up).is_empty()
            && !posts_with(&posts, &tunnel_gone).is_empty()
            && posts.iter().any(|p| body(p).starts_with(&late));
        all.then_some(posts)
    })
    .map_err(|e| {
        Error::check(
            e.to_string(),
            format!(
                "posts:\n{}\ncollector log:\n{}",
                hook.got().join("\n---\n"),
                proc.log()
            ),
        )
    })?;
    let owner = current_user()?;
    let came = posts_with(&posts, &tunnel_up)[0];
    for line in [
        "path: /hooks/roc".to_string(),
        "content-type: application/json".to_string(),
        format!("Gateway: {gateway}"),
        format!("Port: {port}"),
        format!("Target: {vnc}:5907"),
        format!("Account: {owner} (pid {pid})"),
        "Event: tunnel_up".to_string(),
        format!("Page: {page}"),
    ] {
        expect(
            &format!("'{line}' in the tunnel_up post"),
            came.lines().any(|l| l == line),
            came,
        )?;
    }
    expect(
        "a Since line",
        came.lines()
            .any(|l| l.starts_with("Since: ") && l.ends_with(" UTC")),
        came,
    )?;
    let gone = posts_with(&posts, &tunnel_gone)[0];
    expect(
        "Event: tunnel_down in the tunnel_down post",
        gone.lines().any(|l| l == "Event: tunnel_down"),
        gone,
    )?;
    let silent = posts
        .iter()
        .find(|p| body(p).starts_with(&late))
        .map_or("", |p| p.as_str());
    expect(
        "Silent since and the page in the late post",
        silent.lines().any(|l| l.starts_with("Silent since: "))
            && silent.lines().any(|l| l == format!("Page: {page}")),
        silent,
    )?;

    // The collector counts each as a success once the command has exited
    // (just after the receiver saved the post).
    let mut metrics = String::new();
    let counted = wait_for("4 notify runs counted ok", LIMIT, || {
        metrics = http_get(http, "/metrics").ok()?.1;
        let ok = metrics
            .lines()
            .find_map(|l| l.strip_prefix("roctm_collector_notify_runs_total{result=\"ok\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())?;
        (ok >= 4).then_some(())
    });
    expect(
        "4 or more notify runs ok and none failed",
        counted.is_ok()
            && metrics.contains("roctm_collector_notify_runs_total{result=\"failed\"} 0\n"),
        &metrics,
    )?;
    Ok(())
}
