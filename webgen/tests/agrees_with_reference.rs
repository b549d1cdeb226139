//! webgen's cache of the closed days (`webgen/src/cache.rs`) against runs
//! without it, on generated logs with every kind of trouble the reading
//! rules name (`troubled_logs`): the pages must be the same bytes. (The fast
//! reader against the reference reader, on the same logs, is a unit test:
//! `webgen/src/logs/fast_reader_agrees.rs`.)

use std::path::Path;

use logs::EventKind;
use proptest::prelude::*;

mod troubled_logs;
use troubled_logs::{Datagram, datagram, tmp, write};

/// Runs the webgen binary on `dir` at `now` with `args`; its stdout and
/// both pages.
fn pages(dir: &Path, out: &str, now: u64, args: &[&str]) -> (String, Vec<u8>, Vec<u8>) {
    let out = dir.join(out);
    let run = assert_cmd::Command::cargo_bin("webgen")
        .unwrap()
        .arg("--data")
        .arg(dir)
        .arg("--out")
        .arg(&out)
        .args(["--now", &now.to_string(), "--tz", "UTC"])
        .args(args)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    let read = |name: &str| std::fs::read(out.join(name)).unwrap();
    (stdout, read("index.html"), read("history.html"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// The cache of the closed days (`webgen/src/cache.rs`) changes no byte
    /// of the pages, on logs with every kind of trouble: at 00:30 the day
    /// before is closed and saved, with the reports it left incomplete
    /// (their last parts come after midnight), and the run after reads on
    /// from it.
    #[test]
    fn the_cache_changes_no_page(
        datagrams in proptest::collection::vec(datagram(), 1..40),
        n in any::<u64>(),
        style in any::<u8>(),
    ) {
        let dir = tmp(n ^ 0x5eed);
        write(&dir, style, &datagrams);
        let closed = dir.join("events-2026-11-23.csv").exists() || dir.join("tunnels-2026-11-23.csv").exists();
        let cache = dir.join("cache");
        let cache = cache.to_str().unwrap();
        for now in [1_795_477_200 + 1800, 1_795_477_200 + 2400] {
            let (_, index, history) = pages(&dir, "plain", now, &["--no-cache"]);
            for round in 0..2 {
                let (stdout, i, h) = pages(&dir, "cached", now, &["--cache", cache]);
                prop_assert!(i == index, "index.html differs at now {now}, round {round}");
                prop_assert!(h == history, "history.html differs at now {now}, round {round}");
                let resumed = stdout.contains("1 closed day from the cache");
                prop_assert_eq!(resumed, closed && round == 1 && now == 1_795_477_200 + 1800 || closed && now > 1_795_477_200 + 1800, "{}", stdout);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A report whose first part comes at 23:59:45 and its second after
/// midnight: the checkpoint after the first day holds it incomplete, and
/// the run reading on from it completes it as a run without the cache does.
#[test]
fn a_report_across_midnight_completes_after_the_checkpoint() {
    let dir = tmp(u64::MAX - 1);
    let report = |at: u64| Datagram {
        gateway: 0,
        at,
        kind: EventKind::Report,
        tunnels: vec![0, 1, 2, 3, 4, 5],
        health: 0,
        twice: false,
        drop_last_part: false,
        damage: false,
    };
    // 23:57:30, 23:59:45 (its second part 00:00:14) and 00:01:00, and a
    // maintenance silence asked at 23:58 (in force at `now`).
    let maintenance = Datagram {
        kind: EventKind::Maintenance,
        tunnels: vec![],
        ..report(360)
    };
    write(
        &dir,
        2,
        &[report(350), maintenance, report(395), report(420)],
    );
    let now = 1_795_477_200 + 1800;
    let cache = dir.join("cache");
    let (_, index, history) = pages(&dir, "plain", now, &["--no-cache"]);
    for round in 0..2 {
        let (stdout, i, h) = pages(&dir, "cached", now, &["--cache", cache.to_str().unwrap()]);
        assert!(i == index, "index.html differs, round {round}");
        assert!(h == history, "history.html differs, round {round}");
        assert_eq!(
            stdout.contains("1 closed day from the cache"),
            round == 1,
            "{stdout}"
        );
    }
    // All three reports count: the one across midnight was completed.
    let text = String::from_utf8_lossy(&history);
    assert!(text.contains("Reports<b class=\"reports\">3</b>"), "{text}");
    let text = String::from_utf8_lossy(&index);
    assert!(text.contains("asked by the gateway"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
