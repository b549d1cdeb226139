//! The tunnel record: one SSH port forward held open by one process.
//!
//! This is the unit the whole monitor talks about. The `ps` parser
//! (`ps.rs` + `ssh_args.rs`) produces them, live mode (`live.rs`, `health.rs`)
//! completes them, the wire codec (`wire.rs`) carries them to the collector,
//! which writes one CSV row per record, and webgen shows them.
//!
//! An ssh process with three `-L` options is three records. Field names in
//! JSON (`--json`, the wire body) are the Rust field names below.

use crate::json::{self, Value};

/// Which kind of forward: `-L` (local), `-R` (remote) or `-D` (dynamic, SOCKS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Kind {
    #[default]
    Local,
    Remote,
    Dynamic,
}

impl Kind {
    /// The letter ssh uses for the option: `L`, `R` or `D`.
    pub fn letter(self) -> &'static str {
        match self {
            Kind::Local => "L",
            Kind::Remote => "R",
            Kind::Dynamic => "D",
        }
    }

    pub fn from_letter(s: &str) -> Option<Kind> {
        match s {
            "L" => Some(Kind::Local),
            "R" => Some(Kind::Remote),
            "D" => Some(Kind::Dynamic),
            _ => None,
        }
    }
}

/// A yes / no / unknown answer about a forward's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Health {
    Yes,
    No,
    #[default]
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Yes => "yes",
            Health::No => "no",
            Health::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Health> {
        match s {
            "yes" => Some(Health::Yes),
            "no" => Some(Health::No),
            "unknown" | "" => Some(Health::Unknown),
            _ => None,
        }
    }
}

/// One forward. See DESIGN's "Tunnel record" contract.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tunnel {
    /// Process id of the ssh (or autossh-started ssh) process.
    pub pid: u32,
    /// Owner account. Live mode gives the full name; from a capture, what ps
    /// printed (possibly cut to `name+`).
    pub user: String,
    pub kind: Kind,
    /// Bind address of the listening side; empty when none was given.
    pub bind: String,
    /// Port that listens (on this host for `L`/`D`, on `dest` for `R`).
    pub listen_port: u16,
    /// Where the forward leads; empty when there is none (`D`, `-R port`).
    pub target_host: String,
    /// 0 when there is none.
    pub target_port: u16,
    /// The host ssh connects to, without `user@` or `ssh://`.
    pub dest: String,
    /// Process start time, Unix seconds, when known (live mode).
    pub started: Option<u64>,
    /// ps's START column as printed (`21:06`, `Apr04`, `2016`); empty if none.
    pub start: String,
    /// ps's TIME column as printed (`1:56`, `00:00:03`).
    pub cpu_time: String,
    /// Whether the listen port is in LISTEN state, held by this process.
    pub listening: Health,
    /// Whether a VNC server answered through the forward (`--probe`).
    pub vnc: Health,
    /// `L` and `D` forwards in live mode: how many ESTABLISHED TCP
    /// connections its listening sockets have. `None` when unknown: `R`
    /// forwards, captures, reports of older clients.
    pub connections: Option<u32>,
    /// One entry per connection: the account owning the peer's socket when
    /// the peer is on this host (its uid when no name is known), else the
    /// peer's IP address. Empty when `connections` is `None` or 0.
    pub connected: Vec<String>,
}

impl Tunnel {
    /// VNC display number when the target port is 59NN (5900..=5999).
    pub fn vnc_display(&self) -> Option<u16> {
        (5900..=5999)
            .contains(&self.target_port)
            .then(|| self.target_port - 5900)
    }

    /// Appends this record as one JSON object (no newline), as the wire
    /// carries it: `connections` only when known, `connected` only when
    /// not empty (a decoder takes a missing one as unknown or empty, so
    /// records of captures and `R` forwards keep the size they had before
    /// the two fields existed).
    pub(crate) fn write_json(&self, out: &mut String) {
        self.write_fields(out);
        if let Some(n) = self.connections {
            json::field_u64(out, "connections", u64::from(n), false);
        }
        if !self.connected.is_empty() {
            self.write_connected(out);
        }
        out.push('}');
    }

    /// Appends this record as one JSON object with every field, unknown
    /// ones as `null` or `[]` (`--json`).
    pub(crate) fn write_json_all(&self, out: &mut String) {
        self.write_fields(out);
        match self.connections {
            Some(n) => json::field_u64(out, "connections", u64::from(n), false),
            None => out.push_str(",\"connections\":null"),
        }
        self.write_connected(out);
        out.push('}');
    }

    /// `,"connected":[...]`.
    fn write_connected(&self, out: &mut String) {
        out.push_str(",\"connected\":[");
        for (i, c) in self.connected.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::write_str(out, c);
        }
        out.push(']');
    }

    /// The object's opening brace and the fields every record has.
    fn write_fields(&self, out: &mut String) {
        out.push('{');
        json::field_u64(out, "pid", u64::from(self.pid), true);
        json::field_str(out, "user", &self.user);
        json::field_str(out, "kind", self.kind.letter());
        json::field_str(out, "bind", &self.bind);
        json::field_u64(out, "listen_port", u64::from(self.listen_port), false);
        json::field_str(out, "target_host", &self.target_host);
        json::field_u64(out, "target_port", u64::from(self.target_port), false);
        json::field_str(out, "dest", &self.dest);
        match self.started {
            Some(s) => json::field_u64(out, "started", s, false),
            None => out.push_str(",\"started\":null"),
        }
        json::field_str(out, "start", &self.start);
        json::field_str(out, "cpu_time", &self.cpu_time);
        json::field_str(out, "listening", self.listening.as_str());
        json::field_str(out, "vnc", self.vnc.as_str());
    }

    /// The record as one JSON object.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(256);
        self.write_json(&mut s);
        s
    }

    /// The record as one JSON object with every field, unknown ones as
    /// `null` or `[]` (as `--json` prints it; the collector's
    /// `status.json`).
    pub fn to_json_all(&self) -> String {
        let mut s = String::with_capacity(256);
        self.write_json_all(&mut s);
        s
    }

    /// Reads one line of `--json` output (one record, as [`Tunnel::to_json`]
    /// writes it) back into a record, with the rules of [`Tunnel::from_json`].
    pub fn from_json_line(line: &str) -> Result<Tunnel, String> {
        Tunnel::from_json(&json::parse(line)?)
    }

    /// Reads a record from a parsed JSON object. Unknown keys are ignored;
    /// missing keys take their empty value; wrong types are errors.
    pub(crate) fn from_json(v: &Value) -> Result<Tunnel, String> {
        let obj = v.as_object().ok_or("tunnel is not a JSON object")?;
        let mut t = Tunnel::default();
        for (k, v) in obj {
            match k.as_str() {
                "pid" => t.pid = json::want_u32(k, v)?,
                "user" => t.user = json::want_str(k, v)?.to_string(),
                "kind" => {
                    let s = json::want_str(k, v)?;
                    t.kind = Kind::from_letter(s).ok_or_else(|| format!("bad kind '{s}'"))?
                }
                "bind" => t.bind = json::want_str(k, v)?.to_string(),
                "listen_port" => t.listen_port = json::want_u16(k, v)?,
                "target_host" => t.target_host = json::want_str(k, v)?.to_string(),
                "target_port" => t.target_port = json::want_u16(k, v)?,
                "dest" => t.dest = json::want_str(k, v)?.to_string(),
                "started" => {
                    t.started = match v {
                        Value::Null => None,
                        _ => Some(json::want_u64(k, v)?),
                    }
                }
                "start" => t.start = json::want_str(k, v)?.to_string(),
                "cpu_time" => t.cpu_time = json::want_str(k, v)?.to_string(),
                "listening" => {
                    let s = json::want_str(k, v)?;
                    t.listening = Health::parse(s).ok_or_else(|| format!("bad listening '{s}'"))?
                }
                "vnc" => {
                    let s = json::want_str(k, v)?;
                    t.vnc = Health::parse(s).ok_or_else(|| format!("bad vnc '{s}'"))?
                }
                "connections" => {
                    t.connections = match v {
                        Value::Null => None,
                        _ => Some(json::want_u32(k, v)?),
                    }
                }
                "connected" => {
                    let Value::Arr(items) = v else {
                        return Err("'connected' must be an array of strings".into());
                    };
                    t.connected = items
                        .iter()
                        .map(|c| json::want_str(k, c).map(str::to_string))
                        .collect::<Result<_, _>>()?;
                }
                _ => {}
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let t = Tunnel {
            pid: 4242,
            user: "novacr01".into(),
            kind: Kind::Local,
            bind: "::1".into(),
            listen_port: 5900,
            target_host: "novadaq-far-master-02".into(),
            target_port: 5951,
            dest: "novadaq-far-gateway-01".into(),
            started: Some(1_459_800_000),
            start: "Apr04".into(),
            cpu_time: "1:56".into(),
            listening: Health::Yes,
            vnc: Health::Unknown,
            connections: Some(2),
            connected: vec!["novaroc1".into(), "192.0.2.15".into()],
        };
        let s = t.to_json();
        assert_eq!(
            s,
            r#"{"pid":4242,"user":"novacr01","kind":"L","bind":"::1","listen_port":5900,"target_host":"novadaq-far-master-02","target_port":5951,"dest":"novadaq-far-gateway-01","started":1459800000,"start":"Apr04","cpu_time":"1:56","listening":"yes","vnc":"unknown","connections":2,"connected":["novaroc1","192.0.2.15"]}"#
        );
        let back = Tunnel::from_json(&json::parse(&s).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.vnc_display(), Some(51));
        let mut all = String::new();
        t.write_json_all(&mut all);
        assert_eq!(all, s);
        // Unknown: left out on the wire (as an older client sends it), null
        // and [] for --json; either reads back as unknown.
        let known = r#""connections":2,"connected":["novaroc1","192.0.2.15"]"#;
        let unknown = Tunnel {
            connections: None,
            connected: Vec::new(),
            ..t.clone()
        };
        let wire = unknown.to_json();
        assert_eq!(wire, s.replace(&format!(",{known}"), ""));
        let mut all = String::new();
        unknown.write_json_all(&mut all);
        assert_eq!(
            all,
            s.replace(known, r#""connections":null,"connected":[]"#)
        );
        for text in [wire, all] {
            assert_eq!(
                Tunnel::from_json(&json::parse(&text).unwrap()).unwrap(),
                unknown
            );
        }
        // Nobody on it: the count only.
        let idle = Tunnel {
            connections: Some(0),
            ..unknown.clone()
        };
        assert!(
            idle.to_json()
                .ends_with(r#""vnc":"unknown","connections":0}"#)
        );
        for bad in [
            r#"{"connections":"2"}"#,
            r#"{"connections":4294967296}"#,
            r#"{"connected":"x"}"#,
            r#"{"connected":[1]}"#,
        ] {
            assert!(
                Tunnel::from_json(&json::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
