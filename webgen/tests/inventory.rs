//! The inventory on the pages, checked in the DOM of what the real `webgen`
//! writes from `testdata/logs/inventory/` with its `monitor.toml` (the
//! facts, computed by hand, are in `testdata/logs/README.md`): the problems
//! first, the ROC panels, the tunnels not in the inventory, each ROC's
//! availability and outages, `--suggest-inventory` loaded back, and the
//! config file's errors and precedence.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use scraper::{ElementRef, Html, Selector};

const NOW: &str = "2026-11-23T18:00:00Z";
const FAR: &str = "novadaq-far-gateway-01";
const NEAR: &str = "novadaq-near-gateway-01";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/logs/inventory")
}

fn config() -> PathBuf {
    fixture().join("monitor.toml")
}

fn fresh_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "inventory-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs webgen on the fixture with `extra` arguments; returns the output
/// folder.
fn webgen(extra: &[&str]) -> PathBuf {
    let out = fresh_dir("out");
    Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(fixture())
        .arg("--out")
        .arg(&out)
        .args(["--now", NOW, "-q"])
        .args(extra)
        .assert()
        .success();
    out
}

fn page(out: &Path, name: &str) -> Html {
    Html::parse_document(&std::fs::read_to_string(out.join(name)).unwrap())
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef<'_>) -> String {
    e.text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn texts(root: ElementRef<'_>, css: &str) -> Vec<String> {
    root.select(&sel(css)).map(text).collect()
}

fn one<'a>(root: ElementRef<'a>, css: &str) -> ElementRef<'a> {
    let s = sel(css);
    let mut it = root.select(&s);
    let first = it.next().unwrap_or_else(|| panic!("no '{css}'"));
    assert!(it.next().is_none(), "more than one '{css}'");
    first
}

fn attr(e: ElementRef<'_>, name: &str) -> String {
    e.value().attr(name).unwrap_or_default().to_string()
}

#[test]
fn the_problems_come_first() {
    let out = webgen(&["--config", config().to_str().unwrap()]);
    let doc = page(&out, "index.html");
    let root = doc.root_element();
    let main = one(root, "main");

    // The problems block is the first thing in the page's main part.
    let first = main.children().filter_map(ElementRef::wrap).next().unwrap();
    assert_eq!(attr(first, "id"), "problems");
    let problems = one(root, "#problems");
    assert_eq!(
        text(one(problems, ".headline")),
        "2 of 4 expected tunnels not up (1 wrong target, 1 unknown)"
    );
    // Known problems first, then unknown; each with ROC, station, gateway,
    // port, state and since (America/Chicago, from the config file).
    let items: Vec<(String, String, String, String)> = problems
        .select(&sel("li.problem"))
        .map(|li| {
            (
                attr(li, "data-state"),
                attr(li, "data-gateway"),
                attr(li, "data-listen"),
                text(one(li, ".since time")),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (
                "wrong_target".into(),
                FAR.into(),
                "5903".into(),
                "2026-11-23 11:20".into()
            ),
            (
                "unknown".into(),
                NEAR.into(),
                "5901".into(),
                "2026-11-23 11:25".into()
            ),
        ]
    );
    let unknown = problems.select(&sel("li.problem")).nth(1).unwrap();
    assert_eq!(text(one(unknown, ".roc")), "Minnesota");
    assert_eq!(text(one(unknown, ".station")), "near-master-01 :1");
    assert!(text(unknown).contains("its gateway is down, last heard 49 min ago"));
    let wrong = problems.select(&sel("li.problem")).next().unwrap();
    assert!(text(wrong).contains("the port leads to novadaq-far-dcm-02:5903"));
    // The summary names the gateway that is down.
    assert_eq!(
        texts(problems, ".silent"),
        [format!("down {NEAR} last heard 49 min ago")]
    );
}

#[test]
fn rocs_then_gateways_with_the_tunnels_not_in_the_inventory_marked() {
    let out = webgen(&["--config", config().to_str().unwrap()]);
    let doc = page(&out, "index.html");
    let root = doc.root_element();
    // A panel per ROC, in the inventory's order, with its tunnels' states.
    let rocs: Vec<(String, String)> = root
        .select(&sel("section.roc"))
        .map(|r| (attr(r, "data-roc"), text(one(r, ".rocsum"))))
        .collect();
    assert_eq!(
        rocs,
        [
            ("Caltech".into(), "2 of 2 up".into()),
            ("Minnesota".into(), "0 of 2 up".into())
        ]
    );
    let caltech = root.select(&sel("section.roc")).next().unwrap();
    let states: Vec<(String, String, String)> = caltech
        .select(&sel("tr.expected"))
        .map(|r| {
            (
                attr(r, "data-listen"),
                attr(r, "data-state"),
                text(one(r, "td.since time")),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("5901".into(), "up".into(), "2026-11-23 10:00".into()),
            ("5902".into(), "up".into(), "2026-11-23 10:50".into())
        ]
    );

    // Gateways: down first; tunnels not in the inventory marked, the
    // expected ones not.
    let gateways: Vec<String> = root
        .select(&sel("section.gateway"))
        .map(|g| attr(g, "data-gateway"))
        .collect();
    assert_eq!(gateways, [NEAR, FAR]);
    let far = root
        .select(&sel("section.gateway"))
        .find(|g| attr(*g, "data-gateway") == FAR)
        .unwrap();
    let marked: Vec<String> = far
        .select(&sel("tr.tunnel.not-expected"))
        .map(|r| attr(r, "data-listen-port"))
        .collect();
    // 6000 matches no entry; 5903 leads to another target than its entry's.
    assert_eq!(marked, ["5903", "6000"]);
    assert_eq!(
        texts(far, "tr.not-expected .notinv"),
        ["not in the inventory", "not in the inventory"]
    );
    assert_eq!(far.select(&sel("tr.tunnel")).count(), 4);
}

#[test]
fn all_up_says_so_in_one_line() {
    // An inventory of the far gateway's two Caltech tunnels only.
    let dir = fresh_dir("all-up");
    std::fs::create_dir_all(&dir).unwrap();
    let text_of = std::fs::read_to_string(config()).unwrap();
    let caltech: String = text_of
        .split("[[tunnel]]")
        .filter(|part| part.contains("Caltech") || !part.contains("gateway ="))
        .collect::<Vec<_>>()
        .join("[[tunnel]]");
    let path = dir.join("caltech.toml");
    std::fs::write(&path, caltech).unwrap();
    let out = webgen(&["--config", path.to_str().unwrap()]);
    let doc = page(&out, "index.html");
    let problems = one(doc.root_element(), "#problems");
    assert_eq!(text(one(problems, "#all-up")), "All 2 expected tunnels up");
    assert!(problems.select(&sel("li.problem")).next().is_none());
    // The gateway that is down is still named at the top.
    assert_eq!(texts(problems, ".silent .badge"), ["down"]);
}

#[test]
fn history_gives_each_roc_its_availability_and_outages() {
    let out = webgen(&["--config", config().to_str().unwrap()]);
    let doc = page(&out, "history.html");
    let range = one(doc.root_element(), "#r-24h");
    let roc = |name: &str| {
        range
            .select(&sel("section.roc-history"))
            .find(|r| attr(*r, "data-roc") == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    // (state, start, end) of each outage listed in a ROC's panel.
    let outages = |panel: ElementRef<'_>| -> Vec<(String, String, String)> {
        panel
            .select(&sel("tr.outage"))
            .map(|r| {
                (
                    attr(r, "data-state"),
                    text(one(r, "td.start")),
                    text(one(r, "td.end")),
                )
            })
            .collect()
    };
    // Caltech: 5901 up 7,200 s; 5902 up 6,000 of 7,200 s (missing 10 min,
    // broken 10 min): 13,200 / 14,400.
    let caltech = roc("Caltech");
    assert_eq!(text(one(caltech, ".availability")), "91.66 %");
    assert_eq!(text(one(caltech, ".known-time")), "4 h 00 min");
    assert_eq!(
        outages(caltech),
        [
            (
                "broken".into(),
                "2026-11-23 10:40".into(),
                "2026-11-23 10:50 (10 min, then up)".into()
            ),
            (
                "missing".into(),
                "2026-11-23 10:30".into(),
                "2026-11-23 10:40 (10 min, then broken)".into()
            ),
        ]
    );
    // Minnesota: 5903 up 4,800 of 7,200 s; near 5901 up 2,100 of 3,600 s
    // known (its gateway's silence and the time since it went late are
    // unknown, in neither): 6,900 / 10,800.
    let minnesota = roc("Minnesota");
    assert_eq!(text(one(minnesota, ".availability")), "63.88 %");
    assert_eq!(text(one(minnesota, ".known-time")), "3 h 00 min");
    assert_eq!(
        outages(minnesota),
        [
            (
                "wrong_target".into(),
                "2026-11-23 11:20".into(),
                "ongoing (40 min)".into()
            ),
            (
                "missing".into(),
                "2026-11-23 11:00".into(),
                "2026-11-23 11:25 (25 min, then unknown)".into()
            ),
        ]
    );
}

#[test]
fn without_a_config_file_there_is_no_inventory() {
    let out = webgen(&["--late", "15m", "--down", "30m", "--tz", "UTC"]);
    let doc = page(&out, "index.html");
    let root = doc.root_element();
    assert!(
        root.select(&sel("section.roc, li.problem, .notinv"))
            .next()
            .is_none()
    );
    assert_eq!(
        texts(root, "#problems .silent"),
        [format!("down {NEAR} last heard 49 min ago")]
    );
    let history = page(&out, "history.html");
    assert!(history.select(&sel("section.roc-history")).next().is_none());
}

#[test]
fn flags_override_the_config_file() {
    // The file's tz is America/Chicago and late 15 min; --tz UTC and
    // --late 5m win: the far gateway, last heard 10 min before now, is late.
    let out = webgen(&[
        "--config",
        config().to_str().unwrap(),
        "--tz",
        "UTC",
        "--late",
        "5m",
    ]);
    let doc = page(&out, "index.html");
    let root = doc.root_element();
    let far = root
        .select(&sel("section.gateway"))
        .find(|g| attr(*g, "data-gateway") == FAR)
        .unwrap();
    assert_eq!(attr(far, "data-state"), "late");
    assert!(text(one(root, "header .gen")).contains("times in UTC"));
    // Its expected tunnels are unknown from its last report + 5 min.
    let since: Vec<String> = root
        .select(&sel("li.problem"))
        .filter(|li| attr(*li, "data-gateway") == FAR)
        .map(|li| text(one(li, ".since time")))
        .collect();
    assert_eq!(since, ["2026-11-23 17:55"; 3]);
}

#[test]
fn a_bad_config_file_is_exit_2_with_file_and_line() {
    let dir = fresh_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("monitor.toml");
    std::fs::write(
        &bad,
        "late = \"2m\"\n\n[[tunnel]]\ngateway = \"g\"\nlisten = 0\n",
    )
    .unwrap();
    for extra in [&[][..], &["--suggest-inventory", "7d"][..]] {
        let out = Command::cargo_bin("webgen")
            .unwrap()
            .args(["--data", "d", "--out", "o", "--config"])
            .arg(&bad)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("webgen: {}:", bad.display())),
            "{err}"
        );
    }
    let out = Command::cargo_bin("webgen")
        .unwrap()
        .args([
            "--data",
            "d",
            "--out",
            "o",
            "--config",
            "/nonexistent/monitor.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("/nonexistent/monitor.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn a_suggested_inventory_loads_and_is_all_up() {
    let thresholds = ["--late", "15m", "--down", "30m"];
    let out = Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(fixture())
        .args(["--suggest-inventory", "7d", "--now", NOW, "--tz", "UTC"])
        .args(thresholds)
        .output()
        .unwrap();
    assert!(out.status.success());
    let suggested = String::from_utf8(out.stdout).unwrap();
    let dir = fresh_dir("suggest");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("suggested.toml");
    std::fs::write(&path, &suggested).unwrap();
    let loaded = logs::config::load(&path).unwrap();
    // Up at least 80 % of the 2 h the logs cover, and up now: 5901 (100 %),
    // 5902 (83.33 %) and 6000 (100 %); not 5903 (66.66 %, wrong target now)
    // nor the near gateway's 5901 (down now).
    let ports: Vec<(String, u16)> = loaded
        .tunnels
        .iter()
        .map(|e| (e.gateway.clone(), e.listen))
        .collect();
    assert_eq!(
        ports,
        [(FAR.into(), 5901), (FAR.into(), 5902), (FAR.into(), 6000)]
    );
    assert_eq!(loaded.tunnels[0].roc, "novacr01");
    assert_eq!(loaded.tunnels[0].owner.as_deref(), Some("novacr01"));
    assert!(suggested.contains("name the ROC"), "{suggested}");
    // Loaded back as the inventory: all up on the same logs.
    let site = webgen(&[
        "--config",
        path.to_str().unwrap(),
        "--tz",
        "UTC",
        "--late",
        "15m",
        "--down",
        "30m",
    ]);
    let doc = page(&site, "index.html");
    let root = doc.root_element();
    assert_eq!(text(one(root, "#all-up")), "All 3 expected tunnels up");
    let states: Vec<String> = root
        .select(&sel("tr.expected"))
        .map(|r| attr(r, "data-state"))
        .collect();
    assert_eq!(states, ["up"; 3]);
}
