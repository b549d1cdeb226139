//! Runs every real `ps` capture in `testdata/ps/` through the parser.
//!
//! Each `NAME.txt` there is the output of a real `ps` (procps or busybox)
//! taken on processes started by `scripts/capture-ps-fixtures`, and
//! `NAME.json` beside it holds the hand-checked tunnels it must yield: one
//! JSON object per line, exactly as [`Tunnel::to_json`] writes them, in the
//! order of the capture. `testdata/ps/README.md` says how each was made.
//!
//! One test checks them all and, for every fixture that differs, reports
//! which expected lines are missing and which produced lines are extra (or
//! that only the order differs), so one run shows every disagreement.
//! Another reads each capture a few bytes at a time, as a pipe may give
//! it, and checks that the outcome is the same as from the whole text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Tunnel;
use crate::ps::{PsOutcome, PsReader, parse_ps};

/// Fewer captures than this means fixtures went missing.
const MIN_FIXTURES: usize = 12;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/ps")
}

/// The `.txt` captures, sorted by name.
fn captures() -> Vec<PathBuf> {
    let dir = fixture_dir();
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    out.sort();
    out
}

/// Lines of `want` not matched in `got`, counting duplicates.
fn missing_from<'a>(want: &'a [String], got: &[String]) -> Vec<&'a str> {
    let mut have: HashMap<&str, usize> = HashMap::new();
    for g in got {
        *have.entry(g.as_str()).or_default() += 1;
    }
    want.iter()
        .filter(|w| match have.get_mut(w.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .map(String::as_str)
        .collect()
}

/// Compares one capture with its expected file; `None` when they agree.
fn check(txt: &Path) -> Option<String> {
    let name = txt.file_name().unwrap().to_string_lossy().into_owned();
    let json = txt.with_extension("json");
    let text = match std::fs::read(txt) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return Some(format!("{name}: cannot read: {e}\n")),
    };
    let want: Vec<String> = match std::fs::read_to_string(&json) {
        Ok(s) => s
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        Err(e) => {
            return Some(format!(
                "{name}: no expected file {}: {e}\n",
                json.display()
            ));
        }
    };
    let outcome = parse_ps(&text);
    let got: Vec<String> = outcome.tunnels.iter().map(Tunnel::to_json).collect();
    if got == want {
        return None;
    }
    let mut report = format!(
        "{name}: expected {} tunnels, parser gave {} ({} lines skipped)\n",
        want.len(),
        got.len(),
        outcome.skipped
    );
    let missing = missing_from(&want, &got);
    let extra = missing_from(&got, &want);
    if missing.is_empty() && extra.is_empty() {
        report.push_str("  same tunnels, different order\n");
    }
    for m in missing {
        let _ = writeln!(report, "  missing: {m}");
    }
    for x in extra {
        let _ = writeln!(report, "  extra:   {x}");
    }
    Some(report)
}

#[test]
fn every_capture_gives_its_expected_tunnels() {
    let caps = captures();
    assert!(
        caps.len() >= MIN_FIXTURES,
        "only {} captures in {}, want at least {MIN_FIXTURES}",
        caps.len(),
        fixture_dir().display()
    );
    let failures: Vec<String> = caps.iter().filter_map(|c| check(c)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} ps fixtures differ:\n{}",
        failures.len(),
        caps.len(),
        failures.concat()
    );
}

#[test]
fn every_expected_line_is_a_tunnel_record() {
    // Guards the fixtures themselves: each expected line must read back as a
    // tunnel and be written again byte for byte (field order, escaping).
    for txt in captures() {
        let json = txt.with_extension("json");
        let text =
            std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
        for (i, line) in text.lines().enumerate() {
            let t = Tunnel::from_json_line(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", json.display(), i + 1));
            assert_eq!(t.to_json(), line, "{}:{}", json.display(), i + 1);
        }
    }
}

/// Everything a parse gives, to compare two parses of one capture.
fn summary(out: &PsOutcome) -> (Vec<String>, usize, usize, Vec<String>) {
    (
        out.tunnels.iter().map(Tunnel::to_json).collect(),
        out.skipped,
        out.bad_forwards,
        out.problems.iter().map(|p| p.to_string()).collect(),
    )
}

#[test]
fn captures_read_in_small_chunks_give_what_the_whole_text_gives() {
    let mut caps: Vec<(String, Vec<u8>)> = captures()
        .iter()
        .map(|c| {
            let name = c.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(c).expect("capture"))
        })
        .collect();
    // All of them in one, with CRLF line ends and without the last newline:
    // autossh lines and their children far apart, headers taking over.
    let mut all: Vec<u8> = caps.iter().flat_map(|(_, b)| b.clone()).collect();
    all = String::from_utf8_lossy(&all)
        .replace('\n', "\r\n")
        .into_bytes();
    all.truncate(all.len() - 2);
    caps.push(("all, CRLF".to_string(), all));
    for (name, bytes) in &caps {
        let whole = summary(&parse_ps(&String::from_utf8_lossy(bytes)));
        assert!(!whole.0.is_empty() || name.contains("columns80"), "{name}");
        for chunk in [1, 2, 3, 7, 64, 1000, 64 << 10] {
            let read = PsReader::read(bytes.as_slice(), chunk).expect("read");
            assert_eq!(summary(&read.finish()), whole, "{name}, chunk {chunk}");
        }
    }
}

/// The problems of a capture, as the client prints them (`LINE: message`).
fn problems_of(name: &str) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(fixture_dir().join(name)).unwrap();
    let out = parse_ps(&text);
    (
        out.skipped,
        out.problems.iter().map(ToString::to_string).collect(),
    )
}

/// `ps aux | grep` and `ps -ef | grep` without a header, where an account
/// without a name shows as its uid in USER (54330): its lines are read like
/// the others (before, a number there was taken for busybox's PID column and
/// the line left out unseen), and nothing is skipped.
#[test]
fn numeric_user_lines_without_a_header_are_read() {
    for name in [
        "numeric-user-aux-grep-novadaq.txt",
        "numeric-user-ef-grep-novadaq.txt",
    ] {
        assert_eq!(check(&fixture_dir().join(name)), None);
        assert_eq!(problems_of(name), (0, Vec::new()), "{name}");
    }
}

/// `ps aux` cut at 120 columns: every forward shown in full is reported
/// (without the destination ps cut off), and each such line is named in a
/// warning, as is the cut itself.
#[test]
fn lines_cut_at_the_terminal_width_keep_their_visible_forwards() {
    let (skipped, problems) = problems_of("procps-aux-columns120.txt");
    assert_eq!(skipped, 0);
    let cut = "ps cut the line before the destination: the forwards shown in full are reported without it";
    assert_eq!(
        problems,
        vec![
            format!("3: pid 42: {cut}"),
            "3: ps cut lines at 120 characters (use ps auxww): ssh command lines of that length lose their last word".to_string(),
            format!("4: pid 43: {cut}"),
            format!("5: pid 50: {cut}"),
            format!("6: pid 60: {cut}"),
        ]
    );
}
