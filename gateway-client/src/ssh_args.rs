//! OpenSSH's option grammar: from an `ssh` (or `autossh`) command line to the
//! port forwards it sets up and the host it connects to.
//!
//! The rules are ssh's own, as `ssh.c` of OpenSSH 9.x applies them, so that a
//! command line means here what it means to the running ssh:
//!
//! - Options are read by BSD `getopt` with [`SSH_OPTSTRING`]: flags bundle
//!   (`-fNL 5900:h:5951`), a value is the rest of its word (`-L5900:h:5951`,
//!   `-fNTL5900:h:5951`) or else the next word. There is no GNU-style
//!   permutation: option parsing stops at the first non-option word, which is
//!   the destination; ssh then restarts `getopt` after it, so options may
//!   follow the destination (`ssh gw -L ...`). The next non-option word, or
//!   anything after `--`, is the remote command and ends the options.
//! - `-L`, `-R`, `-D` and `-o LocalForward/RemoteForward/DynamicForward`
//!   (keywords in any case, `Keyword value` or `Keyword=value`) are read by
//!   [`parse_forward`], a port of OpenSSH's `parse_forward`: fields split at
//!   `:`, `[...]` for IPv6, `\` escapes, a field with a `/` is a Unix socket
//!   path. `-R port` alone is a dynamic (SOCKS) remote forward. The old slash
//!   syntax of OpenSSH 6.6 and before (`5900/host/5951`) is accepted when the
//!   modern grammar rejects a spec, since only an old ssh runs with one.
//! - `-o ClearAllForwardings=yes` (first value wins, as in ssh; `-W` makes
//!   it the default) clears every forward, and a multiplexing command
//!   (`-O forward`, `-O cancel`, ...) holds none itself: such processes
//!   report none. ssh keeps one of equal forwards, and so does this.
//! - A command line without a destination reports no forward: ssh exits at
//!   once without one, so such a line was cut short (`ps` on a terminal cuts
//!   lines at its width) or is not OpenSSH's. A line the caller knows `ps`
//!   cut ([`parse_cut_command`]) keeps the forwards that are fully visible,
//!   with the destination empty when it was cut off.
//! - The destination loses `user@` (up to the last `@`) and, for
//!   `ssh://[user@]host[:port]`, the scheme, user and port.
//! - `autossh` takes `-M port[:echo_port]` besides ssh's options and passes
//!   the rest to ssh unchanged, so its line is read with the same grammar
//!   plus `-M` taking a value. The ssh it starts appears in `ps` on its own
//!   line with autossh's monitoring forwards (`-L 20000:127.0.0.1:20000
//!   -R 20000:127.0.0.1:20001`) in front; [`crate::ps`] decides which of
//!   the two lines reports the forwards.
//!
//! Unix socket forwards keep one record each: a listening socket path goes
//! into `bind` with `listen_port` 0, a target socket path into `target_host`
//! with `target_port` 0. A port may be a service name, as ssh resolves it
//! with `getservbyname`; a few well-known names are built in, others make
//! the spec bad.
//!
//! # Words from `ps`
//!
//! `ps` joins argv with spaces, so one argument holding a space shows as
//! several words: `-o "LocalForward 5900 h:5951"` and sftp's
//! `"-oForwardX11 no"` arrive as `-o LocalForward 5900 h:5951` and
//! `-oForwardX11 no`. [`parse_command`] works on such words: since ssh
//! refuses an `-o` keyword without an argument, a bare keyword (no `=`) owns
//! the words that follow it, as many as the keyword needs (two for
//! `LocalForward`, one or two for `RemoteForward`, one for the rest).
//! `ProxyCommand` and the other command-valued keywords own the words up to
//! the last one holding a `%` token (`nc %h %p`), plus the jump host of an
//! `ssh -W %h:%p jump` proxy. [`parse_argv`] takes exact argv (as from
//! `/proc/PID/cmdline`) and needs none of this guessing. Forwards set in
//! `ssh_config` files are invisible in either.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use crate::tunnel::Kind;

/// ssh's getopt string (OpenSSH 9.x `ssh.c`): a letter followed by `:` takes
/// a value. (Before 9.4, `-P` took none; it was an obsolete no-op then.)
pub(crate) const SSH_OPTSTRING: &str =
    "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:P:Q:R:S:TVw:W:XYy";

/// `-M` takes a value for autossh (monitor port); ssh's `-M` does not.
const AUTOSSH_VALUE_OPTS: &[u8] = b"M";

/// Longest host name ssh accepts in a forward (`NI_MAXHOST` - 1).
const MAX_HOST: usize = 1024;
/// Longest Unix socket path ssh accepts in a forward (`sun_path` - 1).
const MAX_SOCKET_PATH: usize = 107;
/// How far ahead a command-valued `-o` keyword may own words (ps words).
const COMMAND_LOOKAHEAD: usize = 16;
/// Up to this many ps words, a command line is split without allocating.
const STACK_WORDS: usize = 32;
/// Up to this many forwards, duplicates are looked for in a list.
pub(crate) const FEW: usize = 16;

/// Which program a command line runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Program {
    Ssh,
    Autossh,
}

/// One forward as ssh understands it (see the module doc for socket paths).
/// Its text borrows from the command line it was read from, except where
/// ssh's grammar rewrites it (a `\\` escape, `-o LocalForward a b`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct Forward<'a> {
    pub kind: Kind,
    /// Bind address, or listening socket path; empty when none was given.
    pub bind: Cow<'a, str>,
    /// Listening port; 0 for a socket path (or `-R 0:...`, port chosen by the server).
    pub listen_port: u16,
    /// Target host, or target socket path; empty for dynamic forwards.
    pub target_host: Cow<'a, str>,
    /// Target port; 0 for dynamic forwards and socket paths.
    pub target_port: u16,
}

impl Forward<'_> {
    /// The same forward, owning its text.
    pub(crate) fn into_owned(self) -> Forward<'static> {
        Forward {
            kind: self.kind,
            bind: Cow::Owned(self.bind.into_owned()),
            listen_port: self.listen_port,
            target_host: Cow::Owned(self.target_host.into_owned()),
            target_port: self.target_port,
        }
    }
}

/// A forward spec ssh would refuse (the running process cannot hold it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadForward {
    /// How it was given: `-L`, `-R`, `-D`, `LocalForward`, ...
    pub option: String,
    pub spec: String,
}

impl fmt::Display for BadForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad {} spec '{}'", self.option, self.spec)
    }
}

/// What one ssh or autossh command line sets up, borrowing from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Invocation<'a> {
    pub program: Program,
    /// The host ssh connects to, without user or port; empty if none was found.
    pub dest: Cow<'a, str>,
    /// In command-line order.
    pub forwards: Vec<Forward<'a>>,
    /// Forward specs ssh would refuse.
    pub bad: Vec<BadForward>,
}

impl Invocation<'_> {
    /// The same invocation, owning its text.
    pub(crate) fn into_owned(self) -> Invocation<'static> {
        Invocation {
            program: self.program,
            dest: Cow::Owned(self.dest.into_owned()),
            forwards: self.forwards.into_iter().map(Forward::into_owned).collect(),
            bad: self.bad,
        }
    }
}

/// Whether a `ps` COMMAND runs ssh or autossh (by any path), judged by its
/// first word. `ps f` tree art (`\_`, `|`) in front is skipped, and so is
/// busybox's `{comm}` prefix, which names the program when `argv[0]` was
/// changed (`{ssh} vnc-tunnel -N -L ...` after `exec -a vnc-tunnel ssh`).
pub(crate) fn program_of(command: &str) -> Option<Program> {
    let (comm, argv) = split_command(command);
    program_in(comm, argv)
}

/// [`program_of`] for a command already split by [`split_command`].
fn program_in(comm: Option<&str>, argv: &str) -> Option<Program> {
    comm.and_then(program_of_word).or_else(|| {
        argv.split_ascii_whitespace()
            .next()
            .and_then(program_of_word)
    })
}

/// The busybox `{comm}` (if any) and the argv part of a ps COMMAND, tree art
/// removed.
fn split_command(command: &str) -> (Option<&str>, &str) {
    let mut rest = command.trim_start();
    while let Some(r) = rest.strip_prefix("\\_").or_else(|| rest.strip_prefix('|')) {
        rest = r.trim_start();
    }
    if let Some(r) = rest.strip_prefix('{')
        && let Some((comm, argv)) = r.split_once('}')
    {
        return (Some(comm), argv);
    }
    (None, rest)
}

/// The program a word runs, by its last path component.
pub(crate) fn program_of_word(w: &str) -> Option<Program> {
    let named = |name: &str| {
        w.strip_suffix(name)
            .is_some_and(|dir| dir.is_empty() || dir.ends_with('/'))
    };
    if named("ssh") {
        Some(Program::Ssh)
    } else if named("autossh") {
        Some(Program::Autossh)
    } else {
        None
    }
}

/// Reads a command line as `ps` shows it (argv joined with spaces). `None`
/// unless it runs ssh or autossh.
pub(crate) fn parse_command(command: &str) -> Option<Invocation<'_>> {
    parse_command_as(command, false)
}

/// Reads what `ps` left of a command line it cut at its width (the cut
/// word already removed): the forwards fully visible are kept even when
/// the destination was cut off (which is then empty).
pub(crate) fn parse_cut_command(command: &str) -> Option<Invocation<'_>> {
    parse_command_as(command, true)
}

fn parse_command_as(command: &str, cut: bool) -> Option<Invocation<'_>> {
    let (comm, argv) = split_command(command);
    let program = program_in(comm, argv)?; // most commands stop here
    // The words go into a buffer on the stack, and only a command line
    // longer than it into a Vec.
    let mut stack = [""; STACK_WORDS];
    let mut split = argv.split_ascii_whitespace();
    for n in 0..STACK_WORDS {
        match split.next() {
            Some(w) => stack[n] = w,
            None => return parse_words(program, &stack[..n], true, cut),
        }
    }
    let words: Vec<&str> = stack.into_iter().chain(split).collect();
    parse_words(program, &words, true, cut)
}

/// Reads an exact argv (`argv[0]` first). `None` unless it runs ssh or autossh.
pub(crate) fn parse_argv<S: AsRef<str>>(argv: &[S]) -> Option<Invocation<'_>> {
    let program = program_of_word(argv.first()?.as_ref())?;
    let words: Vec<&str> = argv.iter().map(|s| s.as_ref()).collect();
    parse_words(program, &words, false, false)
}

/// Whether option letter `c` takes a value. A letter ssh does not know
/// is read as a flag (ssh would exit with its usage).
fn takes_value(c: u8, program: Program) -> bool {
    (program == Program::Autossh && AUTOSSH_VALUE_OPTS.contains(&c))
        || SSH_VALUE_OPTS[usize::from(c)]
}

/// The letters of [`SSH_OPTSTRING`] that take a value, as a table by byte.
const SSH_VALUE_OPTS: [bool; 256] = {
    let s = SSH_OPTSTRING.as_bytes();
    let mut table = [false; 256];
    let mut i = 0;
    while i + 1 < s.len() {
        if s[i] != b':' && s[i + 1] == b':' {
            table[s[i] as usize] = true;
        }
        i += 1;
    }
    table
};

/// What the option loop has found so far.
struct Parse<'a> {
    /// `words` are ps words (argv joined with spaces), not exact argv.
    joined: bool,
    forwards: Vec<Forward<'a>>,
    /// The forwards as a set, once there are many (hostile command lines).
    seen: HashSet<Forward<'a>>,
    bad: Vec<BadForward>,
    /// `ClearAllForwardings`, first value wins.
    clear_all: Option<bool>,
    /// A multiplexing command (`-O`) was given.
    mux_command: bool,
    /// `-W host:port` was given (it clears forwards unless told otherwise).
    stdio_forward: bool,
}

/// Reads argv (`words`, argv[0] first) as `program` does.
fn parse_words<'a>(
    program: Program,
    words: &[&'a str],
    joined: bool,
    cut: bool,
) -> Option<Invocation<'a>> {
    let mut p = Parse {
        joined,
        forwards: Vec::new(),
        seen: HashSet::new(),
        bad: Vec::new(),
        clear_all: None,
        mux_command: false,
        stdio_forward: false,
    };
    let mut dest: Option<&'a str> = None;
    let mut i = 1;
    'restart: loop {
        // One getopt pass, starting after argv[0] or after the destination.
        let mut terminated = false;
        while let Some(&w) = words.get(i) {
            let b = w.as_bytes();
            if b.len() < 2 || b[0] != b'-' {
                break; // a non-option (or "-")
            }
            i += 1;
            if b[1] == b'-' {
                // "--" ends the options; ssh refuses "--x" (we stop there too).
                terminated = w == "--";
                break;
            }
            let mut j = 1;
            while j < b.len() {
                let c = b[j];
                if !takes_value(c, program) {
                    j += 1;
                    continue;
                }
                let value = if j + 1 < b.len() {
                    &w[j + 1..]
                } else if let Some(&v) = words.get(i) {
                    i += 1;
                    v
                } else {
                    // "option requires an argument": ssh would not run.
                    break 'restart;
                };
                i = p.option(c, value, words, i);
                break;
            }
        }
        let Some(&w) = words.get(i) else { break };
        if dest.is_some() {
            break; // the remote command starts here
        }
        dest = Some(destination(w));
        i += 1;
        if terminated {
            break;
        }
    }
    let mut forwards = p.forwards;
    // Without a destination ssh does not run: the line is not a whole
    // command line (cut short by ps's width) or not OpenSSH's. A line known
    // to be cut keeps what was visible.
    if p.clear_all.unwrap_or(p.stdio_forward) || p.mux_command || (dest.is_none() && !cut) {
        forwards.clear();
    }
    Some(Invocation {
        program,
        dest: Cow::Borrowed(dest.unwrap_or("")),
        forwards,
        bad: p.bad,
    })
}

impl<'a> Parse<'a> {
    /// Applies option `c` with `value`; `next` is the index of the word after
    /// the value. Returns the index where option parsing goes on.
    fn option(&mut self, c: u8, value: &'a str, words: &[&'a str], next: usize) -> usize {
        match c {
            b'L' => self.forward("-L", Kind::Local, value),
            b'R' => self.forward("-R", Kind::Remote, value),
            b'D' => self.forward("-D", Kind::Dynamic, value),
            b'O' => self.mux_command = true,
            b'W' => self.stdio_forward = true,
            b'o' => return self.config_option(value, words, next),
            _ => {}
        }
        next
    }

    fn forward(&mut self, option: &str, kind: Kind, spec: &'a str) {
        match parse_forward(kind, spec) {
            Some(f) => self.add(f),
            None => self.bad(option, spec),
        }
    }

    /// A forward whose spec ssh puts together from two arguments
    /// (`LocalForward a b` is `a:b`).
    fn joined_forward(&mut self, option: &str, kind: Kind, listen: &str, target: &str) {
        let spec = format!("{listen}:{target}");
        match parse_forward(kind, &spec) {
            Some(f) => self.add(f.into_owned()),
            None => self.bad(option, &spec),
        }
    }

    fn bad(&mut self, option: &str, spec: &str) {
        self.bad.push(BadForward {
            option: option.to_string(),
            spec: spec.to_string(),
        });
    }

    /// Adds a forward unless it is there already (ssh keeps one of equal ones).
    /// Linear below [`FEW`] forwards, a set above (so never quadratic).
    fn add(&mut self, f: Forward<'a>) {
        if self.forwards.len() < FEW {
            if !self.forwards.contains(&f) {
                self.forwards.push(f);
            }
            return;
        }
        if self.seen.is_empty() {
            self.seen.extend(self.forwards.iter().cloned());
        }
        if self.seen.insert(f.clone()) {
            self.forwards.push(f);
        }
    }

    /// `-o VALUE`. With exact argv the value is the whole config line; with
    /// ps words a bare keyword also owns the words after it (module doc).
    fn config_option(&mut self, value: &'a str, words: &[&'a str], next: usize) -> usize {
        if !self.joined {
            let (keyword, rest) = split_keyword(value);
            let args: Vec<&str> = rest.split_ascii_whitespace().map(unquote).collect();
            self.config_line(Keyword::of(keyword), &args);
            return next;
        }
        let mut next = next;
        let (keyword, inline) = match value.split_once('=') {
            Some((k, v)) => (k, (!v.is_empty()).then_some(v)),
            // `Keyword = value` and `Keyword =value`.
            None => match words.get(next).and_then(|w| w.strip_prefix('=')) {
                Some(v) => {
                    next += 1;
                    (value, (!v.is_empty()).then_some(v))
                }
                None => (value, None),
            },
        };
        // At most two arguments are taken: the inline value and the words
        // the keyword owns.
        let mut args = [""; 2];
        let mut n = 0;
        if let Some(v) = inline {
            args[0] = v;
            n = 1;
        }
        let keyword = Keyword::of(keyword);
        match keyword {
            Keyword::LocalForward | Keyword::RemoteForward => {
                // The listen side, then the target (optional for RemoteForward).
                if n == 0
                    && let Some(&w) = words.get(next)
                {
                    args[0] = w;
                    n = 1;
                    next += 1;
                }
                if let Some(&w) = words.get(next)
                    && n == 1
                    && looks_like_target(w)
                {
                    args[1] = w;
                    n = 2;
                    next += 1;
                }
            }
            Keyword::Command => {
                next += command_words(inline, words.get(next..).unwrap_or_default());
            }
            _ => {
                if n == 0
                    && let Some(&w) = words.get(next)
                {
                    args[0] = w;
                    n = 1;
                    next += 1;
                }
            }
        }
        self.config_line(keyword, &args[..n]);
        next
    }

    /// One config line from `-o`, keyword and arguments split.
    fn config_line(&mut self, keyword: Keyword, args: &[&'a str]) {
        match keyword {
            Keyword::LocalForward => match args {
                [a, b, ..] => self.joined_forward("LocalForward", Kind::Local, a, b),
                _ => self.bad("LocalForward", &args.join(" ")),
            },
            Keyword::RemoteForward => match args {
                [a, b, ..] => self.joined_forward("RemoteForward", Kind::Remote, a, b),
                [a] => match parse_forward_as(a, true, true) {
                    Some(f) => self.add(f),
                    None => self.bad("RemoteForward", a),
                },
                [] => self.bad("RemoteForward", ""),
            },
            Keyword::DynamicForward => match args {
                [a, ..] => self.forward("DynamicForward", Kind::Dynamic, a),
                [] => self.bad("DynamicForward", ""),
            },
            Keyword::ClearAllForwardings if self.clear_all.is_none() => {
                let is = |word: &str| args.first().is_some_and(|a| a.eq_ignore_ascii_case(word));
                if is("yes") || is("true") {
                    self.clear_all = Some(true);
                } else if is("no") || is("false") {
                    self.clear_all = Some(false);
                }
            }
            _ => {}
        }
    }
}

/// The `-o` keywords that matter here; ssh reads keywords in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    LocalForward,
    RemoteForward,
    DynamicForward,
    ClearAllForwardings,
    /// `ProxyCommand` and the other keywords whose value is a command.
    Command,
    Other,
}

impl Keyword {
    fn of(word: &str) -> Keyword {
        const NAMES: [(&str, Keyword); 8] = [
            ("LocalForward", Keyword::LocalForward),
            ("RemoteForward", Keyword::RemoteForward),
            ("DynamicForward", Keyword::DynamicForward),
            ("ClearAllForwardings", Keyword::ClearAllForwardings),
            ("ProxyCommand", Keyword::Command),
            ("LocalCommand", Keyword::Command),
            ("RemoteCommand", Keyword::Command),
            ("KnownHostsCommand", Keyword::Command),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map_or(Keyword::Other, |&(_, k)| k)
    }
}

/// Splits a config line like ssh's `strdelim`: the keyword ends at white
/// space or `=`; one `=` with white space around it may separate the value.
fn split_keyword(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    let end = line
        .find(|c: char| c.is_ascii_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    (keyword, rest)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
}

/// Whether a ps word can be the target half of a `LocalForward` or
/// `RemoteForward` value (`host:port`, `[v6]:port`, a socket path) rather
/// than a destination or an option.
fn looks_like_target(w: &str) -> bool {
    !w.starts_with('-')
        && !w.contains('@')
        && !w.contains("://")
        && (w.contains(':') || w.contains('/'))
}

/// How many of the ps words `rest` belong to a command-valued `-o` keyword
/// whose value began with `inline` (after `=`), or with `rest[0]` if none.
fn command_words(inline: Option<&str>, rest: &[&str]) -> usize {
    let window = &rest[..rest.len().min(COMMAND_LOOKAHEAD)];
    // Never own a forward option: a proxy command has none.
    let stop = window
        .iter()
        .position(|w| is_forward_option(w))
        .unwrap_or(window.len());
    let window = &window[..stop];
    let last_percent = window.iter().rposition(|w| w.contains('%'));
    let mut owned = match (last_percent, inline) {
        (Some(k), _) => k + 1,
        (None, Some(_)) => 0,
        (None, None) => usize::from(!window.is_empty()),
    };
    // `ssh -W %h:%p jump`: the proxy's own destination follows its options.
    if last_percent.is_some() {
        let value: Vec<&str> = inline
            .into_iter()
            .chain(window[..owned].iter().copied())
            .collect();
        if value.first().and_then(|w| program_of_word(w)) == Some(Program::Ssh)
            && !has_destination(&value[1..])
            && let Some(w) = window.get(owned)
            && !w.starts_with('-')
        {
            owned += 1;
        }
    }
    owned
}

fn is_forward_option(w: &str) -> bool {
    let b = w.as_bytes();
    if b.len() < 2 || b[0] != b'-' {
        return false;
    }
    matches!(b[1], b'L' | b'R' | b'D')
        || (b[1] == b'o' && {
            let kw = if b.len() > 2 { &w[2..] } else { "" };
            let kw = kw.split('=').next().unwrap_or("").to_ascii_lowercase();
            kw.ends_with("forward")
        })
}

/// Whether ssh arguments (after argv[0]) name a destination.
fn has_destination(args: &[&str]) -> bool {
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let b = w.as_bytes();
        i += 1;
        if b.len() < 2 || b[0] != b'-' {
            return true;
        }
        for (j, &c) in b.iter().enumerate().skip(1) {
            if takes_value(c, Program::Ssh) {
                if j + 1 == b.len() {
                    i += 1;
                }
                break;
            }
        }
    }
    false
}

/// The host of a destination argument: `[user@]host` or
/// `ssh://[user@]host[:port]`.
fn destination(w: &str) -> &str {
    if let Some(rest) = w.strip_prefix("ssh://") {
        let host = rest.split_once('@').map_or(rest, |(_, h)| h);
        if let Some(v6) = host.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        return host.split([':', '/']).next().unwrap_or(host);
    }
    w.rsplit_once('@').map_or(w, |(_, h)| h)
}

/// Reads a forward spec as ssh does for `-L` (`Kind::Local`), `-R`
/// (`Kind::Remote`: `[bind:]port:host:hostport`, or `[bind:]port` for a
/// dynamic remote forward) and `-D` (`Kind::Dynamic`). `None` when ssh
/// would refuse it.
pub(crate) fn parse_forward(kind: Kind, spec: &str) -> Option<Forward<'_>> {
    match kind {
        Kind::Local => parse_forward_as(spec, false, false),
        Kind::Dynamic => parse_forward_as(spec, true, false),
        Kind::Remote => {
            parse_forward_as(spec, false, true).or_else(|| parse_forward_as(spec, true, true))
        }
    }
}

/// One field of a forward spec (borrowed unless it held a `\\` escape).
struct Field<'a> {
    arg: Cow<'a, str>,
    is_path: bool,
}

/// OpenSSH's `parse_fwd_field`: the next field, `Ok(None)` at the end of
/// the spec, `Err` on a bad one (unclosed bracket, trailing backslash).
fn next_field<'a>(cur: &mut Option<&'a str>) -> Result<Option<Field<'a>>, ()> {
    let Some(s) = *cur else { return Ok(None) };
    if s.is_empty() {
        *cur = None;
        return Ok(None);
    }
    if let Some(inner) = s.strip_prefix('[') {
        let close = inner.find(']').ok_or(())?;
        let arg = &inner[..close];
        let after = &inner[close + 1..];
        let rest = if after.is_empty() {
            ""
        } else {
            after.strip_prefix(':').ok_or(())?
        };
        *cur = Some(rest);
        return Ok(Some(Field {
            arg: Cow::Borrowed(arg),
            is_path: arg.contains('/'),
        }));
    }
    let end = s
        .bytes()
        .position(|b| b == b':' || b == b'\\')
        .unwrap_or(s.len());
    if s.as_bytes().get(end) != Some(&b'\\') {
        // The common case: no escape, so the field is a slice of the spec.
        let arg = &s[..end];
        *cur = Some(s.get(end + 1..).unwrap_or(""));
        return Ok(Some(Field {
            arg: Cow::Borrowed(arg),
            is_path: arg.as_bytes().contains(&b'/'),
        }));
    }
    let mut arg = String::new();
    let mut is_path = false;
    let mut chars = s.char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            // An escaped character is taken as it is (and makes no path).
            '\\' => arg.push(chars.next().ok_or(())?.1),
            '/' => {
                is_path = true;
                arg.push(c);
            }
            ':' => {
                *cur = Some(&s[k + 1..]);
                return Ok(Some(Field {
                    arg: Cow::Owned(arg),
                    is_path,
                }));
            }
            _ => arg.push(c),
        }
    }
    *cur = Some("");
    Ok(Some(Field {
        arg: Cow::Owned(arg),
        is_path,
    }))
}

/// A port as ssh's `a2port` reads it: a number 0..=65535 or a service name.
fn a2port(s: &str) -> Option<u16> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // The value never shrinks as digits are added: stop once too big.
        let mut port: u32 = 0;
        for d in digits.bytes() {
            port = port * 10 + u32::from(d - b'0');
            if port > u32::from(u16::MAX) {
                return None;
            }
        }
        return u16::try_from(port).ok();
    }
    service_port(s)
}

/// Well-known TCP service names (from a Debian `/etc/services`).
fn service_port(name: &str) -> Option<u16> {
    Some(match name {
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "http" | "www" => 80,
        "pop3" => 110,
        "imap2" | "imap" => 143,
        "ldap" => 389,
        "https" => 443,
        "imaps" => 993,
        "mysql" => 3306,
        "postgresql" => 5432,
        "x11" | "x11-0" => 6000,
        "x11-1" => 6001,
        "x11-2" => 6002,
        "x11-3" => 6003,
        "x11-4" => 6004,
        "x11-5" => 6005,
        "x11-6" => 6006,
        "x11-7" => 6007,
        "http-alt" | "webcache" => 8080,
        _ => return None,
    })
}

/// A listening or target side: a host and port, or a socket path.
enum End<'a> {
    Port(Option<Cow<'a, str>>, Option<u16>),
    Path(Cow<'a, str>),
}

/// OpenSSH's `parse_forward(fwd, spec, dynamicfwd, remotefwd)`, with the
/// old slash syntax where the modern grammar refuses a spec, or would read
/// `host/port` without any `:` as a relative socket path (`-D 127.0.0.1/1080`).
fn parse_forward_as(spec: &str, dynamic: bool, remote: bool) -> Option<Forward<'_>> {
    let trimmed = spec.trim_start();
    let slash_syntax = trimmed.as_bytes().contains(&b'/') && !trimmed.starts_with('/');
    if slash_syntax
        && !has_colon_outside_brackets(trimmed)
        && let Some(f) = old_forward(spec, dynamic, remote)
    {
        return Some(f);
    }
    modern_forward(spec, dynamic, remote).or_else(|| {
        if slash_syntax {
            old_forward(spec, dynamic, remote)
        } else {
            None
        }
    })
}

fn has_colon_outside_brackets(s: &str) -> bool {
    let mut depth = 0u32;
    for c in s.bytes() {
        match c {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b':' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

fn modern_forward(spec: &str, dynamic: bool, remote: bool) -> Option<Forward<'_>> {
    let mut cur = Some(spec.trim_start());
    let mut fields: [Option<Field>; 4] = [None, None, None, None];
    let mut n = 0;
    while n < 4 {
        match next_field(&mut cur) {
            Ok(Some(f)) => fields[n] = Some(f),
            Ok(None) => break,
            Err(()) => return None,
        }
        n += 1;
    }
    if cur.is_some_and(|c| !c.is_empty()) {
        return None; // trailing garbage
    }
    let port = |f: &Field| a2port(&f.arg);
    let [f0, f1, f2, f3] = fields;
    let (listen, target) = match [f0, f1, f2, f3] {
        [Some(a), None, ..] if a.is_path => (End::Path(a.arg), None),
        [Some(a), None, ..] => (End::Port(None, port(&a)), None),
        [Some(a), Some(b), None, _] if a.is_path && b.is_path => {
            (End::Path(a.arg), Some(End::Path(b.arg)))
        }
        [Some(a), Some(b), None, _] if b.is_path => {
            (End::Port(None, port(&a)), Some(End::Path(b.arg)))
        }
        [Some(a), Some(b), None, _] => {
            let p = port(&b);
            (End::Port(Some(a.arg), p), None)
        }
        [Some(a), Some(b), Some(c), None] if a.is_path => {
            let p = port(&c);
            (End::Path(a.arg), Some(End::Port(Some(b.arg), p)))
        }
        [Some(a), Some(b), Some(c), None] if c.is_path => {
            let p = port(&b);
            (End::Port(Some(a.arg), p), Some(End::Path(c.arg)))
        }
        [Some(a), Some(b), Some(c), None] => {
            let p = port(&c);
            (End::Port(None, port(&a)), Some(End::Port(Some(b.arg), p)))
        }
        [Some(a), Some(b), Some(c), Some(d)] => {
            let (lp, tp) = (port(&b), port(&d));
            (End::Port(Some(a.arg), lp), Some(End::Port(Some(c.arg), tp)))
        }
        _ => return None,
    };
    let has_path = matches!(listen, End::Path(_)) || matches!(target, Some(End::Path(_)));
    if dynamic {
        if n > 2 {
            return None;
        }
    } else {
        if !(n == 3 || n == 4 || has_path) {
            return None;
        }
        match &target {
            Some(End::Path(_)) => {}
            Some(End::Port(_, Some(p))) if *p > 0 => {}
            _ => return None,
        }
    }
    build(listen, if dynamic { None } else { target }, dynamic, remote)
}

/// Checks ports and lengths as ssh does and makes the record.
fn build<'a>(
    listen: End<'a>,
    target: Option<End<'a>>,
    dynamic: bool,
    remote: bool,
) -> Option<Forward<'a>> {
    let (bind, listen_port) = match listen {
        End::Path(p) if p.len() <= MAX_SOCKET_PATH => (p, 0),
        End::Path(_) => return None,
        End::Port(host, port) => {
            let port = port?;
            if port == 0 && !remote {
                return None;
            }
            let host = host.unwrap_or_default();
            if host.len() > MAX_HOST {
                return None;
            }
            (host, port)
        }
    };
    let (target_host, target_port) = match target {
        None => (Cow::Borrowed(""), 0),
        Some(End::Path(p)) if p.len() <= MAX_SOCKET_PATH => (p, 0),
        Some(End::Path(_)) => return None,
        Some(End::Port(host, port)) => {
            let host = host.unwrap_or_default();
            if host.len() > MAX_HOST {
                return None;
            }
            (host, port?)
        }
    };
    let kind = match (dynamic, remote) {
        (_, true) => Kind::Remote,
        (true, false) => Kind::Dynamic,
        (false, false) => Kind::Local,
    };
    Some(Forward {
        kind,
        bind,
        listen_port,
        target_host,
        target_port,
    })
}

/// The grammar of OpenSSH 6.6 and before: fields split at `:` or `/`
/// (`hpdelim`), brackets removed, no socket paths.
fn old_forward<'a>(spec: &'a str, dynamic: bool, remote: bool) -> Option<Forward<'a>> {
    let mut cur = Some(spec.trim_start());
    let mut fields: Vec<&'a str> = Vec::with_capacity(4);
    while fields.len() < 4 {
        let Some(s) = cur else { break };
        let end = if s.starts_with('[') {
            s.find(']')? + 1
        } else {
            s.find([':', '/']).unwrap_or(s.len())
        };
        match s.as_bytes().get(end) {
            None => cur = None,
            Some(b':' | b'/') => cur = Some(&s[end + 1..]),
            Some(_) => return None,
        }
        fields.push(&s[..end]);
    }
    if cur.is_some() {
        return None;
    }
    let clean = |h: &'a str| -> Cow<'a, str> {
        Cow::Borrowed(
            h.strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(h),
        )
    };
    let (listen, target) = match fields.as_slice() {
        [a] => (End::Port(None, a2port(a)), None),
        [a, b] => (End::Port(Some(clean(a)), a2port(b)), None),
        [a, b, c] => (
            End::Port(None, a2port(a)),
            Some(End::Port(Some(clean(b)), a2port(c))),
        ),
        [a, b, c, d] => (
            End::Port(Some(clean(a)), a2port(b)),
            Some(End::Port(Some(clean(c)), a2port(d))),
        ),
        _ => return None,
    };
    let n = fields.len();
    if dynamic != (n <= 2) {
        return None;
    }
    if !dynamic && !matches!(target, Some(End::Port(_, Some(p))) if p > 0) {
        return None;
    }
    build(listen, target, dynamic, remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ssh gw | L []:5900 [h]:5951 | bad -L '5900:h'`, or `-` when the
    /// command is not ssh/autossh.
    fn render(inv: Option<Invocation>) -> String {
        let Some(inv) = inv else { return "-".into() };
        let mut s = match inv.program {
            Program::Ssh => format!("ssh {}", inv.dest),
            Program::Autossh => format!("autossh {}", inv.dest),
        };
        for f in &inv.forwards {
            s.push_str(&format!(" | {}", render_forward(f)));
        }
        for b in &inv.bad {
            s.push_str(&format!(" | {b}"));
        }
        s
    }

    fn render_forward(f: &Forward) -> String {
        let mut s = format!("{} [{}]:{}", f.kind.letter(), f.bind, f.listen_port);
        if !f.target_host.is_empty() || f.target_port != 0 {
            s.push_str(&format!(" [{}]:{}", f.target_host, f.target_port));
        }
        s
    }

    /// A command line as ps shows it.
    #[track_caller]
    fn check(cmdline: &str, expected: &str) {
        assert_eq!(
            render(parse_command(cmdline)),
            expected,
            "command: {cmdline}"
        );
    }

    /// An exact argv.
    #[track_caller]
    fn check_argv(argv: &[&str], expected: &str) {
        assert_eq!(render(parse_argv(argv)), expected, "argv: {argv:?}");
    }

    #[test]
    fn program_by_any_path() {
        check("ssh -L 5900:h:5951 gw", "ssh gw | L []:5900 [h]:5951");
        check(
            "/usr/bin/ssh -L 5900:h:5951 gw",
            "ssh gw | L []:5900 [h]:5951",
        );
        check(
            "/opt/openssh-9.9/bin/ssh -N gw -L 1:h:2",
            "ssh gw | L []:1 [h]:2",
        );
        check("  \\_ /usr/bin/ssh -N -L 1:h:2 gw", "ssh gw | L []:1 [h]:2");
        check("autossh -M 0 -N -L 1:h:2 gw", "autossh gw | L []:1 [h]:2");
        check(
            "/usr/lib/autossh/autossh    -M 20000 -N  -L 5900:h:5951 gw",
            "autossh gw | L []:5900 [h]:5951",
        );
    }

    #[test]
    fn not_ssh() {
        for cmd in [
            "sshd: novacr01 [priv]",
            "sshd: novacr01@pts/3",
            "/usr/sbin/sshd -D",
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
            "ssh-agent -s",
            "/usr/bin/ssh-agent /usr/bin/im-launch startplasma-x11",
            "scp -L 1:h:2 file gw:/tmp",
            "/usr/lib/openssh/sftp-server",
            "sftp gw",
            "grep ssh",
            "grep --color=auto ssh -L 1:h:2",
            "bash -c ssh -L 5900:h:5951 gw",
            "sh -c exec ssh -N -L 5900:h:5951 gw",
            "vim ssh_config",
            "tail -f /var/log/ssh.log",
            "ssh-keygen -t ed25519",
            "sshfs gw:/data /mnt -o reconnect",
            "mosh gw",
            "mosh-client -# gw | 10.0.0.1 60001",
            "sshpass -p secret ssh -L 1:h:2 gw",
            "timeout 3600 ssh -L 1:h:2 gw",
            "[ssh] <defunct>",
            "ssh: /home/u/.ssh/cm-gw [mux]",
            "python3 /usr/bin/ssh-import-id gh:x",
            "",
        ] {
            check(cmd, "-");
        }
    }

    #[test]
    fn sessions_without_forwards() {
        check("ssh gw", "ssh gw");
        check("ssh -t gw top", "ssh gw");
        check("ssh -W h:22 jump", "ssh jump");
        check(
            "ssh -l novacr01 -p 42801 -W [localhost]:42801 127.0.0.1",
            "ssh 127.0.0.1",
        );
        // git and rsync run ssh with a remote command.
        check(
            "/usr/bin/ssh -o SendEnv=GIT_PROTOCOL git@github.com git-upload-pack 'x/y.git'",
            "ssh github.com",
        );
        check(
            "ssh -l u gw rsync --server -vlogDtpre.iLsfxCIvu . /data",
            "ssh gw",
        );
        // scp's and sftp's ssh (sftp passes "-oForwardX11 no" as one argument).
        check(
            "/usr/bin/ssh -x -oPermitLocalCommand=no -oClearAllForwardings=yes \
             -oRemoteCommand=none -oRequestTTY=no -oForwardAgent=no -l u -- gw scp -t /tmp",
            "ssh gw",
        );
        check(
            "/usr/bin/ssh -oForwardX11 no -oPermitLocalCommand no -oClearAllForwardings yes \
             -oForwardAgent no -l u -s -- gw sftp",
            "ssh gw",
        );
    }

    #[test]
    fn bundled_and_attached() {
        check("ssh -fNL 5900:h:5951 gw", "ssh gw | L []:5900 [h]:5951");
        check("ssh -fNTL5900:h:5951 gw", "ssh gw | L []:5900 [h]:5951");
        check("ssh -L5900:h:5951 gw", "ssh gw | L []:5900 [h]:5951");
        check("ssh -fND1081 gw", "ssh gw | D []:1081");
        check(
            "ssh -p2222 -lu gw -R6905:localhost:5905",
            "ssh gw | R []:6905 [localhost]:5905",
        );
        // A value-taking letter takes the rest of the word, even letters.
        check(
            "ssh -fNo ExitOnForwardFailure=yes -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2",
        );
        check("ssh -i/k/id -L 1:h:2 gw", "ssh gw | L []:1 [h]:2");
        // Flags ssh does not know are read as flags.
        check("ssh -fZN -L 1:h:2 gw", "ssh gw | L []:1 [h]:2");
    }

    #[test]
    fn options_after_destination_and_command() {
        check("ssh gw -L 5900:h:5951", "ssh gw | L []:5900 [h]:5951");
        check(
            "ssh gw -N -L 1:h:2 -p 22 -D 3",
            "ssh gw | L []:1 [h]:2 | D []:3",
        );
        // The first non-option after the destination starts the remote command.
        check("ssh gw uptime -L 1:h:2", "ssh gw");
        check(
            "ssh -L 1:h:2 gw sleep 100 -L 3:h:4",
            "ssh gw | L []:1 [h]:2",
        );
        check(
            "ssh -f -L 5923:localhost:5973 far sleep 100000; echo -L 5924:localhost:5974 -G",
            "ssh far | L []:5923 [localhost]:5973",
        );
        // "--" ends the options: the next word is the destination, then the command.
        check("ssh -- gw -L 1:h:2", "ssh gw");
        check("ssh -L 1:h:2 -- gw -L 3:h:4", "ssh gw | L []:1 [h]:2");
        check("ssh -L 1:h:2 gw -- -L 3:h:4", "ssh gw | L []:1 [h]:2");
        // A value missing at the end: ssh would not run; what came before stays.
        check("ssh -L 1:h:2 gw -L", "ssh gw | L []:1 [h]:2");
        check("ssh -L", "ssh ");
        // No destination: ssh would not run (here: a line cut by ps).
        check("ssh -fN -L 5900:h:5951", "ssh ");
        check("ssh -fN -D 10", "ssh ");
        check("autossh -M 0 -N -L 5900:h:5951", "autossh ");
    }

    #[test]
    fn destinations() {
        check("ssh -l u -L 1:h:2 gw", "ssh gw | L []:1 [h]:2");
        check("ssh u@gw -L 1:h:2", "ssh gw | L []:1 [h]:2");
        check(
            "ssh a@b@gw.fnal.gov -L 1:h:2",
            "ssh gw.fnal.gov | L []:1 [h]:2",
        );
        check("ssh -L 1:h:2 ssh://u@gw:2222", "ssh gw | L []:1 [h]:2");
        check("ssh -L 1:h:2 ssh://gw", "ssh gw | L []:1 [h]:2");
        check(
            "ssh -L 1:h:2 ssh://u@[fe80::1]:2222",
            "ssh fe80::1 | L []:1 [h]:2",
        );
        check(
            "ssh -p 2222 -J jump@j:22 -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2",
        );
        check("ssh -J u@j1,u@j2 u@gw -L 1:h:2", "ssh gw | L []:1 [h]:2");
        check("ssh -L 1:h:2 ::1", "ssh ::1 | L []:1 [h]:2");
        // -W is a stdio forward, not a port forward, and clears the others
        // unless ClearAllForwardings says no.
        check("ssh -W gw:22 -L 1:h:2 jump", "ssh jump");
        check(
            "ssh -W gw:22 -o ClearAllForwardings=no -L 1:h:2 jump",
            "ssh jump | L []:1 [h]:2",
        );
    }

    #[test]
    fn forward_specs() {
        check(
            "ssh -L 127.0.0.1:5900:h:5951 gw",
            "ssh gw | L [127.0.0.1]:5900 [h]:5951",
        );
        check(
            "ssh -L localhost:5900:h:5951 gw",
            "ssh gw | L [localhost]:5900 [h]:5951",
        );
        check("ssh -L *:5900:h:5951 gw", "ssh gw | L [*]:5900 [h]:5951");
        check("ssh -L :5900:h:5951 gw", "ssh gw | L []:5900 [h]:5951");
        check(
            "ssh -L [::1]:5900:h:5951 gw",
            "ssh gw | L [::1]:5900 [h]:5951",
        );
        check(
            "ssh -L [::1]:5900:[fe80::1]:5951 gw",
            "ssh gw | L [::1]:5900 [fe80::1]:5951",
        );
        check("ssh -L 5900:[::1]:5951 gw", "ssh gw | L []:5900 [::1]:5951");
        check("ssh -L 8080:web:http gw", "ssh gw | L []:8080 [web]:80");
        check("ssh -L 05900:h:05951 gw", "ssh gw | L []:5900 [h]:5951");
        // The slash syntax of OpenSSH 6.6 and before.
        check("ssh -L 5900/h/5951 gw", "ssh gw | L []:5900 [h]:5951");
        check(
            "ssh -L 127.0.0.1/5900/h/5951 gw",
            "ssh gw | L [127.0.0.1]:5900 [h]:5951",
        );
        check(
            "ssh -L [::1]/5900/[fe80::1]/5951 gw",
            "ssh gw | L [::1]:5900 [fe80::1]:5951",
        );
        check("ssh -D 127.0.0.1/1080 gw", "ssh gw | D [127.0.0.1]:1080");
        // Dynamic forwards.
        check("ssh -D 1080 gw", "ssh gw | D []:1080");
        check(
            "ssh -D 127.0.0.1:1082 -D [::1]:1083 gw",
            "ssh gw | D [127.0.0.1]:1082 | D [::1]:1083",
        );
        check("ssh -D *:1080 gw", "ssh gw | D [*]:1080");
        // Remote forwards, dynamic ones (`-R port`) and server-chosen ports.
        check(
            "ssh -R 6905:localhost:5905 gw",
            "ssh gw | R []:6905 [localhost]:5905",
        );
        check(
            "ssh -R 0:localhost:5906 gw",
            "ssh gw | R []:0 [localhost]:5906",
        );
        check("ssh -R 1080 gw", "ssh gw | R []:1080");
        check(
            "ssh -R localhost:1080 -R 0 gw",
            "ssh gw | R [localhost]:1080 | R []:0",
        );
        check("ssh -R *:8080:[::1]:80 gw", "ssh gw | R [*]:8080 [::1]:80");
        // Unix sockets: a path is a field holding a `/`.
        check(
            "ssh -L /tmp/vnc.sock:h:5951 gw",
            "ssh gw | L [/tmp/vnc.sock]:0 [h]:5951",
        );
        check(
            "ssh -L 5900:/run/vnc.sock gw",
            "ssh gw | L []:5900 [/run/vnc.sock]:0",
        );
        check(
            "ssh -L 127.0.0.1:5900:/run/v.sock gw",
            "ssh gw | L [127.0.0.1]:5900 [/run/v.sock]:0",
        );
        check(
            "ssh -R /tmp/a.sock:/tmp/b.sock gw",
            "ssh gw | R [/tmp/a.sock]:0 [/tmp/b.sock]:0",
        );
        check("ssh -L [/tmp/x:y]:h:1 gw", "ssh gw | L [/tmp/x:y]:0 [h]:1");
        // A backslash escapes the next character.
        check("ssh -L 5900:h\\:x:5951 gw", "ssh gw | L []:5900 [h:x]:5951");
    }

    #[test]
    fn bad_forward_specs() {
        check("ssh -L 5900:h gw", "ssh gw | bad -L spec '5900:h'");
        check(
            "ssh -L 5900 -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2 | bad -L spec '5900'",
        );
        check("ssh -L 0:h:1 gw", "ssh gw | bad -L spec '0:h:1'");
        check("ssh -L 5900:h:0 gw", "ssh gw | bad -L spec '5900:h:0'");
        check("ssh -L 70000:h:1 gw", "ssh gw | bad -L spec '70000:h:1'");
        check(
            "ssh -L 99999999999999999999:h:1 gw",
            "ssh gw | bad -L spec '99999999999999999999:h:1'",
        );
        check("ssh -L a:b:c:d:e gw", "ssh gw | bad -L spec 'a:b:c:d:e'");
        check(
            "ssh -L ::1:5900:h:5951 gw",
            "ssh gw | bad -L spec '::1:5900:h:5951'",
        );
        check(
            "ssh -L [::1:5900:h:5951 gw",
            "ssh gw | bad -L spec '[::1:5900:h:5951'",
        );
        check(
            "ssh -L [::1]x:5900:h:1 gw",
            "ssh gw | bad -L spec '[::1]x:5900:h:1'",
        );
        check(
            "ssh -L 1:h:nosuchservice gw",
            "ssh gw | bad -L spec '1:h:nosuchservice'",
        );
        check("ssh -L 1:h:2\\ gw", "ssh gw | bad -L spec '1:h:2\\'");
        check("ssh -D 0 gw", "ssh gw | bad -D spec '0'");
        check("ssh -D 1:h:2 gw", "ssh gw | bad -D spec '1:h:2'");
        check("ssh -R h:x gw", "ssh gw | bad -R spec 'h:x'");
        check("ssh -L 5900:é:5951 gw", "ssh gw | L []:5900 [é]:5951");
        check("ssh -L é gw", "ssh gw | bad -L spec 'é'");
    }

    #[test]
    fn config_options() {
        check(
            "ssh -o LocalForward=5900 h:5951 gw",
            "ssh gw | L []:5900 [h]:5951",
        );
        check(
            "ssh -oLocalForward 5900 h:5951 gw",
            "ssh gw | L []:5900 [h]:5951",
        );
        check(
            "ssh -o LocalForward 5900 h:5951 gw",
            "ssh gw | L []:5900 [h]:5951",
        );
        check(
            "ssh -oLocalForward=5900 h:5951 gw",
            "ssh gw | L []:5900 [h]:5951",
        );
        check(
            "ssh -o localforward 5900 h:5951 gw",
            "ssh gw | L []:5900 [h]:5951",
        );
        check(
            "ssh -o LOCALFORWARD=5900 h:5951 gw",
            "ssh gw | L []:5900 [h]:5951",
        );
        check(
            "ssh -o LocalForward = 5910 h:5960 gw",
            "ssh gw | L []:5910 [h]:5960",
        );
        check(
            "ssh -o LocalForward =5910 h:5960 gw",
            "ssh gw | L []:5910 [h]:5960",
        );
        check(
            "ssh -o LocalForward= 5910 h:5960 gw",
            "ssh gw | L []:5910 [h]:5960",
        );
        check(
            "ssh -olocalforward=[::1]:5909 localhost:5959 -fN gw",
            "ssh gw | L [::1]:5909 [localhost]:5959",
        );
        check(
            "ssh -o LocalForward 127.0.0.1:5900 [fe80::1]:5951 gw",
            "ssh gw | L [127.0.0.1]:5900 [fe80::1]:5951",
        );
        check(
            "ssh -o LocalForward 5900 /run/v.sock gw",
            "ssh gw | L []:5900 [/run/v.sock]:0",
        );
        check(
            "ssh -o RemoteForward 8080 localhost:80 gw",
            "ssh gw | R []:8080 [localhost]:80",
        );
        check(
            "ssh -o RemoteForward=8080 localhost:80 gw",
            "ssh gw | R []:8080 [localhost]:80",
        );
        check("ssh -o RemoteForward 1080 gw", "ssh gw | R []:1080");
        check("ssh -o RemoteForward=1080 u@gw", "ssh gw | R []:1080");
        check(
            "ssh -o remoteforward localhost:1080 gw uptime",
            "ssh gw | R [localhost]:1080",
        );
        check("ssh -o DynamicForward 1080 gw", "ssh gw | D []:1080");
        check(
            "ssh -o DynamicForward=127.0.0.1:1085 gw",
            "ssh gw | D [127.0.0.1]:1085",
        );
        check(
            "ssh -o dynamicforward [::1]:1085 gw",
            "ssh gw | D [::1]:1085",
        );
        // A bare keyword owns its argument word ("-o 'Keyword value'").
        check(
            "ssh -o StrictHostKeyChecking no -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2",
        );
        check(
            "ssh -o ServerAliveInterval 30 gw -L 1:h:2",
            "ssh gw | L []:1 [h]:2",
        );
        check(
            "ssh -o UserKnownHostsFile=/dev/null -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2",
        );
        // Malformed: ssh refuses these, and so does this parser.
        check(
            "ssh -o LocalForward=5900:h:5951 gw",
            "ssh gw | bad LocalForward spec '5900:h:5951'",
        );
        check(
            "ssh -o LocalForward 5900 h gw",
            "ssh h | bad LocalForward spec '5900'",
        );
        check("ssh -o DynamicForward", "ssh  | bad DynamicForward spec ''");
    }

    #[test]
    fn forwards_cleared_or_held_by_a_master() {
        check("ssh -o ClearAllForwardings=yes -L 1:h:2 gw", "ssh gw");
        check("ssh -o ClearAllForwardings yes -L 1:h:2 gw", "ssh gw");
        check("ssh -oclearallforwardings=TRUE -L 1:h:2 gw", "ssh gw");
        // The first value wins, as in ssh.
        check(
            "ssh -o ClearAllForwardings=no -o ClearAllForwardings=yes -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2",
        );
        check("ssh -O forward -L 1:h:2 gw", "ssh gw");
        check("ssh -S /tmp/cm -O cancel -L 1:h:2 gw", "ssh gw");
        check("ssh -M -S /tmp/cm -fN -L 1:h:2 gw", "ssh gw | L []:1 [h]:2");
    }

    #[test]
    fn proxy_commands() {
        check(
            "ssh -o ProxyCommand=nc %h %p -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2",
        );
        check(
            "ssh -o ProxyCommand nc -x proxy:1080 %h %p gw -L 1:h:2",
            "ssh gw | L []:1 [h]:2",
        );
        check(
            "ssh -o ProxyCommand=ssh -W %h:%p jump gw -L 1:h:2",
            "ssh gw | L []:1 [h]:2",
        );
        check(
            "ssh -o ProxyCommand=ssh -q jump -W %h:%p gw -L 1:h:2",
            "ssh gw | L []:1 [h]:2",
        );
        check(
            "ssh -o ProxyCommand=none -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2",
        );
        check(
            "ssh -o ProxyCommand none -L 1:h:2 gw",
            "ssh gw | L []:1 [h]:2",
        );
        // A forward option is never part of a proxy command.
        check(
            "ssh -o ProxyCommand=nc -L 1:h:2 gw %h",
            "ssh gw | L []:1 [h]:2",
        );
    }

    #[test]
    fn autossh_options() {
        check(
            "autossh -M 20000 -f -N -L 5900:h:5951 gw",
            "autossh gw | L []:5900 [h]:5951",
        );
        check(
            "autossh -M20000:7 -N gw -L 1:h:2",
            "autossh gw | L []:1 [h]:2",
        );
        check("autossh -fM 0 -- -N -L 1:h:2 gw", "autossh -N");
        check("autossh -V", "autossh ");
        // Its ssh child: monitoring forwards first, then the user's.
        check(
            "/usr/bin/ssh -L 20000:127.0.0.1:20000 -R 20000:127.0.0.1:20001 -N -L 5900:h:5951 gw",
            "ssh gw | L []:20000 [127.0.0.1]:20000 | R []:20000 [127.0.0.1]:20001 | L []:5900 [h]:5951",
        );
        // For ssh itself -M is a flag.
        check("ssh -M 20000 -L 1:h:2", "ssh 20000 | L []:1 [h]:2");
    }

    #[test]
    fn exact_argv() {
        check_argv(
            &["ssh", "-o", "LocalForward 5900 h:5951", "gw"],
            "ssh gw | L []:5900 [h]:5951",
        );
        check_argv(
            &["ssh", "-o", "LocalForward=5900 h:5951", "gw"],
            "ssh gw | L []:5900 [h]:5951",
        );
        check_argv(
            &["ssh", "-o", " localforward = 5900  h:5951 ", "gw"],
            "ssh gw | L []:5900 [h]:5951",
        );
        check_argv(&["ssh", "-oRemoteForward 1080", "gw"], "ssh gw | R []:1080");
        check_argv(
            &["ssh", "-oForwardX11 no", "gw", "-L", "1:h:2"],
            "ssh gw | L []:1 [h]:2",
        );
        check_argv(
            &["ssh", "-o", "ProxyCommand ssh -W %h:%p j", "gw", "-D1080"],
            "ssh gw | D []:1080",
        );
        check_argv(&["/usr/bin/ssh", "gw", "echo -L 1:h:2"], "ssh gw");
        check_argv(&["sshd", "-D"], "-");
        check_argv(&[], "-");
    }

    #[test]
    fn parse_forward_directly() {
        let f = parse_forward(Kind::Local, "[::1]:5900:novadaq-far-master-02:5951").unwrap();
        assert_eq!(
            f,
            Forward {
                kind: Kind::Local,
                bind: "::1".into(),
                listen_port: 5900,
                target_host: "novadaq-far-master-02".into(),
                target_port: 5951,
            }
        );
        assert_eq!(parse_forward(Kind::Remote, "1080").unwrap().target_host, "");
        assert!(parse_forward(Kind::Local, "").is_none());
        assert!(parse_forward(Kind::Dynamic, "  ").is_none());
        let long = format!("{}:1:h:2", "a".repeat(2000));
        assert!(parse_forward(Kind::Local, &long).is_none());
        let long_path = format!("5900:/{}", "p".repeat(200));
        assert!(parse_forward(Kind::Local, &long_path).is_none());
    }

    #[test]
    fn busybox_comm_prefix() {
        // busybox shows `{comm}` before argv when argv[0] is not the program.
        check(
            "{ssh} vnc-tunnel -N -L 5900:h:5951 gw",
            "ssh gw | L []:5900 [h]:5951",
        );
        check(
            "{autossh} tunnel -M 0 -N -L 5900:h:5951 gw",
            "autossh gw | L []:5900 [h]:5951",
        );
        check(
            "{tmux: server} tmux new-session -d -s vnc ssh -L 5931:localhost:5981 far",
            "-",
        );
        check(
            "{ssh} ssh: /home/u/.ssh/cm-gw [mux]",
            "ssh /home/u/.ssh/cm-gw",
        );
        check("{/sbin/init} /sbin/init", "-");
        check("{ssh", "-");
    }

    #[test]
    fn program_of_first_word() {
        assert_eq!(program_of("/usr/bin/ssh -N gw"), Some(Program::Ssh));
        assert_eq!(program_of(" \\_ autossh -M 0 gw"), Some(Program::Autossh));
        assert_eq!(program_of("sshd: u [priv]"), None);
        assert_eq!(program_of(""), None);
    }

    /// Argument lists (after `ssh`) for [`agrees_with_openssh`].
    const CROSS_CHECK: &[&[&str]] = &[
        &["-L", "5900:h:5951", "gw"],
        &["-fNL", "5900:h:5951", "gw"],
        &["-fNTL5900:h:5951", "gw"],
        &["gw", "-L", "1:h:2", "-D", "3", "-R", "4:h:5"],
        &["gw", "uptime", "-L", "1:h:2"],
        &["-L", "1:h:2", "--", "gw", "-L", "3:h:4"],
        &["--", "gw", "-L", "3:h:4"],
        &["-o", "LocalForward 5900 h:5951", "gw"],
        &["-o", "LocalForward=5900 h:5951", "gw"],
        &["-o", "localforward = 5910 h:5960", "gw"],
        &["-oLOCALFORWARD [::1]:5909 localhost:5959", "gw"],
        &["-o", "RemoteForward 8080 localhost:80", "gw"],
        &["-o", "RemoteForward 1080", "gw"],
        &["-o", "DynamicForward 127.0.0.1:1085", "gw"],
        &["-o", "ClearAllForwardings=yes", "-L", "1:h:2", "gw"],
        &[
            "-o",
            "ClearAllForwardings=no",
            "-o",
            "ClearAllForwardings=yes",
            "-L",
            "1:h:2",
            "gw",
        ],
        &["-oForwardX11 no", "-l", "u", "-s", "--", "gw", "sftp"],
        &["-L", "[::1]:5900:[fe80::1]:5951", "gw"],
        &["-L", "*:5900:h:5951", "-L", "localhost:5901:h:5952", "gw"],
        &["-L", "/tmp/vnc.sock:h:5951", "-L", "5900:/run/v.sock", "gw"],
        &[
            "-R",
            "/tmp/a.sock:/tmp/b.sock",
            "-D",
            "/tmp/socks.sock",
            "gw",
        ],
        &[
            "-R",
            "0:localhost:5906",
            "-R",
            "6906",
            "-R",
            "0",
            "-R",
            "localhost:1080",
            "gw",
        ],
        &[
            "-L",
            "8080:web:http",
            "-L",
            "+5900:h:05951",
            "-L",
            "5900:h:5951:",
            "gw",
        ],
        &["-L", "5900:h\\:x:5951", "-L", "[/tmp/x:y]:h:1", "gw"],
        &[
            "-l",
            "u",
            "-p",
            "2222",
            "-J",
            "j",
            "a@b@GW.example",
            "-L",
            "1:h:2",
        ],
        &["-L", "1:h:2", "ssh://u@gw:2222"],
        &["-W", "h:22", "-L", "1:h:2", "jump"],
        &[
            "-W",
            "h:22",
            "-o",
            "ClearAllForwardings no",
            "-L",
            "1:h:2",
            "jump",
        ],
        &["-fND1081", "-D", "127.0.0.1:1082", "-D", "[::1]:1083", "gw"],
        &["-L", "5900:h", "gw"],
        &["-L", "0:h:1", "gw"],
        &["-L", "70000:h:1", "gw"],
        &["-L", "5900/h/5951", "gw"],
        &["-L", "::1:5900:h:5951", "gw"],
        &["-L", "1:h:2\\", "gw"],
        &["-D", "0", "gw"],
        &["-R", "h:x", "gw"],
        &["-o", "LocalForward=5900:h:5951", "gw"],
    ];

    /// Renders what `ssh -G` printed in this module's test notation.
    fn render_dash_g(out: &str) -> String {
        // `5900`, `[bind]:5900`, `/path`, as `[bind]:port`.
        fn side(s: &str) -> String {
            if let Some(rest) = s.strip_prefix('[') {
                let (h, p) = rest.rsplit_once("]:").unwrap();
                format!("[{h}]:{p}")
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                format!("[]:{s}")
            } else {
                format!("[{s}]:0")
            }
        }
        let mut host = String::new();
        let mut fwds = Vec::new();
        for line in out.lines() {
            let w: Vec<&str> = line.split(' ').collect();
            match w.as_slice() {
                ["hostname", h] => host = h.to_string(),
                ["localforward", l, t] => fwds.push(format!("L {} {}", side(l), side(t))),
                ["dynamicforward", l] => fwds.push(format!("D {}", side(l))),
                ["remoteforward", l, "[socks]:0"] => fwds.push(format!("R {}", side(l))),
                ["remoteforward", l, t] => fwds.push(format!("R {} {}", side(l), side(t))),
                _ => {}
            }
        }
        // `ssh -G` also lists a local forward to a socket path as a dynamic
        // one (its dump tells them apart by a NULL target host): drop those.
        let to_paths: Vec<String> = fwds
            .iter()
            .filter(|f| f.starts_with("L ") && f.ends_with("]:0"))
            .filter_map(|f| f.split(' ').nth(1).map(str::to_string))
            .collect();
        fwds.retain(|f| !(f.starts_with("D ") && to_paths.iter().any(|l| f[2..] == **l)));
        fwds.sort();
        format!("{host} {}", fwds.join(" | "))
    }

    /// The forwards and host of an invocation, sorted as `ssh -G` lists them.
    fn render_sorted(inv: &Invocation) -> String {
        let mut fwds: Vec<String> = inv.forwards.iter().map(render_forward).collect();
        fwds.sort();
        format!("{} {}", inv.dest.to_ascii_lowercase(), fwds.join(" | "))
    }

    /// The real ssh (`ssh -G` prints the configuration it would use) reads
    /// each argument list as this parser does, or refuses what it refuses.
    #[test]
    fn agrees_with_openssh() {
        for args in CROSS_CHECK {
            let out = std::process::Command::new("ssh")
                .args(["-G", "-F", "/dev/null"])
                .args(*args)
                .output()
                .expect("the ssh client (Debian package openssh-client) is needed");
            let mut argv = vec!["ssh"];
            argv.extend_from_slice(args);
            let ours = parse_argv(&argv).unwrap();
            if out.status.success() {
                let theirs = render_dash_g(&String::from_utf8_lossy(&out.stdout));
                assert_eq!(render_sorted(&ours), theirs, "args: {args:?}");
                assert!(ours.bad.is_empty(), "args: {args:?}");
            } else {
                let is_slash = args.iter().any(|a| a.contains("/h/"));
                assert!(
                    !ours.bad.is_empty() || is_slash,
                    "ssh refused {args:?}, we took {ours:?}"
                );
            }
            // ps shows the same words when no argument holds a space.
            if !args.iter().any(|a| a.contains(' ')) {
                assert_eq!(
                    parse_command(&argv.join(" ")).as_ref(),
                    Some(&ours),
                    "args: {args:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_ssh_like_words(
            words in proptest::collection::vec(
                "(-[fNTLRDoOMlpJWvq]{1,3}|-o|-L|--|[0-9:/@\\[\\]*.=%a-z\\\\-]{0,12}|LocalForward|RemoteForward=|ProxyCommand|ssh|%h)",
                0..24,
            )
        ) {
            let cmd = format!("ssh {}", words.join(" "));
            let _ = parse_command(&cmd);
            let auto = format!("autossh {}", words.join(" "));
            let _ = parse_command(&auto);
            let mut argv = vec!["ssh"];
            argv.extend(words.iter().map(|s| s.as_str()));
            let _ = parse_argv(&argv);
        }

        #[test]
        fn never_panics_on_any_spec(spec in "\\PC{0,40}") {
            for kind in [Kind::Local, Kind::Remote, Kind::Dynamic] {
                let _ = parse_forward(kind, &spec);
            }
            let _ = parse_command(&format!("ssh -L {spec} -o LocalForward {spec} gw"));
        }
    }
}
