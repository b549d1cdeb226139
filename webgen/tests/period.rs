//! A gateway that declares a period is judged by it: late after 2.5
//! periods and down after 10, while one that declares none keeps the global
//! thresholds, and a `[[gateway]]` of the config file wins over both. On
//! logs captured from the real collector (`testdata/logs/watching/`): a
//! watching client at `--every 5` (period 6 s: late after 15 s, down after
//! 60 s) last heard at 20:40:45 UTC, and a one-shot client last heard at
//! 20:40:49.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use scraper::{Html, Selector};

const WATCHING: &str = "watching-gw";
const CRON: &str = "cron-gw";

fn out_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "period-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The status page at `now`, with `config` when given.
fn status_at(now: &str, config: Option<&str>) -> Html {
    let out = out_dir();
    let mut cmd = Command::cargo_bin("webgen").unwrap();
    cmd.arg("--data")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/logs/watching"))
        .arg("--out")
        .arg(&out)
        .args(["--now", now, "--tz", "UTC", "-q"]);
    match config {
        Some(text) => {
            std::fs::create_dir_all(&out).unwrap();
            let file = out.join("monitor.toml");
            std::fs::write(&file, text).unwrap();
            cmd.arg("--config").arg(file)
        }
        None => cmd.args(["--config", "/dev/null"]),
    };
    cmd.assert().success();
    Html::parse_document(&std::fs::read_to_string(out.join("index.html")).unwrap())
}

/// The state the page gives `gateway`, and its "judged by" note.
fn gateway(page: &Html, gateway: &str) -> (String, String) {
    let panel = page
        .select(&Selector::parse(&format!("section.gateway[data-gateway=\"{gateway}\"]")).unwrap())
        .next()
        .unwrap_or_else(|| panic!("no panel for {gateway}"));
    let judged = panel
        .select(&Selector::parse(".judged").unwrap())
        .next()
        .map(|e| e.text().collect())
        .unwrap_or_default();
    (
        panel.value().attr("data-state").unwrap().to_string(),
        judged,
    )
}

#[test]
fn a_watching_gateway_is_late_after_two_and_a_half_periods() {
    let at = |now| {
        let page = status_at(now, None);
        (gateway(&page, WATCHING), gateway(&page, CRON).0)
    };
    let ((state, judged), cron) = at("2026-12-06T20:40:59Z");
    assert_eq!((state.as_str(), cron.as_str()), ("up", "up"));
    assert_eq!(
        judged,
        "reports at least every 6 s: late after 15 s, down after 1 min"
    );
    let ((state, _), cron) = at("2026-12-06T20:41:00Z");
    assert_eq!((state.as_str(), cron.as_str()), ("late", "up"));
    let ((state, _), cron) = at("2026-12-06T20:41:45Z");
    assert_eq!((state.as_str(), cron.as_str()), ("down", "up"));
    // Silent 2 min 31 s: the cron gateway reaches the global late.
    let ((state, _), cron) = at("2026-12-06T20:43:20Z");
    assert_eq!((state.as_str(), cron.as_str()), ("down", "late"));
}

#[test]
fn a_gateway_table_in_the_config_wins_over_the_period() {
    let page = status_at(
        "2026-12-06T20:41:45Z",
        Some("[[gateway]]\nname = \"watching-gw\"\nlate = \"5m\"\n"),
    );
    let (state, judged) = gateway(&page, WATCHING);
    assert_eq!(state, "up");
    assert_eq!(
        judged,
        "reports at least every 6 s: late after 5 min, down after 20 min"
    );
    // No period, no table: the global thresholds, no note.
    assert_eq!(gateway(&page, CRON), ("up".into(), String::new()));
}
