//! Forward health: is a tunnel that `ps` shows really working?
//!
//! A live ssh process is not yet a working tunnel: with
//! `ExitOnForwardFailure=no` (the default) ssh keeps running when its
//! listener could not bind, for instance because another process already
//! holds the port. Two checks answer that, both local to the gateway:
//!
//! - **Passive, always on** ([`check_listening`]): for each `L` and `D`
//!   forward, is there a TCP socket in LISTEN state on its listen port, and
//!   is that socket one of the ssh process's own open files? The sockets come
//!   from `/proc/net/tcp` and `/proc/net/tcp6` (read once per run and per
//!   network namespace, not once per tunnel: a gateway may hold hundreds),
//!   the process's sockets from the `socket:[INODE]` links in
//!   `/proc/PID/fd`. `yes`: the process holds such a socket. `no`: nothing
//!   listens on that port at all, or only other processes do. `unknown`:
//!   we cannot tell (no `/proc`, or the process's `fd` directory cannot be
//!   read: another user's process when not root, or the process is gone),
//!   and for `R` forwards, which listen on the far side, and forwards that
//!   listen on a Unix socket path.
//! - **Active, `--probe`** ([`probe_vnc`]): for each `L` forward to a VNC
//!   port (5900–5999), connect to its local end and read the 12-byte RFB
//!   greeting (`RFB 003.008\n`). `yes` when a VNC server answered through
//!   the whole path (gateway, ssh, far side, VNC server); `no` when the
//!   connection was refused, nothing came back within a second, or something
//!   else answered. Forwards already known not to listen (`listening` = no)
//!   are `no` without a connection: their port belongs to someone else.
//!   Probes run in parallel (at most [`PROBE_THREADS`] at a time), so fifty
//!   dead tunnels cost a few seconds, not fifty.
//!
//! Which listening addresses count for a forward follows ssh's own choice
//! of bind address for local forwards: no bind address or `localhost` means
//! the loopback addresses (`127.0.0.1`, `::1`), or the wildcard address when
//! ssh runs with `-g` / `GatewayPorts yes`; `*`, an empty address (`:5900`),
//! `0.0.0.0` and `::` mean the wildcard; an IP address means that address
//! (or the wildcard); a host name would need DNS, so any address on the port
//! counts. The decisive test is that the process holds the socket: the
//! address only keeps a stray socket of the same process from counting.
//!
//! The parsers take `&str` and are tested on synthetic tables; the readers
//! are thin wrappers over `/proc`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::tunnel::{Health, Kind, Tunnel};

/// TCP state LISTEN as `/proc/net/tcp` prints it (`st` column, hex).
const TCP_LISTEN: u8 = 0x0A;

/// Longest a probe of one forward may take, connect and read together.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Most probes in flight at once.
pub const PROBE_THREADS: usize = 16;

/// The length of an RFB ProtocolVersion message: `RFB 003.008\n`.
const RFB_GREETING_LEN: usize = 12;

/// A socket in LISTEN state, from one line of `/proc/net/tcp{,6}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
}

/// Reads the listening sockets of a `/proc/net/tcp` or `/proc/net/tcp6`
/// table (the address width tells which). Lines in other states, the header
/// and malformed lines are skipped.
pub fn parse_tcp_table(text: &str) -> Vec<Listener> {
    text.lines().filter_map(parse_tcp_line).collect()
}

/// One line: `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`.
fn parse_tcp_line(line: &str) -> Option<Listener> {
    let mut w = line.split_ascii_whitespace();
    let sl = w.next()?;
    if !sl.ends_with(':') {
        return None; // the header ("sl  local_address ...")
    }
    let local = w.next()?;
    let _remote = w.next()?;
    let st = u8::from_str_radix(w.next()?, 16).ok()?;
    if st != TCP_LISTEN {
        return None;
    }
    // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout, then inode.
    let inode = w.nth(5)?.parse().ok()?;
    let (addr, port) = parse_hex_socket(local)?;
    Some(Listener { addr, port, inode })
}

/// `0100007F:1770` (IPv4) or `00000000000000000000000001000000:1770` (IPv6).
///
/// The kernel prints the address as 32-bit words with `%08X`, each word as
/// the CPU holds it (host byte order): on a little-endian machine
/// 127.0.0.1 is `0100007F`. The port is a plain hex number.
pub fn parse_hex_socket(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16)
        .ok()
        .filter(|_| port.len() == 4)?;
    if !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let word = |i: usize| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok();
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?.to_ne_bytes())),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// The socket inodes among a process's open files, from the targets of the
/// links in `/proc/PID/fd` (`socket:[12345]`).
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Which listening addresses a forward's bind address admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BindRule {
    /// Loopback, or the wildcard (`-g`, `GatewayPorts yes`).
    Loopback,
    /// Any address: ssh bound the wildcard address.
    Wildcard,
    /// This address, or the wildcard.
    Exact(IpAddr),
    /// A host name: any address on the port.
    Any,
}

fn bind_rule(bind: &str) -> BindRule {
    let b = bind.trim_start_matches('[').trim_end_matches(']');
    match b {
        // No bind address, or an empty one (`:5900`, the wildcard for ssh):
        // the two cannot be told apart in a record, and Loopback admits both.
        "" | "localhost" => BindRule::Loopback,
        "*" => BindRule::Wildcard,
        _ => match b.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => BindRule::Wildcard,
            Ok(ip) => BindRule::Exact(ip),
            Err(_) => BindRule::Any,
        },
    }
}

/// The address itself, with IPv4-mapped IPv6 (`::ffff:127.0.0.1`) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn admits(rule: BindRule, addr: IpAddr) -> bool {
    let addr = canonical(addr);
    match rule {
        BindRule::Loopback => addr.is_loopback() || addr.is_unspecified(),
        BindRule::Wildcard => true,
        BindRule::Exact(ip) => addr == canonical(ip) || addr.is_unspecified(),
        BindRule::Any => true,
    }
}

/// Whether the forward is one whose listening side we can check here.
fn checkable(t: &Tunnel) -> bool {
    matches!(t.kind, Kind::Local | Kind::Dynamic) && t.listen_port != 0 && !t.bind.contains('/')
}

/// The judgement for one forward, given the listening sockets of its
/// network namespace and the process's socket inodes (`None`: unreadable).
pub fn judge(t: &Tunnel, listeners: &[Listener], inodes: Option<&HashSet<u64>>) -> Health {
    if !checkable(t) {
        return Health::Unknown;
    }
    let rule = bind_rule(&t.bind);
    let mut candidates = listeners
        .iter()
        .filter(|l| l.port == t.listen_port && admits(rule, l.addr))
        .peekable();
    if candidates.peek().is_none() {
        return Health::No; // nothing listens there at all
    }
    match inodes {
        None => Health::Unknown,
        Some(set) if candidates.any(|l| set.contains(&l.inode)) => Health::Yes,
        Some(_) => Health::No,
    }
}

/// Where `/proc` is; tests of the readers use the real one.
const PROC: &str = "/proc";

/// The listening sockets of one network namespace: `dir` is `/proc` or
/// `/proc/PID`. `None` when neither table can be read (no `/proc`); a
/// missing `tcp6` (IPv6 disabled) is an empty table.
fn read_tables(dir: &Path) -> Option<Vec<Listener>> {
    let v4 = fs::read_to_string(dir.join("net/tcp"));
    let v6 = fs::read_to_string(dir.join("net/tcp6"));
    if v4.is_err() && v6.is_err() {
        return None;
    }
    let mut out = Vec::new();
    for text in [v4, v6].into_iter().flatten() {
        out.extend(parse_tcp_table(&text));
    }
    Some(out)
}

/// The socket inodes a process holds; `None` when its `fd` directory cannot
/// be read (another user's process when not root, or the process is gone).
pub fn socket_inodes(pid: u32) -> Option<HashSet<u64>> {
    let dir = PathBuf::from(format!("{PROC}/{pid}/fd"));
    let mut set = HashSet::new();
    for entry in fs::read_dir(&dir).ok()? {
        let Ok(entry) = entry else { return None };
        // An fd closed between listing and reading is simply not there.
        if let Ok(target) = fs::read_link(entry.path())
            && let Some(inode) = target.to_str().and_then(parse_socket_link)
        {
            set.insert(inode);
        }
    }
    Some(set)
}

/// The network namespace a process is in (`net:[4026531840]`), if readable.
fn net_namespace(pid: &str) -> Option<PathBuf> {
    fs::read_link(format!("{PROC}/{pid}/ns/net")).ok()
}

/// Sets `listening` on every tunnel: yes / no / unknown as the module doc
/// says. Reads each network namespace's tables once, and each process's
/// `fd` directory once, only for processes whose port has a listener.
pub fn check_listening(tunnels: &mut [Tunnel]) {
    let own_ns = net_namespace("self");
    // Tables per network namespace; the key None is our own.
    let mut tables: HashMap<Option<PathBuf>, Option<Vec<Listener>>> = HashMap::new();
    let mut inodes: HashMap<u32, Option<HashSet<u64>>> = HashMap::new();
    for t in tunnels.iter_mut() {
        if !checkable(t) {
            t.listening = Health::Unknown;
            continue;
        }
        // A process in another network namespace (a container) listens in
        // its own tables; a namespace we cannot read is taken as ours.
        let ns = net_namespace(&t.pid.to_string()).filter(|ns| Some(ns) != own_ns.as_ref());
        let table = tables.entry(ns.clone()).or_insert_with(|| match &ns {
            None => read_tables(Path::new(PROC)),
            Some(_) => read_tables(Path::new(&format!("{PROC}/{}", t.pid))),
        });
        let Some(table) = table else {
            t.listening = Health::Unknown;
            continue;
        };
        let pid = t.pid;
        // judge() only looks at the inodes when some socket listens on the
        // port, so read them lazily.
        t.listening = if table.iter().any(|l| l.port == t.listen_port) {
            let set = inodes.entry(pid).or_insert_with(|| socket_inodes(pid));
            judge(t, table, set.as_ref())
        } else {
            judge(t, table, None)
        };
    }
}

/// Whether 12 bytes are an RFB ProtocolVersion message, `RFB xxx.yyy\n`
/// (`RFB 003.008\n`, `RFB 003.003\n`, and the `004.xxx`/`005.xxx` that some
/// servers send).
pub fn is_rfb_greeting(b: &[u8]) -> bool {
    b.len() == RFB_GREETING_LEN
        && b.starts_with(b"RFB ")
        && b[4..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'.'
        && b[8..11].iter().all(u8::is_ascii_digit)
        && b[11] == b'\n'
}

/// Where to connect to reach a forward's local end; empty when we cannot
/// tell without DNS (a host name as bind address).
fn probe_addrs(t: &Tunnel) -> Vec<SocketAddr> {
    let port = t.listen_port;
    let loopback = || {
        vec![
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ]
    };
    match bind_rule(&t.bind) {
        BindRule::Loopback | BindRule::Wildcard => loopback(),
        BindRule::Exact(ip) => vec![SocketAddr::new(ip, port)],
        BindRule::Any => Vec::new(),
    }
}

/// Whether a forward is one `--probe` looks at: local, to a VNC port.
fn probeable(t: &Tunnel) -> bool {
    t.kind == Kind::Local && t.vnc_display().is_some() && checkable(t)
}

/// Connects to one address and reads the greeting, all before `deadline`.
fn greeting_at(addr: SocketAddr, deadline: Instant) -> io::Result<bool> {
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    };
    let mut s = TcpStream::connect_timeout(&addr, left()?)?;
    let mut buf = [0u8; RFB_GREETING_LEN];
    let mut got = 0;
    while got < buf.len() {
        s.set_read_timeout(Some(left()?))?;
        match s.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A read timeout is WouldBlock on Linux, TimedOut elsewhere.
            Err(e) => return Err(e),
        }
        if !buf[..got].starts_with(&b"RFB "[..got.min(4)]) {
            break; // something else answered
        }
    }
    Ok(is_rfb_greeting(&buf[..got]))
}

/// Probes one forward: yes when a VNC server answered within
/// [`PROBE_TIMEOUT`], no when not, unknown when there is nothing to probe.
pub fn probe_one(t: &Tunnel) -> Health {
    if !probeable(t) {
        return Health::Unknown;
    }
    if t.listening == Health::No {
        return Health::No;
    }
    let addrs = probe_addrs(t);
    if addrs.is_empty() {
        return Health::Unknown;
    }
    let deadline = Instant::now() + PROBE_TIMEOUT;
    for addr in addrs {
        match greeting_at(addr, deadline) {
            Ok(true) => return Health::Yes,
            // Connected and something else answered: that is the answer.
            Ok(false) => return Health::No,
            // Refused on one loopback address: ssh may have bound the other.
            Err(_) if Instant::now() < deadline => continue,
            Err(_) => break,
        }
    }
    Health::No
}

/// Sets `vnc` on every local VNC forward (see the module doc); other
/// forwards keep theirs. Runs at most [`PROBE_THREADS`] probes at a time.
pub fn probe_vnc(tunnels: &mut [Tunnel]) {
    let jobs: Vec<usize> = (0..tunnels.len())
        .filter(|&i| probeable(&tunnels[i]))
        .collect();
    if jobs.is_empty() {
        return;
    }
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let shared: &[Tunnel] = tunnels;
    std::thread::scope(|scope| {
        for _ in 0..jobs.len().min(PROBE_THREADS) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = jobs.get(k) else { break };
                    let h = probe_one(&shared[i]);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, h));
                }
            });
        }
    });
    for (i, h) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        tunnels[i].vnc = h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn local(bind: &str, listen_port: u16, target_port: u16) -> Tunnel {
        Tunnel {
            pid: std::process::id(),
            kind: Kind::Local,
            bind: bind.into(),
            listen_port,
            target_host: "localhost".into(),
            target_port,
            ..Tunnel::default()
        }
    }

    // A real /proc/net/tcp (little-endian x86_64): sshd on 0.0.0.0:22, an
    // ssh -L 5901 on 127.0.0.1, an established connection, the header.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18812 1 0000000000000000 100 0 0 10 0
   1: 0100007F:170D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 940211 1 0000000000000000 100 0 0 10 0
   2: 0100007F:170D 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000  1000        0 940355 1 0000000000000000 20 4 30 10 -1
";

    // tcp6: ssh -L 5901 on ::1, a wildcard :: on 8080, a v4-mapped one.
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:170D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 940212 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5551 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5552 1 0000000000000000 100 0 0 10 0
";

    #[test]
    #[cfg(target_endian = "little")]
    fn tcp_table_keeps_listeners_only() {
        let l = parse_tcp_table(TCP);
        assert_eq!(
            l,
            vec![
                Listener {
                    addr: "0.0.0.0".parse().unwrap(),
                    port: 22,
                    inode: 18812
                },
                Listener {
                    addr: "127.0.0.1".parse().unwrap(),
                    port: 5901,
                    inode: 940211
                },
            ]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn tcp6_addresses_are_words_in_host_order() {
        let l = parse_tcp_table(TCP6);
        let addrs: Vec<(String, u16, u64)> = l
            .iter()
            .map(|l| (l.addr.to_string(), l.port, l.inode))
            .collect();
        assert_eq!(
            addrs,
            vec![
                ("::1".to_string(), 5901, 940212),
                ("::".to_string(), 8080, 5551),
                ("::ffff:127.0.0.1".to_string(), 8081, 5552),
            ]
        );
        let (ip, port) = parse_hex_socket("B80D0120000000000000000001000000:0050").unwrap();
        assert_eq!((ip.to_string().as_str(), port), ("2001:db8::1", 80));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        for bad in [
            "",
            "garbage",
            "0: 0100007F:170D",
            "0: 0100007F:170D 00000000:0000 0A",
            "0: 0100007F:170D 00000000:0000 ZZ 0:0 0:0 0 0 0 12",
            "0: 0100007G:170D 00000000:0000 0A 0:0 0:0 0 0 0 12",
            "0: 0100007F:17 00000000:0000 0A 0:0 0:0 0 0 0 12",
            "0: 0100007F:170D 00000000:0000 0A 0:0 0:0 0 0 0 x12",
            "0: 0100007F0:170D 00000000:0000 0A 0:0 0:0 0 0 0 12",
            "0: é100007F:170D 00000000:0000 0A 0:0 0:0 0 0 0 12",
        ] {
            assert_eq!(parse_tcp_table(bad), vec![], "{bad:?}");
        }
        assert_eq!(
            parse_tcp_table("0: 0100007F:170D 00000000:0000 0A 0:0 0:0 0 0 0 12").len(),
            1
        );
    }

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link("socket:[940211]"), Some(940211));
        assert_eq!(parse_socket_link("pipe:[940211]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("socket:[]"), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn judgement() {
        let mut all = parse_tcp_table(TCP);
        all.extend(parse_tcp_table(TCP6));
        let ours: HashSet<u64> = [940211, 940212, 7].into();
        let theirs: HashSet<u64> = [1, 2, 3].into();
        let t = local("", 5901, 5951);
        assert_eq!(judge(&t, &all, Some(&ours)), Health::Yes);
        assert_eq!(judge(&t, &all, Some(&theirs)), Health::No);
        assert_eq!(judge(&t, &all, None), Health::Unknown);
        // Nothing listens on 5902: no, even without the process's fds.
        assert_eq!(judge(&local("", 5902, 5952), &all, None), Health::No);
        // Bound to 10.0.0.1 but the process listens on loopback only.
        assert_eq!(
            judge(&local("10.0.0.1", 5901, 5951), &all, Some(&ours)),
            Health::No
        );
        assert_eq!(
            judge(&local("127.0.0.1", 5901, 5951), &all, Some(&ours)),
            Health::Yes
        );
        assert_eq!(
            judge(&local("[::1]", 5901, 5951), &all, Some(&ours)),
            Health::Yes
        );
        assert_eq!(
            judge(&local("gw.example", 5901, 5951), &all, Some(&ours)),
            Health::Yes
        );
        // The wildcard socket on 8080 serves a loopback forward too (-g).
        let wild: HashSet<u64> = [5551].into();
        assert_eq!(
            judge(&local("", 8080, 5951), &all, Some(&wild)),
            Health::Yes
        );
        assert_eq!(
            judge(&local("*", 8080, 5951), &all, Some(&wild)),
            Health::Yes
        );
        let mapped: HashSet<u64> = [5552].into();
        assert_eq!(
            judge(&local("127.0.0.1", 8081, 5951), &all, Some(&mapped)),
            Health::Yes
        );
        // R forwards and socket paths: unknown.
        let r = Tunnel {
            kind: Kind::Remote,
            ..local("", 5901, 5951)
        };
        assert_eq!(judge(&r, &all, Some(&ours)), Health::Unknown);
        assert_eq!(
            judge(&local("/tmp/s.sock", 0, 5951), &all, Some(&ours)),
            Health::Unknown
        );
        let d = Tunnel {
            kind: Kind::Dynamic,
            target_port: 0,
            target_host: String::new(),
            ..local("", 5901, 0)
        };
        assert_eq!(judge(&d, &all, Some(&ours)), Health::Yes);
    }

    #[test]
    fn rfb_greetings() {
        assert!(is_rfb_greeting(b"RFB 003.008\n"));
        assert!(is_rfb_greeting(b"RFB 003.003\n"));
        assert!(is_rfb_greeting(b"RFB 003.889\n"));
        assert!(!is_rfb_greeting(b"RFB 003.008"));
        assert!(!is_rfb_greeting(b"RFB 003.008\r"));
        assert!(!is_rfb_greeting(b"SSH-2.0-Open"));
        assert!(!is_rfb_greeting(b"RFB 0x3.008\n"));
        assert!(!is_rfb_greeting(b""));
    }

    /// A real listener in this process: our own fds hold it.
    #[test]
    fn real_listener_of_this_process() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut ts = vec![local("", port, 5951), local("127.0.0.1", port, 5951)];
        check_listening(&mut ts);
        if Path::new("/proc/net/tcp").exists() {
            assert_eq!(ts[0].listening, Health::Yes);
            assert_eq!(ts[1].listening, Health::Yes);
        }
        drop(l);
        check_listening(&mut ts);
        if Path::new("/proc/net/tcp").exists() {
            assert_eq!(ts[0].listening, Health::No);
        }
    }

    /// Serves one greeting per connection, for at most `n` connections
    /// and at most 10 seconds.
    fn greeter(banner: &'static [u8], n: usize) -> (u16, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(10);
            let mut served = 0;
            while served < n && Instant::now() < end {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.write_all(banner);
                        served += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        (port, h)
    }

    #[test]
    fn probe_real_listeners() {
        let (vnc, h1) = greeter(b"RFB 003.008\n", 1);
        let (ssh, h2) = greeter(b"SSH-2.0-OpenSSH_9.2p1\r\n", 1);
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut ts = vec![
            local("", vnc, 5901),
            local("127.0.0.1", ssh, 5902),
            local("", free, 5903),
            local("", vnc, 22), // not a VNC forward: left alone
            Tunnel {
                listening: Health::No,
                ..local("", vnc, 5904)
            },
        ];
        probe_vnc(&mut ts);
        let got: Vec<Health> = ts.iter().map(|t| t.vnc).collect();
        assert_eq!(
            got,
            vec![
                Health::Yes,
                Health::No,
                Health::No,
                Health::Unknown,
                Health::No
            ]
        );
        h1.join().unwrap();
        h2.join().unwrap();
    }

    /// More VNC forwards than probe threads, half of them dead: each gets
    /// its own answer.
    #[test]
    fn many_probes_in_parallel() {
        let n = PROBE_THREADS + 8;
        let listeners: Vec<TcpListener> = (0..n)
            .map(|_| {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect();
        let mut ts: Vec<Tunnel> = Vec::new();
        for l in &listeners {
            ts.push(local("127.0.0.1", l.local_addr().unwrap().port(), 5901));
            let free = TcpListener::bind("127.0.0.1:0").unwrap();
            ts.push(local("127.0.0.1", free.local_addr().unwrap().port(), 5902));
        }
        let server = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(10);
            let mut served = vec![false; listeners.len()];
            while served.contains(&false) && Instant::now() < end {
                for (i, l) in listeners.iter().enumerate() {
                    if let Ok((mut c, _)) = l.accept() {
                        let _ = c.write_all(b"RFB 003.008\n");
                        served[i] = true;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        probe_vnc(&mut ts);
        server.join().unwrap();
        for pair in ts.chunks(2) {
            assert_eq!((pair[0].vnc, pair[1].vnc), (Health::Yes, Health::No));
        }
    }

    proptest::proptest! {
        /// Whatever /proc/net/tcp holds, reading it does not panic, and
        /// every socket read from it is a listener on a real port.
        #[test]
        fn any_table_text(text in "\\PC*", lines in proptest::collection::vec(
            "[ 0-9A-Fa-f:x]{0,120}", 0..8)) {
            let _ = parse_tcp_table(&text);
            let joined = lines.join("\n");
            for l in parse_tcp_table(&joined) {
                let port = format!("{:04X}", l.port);
                proptest::prop_assert!(joined.to_ascii_uppercase().contains(&port), "{}", port);
            }
        }
    }

    /// A listener that accepts and says nothing: the probe gives up.
    #[test]
    fn probe_silent_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = local("127.0.0.1", port, 5900);
        assert_eq!(probe_one(&t), Health::No);
    }
}
