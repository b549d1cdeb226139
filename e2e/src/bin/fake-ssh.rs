//! Stands in for an `ssh` process that holds port forwards, for the
//! end-to-end test and `scripts/demo`: started with `argv[0]` set to `ssh`
//! and a real tunnel command line (`ssh -N -L 40123:vnc-host:5907
//! shifter@gateway`), it shows in `ps` exactly as a shifter's tunnel does.
//! It connects to no ssh server: it listens on 127.0.0.1 at each `-L` port
//! and `-D` port (so the forward looks alive to the client's `/proc` check).
//!
//! Its environment chooses the rest, invisible in `ps`:
//!
//! - `FAKE_SSH_SECONDS`: exit after this many seconds (default 300, at most
//!   86,400);
//! - `FAKE_SSH_LISTEN=no`: listen on nothing, as ssh does when its port was
//!   taken (`ExitOnForwardFailure=no`): a broken forward;
//! - `FAKE_SSH_CONNECT=ADDR:PORT`: relay each connection to a forward's port
//!   to ADDR:PORT (a local stand-in for the far end, such as `fake-vnc`), so
//!   that a probe through the forward gets the far end's answer.
//!
//! It also exits when the process that started it is gone (its parent
//! changes), so a test or demo that dies leaves no fake tunnel behind.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

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

/// The port of a `-D [bind:]port` spec.
fn dynamic_port(spec: &str) -> Option<u16> {
    spec.rsplit(':').next()?.parse().ok()
}

/// Copies one direction of a relayed connection until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Accepts connections on `listener` and relays each to `far`; without a
/// far end, holds each connection open without a word (as ssh does while
/// the far side does not answer) until the peer closes.
fn serve(listener: TcpListener, far: Option<SocketAddr>) {
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let Some(far) = far else {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
                let _ = conn.read(&mut [0u8; 1]);
                return;
            };
            let Ok(out) = TcpStream::connect_timeout(&far, Duration::from_secs(2)) else {
                return;
            };
            let (Ok(conn2), Ok(out2)) = (conn.try_clone(), out.try_clone()) else {
                return;
            };
            let back = std::thread::spawn(move || pipe(out2, conn2));
            pipe(conn, out);
            let _ = back.join();
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut ports = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let (flag, rest) = match args[i].as_str() {
            "-L" | "-D" => {
                i += 1;
                (&args[i - 1][..], args.get(i).cloned())
            }
            a if a.starts_with("-L") || a.starts_with("-D") => (&a[..2], Some(a[2..].to_string())),
            _ => ("", None),
        };
        if let Some(spec) = rest {
            let port = if flag == "-L" {
                listen_port(&spec)
            } else {
                dynamic_port(&spec)
            };
            ports.extend(port);
        }
        i += 1;
    }
    let env = |name: &str| std::env::var(name).ok();
    let listen = env("FAKE_SSH_LISTEN").as_deref() != Some("no");
    let far: Option<SocketAddr> = env("FAKE_SSH_CONNECT").and_then(|s| s.parse().ok());
    if listen {
        for port in ports {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(l) => {
                    std::thread::spawn(move || serve(l, far));
                }
                Err(e) => eprintln!("fake-ssh: cannot listen on 127.0.0.1:{port}: {e}"),
            }
        }
    }
    let secs = env("FAKE_SSH_SECONDS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(300u64)
        .min(86_400);
    let parent = std::os::unix::process::parent_id();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end && std::os::unix::process::parent_id() == parent {
        std::thread::sleep(Duration::from_millis(500));
    }
}
