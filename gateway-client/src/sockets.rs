//! The TCP sockets of this host that the health check and the connection
//! count need: those in LISTEN and ESTABLISHED state, with their addresses,
//! owner uid and inode.
//!
//! Two sources give the same rows. [`dump`] asks the kernel over netlink
//! (`NETLINK_SOCK_DIAG`, the states filtered by the kernel): the listeners
//! first, which costs ~20 µs (the kernel walks its small listening hash),
//! then the ESTABLISHED sockets of both address families in one request,
//! which makes the kernel walk its established hash once (~1 ms on the
//! development machine, whose hash has 262,144 buckets; it is sized by
//! memory) but formats only the sockets asked for. When netlink is
//! unavailable (a kernel without `inet_diag`, a seccomp filter) or for
//! another network namespace, [`read_proc_tables`] reads `/proc/net/tcp`
//! and `/proc/net/tcp6` (or `/proc/PID/net/...`): each read of those walks
//! the whole table and formats every socket, ~4.4 ms a file there. Both
//! need no privilege: every account may list every socket of its
//! namespace, with its uid and inode (what a socket's owner alone may see
//! are its process's fds).
//!
//! The parsers take bytes or `&str` and are tested on synthetic lines and
//! netlink messages here, on captured tables in `tests/net_tables.rs`; a
//! test here compares the two sources on live sockets.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;

/// TCP state ESTABLISHED (`st` 01 in `/proc/net/tcp`, `TCP_ESTABLISHED`).
pub(crate) const TCP_ESTABLISHED: u8 = 1;
/// TCP state LISTEN (`st` 0A in `/proc/net/tcp`, `TCP_LISTEN`).
pub(crate) const TCP_LISTEN: u8 = 10;
/// TCP state SYN_SENT (`TCP_SYN_SENT`): a connection this host is opening.
/// Asked for only by [`Established`]'s walk, and never kept in a table.
const TCP_SYN_SENT: u8 = 2;

/// One TCP socket in LISTEN or ESTABLISHED state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Socket {
    /// [`TCP_LISTEN`] or [`TCP_ESTABLISHED`].
    pub(crate) state: u8,
    pub(crate) local: SocketAddr,
    /// The peer; the unspecified address and port 0 for a listener.
    pub(crate) remote: SocketAddr,
    /// The socket's owner (for an accepted connection, the listener's).
    pub(crate) uid: u32,
    /// 0 for a connection not yet accepted (or otherwise orphaned).
    pub(crate) inode: u64,
}

impl Socket {
    pub(crate) fn is_listener(&self) -> bool {
        self.state == TCP_LISTEN
    }
}

/// The address itself, with IPv4-mapped IPv6 (`::ffff:127.0.0.1`) as IPv4:
/// a dual-stack IPv6 listener's IPv4 connections show that way.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// [`canonical`] of a socket address's IP, with its port.
pub(crate) fn canonical_addr(a: SocketAddr) -> (IpAddr, u16) {
    (canonical(a.ip()), a.port())
}

// ---- /proc/net/tcp{,6} ----

/// The LISTEN and ESTABLISHED sockets of a `/proc/net/tcp` or
/// `/proc/net/tcp6` table (the address width tells which). Lines in other
/// states, the header and malformed lines are skipped.
pub(crate) fn parse_tcp_table(text: &str) -> Vec<Socket> {
    text.lines().filter_map(parse_tcp_line).collect()
}

/// One line: `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`.
fn parse_tcp_line(line: &str) -> Option<Socket> {
    let mut w = line.split_ascii_whitespace();
    let sl = w.next()?;
    if !sl.ends_with(':') {
        return None; // the header ("sl  local_address ...")
    }
    let local = w.next()?;
    let remote = w.next()?;
    let st = w.next()?;
    let state = u8::from_str_radix(st, 16).ok().filter(|_| st.len() == 2)?;
    if state != TCP_LISTEN && state != TCP_ESTABLISHED {
        return None;
    }
    // tx_queue:rx_queue, tr:tm->when, retrnsmt, then uid, timeout, inode.
    let uid = w.nth(3)?.parse().ok()?;
    let inode = w.nth(1)?.parse().ok()?;
    let (lip, lport) = parse_hex_socket(local)?;
    let (rip, rport) = parse_hex_socket(remote)?;
    if lip.is_ipv4() != rip.is_ipv4() {
        return None;
    }
    Some(Socket {
        state,
        local: SocketAddr::new(lip, lport),
        remote: SocketAddr::new(rip, rport),
        uid,
        inode,
    })
}

/// `0100007F:1770` (IPv4) or `00000000000000000000000001000000:1770` (IPv6).
///
/// The kernel prints the address as 32-bit words with `%08X`, each word as
/// the CPU holds it (host byte order): on a little-endian machine
/// 127.0.0.1 is `0100007F`. The port is a plain hex number.
pub(crate) fn parse_hex_socket(s: &str) -> Option<(IpAddr, u16)> {
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

/// The sockets of one network namespace from its tables: `dir` is `/proc`
/// or `/proc/PID`. `None` when neither table can be read (no `/proc`); a
/// missing `tcp6` (IPv6 disabled) is an empty table.
pub(crate) fn read_proc_tables(dir: &Path) -> Option<Vec<Socket>> {
    let v4 = fs::read_to_string(dir.join("net/tcp"));
    let v6 = fs::read_to_string(dir.join("net/tcp6"));
    if v4.is_err() && v6.is_err() {
        return None;
    }
    let mut out = Vec::new();
    for text in [v4, v6].into_iter().flatten() {
        out.extend(parse_tcp_table(&text));
    }
    // Read in pieces, a table can repeat a row too.
    Some(once_each(out))
}

/// The sockets of our own network namespace: from netlink ([`dump`]),
/// else from `/proc/net/tcp{,6}`. `None` when neither can be read.
pub(crate) fn own_namespace() -> Option<Vec<Socket>> {
    dump(|_| true)
        .ok()
        .or_else(|| read_proc_tables(Path::new("/proc")))
}

/// Like [`own_namespace`], with the ESTABLISHED sockets only when `wanted`
/// says so of one of the listeners, and those of the last walk again
/// when `walks` shows none came or went since (see [`dump`]); from `/proc`
/// there is no saving, and all come.
pub(crate) fn own_namespace_for(
    wanted: impl Fn(&Socket) -> bool,
    walks: &Established,
) -> Option<Vec<Socket>> {
    dump_with(wanted, Some(walks))
        .ok()
        .or_else(|| read_proc_tables(Path::new("/proc")))
}

// ---- the ESTABLISHED sockets again, without a walk ----

/// The kernel's TCP counters of our network namespace that move whenever a
/// socket enters or leaves ESTABLISHED (`/proc/net/snmp`): `ActiveOpens`
/// (a connect, counted when its SYN leaves), `PassiveOpens` (an accepted
/// connection, counted as it is established), `AttemptFails`,
/// `EstabResets` and `CurrEstab` (ESTABLISHED and CLOSE_WAIT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpCounters([u64; 5]);

/// [`TcpCounters`] from the text of `/proc/net/snmp`: the two `Tcp:` lines,
/// names then values, the counters found by name.
pub(crate) fn parse_snmp_tcp(text: &str) -> Option<TcpCounters> {
    const NAMES: [&str; 5] = [
        "ActiveOpens",
        "PassiveOpens",
        "AttemptFails",
        "EstabResets",
        "CurrEstab",
    ];
    let mut tcp = text.lines().filter_map(|l| l.strip_prefix("Tcp:"));
    let names: Vec<&str> = tcp.next()?.split_ascii_whitespace().collect();
    let values: Vec<&str> = tcp.next()?.split_ascii_whitespace().collect();
    if names.len() != values.len() {
        return None;
    }
    let mut out = [0u64; 5];
    for (slot, name) in out.iter_mut().zip(NAMES) {
        let i = names.iter().position(|n| *n == name)?;
        // CurrEstab is a gauge the kernel prints signed.
        *slot = values[i].parse::<i64>().ok()? as u64;
    }
    Some(TcpCounters(out))
}

/// [`parse_snmp_tcp`] of this network namespace, `None` when unreadable.
fn tcp_counters() -> Option<TcpCounters> {
    let mut buf = Vec::new();
    crate::live::read_file("/proc/net/snmp", &mut buf).ok()?;
    parse_snmp_tcp(std::str::from_utf8(&buf).ok()?)
}

/// The ESTABLISHED sockets of the last walk of the kernel's established
/// hash, kept between rescans (a watch mode's) with the [`TcpCounters`]
/// read just before that walk. When the counters have not moved since, no
/// socket has entered or left ESTABLISHED, and the rows are given again
/// instead of walking (~1 ms). Why that holds: a socket enters ESTABLISHED
/// by an accept (`PassiveOpens` moves) or a connect whose SYN left after
/// the counters were read (`ActiveOpens`) or before: then the walk saw it
/// in SYN_SENT, and a walk that sees any SYN_SENT socket is not kept. It
/// leaves by a close or a reset (`CurrEstab`, `EstabResets`), or into
/// CLOSE_WAIT when the peer closed first, which `CurrEstab` still counts:
/// such a connection is given as ESTABLISHED until its owner closes it
/// (ssh does at once). Counters that cannot be read keep nothing.
#[derive(Debug, Default)]
pub(crate) struct Established(Mutex<Option<(TcpCounters, Vec<Socket>)>>);

/// A copy starts with nothing kept (a `Context` cloned for another thread
/// walks once of its own).
impl Clone for Established {
    fn clone(&self) -> Established {
        Established::default()
    }
}

impl Established {
    /// Adds the ESTABLISHED sockets to `out`: those kept, when the counters
    /// say they are still all, else those of a fresh walk (`walk`, asked
    /// for ESTABLISHED and SYN_SENT), kept when it saw no SYN_SENT.
    fn add(
        &self,
        out: &mut Vec<Socket>,
        walk: impl FnOnce(u32, &mut Vec<Socket>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.add_at(tcp_counters(), out, walk)
    }

    /// [`Established::add`] with the counters read now.
    fn add_at(
        &self,
        now: Option<TcpCounters>,
        out: &mut Vec<Socket>,
        walk: impl FnOnce(u32, &mut Vec<Socket>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(now), Some((then, rows))) = (now, kept.as_ref())
            && now == *then
        {
            out.extend_from_slice(rows);
            return Ok(());
        }
        *kept = None;
        let mut rows = Vec::new();
        walk((1 << TCP_ESTABLISHED) | (1 << TCP_SYN_SENT), &mut rows)?;
        let opening = rows.iter().any(|s| s.state == TCP_SYN_SENT);
        rows.retain(|s| s.state == TCP_ESTABLISHED);
        out.extend_from_slice(&rows);
        if let (Some(now), false) = (now, opening) {
            *kept = Some((now, rows));
        }
        Ok(())
    }
}

// ---- netlink sock_diag ----

/// `SOCK_DIAG_BY_FAMILY`, the request and answer type (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCPDIAG_GETSOCK`, the older request (`struct inet_diag_req`) and its
/// answer type (linux/inet_diag.h): the kernel serves it for both address
/// families at once.
const TCPDIAG_GETSOCK: u16 = 18;
/// `struct inet_diag_req`.
const COMPAT_REQ_LEN: usize = 60;
/// `struct nlmsghdr`.
const NLMSG_HDR: usize = 16;
/// `struct inet_diag_req_v2`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_msg`.
const MSG_LEN: usize = 72;
/// Netlink messages are aligned to 4 bytes.
fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// The request for one family's sockets in the `states` (a bit per state,
/// `1 << TCP_LISTEN`...): a netlink header and an `inet_diag_req_v2` with
/// an empty socket id.
pub(crate) fn request(family: u8, states: u32, seq: u32) -> [u8; NLMSG_HDR + REQ_LEN] {
    let mut m = [0u8; NLMSG_HDR + REQ_LEN];
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    m[0..4].copy_from_slice(&((NLMSG_HDR + REQ_LEN) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: to the kernel.
    m[16] = family; // sdiag_family
    m[17] = libc::IPPROTO_TCP as u8; // sdiag_protocol
    // idiag_ext 0 (no extra attributes), pad 0.
    m[20..24].copy_from_slice(&states.to_ne_bytes());
    m
}

/// The older request for TCP sockets of both address families in the
/// `states`: a netlink header and an `inet_diag_req` (family 0, an empty
/// socket id). One request walks the kernel's hash tables once for both
/// families, where [`request`] needs one walk per family.
pub(crate) fn request_both_families(states: u32, seq: u32) -> [u8; NLMSG_HDR + COMPAT_REQ_LEN] {
    let mut m = [0u8; NLMSG_HDR + COMPAT_REQ_LEN];
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    m[0..4].copy_from_slice(&((NLMSG_HDR + COMPAT_REQ_LEN) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // idiag_family, src_len, dst_len, ext: 0; the socket id (48 bytes): 0.
    m[NLMSG_HDR + 52..NLMSG_HDR + 56].copy_from_slice(&states.to_ne_bytes());
    // idiag_dbs 0.
    m
}

/// What one buffer of a dump's answer held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// More messages follow in the next read.
    More,
    /// `NLMSG_DONE`: the dump is complete.
    Done,
    /// `NLMSG_ERROR` with this errno (positive).
    Error(i32),
}

/// Reads the `inet_diag_msg`s of one buffer of a dump's answer into
/// `out`. Messages of another sequence number, and rows in other states,
/// are skipped; a message shorter than it says is an error (`EBADMSG`).
pub(crate) fn parse_answer(buf: &[u8], seq: u32, out: &mut Vec<Socket>) -> Answer {
    let mut at = 0;
    while at + NLMSG_HDR <= buf.len() {
        let u32_at = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let len = u32_at(at) as usize;
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        let msg_seq = u32_at(at + 8);
        if len < NLMSG_HDR || at + len > buf.len() {
            return Answer::Error(libc::EBADMSG);
        }
        let payload = &buf[at + NLMSG_HDR..at + len];
        if msg_seq == seq {
            match kind {
                k if k == libc::NLMSG_DONE as u16 => return Answer::Done,
                k if k == libc::NLMSG_ERROR as u16 => {
                    let errno = payload.get(..4).map_or(libc::EBADMSG, |b| {
                        -i32::from_ne_bytes([b[0], b[1], b[2], b[3]])
                    });
                    // An error of 0 is an acknowledgement, which a dump does not send.
                    return Answer::Error(if errno == 0 { libc::EBADMSG } else { errno });
                }
                SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                    if let Some(s) = parse_diag_msg(payload) {
                        out.push(s);
                    }
                }
                _ => {}
            }
        }
        at += align(len);
    }
    Answer::More
}

/// One `inet_diag_msg`: family, state, timer, retrans, then the socket id
/// (ports and addresses in network byte order), expires, queues, uid, inode.
fn parse_diag_msg(p: &[u8]) -> Option<Socket> {
    if p.len() < MSG_LEN {
        return None;
    }
    let state = p[1];
    if state != TCP_LISTEN && state != TCP_ESTABLISHED && state != TCP_SYN_SENT {
        return None;
    }
    let port = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
    let addr = |i: usize| -> Option<IpAddr> {
        match i32::from(p[0]) {
            libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                p[i],
                p[i + 1],
                p[i + 2],
                p[i + 3],
            ))),
            libc::AF_INET6 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&p[i..i + 16]);
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            }
            _ => None,
        }
    };
    let u32_at = |i: usize| u32::from_ne_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    // id at 4: sport 4, dport 6, src 8..24, dst 24..40, if 40, cookie 44.
    Some(Socket {
        state,
        local: SocketAddr::new(addr(8)?, port(4)),
        remote: SocketAddr::new(addr(24)?, port(6)),
        uid: u32_at(64),
        inode: u64::from(u32_at(68)),
    })
}

/// A netlink socket, closed when dropped.
struct Netlink(std::os::fd::OwnedFd);

impl Netlink {
    fn open() -> io::Result<Netlink> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain system call; the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let nl = Netlink(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        // The kernel answers at once; a bound on the wait all the same.
        let tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: valid pointer and length of a timeval.
        unsafe {
            libc::setsockopt(
                nl.fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(nl)
    }

    fn fd(&self) -> libc::c_int {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: zero is a valid sockaddr_nl; pid 0 is the kernel.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: valid buffer and address for the given lengths.
            let n = unsafe {
                libc::sendto(
                    self.fd(),
                    msg.as_ptr().cast(),
                    msg.len(),
                    0,
                    (&raw const to).cast(),
                    size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: valid buffer of the given length.
            let n = unsafe { libc::recv(self.fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// The most rows a dump reads (a gateway is not a web server); past it the
/// dump fails and the caller falls back to `/proc`, which has no such cap.
const MAX_ROWS: usize = 1 << 20;

/// The LISTEN and ESTABLISHED TCP sockets of our network namespace, IPv4
/// and IPv6, from netlink sock_diag. An error when netlink cannot be used;
/// a kernel without IPv6 gives IPv4 only.
///
/// Listeners cost next to nothing: the kernel walks its listening hash. Any
/// other state makes it walk the whole established hash, sized by memory
/// (262,144 buckets, ~1 ms on the development machine), whatever the
/// filter. So the listeners come first, and the ESTABLISHED sockets only
/// when `wanted` holds for one of them (live mode: any; a rescan: one on a
/// forward's port), both address families in one walk
/// ([`request_both_families`]); a kernel that refuses that request is
/// asked one family at a time ([`request`]).
pub(crate) fn dump(wanted: impl Fn(&Socket) -> bool) -> io::Result<Vec<Socket>> {
    dump_with(wanted, None)
}

/// [`dump`], with the ESTABLISHED sockets through `walks` when given.
fn dump_with(
    wanted: impl Fn(&Socket) -> bool,
    walks: Option<&Established>,
) -> io::Result<Vec<Socket>> {
    let nl = Netlink::open()?;
    let mut out = Vec::new();
    // The kernel fills a buffer up to the size the reader offers (32 KiB).
    let mut buf = vec![0u8; 32 << 10];
    let both = |states, seq, out: &mut Vec<Socket>, buf: &mut [u8]| {
        nl.send(&request_both_families(states, seq))?;
        read_answer(&nl, buf, None, seq, out)
    };
    if both(1 << TCP_LISTEN, 1, &mut out, &mut buf).is_ok() {
        if out.iter().any(&wanted) {
            match walks {
                None => both(1 << TCP_ESTABLISHED, 2, &mut out, &mut buf)?,
                Some(w) => w.add(&mut out, |states, rows| both(states, 2, rows, &mut buf))?,
            }
        }
        return Ok(once_each(out));
    }
    out.clear();
    let families = [libc::AF_INET as u8, libc::AF_INET6 as u8];
    let mut seq = 10;
    for family in families {
        seq += 1;
        nl.send(&request(family, 1 << TCP_LISTEN, seq))?;
        read_answer(&nl, &mut buf, Some(family), seq, &mut out)?;
    }
    for family in families {
        let v4 = family == libc::AF_INET as u8;
        if out.iter().any(|s| s.local.is_ipv4() == v4 && wanted(s)) {
            seq += 1;
            nl.send(&request(family, 1 << TCP_ESTABLISHED, seq))?;
            read_answer(&nl, &mut buf, Some(family), seq, &mut out)?;
        }
    }
    Ok(once_each(out))
}

/// The rows with any repeated one dropped: a dump that spans several
/// buffers resumes where it stopped in the kernel's tables, and sockets
/// that come and go meanwhile can make it give a row twice. Two sockets
/// never share a row (the addresses of a connection, or a listener's
/// inode, tell them apart).
fn once_each(mut rows: Vec<Socket>) -> Vec<Socket> {
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// Reads the whole answer to request `seq` (of one `family`, or both).
fn read_answer(
    nl: &Netlink,
    buf: &mut [u8],
    family: Option<u8>,
    seq: u32,
    out: &mut Vec<Socket>,
) -> io::Result<()> {
    loop {
        let n = nl.recv(buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match parse_answer(&buf[..n], seq, out) {
            Answer::More => {}
            Answer::Done => return Ok(()),
            // No IPv6 in this kernel: no IPv6 sockets.
            Answer::Error(e) if family == Some(libc::AF_INET6 as u8) && e == libc::ENOENT => {
                return Ok(());
            }
            Answer::Error(e) => return Err(io::Error::from_raw_os_error(e)),
        }
        if out.len() > MAX_ROWS {
            return Err(io::Error::other("more than a million TCP sockets"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    // Synthetic lines in the kernel's format (the captured tables are in
    // tests/net_tables.rs): sshd on 0.0.0.0:22, an ssh -L 5901 on
    // 127.0.0.1, a connection to it, and one in TIME_WAIT (06).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18812 1 0000000000000000 100 0 0 10 0
   1: 0100007F:170D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 940211 1 0000000000000000 100 0 0 10 0
   2: 0100007F:170D 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000  1000        0 940355 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:B651 0100007F:D568 06 00000000:00000000 03:00001683 00000000     0        0 0 3 000000005af078fa
";

    // tcp6: ssh -L 5901 on ::1, a wildcard :: on 8080, a v4-mapped one.
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:170D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 940212 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5551 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5552 1 0000000000000000 100 0 0 10 0
";

    #[test]
    #[cfg(target_endian = "little")]
    fn tcp_table_keeps_listeners_and_connections() {
        let l = parse_tcp_table(TCP);
        let row = |state, local: &str, remote: &str, uid, inode| Socket {
            state,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            uid,
            inode,
        };
        assert_eq!(
            l,
            vec![
                row(TCP_LISTEN, "0.0.0.0:22", "0.0.0.0:0", 0, 18812),
                row(TCP_LISTEN, "127.0.0.1:5901", "0.0.0.0:0", 1000, 940211),
                row(
                    TCP_ESTABLISHED,
                    "127.0.0.1:5901",
                    "127.0.0.1:41668",
                    1000,
                    940355
                ),
            ]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn tcp6_addresses_are_words_in_host_order() {
        let l = parse_tcp_table(TCP6);
        let addrs: Vec<(String, u16, u64)> = l
            .iter()
            .map(|l| (l.local.ip().to_string(), l.local.port(), l.inode))
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

    proptest::proptest! {
        /// Whatever /proc/net/tcp holds, reading it does not panic, and
        /// every socket read from it has a port that is in the text.
        #[test]
        fn any_table_text(text in "\\PC*", lines in proptest::collection::vec(
            "[ 0-9A-Fa-f:x]{0,120}", 0..8)) {
            let _ = parse_tcp_table(&text);
            let joined = lines.join("\n");
            for l in parse_tcp_table(&joined) {
                let port = format!("{:04X}", l.local.port());
                proptest::prop_assert!(joined.to_ascii_uppercase().contains(&port), "{}", port);
            }
        }
    }

    fn msg(seq: u32, kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDR + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn diag(
        family: u8,
        state: u8,
        local: ([u8; 16], u16),
        remote: ([u8; 16], u16),
        uid: u32,
        inode: u32,
    ) -> Vec<u8> {
        let mut p = vec![0u8; MSG_LEN];
        p[0] = family;
        p[1] = state;
        p[4..6].copy_from_slice(&local.1.to_be_bytes());
        p[6..8].copy_from_slice(&remote.1.to_be_bytes());
        p[8..24].copy_from_slice(&local.0);
        p[24..40].copy_from_slice(&remote.0);
        p[64..68].copy_from_slice(&uid.to_ne_bytes());
        p[68..72].copy_from_slice(&inode.to_ne_bytes());
        // An attribute after the message (INET_DIAG_SHUTDOWN), as the kernel sends.
        p.extend_from_slice(&[5, 0, 8, 0, 0, 0, 0, 0]);
        p
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&a);
        b
    }

    #[test]
    fn request_layout() {
        let r = request(
            libc::AF_INET6 as u8,
            (1 << TCP_LISTEN) | (1 << TCP_ESTABLISHED),
            7,
        );
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), 0x301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
        assert_eq!((r[16], r[17]), (10, 6));
        assert_eq!(u32::from_ne_bytes(r[20..24].try_into().unwrap()), 0x402);
        assert!(r[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn request_for_both_families_layout() {
        let r = request_both_families(1 << TCP_ESTABLISHED, 3);
        assert_eq!(r.len(), 76);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 76);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 18);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), 0x301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 3);
        assert!(r[16..68].iter().all(|&b| b == 0));
        assert_eq!(u32::from_ne_bytes(r[68..72].try_into().unwrap()), 2);
        assert!(r[72..].iter().all(|&b| b == 0));
    }

    #[test]
    fn answers() {
        let mut buf = msg(
            1,
            20,
            &diag(
                2,
                TCP_LISTEN,
                (v4([127, 0, 0, 1]), 5901),
                (v4([0; 4]), 0),
                1000,
                940211,
            ),
        );
        let mapped: [u8; 16] = Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped().octets();
        buf.extend(msg(
            1,
            20,
            &diag(
                10,
                TCP_ESTABLISHED,
                (mapped, 5901),
                (mapped, 41668),
                1000,
                0,
            ),
        ));
        // Another state, another sequence, a truncated message: skipped.
        buf.extend(msg(
            1,
            20,
            &diag(2, 6, (v4([1; 4]), 1), (v4([2; 4]), 2), 0, 1),
        ));
        buf.extend(msg(
            9,
            20,
            &diag(2, TCP_LISTEN, (v4([1; 4]), 1), (v4([0; 4]), 0), 0, 1),
        ));
        buf.extend(msg(1, 20, &[2, 10, 0, 0]));
        // The answer type of the older request.
        buf.extend(msg(
            1,
            18,
            &diag(2, TCP_LISTEN, (v4([0; 4]), 22), (v4([0; 4]), 0), 0, 18812),
        ));
        let mut out = Vec::new();
        assert_eq!(parse_answer(&buf, 1, &mut out), Answer::More);
        assert_eq!(
            out,
            vec![
                Socket {
                    state: TCP_LISTEN,
                    local: "127.0.0.1:5901".parse().unwrap(),
                    remote: "0.0.0.0:0".parse().unwrap(),
                    uid: 1000,
                    inode: 940211
                },
                Socket {
                    state: TCP_ESTABLISHED,
                    local: "[::ffff:127.0.0.1]:5901".parse().unwrap(),
                    remote: "[::ffff:127.0.0.1]:41668".parse().unwrap(),
                    uid: 1000,
                    inode: 0
                },
                Socket {
                    state: TCP_LISTEN,
                    local: "0.0.0.0:22".parse().unwrap(),
                    remote: "0.0.0.0:0".parse().unwrap(),
                    uid: 0,
                    inode: 18812
                },
            ]
        );
        assert_eq!(parse_answer(&msg(1, 3, &[0; 4]), 1, &mut out), Answer::Done);
        let err = msg(1, 2, &(-libc::ENOENT).to_ne_bytes());
        assert_eq!(parse_answer(&err, 1, &mut out), Answer::Error(libc::ENOENT));
        // A length past the buffer, or shorter than a header.
        let mut bad = msg(1, 20, &[0; 8]);
        bad[0] = 200;
        assert_eq!(
            parse_answer(&bad, 1, &mut out),
            Answer::Error(libc::EBADMSG)
        );
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(
            parse_answer(&bad, 1, &mut out),
            Answer::Error(libc::EBADMSG)
        );
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn tcp_counters_of_a_captured_snmp_table() {
        let text = include_str!("../../testdata/net/snmp.txt");
        // Tcp: ... ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab ...
        assert_eq!(
            parse_snmp_tcp(text),
            Some(TcpCounters([73807, 68597, 5181, 35739, 97]))
        );
        assert_eq!(parse_snmp_tcp("Tcp: ActiveOpens\nTcp: 1 2\n"), None);
        assert_eq!(parse_snmp_tcp("Udp: InDatagrams\nUdp: 1\n"), None);
        assert_eq!(
            parse_snmp_tcp(&text.replace("CurrEstab", "Other")),
            None,
            "a counter missing"
        );
    }

    /// The kept rows come back while the counters stay, and a walk that saw
    /// a connection being opened, or counters that cannot be read, keep
    /// nothing.
    #[test]
    fn established_rows_kept_while_the_counters_stay() {
        let conn = |port: u16, state: u8| Socket {
            state,
            local: SocketAddr::from(([127, 0, 0, 1], port)),
            remote: SocketAddr::from(([127, 0, 0, 1], 40000)),
            uid: 1000,
            inode: 7,
        };
        let walks = std::cell::Cell::new(0);
        let walk = |rows: Vec<Socket>| {
            let walks = &walks;
            move |states: u32, out: &mut Vec<Socket>| {
                assert_eq!(states, (1 << TCP_ESTABLISHED) | (1 << TCP_SYN_SENT));
                walks.set(walks.get() + 1);
                out.extend(rows);
                Ok(())
            }
        };
        let at = |n: u64| Some(TcpCounters([n, n, 0, 0, 1]));
        let e = Established::default();
        let mut out = Vec::new();
        e.add_at(at(1), &mut out, walk(vec![conn(5901, TCP_ESTABLISHED)]))
            .unwrap();
        e.add_at(at(1), &mut out, walk(vec![])).unwrap();
        assert_eq!(walks.get(), 1);
        assert_eq!(out, vec![conn(5901, TCP_ESTABLISHED); 2]);
        // Moved: a fresh walk, whose SYN_SENT row is dropped and not kept.
        out.clear();
        let opening = vec![conn(5902, TCP_ESTABLISHED), conn(5903, TCP_SYN_SENT)];
        e.add_at(at(2), &mut out, walk(opening)).unwrap();
        assert_eq!(out, vec![conn(5902, TCP_ESTABLISHED)]);
        e.add_at(at(2), &mut out, walk(vec![])).unwrap();
        assert_eq!(walks.get(), 3, "not kept: a connection was being opened");
        e.add_at(at(2), &mut out, walk(vec![])).unwrap();
        assert_eq!(walks.get(), 3, "kept: the last walk saw none");
        // Unreadable counters: every time a walk, nothing kept.
        e.add_at(None, &mut out, walk(vec![])).unwrap();
        e.add_at(None, &mut out, walk(vec![])).unwrap();
        assert_eq!(walks.get(), 5);
        assert_eq!(
            e.clone().0.lock().unwrap().as_ref(),
            None,
            "a copy keeps nothing"
        );
    }

    proptest::proptest! {
        /// No answer from the kernel makes the reader panic.
        #[test]
        fn any_answer(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let mut out = Vec::new();
            let _ = parse_answer(&bytes, 1, &mut out);
        }
    }

    /// Our own sockets, as a source lists them.
    fn ours(all: &[Socket], ports: &[u16]) -> Vec<Socket> {
        let mut v: Vec<Socket> = all
            .iter()
            .filter(|s| ports.contains(&s.local.port()) || ports.contains(&s.remote.port()))
            .copied()
            .collect();
        v.sort();
        v
    }

    /// Netlink and `/proc/net/tcp{,6}` give the same rows for live sockets:
    /// listeners on 127.0.0.1, ::1 and the wildcard ::, and connections to
    /// each (IPv4 to the dual-stack one shows v4-mapped).
    #[test]
    fn netlink_and_proc_agree_on_live_sockets() {
        let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let l6 = TcpListener::bind("[::1]:0").expect("IPv6 loopback (::1) must be available");
        let lw = TcpListener::bind("[::]:0").unwrap();
        let mut conns = Vec::new();
        for to in [
            l4.local_addr().unwrap(),
            l6.local_addr().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], lw.local_addr().unwrap().port())),
        ] {
            conns.push(TcpStream::connect(to).unwrap());
        }
        let accepted: Vec<_> = [&l4, &l6].iter().map(|l| l.accept().unwrap()).collect();
        let ports: Vec<u16> = [&l4, &l6, &lw]
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let from_netlink = ours(&dump(|_| true).expect("netlink sock_diag"), &ports);
        let from_proc = ours(
            &read_proc_tables(Path::new("/proc")).expect("/proc/net/tcp"),
            &ports,
        );
        assert_eq!(from_netlink, from_proc);
        // Connections only when a listener is wanted.
        let listeners = dump(|_| false).unwrap();
        assert!(listeners.iter().all(Socket::is_listener));
        assert_eq!(ours(&listeners, &ports).len(), 3);
        let on_v6 = ours(&dump(|s| s.local.port() == ports[1]).unwrap(), &ports);
        assert_eq!(on_v6, from_netlink);
        // The older per-family requests give the same.
        let nl = Netlink::open().unwrap();
        let mut buf = vec![0u8; 32 << 10];
        let mut per_family = Vec::new();
        for (seq, family) in [(1, libc::AF_INET as u8), (2, libc::AF_INET6 as u8)] {
            let states = (1 << TCP_LISTEN) | (1 << TCP_ESTABLISHED);
            nl.send(&request(family, states, seq)).unwrap();
            read_answer(&nl, &mut buf, Some(family), seq, &mut per_family).unwrap();
        }
        assert_eq!(ours(&per_family, &ports), from_netlink);
        // 3 listeners, 3 connections seen from both ends.
        assert_eq!(from_netlink.iter().filter(|s| s.is_listener()).count(), 3);
        assert_eq!(from_netlink.len(), 9, "{from_netlink:#?}");
        // The one to the wildcard listener, not accepted yet: inode 0, v4-mapped.
        let pending = from_netlink
            .iter()
            .find(|s| !s.is_listener() && s.local.port() == ports[2])
            .unwrap();
        assert_eq!(pending.inode, 0);
        assert!(pending.local.is_ipv6());
        assert_eq!(canonical(pending.local.ip()), IpAddr::from([127, 0, 0, 1]));
        drop((accepted, conns));
    }
}
