//! The socket tables and the connection count on captured `/proc/net/tcp`
//! and `/proc/net/tcp6` (`testdata/net/`, whose README says what was open):
//! IPv4, IPv6, IPv4-mapped addresses, listeners on the wildcard addresses,
//! a connection not yet accepted, and rows in other states.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use crate::health;
use crate::sockets::{self, Socket, TCP_ESTABLISHED, TCP_LISTEN};
use crate::{Health, Kind, Tunnel};

fn table() -> Vec<Socket> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/net");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let mut all = sockets::parse_tcp_table(&read("tcp.txt"));
    all.extend(sockets::parse_tcp_table(&read("tcp6.txt")));
    all
}

fn row(state: u8, local: &str, remote: &str, uid: u32, inode: u64) -> Socket {
    Socket {
        state,
        local: local.parse::<SocketAddr>().unwrap(),
        remote: remote.parse::<SocketAddr>().unwrap(),
        uid,
        inode,
    }
}

#[test]
#[cfg(target_endian = "little")]
fn captured_tables_give_listeners_and_connections_only() {
    let (l, e) = (TCP_LISTEN, TCP_ESTABLISHED);
    assert_eq!(
        table(),
        vec![
            row(l, "127.0.0.1:39091", "0.0.0.0:0", 0, 181734),
            row(l, "127.0.0.1:5901", "0.0.0.0:0", 1001, 181826),
            row(l, "0.0.0.0:2024", "0.0.0.0:0", 0, 1244),
            row(l, "0.0.0.0:5903", "0.0.0.0:0", 1001, 181829),
            row(e, "127.0.0.1:38894", "127.0.0.1:5901", 65534, 181830),
            row(e, "127.0.0.1:49908", "127.0.0.1:5902", 65534, 181831),
            row(e, "127.0.0.1:36434", "127.0.0.1:5903", 0, 181833),
            row(e, "127.0.0.1:5901", "127.0.0.1:38894", 1001, 181834),
            row(e, "127.0.0.1:5903", "127.0.0.1:36434", 1001, 0),
            row(l, "[::1]:5901", "[::]:0", 1001, 181827),
            row(l, "[::]:5902", "[::]:0", 1001, 181828),
            row(
                e,
                "[::ffff:127.0.0.1]:5902",
                "[::ffff:127.0.0.1]:49908",
                1001,
                181836
            ),
            row(e, "[::1]:5901", "[::1]:50548", 1001, 181835),
            row(e, "[::1]:50548", "[::1]:5901", 0, 181832),
        ]
    );
}

fn local(bind: &str, port: u16) -> Tunnel {
    Tunnel {
        pid: 4242,
        kind: Kind::Local,
        bind: bind.into(),
        listen_port: port,
        target_host: "localhost".into(),
        target_port: 5951,
        ..Tunnel::default()
    }
}

fn names() -> HashMap<u32, String> {
    [(0, "root"), (65534, "nobody")]
        .into_iter()
        .map(|(u, n)| (u, n.to_string()))
        .collect()
}

/// Who is on each forward, as the client sees it without reading the
/// tunnel's fds (another account's process): its listeners are those of its
/// owner, uid 1001.
#[test]
#[cfg(target_endian = "little")]
fn who_is_on_each_forward_without_its_fds() {
    let t = table();
    let on = |bind: &str, port: u16| {
        health::who_is_on(&local(bind, port), &t, None, Some(1001), &names())
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // 127.0.0.1 and ::1: nobody over IPv4, root over IPv6.
    assert_eq!(on("", 5901), Some((2, s(&["nobody", "root"]))));
    assert_eq!(on("localhost", 5901), Some((2, s(&["nobody", "root"]))));
    // Bound to one address: only the connections to it.
    assert_eq!(on("127.0.0.1", 5901), Some((1, s(&["nobody"]))));
    assert_eq!(on("[::1]", 5901), Some((1, s(&["root"]))));
    // The dual-stack wildcard listener: an IPv4 connection, v4-mapped.
    assert_eq!(on("*", 5902), Some((1, s(&["nobody"]))));
    assert_eq!(on("", 5902), Some((1, s(&["nobody"]))));
    // 0.0.0.0, a connection not yet accepted (inode 0) from root.
    assert_eq!(on("0.0.0.0", 5903), Some((1, s(&["root"]))));
    // Another account's listener on the port: not this tunnel's.
    assert_eq!(on("", 39091), Some((0, vec![])));
    // Nothing listens: no connections.
    assert_eq!(on("", 5999), Some((0, vec![])));
    // An account with no name: its uid.
    assert_eq!(
        health::who_is_on(&local("", 5901), &t, None, Some(1001), &HashMap::new()),
        Some((2, s(&["0", "65534"])))
    );
    // Owner unknown and fds unreadable: cannot tell.
    assert_eq!(
        health::who_is_on(&local("", 5901), &t, None, None, &names()),
        None
    );
    // R forwards: unknown.
    let r = Tunnel {
        kind: Kind::Remote,
        ..local("", 5901)
    };
    assert_eq!(health::who_is_on(&r, &t, None, Some(1001), &names()), None);
}

/// With the fds readable (our own process, or root), the listeners are the
/// sockets the process holds; and the listening judgement agrees.
#[test]
#[cfg(target_endian = "little")]
fn with_the_fds_the_held_sockets_decide() {
    let t = table();
    let held: HashSet<u64> = [181826, 181827].into();
    let f = local("", 5901);
    assert_eq!(health::judge(&f, &t, Some(&held)), Health::Yes);
    assert_eq!(
        health::who_is_on(&f, &t, Some(&held), Some(1001), &names()).map(|c| c.0),
        Some(2)
    );
    // Holding the IPv6 listener only: the IPv6 connection only.
    let v6: HashSet<u64> = [181827].into();
    assert_eq!(
        health::who_is_on(&f, &t, Some(&v6), None, &names()),
        Some((1, vec!["root".to_string()]))
    );
    // Holding neither: listening no, nobody on it.
    let none: HashSet<u64> = [1].into();
    assert_eq!(health::judge(&f, &t, Some(&none)), Health::No);
    assert_eq!(
        health::who_is_on(&f, &t, Some(&none), None, &names()),
        Some((0, vec![]))
    );
}

/// A peer that is not a socket of this host: its IP address. The captured
/// row of nobody's connection to 5901 with its peer moved to 192.0.2.15
/// (and the peer's own row gone, as it would be).
#[test]
#[cfg(target_endian = "little")]
fn a_remote_peer_is_its_address() {
    let t: Vec<Socket> = table()
        .into_iter()
        .filter(|s| s.inode != 181830)
        .map(|mut s| {
            if s.inode == 181834 {
                s.local = "10.0.0.5:5901".parse().unwrap();
                s.remote = "192.0.2.15:38894".parse().unwrap();
            }
            s
        })
        .collect();
    let on = health::who_is_on(&local("*", 5901), &t, None, Some(1001), &names());
    // Bound to the wildcard only in the tunnel's mind: the 127.0.0.1 and
    // ::1 listeners do not cover 10.0.0.5, so only ::1's connection counts.
    assert_eq!(on, Some((1, vec!["root".to_string()])));
    let mut t2 = t.clone();
    t2.push(row(TCP_LISTEN, "0.0.0.0:5901", "0.0.0.0:0", 1001, 7));
    let on = health::who_is_on(&local("*", 5901), &t2, None, Some(1001), &names());
    assert_eq!(
        on,
        Some((2, vec!["192.0.2.15".to_string(), "root".to_string()]))
    );
}
