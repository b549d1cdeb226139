//! Stands in for the ssh processes of a gateway in the live benchmark
//! (`bench --only live`): started with `argv[0]` set to `ssh` and a tunnel's
//! command line (`ssh -N -L 127.0.0.1:40123:vnc-host:5907 novacr01@gw`), it
//! shows in `ps` and `/proc` as a shifter's tunnel does. For each `-L`
//! spec it listens on the spec's bind address and port, or as ssh does
//! without one on both loopback addresses (127.0.0.1 and ::1), and accepts and keeps every connection (the far side
//! of a VNC session), each listener on a thread blocked in `accept`, so it
//! uses no CPU while the benchmark measures. It exits when its standard
//! input ends (the runner's pipe closes, even if the runner dies) or after
//! `FAKE_SSH_SECONDS` (default 600).
//!
//! Only std; a spec it cannot bind is reported on stderr and skipped.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a `-L [bind:]port:host:hostport` spec listens.
fn listen_addrs(spec: &str) -> Vec<String> {
    let fields: Vec<&str> = spec.split(':').collect();
    match fields.as_slice() {
        [port, _, _] => vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")],
        [bind, port, _, _] => vec![format!("{bind}:{port}")],
        _ => Vec::new(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut specs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-L" {
            specs.extend(args.get(i + 1).cloned());
            i += 1;
        }
        i += 1;
    }
    let kept: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    for addr in specs.iter().flat_map(|s| listen_addrs(s)) {
        match TcpListener::bind(addr.as_str()) {
            Ok(l) => {
                let kept = Arc::clone(&kept);
                std::thread::spawn(move || {
                    for conn in l.incoming().flatten() {
                        kept.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
                    }
                });
            }
            Err(e) => eprintln!("live-ssh: cannot listen on {addr}: {e}"),
        }
    }
    let secs = std::env::var("FAKE_SSH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600u64)
        .min(3600);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        std::process::exit(0);
    });
    // Until the runner's pipe ends.
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
}
