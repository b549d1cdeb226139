//! The inventory end to end: the real collector started with a config file
//! that lists four expected tunnels of one gateway, the real client run
//! live on this machine, where fake ssh processes (the `fake-ssh` binary of
//! this crate, `ssh` in `ps`) hold real forwards:
//!
//! 1. one expected tunnel is there and listens (`up`), one is there but
//!    does not listen (`broken`), one's port leads to another host
//!    (`wrong_target`), one is absent (`missing`): `status.json`'s
//!    `expected`, `/metrics`' `roctm_expected_tunnel_up` and the notify
//!    command's environment say so;
//! 2. the broken one is restarted (a new pid, now listening) and the missing
//!    one started: both are `tunnel_restored`, all `up` but the wrong one;
//! 3. the config file is edited while the collector runs: within 10 s it
//!    logs what it loaded and judges by the new list; a bad edit is refused
//!    with `FILE:LINE`, counted, and the previous list stays;
//! 4. a bad config file at start is exit 2 with `FILE:LINE`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{
    Error, Proc, Result, TempDir, cargo_bin, free_tcp_port, free_udp_port, http_get, make_key,
    read_file, run, tcp_open, text, wait_for, write_file,
};

const GATEWAY: &str = "e2e-inventory-gw";
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

fn entry(port: u16, target: &str, roc: &str, station: &str) -> String {
    format!(
        "[[tunnel]]\ngateway = \"{GATEWAY}\"\nlisten = {port}\ntarget = \"{target}\"\nroc = \"{roc}\"\nstation = \"{station}\"\n\n"
    )
}

/// The `expected` objects of status.json, each as its own text, by listen
/// port (the JSON is flat enough to cut at `{"gateway":`).
fn expected(http: SocketAddr) -> Result<Vec<(u16, String)>> {
    let (code, body) = http_get(http, "/status.json")?;
    if code != 200 {
        return Err(Error::check("status.json", body));
    }
    let list = body.split("\"expected\":[").nth(1).unwrap_or("");
    Ok(list
        .split("{\"gateway\":")
        .skip(1)
        .filter_map(|o| {
            let port = o.split("\"listen\":").nth(1)?;
            let port: String = port.chars().take_while(char::is_ascii_digit).collect();
            Some((port.parse().ok()?, o.to_string()))
        })
        .collect())
}

fn state_of(list: &[(u16, String)], port: u16) -> String {
    list.iter()
        .find(|(p, _)| *p == port)
        .and_then(|(_, o)| o.split("\"state\":\"").nth(1)?.split('"').next())
        .unwrap_or("(absent)")
        .to_string()
}

/// Waits until status.json says `want` (port, state) for every pair.
fn wait_states(http: SocketAddr, want: &[(u16, &str)], log: &dyn Fn() -> String) -> Result<()> {
    let mut last = Vec::new();
    let got = wait_for("the expected states", LIMIT, || {
        last = expected(http).ok()?;
        want.iter()
            .all(|(p, s)| state_of(&last, *p) == *s)
            .then_some(())
    });
    got.map_err(|_| {
        Error::check(
            format!("expected tunnels {want:?}"),
            format!("{last:?}\n{}", log()),
        )
    })
}

fn metric(http: SocketAddr, series: &str) -> Option<String> {
    let (_, body) = http_get(http, "/metrics").ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_string)
}

#[test]
fn expected_tunnels_missing_broken_wrong_then_restored_and_the_config_edited() -> Result<()> {
    let collector = cargo_bin("collector", "collector")?;
    let client = cargo_bin("gateway-client", "gateway-client")?;
    let tmp = TempDir::new("inventory")?;
    let key = make_key(&tmp.join("key"))?;
    let [p_up, p_broken, p_wrong, p_missing] = [
        free_tcp_port()?,
        free_tcp_port()?,
        free_tcp_port()?,
        free_tcp_port()?,
    ];
    let config = tmp.join("monitor.toml");
    let inventory = [
        entry(p_up, "novadaq-e2e-vnc-01:5901", "Caltech", "vnc-01 :1"),
        entry(p_broken, "novadaq-e2e-vnc-02:5902", "Fermilab", "vnc-02 :2"),
        entry(p_wrong, "novadaq-e2e-vnc-03:5903", "Caltech", "vnc-03 :3"),
        entry(
            p_missing,
            "novadaq-e2e-vnc-04:5904",
            "Minnesota",
            "vnc-04 :4",
        ),
    ];
    write_file(&config, &format!("late = \"2m\"\n\n{}", inventory.concat()))?;

    // A bad config at start: exit 2, FILE:LINE.
    write_file(&tmp.join("bad.toml"), "late = \"2m\"\nlisten = 5901\n")?;
    let data = tmp.join("data");
    let out = run(
        Command::new(&collector)
            .arg("--data")
            .arg(&data)
            .arg("--key-file")
            .arg(&key)
            .arg("--config")
            .arg(tmp.join("bad.toml")),
        LIMIT,
    )?;
    let said = text(&out);
    if out.status.code() != Some(2) || !said.contains("bad.toml:2: unknown field `listen`") {
        return Err(Error::check("exit 2 naming bad.toml:2", said));
    }

    let alerts = tmp.join("alerts");
    std::fs::create_dir(&alerts).map_err(|e| Error::io("making", &alerts, e))?;
    // Written under a dot name, then renamed: the test lists the folder
    // and reads each file as soon as it appears, so it must appear whole.
    let notify = format!(
        "f={0}/$ROCTM_EVENT-$ROCTM_LISTEN-$$; env | grep ^ROCTM_ | sort > {0}/.part-$$ && mv {0}/.part-$$ $f",
        alerts.display()
    );
    let udp = free_udp_port()?;
    let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()?));
    let log_path = tmp.join("collector.log");
    let _c = Proc::spawn(
        "collector",
        Command::new(&collector)
            .arg("--data")
            .arg(&data)
            .arg("--key-file")
            .arg(&key)
            .args([
                "--udp",
                &format!("127.0.0.1:{udp}"),
                "--http",
                &http.to_string(),
            ])
            .arg("--config")
            .arg(&config)
            .args(["--notify", &notify, "--hold", "0"]),
        &log_path,
    )?;
    let log = || read_file(&log_path).unwrap_or_default();
    wait_for("the collector's HTTP port", LIMIT, || {
        tcp_open(http).then_some(())
    })?;
    if !log().contains("started: ") {
        return Err(Error::check("a start line", log()));
    }

    let _up = fake_ssh(tmp.path(), p_up, "novadaq-e2e-vnc-01:5901", true)?;
    let broken = fake_ssh(tmp.path(), p_broken, "novadaq-e2e-vnc-02:5902", false)?;
    let _wrong = fake_ssh(tmp.path(), p_wrong, "novadaq-e2e-elsewhere:5999", true)?;
    let report = || -> Result<()> {
        let out = run(
            Command::new(&client)
                .args([
                    "--name",
                    GATEWAY,
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &udp.to_string(),
                    "-q",
                ])
                .arg("--key-file")
                .arg(&key),
            LIMIT,
        )?;
        if !out.status.success() {
            return Err(Error::check("the client's report acknowledged", text(&out)));
        }
        Ok(())
    };

    // 1. One of each.
    report()?;
    wait_states(
        http,
        &[
            (p_up, "up"),
            (p_broken, "broken"),
            (p_wrong, "wrong_target"),
            (p_missing, "missing"),
        ],
        &log,
    )?;
    let list = expected(http)?;
    let wrong = &list.iter().find(|(p, _)| *p == p_wrong).unwrap().1;
    if !wrong.contains("\"target_host\":\"novadaq-e2e-elsewhere\"")
        || !wrong.contains("\"roc\":\"Caltech\"")
    {
        return Err(Error::check(
            "the wrong target's tunnel record and its ROC",
            wrong.clone(),
        ));
    }
    let missing = &list.iter().find(|(p, _)| *p == p_missing).unwrap().1;
    if !missing.contains("\"tunnel\":null") || !missing.contains("\"station\":\"vnc-04 :4\"") {
        return Err(Error::check(
            "a missing tunnel without a record",
            missing.clone(),
        ));
    }
    for (port, want) in [
        (p_up, "1"),
        (p_broken, "0"),
        (p_wrong, "0"),
        (p_missing, "0"),
    ] {
        let roc = if port == p_broken {
            "Fermilab"
        } else if port == p_missing {
            "Minnesota"
        } else {
            "Caltech"
        };
        let series = format!(
            "roctm_expected_tunnel_up{{gateway=\"{GATEWAY}\",listen=\"{port}\",roc=\"{roc}\"}}"
        );
        if metric(http, &series).as_deref() != Some(want) {
            return Err(Error::check(
                format!("{series} {want}"),
                format!("{:?}", metric(http, &series)),
            ));
        }
    }
    let alert = |event: &str, port: u16| -> Result<String> {
        let prefix = format!("{event}-{port}-");
        wait_for(&format!("the {event} alert for {port}"), LIMIT, || {
            std::fs::read_dir(&alerts).ok()?.flatten().find_map(|f| {
                let name = f.file_name().into_string().ok()?;
                name.starts_with(&prefix)
                    .then(|| std::fs::read_to_string(f.path()).ok())?
            })
        })
    };
    let env = alert("tunnel_missing", p_missing)?;
    for want in [
        "ROCTM_ROC=Minnesota".to_string(),
        "ROCTM_STATION=vnc-04 :4".into(),
        format!("ROCTM_LISTEN={p_missing}"),
        "ROCTM_TARGET=novadaq-e2e-vnc-04:5904".into(),
        "ROCTM_STATE=missing".into(),
        format!("ROCTM_GATEWAY={GATEWAY}"),
    ] {
        if !env.lines().any(|l| l == want) {
            return Err(Error::check(
                format!("{want} in the alert's environment"),
                env,
            ));
        }
    }
    alert("tunnel_broken", p_broken)?;
    let env = alert("tunnel_broken", p_wrong)?;
    if !env.contains("ROCTM_STATE=wrong_target") {
        return Err(Error::check("ROCTM_STATE=wrong_target", env));
    }

    // 2. Restored: a new pid on the broken one's port, the missing one started.
    drop(broken);
    let _fixed = fake_ssh(tmp.path(), p_broken, "novadaq-e2e-vnc-02:5902", true)?;
    let _found = fake_ssh(tmp.path(), p_missing, "novadaq-e2e-vnc-04:5904", true)?;
    report()?;
    wait_states(
        http,
        &[
            (p_up, "up"),
            (p_broken, "up"),
            (p_wrong, "wrong_target"),
            (p_missing, "up"),
        ],
        &log,
    )?;
    alert("tunnel_restored", p_broken)?;
    alert("tunnel_restored", p_missing)?;

    // 3. The config edited: the wrong one dropped, a new entry on a free
    // port (missing at once). Within 10 s (three reads a second are plenty).
    let p_new = free_tcp_port()?;
    let edited = format!(
        "late = \"2m\"\n\n{}{}{}{}",
        inventory[0],
        inventory[1],
        inventory[3],
        entry(p_new, "novadaq-e2e-vnc-05:5905", "Fermilab", "vnc-05 :5")
    );
    write_file(&config, &edited)?;
    wait_states(
        http,
        &[(p_up, "up"), (p_wrong, "(absent)"), (p_new, "missing")],
        &log,
    )?;
    let loaded = format!(
        "config {}: 4 expected tunnels on 1 gateway",
        config.display()
    );
    if !log().contains(&loaded) {
        return Err(Error::check(loaded, log()));
    }
    // A bad edit: refused, counted, the list stays.
    write_file(&config, &format!("{edited}colour = \"red\"\n"))?;
    let counted = wait_for("the refused edit counted", LIMIT, || {
        (metric(http, "roctm_collector_config_reload_errors_total").as_deref() == Some("1"))
            .then_some(())
    });
    let line = edited.lines().count() + 1;
    let refused = format!("{}:{line}: ", config.display());
    if counted.is_err() || !log().contains(&refused) || !log().contains("previous config stays") {
        return Err(Error::check(
            format!("{refused}... logged and counted"),
            log(),
        ));
    }
    wait_states(
        http,
        &[(p_up, "up"), (p_new, "missing"), (p_wrong, "(absent)")],
        &log,
    )?;
    Ok(())
}
