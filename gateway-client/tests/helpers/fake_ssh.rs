//! A stand-in for `ssh` in the live-mode tests (`tests/live.rs`): compiled
//! at test time with `rustc` into a file named `ssh`, so that `ps` shows a
//! real process with a tunnel's command line, and no network is used.
//!
//! It ignores its arguments and sleeps for `FAKE_SSH_SECONDS` (default 30,
//! so a leaked one ends by itself). With `FAKE_SSH_LISTEN=stdin`, its
//! standard input is a listening TCP socket that the test bound (so the
//! port is known before the process starts, without a race): the process
//! holds it as ssh holds a forward's listener, and answers every connection
//! with `FAKE_SSH_BANNER` (default `RFB 003.008\n`), as a VNC server would
//! at the far end of the tunnel.
//!
//! With `FAKE_SSH_BIND=ADDR:PORT` it binds that listening socket itself (so
//! the socket is its account's, as ssh's is) and holds it without accepting:
//! connections to it wait in its queue, ESTABLISHED.
//!
//! Only std; no panics on bad input: a bad variable falls back to the default.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

fn main() {
    let secs = std::env::var("FAKE_SSH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(30)
        .min(600);
    let end = Instant::now() + Duration::from_secs(secs);
    // Held until the end.
    let _held = std::env::var("FAKE_SSH_BIND")
        .ok()
        .and_then(|a| TcpListener::bind(a.as_str()).ok());
    if std::env::var("FAKE_SSH_LISTEN").as_deref() == Ok("stdin") {
        let banner = std::env::var("FAKE_SSH_BANNER").unwrap_or_else(|_| "RFB 003.008\n".into());
        // SAFETY: the test gives us a listening socket as fd 0 and nothing
        // else owns that descriptor in this process.
        let listener = unsafe { TcpListener::from_raw_fd(0) };
        serve(&listener, banner.as_bytes(), end);
    }
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        std::thread::sleep(left.min(Duration::from_millis(500)));
    }
}

/// Answers connections until `end`.
fn serve(listener: &TcpListener, banner: &[u8], end: Instant) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while Instant::now() < end {
        match listener.accept() {
            Ok((mut conn, _)) => {
                let _ = conn.set_nonblocking(false);
                let _ = conn.write_all(banner);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
