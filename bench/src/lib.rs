//! Benchmarks of the ROC tunnel monitor, and the seeded data they run on.
//!
//! Three binaries: `live-ssh` stands in for a tunnel's ssh in the live
//! case, `gen` writes the data for people who want it by hand (a
//! `ps auxww` capture, collector logs), and `bench` is the whole-system
//! runner behind `scripts/bench`: it generates the data set once into
//! `target/bench-data` ([`data`]), runs every case ([`cases`]) against the
//! real release binaries (and the static musl ones when built), and prints
//! one table: case, figure, target, met or not. The in-process parser
//! micro-benchmark uses divan (`benches/parse.rs`).
//!
//! - [`rng`]: SplitMix64, so the data is the same everywhere without `rand`.
//! - [`pscapture`]: a realistic `ps auxww` of a busy gateway.
//! - [`logs`]: collector logs (`logs::schema`) of many gateways and days.
//! - [`measure`]: wall time, CPU time and peak RSS of one child (`wait4`).
//! - [`live`]: a real collector on loopback, and senders that speak the wire.
//! - [`peers_client`]: the live client next to `ps | grep | curl` and
//!   `send_nsca` (`--peers`).
//! - [`forwards`]: real forwards (fake ssh processes holding listening
//!   sockets, and connections into them) for the live client's case.
//! - [`watch`]: the CPU cost of `gateway-client --watch` over a minute.
//! - [`latency`]: from a tunnel's death to the alert, `status.json` and
//!   the page, through a watching client and the real collector and webgen.
//!
//! Benchmarks print numbers; nothing here asserts a duration.

pub mod cases;
pub mod data;
pub mod error;
pub mod forwards;
pub mod latency;
pub mod live;
pub mod logs;
pub mod measure;
pub mod peers_client;
pub mod pscapture;
pub mod rng;
pub mod watch;

pub use error::Error;
