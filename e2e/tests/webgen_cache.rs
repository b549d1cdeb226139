//! webgen's cache of the closed UTC days (`webgen/src/cache.rs`) changes
//! nothing on the pages: on logs made by the benchmarks' generator (`gen`,
//! 4 days of 3 gateways), every run with the cache writes the same bytes
//! as a run without it, while today's logs grow minute by minute, after a
//! closed day's file is rewritten in place with its size and modification
//! time kept, after the config (thresholds, inventory, a gateway's own
//! thresholds) changes, with a
//! damaged checkpoint, and with a cache that cannot be written (a warning,
//! the pages still made). The summary line says when the closed days came
//! from the cache, so the test also knows the cache was used at all.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use e2e::{Error, Result, TempDir, cargo_bin, run_ok, text};

/// The generated logs end at this UTC midnight.
const END: u64 = 1_796_083_200;
const DAYS: u64 = 4;
/// The last generated day plays today: its files are cut at `now`.
const TODAY: u64 = END - 86_400;
const LIMIT: Duration = Duration::from_secs(120);

/// The generated logs, and the directory webgen reads: the closed days
/// copied, today's files cut to the rows received by `now`.
struct Logs {
    generated: PathBuf,
    data: PathBuf,
}

impl Logs {
    fn make(tmp: &TempDir) -> Result<Logs> {
        let generated = tmp.join("generated");
        run_ok(
            Command::new(cargo_bin("bench", "gen")?)
                .args(["logs", "--gateways", "3", "--tunnels", "4"])
                .args(["--days", &DAYS.to_string(), "--end", &END.to_string()])
                .arg("--out")
                .arg(&generated),
            LIMIT,
        )?;
        let data = tmp.join("data");
        std::fs::create_dir(&data).map_err(|e| Error::io("making", &data, e))?;
        for entry in
            std::fs::read_dir(&generated).map_err(|e| Error::io("listing", &generated, e))?
        {
            let entry = entry.map_err(|e| Error::io("listing", &generated, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".csv") && !name.contains("2026-11-30") {
                std::fs::copy(entry.path(), data.join(&name))
                    .map_err(|e| Error::io("copying", entry.path(), e))?;
            }
        }
        Ok(Logs { generated, data })
    }

    /// Today's files as the collector would have them at `now`: the rows
    /// received by then (they are written in that order).
    fn today_until(&self, now: u64) -> Result<()> {
        for kind in ["events", "tunnels"] {
            let name = format!("{kind}-2026-11-30.csv");
            let all = e2e::read_file(&self.generated.join(&name))?;
            let mut kept = String::new();
            for (i, line) in all.lines().enumerate() {
                let received = line.split(',').next().and_then(|r| r.parse::<u64>().ok());
                if i > 0 && received.is_none_or(|r| r > now) {
                    break;
                }
                kept.push_str(line);
                kept.push('\n');
            }
            e2e::write_file(&self.data.join(&name), &kept)?;
        }
        Ok(())
    }
}

/// Both pages of one run, and what it printed.
struct Pages {
    index: Vec<u8>,
    history: Vec<u8>,
    stdout: String,
    stderr: String,
}

fn webgen(data: &Path, out: &Path, now: u64, extra: &[&str]) -> Result<Pages> {
    let bin = cargo_bin("webgen", "webgen")?;
    let o: Output = run_ok(
        Command::new(bin)
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(out)
            .args(["--now", &now.to_string(), "--tz", "UTC"])
            .args(extra),
        LIMIT,
    )?;
    let read = |name: &str| {
        let p = out.join(name);
        std::fs::read(&p).map_err(|e| Error::io("reading", &p, e))
    };
    Ok(Pages {
        index: read("index.html")?,
        history: read("history.html")?,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: text(&o),
    })
}

/// Runs webgen without the cache and with `cache`, and checks the pages
/// are the same bytes; returns the cached run.
fn same_both_ways(
    tmp: &TempDir,
    logs: &Logs,
    now: u64,
    cache: &Path,
    extra: &[&str],
) -> Result<Pages> {
    let mut plain_args = extra.to_vec();
    plain_args.push("--no-cache");
    let plain = webgen(&logs.data, &tmp.join("plain"), now, &plain_args)?;
    let mut cached_args = extra.to_vec();
    let cache_arg = cache.to_string_lossy().into_owned();
    cached_args.extend(["--cache", &cache_arg]);
    let cached = webgen(&logs.data, &tmp.join("cached"), now, &cached_args)?;
    for (name, a, b) in [
        ("index.html", &plain.index, &cached.index),
        ("history.html", &plain.history, &cached.history),
    ] {
        if a != b {
            let at = a
                .iter()
                .zip(b.iter())
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            let around = |p: &[u8]| {
                String::from_utf8_lossy(&p[at.saturating_sub(200)..(at + 200).min(p.len())])
                    .into_owned()
            };
            return Err(Error::check(
                format!("{name} at now {now} {extra:?} the same with the cache as without"),
                format!(
                    "they differ at byte {at}:\nwithout: …{}…\nwith:    …{}…\n(cached run's stderr: {})",
                    around(a),
                    around(b),
                    cached.stderr
                ),
            ));
        }
    }
    Ok(cached)
}

fn from_cache(p: &Pages) -> bool {
    p.stdout.contains("closed days from the cache")
}

fn expect(what: &str, ok: bool, p: &Pages) -> Result<()> {
    match ok {
        true => Ok(()),
        false => Err(Error::check(
            what,
            format!("stdout: {}stderr: {}", p.stdout, p.stderr),
        )),
    }
}

#[test]
fn pages_are_the_same_bytes_with_and_without_the_cache() -> Result<()> {
    let tmp = TempDir::new("webgen-cache")?;
    let logs = Logs::make(&tmp)?;
    let cache = tmp.join("cache");

    // Today at 06:00, then each minute after: the first run makes the
    // checkpoint, the next read on from it.
    let mut now = TODAY + 6 * 3600;
    logs.today_until(now)?;
    let first = same_both_ways(&tmp, &logs, now, &cache, &[])?;
    expect(
        "a first run reads the logs whole",
        !from_cache(&first),
        &first,
    )?;
    expect(
        "a checkpoint is written",
        cache.join("checkpoint.bin").is_file(),
        &first,
    )?;
    for _ in 0..3 {
        now += 60;
        logs.today_until(now)?;
        let next = same_both_ways(&tmp, &logs, now, &cache, &[])?;
        expect(
            "a run a minute later reads the 3 closed days from the cache",
            next.stdout.contains("3 closed days from the cache"),
            &next,
        )?;
    }

    // A closed day's file rewritten in place: one tunnel row's target
    // changed (a new timeline lane), same size, modification time set
    // back, its first and last 4 KiB unchanged. Only the change time
    // (which no user can set) says it changed.
    let before = webgen(&logs.data, &tmp.join("before"), now, &["--no-cache"])?;
    rewrite_in_place(&logs.data.join("tunnels-2026-11-29.csv"))?;
    let after = same_both_ways(&tmp, &logs, now, &cache, &[])?;
    expect(
        "the rewrite is on the pages",
        after.history != before.history,
        &after,
    )?;
    expect("a rewritten day is read again", !from_cache(&after), &after)?;
    let again = same_both_ways(&tmp, &logs, now, &cache, &[])?;
    expect(
        "then the new checkpoint is used",
        from_cache(&again),
        &again,
    )?;

    // Another config: thresholds, then an inventory.
    let late = same_both_ways(&tmp, &logs, now, &cache, &["--late", "5m", "--down", "20m"])?;
    expect(
        "other thresholds read the logs whole",
        !from_cache(&late),
        &late,
    )?;
    let config = tmp.join("monitor.toml");
    e2e::write_file(
        &config,
        "[[tunnel]]\ngateway = \"novadaq-far-gateway-01\"\nlisten = 5900\ntarget = \"novadaq-far-dcm-03:5923\"\nroc = \"Caltech\"\n\n\
         [[tunnel]]\ngateway = \"novadaq-far-gateway-02\"\nlisten = 5901\ntarget = \"novadaq-far-master-02:5924\"\nroc = \"Minnesota\"\n",
    )?;
    let config_arg = config.to_string_lossy().into_owned();
    let inv = ["--config", config_arg.as_str()];
    let cold = same_both_ways(&tmp, &logs, now, &cache, &inv)?;
    expect(
        "an inventory reads the logs whole",
        !from_cache(&cold),
        &cold,
    )?;
    now += 60;
    logs.today_until(now)?;
    let warm = same_both_ways(&tmp, &logs, now, &cache, &inv)?;
    expect("then its checkpoint is used", from_cache(&warm), &warm)?;

    // One gateway's own thresholds (`[[gateway]]`): its silences change.
    let overridden = tmp.join("monitor-gateway.toml");
    e2e::write_file(
        &overridden,
        &format!(
            "{}\n[[gateway]]\nname = \"novadaq-far-gateway-01\"\nlate = \"20m\"\ndown = \"1h\"\n",
            e2e::read_file(&config)?
        ),
    )?;
    let overridden_arg = overridden.to_string_lossy().into_owned();
    let own = same_both_ways(&tmp, &logs, now, &cache, &["--config", &overridden_arg])?;
    expect(
        "a gateway's own thresholds read the logs whole",
        !from_cache(&own),
        &own,
    )?;
    expect("they are on the pages", own.history != warm.history, &own)?;

    // A damaged checkpoint: a warning, the logs read whole, the same pages.
    let path = cache.join("checkpoint.bin");
    let mut bytes = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).map_err(|e| Error::io("writing", &path, e))?;
    let damaged = same_both_ways(&tmp, &logs, now, &cache, &inv)?;
    expect(
        "a damaged checkpoint is named in a warning",
        damaged.stderr.contains("webgen: warning: cache") && damaged.stderr.contains("damaged"),
        &damaged,
    )?;

    // A cache that cannot be written (its directory would be under a
    // file): a warning, and the pages all the same.
    let blocker = tmp.join("not-a-dir");
    e2e::write_file(&blocker, "")?;
    let stuck = same_both_ways(&tmp, &logs, now, &blocker.join("cache"), &[])?;
    expect(
        "an unwritable cache is a warning that names it",
        stuck.stderr.contains("cannot write it") && stuck.stderr.contains("not-a-dir"),
        &stuck,
    )?;
    Ok(())
}

/// Changes the last digit of the `target_host` of the middle row of a
/// tunnels file in place, keeping its size and modification time.
fn rewrite_in_place(path: &Path) -> Result<()> {
    let text = e2e::read_file(path)?;
    let column = text
        .lines()
        .next()
        .and_then(|h| h.split(',').position(|c| c == "target_host"))
        .ok_or_else(|| Error::check("a target_host column", path.display().to_string()))?;
    let mid = text.len() / 2;
    let line_start = mid + text[mid..].find('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let field_start: usize = line.split(',').take(column).map(|f| f.len() + 1).sum();
    let field = line.split(',').nth(column).unwrap_or("");
    let last = field
        .bytes()
        .last()
        .filter(u8::is_ascii_digit)
        .ok_or_else(|| Error::check("a target host ending in a digit", line.to_string()))?;
    let at = line_start + field_start + field.len() - 1;
    let replacement = if last == b'9' { b'8' } else { last + 1 };
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| Error::io("reading the mtime of", path, e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("opening", path, e))?;
    f.seek(SeekFrom::Start(at as u64))
        .and_then(|_| f.write_all(&[replacement]))
        .and_then(|()| f.set_modified(mtime))
        .map_err(|e| Error::io("rewriting", path, e))?;
    Ok(())
}
