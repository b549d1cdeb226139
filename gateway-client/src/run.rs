//! From the command line to the exit status: find the tunnels (a capture or
//! live `ps`), print them, sign and send them, and report what the collector
//! answered, in the spirit of the original tool's printout.
//!
//! `main.rs` only calls [`run`]. Every failure becomes one line on stderr,
//! `gateway-client: …`, and the exit status documented in `--help`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::{self, Action, Args, Mode};
use crate::error::{EXIT_NOT_ACKED, EXIT_OK, Error};
use crate::key::Key;
use crate::printout::{print_delivery, print_header, print_maintenance};
use crate::send;
use crate::wire::{self, Body, MsgKind};
use crate::{live, ps, watch};

/// How long a live `ps` may take before it is killed.
pub(crate) const PS_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the client; returns the exit status.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let mut out = io::stdout().lock();
    match execute(args, &mut out) {
        Ok(code) => code,
        // Output cut short by a closed pipe (`| head`) is not a failure.
        Err(Error::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            let _ = writeln!(io::stderr(), "gateway-client: {e}");
            e.exit_code()
        }
    }
}

fn execute<I: IntoIterator<Item = OsString>>(args: I, out: &mut impl Write) -> Result<i32, Error> {
    let args = match cli::parse_args(args)? {
        Action::Help => {
            out.write_all(cli::HELP.as_bytes()).map_err(Error::Output)?;
            return Ok(EXIT_OK);
        }
        Action::Version => {
            writeln!(out, "gateway-client {}", env!("CARGO_PKG_VERSION")).map_err(Error::Output)?;
            return Ok(EXIT_OK);
        }
        Action::Run(args) => *args,
    };
    let name = match &args.name {
        Some(n) => n.clone(),
        None => host_name(),
    };
    wire::check_name(&name).map_err(|e| Error::Encode(format!("--name: {e}")))?;
    if let Some(w) = args.watch {
        return watch::watch(&args, w, name, out);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();

    let (kind, text, tunnels) = match &args.mode {
        Mode::Report => {
            let (source, outcome) = find_tunnels(&args)?;
            if !args.quiet {
                warn_problems(&source, &outcome);
            }
            (MsgKind::Report, String::new(), outcome.tunnels)
        }
        Mode::Heartbeat => (MsgKind::Heartbeat, String::new(), Vec::new()),
        Mode::Message(m) => (MsgKind::Message, m.clone(), Vec::new()),
        Mode::Shutdown => (MsgKind::Shutdown, String::new(), Vec::new()),
        Mode::Maintenance { reason, .. } => (MsgKind::Maintenance, reason.clone(), Vec::new()),
    };
    // The end of the silence asked for, by this gateway's clock (the
    // collector takes its length: until less sent).
    let until = match &args.mode {
        Mode::Maintenance { seconds, .. } => Some(now.as_secs().saturating_add(*seconds)),
        _ => None,
    };

    // Read the key before printing anything, so a bad key fails cleanly.
    let key = if args.dry_run {
        None
    } else {
        Some(Key::from_file(&args.key_file)?)
    };

    if args.json {
        write_json_lines(out, &tunnels).map_err(Error::Output)?;
    } else if !args.quiet {
        print_header(out, &name, now.as_secs(), kind, &text, &tunnels).map_err(Error::Output)?;
        if let Some(until) = until {
            print_maintenance(out, now.as_secs(), until, &text).map_err(Error::Output)?;
        }
    }
    if args.dry_run {
        if !args.json && !args.quiet {
            writeln!(out, "--- dry run: nothing sent").map_err(Error::Output)?;
        }
        // The process ends here: a capture's thousands of small strings
        // are freed at once by its exit, not one by one.
        std::mem::forget(tunnels);
        return Ok(EXIT_OK);
    }

    let Some(key) = key else { return Ok(EXIT_OK) };
    let body = Body {
        gateway: name,
        kind,
        seq: u64::try_from(now.as_micros()).unwrap_or(u64::MAX),
        sent: now.as_secs(),
        part: 1,
        parts: 1,
        text,
        tunnels,
        period: None,
        until,
    };
    let parts = wire::encode_all(&key, &body).map_err(Error::Encode)?;
    if let [c] = args.collectors.as_slice() {
        let addr = send::resolve(&c.host, c.port)?;
        let delivery = send::deliver(addr, &key, &parts, args.timeout)?;
        if !args.json && !args.quiet {
            print_delivery(out, kind, &delivery).map_err(Error::Output)?;
            writeln!(out, "--- done").map_err(Error::Output)?;
        }
        return Ok(EXIT_OK);
    }
    deliver_to_all(&args, &key, kind, &parts, out)
}

/// Delivers to every collector at once, prints each ack, and names on
/// stderr each collector that did not acknowledge (then exit status 1).
fn deliver_to_all(
    args: &Args,
    key: &Key,
    kind: MsgKind,
    parts: &[(Body, Vec<u8>)],
    out: &mut impl Write,
) -> Result<i32, Error> {
    let results = send::deliver_each(&args.collectors, key, parts, args.timeout);
    let mut failed = Vec::new();
    for (c, r) in args.collectors.iter().zip(results) {
        match r {
            Ok(d) if !args.json && !args.quiet => {
                print_delivery(out, kind, &d).map_err(Error::Output)?
            }
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(io::stderr(), "gateway-client: {e}");
                failed.push(c.to_string());
            }
        }
    }
    if !failed.is_empty() {
        let _ = writeln!(
            io::stderr(),
            "gateway-client: {} of {} collectors did not acknowledge: {}",
            failed.len(),
            args.collectors.len(),
            failed.join(", ")
        );
        return Ok(EXIT_NOT_ACKED);
    }
    if !args.json && !args.quiet {
        writeln!(out, "--- done").map_err(Error::Output)?;
    }
    Ok(EXIT_OK)
}

/// `--json`: one line per tunnel, gathered into blocks: stdout is
/// line-buffered, and a write per line was 1,000 system calls for 1,000
/// tunnels (~10 µs each).
fn write_json_lines(out: &mut impl Write, tunnels: &[crate::tunnel::Tunnel]) -> io::Result<()> {
    const BLOCK: usize = 64 << 10;
    let mut s = String::with_capacity(BLOCK + 1024);
    for t in tunnels {
        t.write_json_all(&mut s);
        s.push('\n');
        if s.len() >= BLOCK {
            out.write_all(s.as_bytes())?;
            s.clear();
        }
    }
    out.write_all(s.as_bytes())
}

/// The tunnels of a capture file (`-` for stdin) or of live `ps`, with the
/// name of where they came from (for warnings).
fn find_tunnels(args: &Args) -> Result<(String, ps::PsOutcome), Error> {
    let Some(path) = &args.ps_file else {
        let outcome = live::collect(PS_TIMEOUT, args.probe, true).map_err(Error::Live)?;
        return Ok(("ps auxww".to_string(), outcome));
    };
    let capture_err = |source| Error::Capture {
        path: path.clone(),
        source,
    };
    // Read a buffer at a time (see ps::read_ps): only the ssh lines are
    // kept, not the whole capture. Bytes that are not UTF-8 (a capture may
    // hold stray ones) are read as U+FFFD.
    let (source, outcome) = if path == Path::new("-") {
        ("stdin".to_string(), ps::read_ps(io::stdin().lock()))
    } else {
        let outcome = std::fs::File::open(path).and_then(ps::read_ps);
        (path.display().to_string(), outcome)
    };
    Ok((source, outcome.map_err(capture_err)?))
}

/// Most warnings printed about one `ps` pass; the rest are counted.
const MAX_WARNINGS: usize = 10;

/// One line per skipped line or refused forward: `SOURCE:LINE: message`.
fn warn_problems(source: &str, outcome: &ps::PsOutcome) {
    let mut err = io::stderr().lock();
    for p in outcome.problems.iter().take(MAX_WARNINGS) {
        let _ = writeln!(err, "gateway-client: warning: {source}:{p}");
    }
    let total = (outcome.skipped + outcome.bad_forwards).max(outcome.problems.len());
    if total > MAX_WARNINGS {
        let _ = writeln!(
            err,
            "gateway-client: warning: {source}: {} more problems not shown",
            total - MAX_WARNINGS
        );
    }
}

/// This machine's host name, as the kernel has it.
pub(crate) fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}
