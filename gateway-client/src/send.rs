//! Delivery: send every datagram of a message over UDP and retry with backoff
//! until each part is acknowledged or the timeout passes.
//!
//! The socket is connected to the collector, so a collector that is not
//! running shows at once as `ConnectionRefused` (an ICMP port unreachable)
//! instead of a silent wait. Acks are verified with the same key; anything
//! that is not a signed ack for one of our parts is ignored, except a signed
//! *refusal* of one of them (kind `refusal`, `text` `REASON: detail`, sent
//! by collectors that know why they refused): a refusal as stale, replay or
//! for too many gateways ends the wait at once with that reason
//! ([`Error::Declined`]); a write error (the collector's disk) may pass, so
//! the client keeps retrying and reports it only if the timeout passes. A
//! collector that sends no refusals leaves the client as before. A read timeout on
//! a UDP socket comes back as `WouldBlock` on Linux (`TimedOut` elsewhere): both
//! mean "no datagram yet".

use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crate::cli::Collector;
use crate::error::Error;
use crate::key::Key;
use crate::wire::{self, Body, MsgKind};

/// First wait for acks before resending; it doubles up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(1600);

/// What the collector answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub addr: SocketAddr,
    pub datagrams: usize,
    /// Datagrams sent in all, retries included.
    pub sends: usize,
    /// Parts the collector said it already had (an earlier ack was lost).
    pub duplicates: usize,
    pub elapsed: Duration,
}

/// Resolves `host:port`, preferring the first address returned.
pub(crate) fn resolve(host: &str, port: u16) -> Result<SocketAddr, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = Collector {
        host: host.to_string(),
        port,
    }
    .to_string();
    (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Resolve {
            addr: addr.clone(),
            detail: e.to_string(),
        })?
        .next()
        .ok_or(Error::Resolve {
            addr,
            detail: "no address found".into(),
        })
}

/// Sends all `parts` to `addr` and waits for an ack of each.
pub(crate) fn deliver(
    addr: SocketAddr,
    key: &Key,
    parts: &[(Body, Vec<u8>)],
    timeout: Duration,
) -> Result<Delivery, Error> {
    let start = Instant::now();
    let deadline = start + timeout;
    let net = |source| Error::Net {
        addr: addr.to_string(),
        source,
    };
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal address");
    let socket = UdpSocket::bind(local).map_err(net)?;
    socket.connect(addr).map_err(net)?;

    let mut acked = vec![false; parts.len()];
    let mut declined: Option<String> = None;
    let (mut sends, mut duplicates) = (0, 0);
    let mut backoff = FIRST_BACKOFF;
    let mut buf = [0u8; wire::MAX_DATAGRAM + 1];
    // Each round sends what is unacknowledged, then reads acks until the
    // round's wait is over. Rounds are bounded by the deadline.
    while Instant::now() < deadline {
        for ((_, bytes), _) in parts.iter().zip(&acked).filter(|(_, a)| !**a) {
            match socket.send(bytes) {
                Ok(_) => sends += 1,
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return Err(Error::Refused {
                        addr: addr.to_string(),
                    });
                }
                Err(e) => return Err(net(e)),
            }
        }
        let round_end = (Instant::now() + backoff).min(deadline);
        loop {
            let now = Instant::now();
            if now >= round_end {
                break;
            }
            socket
                .set_read_timeout(Some(round_end - now))
                .map_err(net)?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return Err(Error::Refused {
                        addr: addr.to_string(),
                    });
                }
                Err(e) => return Err(net(e)),
            };
            match answer(key, &buf[..n], parts) {
                Answer::Ack { part, duplicate } if !acked[part] => {
                    acked[part] = true;
                    duplicates += usize::from(duplicate);
                }
                Answer::Refusal(text) if text.starts_with("write_error:") => declined = Some(text),
                Answer::Refusal(text) => {
                    return Err(Error::Declined {
                        addr: addr.to_string(),
                        text,
                    });
                }
                _ => continue,
            }
            if acked.iter().all(|a| *a) {
                return Ok(Delivery {
                    addr,
                    datagrams: parts.len(),
                    sends,
                    duplicates,
                    elapsed: start.elapsed(),
                });
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    if let Some(text) = declined {
        return Err(Error::Declined {
            addr: addr.to_string(),
            text,
        });
    }
    Err(Error::NoAck {
        addr: addr.to_string(),
        acked: acked.iter().filter(|a| **a).count(),
        total: parts.len(),
        timeout_ms: timeout.as_millis(),
    })
}

/// Resolves each collector and delivers `parts` to it as [`deliver`]
/// does, all at once (a thread each), so that one that does not answer
/// delays none of the others. The results are in the order of
/// `collectors`.
pub(crate) fn deliver_each(
    collectors: &[Collector],
    key: &Key,
    parts: &[(Body, Vec<u8>)],
    timeout: Duration,
) -> Vec<Result<Delivery, Error>> {
    let one =
        |c: &Collector| resolve(&c.host, c.port).and_then(|a| deliver(a, key, parts, timeout));
    std::thread::scope(|s| {
        let running: Vec<_> = collectors
            .iter()
            .map(|c| (c, s.spawn(move || one(c))))
            .collect();
        running
            .into_iter()
            .map(|(c, h)| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Net {
                        addr: c.to_string(),
                        source: std::io::Error::other("the delivery thread failed"),
                    })
                })
            })
            .collect()
    })
}

/// What a datagram from the collector says about the parts sent.
enum Answer {
    /// A signed ack of `parts[part]`.
    Ack { part: usize, duplicate: bool },
    /// A signed refusal of one of them: its `REASON: detail`.
    Refusal(String),
    /// Anything else: ignored.
    Other,
}

fn answer(key: &Key, datagram: &[u8], parts: &[(Body, Vec<u8>)]) -> Answer {
    let Ok(ack) = wire::decode(key, datagram) else {
        return refusal(key, datagram, parts).map_or(Answer::Other, Answer::Refusal);
    };
    if ack.kind != MsgKind::Ack {
        return Answer::Other;
    }
    let hit = parts.iter().position(|(b, _)| {
        b.seq == ack.seq && b.part == ack.part && b.gateway == ack.gateway && b.parts == ack.parts
    });
    match hit {
        Some(part) => Answer::Ack {
            part,
            duplicate: ack.text == "duplicate",
        },
        None => Answer::Other,
    }
}

/// The text of a signed refusal of one of `parts`, if `datagram` is one:
/// `ROCTM/1 <HMAC>` over a body of kind `refusal` with the `gw`, `seq`,
/// `part` and `parts` of a part sent. Anything else gives `None`.
fn refusal(key: &Key, datagram: &[u8], parts: &[(Body, Vec<u8>)]) -> Option<String> {
    if datagram.len() > wire::MAX_DATAGRAM {
        return None;
    }
    let rest = datagram.strip_prefix(b"ROCTM/1 ")?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let (hex, body) = (&rest[..nl], &rest[nl + 1..]);
    if hex.len() != 64 {
        return None;
    }
    let mut mac = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        mac[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    let expected = wire::sign(key, body);
    // Constant time, as the collector compares.
    if mac.iter().zip(expected).fold(0u8, |d, (a, b)| d | (a ^ b)) != 0 {
        return None;
    }
    let v = crate::json::parse(std::str::from_utf8(body).ok()?).ok()?;
    let str_of = |k: &str| match v.get(k) {
        Some(crate::json::Value::Str(s)) => Some(s.as_str()),
        _ => None,
    };
    let num_of = |k: &str| match v.get(k) {
        Some(crate::json::Value::Num(n)) => Some(*n),
        _ => None,
    };
    if str_of("kind")? != "refusal" {
        return None;
    }
    let (gw, seq) = (str_of("gw")?, num_of("seq")?);
    let (part, n) = (num_of("part")?, num_of("parts")?);
    let ours = parts.iter().any(|(b, _)| {
        b.gateway == gw && b.seq == seq && u64::from(b.part) == part && u64::from(b.parts) == n
    });
    // Printed on the gateway's terminal: no control characters.
    let text: String = str_of("text")?
        .chars()
        .take(300)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    ours.then_some(text)
}
