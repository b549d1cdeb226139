//! The pages' facts, checked by parsing the HTML the real `webgen` binary
//! writes from the fixture logs in `testdata/logs/` (described, with the
//! facts they hold, in `testdata/logs/README.md`).
//!
//! Pages are parsed with `scraper` (html5ever, the same tree-building rules
//! as a browser), so a check reads a table cell or a badge, and injected
//! markup would show up as elements, not as a string that happens to match.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use scraper::{ElementRef, Html, Selector};

/// "now" for the fixtures: 2026-11-23 18:00:00 UTC = 12:00 in Chicago.
const NOW: &str = "2026-11-23T18:00:00Z";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/logs")
        .join(name)
}

fn fresh_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "pages-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

struct Run {
    out: PathBuf,
    stdout: String,
    stderr: String,
}

impl Run {
    fn page(&self, name: &str) -> Html {
        let text = std::fs::read_to_string(self.out.join(name)).unwrap();
        Html::parse_document(&text)
    }
}

fn webgen(data: &Path, extra: &[&str]) -> Run {
    let out = fresh_dir("out");
    let assert = Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(&out)
        .args(["--now", NOW, "--tz", "America/Chicago"])
        .args(extra)
        .assert()
        .success();
    let o = assert.get_output();
    Run {
        out,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

/// The whitespace-normalised text of an element.
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

fn gateway_panel<'a>(doc: &'a Html, name: &str) -> ElementRef<'a> {
    doc.select(&sel("section.gateway"))
        .find(|e| e.value().attr("data-gateway") == Some(name))
        .unwrap_or_else(|| panic!("no panel for {name}"))
}

/// A tunnel row by its listen column, as (column class → text).
fn tunnel_row<'a>(panel: ElementRef<'a>, listen: &str) -> ElementRef<'a> {
    panel
        .select(&sel("tr.tunnel"))
        .find(|r| texts(*r, "td.listen .port") == [listen])
        .unwrap_or_else(|| panic!("no tunnel listening on {listen}"))
}

fn cell(row: ElementRef<'_>, class: &str) -> String {
    text(one(row, &format!("td.{class}")))
}

const FAR: &str = "novadaq-far-gateway-01";
const NEAR: &str = "novadaq-near-gateway-01";

#[test]
fn status_page_shows_gateways_and_tunnels_now() {
    let run = webgen(&fixture("two-gateways"), &[]);
    let doc = run.page("index.html");
    let root = doc.root_element();

    // Panels with their state: down and late gateways before up ones.
    let panels: Vec<(String, String)> = root
        .select(&sel("section.gateway"))
        .map(|p| {
            (
                p.value().attr("data-gateway").unwrap().to_string(),
                text(one(p, ".badge.state")),
            )
        })
        .collect();
    assert_eq!(
        panels,
        [
            (NEAR.to_string(), "down".to_string()),
            (FAR.to_string(), "up".to_string())
        ]
    );
    // Without an inventory the top names the gateway that is down.
    assert_eq!(
        texts(root, "#problems .silent"),
        [format!("down {NEAR} last heard 20 min ago")]
    );
    assert!(
        root.select(&sel("#problems .problem, section.roc"))
            .next()
            .is_none()
    );

    let far = gateway_panel(&doc, FAR);
    assert_eq!(
        text(one(far, ".lastheard")),
        "last heard 20 s ago (2026-11-23 11:59:40 CST)"
    );
    // Three tunnels now: the orphan row's 5920 and the gone 5902 are not here,
    // and the incomplete last-but-two report did not end 5901 or 5910.
    assert_eq!(
        texts(far, "tr.tunnel td.listen .port"),
        ["5900", "5901", "127.0.0.1:5910"]
    );
    let a = tunnel_row(far, "5900");
    assert_eq!(cell(a, "target"), "novadaq-far-master-02:5951 :51");
    assert_eq!(text(one(a, ".vncd")), ":51");
    assert_eq!(cell(a, "owner"), "novacr01");
    assert_eq!(cell(a, "dest"), "novadaq-far-master-02");
    // Since its first report of the day before: the run was never broken.
    assert_eq!(cell(a, "since"), "2026-11-22 16:00 (19 h 59 min)");
    assert_eq!(cell(a, "listening"), "✓ yes");
    assert_eq!(cell(a, "vnc"), "✓ yes");
    assert!(!a.value().classes().any(|c| c == "broken"));

    let b = tunnel_row(far, "5901");
    assert!(b.value().classes().any(|c| c == "broken"));
    assert_eq!(cell(b, "vnc"), "✗ no");
    assert_eq!(cell(b, "since"), "2026-11-23 11:30 (29 min)");

    let c = tunnel_row(far, "127.0.0.1:5910");
    assert!(c.value().classes().any(|c| c == "broken"));
    assert_eq!(cell(c, "listening"), "✗ no");
    assert_eq!(cell(c, "vnc"), "? unknown");
    assert_eq!(cell(c, "target"), "novadaq-far-dcm-01:5999 :99");
    assert_eq!(cell(c, "since"), "2026-11-23 11:40 (19 min)");
    assert_eq!(text(one(far, ".badge.broken")), "2 broken");

    // The down gateway: its last report's tunnels, marked as possibly stale.
    let near = gateway_panel(&doc, NEAR);
    assert!(text(one(near, ".stalenote")).contains("as of its last report at 2026-11-23 11:39"));
    assert_eq!(texts(near, "tr.tunnel td.listen .port"), ["1080", "5900"]);
    assert_eq!(cell(tunnel_row(near, "1080"), "target"), "SOCKS (dynamic)");
    assert_eq!(
        cell(tunnel_row(near, "5900"), "since"),
        "2026-11-22 15:00 (20 h 59 min)"
    );

    // Went away recently: the gateway, then tunnels newest first.
    let gone = one(root, "#gone");
    assert_eq!(
        texts(gone, "table.gone-gateways tbody td"),
        [
            format!("{NEAR} down"),
            "2026-11-23 11:39 (20 min ago)".to_string()
        ]
    );
    let rows: Vec<Vec<String>> = gone
        .select(&sel("table.gone-tunnels tbody tr"))
        .map(|r| texts(r, "td"))
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0][0], "2026-11-23 11:45 (14 min ago)");
    assert_eq!(rows[0][1], FAR);
    assert_eq!(rows[0][2], "5902");
    assert_eq!(rows[0][5], "2026-11-23 11:30 – 2026-11-23 11:44 (14 min)");
    assert_eq!(
        (
            rows[1][1].as_str(),
            rows[1][2].as_str(),
            rows[1][4].as_str()
        ),
        (NEAR, "5903", "müller")
    );
    assert_eq!(rows[2][0], "2026-11-22 15:03 (20 h 56 min ago)");
    assert_eq!(rows[2][2], "5905");

    // Messages, newest first, as text: the script tag is not an element.
    let msgs: Vec<String> = root
        .select(&sel("#messages .msgs li .text"))
        .map(|e| e.text().collect())
        .collect();
    assert_eq!(
        msgs,
        [
            "<script>alert(1)</script> \"double\" & 'single' quotes — Grüße aus Ash River, café ✓ Ω\nsecond line",
            "Shift change: novacr02 handed over to ROC-West",
        ]
    );
    assert_eq!(
        root.select(&sel("script")).count(),
        2,
        "only the page's own scripts (the stale banner, following changes)"
    );

    // Page furniture.
    // It follows changes: with JavaScript by fetching itself every few
    // seconds, without it by a meta refresh well under 10 s (in a noscript,
    // so that it does not reload a page that follows by itself).
    assert_eq!(root.select(&sel("meta[http-equiv=refresh]")).count(), 0);
    assert!(
        // A parser with scripting on (as this one and browsers with
        // JavaScript) reads a noscript as text.
        text(one(root, "head noscript")) == r#"<meta http-equiv="refresh" content="5">"#,
        "{}",
        one(root, "head").inner_html()
    );
    assert_eq!(root.value().attr("data-generated"), Some("1795456800"));
    assert_eq!(
        text(one(root, "header .gen")),
        "Generated 2026-11-23 12:00:00 CST · times in America/Chicago (CST, UTC-06:00) · follows changes within seconds"
    );
    assert!(one(root, "#stale").value().attr("hidden").is_some());
    assert_eq!(text(one(root, "#malformed")), "5 malformed rows skipped");

    // Bad rows are counted on stderr, one line per file; the run succeeded.
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{}", run.stderr);
    assert!(warnings[0].starts_with("webgen: warning: "));
    assert!(warnings[0].contains(
        "events-2026-11-23.csv: skipped 2 malformed rows (first at line 11: column 'seq'"
    ));
    assert!(warnings[1].contains("tunnels-2026-11-23.csv: skipped 3 malformed rows (first at line 41: column 'listen_port': '59x0'"));
    assert!(run.stdout.contains("2 gateways"), "{}", run.stdout);
}

/// Self-contained: nothing is fetched, no JavaScript needed for content.
fn assert_self_contained(doc: &Html) {
    let root = doc.root_element();
    if let Some(e) = root
        .select(&sel("[src], link, iframe, object, embed, img"))
        .next()
    {
        panic!("external resource: {}", e.html());
    }
    for e in root.select(&sel("[href]")) {
        let href = e.value().attr("href").unwrap();
        assert!(
            href.starts_with('#') || href == "index.html" || href == "history.html",
            "link out of the site: {href}"
        );
    }
    for e in root.select(&sel("[style]")) {
        assert!(!e.value().attr("style").unwrap().contains("url("));
    }
    assert!(!text(one(root, "style")).contains("url("));
    assert!(!text(one(root, "style")).contains("@import"));
}

#[test]
fn late_between_thresholds() {
    // Two and a half minutes after the far gateway's last report (17:59:40
    // UTC): past the late threshold of 150 s, not yet the down one of 600 s.
    let out = fresh_dir("late");
    Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(fixture("two-gateways"))
        .arg("--out")
        .arg(&out)
        .args(["--now", "2026-11-23T18:02:11Z", "--tz", "UTC", "-q"])
        .assert()
        .success();
    let doc = Html::parse_document(&std::fs::read_to_string(out.join("index.html")).unwrap());
    let far = gateway_panel(&doc, FAR);
    assert_eq!(far.value().attr("data-state"), Some("late"));
    assert_eq!(
        text(one(far, ".lastheard")),
        "last heard 2 min ago (2026-11-23 17:59:40 UTC)"
    );
    assert!(text(one(far, ".stalenote")).contains("as of its last report at 2026-11-23 17:59"));
    assert_eq!(
        gateway_panel(&doc, NEAR).value().attr("data-state"),
        Some("down")
    );
    // The footer gives the thresholds exactly: 150 s is not "2 min".
    let footer = text(one(doc.root_element(), "footer"));
    assert!(
        footer.contains("A gateway is late when not heard for 2 min 30 s, down after 10 min;"),
        "{footer}"
    );
    // With --late 5m it is up again.
    Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(fixture("two-gateways"))
        .arg("--out")
        .arg(&out)
        .args(["--now", "2026-11-23T18:02:11Z", "--late", "5m", "-q"])
        .assert()
        .success();
    let doc = Html::parse_document(&std::fs::read_to_string(out.join("index.html")).unwrap());
    assert_eq!(
        gateway_panel(&doc, FAR).value().attr("data-state"),
        Some("up")
    );
}

#[test]
fn pages_are_self_contained() {
    let run = webgen(&fixture("two-gateways"), &[]);
    assert_self_contained(&run.page("index.html"));
    assert_self_contained(&run.page("history.html"));
}

#[test]
fn history_page_ranges_availability_sessions() {
    let run = webgen(&fixture("two-gateways"), &["--range", "2h"]);
    let doc = run.page("history.html");
    let root = doc.root_element();
    let ids: Vec<&str> = root
        .select(&sel("section.range"))
        .map(|s| s.value().attr("id").unwrap())
        .collect();
    assert_eq!(ids, ["r-24h", "r-7d", "r-30d", "r-2h"]);
    assert_eq!(
        texts(root, ".rangenav a"),
        [
            "Last 24 hours",
            "Last 7 days",
            "Last 30 days",
            "Last 2 hours"
        ]
    );

    let day = one(root, "#r-24h");
    // The logs start 2026-11-22 21:00:10 UTC, less than 24 h before now.
    assert_eq!(
        text(one(day, ".longer")),
        "The logs only go back to 2026-11-22 15:00 (20 h 59 min), less than this range: the earlier part of it has no data."
    );
    let far = day
        .select(&sel("section.gateway"))
        .find(|g| g.value().attr("data-gateway") == Some(FAR))
        .unwrap();
    // Window 2026-11-22 22:00:40 .. 18:00:00 = 71,960 s; silent 69,660 s
    // (22:09:40 to 17:30:40): 2,300 / 71,960 = 3.196 %.
    assert_eq!(text(one(far, ".availability")), "3.19 %");
    assert_eq!(text(one(far, ".silent")), "19 h 21 min");
    // 10 + 30 complete reports: the duplicate counted once, the two-part
    // report counted, the incomplete one not.
    assert_eq!(text(one(far, ".reports")), "40");
    let bars: Vec<(String, bool)> = far
        .select(&sel("li.session"))
        .map(|li| {
            (
                text(one(li, ".label")),
                li.value().classes().any(|c| c == "open"),
            )
        })
        .collect();
    assert_eq!(
        bars,
        [
            (
                "novacr01 · 5900 → novadaq-far-master-02:5951 :51".to_string(),
                true
            ),
            (
                "novacr02 · 5901 → novadaq-far-master-02:5952 :52".to_string(),
                true
            ),
            (
                "novacr03 · 5902 → novadaq-far-master-03:5953 :53".to_string(),
                false
            ),
            // Running, but not listening: not up.
            (
                "rocuser · 127.0.0.1:5910 → novadaq-far-dcm-01:5999 :99".to_string(),
                false
            ),
        ]
    );
    let rocuser = far
        .select(&sel("li.session"))
        .find(|li| text(one(*li, ".label")).starts_with("rocuser"))
        .unwrap();
    assert!(rocuser.value().classes().any(|c| c == "broken"));
    let last_bar = rocuser.select(&sel(".bar")).last().unwrap();
    assert!(
        last_bar.value().classes().any(|c| c == "broken")
            && last_bar
                .value()
                .attr("title")
                .unwrap()
                .ends_with("still running but not listening"),
        "{:?}",
        last_bar.value()
    );
    assert_eq!(
        far.select(&sel(".bar.open")).count(),
        2,
        "5900 and 5901 are still up"
    );
    // The chart's title and legend say the same thing.
    assert_eq!(texts(far, "h4")[0], "Tunnels up");
    assert!(texts(far, "p.legend")[0].starts_with("tunnels up in each report"));
    assert_eq!(
        far.select(&sel(".chart svg polyline")).count(),
        2,
        "two stretches of reports, split by the silence"
    );
    assert_eq!(far.select(&sel(".chart svg rect.silence")).count(), 1);

    let near = day
        .select(&sel("section.gateway"))
        .find(|g| g.value().attr("data-gateway") == Some(NEAR))
        .unwrap();
    // Window 2026-11-22 21:00:10 .. 18:00:00 = 75,590 s; silent 72,900 s
    // (21:05:10 to 17:20:10) + 1,250 s still silent: 1,440 / 75,590 = 1.905 %.
    assert_eq!(text(one(near, ".availability")), "1.90 %");
    assert_eq!(text(one(near, ".reports")), "26");
    let silences: Vec<Vec<String>> = near
        .select(&sel("table.silences tbody tr"))
        .map(|r| texts(r, "td"))
        .collect();
    assert_eq!(
        silences,
        [
            ["2026-11-23 11:39", "still silent", "20 min"],
            ["2026-11-22 15:05", "2026-11-23 11:20", "20 h 15 min"],
        ]
    );
    assert_eq!(day.select(&sel(".messages .msgs li")).count(), 2);

    // Two hours: covered by the data, so no note; availability over it.
    let two = one(root, "#r-2h");
    assert!(two.select(&sel(".longer")).next().is_none());
    let avail: Vec<(String, String)> = two
        .select(&sel("section.gateway"))
        .map(|g| {
            (
                g.value().attr("data-gateway").unwrap().to_string(),
                text(one(g, ".availability")),
            )
        })
        .collect();
    // far: silent 16:00–17:30:40 = 5,440 of 7,200 s; near: 4,810 + 1,250.
    assert_eq!(
        avail,
        [
            (FAR.to_string(), "24.44 %".to_string()),
            (NEAR.to_string(), "15.83 %".to_string()),
        ]
    );
}

#[test]
fn network_text_is_never_markup() {
    let run = webgen(&fixture("hostile"), &[]);
    for page in ["index.html", "history.html"] {
        let doc = run.page(page);
        let root = doc.root_element();
        assert_eq!(root.select(&sel("img")).count(), 0, "{page}");
        // The page's own: the stale banner; on the status page also the
        // one that follows changes.
        let own = if page == "index.html" { 2 } else { 1 };
        assert_eq!(root.select(&sel("script")).count(), own, "{page}");
        assert_eq!(root.select(&sel("h2 b, h3 b")).count(), 0, "{page}");
        assert_eq!(texts(root, "h1"), ["ROC tunnel monitor"], "{page}");
        let panel = gateway_panel(&doc, "gw-\"quoted\"<b>bold</b>");
        assert_eq!(
            texts(panel, "h2, h3"),
            ["gw-\"quoted\"<b>bold</b>"],
            "{page}"
        );
    }
    let doc = run.page("index.html");
    let panel = gateway_panel(&doc, "gw-\"quoted\"<b>bold</b>");
    let row = tunnel_row(panel, "5950");
    assert_eq!(cell(row, "owner"), "<img src=x onerror=alert(3)>");
    assert_eq!(cell(row, "target"), "<script>alert(4)</script>:5901 :1");
    assert_eq!(cell(row, "dest"), "evil&amp;host");
    assert_eq!(
        texts(doc.root_element(), "#messages .msgs li .text"),
        ["</li></ul><h1>injected</h1> ストップ"]
    );
}

#[test]
fn no_data_yet_for_missing_or_empty_dir() {
    let missing = fresh_dir("missing");
    let empty = fresh_dir("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not a log").unwrap();
    for data in [&missing, &empty] {
        let run = webgen(data, &[]);
        for page in ["index.html", "history.html"] {
            let doc = run.page(page);
            let root = doc.root_element();
            assert!(
                text(one(root, "#no-data")).starts_with("No data yet."),
                "{page}"
            );
            assert_eq!(root.select(&sel("section.gateway")).count(), 0);
        }
        if data == &missing {
            // A typo in --data: still the page, but one line naming it.
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
            assert!(
                run.stderr.starts_with("webgen: warning: ")
                    && run.stderr.contains(&missing.display().to_string())
                    && run.stderr.contains("--data"),
                "{}",
                run.stderr
            );
        } else {
            assert_eq!(run.stderr, "");
        }
        assert!(
            run.stdout.contains("(0 gateways, 0 log files,"),
            "{}",
            run.stdout
        );
    }
    // One gateway is one gateway.
    let run = webgen(&fixture("hostile"), &[]);
    assert!(run.stdout.contains("(1 gateway, "), "{}", run.stdout);
    let run = webgen(&fixture("two-gateways"), &[]);
    assert!(run.stdout.contains("(2 gateways, "), "{}", run.stdout);
}

#[test]
fn templates_dir_overrides_and_still_escapes() {
    let dir = fresh_dir("templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<p id=n>{{ gateways|length }}</p>{% for x in messages %}<p class=m>{{ x.text }}</p>{% endfor %}",
    )
    .unwrap();
    let run = webgen(
        &fixture("two-gateways"),
        &["--templates", dir.to_str().unwrap()],
    );
    let doc = run.page("index.html");
    let root = doc.root_element();
    assert_eq!(text(one(root, "#n")), "2");
    assert_eq!(root.select(&sel("script")).count(), 0);
    assert!(texts(root, "p.m")[0].starts_with("<script>alert(1)</script>"));
    // history.html is not in the directory: the built-in one is used.
    let hist = run.page("history.html");
    assert_eq!(hist.root_element().select(&sel("section.range")).count(), 3);
}

#[test]
fn pages_replace_old_ones_and_leave_no_temporary_files() {
    let run = webgen(&fixture("two-gateways"), &[]);
    std::fs::write(run.out.join("index.html"), "old").unwrap();
    Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(fixture("hostile"))
        .arg("--out")
        .arg(&run.out)
        .args(["--now", NOW, "-q"])
        .assert()
        .success()
        .stdout("");
    let mut names: Vec<String> = std::fs::read_dir(&run.out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The pages, and the cache of the closed days (never served: the
    // collector serves only the site's plain files).
    assert_eq!(names, [".webgen-cache", "history.html", "index.html"]);
    for e in std::fs::read_dir(run.out.join(".webgen-cache")).unwrap() {
        assert_eq!(e.unwrap().file_name(), "checkpoint.bin");
    }
    assert!(
        std::fs::read_to_string(run.out.join("index.html"))
            .unwrap()
            .contains("gw-")
    );
}

#[test]
fn bad_command_lines_get_one_line_and_exit_2() {
    for args in [
        vec!["--out", "x"],
        vec!["--data", "d", "--out", "o", "--late", "soon"],
        vec!["--data", "d", "--out", "o", "--tz", "Mars/Base"],
        vec!["--data", "d", "--out", "o", "--now", "yesterday"],
        vec!["--data", "d", "--out", "o", "--bogus"],
        vec![
            "--data",
            "d",
            "--out",
            "o",
            "--templates",
            "/nonexistent/templates",
        ],
    ] {
        let out = Command::cargo_bin("webgen")
            .unwrap()
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("webgen: "), "{err}");
        // The message names the bad value and points at a cure.
        if args.contains(&"--tz") {
            assert!(
                err.contains("Mars/Base") && err.contains("America/Chicago"),
                "{err}"
            );
        }
        if args.contains(&"--templates") {
            assert!(err.contains("/nonexistent/templates"), "{err}");
        }
    }
    let help = Command::cargo_bin("webgen")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .contains("EXIT STATUS")
    );
}

#[test]
fn unwritable_output_is_exit_1() {
    let blocker = fresh_dir("blocker");
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let out = Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(fixture("hostile"))
        .arg("--out")
        .arg(blocker.join("sub"))
        .args(["--now", NOW])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("webgen: ") && err.contains("cannot write"),
        "{err}"
    );
}

/// Logs of one report from gateway `gw` at 2026-11-23 17:59:50 UTC with
/// `n` tunnels (owner `uI`, port 10000 + I), the last `broken` of them not
/// listening.
fn many_tunnels(n: u32, broken: u32) -> PathBuf {
    let data = fresh_dir("many");
    std::fs::create_dir_all(&data).unwrap();
    let t = 1_795_456_790u64;
    std::fs::write(
        data.join("events-2026-11-23.csv"),
        format!(
            "received,gateway,kind,seq,part,parts,sent,source,tunnels,text\n{t},gw,report,1,1,1,{t},a,{n},\n"
        ),
    )
    .unwrap();
    let mut rows = String::from(
        "received,gateway,seq,part,pid,user,kind,bind,listen_port,target_host,target_port,dest,started,start,cpu_time,listening,vnc\n",
    );
    for i in 0..n {
        let listening = if i >= n - broken { "no" } else { "yes" };
        rows.push_str(&format!(
            "{t},gw,1,1,{},u{i},L,,{},h,5901,h,,,,{listening},unknown\n",
            1000 + i,
            10_000 + i
        ));
    }
    std::fs::write(data.join("tunnels-2026-11-23.csv"), rows).unwrap();
    data
}

#[test]
fn long_tunnel_lists_are_cut_keeping_the_broken_ones() {
    // One report of 250 tunnels, the two with the highest ports broken.
    let run = webgen(&many_tunnels(250, 2), &[]);
    let doc = run.page("index.html");
    let panel = gateway_panel(&doc, "gw");
    let ports = texts(panel, "tr.tunnel td.listen .port");
    assert_eq!(ports.len(), 200);
    assert_eq!(ports[0], "10000");
    assert_eq!(ports[198..], ["10248", "10249"]);
    assert_eq!(
        texts(panel, "p.more"),
        ["50 more healthy tunnels not listed (250 tunnels in all)."]
    );
}

#[test]
fn history_shows_every_row_and_counts_only_listening_tunnels_up() {
    // 250 tunnels in one report, the last two not listening.
    let run = webgen(&many_tunnels(250, 2), &[]);
    let doc = run.page("history.html");
    let day = one(doc.root_element(), "#r-24h");
    let gw = day
        .select(&sel("section.gateway"))
        .find(|g| g.value().attr("data-gateway") == Some("gw"))
        .unwrap();
    // The chart counts the 248 listening ones.
    assert_eq!(texts(gw, ".chart .ylab span"), ["248", "0"]);
    // 40 rows drawn, the other 210 listed in a collapsed <details>.
    let drawn = texts(gw, "li.session .label b");
    let hidden = texts(gw, "details.more-lanes li.hidden-lane b");
    assert_eq!((drawn.len(), hidden.len()), (40, 210));
    assert_eq!(
        text(one(gw, "details.more-lanes summary")),
        "210 more rows of 250, seen longest ago (not drawn)"
    );
    assert!(
        one(gw, "details.more-lanes").value().attr("open").is_none(),
        "collapsed"
    );
    let mut all: Vec<String> = drawn.into_iter().chain(hidden).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 250, "every owner once");
    // The two that do not listen are marked, wherever they are listed.
    let mut broken: Vec<String> = gw
        .select(&sel("li.session.broken .label b, li.hidden-lane.broken b"))
        .map(text)
        .collect();
    broken.sort();
    assert_eq!(broken, ["u248", "u249"]);
    for li in gw.select(&sel("li.hidden-lane.broken")) {
        assert!(
            text(li).ends_with("still running but not listening"),
            "{}",
            text(li)
        );
    }
}

/// stdout and stderr on a pipe whose reader is gone (as under cron when the
/// mailer died) or on a full disk: webgen still writes the pages and exits
/// 0 (or 2 for a bad command line), never 101 from a panicking print.
#[test]
fn a_dead_output_pipe_does_not_make_webgen_panic() {
    let run = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        std::process::Command::new(env!("CARGO_BIN_EXE_webgen"))
            .args(args)
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .status()
            .unwrap()
            .code()
    };
    let out = fresh_dir("dead-pipe");
    let data = fixture("two-gateways");
    let data = data.to_str().unwrap();
    let out_s = out.to_str().unwrap();
    assert_eq!(
        run(&["--data", data, "--out", out_s, "--now", NOW]),
        Some(0)
    );
    assert!(out.join("index.html").exists());
    assert_eq!(run(&["--help"]), Some(0));
    assert_eq!(run(&["--bogus"]), Some(2));
}

/// The `connections` fixture (see its README): who is on each tunnel now,
/// the stretches in use, and the idle ones.
#[test]
fn who_is_on_each_tunnel_and_idle_ones() {
    let run = webgen(&fixture("connections"), &["--idle-after", "20m"]);
    let doc = run.page("index.html");
    let panel = gateway_panel(&doc, FAR);
    let in_use = |port: &str| cell(tunnel_row(panel, port), "inuse");
    assert_eq!(in_use("5901"), "in use: 1 — novaroc1");
    assert_eq!(in_use("5902"), "idle");
    assert_eq!(in_use("5903"), "unknown");
    assert_eq!(in_use("5904"), "idle");
    assert_eq!(
        in_use("5905"),
        "in use: 7 — 10.1.2.3, 10.1.2.4, 192.0.2.200, 2001:db8::15, novaroc1 and 2 more"
    );
    assert_eq!(run.stderr, "", "an older day's file is read without a word");

    // The stretches in use on the lanes of the last 24 hours, first to last
    // report in use (Unix seconds).
    let doc = run.page("history.html");
    let day = one(doc.root_element(), "#r-24h");
    let marks = |port: &str| -> Vec<(u64, u64)> {
        let lane = day
            .select(&sel("li.session"))
            .find(|l| texts(*l, ".label .mono").first().map(String::as_str) == Some(port))
            .unwrap_or_else(|| panic!("no lane for {port}"));
        lane.select(&sel(".use"))
            .map(|u| {
                let n = |a: &str| u.value().attr(a).unwrap().parse::<u64>().unwrap();
                (n("data-first"), n("data-last"))
            })
            .collect()
    };
    // 17:10:40–17:29:40 and 17:40:40–17:59:40 UTC.
    assert_eq!(
        marks("5901"),
        [
            (1_795_453_840, 1_795_454_980),
            (1_795_455_640, 1_795_456_780)
        ]
    );
    assert_eq!(marks("5902"), []);
    assert_eq!(marks("5903"), []);
    assert_eq!(marks("5905"), [(1_795_453_240, 1_795_456_780)]);

    // Idle for 20 minutes up to their last report: 5902 since 17:00:40
    // (the reports of the day before, from an older client, did not know),
    // 5904 since 17:30:40; the R forward never.
    let idle = |extra: &[&str]| -> Vec<(String, String)> {
        let run = webgen(&fixture("connections"), extra);
        let doc = run.page("history.html");
        doc.select(&sel("#idle tr.idle-tunnel"))
            .map(|r| {
                let a = |n: &str| r.value().attr(n).unwrap().to_string();
                (a("data-listen"), a("data-since"))
            })
            .collect()
    };
    let own = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|&(a, b)| (a.into(), b.into())).collect()
    };
    assert_eq!(
        idle(&["--idle-after", "20m"]),
        own(&[("5902", "1795453240"), ("5904", "1795455040")])
    );
    assert_eq!(
        idle(&["--idle-after", "30m"]),
        own(&[("5902", "1795453240")])
    );
    assert_eq!(idle(&[]), own(&[]), "the default: 7 days");
}
