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
use crate::error::{EXIT_OK, Error};
use crate::key::Key;
use crate::send::{self, Delivery};
use crate::tunnel::Tunnel;
use crate::utc::utc_string;
use crate::wire::{self, Body, MsgKind};
use crate::{live, ps};

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
        Action::Run(args) => args,
    };
    let name = match &args.name {
        Some(n) => n.clone(),
        None => host_name(),
    };
    wire::check_name(&name).map_err(|e| Error::Encode(format!("--name: {e}")))?;
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
        // Lines gathered into blocks: stdout is line-buffered, and a write
        // per line was 1,000 system calls for 1,000 tunnels (~10 µs each).
        const BLOCK: usize = 64 << 10;
        let mut s = String::with_capacity(BLOCK + 1024);
        for t in &tunnels {
            t.write_json_all(&mut s);
            s.push('\n');
            if s.len() >= BLOCK {
                out.write_all(s.as_bytes()).map_err(Error::Output)?;
                s.clear();
            }
        }
        out.write_all(s.as_bytes()).map_err(Error::Output)?;
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
    let addr = send::resolve(&args.address, args.port)?;
    let delivery = send::deliver(addr, &key, &parts, args.timeout)?;
    if !args.json && !args.quiet {
        print_delivery(out, kind, &delivery).map_err(Error::Output)?;
    }
    Ok(EXIT_OK)
}

/// The tunnels of a capture file (`-` for stdin) or of live `ps`, with the
/// name of where they came from (for warnings).
fn find_tunnels(args: &Args) -> Result<(String, ps::PsOutcome), Error> {
    let Some(path) = &args.ps_file else {
        let outcome = live::collect(PS_TIMEOUT, args.probe).map_err(Error::Live)?;
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

/// The account running the client, from `/etc/passwd` (then `$USER`).
fn user_name() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| live::parse_status_uid(&s));
    let names = std::fs::read_to_string("/etc/passwd")
        .map(|t| live::parse_passwd(&t))
        .unwrap_or_default();
    live::resolve_user(
        uid,
        &names,
        &std::env::var("USER").unwrap_or_else(|_| "?".to_string()),
    )
}

fn print_header(
    out: &mut impl Write,
    name: &str,
    now: u64,
    kind: MsgKind,
    text: &str,
    tunnels: &[Tunnel],
) -> io::Result<()> {
    let mut s = String::new();
    s.push_str(&format!("--- ROC tunnel monitor: {}\n", kind.as_str()));
    s.push_str(&format!("--- time: {}\n", utc_string(now)));
    s.push_str(&format!("--- user: {}\n", user_name()));
    s.push_str(&format!("--- gateway: {name}\n"));
    match kind {
        MsgKind::Report => {
            s.push_str(&format!("--- tunnels: {}\n", tunnels.len()));
            if !tunnels.is_empty() {
                s.push_str(&format!(
                    "{:<5} {:<5} {:<21} {:<28} {:<4} {:<12} {:<24} {:<8} {:<8} {:<9} {:<10} {}\n",
                    "KIND",
                    "PID",
                    "LISTEN",
                    "TARGET",
                    "VNC",
                    "USER",
                    "DEST",
                    "START",
                    "TIME",
                    "LISTENING",
                    "VNC-ANSWER",
                    "CONNECTED"
                ));
            }
            for t in tunnels {
                let listen = if t.bind.is_empty() {
                    t.listen_port.to_string()
                } else {
                    format!("{}:{}", t.bind, t.listen_port)
                };
                let target = if t.target_host.is_empty() {
                    "-".to_string()
                } else {
                    format!("{}:{}", t.target_host, t.target_port)
                };
                let display = t
                    .vnc_display()
                    .map(|d| format!(":{d}"))
                    .unwrap_or_else(|| "-".into());
                s.push_str(&format!(
                    "{:<5} {:<5} {:<21} {:<28} {:<4} {:<12} {:<24} {:<8} {:<8} {:<9} {:<10} {}\n",
                    t.kind.letter(),
                    t.pid,
                    listen,
                    target,
                    display,
                    t.user,
                    t.dest,
                    t.start,
                    t.cpu_time,
                    t.listening.as_str(),
                    t.vnc.as_str(),
                    connected_text(t)
                ));
            }
        }
        MsgKind::Message => s.push_str(&format!("--- message: {text}\n")),
        _ => {}
    }
    out.write_all(s.as_bytes())
}

/// What `--maintenance` asks for, in words.
fn print_maintenance(out: &mut impl Write, now: u64, until: u64, reason: &str) -> io::Result<()> {
    if until <= now {
        writeln!(out, "--- maintenance: ends this gateway's silence now")
    } else {
        writeln!(
            out,
            "--- maintenance: alerts of this gateway silenced until {} ({reason})",
            utc_string(until)
        )
    }
}

/// The CONNECTED column: `-` when unknown, else the count and who
/// (`2: novaroc1, 192.0.2.15`).
fn connected_text(t: &Tunnel) -> String {
    match t.connections {
        None => "-".to_string(),
        Some(0) => "0".to_string(),
        Some(n) if t.connected.is_empty() => n.to_string(),
        Some(n) => format!("{n}: {}", t.connected.join(", ")),
    }
}

fn print_delivery(out: &mut impl Write, kind: MsgKind, d: &Delivery) -> io::Result<()> {
    let dup = if d.duplicates > 0 {
        format!(", {} already received", d.duplicates)
    } else {
        String::new()
    };
    writeln!(
        out,
        "--- {} sent to {} in {} datagram{}: acknowledged in {} ms ({} sends{dup})",
        kind.as_str(),
        d.addr,
        d.datagrams,
        if d.datagrams == 1 { "" } else { "s" },
        d.elapsed.as_millis(),
        d.sends
    )?;
    writeln!(out, "--- done")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connected_column() {
        let mut t = Tunnel::default();
        assert_eq!(connected_text(&t), "-");
        t.connections = Some(0);
        assert_eq!(connected_text(&t), "0");
        t.connections = Some(2);
        t.connected = vec!["192.0.2.15".into(), "novaroc1".into()];
        assert_eq!(connected_text(&t), "2: 192.0.2.15, novaroc1");
        // A list shortened to fit a datagram: the count still says all.
        t.connected.truncate(1);
        assert_eq!(connected_text(&t), "2: 192.0.2.15");
    }
}
