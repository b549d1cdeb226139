//! `bench`: the whole-system benchmark runner behind `scripts/bench`.
//!
//! `bench [--quick] [--data DIR] [--bin DIR] [--static DIR] [--musl-self FILE]
//! [--only CASE]...` generates (or reuses) the data, runs the cases and
//! prints the result table; `bench parse FILE [--iters N]` prints only the
//! median nanoseconds of parsing FILE in this process (used to time the musl
//! build of the parser).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use bench::Error;
use bench::cases::{self, Row, Scale, Setup};

const HELP: &str = "\
bench: runs the ROC tunnel monitor's benchmarks and prints a table

USAGE:
    bench [OPTIONS]                  every case
    bench parse FILE [--iters N]     median ns of parsing FILE, in process
    bench measure [--stdin FILE] -- CMD [ARGS...]
                                     wall ns, CPU ns and peak RSS bytes of CMD
    bench rescan [--iters N] [--no-connections] [--bin DIR]
                                     median CPU ns of live::rescan, in process,
                                     with the live case's forwards running

OPTIONS:
    --quick           a smaller, faster smoke run
    --data DIR        data and scratch directory [target/bench-data]
    --bin DIR         release binaries [target/release]
    --static DIR      static musl binaries, measured too when there [target/static]
    --musl-self FILE  a musl build of this program, for the musl parse figure
    --only CASE       run only CASE (repeatable): parse, client, live, watch,
                      latency, rtt, idle, ingest, webgen, scaling, cache,
                      peers-client, peers-collectd
    --peers           also the peers side by side (peers-client: the live
                      client against ps|grep|curl and send_nsca;
                      peers-collectd: the collector against collectd), which
                      run only when asked for
    --senders N       senders of the ingest case [64]; few senders send
                      many parts each (past the replay guard's 4,096 a gateway)
    --scratch DIR     where the collectors under test write their logs
                      [the data directory]; a tmpfs shows ingest without fsync cost
    --out FILE        also write the table (Markdown) to FILE
    -h, --help        print this help
";

const CASES: [&str; 13] = [
    "parse",
    "client",
    "live",
    "watch",
    "latency",
    "rtt",
    "idle",
    "ingest",
    "webgen",
    "scaling",
    "cache",
    "peers-client",
    "peers-collectd",
];

/// Cases that run only when named (`--only`) or asked for with `--peers`:
/// they need programs from other packages (`scripts/bench --peers` installs
/// them).
const PEERS: [&str; 2] = ["peers-client", "peers-collectd"];

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<OsString>) -> Result<(), Error> {
    use lexopt::prelude::*;
    if args.first().is_some_and(|a| a == "measure") {
        println!("{}", bench::measure::helper(&args[1..])?);
        return Ok(());
    }
    if args.first().is_some_and(|a| a == "rescan") {
        return rescan(args);
    }
    if args.first().is_some_and(|a| a == "parse") {
        return parse(args);
    }
    let mut p = lexopt::Parser::from_args(args);
    let mut quick = false;
    let mut data = PathBuf::from("target/bench-data");
    let mut bin = PathBuf::from("target/release");
    let mut static_bin = PathBuf::from("target/static");
    let mut musl_self: Option<PathBuf> = None;
    let mut only: Vec<String> = Vec::new();
    let mut peers = false;
    let mut out: Option<PathBuf> = None;
    let mut scratch: Option<PathBuf> = None;
    let mut senders: Option<usize> = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("quick") => quick = true,
            Long("peers") => peers = true,
            Long("scratch") => scratch = Some(p.value()?.into()),
            Long("senders") => senders = Some(p.value()?.parse::<usize>()?.max(1)),
            Long("data") => data = p.value()?.into(),
            Long("bin") => bin = p.value()?.into(),
            Long("static") => static_bin = p.value()?.into(),
            Long("musl-self") => musl_self = Some(p.value()?.into()),
            Long("out") => out = Some(p.value()?.into()),
            Long("only") => {
                let c: String = p.value()?.string()?;
                if !CASES.contains(&c.as_str()) {
                    return Err(Error::Usage(format!(
                        "--only {c}: no such case (one of {})",
                        CASES.join(", ")
                    )));
                }
                only.push(c);
            }
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(());
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let mut scale = if quick { Scale::quick() } else { Scale::full() };
    if let Some(n) = senders {
        scale.senders = n;
    }
    let setup = Setup {
        scratch: scratch.unwrap_or_else(|| data.clone()),
        data,
        bin,
        static_bin: static_bin.is_dir().then_some(static_bin),
        musl_self: musl_self.filter(|p| p.exists()),
        scale,
    };
    // `--only` runs the cases named; without it, every case but the peers,
    // which `--peers` adds.
    let named = |c: &str| only.iter().any(|o| o == c);
    let want = |c: &str| {
        named(c)
            || (only.is_empty() && (!PEERS.contains(&c) || peers))
            || (peers && PEERS.contains(&c))
    };

    let load_before = load_average();
    // Made (or checked) before any case, which all may use it.
    cases::capture(&setup)?;
    if want("webgen") || want("scaling") || want("cache") {
        let mut days = setup.scale.scale_days.clone();
        days.push(setup.scale.webgen_days);
        let longest = days.iter().copied().max().unwrap_or(1);
        bench::data::logs(&setup.data, longest, &days)?;
    }
    let rows = run_cases(&setup, want);
    let mut table = cases::table(&rows);
    table.push_str(&format!(
        "\nLoad average (1, 5, 15 min) at the start: {load_before}; at the end: {}.\n",
        load_average()
    ));
    println!("{table}");
    if let Some(out) = out {
        std::fs::write(&out, &table).map_err(|e| Error::io("cannot write", &out, e))?;
    }
    Ok(())
}

/// Runs the cases of the plan that `want` says, in order; a case that
/// fails gives a row saying so, and the others still run.
fn run_cases(setup: &Setup, want: impl Fn(&str) -> bool) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    type Case = fn(&Setup) -> Result<Vec<Row>, Error>;
    let plan: [(&str, Case); 13] = [
        ("parse", |s| cases::parse(s, &cases::capture(s)?)),
        ("client", |s| cases::client(s, &cases::capture(s)?)),
        ("live", cases::live),
        ("watch", bench::watch::case),
        ("latency", bench::latency::case),
        ("rtt", cases::round_trip),
        ("idle", cases::idle),
        ("ingest", cases::ingest),
        ("webgen", cases::webgen),
        ("scaling", cases::webgen_scaling),
        ("cache", bench::webgen_cache::webgen_cache),
        ("peers-client", bench::peers_client::run),
        ("peers-collectd", bench::peers_collectd::peers_collectd),
    ];
    for (name, case) in plan {
        if !want(name) {
            continue;
        }
        eprintln!("bench: {name} ...");
        match case(setup) {
            Ok(r) => {
                for row in &r {
                    eprintln!("bench:   {} | {}", row.case, row.figure);
                }
                rows.extend(r);
            }
            Err(e) => {
                eprintln!("bench: {name} failed: {e}");
                failed.push(format!("{name}: {e}"));
                rows.push(Row {
                    case: name.to_string(),
                    figure: format!("could not run: {e}"),
                    target: String::new(),
                    met: Some(false),
                });
            }
        }
    }
    rows
}

/// `bench parse`: see the help.
fn parse(args: Vec<OsString>) -> Result<(), Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args.into_iter().skip(1));
    let mut file: Option<PathBuf> = None;
    let mut iters = 300usize;
    while let Some(arg) = p.next()? {
        match arg {
            Long("iters") => iters = p.value()?.parse()?,
            Value(v) if file.is_none() => file = Some(v.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let file = file.ok_or_else(|| Error::Usage("parse: missing FILE".into()))?;
    let t = cases::parse_in_process(&file, iters)?;
    println!(
        "{} {} ns (wall, CPU), {} tunnels",
        t.wall.as_nanos(),
        t.cpu.as_nanos(),
        t.tunnels
    );
    Ok(())
}

/// `bench rescan`: see the help.
fn rescan(args: Vec<OsString>) -> Result<(), Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args.into_iter().skip(1));
    let mut iters = 300usize;
    let mut connections = true;
    let mut bin = PathBuf::from("target/release");
    while let Some(arg) = p.next()? {
        match arg {
            Long("iters") => iters = p.value()?.parse()?,
            Long("no-connections") => connections = false,
            Long("bin") => bin = p.value()?.into(),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let (cpu, counted) = cases::rescan_in_process(&bin, iters.max(1), connections)?;
    println!(
        "{} ns CPU (median of {iters}), {counted} connections",
        cpu.as_nanos()
    );
    Ok(())
}

/// The first three fields of /proc/loadavg: other work on the machine
/// inflates wall times, and the table says how much there was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".to_string())
}
