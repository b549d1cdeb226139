//! Planned work from the gateway itself: `gateway-client --maintenance 1h
//! -m REASON` silences that gateway's alerts, `--maintenance 0` ends it,
//! and the problem that arose meanwhile is sent then. The real client, the
//! real collector with a config file (an expected tunnel, a notify command
//! that records each alert, a config silence of another ROC) and webgen on
//! the same data folder; the collector is restarted while the silence is
//! on, and rebuilds it from the logs.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use e2e::{
    Error, Proc, Result, TempDir, cargo_bin, free_tcp_port, free_udp_port, http_get, make_key,
    read_file, run, tcp_open, text, wait_for, write_file,
};

const GATEWAY: &str = "e2e-maintenance-gw";
const LIMIT: Duration = Duration::from_secs(30);
/// An expected port no fake ssh holds: missing at every report.
const PORT: u16 = 5977;

struct Monitor {
    tmp: TempDir,
    key: std::path::PathBuf,
    config: std::path::PathBuf,
    udp: u16,
    http: SocketAddr,
    alerts: std::path::PathBuf,
    collector: Option<Proc>,
}

impl Monitor {
    fn start() -> Result<Monitor> {
        let tmp = TempDir::new("maintenance")?;
        let key = make_key(&tmp.join("key"))?;
        let alerts = tmp.join("alerts.txt");
        let config = tmp.join("monitor.toml");
        let now = e2e::unix_now();
        write_file(
            &config,
            &format!(
                r#"hold = "0s"
tz = "UTC"
notify = 'echo "$ROCTM_EVENT $ROCTM_LISTEN" >> {}'

[[silence]]
roc = "Fermilab"
from = "{}"
until = "{}"
reason = "control room move"

[[tunnel]]
gateway = "{GATEWAY}"
listen = {PORT}
target = "novadaq-e2e-vnc:5901"
roc = "Caltech"
"#,
                alerts.display(),
                e2e::utc_rfc3339(now - 3600),
                e2e::utc_rfc3339(now + 7200),
            ),
        )?;
        let mut m = Monitor {
            tmp,
            key,
            config,
            udp: free_udp_port()?,
            http: SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()?)),
            alerts,
            collector: None,
        };
        m.spawn()?;
        Ok(m)
    }

    fn spawn(&mut self) -> Result<()> {
        let proc = Proc::spawn(
            "collector",
            Command::new(cargo_bin("collector", "collector")?)
                .arg("--data")
                .arg(self.tmp.join("data"))
                .arg("--key-file")
                .arg(&self.key)
                .args(["--udp", &format!("127.0.0.1:{}", self.udp)])
                .args(["--http", &self.http.to_string()])
                .arg("--config")
                .arg(&self.config),
            &self.tmp.join("collector.log"),
        )?;
        wait_for("the collector's HTTP port", LIMIT, || {
            tcp_open(self.http).then_some(())
        })?;
        self.collector = Some(proc);
        Ok(())
    }

    fn restart(&mut self) -> Result<()> {
        drop(self.collector.take());
        wait_for("the old collector to let go of its port", LIMIT, || {
            (!tcp_open(self.http)).then_some(())
        })?;
        self.spawn()
    }

    /// The real client with `args`, as the gateway; must be acknowledged.
    fn client(&self, args: &[&str]) -> Result<String> {
        let out = run(
            Command::new(cargo_bin("gateway-client", "gateway-client")?)
                .args(["--name", GATEWAY, "-a", "127.0.0.1"])
                .args(["-p", &self.udp.to_string()])
                .arg("--key-file")
                .arg(&self.key)
                .args(args),
            LIMIT,
        )?;
        if !out.status.success() {
            return Err(Error::check(format!("{args:?} acknowledged"), text(&out)));
        }
        Ok(text(&out))
    }

    fn status(&self) -> Result<String> {
        Ok(http_get(self.http, "/status.json")?.1)
    }

    fn alerts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.alerts)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// webgen's status page on the collector's data and config.
    fn page(&self) -> Result<String> {
        let out = self.tmp.join("pages");
        let status = run(
            Command::new(cargo_bin("webgen", "webgen")?)
                .arg("--data")
                .arg(self.tmp.join("data"))
                .arg("--out")
                .arg(&out)
                .arg("--config")
                .arg(&self.config)
                .arg("-q"),
            LIMIT,
        )?;
        if !status.status.success() {
            return Err(Error::check("webgen runs", text(&status)));
        }
        read_file(&out.join("index.html"))
    }
}

/// The `silences` array of status.json, cut out whole.
fn silences(status: &str) -> &str {
    let rest = status.split("\"silences\":[").nth(1).unwrap_or("");
    rest.split(']').next().unwrap_or("")
}

#[test]
fn a_gateways_maintenance_holds_its_alerts_until_it_is_ended() -> Result<()> {
    let mut m = Monitor::start()?;
    let said = m.client(&["--maintenance", "1h", "-m", "kernel update"])?;
    if !said.contains("silenced until") {
        return Err(Error::check("the client says until when", said));
    }
    let s = m.status()?;
    let list = silences(&s);
    if !(list.contains(&format!("\"gateway\":\"{GATEWAY}\""))
        && list.contains("\"reason\":\"kernel update\"")
        && list.contains("\"origin\":\"gateway\"")
        && list.contains("\"origin\":\"config\""))
    {
        return Err(Error::check("both silences in status.json", s));
    }
    let series = format!("roctm_silenced{{gateway=\"{GATEWAY}\",roc=\"\"}}");
    let end = m.collector_metric(&series)?;
    let now = e2e::unix_now();
    if !(now + 3500..=now + 3700).contains(&end) {
        return Err(Error::check("the silence ends in an hour", end.to_string()));
    }

    // A restart while it is on: rebuilt from the logs.
    m.restart()?;
    let s = m.status()?;
    if !silences(&s).contains("\"origin\":\"gateway\"") {
        return Err(Error::check("the silence after a restart", s));
    }

    // The expected tunnel is missing: judged, but no alert is sent.
    m.client(&["-q"])?;
    wait_for("the expected tunnel judged missing", LIMIT, || {
        let s = m.status().ok()?;
        s.contains("\"state\":\"missing\"").then_some(())
    })?;
    let page = m.page()?;
    if !(page.contains("id=\"silences\"")
        && page.contains("kernel update")
        && page.contains("data-origin=\"gateway\"")
        && page.contains("control room move"))
    {
        return Err(Error::check("the silences on the page", page));
    }

    // Ended: the problem is still there, so its alert goes out now.
    m.client(&["--maintenance", "0", "-q"])?;
    let got = wait_for("the held alert sent", LIMIT, || {
        let a = m.alerts();
        (!a.is_empty()).then_some(a)
    })?;
    if got != [format!("tunnel_missing {PORT}")] {
        return Err(Error::check("one tunnel_missing alert", format!("{got:?}")));
    }
    let s = m.status()?;
    if silences(&s).contains("\"origin\":\"gateway\"") {
        return Err(Error::check("no gateway silence after --maintenance 0", s));
    }
    let page = m.page()?;
    if page.contains("data-origin=\"gateway\"") || !page.contains("data-origin=\"config\"") {
        return Err(Error::check("only the config's silence on the page", page));
    }
    Ok(())
}

impl Monitor {
    fn collector_metric(&self, series: &str) -> Result<u64> {
        let (code, body) = http_get(self.http, "/metrics")?;
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|_| code == 200)
            .map(|v| v as u64)
            .ok_or_else(|| Error::check(format!("{series} in /metrics"), body))
    }
}

#[test]
fn maintenance_without_a_reason_is_refused_before_sending() -> Result<()> {
    let tmp = TempDir::new("maintenance-usage")?;
    let out = run(
        Command::new(cargo_bin("gateway-client", "gateway-client")?)
            .args(["--maintenance", "2h", "--key-file"])
            .arg(tmp.join("no-key")),
        LIMIT,
    )?;
    let said = text(&out);
    if out.status.code() != Some(2) || !said.contains("--maintenance needs -m REASON") {
        return Err(Error::check("exit 2 naming -m REASON", said));
    }
    Ok(())
}
