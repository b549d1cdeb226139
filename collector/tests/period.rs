//! Period-aware staleness on the real collector: a gateway that declares a
//! period (2 s here) is late after 2.5 periods and down after 10, one that
//! declares none keeps the global thresholds, and a `[[gateway]]` of the
//! config file wins over both; `status.json` and `/metrics` give each
//! gateway's own thresholds, and a restart reads the periods back from the
//! logs.

mod common;

use common::*;
use gateway_client::wire::{self, MsgKind};

/// A heartbeat of `gateway` declaring `period`.
fn heartbeat(gateway: &str, period: Option<u32>) -> Vec<u8> {
    let mut b = body(MsgKind::Heartbeat, Vec::new());
    b.gateway = gateway.into();
    b.period = period;
    wire::encode(&key(), &b)
}

/// `gateway`'s object in status.json, up to its tunnels.
fn entry(c: &Collector, gateway: &str) -> String {
    let json = c.get("/status.json").body_text();
    json.split(&format!("{{\"name\":\"{gateway}\""))
        .nth(1)
        .and_then(|rest| rest.split("\"tunnels\":").next())
        .unwrap_or_else(|| panic!("{gateway} not in {json}"))
        .to_string()
}

fn thresholds(c: &Collector, gateway: &str) -> String {
    let e = entry(c, gateway);
    let from = e.find("\"period\":").unwrap_or_else(|| panic!("{e}"));
    e[from..].trim_end_matches(',').to_string()
}

#[test]
fn each_gateway_is_judged_by_its_period_or_its_table() {
    let dir = TempDir::new("period");
    let config = dir.path().join("monitor.toml");
    std::fs::write(&config, "[[gateway]]\nname = \"slow-gw\"\nlate = \"40s\"\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let mut c = Collector::start(dir.path(), &["--config", &config]);
    for (gw, period) in [(GW, Some(2)), ("slow-gw", Some(2)), ("cron-gw", None)] {
        assert!(c.send(&heartbeat(gw, period), 5).is_some());
    }
    let want = [
        (
            GW,
            r#""period":2,"late_after_seconds":5,"down_after_seconds":20"#,
        ),
        // Its table's late; its period's down (20 s) would come before
        // it, so down is four times late.
        (
            "slow-gw",
            r#""period":2,"late_after_seconds":40,"down_after_seconds":160"#,
        ),
        (
            "cron-gw",
            r#""period":null,"late_after_seconds":150,"down_after_seconds":600"#,
        ),
    ];
    for (gw, t) in want {
        assert_eq!(thresholds(&c, gw), t, "{gw}");
    }
    assert!(c.get("/metrics").body_text().contains(&format!(
        "roctm_gateway_late_after_seconds{{gateway=\"{GW}\"}} 5\n"
    )));
    // Silent for 5 s: late, while the others are still up.
    let late = wait_for(30, || {
        entry(&c, GW)
            .contains("\"state\":\"late\"")
            .then(|| entry(&c, "slow-gw"))
    });
    let slow = late.unwrap_or_else(|| panic!("{GW} never late: {}", entry(&c, GW)));
    assert!(slow.contains("\"state\":\"up\""), "{slow}");
    assert!(entry(&c, "cron-gw").contains("\"state\":\"up\""));

    // A restart reads the periods back from the logs.
    let (udp, http) = (c.udp, c.http);
    c.kill9();
    let c = Collector::start_on(dir.path(), udp, http, &["--config", &config]);
    for (gw, t) in want {
        assert_eq!(thresholds(&c, gw), t, "{gw} after a restart");
    }
    // A report without a period (the gateway back on cron) ends it.
    let mut b = body(MsgKind::Report, Vec::new());
    b.period = None;
    assert!(c.send(&wire::encode(&key(), &b), 5).is_some());
    assert_eq!(
        thresholds(&c, GW),
        r#""period":null,"late_after_seconds":150,"down_after_seconds":600"#
    );
}
