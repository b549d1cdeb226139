//! The gateway side of the ROC tunnel monitor, and the vocabulary the rest of
//! the workspace shares.
//!
//! A gateway runs `ps aux`, and every ssh (or autossh) process on it that
//! holds port forwards becomes one [`Tunnel`] record per forward. The records
//! are signed and sent over UDP to the collector, which acknowledges them.
//!
//! - [`tunnel`]: the record itself.
//! - [`ps`]: reads `ps aux` / `ps auxww` / busybox `ps` output into processes
//!   and asks [`ssh_args`] which of them are tunnels; [`lines`] reads the
//!   capture (or `ps`'s pipe) a buffer at a time for it.
//! - [`ssh_args`]: OpenSSH's (and autossh's) option grammar, from a command
//!   line to the forwards it sets up.
//! - [`wire`]: the datagram format: header, HMAC, JSON body, split and
//!   reassembly. The collector uses it too, so it lives here.
//! - `json`: the small strict JSON reader and writer the wire uses
//!   (private: other crates read `--json` lines with
//!   [`Tunnel::from_json_line`]).
//! - [`key`]: the shared secret, read from a file.
//! - [`live`]: the live run: `ps`, completed from `/proc`, and each
//!   forward's listener and connections checked (`health`, from the
//!   kernel's socket table read by `sockets`); [`live::rescan`] looks
//!   again from `/proc` alone.
//!
//! The binary's modules: `run` (command line to exit status), `cli`,
//! `send` (delivery with retries, to each collector named), `printout`,
//! and watch mode (`--watch`): `watch` (a look at `/proc` every interval
//! with [`live::rescan`], a report at each change), `lock` (one watcher per
//! gateway name) and `signals` (SIGTERM and SIGINT between looks).
//!
//! This crate's normal dependencies are std plus crates with no dependencies
//! of their own: it is built statically and copied to machines that have
//! nothing else.

#![warn(unreachable_pub)]

mod cli;
mod error;
mod health;
mod json;
pub mod key;
mod lines;
pub mod live;
mod lock;
mod printout;
pub mod ps;
pub mod reassembly;
pub mod run;
mod send;
mod signals;
mod sockets;
mod ssh_args;
pub mod tunnel;
mod utc;
mod watch;
pub mod wire;

pub use tunnel::{Health, Kind, Tunnel};

#[cfg(test)]
mod tests;
