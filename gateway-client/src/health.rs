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
//!   from [`crate::sockets`] (netlink, else `/proc/net/tcp{,6}`; read once
//!   per run and per network namespace, not once per tunnel: a gateway may
//!   hold hundreds), the process's sockets from the `socket:[INODE]` links
//!   in `/proc/PID/fd`. `yes`: the process holds such a socket. `no`: nothing
//!   listens on that port at all, or only other processes do. `unknown`:
//!   we cannot tell (no `/proc`, or the process's `fd` directory cannot be
//!   read: another user's process when not root, or the process is gone),
//!   and for `R` forwards, which listen on the far side, and forwards that
//!   listen on a Unix socket path.
//! - **Who is on it, always on** ([`check`]): for each `L` and `D`
//!   forward, `connections` counts the ESTABLISHED connections its
//!   listening sockets accepted (same address family, port, an address the
//!   listener covers, and the listener's owner, which an accepted socket
//!   inherits), and `connected` names the other end of each: when the peer
//!   is a socket of this host (its own row is in the table, the two
//!   addresses crossed), the account owning it; else its IP address. The
//!   forward's listeners are those the process holds, or when its fds cannot
//!   be read (another account's process, not root), those its account owns
//!   on the port: so an unprivileged client counts them too.
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
//! The judgements take the socket table as data and are tested on captured
//! tables (`tests/net_tables.rs`); the readers are thin wrappers over
//! `/proc` and netlink.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::live::ProcDir;
use crate::sockets::{self, Socket, canonical, canonical_addr};
use crate::tunnel::{Health, Kind, Tunnel};

/// Longest a probe of one forward may take, connect and read together.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Most probes in flight at once.
pub(crate) const PROBE_THREADS: usize = 16;

/// The length of an RFB ProtocolVersion message: `RFB 003.008\n`.
const RFB_GREETING_LEN: usize = 12;

/// The socket inodes among a process's open files, from the targets of the
/// links in `/proc/PID/fd` (`socket:[12345]`).
pub(crate) fn parse_socket_link(target: &str) -> Option<u64> {
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

/// The listening sockets that could be the forward's: on its port, at an
/// address its bind address admits.
fn candidates<'a>(t: &Tunnel, table: &'a [Socket]) -> impl Iterator<Item = &'a Socket> {
    let rule = bind_rule(&t.bind);
    table.iter().filter(move |s| {
        s.is_listener() && s.local.port() == t.listen_port && admits(rule, s.local.ip())
    })
}

/// The judgement for one forward, given the sockets of its network
/// namespace and the process's socket inodes (`None`: unreadable).
pub(crate) fn judge(t: &Tunnel, table: &[Socket], inodes: Option<&HashSet<u64>>) -> Health {
    if !checkable(t) {
        return Health::Unknown;
    }
    let mut candidates = candidates(t, table).peekable();
    if candidates.peek().is_none() {
        return Health::No; // nothing listens there at all
    }
    match inodes {
        None => Health::Unknown,
        Some(set) if candidates.any(|l| set.contains(&l.inode)) => Health::Yes,
        Some(_) => Health::No,
    }
}

/// The forward's own listening sockets: the candidates the process holds
/// (`inodes`), or when its fds cannot be read (another account's process,
/// unless we are root), those owned by the process's account (`owner`,
/// its real uid). `None` when neither is known.
fn own_listeners<'a>(
    t: &Tunnel,
    table: &'a [Socket],
    inodes: Option<&HashSet<u64>>,
    owner: Option<u32>,
) -> Option<Vec<&'a Socket>> {
    let c = candidates(t, table);
    match (inodes, owner) {
        (Some(set), _) => Some(c.filter(|l| set.contains(&l.inode)).collect()),
        (None, Some(uid)) => Some(c.filter(|l| l.uid == uid).collect()),
        (None, None) => None,
    }
}

/// Whether `conn` is a connection accepted by `listener`: the same family
/// (a dual-stack IPv6 listener's IPv4 connections are IPv6, v4-mapped), the
/// same port, an address the listener covers, and the listener's owner
/// (an accepted socket inherits it).
fn accepted_by(conn: &Socket, listener: &Socket) -> bool {
    !conn.is_listener()
        && conn.local.is_ipv4() == listener.local.is_ipv4()
        && conn.local.port() == listener.local.port()
        && conn.uid == listener.uid
        && (listener.local.ip().is_unspecified()
            || canonical(conn.local.ip()) == canonical(listener.local.ip()))
}

/// Who is at the other end of a connection: the account owning the peer's
/// socket when that socket is on this host (`peers`: the uid of each
/// ESTABLISHED socket by its local and remote address), its uid when
/// `names` lacks it; else the peer's IP address.
fn peer_of(conn: &Socket, peers: &Peers, names: &HashMap<u32, String>) -> String {
    let key = (canonical_addr(conn.remote), canonical_addr(conn.local));
    match peers.get(&key) {
        Some(uid) => names.get(uid).cloned().unwrap_or_else(|| uid.to_string()),
        None => canonical(conn.remote.ip()).to_string(),
    }
}

/// The uid of each ESTABLISHED socket, by (local, remote) address.
type Peers = HashMap<((IpAddr, u16), (IpAddr, u16)), u32>;

fn peers_of(table: &[Socket]) -> Peers {
    table
        .iter()
        .filter(|s| !s.is_listener())
        .map(|s| ((canonical_addr(s.local), canonical_addr(s.remote)), s.uid))
        .collect()
}

/// The connections to a forward's listening sockets and who made them
/// (sorted), or `None` when its listeners are not known.
fn connections(
    listeners: Option<&[&Socket]>,
    table: &[Socket],
    peers: &Peers,
    names: &HashMap<u32, String>,
) -> Option<(u32, Vec<String>)> {
    let listeners = listeners?;
    let mut who: Vec<String> = table
        .iter()
        .filter(|c| listeners.iter().any(|l| accepted_by(c, l)))
        .map(|c| peer_of(c, peers, names))
        .collect();
    who.sort_unstable();
    Some((u32::try_from(who.len()).unwrap_or(u32::MAX), who))
}

/// The connections to forward `t` and who made them, from its network
/// namespace's sockets alone (see [`check`], which reads the rest from
/// `/proc`): `inodes` are the process's socket inodes when readable,
/// `owner` its real uid. `None` when its listeners cannot be told.
#[cfg(test)]
pub(crate) fn who_is_on(
    t: &Tunnel,
    table: &[Socket],
    inodes: Option<&HashSet<u64>>,
    owner: Option<u32>,
    names: &HashMap<u32, String>,
) -> Option<(u32, Vec<String>)> {
    if !checkable(t) {
        return None;
    }
    let own = own_listeners(t, table, inodes, owner)?;
    connections(Some(&own), table, &peers_of(table), names)
}

/// Where `/proc` is; tests of the readers use the real one.
const PROC: &str = "/proc";

/// The network namespace a process is in (`net:[4026531840]`), if readable.
pub(crate) fn net_namespace(pid: &str) -> Option<PathBuf> {
    fs::read_link(format!("{PROC}/{pid}/ns/net")).ok()
}

/// [`net_namespace`] through an open `/proc/PID`.
fn namespace_of(dir: &ProcDir) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    dir.read_link(c"ns/net")
        .map(|l| PathBuf::from(std::ffi::OsString::from_vec(l)))
}

/// What the checks need of this host, read once per run: our network
/// namespace's sockets and the account names.
#[derive(Clone, Debug, Default)]
pub(crate) struct Host {
    /// Our network namespace (the link `/proc/self/ns/net`), if readable.
    pub(crate) own_ns: Option<PathBuf>,
    /// Its LISTEN and ESTABLISHED sockets ([`sockets::own_namespace`]);
    /// `None` when they cannot be read.
    pub(crate) sockets: Option<Vec<Socket>>,
    /// uid to account name (`/etc/passwd`).
    pub(crate) names: HashMap<u32, String>,
    /// Whether `sockets` has the ESTABLISHED ones; without them,
    /// `connections` stay unknown.
    pub(crate) connections: bool,
}

impl Host {
    /// Reads our namespace's sockets; `names` are the accounts.
    #[cfg(test)]
    pub(crate) fn read(names: HashMap<u32, String>) -> Host {
        Host {
            own_ns: net_namespace("self"),
            sockets: sockets::own_namespace(),
            names,
            connections: true,
        }
    }
}

/// [`check`] with this host as [`Host::read`] finds it, and without the
/// owners of the processes (`/proc/PID/status` is read for them).
#[cfg(test)]
pub(crate) fn check_listening(tunnels: &mut [Tunnel]) {
    let names = fs::read_to_string("/etc/passwd")
        .map(|s| crate::live::parse_passwd(&s))
        .unwrap_or_default();
    let host = Host::read(names);
    check(tunnels, &host, |pid| {
        fs::read_to_string(format!("{PROC}/{pid}/status"))
            .ok()
            .and_then(|s| crate::live::parse_status_uid(&s))
    });
}

/// Sets `listening`, `connections` and `connected` on every tunnel, as the
/// module doc says. `owner(pid)` is the real uid of a process, when known.
/// Reads each process's network namespace link once, each other network
/// namespace's tables once, and each process's `fd` directory once, only
/// for processes whose port has a listener, and only until the candidate
/// listeners are found.
pub(crate) fn check(tunnels: &mut [Tunnel], host: &Host, owner: impl Fn(u32) -> Option<u32>) {
    // The namespace of each process: None is our own (or unreadable).
    let mut ns_of: HashMap<u32, Option<PathBuf>> = HashMap::new();
    // Other namespaces' tables.
    let mut others: HashMap<PathBuf, Option<Vec<Socket>>> = HashMap::new();
    // Each process's /proc directory, opened once.
    let mut dirs: HashMap<u32, Option<ProcDir>> = HashMap::new();
    for t in tunnels.iter() {
        if checkable(t) && !ns_of.contains_key(&t.pid) {
            let dir = dirs.entry(t.pid).or_insert_with(|| ProcDir::open(t.pid));
            let ns = dir
                .as_ref()
                .and_then(namespace_of)
                .filter(|ns| Some(ns) != host.own_ns.as_ref());
            if let Some(ns) = &ns {
                others
                    .entry(ns.clone())
                    .or_insert_with(|| read_ns_tables(t.pid));
            }
            ns_of.insert(t.pid, ns);
        }
    }
    let table_of = |pid: u32| -> Option<&[Socket]> {
        match ns_of.get(&pid)? {
            None => host.sockets.as_deref(),
            Some(ns) => others.get(ns)?.as_deref(),
        }
    };
    // The candidate listeners' inodes of each process, then its fds once.
    let mut wanted: HashMap<u32, HashSet<u64>> = HashMap::new();
    for t in tunnels.iter().filter(|t| checkable(t)) {
        if let Some(table) = table_of(t.pid) {
            let w = wanted.entry(t.pid).or_default();
            w.extend(candidates(t, table).map(|l| l.inode));
        }
    }
    let inodes: HashMap<u32, Option<HashSet<u64>>> = wanted
        .iter()
        .filter(|(_, w)| !w.is_empty())
        .map(|(&pid, w)| {
            let dir = dirs.get(&pid).and_then(Option::as_ref);
            (pid, dir.and_then(|d| d.socket_inodes(Some(w))))
        })
        .collect();
    // Who is at the far end of each namespace's connections, when needed.
    let mut peers: HashMap<Option<&PathBuf>, Peers> = HashMap::new();
    for t in tunnels.iter_mut() {
        t.connections = None;
        t.connected.clear();
        if !checkable(t) {
            t.listening = Health::Unknown;
            continue;
        }
        let Some(table) = table_of(t.pid) else {
            t.listening = Health::Unknown;
            continue;
        };
        if candidates(t, table).next().is_none() {
            t.listening = Health::No; // nothing listens there at all
            t.connections = host.connections.then_some(0);
            continue;
        }
        let set = inodes.get(&t.pid).and_then(Option::as_ref);
        t.listening = judge(t, table, set);
        if !host.connections {
            continue;
        }
        let own = own_listeners(t, table, set, owner(t.pid));
        let peers = peers
            .entry(ns_of.get(&t.pid).and_then(Option::as_ref))
            .or_insert_with(|| peers_of(table));
        if let Some((n, who)) = connections(own.as_deref(), table, peers, &host.names) {
            t.connections = Some(n);
            t.connected = who;
        }
    }
}

/// The tables of the network namespace `pid` is in, through `/proc/PID/net`.
fn read_ns_tables(pid: u32) -> Option<Vec<Socket>> {
    sockets::read_proc_tables(Path::new(&format!("{PROC}/{pid}")))
}

/// Whether 12 bytes are an RFB ProtocolVersion message, `RFB xxx.yyy\n`
/// (`RFB 003.008\n`, `RFB 003.003\n`, and the `004.xxx`/`005.xxx` that some
/// servers send).
pub(crate) fn is_rfb_greeting(b: &[u8]) -> bool {
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
pub(crate) fn probe_one(t: &Tunnel) -> Health {
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
pub(crate) fn probe_vnc(tunnels: &mut [Tunnel]) {
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
mod net_tables;

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
    fn socket_links() {
        assert_eq!(parse_socket_link("socket:[940211]"), Some(940211));
        assert_eq!(parse_socket_link("pipe:[940211]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("socket:[]"), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn judgement() {
        let mut all = sockets::parse_tcp_table(TCP);
        all.extend(sockets::parse_tcp_table(TCP6));
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

    /// A listener that accepts and says nothing: the probe gives up.
    #[test]
    fn probe_silent_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = local("127.0.0.1", port, 5900);
        assert_eq!(probe_one(&t), Health::No);
    }
}
