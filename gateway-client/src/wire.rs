//! The datagram format between gateway clients and the collector.
//!
//! A datagram is one header line and a JSON body:
//!
//! ```text
//! ROCTM/1 <64 hex digits: HMAC-SHA-256 of the body under the shared key>\n
//! {"v":1,"gw":"novadaq-far-gateway-01","kind":"report","seq":…,"sent":…,"part":1,"parts":1,"text":"","tunnels":[…]}
//! ```
//!
//! [`decode`] checks, in this order and before it parses anything: the size
//! (at most [`MAX_DATAGRAM`] bytes), the header's shape, the protocol
//! version, and the signature (compared in constant time). Only a correctly
//! signed body reaches the JSON reader, and that reader ([`crate::json`]) is
//! strict and bounded. Each failure names its [`Reject`] reason, which the
//! collector counts.
//!
//! A report too large for one datagram is split by [`encode_all`] into parts
//! that share one `seq`; [`crate::reassembly::Reassembler`] puts them back together in any order,
//! ignoring duplicates, with bounded memory. Every accepted part is answered
//! with a signed ack ([`ack`]). `docs/protocol.md` documents all of this with
//! a worked example; `testdata/wire/` holds signed vectors.
//!
//! The collector decodes every datagram, so two costs are kept low there: a
//! well-formed body is read straight into a [`Body`] by a [`json::Reader`]
//! (anything else goes through the tree reader, which words the error), and
//! the signature is computed through the [`Mac`] trait, which the collector
//! implements with the CPU's SHA instructions. [`Key`] implements it with the
//! dependency-free `hmac-sha256` crate, for the client.

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;

use crate::json::{self, Value};
use crate::key::Key;
use crate::tunnel::{Health, Kind, Tunnel};

/// The protocol version in the header and the body's `v`.
pub(crate) const VERSION: u32 = 1;
/// No datagram is larger than this, in bytes.
pub const MAX_DATAGRAM: usize = 1400;
/// Most parts one report may be split into.
pub(crate) const MAX_PARTS: u32 = 1000;
/// Longest gateway name, in bytes.
pub(crate) const MAX_NAME: usize = 64;
/// The header's fixed prefix.
pub(crate) const MAGIC: &str = "ROCTM/";
/// Length of the header line: `ROCTM/1 ` + 64 hex digits + newline.
const HEADER_LEN: usize = MAGIC.len() + 2 + 64 + 1;

/// What a datagram is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgKind {
    Report,
    Heartbeat,
    Message,
    Shutdown,
    Ack,
    /// A request to silence this gateway's alerts until [`Body::until`]
    /// (`gateway-client --maintenance`); an `until` at or before `sent`
    /// ends a silence early.
    Maintenance,
}

impl MsgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MsgKind::Report => "report",
            MsgKind::Heartbeat => "heartbeat",
            MsgKind::Message => "message",
            MsgKind::Shutdown => "shutdown",
            MsgKind::Ack => "ack",
            MsgKind::Maintenance => "maintenance",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<MsgKind> {
        [
            MsgKind::Report,
            MsgKind::Heartbeat,
            MsgKind::Message,
            MsgKind::Shutdown,
            MsgKind::Ack,
            MsgKind::Maintenance,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The JSON body of one datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// The gateway's name (`--name`, default its host name).
    pub gateway: String,
    pub kind: MsgKind,
    /// Unique per gateway and increasing: the client's send time in
    /// microseconds. All parts of one report share it.
    pub seq: u64,
    /// The gateway's send time, Unix seconds.
    pub sent: u64,
    /// This is part `part` of `parts`, 1-based.
    pub part: u32,
    pub parts: u32,
    /// The operator's message (`message`), the ack's status (`ack`), or empty.
    pub text: String,
    /// The forwards (`report` only).
    pub tunnels: Vec<Tunnel>,
    /// The longest the gateway declares it will stay silent, in seconds
    /// (`--watch`); `None` when it declares nothing (cron's one-shot runs,
    /// older clients).
    pub period: Option<u32>,
    /// The end of a maintenance silence, Unix seconds (`maintenance` only).
    pub until: Option<u64>,
}

/// Why a datagram was refused. The names are the collector's counter labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    Oversized,
    Malformed,
    UnknownVersion,
    BadSignature,
    UnknownPart,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Oversized => "oversized",
            Reject::Malformed => "malformed",
            Reject::UnknownVersion => "unknown_version",
            Reject::BadSignature => "bad_signature",
            Reject::UnknownPart => "unknown_part",
        }
    }
}

/// A refused datagram: the reason and what exactly was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub reason: Reject,
    pub detail: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

impl std::error::Error for WireError {}

fn reject<T>(reason: Reject, detail: impl Into<String>) -> Result<T, WireError> {
    Err(WireError {
        reason,
        detail: detail.into(),
    })
}

/// The HMAC-SHA-256 of `body` under `key`.
pub(crate) fn sign(key: &Key, body: &[u8]) -> [u8; 32] {
    hmac_sha256::HMAC::mac(body, key.as_bytes())
}

/// Something that computes the HMAC-SHA-256 of a body under the shared key.
/// Every implementation must give the same bytes as [`Key`]'s; the
/// collector tests its own against it.
pub trait Mac {
    fn mac(&self, body: &[u8]) -> [u8; 32];
}

impl Mac for Key {
    fn mac(&self, body: &[u8]) -> [u8; 32] {
        sign(self, body)
    }
}

/// Appends `bytes` in lower-case hex.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

fn unhex(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Equal without an early exit, so timing tells nothing about the signature.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Body {
    /// A body with every field empty, for a reader to fill in.
    fn blank() -> Body {
        Body {
            gateway: String::new(),
            kind: MsgKind::Heartbeat,
            seq: 0,
            sent: 0,
            part: 0,
            parts: 0,
            text: String::new(),
            tunnels: Vec::new(),
            period: None,
            until: None,
        }
    }

    /// The body as JSON text, tunnels last.
    pub fn to_json(&self) -> String {
        let mut s = self.head_json();
        for (i, t) in self.tunnels.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            t.write_json(&mut s);
        }
        s.push_str("]}");
        s
    }

    /// Everything up to and including `"tunnels":[`.
    fn head_json(&self) -> String {
        let mut s = String::with_capacity(256);
        write_head(&mut s, self, self.kind, &self.text, true);
        s
    }

    fn from_json(v: &Value) -> Result<Body, String> {
        let obj = v.as_object().ok_or("body is not a JSON object")?;
        let mut body = Body::blank();
        let mut seen = [false; 6];
        for (k, v) in obj {
            match k.as_str() {
                "v" => {} // checked by decode
                "gw" => {
                    body.gateway = json::want_str(k, v)?.to_string();
                    seen[0] = true;
                }
                "kind" => {
                    let s = json::want_str(k, v)?;
                    body.kind = MsgKind::parse(s).ok_or_else(|| format!("unknown kind '{s}'"))?;
                    seen[1] = true;
                }
                "seq" => {
                    body.seq = json::want_u64(k, v)?;
                    seen[2] = true;
                }
                "sent" => {
                    body.sent = json::want_u64(k, v)?;
                    seen[3] = true;
                }
                "part" => {
                    body.part = json::want_u32(k, v)?;
                    seen[4] = true;
                }
                "parts" => {
                    body.parts = json::want_u32(k, v)?;
                    seen[5] = true;
                }
                "text" => body.text = json::want_str(k, v)?.to_string(),
                "period" => body.period = Some(json::want_u32(k, v)?),
                "until" => body.until = Some(json::want_u64(k, v)?),
                "tunnels" => match v {
                    Value::Arr(items) => {
                        body.tunnels = items
                            .iter()
                            .map(Tunnel::from_json)
                            .collect::<Result<_, _>>()?;
                    }
                    _ => return Err("'tunnels' must be an array".into()),
                },
                _ => {} // unknown keys are ignored, for later versions
            }
        }
        let names = ["gw", "kind", "seq", "sent", "part", "parts"];
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(format!("missing '{}'", names[i]));
        }
        check_name(&body.gateway)?;
        Ok(body)
    }
}

/// Writes `body`'s head, up to and including `"tunnels":[`, with `kind`
/// and `text` in place of its own (so that an ack is written from the body
/// it acks without copying it), and its `period` and `until` when `extras`
/// (an ack carries neither).
fn write_head(s: &mut String, body: &Body, kind: MsgKind, text: &str, extras: bool) {
    s.push('{');
    json::field_u64(s, "v", u64::from(VERSION), true);
    json::field_str(s, "gw", &body.gateway);
    json::field_str(s, "kind", kind.as_str());
    json::field_u64(s, "seq", body.seq, false);
    json::field_u64(s, "sent", body.sent, false);
    json::field_u64(s, "part", u64::from(body.part), false);
    json::field_u64(s, "parts", u64::from(body.parts), false);
    json::field_str(s, "text", text);
    if extras {
        if let Some(period) = body.period {
            json::field_u64(s, "period", u64::from(period), false);
        }
        if let Some(until) = body.until {
            json::field_u64(s, "until", until, false);
        }
    }
    s.push_str(",\"tunnels\":[");
}

/// The datagram for a body: the signed header line, then the body's bytes
/// as they are. [`encode`] and [`ack`] frame JSON they wrote; tests and the
/// fuzzer frame bodies of any content, to reach the checks after the
/// signature.
pub fn frame(key: &impl Mac, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + body.len());
    out.extend_from_slice(MAGIC.as_bytes());
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{VERSION} ");
    push_hex(&mut out, &key.mac(body));
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// A gateway name: 1 to 64 bytes, no control characters or white space.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "gateway name must be 1 to {MAX_NAME} bytes, got {}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("gateway name {name:?} holds the character {c:?}"));
    }
    Ok(())
}

/// Frames and signs one body. Does not check the size; see [`encode_all`].
pub fn encode(key: &impl Mac, body: &Body) -> Vec<u8> {
    frame(key, body.to_json().as_bytes())
}

/// Reads and verifies one datagram. The signature is checked before any JSON
/// is parsed.
pub fn decode(key: &impl Mac, datagram: &[u8]) -> Result<Body, WireError> {
    if datagram.len() > MAX_DATAGRAM {
        return reject(
            Reject::Oversized,
            format!("{} bytes, at most {MAX_DATAGRAM}", datagram.len()),
        );
    }
    let Some(rest) = datagram.strip_prefix(MAGIC.as_bytes()) else {
        return reject(Reject::Malformed, "does not start with ROCTM/");
    };
    let Some(nl) = rest.iter().take(HEADER_LEN).position(|&b| b == b'\n') else {
        return reject(Reject::Malformed, "no header line");
    };
    let (header, body) = (&rest[..nl], &rest[nl + 1..]);
    let Some(sp) = header.iter().position(|&b| b == b' ') else {
        return reject(Reject::Malformed, "header has no signature");
    };
    let version = std::str::from_utf8(&header[..sp])
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    match version {
        None => return reject(Reject::Malformed, "header version is not a number"),
        Some(VERSION) => {}
        Some(v) => {
            return reject(
                Reject::UnknownVersion,
                format!("version {v}, this side speaks {VERSION}"),
            );
        }
    }
    let Some(mac) = unhex(&header[sp + 1..]) else {
        return reject(Reject::Malformed, "signature is not 64 hex digits");
    };
    if !constant_time_eq(&mac, &key.mac(body)) {
        return reject(
            Reject::BadSignature,
            "signature does not match the body under our key",
        );
    }
    let text = std::str::from_utf8(body)
        .or_else(|e| reject(Reject::Malformed, format!("body is not UTF-8: {e}")))?;
    let body = match read_body(text) {
        Some(body) => body,
        None => body_from_tree(text)?,
    };
    if body.parts == 0 || body.parts > MAX_PARTS || body.part == 0 || body.part > body.parts {
        return reject(
            Reject::UnknownPart,
            format!("part {} of {}", body.part, body.parts),
        );
    }
    if !matches!(body.kind, MsgKind::Report | MsgKind::Ack) && body.parts != 1 {
        return reject(
            Reject::UnknownPart,
            format!(
                "a {} comes in one part, not {}",
                body.kind.as_str(),
                body.parts
            ),
        );
    }
    Ok(body)
}

/// The body of a signed datagram through the tree reader: accepts what
/// [`read_body`] accepts, and words the error for everything else.
fn body_from_tree(text: &str) -> Result<Body, WireError> {
    let value = json::parse(text).or_else(|e| reject(Reject::Malformed, e))?;
    match value.get("v") {
        Some(Value::Num(n)) if *n == u64::from(VERSION) => {}
        Some(Value::Num(n)) => return reject(Reject::UnknownVersion, format!("body version {n}")),
        _ => return reject(Reject::Malformed, "body has no version 'v'"),
    }
    Body::from_json(&value).or_else(|e| reject(Reject::Malformed, e))
}

/// A well-formed body read straight into a [`Body`], without a tree: every
/// key of the right type, version [`VERSION`], all required keys present, a
/// valid name. `None` for anything else, which [`body_from_tree`] then
/// reads again to find the error (or to accept what this one does not try
/// to, such as a `"v"` given twice with different values). Unknown keys are
/// skipped and a repeated key's last value wins, as in [`Body::from_json`].
fn read_body(text: &str) -> Option<Body> {
    let mut r = json::Reader::new(text)?;
    let mut body = Body::blank();
    // v, gw, kind, seq, sent, part, parts
    let mut seen = [false; 7];
    r.object(|r, key| {
        let slot = match key {
            "v" => (r.u64()? == u64::from(VERSION)).then_some(0)?,
            "gw" => {
                body.gateway = r.str()?.into_owned();
                1
            }
            "kind" => {
                body.kind = MsgKind::parse(&r.str()?)?;
                2
            }
            "seq" => {
                body.seq = r.u64()?;
                3
            }
            "sent" => {
                body.sent = r.u64()?;
                4
            }
            "part" => {
                body.part = u32::try_from(r.u64()?).ok()?;
                5
            }
            "parts" => {
                body.parts = u32::try_from(r.u64()?).ok()?;
                6
            }
            "text" => {
                body.text = r.str()?.into_owned();
                return Some(());
            }
            "period" => {
                body.period = Some(u32::try_from(r.u64()?).ok()?);
                return Some(());
            }
            "until" => {
                body.until = Some(r.u64()?);
                return Some(());
            }
            "tunnels" => {
                body.tunnels.clear();
                // Room for what a datagram holds (about six), at once.
                body.tunnels.reserve(8);
                return r.array(|r| {
                    body.tunnels.push(read_tunnel(r)?);
                    Some(())
                });
            }
            _ => return r.skip(1),
        };
        seen[slot] = true;
        Some(())
    })?;
    (r.at_end() && seen.iter().all(|s| *s) && check_name(&body.gateway).is_ok()).then_some(body)
}

/// One tunnel of [`read_body`]'s array, read as [`Tunnel::from_json`] reads
/// it from a tree (missing keys keep their empty value).
fn read_tunnel(r: &mut json::Reader) -> Option<Tunnel> {
    let mut t = Tunnel::default();
    let text = |r: &mut json::Reader| r.str().map(Cow::into_owned);
    r.object(|r, key| {
        match key {
            "pid" => t.pid = u32::try_from(r.u64()?).ok()?,
            "user" => t.user = text(r)?,
            "kind" => t.kind = Kind::from_letter(&r.str()?)?,
            "bind" => t.bind = text(r)?,
            "listen_port" => t.listen_port = u16::try_from(r.u64()?).ok()?,
            "target_host" => t.target_host = text(r)?,
            "target_port" => t.target_port = u16::try_from(r.u64()?).ok()?,
            "dest" => t.dest = text(r)?,
            "started" => t.started = if r.null() { None } else { Some(r.u64()?) },
            "start" => t.start = text(r)?,
            "cpu_time" => t.cpu_time = text(r)?,
            "listening" => t.listening = Health::parse(&r.str()?)?,
            "vnc" => t.vnc = Health::parse(&r.str()?)?,
            "connections" => {
                t.connections = if r.null() {
                    None
                } else {
                    Some(u32::try_from(r.u64()?).ok()?)
                }
            }
            "connected" => {
                t.connected.clear();
                r.array(|r| {
                    t.connected.push(text(r)?);
                    Some(())
                })?
            }
            // An object in an array in the body: its values are at depth 3.
            _ => r.skip(3)?,
        }
        Some(())
    })?;
    Some(t)
}

/// The signed ack for an accepted part; `status` is `ok` or `duplicate`.
pub fn ack(key: &impl Mac, acked: &Body, status: &str) -> Vec<u8> {
    let mut json = String::with_capacity(192);
    write_head(&mut json, acked, MsgKind::Ack, status, false);
    json.push_str("]}");
    frame(key, json.as_bytes())
}

/// Cuts the longest string of a tunnel in half (on a char boundary), or
/// the list of who is connected when that is longer (`connections` keeps
/// the count).
fn shorten(t: &mut Tunnel) -> bool {
    let listed: usize = t.connected.iter().map(|c| c.len() + 3).sum();
    let longest_field = [
        &t.user,
        &t.bind,
        &t.target_host,
        &t.dest,
        &t.start,
        &t.cpu_time,
    ]
    .iter()
    .map(|s| s.len())
    .max()
    .unwrap_or(0);
    if !t.connected.is_empty() && listed >= longest_field {
        t.connected.truncate(t.connected.len() / 2);
        return true;
    }
    let fields = [
        &mut t.user,
        &mut t.bind,
        &mut t.target_host,
        &mut t.dest,
        &mut t.start,
        &mut t.cpu_time,
    ];
    let Some(longest) = fields.into_iter().max_by_key(|s| s.len()) else {
        return false;
    };
    if longest.is_empty() {
        return false;
    }
    let mut cut = longest.len() / 2;
    while !longest.is_char_boundary(cut) {
        cut -= 1;
    }
    longest.truncate(cut);
    true
}

/// Splits `body` (with all its tunnels, `part`/`parts` ignored) into signed
/// datagrams of at most [`MAX_DATAGRAM`] bytes. A tunnel too long for a
/// datagram on its own has its longest strings shortened. Fails when the
/// message text or the name cannot fit, or the report needs more than
/// [`MAX_PARTS`] parts.
pub fn encode_all(key: &impl Mac, body: &Body) -> Result<Vec<(Body, Vec<u8>)>, String> {
    check_name(&body.gateway)?;
    // The body without its tunnels, with the widest part numbers it could
    // hold: the head every part starts with, at its longest.
    let mut bare = Body {
        gateway: body.gateway.clone(),
        kind: body.kind,
        seq: body.seq,
        sent: body.sent,
        part: MAX_PARTS,
        parts: MAX_PARTS,
        text: body.text.clone(),
        tunnels: Vec::new(),
        period: body.period,
        until: body.until,
    };
    let head = HEADER_LEN + bare.head_json().len() + 2;
    if head > MAX_DATAGRAM {
        return Err(format!(
            "the message is too long: {} bytes encoded, at most {} fit in a datagram",
            head - HEADER_LEN - 2 - bare.head_json().len() + bare.text.len(),
            MAX_DATAGRAM - (head - bare.text.len())
        ));
    }
    let room = MAX_DATAGRAM - head;
    // Each tunnel (shortened if it cannot fit alone) with its JSON, in
    // groups that fit in one datagram.
    let mut groups: Vec<Vec<(Tunnel, String)>> = vec![Vec::new()];
    let mut used = 0;
    for t in &body.tunnels {
        let mut t = t.clone();
        let mut json = t.to_json();
        while json.len() > room && shorten(&mut t) {
            json = t.to_json();
        }
        let len = json.len();
        let last = groups.last_mut().expect("groups starts non-empty");
        let need = len + usize::from(!last.is_empty());
        if used + need <= room {
            last.push((t, json));
            used += need;
        } else {
            groups.push(vec![(t, json)]);
            used = len;
        }
    }
    let parts = u32::try_from(groups.len()).unwrap_or(u32::MAX);
    if parts > MAX_PARTS {
        return Err(format!(
            "{} tunnels need {parts} datagrams, at most {MAX_PARTS}",
            body.tunnels.len()
        ));
    }
    bare.parts = parts;
    Ok(groups
        .into_iter()
        .zip(1..)
        .map(|(group, part)| {
            bare.part = part;
            // What `Body::to_json` writes, from the JSON already made.
            let mut json = String::with_capacity(MAX_DATAGRAM);
            write_head(&mut json, &bare, bare.kind, &bare.text, true);
            let mut tunnels = Vec::with_capacity(group.len());
            for (i, (t, t_json)) in group.into_iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                json.push_str(&t_json);
                tunnels.push(t);
            }
            json.push_str("]}");
            let b = Body {
                tunnels,
                ..bare.clone()
            };
            debug_assert_eq!(json, b.to_json());
            let bytes = frame(key, json.as_bytes());
            debug_assert!(bytes.len() <= MAX_DATAGRAM);
            (b, bytes)
        })
        .collect())
}

/// A whole report (or other message), put back together from its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub gateway: String,
    pub kind: MsgKind,
    pub seq: u64,
    pub sent: u64,
    pub parts: u32,
    pub text: String,
    pub tunnels: Vec<Tunnel>,
    /// The period the gateway declared ([`Body::period`]).
    pub period: Option<u32>,
    /// The end of a maintenance silence ([`Body::until`]).
    pub until: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::Kind;

    fn key() -> Key {
        Key::from_text("0123456789abcdef0123456789abcdef")
    }

    fn tunnel(i: u32) -> Tunnel {
        Tunnel {
            pid: 1000 + i,
            user: format!("novacr{:02}", i % 100),
            kind: Kind::Local,
            listen_port: 5900 + (i % 100) as u16,
            target_host: "novadaq-far-master-02".into(),
            target_port: 5951,
            dest: "novadaq-far-gateway-01".into(),
            start: "Apr04".into(),
            cpu_time: "1:56".into(),
            ..Tunnel::default()
        }
    }

    fn report(n: u32) -> Body {
        Body {
            gateway: "novadaq-far-gateway-01".into(),
            kind: MsgKind::Report,
            seq: 1_700_000_000_000_000,
            sent: 1_700_000_000,
            part: 1,
            parts: 1,
            text: String::new(),
            tunnels: (0..n).map(tunnel).collect(),
            period: None,
            until: None,
        }
    }

    #[test]
    fn round_trip_one_part() {
        let parts = encode_all(&key(), &report(3)).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(decode(&key(), &parts[0].1).unwrap(), report(3));
    }

    #[test]
    fn rejects_in_order_size_header_version_signature() {
        let good = encode(&key(), &report(1));
        assert_eq!(
            decode(&key(), &vec![b'x'; 1401]).unwrap_err().reason,
            Reject::Oversized
        );
        assert_eq!(
            decode(&key(), b"hello").unwrap_err().reason,
            Reject::Malformed
        );
        let mut v2 = good.clone();
        v2[6] = b'2';
        assert_eq!(
            decode(&key(), &v2).unwrap_err().reason,
            Reject::UnknownVersion
        );
        let other = Key::from_text("another key, sixteen bytes long");
        assert_eq!(
            decode(&other, &good).unwrap_err().reason,
            Reject::BadSignature
        );
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() = b' ';
        assert_eq!(
            decode(&key(), &flipped).unwrap_err().reason,
            Reject::BadSignature
        );
    }

    #[test]
    fn signed_hostile_bodies_are_malformed_not_panics() {
        for body in [
            r#"{"zz":}"#,
            r#"{"v":1,"zz":[1,2"#,
            "[[[[[[[[[[[[[[[[[[[[",
            "{\"v\":1}",
            "\u{0}",
        ] {
            let d = frame(&key(), body.as_bytes());
            assert_eq!(
                decode(&key(), &d).unwrap_err().reason,
                Reject::Malformed,
                "{body}"
            );
        }
    }

    #[test]
    fn bad_part_numbers_are_unknown_part() {
        for (part, parts) in [(0, 1), (2, 1), (1, 0), (1, MAX_PARTS + 1)] {
            let b = Body {
                part,
                parts,
                ..report(0)
            };
            assert_eq!(
                decode(&key(), &encode(&key(), &b)).unwrap_err().reason,
                Reject::UnknownPart
            );
        }
    }

    #[test]
    fn a_huge_field_is_shortened_to_fit() {
        let mut b = report(1);
        b.tunnels[0].target_host = "h".repeat(5000);
        let parts = encode_all(&key(), &b).unwrap();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].1.len() <= MAX_DATAGRAM);
    }

    /// Both body readers, the fast one and the tree, on every accepted
    /// vector of `testdata/wire` (made by `scripts/make-wire-vectors`):
    /// reports with and without `connections` and `connected`, and with
    /// fields of a newer version, read alike and as expected.
    #[test]
    fn both_readers_read_every_vector_alike() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/wire");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "expect") {
                continue;
            }
            let expect = std::fs::read_to_string(&path).unwrap();
            let mut lines = expect.lines();
            if !lines.next().unwrap().starts_with("accept") {
                continue;
            }
            let want = lines.next().unwrap();
            let dgram = std::fs::read(path.with_extension("dgram")).unwrap();
            let at = dgram.iter().position(|&b| b == b'\n').unwrap() + 1;
            let text = std::str::from_utf8(&dgram[at..]).unwrap();
            let fast = read_body(text)
                .unwrap_or_else(|| panic!("{}: fast reader refused", path.display()));
            let tree = body_from_tree(text).unwrap();
            assert_eq!(fast.to_json(), want, "{}", path.display());
            assert_eq!(tree.to_json(), want, "{}", path.display());
            checked += 1;
        }
        assert!(checked >= 9, "only {checked} accepted vectors");
    }

    #[test]
    fn a_long_list_of_peers_is_shortened_to_fit_and_the_count_kept() {
        let mut b = report(2);
        b.tunnels[0].connections = Some(300);
        b.tunnels[0].connected = (0..300).map(|i| format!("192.0.2.{}", i % 250)).collect();
        b.tunnels[1].connections = Some(1);
        b.tunnels[1].connected = vec!["novaroc1".into()];
        let parts = encode_all(&key(), &b).unwrap();
        let mut got = Vec::new();
        for (_, d) in &parts {
            assert!(d.len() <= MAX_DATAGRAM);
            got.extend(decode(&key(), d).unwrap().tunnels);
        }
        assert_eq!(got[0].connections, Some(300));
        assert!(!got[0].connected.is_empty() && got[0].connected.len() < 300);
        assert_eq!(
            got[0].connected[..],
            b.tunnels[0].connected[..got[0].connected.len()]
        );
        assert_eq!(got[1], b.tunnels[1]);
    }

    #[test]
    fn a_message_too_long_is_refused() {
        let b = Body {
            kind: MsgKind::Message,
            text: "x".repeat(2000),
            ..report(0)
        };
        assert!(encode_all(&key(), &b).unwrap_err().contains("too long"));
        let b = Body {
            kind: MsgKind::Message,
            text: "x".repeat(1000),
            ..report(0)
        };
        assert_eq!(encode_all(&key(), &b).unwrap().len(), 1);
    }

    #[test]
    fn ack_round_trips() {
        let b = report(2);
        let a = decode(&key(), &ack(&key(), &b, "ok")).unwrap();
        assert_eq!(
            (a.kind, a.seq, a.part, a.text.as_str()),
            (MsgKind::Ack, b.seq, 1, "ok")
        );
    }

    /// Bodies the tree reader and the fast reader are compared on: what the
    /// client sends, plus hand-made oddities that are still valid.
    fn body_texts() -> Vec<String> {
        let mut out: Vec<String> = [report(0), report(3), ack_body()]
            .iter()
            .map(Body::to_json)
            .collect();
        out.extend(
            [
                r#" { "v" : 1 , "gw" : "g\u00e9" , "kind":"message","seq":0,"sent":9,"part":1,"parts":1,"text":"a\"b\\c\n<&>","x":[{"y":[null,true]}] } "#,
                r#"{"v":1,"gw":"g","kind":"report","seq":1,"sent":2,"part":1,"parts":1,"tunnels":[{"started":null,"zz":{"a":[1]}},{}],"tunnels":[{"pid":4294967295,"listen_port":65535}]}"#,
                r#"{"v":1,"v":2,"gw":"g","kind":"heartbeat","seq":1,"sent":2,"part":1,"parts":1}"#,
                r#"{"\u0076":1,"gw":"g","kind":"shutdown","seq":18446744073709551615,"sent":2,"part":1,"parts":1,"text":""}"#,
            ]
            .map(String::from),
        );
        out
    }

    fn ack_body() -> Body {
        Body {
            kind: MsgKind::Ack,
            text: "ok".into(),
            tunnels: Vec::new(),
            ..report(0)
        }
    }

    /// What the fast reader accepts, the tree reader accepts as the same
    /// body; on everything else the tree reader's verdict stands alone.
    fn assert_agree(text: &str) {
        if let Some(fast) = read_body(text) {
            assert_eq!(body_from_tree(text).as_ref(), Ok(&fast), "{text}");
        }
    }

    #[test]
    fn the_fast_reader_takes_what_clients_send() {
        for text in body_texts() {
            assert_agree(&text);
        }
        for body in [report(0), report(3), report(500), ack_body()] {
            let text = body.to_json();
            assert_eq!(read_body(&text).as_ref(), Some(&body), "{text}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// Bodies cut, spliced and seeded with JSON's own characters: the
        /// two readers never disagree on what they both accept.
        #[test]
        fn the_fast_reader_agrees_with_the_tree_reader(
            which in 0usize..8,
            edits in proptest::collection::vec(
                (0usize..2000, 0usize..4, proptest::sample::select(vec![
                    "", "\"", "\\", ",", ":", "{", "}", "[", "]", "0", "01", "-1", "1.5", "1e3",
                    "null", "true", "\"v\":2", "\"v\":1,", "\"gw\":\"\",", "\"kind\":\"ack\",",
                    "\\u0000", "\\ud800", "\u{7f}", "é", " ", "\n", "\u{1}", "4294967296",
                    "65536", "18446744073709551616", "\"tunnels\":[],", "\"started\":\"x\",",
                ])),
                0..4,
            ),
        ) {
            let texts = body_texts();
            let mut text = texts[which % texts.len()].clone();
            for (at, cut, insert) in edits {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + cut).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, insert);
            }
            assert_agree(&text);
        }
    }
}
