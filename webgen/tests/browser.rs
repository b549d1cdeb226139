//! Both pages in a real headless Chromium (Debian's `chromium` package),
//! with JavaScript on and off, at a desktop's 1280 px and a phone's 390 px:
//! what the browser built is read back with `--dump-dom` and checked, and
//! screenshots are kept under `target/screenshots/` for people to look at.
//!
//! Chromium missing is a failure with a clear message, never a skip: set
//! `CHROMIUM=/path/to/chromium` or `apt-get install chromium`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use scraper::{Html, Selector};

const NOW: &str = "2026-11-23T18:00:00Z";
const WIDTHS: [u32; 2] = [1280, 390];

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "chromium not found (looked at $CHROMIUM, /usr/bin/chromium, /usr/bin/chromium-browser): \
         install Debian's chromium package (apt-get install -y chromium)"
    );
}

fn target_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs chromium headless with a fresh profile, killing it after 90 s.
/// JavaScript off is the profile's content setting "block JavaScript", as
/// a user would set it (`--blink-settings=scriptEnabled=false` also stops
/// `--dump-dom` itself from working).
fn run_chromium(js: bool, args: &[String]) -> std::process::Output {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "chromium-profile-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&profile);
    if !js {
        std::fs::create_dir_all(profile.join("Default")).unwrap();
        std::fs::write(
            profile.join("Default/Preferences"),
            r#"{"profile":{"default_content_setting_values":{"javascript":2}}}"#,
        )
        .unwrap();
    }
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
            // Let the page's script run before the DOM is dumped.
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {args:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn site(tag: &str, now: Option<&str>) -> PathBuf {
    site_of("two-gateways", tag, now)
}

/// The pages of the fixture logs `testdata/logs/FIXTURE`.
fn site_of(fixture: &str, tag: &str, now: Option<&str>) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-{tag}"));
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = assert_cmd::Command::cargo_bin("webgen").unwrap();
    cmd.arg("--data")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../testdata/logs")
                .join(fixture),
        )
        .arg("--out")
        .arg(&out)
        .args(["--tz", "America/Chicago", "-q"]);
    if let Some(now) = now {
        cmd.args(["--now", now]);
    }
    cmd.assert().success();
    out
}

/// A page that loads `page` in an iframe exactly `width` px wide and
/// records, after layout, whether anything in it is wider than that (headless
/// Chromium keeps its window at least 500 px wide, so the window alone cannot
/// show a phone's 390 px). Needs `--allow-file-access-from-files`.
fn overflow_probe(dir: &Path, page: &str, width: u32) -> PathBuf {
    let html = format!(
        r#"<!doctype html><html><body style="margin:0">
<iframe id="f" src="{page}" style="width:{width}px;height:900px;border:0"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  var d = this.contentDocument, w = d.documentElement.clientWidth, wide = [];
  d.querySelectorAll("body *").forEach(function (e) {{
    var r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1) wide.push(e.tagName + "." + e.className);
  }});
  document.body.setAttribute("data-viewport", w);
  document.body.setAttribute("data-scroll-width", d.documentElement.scrollWidth);
  document.body.setAttribute("data-too-wide", wide.slice(0, 5).join(" "));
}});
</script></body></html>"#
    );
    let path = dir.join(format!("probe-{width}-{page}"));
    std::fs::write(&path, html).unwrap();
    path
}

fn url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

fn dump_dom(page: &Path, width: u32, js: bool) -> Html {
    let args = vec![
        format!("--window-size={width},900"),
        "--dump-dom".into(),
        url(page),
    ];
    let out = run_chromium(js, &args);
    assert!(
        !out.stdout.is_empty(),
        "chromium dumped no DOM for {}",
        page.display()
    );
    Html::parse_document(&String::from_utf8_lossy(&out.stdout))
}

fn screenshot(page: &Path, width: u32, js: bool, name: &str) -> PathBuf {
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    let _ = std::fs::remove_file(&file);
    let args = vec![
        format!("--window-size={width},1800"),
        format!("--screenshot={}", file.display()),
        url(page),
    ];
    run_chromium(js, &args);
    let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name} is a PNG");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(w, width, "{name} width");
    file
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn count(doc: &Html, css: &str) -> usize {
    doc.select(&sel(css)).count()
}

fn stale_hidden(doc: &Html) -> bool {
    doc.select(&sel("#stale"))
        .next()
        .expect("#stale banner")
        .value()
        .attr("hidden")
        .is_some()
}

#[test]
fn pages_in_headless_chromium() {
    // Generated "at" a fixed moment long past: the stale-page warning must
    // show with JavaScript and stay hidden (but the time is printed) without.
    let dir = site("fixed", Some(NOW));
    for page in ["index.html", "history.html"] {
        let stem = page.trim_end_matches(".html");
        for width in WIDTHS {
            for js in [true, false] {
                let what = format!(
                    "{page} at {width} px, JavaScript {}",
                    if js { "on" } else { "off" }
                );
                let doc = dump_dom(&dir.join(page), width, js);
                assert_eq!(count(&doc, "header .gen"), 1, "{what}");
                assert_eq!(stale_hidden(&doc), !js, "stale warning, {what}");
                if js {
                    let banner: String =
                        doc.select(&sel("#stale")).next().unwrap().text().collect();
                    assert!(
                        banner.contains("has not been refreshed"),
                        "{what}: {banner}"
                    );
                }
                match page {
                    "index.html" => {
                        assert_eq!(count(&doc, "section.gateway"), 2, "{what}");
                        assert_eq!(count(&doc, "section.gateway tr.tunnel"), 5, "{what}");
                        assert_eq!(count(&doc, "tr.tunnel.broken"), 2, "{what}");
                        assert_eq!(count(&doc, "#messages .msgs li"), 2, "{what}");
                        if js {
                            assert_eq!(count(&doc, "script"), 2, "{what}");
                        }
                    }
                    _ => {
                        assert_eq!(count(&doc, "section.range"), 3, "{what}");
                        assert_eq!(count(&doc, "#r-24h .chart svg polyline"), 4, "{what}");
                    }
                }
                let shot = format!("{stem}-{width}-js-{}.png", if js { "on" } else { "off" });
                screenshot(&dir.join(page), width, js, &shot);
            }
            // Nothing wider than the viewport at either width.
            let doc = dump_dom(&overflow_probe(&dir, page, width), width, true);
            let body = doc.select(&sel("body")).next().unwrap();
            let attr = |n: &str| body.value().attr(n).unwrap_or_default().to_string();
            assert_eq!(attr("data-viewport"), width.to_string(), "{page} viewport");
            assert_eq!(
                attr("data-scroll-width"),
                width.to_string(),
                "{page} at {width} px scrolls sideways; too wide: {}",
                attr("data-too-wide")
            );
        }
    }

    // Generated just now: no warning with JavaScript on.
    let fresh = site("fresh", None);
    let doc = dump_dom(&fresh.join("index.html"), 1280, true);
    assert!(stale_hidden(&doc), "a fresh page shows no stale warning");
}

/// A page that loads `page` in an iframe of `width` × `height` px and
/// records, after layout, where the top of the status page's problems
/// block ends: the bottom of its last problem (or of its headline) and the
/// iframe's viewport height.
fn first_screen_probe(dir: &Path, page: &str, width: u32, height: u32) -> PathBuf {
    let html = format!(
        r##"<!doctype html><html><body style="margin:0">
<iframe id="f" src="{page}" style="width:{width}px;height:{height}px;border:0"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  var d = this.contentDocument, items = d.querySelectorAll("#problems li.problem, #problems .silent");
  var last = items.length ? items[items.length - 1] : d.querySelector("#problems .headline");
  var head = d.querySelector("#problems .headline");
  document.body.setAttribute("data-viewport-height", d.documentElement.clientHeight);
  document.body.setAttribute("data-headline-top", Math.round(head.getBoundingClientRect().top));
  document.body.setAttribute("data-last-bottom", Math.round(last.getBoundingClientRect().bottom));
  document.body.setAttribute("data-items", items.length);
}});
</script></body></html>"##
    );
    let path = dir.join(format!("first-screen-{width}-{page}"));
    std::fs::write(&path, html).unwrap();
    path
}

#[test]
fn the_problems_are_in_the_first_screen() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/logs/inventory");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-inventory");
    let _ = std::fs::remove_dir_all(&out);
    assert_cmd::Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(&data)
        .arg("--config")
        .arg(data.join("monitor.toml"))
        .arg("--out")
        .arg(&out)
        .args(["--now", NOW, "-q"])
        .assert()
        .success();
    // A laptop's first screen and a phone's (iPhone-sized, browser bars
    // taken off).
    for (width, height) in [(1280, 720), (390, 660)] {
        let doc = dump_dom(
            &first_screen_probe(&out, "index.html", width, height),
            width,
            true,
        );
        let body = doc.select(&sel("body")).next().unwrap();
        let num = |n: &str| -> i64 {
            body.value()
                .attr(n)
                .unwrap_or_else(|| panic!("{n} not recorded at {width} px"))
                .parse()
                .unwrap()
        };
        let what = format!("{width} × {height} px");
        assert_eq!(num("data-viewport-height"), i64::from(height), "{what}");
        // Two problems and the gateway that is down.
        assert_eq!(num("data-items"), 3, "{what}");
        assert!(num("data-headline-top") >= 0, "{what}");
        assert!(
            num("data-last-bottom") <= i64::from(height),
            "{what}: the problems end at {} px, below the first screen",
            num("data-last-bottom")
        );
        screenshot(
            &out.join("index.html"),
            width,
            true,
            &format!("index-inventory-{width}.png"),
        );
    }
}

/// Who is on each tunnel (the `connections` fixture: seven names on one
/// tunnel, in-use marks, idle tunnels listed with `--idle-after 20m`) as
/// Chromium shows it, and nothing wider than a desktop's or a phone's
/// screen.
#[test]
fn connections_in_headless_chromium() {
    let out = site_of("connections", "connections", Some(NOW));
    // The idle list needs --idle-after: render history.html again with it.
    assert_cmd::Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/logs/connections"))
        .arg("--out")
        .arg(&out)
        .args([
            "--tz",
            "America/Chicago",
            "-q",
            "--now",
            NOW,
            "--idle-after",
            "20m",
        ])
        .assert()
        .success();
    for width in WIDTHS {
        let doc = dump_dom(&out.join("index.html"), width, false);
        assert_eq!(count(&doc, "td.inuse.busy"), 2, "index.html at {width} px");
        let doc = dump_dom(&out.join("history.html"), width, false);
        assert_eq!(
            count(&doc, "#r-24h .timeline .use"),
            3,
            "history.html at {width} px"
        );
        assert_eq!(
            count(&doc, "#idle tr.idle-tunnel"),
            2,
            "history.html at {width} px"
        );
        for page in ["index.html", "history.html"] {
            let doc = dump_dom(&overflow_probe(&out, page, width), width, true);
            let body = doc.select(&sel("body")).next().unwrap();
            let attr = |n: &str| body.value().attr(n).unwrap_or_default().to_string();
            assert_eq!(
                attr("data-scroll-width"),
                width.to_string(),
                "{page} at {width} px scrolls sideways; too wide: {}",
                attr("data-too-wide")
            );
        }
        screenshot(
            &out.join("index.html"),
            width,
            false,
            &format!("connections-index-{width}.png"),
        );
    }
}
