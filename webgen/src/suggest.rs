//! `--suggest-inventory DURATION`: a first inventory, so that nobody types
//! one from scratch. Every `L` forward with a target seen in the logs of
//! the last DURATION becomes a candidate entry (its gateway, listen port
//! and target); the logs are read again with all of them as the inventory,
//! judged by `logs::inventory` exactly as the pages and the collector judge
//! (see `expected`); those up at least [`MIN_SHARE`] of the time the logs
//! cover in that range, and up now, are printed as `[[tunnel]]` entries of
//! the config file, `roc` set to the account holding the tunnel with a
//! comment asking the operator to name it. Loading the output as the
//! inventory therefore finds every entry `up` on the same logs.

use std::fmt::Write as _;

use ::logs::inventory::{Expected, TunnelState};
use gateway_client::tunnel::Kind;
use jiff::Timestamp;

use crate::cli::Config;
use crate::error::Error;
use crate::logs::{self, Catalog};
use crate::render::{Clock, duration, percent};
use crate::state::Tracker;

/// The share of the time a tunnel must have been up to be suggested.
pub(crate) const MIN_SHARE: f64 = 0.8;

/// One candidate and how it did.
struct Candidate {
    entry: Expected,
    up: u64,
    now: TunnelState,
}

/// The inventory text to print.
pub(crate) fn suggest(cfg: &Config, secs: u64) -> Result<String, Error> {
    let start = cfg.now.saturating_sub(secs);
    let day = |t: u64| {
        let ts = i64::try_from(t)
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .unwrap_or(Timestamp::MAX);
        ts.to_zoned(jiff::tz::TimeZone::UTC).date()
    };
    let (from, to) = (day(start), day(cfg.now));
    // First pass: what was there.
    let mut catalog = Catalog::default();
    let mut seen = Tracker::new(cfg.staleness.clone(), Vec::new());
    logs::read(&cfg.data, from, to, cfg.now, &mut catalog, &mut seen)?;
    let candidates = candidates(&catalog);
    // Second pass: each candidate judged over the range.
    let mut catalog = Catalog::default();
    let mut tracker = Tracker::new(cfg.staleness.clone(), candidates.clone());
    let stats = logs::read(&cfg.data, from, to, cfg.now, &mut catalog, &mut tracker)?;
    tracker.finish(&catalog, cfg.now);
    let covered_from = stats.first_received.unwrap_or(cfg.now).max(start);
    let covered = cfg.now.saturating_sub(covered_from);
    let mut judged: Vec<Candidate> = candidates
        .into_iter()
        .zip(&tracker.judging.timeline)
        .map(|(entry, timeline)| Candidate {
            up: up_time(timeline, covered_from, cfg.now),
            now: timeline.last().map_or(TunnelState::Unknown, |s| s.1),
            entry,
        })
        .collect();
    // One entry per gateway and port: the target up longest.
    judged.sort_by(|a, b| {
        (&a.entry.gateway, a.entry.listen, std::cmp::Reverse(a.up)).cmp(&(
            &b.entry.gateway,
            b.entry.listen,
            std::cmp::Reverse(b.up),
        ))
    });
    judged.dedup_by(|b, a| a.entry.gateway == b.entry.gateway && a.entry.listen == b.entry.listen);
    let clock = Clock::new(cfg.tz.clone(), cfg.now);
    Ok(text(cfg, &clock, &judged, covered_from, covered))
}

/// Every `L` forward with a target, once per gateway, port and target.
fn candidates(catalog: &Catalog) -> Vec<Expected> {
    let mut out: Vec<Expected> = Vec::new();
    for t in &catalog.tunnels {
        let tunnel = &t.tunnel;
        if tunnel.kind != Kind::Local || tunnel.target_host.is_empty() || tunnel.target_port == 0 {
            continue;
        }
        let gateway = catalog.gateway(t.gateway);
        if out
            .iter()
            .any(|e| e.gateway == gateway && e.matches(tunnel))
        {
            continue;
        }
        let owner = Some(tunnel.user.clone()).filter(|u| !u.trim().is_empty());
        out.push(Expected {
            gateway: gateway.to_string(),
            listen: tunnel.listen_port,
            target_host: tunnel.target_host.clone(),
            target_port: tunnel.target_port,
            roc: owner.clone().unwrap_or_else(|| "unknown-owner".into()),
            station: tunnel
                .vnc_display()
                .map(|d| format!("{} :{d}", tunnel.target_host)),
            owner,
        });
    }
    out
}

/// Seconds in state `up` within `start..end`.
fn up_time(timeline: &[(u64, TunnelState)], start: u64, end: u64) -> u64 {
    timeline
        .iter()
        .enumerate()
        .filter(|(_, s)| s.1 == TunnelState::Up)
        .map(|(k, &(from, _))| {
            let to = timeline.get(k + 1).map_or(end, |n| n.0);
            to.min(end).saturating_sub(from.max(start))
        })
        .sum()
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The same text on one comment line (nothing from the logs may end it).
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn text(cfg: &Config, clock: &Clock, judged: &[Candidate], from: u64, covered: u64) -> String {
    let share = |c: &Candidate| match covered {
        0 => 0.0,
        n => c.up as f64 / n as f64,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Expected tunnels suggested by webgen --suggest-inventory from the logs\n\
         # in {}: the tunnels up at least {} of the time\n\
         # from {} to {} ({}), and up at the end of it.\n\
         # Put these entries in the config file\n\
         # (/etc/roc-tunnel-monitor/monitor.toml; `collector --help`).\n\
         #\n\
         # Each roc is set to the account that holds the tunnel: replace it with\n\
         # the name of the remote control room that relies on the tunnel.\n",
        comment(&cfg.data.display().to_string()),
        percent(MIN_SHARE),
        clock.time(from),
        clock.time(cfg.now),
        duration(covered),
    );
    let (chosen, left): (Vec<&Candidate>, Vec<&Candidate>) = judged
        .iter()
        .partition(|c| share(c) >= MIN_SHARE && c.now == TunnelState::Up);
    for c in &chosen {
        let e = &c.entry;
        let _ = writeln!(out, "[[tunnel]]");
        let _ = writeln!(out, "gateway = {}", quoted(&e.gateway));
        let _ = writeln!(out, "listen = {}", e.listen);
        let _ = writeln!(out, "target = {}", quoted(&e.target()));
        let _ = writeln!(
            out,
            "roc = {}  # TODO: name the ROC that relies on this tunnel",
            quoted(&e.roc)
        );
        if let Some(station) = &e.station {
            let _ = writeln!(out, "station = {}", quoted(station));
        }
        if let Some(owner) = &e.owner {
            let _ = writeln!(out, "owner = {}", quoted(owner));
        }
        let _ = writeln!(out, "# up {} of the time\n", percent(share(c)));
    }
    if chosen.is_empty() {
        let _ = writeln!(out, "# No tunnel was up that long in these logs.\n");
    }
    if !left.is_empty() {
        let _ = writeln!(
            out,
            "# Seen, but up less than that or not up now (not suggested):"
        );
        for c in left {
            let e = &c.entry;
            let _ = writeln!(
                out,
                "#   {} port {} -> {} ({}): up {}, {} now",
                comment(&e.gateway),
                e.listen,
                comment(&e.target()),
                comment(e.owner.as_deref().unwrap_or("no owner")),
                percent(share(c)),
                c.now.as_str()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_stay_toml() {
        assert_eq!(quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000Ad\"");
        assert_eq!(comment("a\nb"), "a b");
    }

    #[test]
    fn up_time_is_cut_to_the_range() {
        let t = [
            (100, TunnelState::Unknown),
            (110, TunnelState::Up),
            (200, TunnelState::Missing),
            (250, TunnelState::Up),
        ];
        assert_eq!(up_time(&t, 150, 300), 50 + 50);
        assert_eq!(up_time(&t, 0, 300), 90 + 50);
    }
}
