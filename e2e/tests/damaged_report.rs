//! A damaged report is judged the same way by both products: the collector's
//! rebuild at start (its `status.json`) and webgen's page show the same
//! tunnels for the same logs.
//!
//! The logs are `testdata/logs/damaged/` (see `testdata/logs/README.md`): two
//! reports of three tunnels, the last tunnel row of the second one malformed.
//! The collector reads back only recent days, so the fixture's times are
//! shifted to end a minute ago and each row goes to the file of its new day.
//! Before the shared reader, the collector showed two tunnels (the valid
//! rows of the damaged report) and webgen three (the report before it).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{
    Collector, Error, Result, TempDir, cargo_bin, http_get, make_key, read_file, repo_root, run_ok,
    text, unix_now, write_file,
};

/// Copies the fixture's `prefix` file into `data`, every time column
/// (named in `times`) moved by `shift` seconds, each row into the file of
/// its new day. The fixture has no quoted fields.
fn shift_file(fixture: &Path, data: &Path, prefix: &str, times: &[&str], shift: u64) -> Result<()> {
    let text = read_file(&fixture.join(format!("{prefix}-2026-11-23.csv")))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let cols: Vec<usize> = header
        .split(',')
        .enumerate()
        .filter(|(_, name)| times.contains(name))
        .map(|(i, _)| i)
        .collect();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for line in lines {
        let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
        for &i in &cols {
            if let Ok(t) = fields[i].parse::<u64>() {
                fields[i] = (t + shift).to_string();
            }
        }
        let received: u64 = fields[0].parse().unwrap_or(0);
        let file = files
            .entry(e2e::utc_day(received))
            .or_insert_with(|| format!("{header}\n"));
        file.push_str(&fields.join(","));
        file.push('\n');
    }
    for (d, body) in files {
        write_file(&data.join(format!("{prefix}-{d}.csv")), &body)?;
    }
    Ok(())
}

/// The listen ports of the `listen_port` fields in a JSON text.
fn json_ports(json: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = json
        .split("\"listen_port\":")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    ports.sort();
    ports
}

/// The ports in the status page's tables of tunnels up now (the listen
/// cells, not those of the tunnels that went away).
fn page_ports(html: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = html
        .split("<td data-label=\"Listen\" class=\"listen\"><span class=\"port mono\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next()?.rsplit(':').next()?.parse().ok())
        .collect();
    ports.sort();
    ports
}

#[test]
fn the_collector_and_webgen_agree_on_a_damaged_report() -> Result<()> {
    let collector = cargo_bin("collector", "collector")?;
    let webgen = cargo_bin("webgen", "webgen")?;
    let tmp = TempDir::new("damaged-report")?;
    let data = tmp.join("data");
    std::fs::create_dir_all(&data).map_err(|e| Error::io("making", &data, e))?;
    // The fixture's heartbeat, its last row, is received a minute ago.
    let last = 1_795_428_120;
    let shift = unix_now() - 60 - last;
    let fixture = repo_root().join("testdata/logs/damaged");
    shift_file(&fixture, &data, "events", &["received", "sent"], shift)?;
    shift_file(&fixture, &data, "tunnels", &["received", "started"], shift)?;
    let key = make_key(&tmp.join("key"))?;

    let c = Collector::start(&collector, tmp.path(), &key)?;
    let (code, status) = http_get(c.http, "/status.json")?;
    if code != 200 {
        return Err(Error::check("status.json", status));
    }
    let from_collector = json_ports(&status);

    let site = tmp.join("site");
    let out = run_ok(
        Command::new(&webgen)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&site)
            .args(["--tz", "UTC"]),
        Duration::from_secs(60),
    )?;
    let html = read_file(&site.join("index.html"))?;
    let from_webgen = page_ports(&html);

    let want = vec![5901, 5902, 5903];
    if from_collector != want || from_webgen != want {
        return Err(Error::check(
            format!("the tunnels of the report before the damaged one, {want:?}, in both"),
            format!(
                "status.json {from_collector:?}, index.html {from_webgen:?}\n{status}\nwebgen: {}",
                text(&out)
            ),
        ));
    }
    if !text(&out).contains("skipped 1 report missing malformed tunnel rows") {
        return Err(Error::check(
            "webgen's warning about the damaged report",
            text(&out),
        ));
    }
    Ok(())
}
