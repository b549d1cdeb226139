//! `contrib/prometheus/` and `contrib/grafana/`: the alerting rules pass
//! their unit tests (`promtool test rules alerts_test.yml`), and the example
//! configuration, the rules and every query of the Grafana dashboard work
//! against a real Prometheus (started here on 127.0.0.1 with a free port and
//! a temporary storage folder) that scraped a real collector fed by the real
//! gateway-client: each dashboard query returns data, each rule evaluates
//! without error.
//!
//! Needs the Debian packages prometheus (prometheus and promtool) and
//! python3 (reads the dashboard's JSON: tests/support/dashboard_queries.py).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::{
    Collector, Error, Proc, Result, TempDir, cargo_bin, free_tcp_port, http_get, make_key,
    need_tool, read_file, repo_root, run_ok, tcp_open, unix_now, wait_for, write_file,
};

const LIMIT: Duration = Duration::from_secs(90);
const GW: &str = "e2e-contrib-gateway-02";

fn contrib(path: &str) -> PathBuf {
    repo_root().join("contrib").join(path)
}

#[test]
fn promtool_passes_the_alert_rule_unit_tests() -> Result<()> {
    let promtool = need_tool("promtool", "prometheus")?;
    let dir = contrib("prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["check", "config", "prometheus.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        run_ok(
            Command::new(&promtool).args(args).current_dir(&dir),
            Duration::from_secs(120),
        )?;
    }
    Ok(())
}

/// `text` with `from` replaced by `to`, which must be there.
fn replace(text: &str, from: &str, to: &str) -> Result<String> {
    if !text.contains(from) {
        return Err(Error::check(
            format!("'{from}' in contrib/prometheus/prometheus.yml (update this test with it)"),
            text,
        ));
    }
    Ok(text.replace(from, to))
}

/// `s` for a URL's query string.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One query of the dashboard: (kind, title, refId, text).
fn dashboard_queries() -> Result<Vec<(String, String, String, String)>> {
    let python = need_tool("python3", "python3")?;
    let out = run_ok(
        Command::new(python)
            .arg(repo_root().join("e2e/tests/support/dashboard_queries.py"))
            .arg(contrib("grafana/roc-tunnels.json")),
        Duration::from_secs(60),
    )?;
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let queries: Vec<_> = printed
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            (f.len() == 4).then(|| {
                (
                    f[0].to_string(),
                    f[1].to_string(),
                    f[2].to_string(),
                    f[3].to_string(),
                )
            })
        })
        .collect();
    if queries.iter().filter(|q| q.0 == "panel").count() < 10 {
        return Err(Error::check("the dashboard's queries", printed));
    }
    Ok(queries)
}

/// A panel's query as Grafana sends it with the gateway variable set to
/// `GW`: its variables replaced; none may be left.
fn as_sent(expr: &str) -> Result<String> {
    let sent = expr
        .replace("$__rate_interval", "1m")
        .replace("${gateway}", GW)
        .replace("$gateway", GW);
    if sent.contains('$') {
        return Err(Error::check(
            "only $gateway and $__rate_interval in the dashboard's queries",
            expr,
        ));
    }
    Ok(sent)
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() -> Result<()> {
    let prometheus = need_tool("prometheus", "prometheus")?;
    let queries = dashboard_queries()?;
    let collector = cargo_bin("collector", "collector")?;
    let client = cargo_bin("gateway-client", "gateway-client")?;
    let tmp = TempDir::new("prometheus")?;
    let key = make_key(&tmp.join("collector.key"))?;
    // An inventory (one expected tunnel, missing: no such forward here)
    // and a silence in force, for the panels of expected tunnels and
    // silences.
    let config = tmp.join("monitor.toml");
    let now = unix_now();
    write_file(
        &config,
        &format!(
            "[[silence]]\nroc = \"Caltech\"\nfrom = \"{}\"\nuntil = \"{}\"\nreason = \"control room move\"\n\n\
             [[tunnel]]\ngateway = \"{GW}\"\nlisten = 5977\ntarget = \"novadaq-e2e-vnc:5901\"\nroc = \"Caltech\"\n",
            e2e::utc_rfc3339(now - 60),
            e2e::utc_rfc3339(now + 3600)
        ),
    )?;
    let c = Collector::start_with(
        &collector,
        tmp.path(),
        &key,
        &["--config".as_ref(), config.as_os_str()],
    )?;

    // A gateway reports and sends a heartbeat, as from cron.
    for extra in [&[][..], &["-b"][..]] {
        run_ok(
            Command::new(&client)
                .args(["-a", "127.0.0.1", "-p", &c.udp.port().to_string()])
                .args(["--name", GW, "-q"])
                .arg("--key-file")
                .arg(&key)
                .args(extra),
            LIMIT,
        )?;
    }

    // Prometheus with the shipped configuration: only the target, the
    // intervals and the rule file's path changed.
    let shipped = read_file(&contrib("prometheus/prometheus.yml"))?;
    let config = replace(&shipped, "'127.0.0.1:9556'", &format!("'{}'", c.http))?;
    let config = replace(&config, "scrape_interval: 15s", "scrape_interval: 1s")?;
    let config = replace(
        &config,
        "evaluation_interval: 15s",
        "evaluation_interval: 1s",
    )?;
    let config = replace(
        &config,
        "  - alerts.yml",
        &format!("  - {}", contrib("prometheus/alerts.yml").display()),
    )?;
    let config_file = tmp.join("prometheus.yml");
    write_file(&config_file, &config)?;
    let web = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()?));
    let mut prom = Proc::spawn(
        "prometheus",
        Command::new(prometheus)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}")),
        &tmp.join("prometheus.log"),
    )?;
    wait_for("Prometheus to listen", LIMIT, || {
        (tcp_open(web) || prom.exited().is_some()).then_some(())
    })?;
    if prom.exited().is_some() {
        return Err(prom.fail("Prometheus exited at start"));
    }

    // Enough scrapes for a rate: five of the gateway's series.
    let enough = format!(
        "/api/v1/query?query={}",
        encode(&format!(
            "count_over_time(roctm_gateway_tunnels{{gateway=\"{GW}\"}}[1m]) >= 5"
        ))
    );
    wait_for("five scrapes of the collector", LIMIT, || {
        let (code, body) = http_get(web, &enough).ok()?;
        (code == 200 && body.contains(GW)).then_some(())
    })
    .map_err(|e| prom.fail(&e.to_string()))?;

    // Every panel's query, as Grafana asks for a graph: a range query.
    let end = unix_now();
    let start = end.saturating_sub(60);
    let mut empty = Vec::new();
    for (kind, title, ref_id, expr) in &queries {
        if kind != "panel" {
            continue;
        }
        let sent = as_sent(expr)?;
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step=1",
            encode(&sent)
        );
        let (code, body) = http_get(web, &path)?;
        let data = code == 200
            && body.contains("\"status\":\"success\"")
            && !body.contains("\"result\":[]")
            && (!expr.contains("$gateway") || body.contains(&format!("\"gateway\":\"{GW}\"")));
        if !data {
            empty.push(format!("{title} ({ref_id}): {sent}\n  HTTP {code} {body}"));
        }
    }
    if !empty.is_empty() {
        return Err(Error::check(
            "data for every panel's query",
            empty.join("\n"),
        ));
    }

    // The template variables: label_values(METRIC, LABEL) lists the gateway.
    for (kind, name, _, definition) in &queries {
        if kind != "variable" {
            continue;
        }
        let args = definition
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .and_then(|d| d.rsplit_once(','))
            .ok_or_else(|| {
                Error::check(format!("variable {name}: label_values(M, L)"), definition)
            })?;
        let path = format!(
            "/api/v1/label/{}/values?match[]={}",
            args.1.trim(),
            encode(args.0.trim())
        );
        let (code, body) = http_get(web, &path)?;
        if code != 200 || !body.contains(&format!("\"{GW}\"")) {
            return Err(Error::check(
                format!("{GW} among the values of the variable {name}"),
                format!("HTTP {code} {body}"),
            ));
        }
    }

    // The rules were loaded and evaluate on the real series without error.
    let rules = read_file(&contrib("prometheus/alerts.yml"))?
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert: "))
        .count();
    let mut last = String::new();
    wait_for("every rule evaluated", LIMIT, || {
        let (_, body) = http_get(web, "/api/v1/rules").ok()?;
        let ok = body.matches("\"health\":\"ok\"").count() == rules
            && !body.contains("\"health\":\"err\"");
        last = body;
        ok.then_some(())
    })
    .map_err(|e| {
        Error::check(
            format!("{e}: {rules} rules with health ok"),
            format!("{last}\nprometheus log:\n{}", prom.log()),
        )
    })?;

    Ok(())
}
