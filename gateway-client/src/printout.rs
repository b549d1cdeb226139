//! The printout, in the spirit of the original tool's: the header with the
//! tunnels found, and a line per collector that acknowledged. The one-shot
//! run and watch mode print the same.

use std::io::{self, Write};

use crate::live;
use crate::send::Delivery;
use crate::tunnel::Tunnel;
use crate::utc::utc_string;
use crate::wire::MsgKind;

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

/// The header: what is sent, when, by whom, for which gateway, and the
/// table of the tunnels of a report.
pub(crate) fn print_header(
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
pub(crate) fn print_maintenance(
    out: &mut impl Write,
    now: u64,
    until: u64,
    reason: &str,
) -> io::Result<()> {
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

/// One line: where a message went and how the collector answered.
pub(crate) fn print_delivery(out: &mut impl Write, kind: MsgKind, d: &Delivery) -> io::Result<()> {
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
    )
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
