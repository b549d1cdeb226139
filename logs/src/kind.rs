//! What an event row says happened: the one type for the kind of an accepted
//! datagram on the monitoring host.
//!
//! The wire has its own, closed, list (`gateway_client::wire::MsgKind`): a
//! datagram of any other kind is refused before it is logged. The logs are
//! read more leniently, so that files written by a newer collector (which
//! may log kinds this version does not know) still count: an unknown kind
//! is [`EventKind::Other`], a sign of life and nothing else.

use gateway_client::wire::MsgKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A part of a report (the tunnel list).
    Report,
    Heartbeat,
    /// An operator's message.
    Message,
    /// A shutdown request.
    Shutdown,
    /// A maintenance silence asked by the gateway (`gateway-client
    /// --maintenance`), its reason as text and its end in `until`.
    Maintenance,
    /// A kind this version does not know; still proof the gateway was heard.
    Other,
}

impl EventKind {
    /// The kind of a row's text; anything unknown is [`EventKind::Other`].
    pub(crate) fn parse(s: &str) -> EventKind {
        EventKind::from_bytes(s.as_bytes())
    }

    /// The kind of a row's bytes (no UTF-8 check needed: unknown bytes are
    /// [`EventKind::Other`]).
    pub fn from_bytes(b: &[u8]) -> EventKind {
        match b {
            b"report" => EventKind::Report,
            b"heartbeat" => EventKind::Heartbeat,
            b"message" => EventKind::Message,
            b"shutdown" => EventKind::Shutdown,
            b"maintenance" => EventKind::Maintenance,
            _ => EventKind::Other,
        }
    }

    /// As written in the logs and in `--notify`'s environment; `other` for
    /// [`EventKind::Other`], which the collector never writes.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Report => "report",
            EventKind::Heartbeat => "heartbeat",
            EventKind::Message => "message",
            EventKind::Shutdown => "shutdown",
            EventKind::Maintenance => "maintenance",
            EventKind::Other => "other",
        }
    }

    /// Whether the event shows the gateway alive (and makes a gateway of a
    /// name never heard before). A shutdown request is not: it is an
    /// operator's command to the collector, often sent from the collector's
    /// own host, which is no gateway.
    pub fn is_sign_of_life(self) -> bool {
        self != EventKind::Shutdown
    }

    /// Whether the event carries an operator's text the pages list.
    pub fn has_text(self) -> bool {
        matches!(
            self,
            EventKind::Message | EventKind::Shutdown | EventKind::Maintenance
        )
    }
}

impl From<MsgKind> for EventKind {
    fn from(k: MsgKind) -> EventKind {
        match k {
            MsgKind::Report => EventKind::Report,
            MsgKind::Heartbeat => EventKind::Heartbeat,
            MsgKind::Message => EventKind::Message,
            MsgKind::Shutdown => EventKind::Shutdown,
            MsgKind::Maintenance => EventKind::Maintenance,
            // Acks go from the collector to gateways and are never logged.
            MsgKind::Ack => EventKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_kind_reads_back_as_itself() {
        for k in [
            MsgKind::Report,
            MsgKind::Heartbeat,
            MsgKind::Message,
            MsgKind::Shutdown,
            MsgKind::Maintenance,
        ] {
            let e = EventKind::from(k);
            assert_eq!(e.as_str(), k.as_str());
            assert_eq!(EventKind::parse(k.as_str()), e);
        }
        assert_eq!(EventKind::parse("holiday"), EventKind::Other);
        assert_eq!(EventKind::from_bytes(b"\xff"), EventKind::Other);
    }
}
