//! Stands in for an `ssh` process that holds port forwards, for the
//! end-to-end test: started with `argv[0]` set to `ssh` and a real tunnel
//! command line (`ssh -N -L 40123:vnc-host:5907 shifter@gateway`), it shows
//! in `ps` exactly as a shifter's tunnel does. It connects nowhere: it
//! listens on 127.0.0.1 at each `-L` port (so the forward looks alive) and
//! exits after `FAKE_SSH_SECONDS` (default 300) or when killed.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

/// The local port of a `-L [bind:]port:host:hostport` spec.
fn listen_port(spec: &str) -> Option<u16> {
    let fields: Vec<&str> = spec.split(':').collect();
    let port = match fields.len() {
        3 => fields[0],
        4 => fields[1],
        _ => return None,
    };
    port.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut specs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-L" {
            if let Some(s) = args.get(i + 1) {
                specs.push(s.clone());
            }
            i += 1;
        } else if let Some(s) = args[i].strip_prefix("-L") {
            specs.push(s.to_string());
        }
        i += 1;
    }
    let mut listeners = Vec::new();
    for port in specs.iter().filter_map(|s| listen_port(s)) {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(l) => listeners.push(l),
            Err(e) => eprintln!("fake-ssh: cannot listen on 127.0.0.1:{port}: {e}"),
        }
    }
    let secs = std::env::var("FAKE_SSH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300u64)
        .min(3600);
    std::thread::sleep(Duration::from_secs(secs));
    drop(listeners);
}
