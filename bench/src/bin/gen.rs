//! `gen`: writes the benchmarks' seeded data by hand.
//!
//! `gen ps --procs N --forwards M [--seed S] [--out FILE]` prints (or
//! writes) a `ps auxww` capture; `gen logs --out DIR [--gateways G]
//! [--days D] [--tunnels T] [--end UNIX] [--seed S]` writes collector logs.
//! The same seed gives the same bytes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use bench::Error;
use bench::logs::Plan;

const HELP: &str = "\
gen: writes seeded benchmark data for the ROC tunnel monitor

USAGE:
    gen ps [--procs N] [--forwards M] [--seed S] [--out FILE]
        a `ps auxww` capture of N processes [10000] holding M ssh
        forwards [1000]; to stdout without --out
    gen logs --out DIR [--gateways G] [--days D] [--tunnels T] [--end UNIX] [--seed S]
        collector logs (events-*.csv, tunnels-*.csv) of G gateways [10]
        reporting each minute for D days [30] ending at UNIX
        [1796083200 = 2026-12-01T00:00:00Z], about T tunnels each [10]
";

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<OsString>) -> Result<(), Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let what: String = match p.next()? {
        Some(Value(v)) => v.string()?,
        Some(Short('h') | Long("help")) | None => {
            print!("{HELP}");
            return Ok(());
        }
        Some(arg) => return Err(arg.unexpected().into()),
    };
    let mut seed = bench::data::SEED;
    let (mut procs, mut forwards) = (10_000usize, 1_000usize);
    let (mut gateways, mut days, mut tunnels, mut end) =
        (10usize, 30u64, 10usize, bench::data::END);
    let mut out: Option<PathBuf> = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("seed") => seed = p.value()?.parse()?,
            Long("out") => out = Some(p.value()?.into()),
            Long("procs") if what == "ps" => procs = p.value()?.parse()?,
            Long("forwards") if what == "ps" => forwards = p.value()?.parse()?,
            Long("gateways") if what == "logs" => gateways = p.value()?.parse()?,
            Long("days") if what == "logs" => days = p.value()?.parse()?,
            Long("tunnels") if what == "logs" => tunnels = p.value()?.parse()?,
            Long("end") if what == "logs" => end = p.value()?.parse()?,
            _ => return Err(arg.unexpected().into()),
        }
    }
    match what.as_str() {
        "ps" => {
            if procs > 10_000_000 || forwards > 1_000_000 {
                return Err(Error::Usage(format!(
                    "ps: --procs at most 10000000, --forwards at most 1000000 (got {procs}, {forwards})"
                )));
            }
            let c = bench::pscapture::generate(seed, procs, forwards);
            match out {
                Some(path) => std::fs::write(&path, &c.text)
                    .map_err(|e| Error::io("cannot write", &path, e))?,
                None => print!("{}", c.text),
            }
            eprintln!("gen: {} processes, {} forwards", c.procs, c.forwards);
        }
        "logs" => {
            let dir = out.ok_or_else(|| Error::Usage("logs: missing --out DIR".into()))?;
            if days == 0 || days > 3650 || gateways == 0 || gateways > 1000 || tunnels > 1000 {
                return Err(Error::Usage(format!(
                    "logs: --days 1..=3650, --gateways 1..=1000, --tunnels 0..=1000 \
                     (got {days}, {gateways}, {tunnels})"
                )));
            }
            if end < days * 86_400 {
                return Err(Error::Usage(format!(
                    "logs: --end {end} is before {days} days"
                )));
            }
            let plan = Plan {
                seed,
                gateways,
                days,
                tunnels,
                end,
            };
            let w = bench::logs::generate(&plan, &dir)?;
            eprintln!(
                "gen: {} files, {} event rows, {} tunnel rows, {} bytes in {}",
                w.files,
                w.events,
                w.tunnel_rows,
                w.bytes,
                dir.display()
            );
        }
        other => {
            return Err(Error::Usage(format!(
                "unknown data kind '{other}': ps or logs"
            )));
        }
    }
    Ok(())
}
