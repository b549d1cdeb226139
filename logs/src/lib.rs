//! The ROC tunnel monitor's logs and the rules both the collector and webgen
//! apply to them, each written once.
//!
//! The collector writes one CSV file per kind of record per UTC day; webgen
//! reads them to draw the pages, and the collector reads them back at start
//! to rebuild its state. Everything the two must agree on lives here:
//!
//! - [`schema`]: the file names, the columns (named, in order, by the enums
//!   [`EventCol`] and [`TunnelCol`]) and one row type per file;
//! - [`files`]: listing a directory's log files and reading their rows;
//! - [`reader`]: which datagrams and complete reports the logs hold (the
//!   rules for retransmissions, orphan rows and damaged reports), with the
//!   plain reference reader [`reader::read`];
//! - [`EventKind`]: what an event row says happened;
//! - [`Thresholds`] and [`GatewayState`]: when a gateway is up, late or
//!   down, and what a silence is, with the defaults; [`Staleness`] which
//!   thresholds apply to each gateway (its declared period, the config's
//!   `[[gateway]]` overrides);
//! - [`TunnelKey`] and [`LaneKey`]: when two tunnel records are the same
//!   tunnel;
//! - [`duration`]: durations as operators write them (`150s`, `10m`);
//! - [`config`]: the monitoring host's config file, which both read;
//! - [`inventory`]: the tunnels that should be up, and how each is judged;
//! - [`route`]: which alerts go to which notify command;
//! - [`damping`]: when a tunnel alert is held back or thinned out;
//! - [`silence`]: planned work that must not page anyone;
//! - [`usage`]: when a tunnel was in use, and when an idle one is a
//!   candidate to close.
//!
//! It depends on `gateway-client` for the tunnel record, and on `csv`,
//! `jiff` and `toml`; nothing of HTTP, UDP or HTML.

#![warn(unreachable_pub)]

pub mod config;
pub mod damping;
pub mod duration;
mod error;
pub mod files;
mod gateway;
mod identity;
pub mod inventory;
mod kind;
pub mod reader;
pub mod route;
pub mod schema;
pub mod silence;
pub mod usage;

pub use error::Error;
pub use gateway::{GatewayState, Override, Staleness, Thresholds, declared_period};
pub use identity::{IDENTITY, LaneKey, TunnelKey};
pub use kind::EventKind;
pub use schema::{Column, EventCol, EventRow, LogKind, TunnelCol, TunnelRow};
