//! A gateway's worth of real forwards for the live benchmark: processes
//! whose command lines are ssh tunnels (`live-ssh`, started with `argv[0]`
//! `ssh`) and that hold the tunnels' listening sockets on 127.0.0.1, and
//! connections into some of them held open by this process, as VNC viewers
//! hold theirs. Everything ends when the [`Forwards`] is dropped.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Running fake ssh processes and the connections into their forwards.
pub struct Forwards {
    children: Vec<Child>,
    conns: Vec<TcpStream>,
    /// The pids of the fake ssh processes.
    pub pids: Vec<u32>,
    /// Forwards in all.
    pub forwards: usize,
}

impl Forwards {
    /// Starts `procs` fake ssh processes (the program `fake`), each with
    /// `per` forwards (`-L PORT:vnc-host:59NN`, on both loopback addresses,
    /// then `-L 127.0.0.1:PORT:...`), and opens `conns` connections into the
    /// first forward of each, alternately to 127.0.0.1 and ::1. Waits (at most 10 s) for
    /// every port to listen.
    pub fn start(fake: &Path, procs: usize, per: usize, conns: usize) -> Result<Forwards, Error> {
        let mut f = Forwards {
            children: Vec::new(),
            conns: Vec::new(),
            pids: Vec::new(),
            forwards: 0,
        };
        for p in 0..procs {
            let ports = (0..per)
                .map(|_| free_port())
                .collect::<Result<Vec<u16>, Error>>()?;
            let mut cmd = Command::new(fake);
            cmd.arg0("ssh").arg("-N");
            for (i, port) in ports.iter().enumerate() {
                // The first without a bind address (ssh then listens on
                // 127.0.0.1 and ::1), the others on 127.0.0.1.
                let bind = if i == 0 { "" } else { "127.0.0.1:" };
                cmd.arg("-L").arg(format!(
                    "{bind}{port}:novadaq-far-master-0{}:{}",
                    p % 4 + 1,
                    5900 + p * per + i
                ));
            }
            cmd.arg(format!("novacr{p:02}@novadaq-far-gateway-01"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            let child = cmd
                .spawn()
                .map_err(|e| Error::command(&fake.display().to_string(), e.to_string()))?;
            f.pids.push(child.id());
            f.children.push(child);
            f.forwards += per;
            for (i, port) in ports.iter().enumerate() {
                let c = connect_when_listening("127.0.0.1", *port)?;
                if i == 0 {
                    f.conns.push(c);
                    for k in 1..conns {
                        let to = if k % 2 == 1 { "::1" } else { "127.0.0.1" };
                        f.conns.push(connect_when_listening(to, *port)?);
                    }
                }
            }
        }
        Ok(f)
    }

    /// Connections held open into the forwards.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

impl Drop for Forwards {
    fn drop(&mut self) {
        self.conns.clear();
        for c in &mut self.children {
            // Closing stdin ends it; kill in case it does not.
            drop(c.stdin.take());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::case("live", e.to_string()))?;
    Ok(l.local_addr()
        .map_err(|e| Error::case("live", e.to_string()))?
        .port())
}

/// A connection to `to`:`port` once something listens there (at most 10 s,
/// 500 tries).
fn connect_when_listening(to: &str, port: u16) -> Result<TcpStream, Error> {
    let end = Instant::now() + Duration::from_secs(10);
    for _ in 0..500 {
        if let Ok(c) = TcpStream::connect((to, port)) {
            return Ok(c);
        }
        if Instant::now() > end {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::case(
        "live",
        format!("nothing listens on {to} port {port} after 10 s"),
    ))
}
