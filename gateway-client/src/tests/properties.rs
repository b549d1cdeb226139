//! Property tests for the two parsers that read untrusted input on the
//! gateway client's side of the wire: the `ps` parser and the wire decoder.
//!
//! What must hold for every input proptest can think of:
//!
//! - `ps::parse_ps` never panics, on noise and on lines shaped like real
//!   `ps aux` output whose command lines are ssh invocations made of random
//!   option tokens; each tunnel it finds belongs to a process in the input;
//!   and a plain `ssh -L P:H:Q DEST` in any common spelling is found exactly.
//! - `ps::PsReader` reading a capture through a buffer of any size, in
//!   reads of any size, gives what `parse_ps` gives on the whole text:
//!   the same tunnels, counts and problems with the same line numbers, also
//!   with bytes that are not UTF-8, CRLF line ends and lines longer than
//!   the buffer.
//! - `wire::decode` never panics: on noise, on a valid header in front of
//!   noise, and on *signed* noise and JSON-like token soup (so the strict JSON
//!   reader is reached); a changed byte in a signed body is `bad_signature`.
//! - Encoding then decoding gives back the same report: `encode_all` splits,
//!   `decode` reads each part, `Reassembler` puts them back, and the tunnels,
//!   name, kind, seq, send time and text are what went in.
//! - The parts of a split report reassemble in any order and with
//!   duplicates, also when two reports are interleaved.
//!
//! Case counts are kept small enough that the whole file runs in a few
//! seconds in a debug build; `PROPTEST_CASES=10000 cargo test -p
//! gateway-client --test properties` runs it longer.

use crate::key::Key;
use crate::ps;
use crate::reassembly::Reassembler;
use crate::tunnel::{Health, Kind, Tunnel};
use crate::wire::{self, Body, MsgKind, Reject};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::string::string_regex;

fn cases(n: u32) -> ProptestConfig {
    // PROPTEST_CASES in the environment overrides the default, as usual.
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- ps input

/// Tokens an ssh command line is built from: real option spellings, forward
/// specs good and bad, and the things that trip naive splitting.
const SSH_TOKENS: &[&str] = &[
    "-L",
    "-R",
    "-D",
    "-N",
    "-f",
    "-fN",
    "-fNL",
    "-NfL",
    "-NfR",
    "-fND",
    "-T",
    "-v",
    "-C",
    "-q",
    "-x",
    "-g",
    "-4",
    "-6",
    "-A",
    "-K",
    "-n",
    "-l",
    "-p",
    "-J",
    "-o",
    "-i",
    "-F",
    "-E",
    "-S",
    "-M",
    "-W",
    "-b",
    "-c",
    "-m",
    "-e",
    "-O",
    "-Q",
    "-B",
    "-w",
    "--",
    "-",
    "-LR",
    "-L5900:localhost:5901",
    "-L 5900",
    "-R5900",
    "-D1080",
    "-Dlocalhost:1080",
    "-p22",
    "-p2222",
    "-lnovacr01",
    "-Jjump",
    "-Juser@jump:22,other",
    "-oLocalForward=5900:h:5951",
    "-oExitOnForwardFailure=yes",
    "-oServerAliveInterval=30",
    "LocalForward=5901",
    "LocalForward",
    "RemoteForward",
    "DynamicForward",
    "localforward=5900",
    "dynamicforward",
    "ExitOnForwardFailure=yes",
    "ServerAliveInterval=60",
    "ProxyJump=gw",
    "User=x",
    "Port=22",
    "5900:novadaq-far-master-02:5951",
    "5901:localhost:5901",
    "127.0.0.1:5902:h:5902",
    "*:5903:h:5903",
    "[::1]:5904:[fe80::1]:5904",
    "[::1]:5905:h:5905",
    "localhost:1080",
    "1080",
    "0",
    "65535",
    "65536",
    "99999999999999999999",
    "-1",
    "5900:h",
    "5900::5951",
    ":5900:h:5951",
    "5900:h:",
    "5900:h:x",
    "[::1",
    "::1]:5900",
    "[]:1:h:2",
    "a:b:c:d:e:f",
    "/tmp/sock:/tmp/other",
    "5900:/tmp/sock",
    "h:5951",
    "novacr01@novadaq-far-gateway-01",
    "novadaq-far-gateway-01",
    "ssh://u@h:22",
    "u@",
    "@",
    "@h",
    "user@[::1]",
    "h",
    "novadaq-near-gateway-01.fnal.gov",
    "-L\u{e9}:x:\u{1f600}",
    "\u{0}",
    "%",
    "\"",
    "'",
    "$HOME",
    "sleep",
    "60",
    "bash",
    "-c",
    "ssh",
    "autossh",
    "-M0",
    "-M",
    "20000",
];

/// What a process's argv[0] might be.
const PROGRAMS: &[&str] = &[
    "ssh",
    "/usr/bin/ssh",
    "/usr/local/bin/ssh",
    "autossh",
    "/usr/bin/autossh",
    "sshd:",
    "/usr/sbin/sshd",
    "ssh-agent",
    "scp",
    "sftp",
    "grep",
    "[ssh]",
    "-bash",
    "ssh.old",
    "xssh",
    "/usr/lib/openssh/sftp-server",
];

fn ssh_command() -> impl Strategy<Value = String> {
    (
        select(PROGRAMS),
        prop::collection::vec(
            prop_oneof![
                8 => select(SSH_TOKENS).prop_map(str::to_string),
                1 => "[ -~]{0,12}",
                1 => "\\PC{0,6}",
            ],
            0..16,
        ),
    )
        .prop_map(|(prog, args)| {
            let mut s = prog.to_string();
            for a in args {
                s.push(' ');
                s.push_str(&a);
            }
            s
        })
}

fn user() -> impl Strategy<Value = String> {
    prop_oneof![
        select(&["root", "novacr01", "novacr02", "averylo+", "nobody", "u"][..])
            .prop_map(str::to_string),
        "[a-z][a-z0-9_-]{0,7}\\+?",
        "\\PC{0,10}",
    ]
}

fn pid() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (1u32..4_194_304).prop_map(|p| p.to_string()),
        1 => select(&["0", "-1", "4294967296", "99999999999999999999", "x", ""][..]).prop_map(str::to_string),
    ]
}

/// One line of procps `ps aux` output.
fn aux_line() -> impl Strategy<Value = String> {
    (
        user(),
        pid(),
        select(&["Apr04", "21:06", "2016", "Nov23", "", "Jan 1"][..]),
        select(&["1:56", "0:00", "00:00:03", "120:00", "", "1-02:03:04"][..]),
        ssh_command(),
    )
        .prop_map(|(user, pid, start, time, cmd)| {
            format!(
                "{user:<8} {pid:>6}  0.0  0.0  71272  5708 ?        Ss   {start:>5} {time:>6} {cmd}"
            )
        })
}

/// One line of busybox `ps` output (`PID USER TIME COMMAND`).
fn busybox_line() -> impl Strategy<Value = String> {
    (pid(), user(), ssh_command())
        .prop_map(|(pid, user, cmd)| format!("{pid:>5} {user:<8} 0:00 {cmd}"))
}

const AUX_HEADER: &str =
    "USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND";
const BUSYBOX_HEADER: &str = "  PID USER       TIME  COMMAND";

fn ps_capture() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(aux_line(), 0..12).prop_map(|lines| {
            let mut s = String::from(AUX_HEADER);
            for l in lines {
                s.push('\n');
                s.push_str(&l);
            }
            s
        }),
        prop::collection::vec(busybox_line(), 0..12).prop_map(|lines| {
            let mut s = String::from(BUSYBOX_HEADER);
            for l in lines {
                s.push('\n');
                s.push_str(&l);
            }
            s
        }),
        // Lines without a header, mixed formats, stray blank lines.
        prop::collection::vec(
            prop_oneof![aux_line(), busybox_line(), "[ -~]{0,80}"],
            0..12
        )
        .prop_map(|lines| lines.join("\n")),
    ]
}

/// A forward spec that any ssh accepts: `-L P:H:Q` in one of its spellings.
fn plain_forward() -> impl Strategy<Value = (u16, String, u16, String, u32, String)> {
    (
        1u16..=65535,
        "[a-z][a-z0-9-]{0,20}",
        1u16..=65535,
        select(
            &[
                "ssh -L {F} {D}",
                "ssh -L{F} {D}",
                "ssh -fNL {F} {D}",
                "ssh -NfL {F} {D}",
                "/usr/bin/ssh -N -L {F} {D}",
                "ssh -C -p 22 -L {F} {D}",
                "ssh -L {F} -l novacr01 {D}",
                "ssh {D} -L {F}",
                "ssh -v -fN -L{F} novacr01@{D}",
            ][..],
        ),
        1u32..4_194_304,
        "[a-z][a-z0-9-]{0,20}",
    )
        .prop_map(|(p, h, q, shape, pid, dest)| {
            let line = shape
                .replace("{F}", &format!("{p}:{h}:{q}"))
                .replace("{D}", &dest);
            (p, h, q, line, pid, dest)
        })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn ps_parser_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = ps::parse_ps(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn ps_parser_never_panics_on_ps_shaped_lines(capture in ps_capture()) {
        let out = ps::parse_ps(&capture);
        // Every tunnel belongs to a process of the capture.
        for t in &out.tunnels {
            let p = t.pid.to_string();
            prop_assert!(
                capture.lines().any(|l| l.split_whitespace().take(2).any(|w| w == p)),
                "tunnel {t:?} has a pid not in the capture:\n{capture}"
            );
        }
    }

    #[test]
    fn ps_parser_finds_a_plain_forward_in_any_spelling(
        (p, h, q, cmd, pid, dest) in plain_forward(),
    ) {
        let capture = format!(
            "{AUX_HEADER}\nnovacr01 {pid:>6}  0.0  0.0  71272  5708 ?        Ss   Apr04   1:56 {cmd}\n"
        );
        let out = ps::parse_ps(&capture);
        prop_assert_eq!(out.tunnels.len(), 1, "{}", capture);
        let t = &out.tunnels[0];
        prop_assert_eq!(t.pid, pid);
        prop_assert_eq!(t.kind, Kind::Local);
        prop_assert_eq!(t.listen_port, p);
        prop_assert_eq!(&t.target_host, &h);
        prop_assert_eq!(t.target_port, q);
        prop_assert_eq!(&t.dest, &dest);
        prop_assert_eq!(&t.user, "novacr01");
    }
}

/// Gives its bytes in reads of the sizes in `steps` (round and round).
struct Pieces<'a> {
    bytes: &'a [u8],
    steps: Vec<usize>,
    next: usize,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let step = self.steps[self.next % self.steps.len()];
        self.next += 1;
        let n = step.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Bytes that are not UTF-8, or not where a line ends.
const STRAY_BYTES: &[&[u8]] = &[b"\xff", b"\xe2\x82", b"\xc3", b"\r"];

/// A capture as bytes: `ps_capture` lines with autossh lines and their
/// ssh children, CRLF line ends, long lines and stray bytes mixed in.
fn ps_capture_bytes() -> impl Strategy<Value = Vec<u8>> {
    let autossh = (1u32..100_000, 1u16..=65535).prop_map(|(pid, port)| {
        format!(
            "root {pid} 0.0 0.0 1 1 ? S 21:27 0:00 /usr/lib/autossh/autossh -M 20000 -N -L {port}:h:5955 gw\n\
             root {} 0.0 0.0 1 1 ? S 21:27 0:00 /usr/bin/ssh -L 20000:127.0.0.1:20000 -N -L {port}:h:5955 gw",
            pid + 1
        )
    });
    let extra = prop_oneof![
        4 => autossh,
        1 => (1usize..3000).prop_map(|n| format!("root 9 0.0 0.0 1 1 ? S 21:27 0:00 ssh -N{} gw", " -L 1:h:2".repeat(n))),
        1 => Just(String::new()),
        1 => Just("  \r".to_string()),
    ];
    (
        ps_capture(),
        prop::collection::vec((any::<prop::sample::Index>(), extra), 0..4),
        prop::collection::vec((any::<prop::sample::Index>(), select(STRAY_BYTES)), 0..4),
        any::<bool>(),
    )
        .prop_map(|(capture, extra, stray, crlf)| {
            let mut lines: Vec<String> = capture.split('\n').map(str::to_string).collect();
            for (at, line) in extra {
                let i = at.index(lines.len() + 1);
                lines.splice(i..i, line.split('\n').map(str::to_string));
            }
            let mut bytes = lines.join(if crlf { "\r\n" } else { "\n" }).into_bytes();
            for (at, b) in stray {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, b.iter().copied());
            }
            bytes
        })
}

/// Everything a parse gives, to compare two parses of one capture.
fn summary(out: &ps::PsOutcome) -> (Vec<Tunnel>, usize, usize, Vec<ps::Problem>) {
    (
        out.tunnels.clone(),
        out.skipped,
        out.bad_forwards,
        out.problems.clone(),
    )
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn ps_reader_in_any_chunks_agrees_with_the_whole_text(
        bytes in ps_capture_bytes(),
        chunk in prop_oneof![1usize..16, 16usize..600, Just(64 << 10)],
        steps in prop::collection::vec(1usize..700, 1..5),
    ) {
        let whole = ps::parse_ps(&String::from_utf8_lossy(&bytes));
        let r = Pieces { bytes: &bytes, steps, next: 0 };
        let read = ps::PsReader::read(r, chunk).expect("reading a slice");
        prop_assert_eq!(summary(&read.finish()), summary(&whole));
    }
}

// -------------------------------------------------------------- wire input

fn key() -> impl Strategy<Value = Key> {
    "[!-~]{16,64}".prop_map(|s| Key::from_text(&s))
}

fn fixed_key() -> Key {
    Key::from_text("5f0c3a9d2b7e41c8a6f9e03d7b12c4a85e6f0d1b9c3a7e2f4d8b6a0c1e3f5a79")
}

/// Pieces of JSON, valid and not, that the body reader must survive.
const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\"v\"",
    "\"v\":1",
    "\"v\":2",
    "\"gw\"",
    "\"kind\"",
    "\"report\"",
    "\"heartbeat\"",
    "\"message\"",
    "\"shutdown\"",
    "\"ack\"",
    "\"seq\"",
    "\"sent\"",
    "\"part\"",
    "\"parts\"",
    "\"text\"",
    "\"tunnels\"",
    "\"pid\"",
    "\"user\"",
    "\"listen_port\"",
    "\"target_port\"",
    "\"started\"",
    "\"listening\"",
    "\"yes\"",
    "\"L\"",
    "0",
    "1",
    "01",
    "-1",
    "1.5",
    "1e9",
    "65536",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "null",
    "true",
    "false",
    "nul",
    "tru",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\ud83d\\ude00\"",
    "\"\\udc00\"",
    "\"\\u12\"",
    "\"\\x\"",
    "\"\\",
    "\\",
    "\"<script>\"",
    " ",
    "\n",
    "\t",
    "\u{0}",
    "\u{e9}",
    "\u{1f600}",
    "\u{2028}",
];

fn json_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            10 => select(JSON_TOKENS).prop_map(str::to_string),
            1 => "\\PC{0,8}",
        ],
        0..80,
    )
    .prop_map(|t| t.concat())
}

/// A body that decodes, with one field replaced by something JSON-ish.
fn almost_valid_body() -> impl Strategy<Value = String> {
    (
        select(
            &[
                "v", "gw", "kind", "seq", "sent", "part", "parts", "text", "tunnels",
            ][..],
        ),
        json_soup(),
    )
        .prop_map(|(field, junk)| {
            let fields = [
                ("v", "1".to_string()),
                ("gw", "\"g\"".to_string()),
                ("kind", "\"report\"".to_string()),
                ("seq", "1".to_string()),
                ("sent", "1".to_string()),
                ("part", "1".to_string()),
                ("parts", "1".to_string()),
                ("text", "\"\"".to_string()),
                ("tunnels", "[{\"pid\":1}]".to_string()),
            ];
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| {
                    let v = if *k == field { &junk } else { v };
                    format!("\"{k}\":{v}")
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn decode_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
        let _ = wire::decode(&fixed_key(), &bytes);
    }

    #[test]
    fn decode_never_panics_behind_a_plausible_header(
        version in select(&["1", "2", "01", "", "x", "99999999999", "1 "][..]),
        mac in "[0-9a-fA-Fg]{0,66}",
        body in prop::collection::vec(any::<u8>(), 0..1400),
    ) {
        let mut d = format!("ROCTM/{version} {mac}\n").into_bytes();
        d.extend_from_slice(&body);
        let r = wire::decode(&fixed_key(), &d);
        // Without the key no body gets past the signature check.
        prop_assert!(r.is_err());
    }

    #[test]
    fn signed_noise_is_refused_not_panicked_on(bytes in prop::collection::vec(any::<u8>(), 0..1300)) {
        let _ = wire::decode(&fixed_key(), &wire::frame(&fixed_key(), &bytes));
    }

    #[test]
    fn signed_json_soup_is_refused_not_panicked_on(body in json_soup()) {
        let d = wire::frame(&fixed_key(), body.as_bytes());
        if let Err(e) = wire::decode(&fixed_key(), &d) {
            // Past the signature, only the body's own reasons remain.
            prop_assert!(
                d.len() > wire::MAX_DATAGRAM
                    || matches!(e.reason, Reject::Malformed | Reject::UnknownVersion | Reject::UnknownPart),
                "{e} for {body:?}"
            );
        }
    }

    #[test]
    fn signed_almost_valid_bodies_are_refused_not_panicked_on(body in almost_valid_body()) {
        let _ = wire::decode(&fixed_key(), &wire::frame(&fixed_key(), body.as_bytes()));
    }

    #[test]
    fn a_changed_body_byte_is_a_bad_signature(
        body in arb_body(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let k = fixed_key();
        let mut d = wire::encode(&k, &body);
        prop_assume!(d.len() <= wire::MAX_DATAGRAM);
        let header = d.iter().position(|&b| b == b'\n').unwrap() + 1;
        let i = header + at.index(d.len() - header);
        d[i] ^= xor;
        prop_assert_eq!(wire::decode(&k, &d).unwrap_err().reason, Reject::BadSignature);
    }

    #[test]
    fn a_truncated_datagram_is_refused(body in arb_body(), at in any::<prop::sample::Index>()) {
        let k = fixed_key();
        let d = wire::encode(&k, &body);
        prop_assume!(d.len() <= wire::MAX_DATAGRAM);
        let cut = at.index(d.len());
        prop_assert!(wire::decode(&k, &d[..cut]).is_err());
    }
}

// ------------------------------------------------------------ round trips

/// Strings with what makes JSON and HTML writers stumble: quotes,
/// backslashes, control characters, `<>&`, line separators, astral planes.
fn text(max: usize) -> impl Strategy<Value = String> {
    let re = |s: String| string_regex(&s).expect("a valid regex");
    prop_oneof![
        re(format!("[a-z0-9:.+-]{{0,{max}}}")),
        re(format!(
            "[\\x00-\\x1f\"\\\\<>&'\u{e9}\u{2028}\u{2029}\u{1f600} a-z]{{0,{max}}}"
        )),
        re(format!("\\PC{{0,{max}}}")),
    ]
}

fn health() -> impl Strategy<Value = Health> {
    select(&[Health::Yes, Health::No, Health::Unknown][..])
}

/// A tunnel whose JSON always fits in one datagram (fields of at most 20
/// characters, escaped to at most 6 bytes each, and at most 2 peers of 8).
fn arb_tunnel() -> impl Strategy<Value = Tunnel> {
    (
        (
            any::<u32>(),
            text(20),
            select(&[Kind::Local, Kind::Remote, Kind::Dynamic][..]),
        ),
        (text(20), any::<u16>(), text(20), any::<u16>(), text(20)),
        (any::<Option<u64>>(), text(20), text(20), health(), health()),
        (any::<Option<u32>>(), prop::collection::vec(text(8), 0..3)),
    )
        .prop_map(
            |(
                (pid, user, kind),
                (bind, listen_port, target_host, target_port, dest),
                (started, start, cpu_time, listening, vnc),
                (connections, connected),
            )| Tunnel {
                pid,
                user,
                kind,
                bind,
                listen_port,
                target_host,
                target_port,
                dest,
                started,
                start,
                cpu_time,
                listening,
                vnc,
                connections,
                connected,
            },
        )
}

/// A gateway name `check_name` accepts: 1 to 64 bytes, no white space or
/// control characters.
fn gateway_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(&["novadaq-far-gateway-01", "novadaq-near-gateway-01"][..]).prop_map(str::to_string),
        "[a-z0-9.<>&\"\\\\\u{e9}\u{1f600}-]{1,16}",
    ]
}

fn arb_body() -> impl Strategy<Value = Body> {
    let report = (
        gateway_name(),
        any::<u64>(),
        any::<u64>(),
        text(20),
        prop::collection::vec(arb_tunnel(), 0..6),
    )
        .prop_map(|(gateway, seq, sent, text, tunnels)| Body {
            gateway,
            kind: MsgKind::Report,
            seq,
            sent,
            part: 1,
            parts: 1,
            text,
            tunnels,
            period: None,
            until: None,
        });
    let other = (
        gateway_name(),
        select(
            &[
                MsgKind::Heartbeat,
                MsgKind::Message,
                MsgKind::Shutdown,
                MsgKind::Ack,
            ][..],
        ),
        any::<u64>(),
        any::<u64>(),
        text(100),
    )
        .prop_map(|(gateway, kind, seq, sent, text)| Body {
            gateway,
            kind,
            seq,
            sent,
            part: 1,
            parts: 1,
            text,
            tunnels: Vec::new(),
            period: None,
            until: None,
        });
    prop_oneof![3 => report, 1 => other]
}

/// A report large enough to be split into several parts.
fn big_report() -> impl Strategy<Value = Body> {
    (
        gateway_name(),
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(arb_tunnel(), 10..60),
    )
        .prop_map(|(gateway, seq, sent, tunnels)| Body {
            gateway,
            kind: MsgKind::Report,
            seq,
            sent,
            part: 1,
            parts: 1,
            text: String::new(),
            tunnels,
            period: None,
            until: None,
        })
}

/// A split report, and an order to deliver its parts in: every part once
/// plus up to 30 duplicates, shuffled by proptest.
fn split_report_and_delivery_order() -> impl Strategy<Value = (Key, Body, Vec<usize>)> {
    (key(), big_report())
        .prop_flat_map(|(k, body)| {
            let n = wire::encode_all(&k, &body).unwrap().len();
            let dups = prop::collection::vec(0..n, 0..30);
            (Just(k), Just(body), Just(n), dups)
        })
        .prop_flat_map(|(k, body, n, dups)| {
            let order: Vec<usize> = (0..n).chain(dups).collect();
            (Just(k), Just(body), Just(order).prop_shuffle())
        })
}

/// Encodes, decodes every part, and reassembles in the order given by
/// `order` (indices into the parts, any may repeat). Returns every report
/// the reassembler completed, with the step it completed at.
fn deliver(key: &Key, body: &Body, order: &[usize]) -> Vec<(usize, wire::Report)> {
    let parts = wire::encode_all(key, body).expect("encodes");
    let mut r = Reassembler::new(60);
    let mut done = Vec::new();
    for (step, &i) in order.iter().enumerate() {
        let (_, bytes) = &parts[i % parts.len()];
        assert!(
            bytes.len() <= wire::MAX_DATAGRAM,
            "part of {} bytes",
            bytes.len()
        );
        let part = wire::decode(key, bytes).expect("decodes");
        if let Some(rep) = r.add(part, 0).0 {
            done.push((step, rep));
        }
    }
    done
}

fn same_report(rep: &wire::Report, body: &Body) -> Result<(), TestCaseError> {
    prop_assert_eq!(&rep.gateway, &body.gateway);
    prop_assert_eq!(rep.kind, body.kind);
    prop_assert_eq!(rep.seq, body.seq);
    prop_assert_eq!(rep.sent, body.sent);
    prop_assert_eq!(&rep.text, &body.text);
    prop_assert_eq!(&rep.tunnels, &body.tunnels);
    Ok(())
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn encode_then_decode_gives_back_the_same_report(k in key(), body in arb_body()) {
        let parts = wire::encode_all(&k, &body);
        // Only a message text too long for one datagram may be refused.
        let parts = match parts {
            Ok(p) => p,
            Err(e) => {
                prop_assert!(e.contains("too long"), "{e}");
                return Ok(());
            }
        };
        let n = parts.len();
        let done = deliver(&k, &body, &(0..n).collect::<Vec<_>>());
        prop_assert_eq!(done.len(), 1);
        prop_assert_eq!(done[0].0, n - 1);
        same_report(&done[0].1, &body)?;
        // Every part decodes to exactly the body it was encoded from.
        for (b, bytes) in &parts {
            prop_assert_eq!(&wire::decode(&k, bytes).unwrap(), b);
        }
    }

    #[test]
    fn an_ack_round_trips(k in key(), body in arb_body(), dup in any::<bool>()) {
        let status = if dup { "duplicate" } else { "ok" };
        let a = wire::decode(&k, &wire::ack(&k, &body, status)).unwrap();
        prop_assert_eq!(
            (a.kind, &a.gateway, a.seq, a.sent, a.part, a.parts, a.text.as_str(), a.tunnels.len()),
            (MsgKind::Ack, &body.gateway, body.seq, body.sent, body.part, body.parts, status, 0)
        );
    }

    #[test]
    fn overlong_fields_are_shortened_never_lost(
        (piece, times) in ("\\PC{1,16}", 50usize..300),
        field in 0usize..6,
        n in 1usize..4,
    ) {
        let long = piece.repeat(times);
        let mut t = Tunnel { pid: 7, listen_port: 5900, target_port: 5951, ..Tunnel::default() };
        *[&mut t.user, &mut t.bind, &mut t.target_host, &mut t.dest, &mut t.start, &mut t.cpu_time][field] = long.clone();
        let body = Body {
            gateway: "g".into(),
            kind: MsgKind::Report,
            seq: 1,
            sent: 1,
            part: 1,
            parts: 1,
            text: String::new(),
            tunnels: vec![t.clone(); n],
            period: None,
            until: None,
        };
        let k = fixed_key();
        let done = deliver(&k, &body, &(0..wire::encode_all(&k, &body).unwrap().len()).collect::<Vec<_>>());
        prop_assert_eq!(done.len(), 1);
        let got = &done[0].1.tunnels;
        prop_assert_eq!(got.len(), n);
        for g in got {
            let f = [&g.user, &g.bind, &g.target_host, &g.dest, &g.start, &g.cpu_time][field];
            prop_assert!(long.starts_with(f.as_str()), "{f:?} is not a prefix");
            prop_assert_eq!((g.pid, g.listen_port, g.target_port), (7, 5900, 5951));
        }
    }
}

proptest! {
    #![proptest_config(cases(32))]

    #[test]
    fn split_parts_reassemble_in_any_order_with_duplicates(
        (k, body, order) in split_report_and_delivery_order(),
    ) {
        let n = wire::encode_all(&k, &body).unwrap().len();
        // The report completes exactly when the last distinct part arrives.
        let mut seen = vec![false; n];
        let complete_at = order
            .iter()
            .position(|&i| {
                seen[i] = true;
                seen.iter().all(|s| *s)
            })
            .unwrap();
        let done = deliver(&k, &body, &order);
        prop_assert!(!done.is_empty());
        prop_assert_eq!(done[0].0, complete_at);
        // Duplicates arriving after completion may complete it again (the
        // collector's replay guard, not the reassembler, drops those), but
        // whatever completes is the very same report.
        for (_, rep) in &done {
            same_report(rep, &body)?;
        }
    }

    #[test]
    fn two_interleaved_reports_both_reassemble(
        k in key(),
        a in big_report(),
        b in big_report(),
        shuffle in any::<u64>(),
    ) {
        let b = Body { seq: a.seq.wrapping_add(1), ..b };
        let pa = wire::encode_all(&k, &a).unwrap();
        let pb = wire::encode_all(&k, &b).unwrap();
        let mut all: Vec<&Vec<u8>> = pa.iter().chain(&pb).map(|(_, d)| d).collect();
        shuffle_with(&mut all, shuffle);
        let mut r = Reassembler::new(60);
        let mut done = Vec::new();
        for d in all {
            if let Some(rep) = r.add(wire::decode(&k, d).unwrap(), 0).0 {
                done.push(rep);
            }
        }
        prop_assert_eq!(done.len(), 2);
        let (ra, rb) = if done[0].seq == a.seq { (&done[0], &done[1]) } else { (&done[1], &done[0]) };
        same_report(ra, &a)?;
        same_report(rb, &b)?;
        prop_assert_eq!(r.pending(), 0);
    }
}

/// A Fisher-Yates shuffle driven by a proptest-chosen seed (xorshift), so a
/// failing case shrinks and replays.
fn shuffle_with<T>(v: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}
