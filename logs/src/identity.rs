//! What makes two tunnel records "the same tunnel", written once.
//!
//! - [`TunnelKey`]: the same forward of the same process, from one report
//!   to the next. A tunnel that keeps this key is one session; a report
//!   without it ends the session. Its columns are [`IDENTITY`], so a reader
//!   of raw rows can build the same key from bytes.
//! - [`LaneKey`]: the same service across restarts (a new pid for the same
//!   owner and forward), which the history draws on one row.

use gateway_client::tunnel::{Kind, Tunnel};

use crate::schema::TunnelCol;

/// The columns of a tunnel row that make up its [`TunnelKey`] (with the
/// gateway). They are contiguous from `pid` to `target_port` but for
/// `user`.
pub const IDENTITY: [TunnelCol; 6] = [
    TunnelCol::Pid,
    TunnelCol::Kind,
    TunnelCol::Bind,
    TunnelCol::ListenPort,
    TunnelCol::TargetHost,
    TunnelCol::TargetPort,
];

/// A tunnel's identity between reports of one gateway: pid, kind, bind
/// address, listen port, target host and port. The owner, the host ssh
/// connects to and the `ps` columns are not part of it: they are fixed for
/// a process, or may change in how they are shown (a `ps` that cuts a long
/// name) without making it another tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelKey<'a> {
    pid: u32,
    kind: Kind,
    bind: &'a str,
    listen_port: u16,
    target_host: &'a str,
    target_port: u16,
}

impl<'a> TunnelKey<'a> {
    pub fn of(t: &'a Tunnel) -> TunnelKey<'a> {
        TunnelKey {
            pid: t.pid,
            kind: t.kind,
            bind: &t.bind,
            listen_port: t.listen_port,
            target_host: &t.target_host,
            target_port: t.target_port,
        }
    }
}

/// A tunnel's row in the history: its owner and its forward (kind, bind
/// address, listen port, target), so that a tunnel restarted under a new
/// pid, or through another host, stays on its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaneKey<'a> {
    user: &'a str,
    kind: Kind,
    bind: &'a str,
    listen_port: u16,
    target_host: &'a str,
    target_port: u16,
}

impl<'a> LaneKey<'a> {
    pub fn of(t: &'a Tunnel) -> LaneKey<'a> {
        LaneKey {
            user: &t.user,
            kind: t.kind,
            bind: &t.bind,
            listen_port: t.listen_port,
            target_host: &t.target_host,
            target_port: t.target_port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    #[test]
    fn identity_columns_name_the_key_fields() {
        let names: Vec<_> = IDENTITY.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "pid",
                "kind",
                "bind",
                "listen_port",
                "target_host",
                "target_port",
            ]
        );
        // pid..=target_port with only `user` between them that is not part of it.
        let span = IDENTITY[0].index()..=IDENTITY[5].index();
        assert_eq!(span.clone().count(), IDENTITY.len() + 1);
        assert!(span.contains(&TunnelCol::User.index()));
    }

    #[test]
    fn owner_and_ps_columns_are_not_identity() {
        let a = Tunnel {
            pid: 7,
            user: "novacr01".into(),
            listen_port: 5901,
            ..Tunnel::default()
        };
        let b = Tunnel {
            user: "novacr0+".into(),
            dest: "elsewhere".into(),
            cpu_time: "0:01".into(),
            ..a.clone()
        };
        assert_eq!(TunnelKey::of(&a), TunnelKey::of(&b));
        let c = Tunnel {
            pid: 8,
            ..a.clone()
        };
        assert_ne!(TunnelKey::of(&a), TunnelKey::of(&c));
        assert_eq!(LaneKey::of(&a), LaneKey::of(&c));
    }
}
