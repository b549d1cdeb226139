//! The inventory on the status page agrees with the collector: the real
//! collector with a config file and the real client over fake ssh
//! forwards, then webgen with the same config file on the same data
//! folder. For every expected tunnel, the state and `since` (Unix seconds)
//! of `index.html` are those of `status.json`'s `expected`, and the page,
//! loaded in headless Chromium, lists the problems.
//!
//! Two reports make the `since` values differ: in the first, one expected
//! tunnel is up, one broken (not listening) and one missing; before the
//! second, the broken one is restarted listening (a new pid) and a
//! fourth's port taken by a forward to another host. So one is up since
//! the first report, one up since the second, one missing since the first
//! and one on a wrong target since the second.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{
    Error, Proc, Result, TempDir, cargo_bin, chromium_dom, free_tcp_port, free_udp_port, http_get,
    make_key, read_file, run, run_ok, tcp_open, text, wait_for, write_file,
};

const GATEWAY: &str = "e2e-pages-gw";
const LIMIT: Duration = Duration::from_secs(30);

/// A fake ssh holding `-L port:target`, listening unless `listen` is false.
fn fake_ssh(tmp: &Path, port: u16, target: &str, listen: bool) -> Result<Proc> {
    e2e::fake_ssh(
        Path::new(env!("CARGO_BIN_EXE_fake-ssh")),
        tmp,
        port,
        target,
        listen,
    )
}

/// (listen port, state, since) of each object of status.json's `expected`
/// (flat enough to cut at `{"gateway":`), sorted.
fn from_status(json: &str) -> Vec<(u16, String, u64)> {
    let list = json.split("\"expected\":[").nth(1).unwrap_or("");
    let field = |o: &str, name: &str| -> String {
        let rest = o.split(&format!("\"{name}\":")).nth(1).unwrap_or("");
        rest.trim_start_matches('"')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out: Vec<(u16, String, u64)> = list
        .split("{\"gateway\":")
        .skip(1)
        .filter_map(|o| {
            // The tunnel record comes after state and since; cut it off.
            let o = o.split("\"tunnel\":").next()?;
            Some((
                field(o, "listen").parse().ok()?,
                field(o, "state"),
                field(o, "since").parse().ok()?,
            ))
        })
        .collect();
    out.sort();
    out
}

/// The same from the page's ROC panels (`tr.expected` rows).
fn from_page(html: &str) -> Vec<(u16, String, u64)> {
    let attr = |tag: &str, name: &str| -> String {
        tag.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string()
    };
    let mut out: Vec<(u16, String, u64)> = html
        .split("<tr class=\"expected ")
        .skip(1)
        .filter_map(|rest| {
            let tag = rest.split('>').next()?;
            Some((
                attr(tag, "data-listen").parse().ok()?,
                attr(tag, "data-state"),
                attr(tag, "data-since").parse().ok()?,
            ))
        })
        .collect();
    out.sort();
    out
}

/// The listen port's target in the inventory.
fn target(port: u16) -> String {
    format!("novadaq-e2e-vnc-{port}:5901")
}

/// The real collector with a config file listing `entries` (port, ROC).
struct Monitor {
    tmp: TempDir,
    key: std::path::PathBuf,
    config: std::path::PathBuf,
    udp: u16,
    http: SocketAddr,
    log: std::path::PathBuf,
    collector: Option<Proc>,
}

impl Monitor {
    fn start(entries: &[(u16, &str)]) -> Result<Monitor> {
        let tmp = TempDir::new("inventory-pages")?;
        let key = make_key(&tmp.join("key"))?;
        let mut text = String::from("late = \"2m\"\ndown = \"5m\"\ntz = \"UTC\"\n\n");
        for (port, roc) in entries {
            text.push_str(&format!(
                "[[tunnel]]\ngateway = \"{GATEWAY}\"\nlisten = {port}\ntarget = \"{}\"\nroc = \"{roc}\"\n\n",
                target(*port)
            ));
        }
        let config = tmp.join("monitor.toml");
        write_file(&config, &text)?;
        let udp = free_udp_port()?;
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()?));
        let log = tmp.join("collector.log");
        let proc = spawn_collector(&tmp, &key, &config, udp, http, &log)?;
        Ok(Monitor {
            tmp,
            key,
            config,
            udp,
            http,
            log,
            collector: Some(proc),
        })
    }

    /// Stops the collector and starts a new one on the same logs, which
    /// rebuilds its state from them.
    fn restart(&mut self) -> Result<()> {
        drop(self.collector.take());
        wait_for("the old collector to let go of its port", LIMIT, || {
            (!tcp_open(self.http)).then_some(())
        })?;
        self.collector = Some(spawn_collector(
            &self.tmp,
            &self.key,
            &self.config,
            self.udp,
            self.http,
            &self.log,
        )?);
        Ok(())
    }

    /// One report of the fake gateway by the real client.
    fn report(&self, client: &Path) -> Result<()> {
        let out = run(
            Command::new(client)
                .args([
                    "--name",
                    GATEWAY,
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.udp.to_string(),
                    "-q",
                ])
                .arg("--key-file")
                .arg(&self.key),
            LIMIT,
        )?;
        if !out.status.success() {
            return Err(Error::check("the client's report acknowledged", text(&out)));
        }
        Ok(())
    }

    /// Waits until status.json says `want` (port, state); returns all of
    /// its expected tunnels then.
    fn wait_states(&self, want: &[(u16, &str)]) -> Result<Vec<(u16, String, u64)>> {
        let mut last = Vec::new();
        wait_for("the expected states", LIMIT, || {
            let (code, body) = http_get(self.http, "/status.json").ok()?;
            last = from_status(&body);
            (code == 200
                && want
                    .iter()
                    .all(|(p, s)| last.iter().any(|(lp, ls, _)| lp == p && ls == s)))
            .then(|| last.clone())
        })
        .map_err(|_| {
            Error::check(
                format!("{want:?}"),
                format!("{last:?}\n{}", read_file(&self.log).unwrap_or_default()),
            )
        })
    }
}

/// The real collector on the test's data, key and config, ready.
fn spawn_collector(
    tmp: &TempDir,
    key: &Path,
    config: &Path,
    udp: u16,
    http: SocketAddr,
    log: &Path,
) -> Result<Proc> {
    let collector = cargo_bin("collector", "collector")?;
    let proc = Proc::spawn(
        "collector",
        Command::new(&collector)
            .arg("--data")
            .arg(tmp.join("data"))
            .arg("--key-file")
            .arg(key)
            .args([
                "--udp",
                &format!("127.0.0.1:{udp}"),
                "--http",
                &http.to_string(),
            ])
            .arg("--config")
            .arg(config),
        log,
    )?;
    wait_for("the collector's HTTP port", LIMIT, || {
        tcp_open(http).then_some(())
    })?;
    Ok(proc)
}

/// The since of `port` in `list`.
fn since(list: &[(u16, String, u64)], port: u16) -> Option<u64> {
    list.iter().find(|x| x.0 == port).map(|x| x.2)
}

#[test]
fn webgen_shows_the_collectors_states_and_since() -> Result<()> {
    let webgen = cargo_bin("webgen", "webgen")?;
    let client = cargo_bin("gateway-client", "gateway-client")?;
    let [p_up, p_fixed, p_missing, p_wrong] = [
        free_tcp_port()?,
        free_tcp_port()?,
        free_tcp_port()?,
        free_tcp_port()?,
    ];
    let m = Monitor::start(&[
        (p_up, "Caltech"),
        (p_fixed, "Caltech"),
        (p_missing, "Minnesota"),
        (p_wrong, "Fermilab"),
    ])?;
    let tmp = m.tmp.path();

    let _up = fake_ssh(tmp, p_up, &target(p_up), true)?;
    let broken = fake_ssh(tmp, p_fixed, &target(p_fixed), false)?;
    let wrong_ok = fake_ssh(tmp, p_wrong, &target(p_wrong), true)?;
    m.report(&client)?;
    let first = m.wait_states(&[
        (p_up, "up"),
        (p_fixed, "broken"),
        (p_missing, "missing"),
        (p_wrong, "up"),
    ])?;
    // A second apart at least, so the two reports' times differ.
    std::thread::sleep(Duration::from_millis(1100));
    drop(broken);
    drop(wrong_ok);
    let _fixed = fake_ssh(tmp, p_fixed, &target(p_fixed), true)?;
    let _elsewhere = fake_ssh(tmp, p_wrong, "novadaq-e2e-elsewhere:5999", true)?;
    m.report(&client)?;
    let second = m.wait_states(&[
        (p_up, "up"),
        (p_fixed, "up"),
        (p_missing, "missing"),
        (p_wrong, "wrong_target"),
    ])?;
    if since(&second, p_up) != since(&first, p_up)
        || since(&second, p_fixed) <= since(&first, p_fixed)
    {
        return Err(Error::check(
            "up since the first report and fixed since the second",
            format!("{first:?}\n{second:?}"),
        ));
    }

    let site = m.tmp.join("site");
    let out = run_ok(
        Command::new(&webgen)
            .arg("--data")
            .arg(m.tmp.join("data"))
            .arg("--out")
            .arg(&site)
            .arg("--config")
            .arg(&m.config),
        Duration::from_secs(60),
    )?;
    let on_page = from_page(&read_file(&site.join("index.html"))?);
    if on_page != second {
        return Err(Error::check(
            format!("index.html's expected tunnels as in status.json: {second:?}"),
            format!("{on_page:?}\nwebgen: {}", text(&out)),
        ));
    }
    // A restarted collector rebuilds the same states and since from the logs.
    let mut m = m;
    m.restart()?;
    let rebuilt = m.wait_states(&[
        (p_up, "up"),
        (p_fixed, "up"),
        (p_missing, "missing"),
        (p_wrong, "wrong_target"),
    ])?;
    if rebuilt != second {
        return Err(Error::check(
            format!("the same expected tunnels after a restart: {second:?}"),
            format!("{rebuilt:?}"),
        ));
    }
    problems_in_a_browser(&site, m.tmp.path())
}

/// In headless Chromium: the two problems listed at the top.
fn problems_in_a_browser(site: &Path, tmp: &Path) -> Result<()> {
    let dom = chromium_dom(
        &format!("file://{}", site.join("index.html").display()),
        &tmp.join("chromium-profile"),
    )?;
    let problems: Vec<&str> = dom
        .split("<li class=\"problem ")
        .skip(1)
        .filter_map(|r| r.split("data-state=\"").nth(1)?.split('"').next())
        .collect();
    if problems != ["wrong_target", "missing"] || !dom.contains("2 of 4 expected tunnels not up") {
        return Err(Error::check(
            "the wrong one and the missing one at the top of the page",
            format!("{problems:?}"),
        ));
    }
    Ok(())
}
