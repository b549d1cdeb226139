//! A stand-in for a VNC server, for `scripts/demo` and the tests: `fake-vnc
//! PORT` listens on 127.0.0.1:PORT and greets every connection as a VNC
//! server does, with the 12 bytes `RFB 003.008\n`, then keeps it open, as a
//! viewer's session, until the peer closes it (whatever the peer sends is
//! read and dropped). That greeting is all the gateway client's `--probe`
//! reads before it closes; a viewer that stays (the demo's) keeps the
//! connection through the forward in use. It exits after
//! `FAKE_VNC_SECONDS` (default 300, at most 86,400) or when the process that
//! started it is gone.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: fake-vnc PORT");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake-vnc: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                if conn.write_all(b"RFB 003.008\n").is_ok() {
                    let mut buf = [0u8; 4096];
                    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                }
            });
        }
    });
    let secs = std::env::var("FAKE_VNC_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300u64)
        .min(86_400);
    let parent = std::os::unix::process::parent_id();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end && std::os::unix::process::parent_id() == parent {
        std::thread::sleep(Duration::from_millis(500));
    }
    ExitCode::SUCCESS
}
