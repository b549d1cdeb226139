//! Reads `ps` output (procps `ps aux`, `ps auxww`, busybox `ps`) into
//! processes, and the ssh processes among them into tunnel records.
//!
//! The layout comes from the header line: procps `ps aux`
//! (`USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND`), busybox
//! (`PID USER TIME COMMAND`, `PID USER COMMAND`, the older
//! `PID USER VSZ STAT COMMAND`), and in fact any header whose last column is
//! `COMMAND`, `CMD` or `ARGS` (`ps -ef`, `ps -o ...`; `STARTED`, lstart's
//! header, spans five words). Columns are split at white space except the
//! last, which is the rest of the line as printed. A header may appear again
//! (captures pasted together) and takes over from there. Lines before any
//! header (a capture through `grep ssh`) are recognised one by one: a second
//! word that is a number means procps (`aux` when the third holds a `.`, else
//! `-ef`), a first word that is a number means busybox.
//!
//! A line that does not fit (too few columns, a PID that is not a number) is
//! skipped and counted; blank lines are ignored. Values are kept as printed:
//! a USER cut to `name+` by procps stays so.
//!
//! Only a COMMAND whose first word ends in `ssh` can be a tunnel, so the
//! other lines are only checked for shape (the PID, and where COMMAND
//! starts), without allocating. Each ssh or autossh COMMAND goes through
//! [`ssh_args`], which borrows from the capture, and one record is made
//! per forward.
//!
//! autossh shows twice in `ps`: its own line and the ssh it started, which
//! holds the listening sockets and carries the same forwards (plus
//! autossh's monitoring ones). Each forward is reported once, from that ssh
//! child: an autossh line is dropped when the capture holds an ssh line of
//! the same user and destination with all of its forwards; otherwise (the
//! child is between restarts) autossh's own forwards are reported under its
//! pid.
//!
//! A capture is read a buffer at a time ([`read_ps`], [`PsReader`], the
//! buffer in [`lines`]), so memory does not grow with the size of `ps`'s
//! output: the walk over the lines carries its state from one block to the
//! next, and only the ssh and autossh lines are kept (their fields) until
//! the end, when autossh lines are matched with their children and it is
//! known whether ps cut the lines. [`parse_ps`] reads a text in memory the
//! same way, as one block.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read};
use std::ops::Range;

use crate::lines;
use crate::ssh_args::{self, Forward, Invocation, Program};
use crate::tunnel::{Health, Tunnel};

/// Problems kept in [`PsOutcome::problems`]; more are only counted.
pub(crate) const MAX_PROBLEMS: usize = 100;

/// One process line of a `ps` capture, as ps printed it.
#[cfg(test)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Process {
    /// USER column, possibly cut by ps (`averylo+`).
    pub(crate) user: String,
    pub pid: u32,
    /// START column (`21:06`, `Apr04`, `2016`), empty where the format has none.
    pub start: String,
    /// TIME column (`1:56`, `00:00:03`), empty where the format has none.
    pub cpu_time: String,
    /// COMMAND: argv joined with spaces, as ps shows it.
    pub command: String,
}

/// Something in a capture that was skipped, with its line number (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    /// `17: bad -L spec '5900:h' (pid 4242)`; callers put the file name in front.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

/// What one pass over a `ps` capture found.
#[derive(Debug, Default)]
pub struct PsOutcome {
    /// One record per forward, in the order of the capture.
    pub tunnels: Vec<Tunnel>,
    /// Lines that could not be read as a process (counted in a warning).
    pub skipped: usize,
    /// Forward specs of ssh processes that ssh would refuse (not reported).
    pub bad_forwards: usize,
    /// The first [`MAX_PROBLEMS`] skipped lines and bad forwards.
    pub(crate) problems: Vec<Problem>,
}

impl PsOutcome {
    fn problem(&mut self, line: usize, message: impl FnOnce() -> String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                line,
                message: message(),
            });
        }
    }
}

/// What a column holds, for the columns before COMMAND.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    User,
    Pid,
    /// START / STIME (one word) or STARTED (lstart: five words).
    Start(u8),
    Time,
    Other,
}

/// Most words before COMMAND a layout may have.
const MAX_WORDS: usize = 32;

/// Where the bytes of a line's fields are noted while it is split: the
/// start and end of USER, PID, START and TIME, and a slot for the rest.
type Marks = [usize; 9];
const USER_MARK: u8 = 0;
const PID_MARK: u8 = 2;
const START_MARK: u8 = 4;
const TIME_MARK: u8 = 6;
const NO_MARK: u8 = 8;

/// The columns before COMMAND (which is always last), as what each word's
/// start and end mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    /// How many words come before COMMAND.
    words: usize,
    /// Which of them is the PID (the last, if the header names several).
    pid_word: usize,
    start_mark: [u8; MAX_WORDS],
    end_mark: [u8; MAX_WORDS],
}

impl Layout {
    /// `None` without a PID column or with more than [`MAX_WORDS`] words.
    fn new(cols: &[Col]) -> Option<Layout> {
        let mut l = Layout {
            words: 0,
            pid_word: 0,
            start_mark: [NO_MARK; MAX_WORDS],
            end_mark: [NO_MARK; MAX_WORDS],
        };
        let mut has_pid = false;
        for col in cols {
            let (mark, n) = match col {
                Col::User => (USER_MARK, 1),
                Col::Pid => {
                    has_pid = true;
                    l.pid_word = l.words;
                    (PID_MARK, 1)
                }
                Col::Start(n) => (START_MARK, usize::from(*n).max(1)),
                Col::Time => (TIME_MARK, 1),
                Col::Other => (NO_MARK, 1),
            };
            let first = l.words;
            l.words += n;
            if l.words > MAX_WORDS {
                return None;
            }
            if mark != NO_MARK {
                l.start_mark[first] = mark;
                l.end_mark[l.words - 1] = mark + 1;
            }
        }
        has_pid.then_some(l)
    }

    /// procps `ps aux`.
    fn aux() -> Option<Layout> {
        use Col::*;
        Layout::new(&[
            User,
            Pid,
            Other,
            Other,
            Other,
            Other,
            Other,
            Other,
            Start(1),
            Time,
        ])
    }

    /// procps `ps -ef`: UID PID PPID C STIME TTY TIME CMD.
    fn ef() -> Option<Layout> {
        use Col::*;
        Layout::new(&[User, Pid, Other, Other, Start(1), Other, Time])
    }

    /// Reads a header line; `None` if the line is not one.
    fn from_header(line: &str) -> Option<Layout> {
        let t = line.trim_end();
        if !(t.ends_with("COMMAND") || t.ends_with("CMD") || t.ends_with("ARGS")) {
            return None;
        }
        let words: Vec<&str> = t.split_ascii_whitespace().collect();
        let (last, before) = words.split_last()?;
        if !matches!(*last, "COMMAND" | "CMD" | "ARGS") || before.len() > MAX_WORDS {
            return None;
        }
        let header_word = |w: &&str| {
            w.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"%_-+".contains(&b))
        };
        if !before.iter().all(header_word) {
            return None;
        }
        let cols: Vec<Col> = before
            .iter()
            .map(|w| match *w {
                "USER" | "UID" | "RUSER" | "EUSER" | "UNAME" => Col::User,
                "PID" => Col::Pid,
                "START" | "STIME" => Col::Start(1),
                "STARTED" => Col::Start(5),
                "TIME" => Col::Time,
                _ => Col::Other,
            })
            .collect();
        Layout::new(&cols)
    }

    /// Guesses the layout of a line seen before any header.
    fn guess(line: &str) -> Option<Layout> {
        use Col::*;
        let mut w = line.split_ascii_whitespace();
        let (a, b, c, d) = (w.next()?, w.next()?, w.next()?, w.next());
        if is_number(b) && !is_number(a) {
            return if c.contains('.') {
                Layout::aux()
            } else {
                Layout::ef()
            };
        }
        if !is_number(a) {
            return None;
        }
        // A USER that is a number (an account without a name: procps prints
        // the uid) looks like busybox's PID first; procps's other columns
        // tell them apart: aux has %CPU and %MEM with a decimal point, VSZ
        // and RSS, and STAT in the eighth word; -ef has PPID and C, and TIME
        // in the seventh.
        let rest: Vec<&str> = line.split_ascii_whitespace().take(8).collect();
        if is_number(b) && rest.len() == 8 {
            let decimal =
                |s: &str| s.contains('.') && s.bytes().all(|x| x.is_ascii_digit() || x == b'.');
            if decimal(c)
                && d.is_some_and(decimal)
                && is_number(rest[4])
                && is_number(rest[5])
                && is_stat(rest[7])
            {
                return Layout::aux();
            }
            if is_number(c) && d.is_some_and(is_number) && is_cpu_time(rest[6]) {
                return Layout::ef();
            }
        }
        // busybox: PID USER [TIME | VSZ STAT] COMMAND
        if is_cpu_time(c) {
            Layout::new(&[Pid, User, Time])
        } else if is_vsz(c) && d.is_some_and(is_stat) {
            Layout::new(&[Pid, User, Other, Other])
        } else {
            Layout::new(&[Pid, User])
        }
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `0:00`, `12:34:56`, `1-02:03:04`.
fn is_cpu_time(s: &str) -> bool {
    s.contains(':')
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b':' || b == b'-')
}

/// busybox VSZ: `2492`, `41m`, `1.2g`.
fn is_vsz(s: &str) -> bool {
    let digits = s.trim_end_matches(['k', 'm', 'g', 't', 'K', 'M', 'G', 'T']);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Process state: `S`, `R<`, `SW`, `Ssl+`, `D`, `Z`.
fn is_stat(s: &str) -> bool {
    s.len() <= 6 && s.bytes().all(|b| b"RSDTtZWXIPNLsl<+".contains(&b))
}

/// Where the fields of one process line are: byte ranges of the line, or
/// of a text that holds it ([`Fields::moved`]).
#[derive(Clone, Debug)]
struct Fields {
    pid: u32,
    user: Range<usize>,
    start: Range<usize>,
    cpu_time: Range<usize>,
    command: Range<usize>,
}

impl Fields {
    /// The same fields in a text where the line starts at byte `at`.
    fn moved(self, at: usize) -> Fields {
        let m = |r: Range<usize>| r.start + at..r.end + at;
        Fields {
            pid: self.pid,
            user: m(self.user),
            start: m(self.start),
            cpu_time: m(self.cpu_time),
            command: m(self.command),
        }
    }

    #[cfg(test)]
    fn to_process(&self, line: &str) -> Process {
        Process {
            user: field(line, &self.user).to_string(),
            pid: self.pid,
            start: field(line, &self.start).to_string(),
            cpu_time: field(line, &self.cpu_time).to_string(),
            command: field(line, &self.command).to_string(),
        }
    }
}

/// The field at `range` of `text` (empty if it is not one).
fn field<'a>(text: &'a str, range: &Range<usize>) -> &'a str {
    text.get(range.clone()).unwrap_or("")
}

/// White space between columns: space, tab, and any other control byte
/// (ps prints control characters in COMMAND as `?`).
fn is_space(b: u8) -> bool {
    b <= b' '
}

/// Eight bytes of `b` from `i` as a little-endian word, zero-padded at the
/// end of `b` (zero is white space).
fn load8(b: &[u8], i: usize) -> u64 {
    match b.get(i..i + 8) {
        Some(part) => u64::from_le_bytes(part.try_into().unwrap_or_default()),
        None => {
            let rest = b.get(i..).unwrap_or_default();
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(buf)
        }
    }
}

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of byte `k` of the result is set when byte `k` of `x` is not
/// white space ([`is_space`]); the other bits are clear. Eight bytes at a
/// time (SWAR), so lines are split without a branch per byte.
fn word_marks(x: u64) -> u64 {
    // Adding 0x5f to a byte's low 7 bits sets its high bit iff they are >= 0x21.
    (((x & LOW7) + 0x5f5f_5f5f_5f5f_5f5f) | x) & HIGH
}

/// The byte a mark of [`word_marks`] stands for.
fn byte_of(mark: u64) -> usize {
    (mark.trailing_zeros() / 8) as usize
}

/// The words of a line, eight bytes at a time: for each step, where it
/// starts, the marks of its bytes that begin a word, and of those that
/// begin or end one (an edge), with [`word_marks`]' layout.
struct Edges<'a> {
    line: &'a [u8],
    at: usize,
    /// Bit 7 of byte 0 set when the byte before `at` is in a word.
    in_word: u64,
}

impl<'a> Edges<'a> {
    fn new(line: &'a [u8]) -> Edges<'a> {
        Edges {
            line,
            at: 0,
            in_word: 0,
        }
    }
}

impl Iterator for Edges<'_> {
    /// `(at, starts, edges)`.
    type Item = (usize, u64, u64);

    fn next(&mut self) -> Option<(usize, u64, u64)> {
        let at = self.at;
        if at >= self.line.len() {
            return None;
        }
        let words = word_marks(load8(self.line, at));
        let before = (words << 8) | self.in_word;
        self.in_word = words >> 56;
        self.at += 8;
        Some((at, words & !before, words ^ before))
    }
}

/// Where COMMAND starts in `line` (without its newline) split by `layout`,
/// or `None` when the line is not a process line: too few words, or a PID
/// that is not one. This is the test every line of a capture goes through,
/// so only word starts are looked at, and of the words only the PID is read.
fn command_start(line: &[u8], layout: &Layout) -> Option<usize> {
    // Words started so far; COMMAND is word `layout.words` (from 0).
    let mut count = 0;
    let mut in_word = 0;
    let mut at = 0;
    while at < line.len() {
        let words = word_bits(line, at);
        let mut starts = words & !((words << 1) | in_word);
        in_word = words >> 15;
        while starts != 0 {
            let start = at + starts.trailing_zeros() as usize;
            if count == layout.words {
                return Some(start);
            }
            if count == layout.pid_word {
                pid_at(line, start)?;
            }
            count += 1;
            starts &= starts - 1;
        }
        at += 16;
    }
    None
}

/// Bit `k` set when `line[at + k]` is not white space ([`is_space`]), for
/// the 16 bytes from `at` (past the end of `line`: white space). Every line
/// of a capture goes through this up to its COMMAND, 16 bytes a step: with
/// SSE2 (part of every x86_64) one compare, elsewhere [`word_marks`] with
/// the marks gathered into bits.
fn word_bits(line: &[u8], at: usize) -> u32 {
    let mut padded = [0u8; 16];
    let chunk = match line.get(at..at + 16) {
        Some(c) => c,
        None => {
            let rest = line.get(at..).unwrap_or_default();
            padded[..rest.len()].copy_from_slice(rest);
            &padded
        }
    };
    #[cfg(target_arch = "x86_64")]
    {
        sse2_word_bits(chunk)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        portable_word_bits(chunk)
    }
}

/// [`word_bits`] of 16 bytes with SSE2.
#[cfg(target_arch = "x86_64")]
fn sse2_word_bits(chunk: &[u8]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_set1_epi8,
    };
    assert!(chunk.len() >= 16);
    // SAFETY: SSE2 is always there on x86_64; the load is unaligned and of
    // 16 bytes of `chunk`, which has them.
    let space = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let blank = _mm_set1_epi8(b' ' as i8);
        // max(b, ' ') == ' ' exactly when b <= ' ' (unsigned).
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(v, blank), blank))
    };
    !(space as u32) & 0xFFFF
}

/// [`word_bits`] of 16 bytes, eight at a time: the high bit of each byte's
/// mark ([`word_marks`]) gathered into one byte by a multiplication, byte
/// `k`'s on bit `k`.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn portable_word_bits(chunk: &[u8]) -> u32 {
    let bits = |x: u64| ((word_marks(x) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
    bits(load8(chunk, 0)) | (bits(load8(chunk, 8)) << 8)
}

/// The PID whose word starts at `line[at]`: digits up to white space or the
/// end, that fit a `u32`.
fn pid_at(line: &[u8], at: usize) -> Option<u32> {
    let word = &line[at..];
    let end = word.iter().position(|&b| is_space(b)).unwrap_or(word.len());
    pid_of(&word[..end])
}

/// A PID: digits only, that fit a `u32`.
fn pid_of(w: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    for &d in w {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    (!w.is_empty()).then_some(v)
}

/// Splits `line` (without its newline) into fields by `layout`, or `None`
/// where [`command_start`] gives none: the edges of the words before
/// COMMAND note the fields the layout marks, and COMMAND is the rest of the
/// line without trailing white space.
fn split_row(line: &str, layout: &Layout) -> Option<Fields> {
    let mut marks: Marks = [0; 9];
    // Words ended so far.
    let mut count = 0;
    let mut command = None;
    'split: for (at, starts, mut edges) in Edges::new(line.as_bytes()) {
        while edges != 0 {
            let edge = at + byte_of(edges);
            let bit = edges & edges.wrapping_neg();
            if starts & bit == 0 {
                marks[usize::from(layout.end_mark[count])] = edge;
                count += 1;
            } else if count == layout.words {
                command = Some(edge);
                break 'split;
            } else {
                marks[usize::from(layout.start_mark[count])] = edge;
            }
            edges &= edges - 1;
        }
    }
    let range = |mark: u8| {
        let k = usize::from(mark);
        marks[k]..marks[k + 1]
    };
    let command = command?;
    Some(Fields {
        pid: pid_of(field(line, &range(PID_MARK)).as_bytes())?,
        user: range(USER_MARK),
        start: range(START_MARK),
        cpu_time: range(TIME_MARK),
        command: command..command + trim_command(line.get(command..)?).len(),
    })
}

/// COMMAND without the white space (and `\r`) that ends the line.
fn trim_command(command: &str) -> &str {
    command.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

/// Where the line starting at `at` ends: its newline, or the end of `b`.
/// Sixteen bytes a step; std's `memchr` costs more on lines this short.
fn line_end(b: &[u8], mut at: usize) -> usize {
    // 32 bytes a step with SSE2 (part of every x86_64): the lines of a
    // busy host's `ps auxww` are long (Java class paths), and every byte of
    // every line is looked at here.
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        while let Some(chunk) = b.get(at..at + 32) {
            // SAFETY: SSE2 is always there on x86_64; both loads are
            // unaligned and inside `chunk`.
            let found = unsafe {
                let nl = _mm_set1_epi8(b'\n' as i8);
                let lo = _mm_loadu_si128(chunk.as_ptr().cast());
                let hi = _mm_loadu_si128(chunk.as_ptr().add(16).cast());
                (_mm_movemask_epi8(_mm_cmpeq_epi8(lo, nl)) as u32)
                    | (_mm_movemask_epi8(_mm_cmpeq_epi8(hi, nl)) as u32) << 16
            };
            if found != 0 {
                return at + found.trailing_zeros() as usize;
            }
            at += 32;
        }
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const NEWLINES: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    // Bit 7 of each byte of `x` that is a newline; bytes above the first may
    // be marked wrongly, the lowest mark is always right.
    let marks = |x: u64| {
        let y = x ^ NEWLINES;
        y.wrapping_sub(ONES) & !y & HIGH
    };
    while let Some(chunk) = b.get(at..at + 16) {
        let (lo, hi) = chunk.split_at(8);
        let lo = marks(u64::from_le_bytes(lo.try_into().unwrap_or_default()));
        let hi = marks(u64::from_le_bytes(hi.try_into().unwrap_or_default()));
        if lo | hi != 0 {
            return at
                + if lo != 0 {
                    (lo.trailing_zeros() / 8) as usize
                } else {
                    8 + (hi.trailing_zeros() / 8) as usize
                };
        }
        at += 16;
    }
    b.get(at..)
        .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
        .map_or(b.len(), |i| at + i)
}

/// Whether a COMMAND may run ssh or autossh: a cheap test that passes every
/// command [`ssh_args::program_of`] accepts, and few others. Its first word
/// must end in `ssh`; where tree art (`\_`, `|`), busybox's `{comm}` or a
/// non-ASCII character comes first, the full test decides.
fn may_run_ssh(command: &str) -> bool {
    let b = command.as_bytes();
    if b.first()
        .is_some_and(|&c| !c.is_ascii() || matches!(c, b'\\' | b'|' | b'{'))
    {
        return true;
    }
    b[..first_word_end(b)].ends_with(b"ssh")
}

/// Where the first word of `b` ends: its first ASCII white space, or the
/// end. Every process line's program goes through this, so it looks 16
/// bytes a step for a byte up to `' '` ([`word_bits`]); only a control
/// character, which is no word's end, sends it on a byte at a time.
fn first_word_end(b: &[u8]) -> usize {
    let mut at = 0;
    while at < b.len() {
        let blank = !word_bits(b, at) & 0xFFFF;
        if blank != 0 {
            let end = (at + blank.trailing_zeros() as usize).min(b.len());
            if b.get(end).is_none_or(u8::is_ascii_whitespace) {
                return end;
            }
            // A control character: not white space to ssh's words.
            return end
                + b[end..]
                    .iter()
                    .position(u8::is_ascii_whitespace)
                    .unwrap_or(b.len() - end);
        }
        at += 16;
    }
    b.len()
}

/// Where a walk over the lines of a capture is: the layout of the last
/// header, the number of the last line, and the line lengths so far. It is
/// carried from one block of lines to the next, so a capture can be read a
/// piece at a time ([`PsReader`]).
#[derive(Debug, Default)]
struct Walker {
    header: Option<Layout>,
    number: usize,
    widths: Widths,
}

impl Walker {
    /// Walks the lines of `text`, a block that ends at a line end or at the
    /// end of the capture: `found` gets every process line (`only_ssh`: of
    /// those that [`may_run_ssh`]); `bad` gets the number
    /// of every line that is not one. Blank lines and headers are neither.
    fn walk<'a>(
        &mut self,
        text: &'a str,
        only_ssh: bool,
        mut found: impl FnMut(FoundLine<'a>),
        mut bad: impl FnMut(usize, &'a str),
    ) {
        let mut pos = 0;
        while pos < text.len() {
            self.number += 1;
            let end = line_end(text.as_bytes(), pos);
            let (line_at, line) = (pos, &text[pos..end]);
            pos = end + 1;
            // Before any header, each line's layout is guessed from its words.
            let guessed;
            let layout = match &self.header {
                Some(layout) => Some(layout),
                None => {
                    guessed = Layout::guess(line);
                    guessed.as_ref()
                }
            };
            let command_at = layout.and_then(|l| command_start(line.as_bytes(), l));
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some(at) = command_at else {
                if line.bytes().all(is_space) {
                    continue;
                }
                match Layout::from_header(line) {
                    Some(h) => self.header = Some(h),
                    None => bad(self.number, line),
                }
                continue;
            };
            let command = trim_command(line.get(at..).unwrap_or(""));
            self.widths.add(line.len(), command);
            // Most lines cannot be tunnels: they are only counted.
            if !only_ssh || may_run_ssh(command) {
                match layout.and_then(|l| split_row(line, l)) {
                    Some(fields) => found(FoundLine {
                        number: self.number,
                        at: line_at,
                        line,
                        fields,
                    }),
                    // Not dropped unseen: counted, and shown in the warning.
                    None => bad(self.number, line),
                }
            }
        }
    }
}

/// A process line a [`Walker`] found.
struct FoundLine<'a> {
    /// Its line number, from 1.
    number: usize,
    /// Where it starts in the block walked.
    at: usize,
    /// The line, without its line end.
    line: &'a str,
    /// Where its fields are in `line`.
    fields: Fields,
}

/// Line lengths of the process lines of a capture, to tell whether ps cut
/// them at a terminal's width.
#[derive(Debug, Default)]
struct Widths {
    rows: usize,
    /// The longest line, in bytes, and how many lines have that length.
    longest: usize,
    at_longest: usize,
    /// The program of the first line of that length, and whether lines of
    /// another program have it too.
    program: String,
    varied: bool,
}

impl Widths {
    fn add(&mut self, len: usize, command: &str) {
        self.rows += 1;
        if len < self.longest {
            return;
        }
        let program = command.split_ascii_whitespace().next().unwrap_or("");
        if len > self.longest {
            self.longest = len;
            self.at_longest = 1;
            self.program.clear();
            self.program.push_str(program);
            self.varied = false;
        } else {
            self.at_longest += 1;
            self.varied |= program != self.program;
        }
    }

    /// The width ps cut lines at, if it did: ps on a terminal (or with
    /// `COLUMNS`) cuts every longer line to exactly that width, so many
    /// lines of different programs share the greatest length. Uncut, the
    /// longest line is rarely matched, and then by lines of one program
    /// (the same tunnel started several times, a generated capture).
    fn cut_at(&self) -> Option<usize> {
        (self.varied && self.at_longest >= 3 && self.at_longest * 20 >= self.rows)
            .then_some(self.longest)
    }
}

/// A command line without its last word, which ps may have cut in the middle.
fn without_last_word(command: &str) -> &str {
    let t = command.trim_end();
    match t.rfind(|c: char| c.is_ascii_whitespace()) {
        Some(i) => t[..i].trim_end(),
        None => "",
    }
}

/// Splits a capture into processes; the count is of lines skipped as malformed.
#[cfg(test)]
pub(crate) fn parse_processes(text: &str) -> (Vec<Process>, usize) {
    let mut procs = Vec::new();
    let mut skipped = 0;
    Walker::default().walk(
        text,
        false,
        |found| procs.push(found.fields.to_process(found.line)),
        |_, _| skipped += 1,
    );
    (procs, skipped)
}

/// The tunnels one process holds (none unless it is an ssh/autossh with
/// forwards). This looks at the one process only: see [`tunnels_of_all`]
/// for autossh.
#[cfg(test)]
pub(crate) fn tunnels_of(p: &Process) -> Vec<Tunnel> {
    let Some(inv) = ssh_args::parse_command(&p.command) else {
        return Vec::new();
    };
    let found = Found {
        line: 0,
        pid: p.pid,
        user: &p.user,
        start: &p.start,
        cpu_time: &p.cpu_time,
        inv,
    };
    let mut out = Vec::new();
    found.push_tunnels(&mut out);
    out
}

/// The tunnels of a whole process list, each forward once (autossh and
/// its ssh child: see the module doc).
#[cfg(test)]
pub(crate) fn tunnels_of_all(procs: &[Process]) -> Vec<Tunnel> {
    let found: Vec<Found> = procs
        .iter()
        .filter_map(|p| {
            Some(Found {
                line: 0,
                pid: p.pid,
                user: &p.user,
                start: &p.start,
                cpu_time: &p.cpu_time,
                inv: ssh_args::parse_command(&p.command)?,
            })
        })
        .collect();
    resolve(found)
}

/// A process read from `/proc` instead of `ps`: its exact arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ArgvProcess {
    pub pid: u32,
    pub(crate) user: String,
    pub start: String,
    pub cpu_time: String,
    pub argv: Vec<String>,
}

/// The tunnels of processes known by their arguments, each forward once
/// (autossh and its ssh child, as for a capture).
pub(crate) fn tunnels_of_argv(procs: &[ArgvProcess]) -> Vec<Tunnel> {
    let found = procs
        .iter()
        .filter_map(|p| {
            Some(Found {
                line: 0,
                pid: p.pid,
                user: &p.user,
                start: &p.start,
                cpu_time: &p.cpu_time,
                inv: ssh_args::parse_argv(&p.argv)?,
            })
        })
        .filter(|f| !f.inv.forwards.is_empty() || !f.inv.bad.is_empty())
        .collect();
    resolve(found)
}

/// Parses the text of a `ps` capture.
pub fn parse_ps(text: &str) -> PsOutcome {
    parse_ps_with(text, |_, _| None)
}

/// Like [`parse_ps`], but asks `exact_argv(pid, command)` for a process's
/// exact arguments (live mode reads `/proc/PID/cmdline`). Where it gives
/// them, ssh's grammar reads them directly, with no guessing about words
/// that `ps` joined with spaces; where it gives `None`, the `ps` text is read.
pub(crate) fn parse_ps_with(
    text: &str,
    exact_argv: impl Fn(u32, &str) -> Option<Vec<String>>,
) -> PsOutcome {
    // The whole capture is at hand: the ssh lines are read where they are.
    let mut reader = PsReader::default();
    reader.walk(text, false);
    reader.outcome(text, exact_argv)
}

/// Reads a `ps` capture from `r` (a file, stdin, the pipe from `ps`) a
/// buffer at a time ([`lines::read_lines`]) and parses it as it comes: the
/// same outcome as [`parse_ps`] on the whole text, whose bytes that are not
/// UTF-8 would be read as U+FFFD.
pub(crate) fn read_ps(r: impl Read) -> io::Result<PsOutcome> {
    Ok(PsReader::read(r, lines::CHUNK)?.finish())
}

/// A `ps` capture being parsed a block of lines at a time: what a walk
/// over the lines so far keeps for the end, when it is known whether ps
/// cut the lines, and autossh lines can be matched with their
/// ssh children wherever they were.
///
/// It keeps, for the ssh and autossh lines only, their fields (copied into
/// one string), and of the lines that are not process lines their count
/// and the first [`MAX_PROBLEMS`], shortened for a message: later ones
/// cannot be among the problems reported (those are the first by line).
#[derive(Debug, Default)]
pub(crate) struct PsReader {
    walker: Walker,
    /// The fields of the ssh and autossh lines, one after the other.
    kept: String,
    /// The ssh and autossh lines: line number, length, and where their
    /// fields are in `kept` (or in the capture, for [`parse_ps_with`]).
    rows: Vec<(usize, usize, Fields)>,
    skipped: usize,
    /// The first [`MAX_PROBLEMS`] lines that are not process lines.
    bad_lines: Vec<(usize, String)>,
}

impl PsReader {
    /// Reads all of `r` through a buffer of `chunk` bytes (see
    /// [`lines::read_lines`]).
    pub(crate) fn read(r: impl Read, chunk: usize) -> io::Result<PsReader> {
        // Room for the ssh lines of a busy gateway from the start: growing
        // copies what is kept and, with musl's malloc, maps fresh pages
        // each time.
        let mut reader = PsReader {
            kept: String::with_capacity(chunk),
            rows: Vec::with_capacity(1024),
            ..PsReader::default()
        };
        lines::read_lines(r, chunk, |block| reader.add(block))?;
        Ok(reader)
    }

    /// Parses the lines of `block`, which follows the blocks added before
    /// and ends at a line end (`\n`) or at the end of the capture.
    pub(crate) fn add(&mut self, block: &str) {
        self.walk(block, true);
    }

    /// The walk of [`PsReader::add`]. With `copy`, the fields of ssh lines
    /// are copied into `kept`; without, their place in `block` is noted, and
    /// `block` must be the whole capture.
    fn walk(&mut self, block: &str, copy: bool) {
        let PsReader {
            walker,
            kept,
            rows,
            skipped,
            bad_lines,
        } = self;
        walker.walk(
            block,
            true,
            |found| {
                let (line, f) = (found.line, found.fields);
                if ssh_args::program_of(field(line, &f.command)).is_none() {
                    return;
                }
                let f = if copy {
                    let mut keep = |r: &Range<usize>| {
                        let start = kept.len();
                        kept.push_str(field(line, r));
                        start..kept.len()
                    };
                    Fields {
                        pid: f.pid,
                        user: keep(&f.user),
                        start: keep(&f.start),
                        cpu_time: keep(&f.cpu_time),
                        command: keep(&f.command),
                    }
                } else {
                    f.moved(found.at)
                };
                rows.push((found.number, line.len(), f));
            },
            |line, bad| {
                *skipped += 1;
                if bad_lines.len() < MAX_PROBLEMS {
                    bad_lines.push((line, clip(bad)));
                }
            },
        );
    }

    /// The pids of the ssh and autossh lines read so far, in order.
    pub(crate) fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.rows.iter().map(|(_, _, f)| f.pid)
    }

    /// The outcome of the capture added so far, which ends there.
    pub(crate) fn finish(self) -> PsOutcome {
        self.finish_with(|_, _| None)
    }

    /// Like [`PsReader::finish`], reading the commands as
    /// [`parse_ps_with`] does.
    pub(crate) fn finish_with(
        mut self,
        exact_argv: impl Fn(u32, &str) -> Option<Vec<String>>,
    ) -> PsOutcome {
        let kept = std::mem::take(&mut self.kept);
        self.outcome(&kept, exact_argv)
    }

    /// The outcome, with the fields of the rows in `text`.
    fn outcome(
        self,
        text: &str,
        exact_argv: impl Fn(u32, &str) -> Option<Vec<String>>,
    ) -> PsOutcome {
        let mut out = PsOutcome::default();
        let cut_at = self.walker.widths.cut_at();
        let mut problems: Vec<(usize, String)> = Vec::new();
        // At most one per row: reserved rather than grown (see
        // PsReader::read).
        let mut found: Vec<Found> = Vec::with_capacity(self.rows.len());
        // The line of the first ssh or autossh process.
        let mut first = None;
        for (line, len, f) in &self.rows {
            let (line, pid) = (*line, f.pid);
            let mut command = field(text, &f.command);
            let cut = cut_at == Some(*len);
            if cut {
                // The last word may be cut short: a forward spec that lost
                // digits would still parse. The forwards before it are
                // reported, with the destination empty when ps cut it off.
                command = without_last_word(command);
            }
            let inv = match exact_argv(pid, command) {
                Some(argv) => ssh_args::parse_argv(&argv).map(Invocation::into_owned),
                None if cut => ssh_args::parse_cut_command(command),
                None => ssh_args::parse_command(command),
            };
            let Some(inv) = inv else {
                continue;
            };
            if inv.dest.is_empty() {
                let what = if cut {
                    "ps cut the line before the destination: the forwards shown in full are reported without it"
                } else {
                    "ssh command line without a destination (cut short by ps?): no tunnel reported"
                };
                problems.push((line, format!("pid {pid}: {what}")));
            }
            first.get_or_insert(line);
            if inv.forwards.is_empty() && inv.bad.is_empty() {
                continue; // nothing to report, and no child for an autossh line
            }
            found.push(Found {
                line,
                pid,
                user: field(text, &f.user),
                start: field(text, &f.start),
                cpu_time: field(text, &f.cpu_time),
                inv,
            });
        }
        if let (Some(width), Some(first)) = (cut_at, first) {
            problems.push((
                first,
                format!("ps cut lines at {width} characters (use ps auxww): ssh command lines of that length lose their last word"),
            ));
        }
        // Problems in line order.
        out.skipped = self.skipped;
        for (line, text) in self.bad_lines {
            problems.push((line, format!("not a process line: '{text}'")));
        }
        for f in &found {
            out.bad_forwards += f.inv.bad.len();
            for b in f.inv.bad.iter().take(MAX_PROBLEMS) {
                problems.push((f.line, format!("{b} (pid {})", f.pid)));
            }
        }
        problems.sort_by_key(|p| p.0);
        for (line, message) in problems {
            out.problem(line, || message);
        }
        out.tunnels = resolve(found);
        out
    }
}

/// At most 80 characters of a line, for a message.
fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// An ssh or autossh process and what its command line sets up.
struct Found<'a> {
    line: usize,
    pid: u32,
    user: &'a str,
    start: &'a str,
    cpu_time: &'a str,
    inv: Invocation<'a>,
}

impl Found<'_> {
    fn push_tunnels(self, out: &mut Vec<Tunnel>) {
        for f in self.inv.forwards {
            out.push(Tunnel {
                pid: self.pid,
                user: self.user.to_string(),
                kind: f.kind,
                bind: f.bind.into_owned(),
                listen_port: f.listen_port,
                target_host: f.target_host.into_owned(),
                target_port: f.target_port,
                dest: self.inv.dest.to_string(),
                started: None,
                start: self.start.to_string(),
                cpu_time: self.cpu_time.to_string(),
                listening: Health::Unknown,
                vnc: Health::Unknown,
                connections: None,
                connected: Vec::new(),
            });
        }
    }
}

/// The records of all found processes, dropping autossh lines whose ssh
/// child is in the list too.
fn resolve(found: Vec<Found>) -> Vec<Tunnel> {
    let keep: Vec<bool> = {
        // The forwards of the ssh lines, by user and destination, for those
        // an autossh line has (most captures have no autossh at all).
        let mut ssh_by_key: HashMap<(&str, &str), Vec<&[Forward]>> = found
            .iter()
            .filter(|f| f.inv.program == Program::Autossh)
            .map(|f| ((f.user, &*f.inv.dest), Vec::new()))
            .collect();
        if !ssh_by_key.is_empty() {
            for f in &found {
                if f.inv.program == Program::Ssh
                    && !f.inv.forwards.is_empty()
                    && let Some(children) = ssh_by_key.get_mut(&(f.user, &*f.inv.dest))
                {
                    children.push(&f.inv.forwards);
                }
            }
        }
        let child_present = |f: &Found| {
            ssh_by_key
                .get(&(f.user, &*f.inv.dest))
                .is_some_and(|children| children.iter().any(|c| holds_all(c, &f.inv.forwards)))
        };
        found
            .iter()
            .map(|f| f.inv.program != Program::Autossh || !child_present(f))
            .collect()
    };
    let mut out = Vec::with_capacity(found.iter().map(|f| f.inv.forwards.len()).sum());
    for (f, keep) in found.into_iter().zip(keep) {
        if keep {
            f.push_tunnels(&mut out);
        }
    }
    out
}

/// Whether `child` holds every forward of `parent` (a set when both are
/// long, so that hostile captures stay linear).
fn holds_all(child: &[Forward], parent: &[Forward]) -> bool {
    if child.len() <= ssh_args::FEW || parent.len() <= ssh_args::FEW {
        return parent.iter().all(|f| child.contains(f));
    }
    let set: HashSet<&Forward> = child.iter().collect();
    parent.iter().all(|f| set.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `4934 root L []:5901 [h]:5901 gw 21:27 0:00`, one line per record.
    fn render(t: &Tunnel) -> String {
        let mut s = format!(
            "{} {} {} [{}]:{}",
            t.pid,
            t.user,
            t.kind.letter(),
            t.bind,
            t.listen_port
        );
        if !t.target_host.is_empty() || t.target_port != 0 {
            s.push_str(&format!(" [{}]:{}", t.target_host, t.target_port));
        }
        s.push_str(&format!(" {} {} {}", t.dest, t.start, t.cpu_time));
        s.trim_end().to_string()
    }

    /// Parses a capture and compares its records and skipped-line count.
    #[track_caller]
    fn check(capture: &str, skipped: usize, expected: &[&str]) {
        let out = parse_ps(capture);
        let got: Vec<String> = out.tunnels.iter().map(render).collect();
        assert_eq!(got, expected, "capture:\n{capture}");
        assert_eq!(
            out.skipped, skipped,
            "skipped lines; problems: {:?}",
            out.problems
        );
        for t in &out.tunnels {
            assert_eq!(t.started, None);
            assert_eq!(t.listening, Health::Unknown);
            assert_eq!(t.vnc, Health::Unknown);
        }
    }

    // Lines of real captures (procps 4.0.2 and busybox 1.35 on Debian 12),
    // with ssh processes started for the purpose.
    const AUX: &str = "\
USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root         1  0.0  0.0  44816 17044 ?        S<Ll 20:29   0:02 /process_api --firecracker-init --addr 0.0.0.0:2024
root         2  0.0  0.0      0     0 ?        S    20:29   0:00 [kthreadd]
root     21419  0.0  0.0  15456  9100 ?        S    21:22   0:00 sshd: /usr/sbin/sshd -D -f /tmp/psfix.Wifptv/sshd_config -E /tmp/psfix.Wifptv/sshd.log [listener] 0 of 100-100 startups
root     21474  0.0  0.0  16676  9876 ?        Ss   21:22   0:00 sshd: novacr01 [priv]
root     21483  0.0  0.0  11232  3508 ?        Ss   21:22   0:00 ssh -i /tmp/psfix.Wifptv/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -N -f -L 5900:localhost:5951 novacr01@127.0.0.1 -p 42801
novacr01 21484  0.0  0.0  16936  5700 ?        S    21:22   0:00 sshd: novacr01
novacr01 21557  0.0  0.0  11232  3500 ?        Ss   21:22   0:00 ssh -olocalforward=[::1]:5909 localhost:5959 -o LocalForward = 5910 localhost:5960 -fN novadaq-far-master-01
novacr01 21614  0.0  0.0  11232  3668 ?        Ss   21:22   0:00 ssh -fN -R 0:localhost:5906 -R 6906 -R 0 novadaq-far-gateway-01
novacr01 21635  0.1  0.0  11232  8076 ?        S    21:22   0:00 ssh -l novacr01 -p 42801 -W [localhost]:42801 127.0.0.1
root     21685  0.0  0.0   3908  1976 ?        S    21:22   0:00 grep -E ^(local|remote|dynamic)forward 
novacr01 21691  0.0  0.0  11232  3780 ?        Ss   21:22   0:00 ssh -f -L 5923:localhost:5973 novadaq-far-master-02 sleep 100000; echo -L 5924:localhost:5974 -G
root      4934  0.0  0.0   2940  1920 ?        S    21:27   0:00 bin/ssh -fNL 5901:novadaq-far-master-02:5901 novacr01@novadaq-far-gateway-01
root      4935  0.0  0.0   2940  1924 ?        S    21:27   0:00 bin/ssh -o LocalForward 5902 novadaq-far-master-02:5902 -N gw
root      4936  0.0  0.0   2940  1948 ?        S    21:27   0:00 bin/ssh -L 5903:h:5951 gw sleep 100 -L 5904:h:5952
root      4937  0.0  0.0   2492  1688 ?        S    21:27   0:00 /usr/lib/autossh/autossh -M 20000 -N -L 5905:h:5955 gw
root      4938  0.0  0.0   4360  3128 ?        S    21:27   0:00 bash -c /tmp/parser-fake/bin/ssh -D 1080 gw; true
root      4939  0.0  0.0   2940  1832 ?        S    21:27   0:00 /tmp/parser-fake/bin/ssh -L 20000:127.0.0.1:20000 -R 20000:127.0.0.1:20001 -N -L 5905:h:5955 gw
root      4940  0.0  0.0   2940  1848 ?        S    21:27   0:00 /tmp/parser-fake/bin/ssh -D 1080 gw
";

    const AUX_TUNNELS: &[&str] = &[
        "21483 root L []:5900 [localhost]:5951 127.0.0.1 21:22 0:00",
        "21557 novacr01 L [::1]:5909 [localhost]:5959 novadaq-far-master-01 21:22 0:00",
        "21557 novacr01 L []:5910 [localhost]:5960 novadaq-far-master-01 21:22 0:00",
        "21614 novacr01 R []:0 [localhost]:5906 novadaq-far-gateway-01 21:22 0:00",
        "21614 novacr01 R []:6906 novadaq-far-gateway-01 21:22 0:00",
        "21614 novacr01 R []:0 novadaq-far-gateway-01 21:22 0:00",
        "21691 novacr01 L []:5923 [localhost]:5973 novadaq-far-master-02 21:22 0:00",
        "4934 root L []:5901 [novadaq-far-master-02]:5901 novadaq-far-gateway-01 21:27 0:00",
        "4935 root L []:5902 [novadaq-far-master-02]:5902 gw 21:27 0:00",
        "4936 root L []:5903 [h]:5951 gw 21:27 0:00",
        "4939 root L []:20000 [127.0.0.1]:20000 gw 21:27 0:00",
        "4939 root R []:20000 [127.0.0.1]:20001 gw 21:27 0:00",
        "4939 root L []:5905 [h]:5955 gw 21:27 0:00",
        "4940 root D []:1080 gw 21:27 0:00",
    ];

    #[test]
    fn procps_aux() {
        check(AUX, 0, AUX_TUNNELS);
    }

    #[test]
    fn procps_aux_through_grep_without_header() {
        let grepped: String = AUX.lines().skip(1).map(|l| format!("{l}\n")).collect();
        check(&grepped, 0, AUX_TUNNELS);
    }

    #[test]
    fn procps_auxf_tree() {
        check(
            "\
USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root      4937  0.0  0.0   2492  1688 ?        S    21:27   0:00 /usr/lib/autossh/autossh -M 20000 -N -L 5905:h:5955 gw
root      4939  0.0  0.0   2940  1832 ?        S    21:27   0:00  \\_ /tmp/parser-fake/bin/ssh -L 20000:127.0.0.1:20000 -R 20000:127.0.0.1:20001 -N -L 5905:h:5955 gw
root      4938  0.0  0.0   4360  3128 ?        S    21:27   0:00 bash -c /tmp/parser-fake/bin/ssh -D 1080 gw; true
root      4940  0.0  0.0   2940  1848 ?        S    21:27   0:00  \\_ /tmp/parser-fake/bin/ssh -D 1080 gw
",
            0,
            &[
                "4939 root L []:20000 [127.0.0.1]:20000 gw 21:27 0:00",
                "4939 root R []:20000 [127.0.0.1]:20001 gw 21:27 0:00",
                "4939 root L []:5905 [h]:5955 gw 21:27 0:00",
                "4940 root D []:1080 gw 21:27 0:00",
            ],
        );
    }

    #[test]
    fn start_column_forms_and_cut_user_names() {
        check(
            "\
USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
novacr0+  4242  0.0  0.0  11232  3500 ?        Ss   Apr04   1:56 ssh -fN -L 5900:novadaq-far-master-02:5951 novadaq-far-gateway-01
novacr0+  4243  0.0  0.0  11232  3500 ?        Ss    2016  12:01 ssh -fN -L 5901:novadaq-far-master-02:5952 novadaq-far-gateway-01
1000      4244  0.1  0.0  11232  3500 pts/3    S+   21:06   0:00 ssh -L 5902:h:5953 gw
",
            0,
            &[
                "4242 novacr0+ L []:5900 [novadaq-far-master-02]:5951 novadaq-far-gateway-01 Apr04 1:56",
                "4243 novacr0+ L []:5901 [novadaq-far-master-02]:5952 novadaq-far-gateway-01 2016 12:01",
                "4244 1000 L []:5902 [h]:5953 gw 21:06 0:00",
            ],
        );
    }

    #[test]
    fn busybox_formats() {
        let tunnels = [
            "4934 root L []:5901 [novadaq-far-master-02]:5901 novadaq-far-gateway-01",
            "4935 root L []:5902 [novadaq-far-master-02]:5902 gw",
            "4939 root L []:20000 [127.0.0.1]:20000 gw",
            "4939 root R []:20000 [127.0.0.1]:20001 gw",
            "4939 root L []:5905 [h]:5955 gw",
            "4940 root D []:1080 gw",
        ];
        let plain = "\
PID   USER     COMMAND
    1 root     /process_api --firecracker-init --addr 0.0.0.0:2024
    2 root     [kthreadd]
21474 root     sshd: novacr01 [priv]
 4934 root     bin/ssh -fNL 5901:novadaq-far-master-02:5901 novacr01@novadaq-far-gateway-01
 4935 root     bin/ssh -o LocalForward 5902 novadaq-far-master-02:5902 -N gw
 4937 root     /usr/lib/autossh/autossh -M 20000 -N -L 5905:h:5955 gw
 4938 root     bash -c /tmp/parser-fake/bin/ssh -D 1080 gw; true
 4939 root     /tmp/parser-fake/bin/ssh -L 20000:127.0.0.1:20000 -R 20000:127.0.0.1:20001 -N -L 5905:h:5955 gw
 4940 root     /tmp/parser-fake/bin/ssh -D 1080 gw
";
        check(plain, 0, &tunnels);
        let grepped: String = plain.lines().skip(1).map(|l| format!("{l}\n")).collect();
        check(&grepped, 0, &tunnels);
        let vsz = "\
PID   USER     VSZ  STAT COMMAND
    1 root      41m S<   /process_api --firecracker-init --addr 0.0.0.0:2024
    2 root        0 SW   [kthreadd]
 4934 root     2940 S    bin/ssh -fNL 5901:novadaq-far-master-02:5901 novacr01@novadaq-far-gateway-01
 4935 root     2940 S    bin/ssh -o LocalForward 5902 novadaq-far-master-02:5902 -N gw
 4937 root     2492 S    /usr/lib/autossh/autossh -M 20000 -N -L 5905:h:5955 gw
 4938 root     4360 S    bash -c /tmp/parser-fake/bin/ssh -D 1080 gw; true
 4939 root     2940 S    /tmp/parser-fake/bin/ssh -L 20000:127.0.0.1:20000 -R 20000:127.0.0.1:20001 -N -L 5905:h:5955 gw
 4940 root     2940 S    /tmp/parser-fake/bin/ssh -D 1080 gw
";
        check(vsz, 0, &tunnels);
        let grepped: String = vsz.lines().skip(1).map(|l| format!("{l}\n")).collect();
        check(&grepped, 0, &tunnels);
        // The older default layout, right-aligned PID, and the TIME layout.
        check(
            "  PID USER       VSZ STAT COMMAND\n  812 novacr01  2940 S    ssh -N -L 5900:h:5951 gw\n",
            0,
            &["812 novacr01 L []:5900 [h]:5951 gw"],
        );
        check(
            "PID   USER     TIME  COMMAND\n  812 novacr01  0:03 ssh -N -L 5900:h:5951 gw\n",
            0,
            &["812 novacr01 L []:5900 [h]:5951 gw  0:03"],
        );
        check(
            "  812 novacr01  0:03 ssh -N -L 5900:h:5951 gw\n",
            0,
            &["812 novacr01 L []:5900 [h]:5951 gw  0:03"],
        );
    }

    #[test]
    fn other_procps_layouts() {
        check(
            "\
UID        PID  PPID  C STIME TTY          TIME CMD
root      4939  4937  0 21:27 ?        00:00:00 /tmp/parser-fake/bin/ssh -L 20000:127.0.0.1:20000 -R 20000:127.0.0.1:20001 -N -L 5905:h:5955 gw
root      4940  4938  0 21:27 ?        00:00:00 /tmp/parser-fake/bin/ssh -D 1080 gw
",
            0,
            &[
                "4939 root L []:20000 [127.0.0.1]:20000 gw 21:27 00:00:00",
                "4939 root R []:20000 [127.0.0.1]:20001 gw 21:27 00:00:00",
                "4939 root L []:5905 [h]:5955 gw 21:27 00:00:00",
                "4940 root D []:1080 gw 21:27 00:00:00",
            ],
        );
        check(
            "root      4940  4938  0 Apr04 ?        00:00:00 /tmp/parser-fake/bin/ssh -D 1080 gw\n",
            0,
            &["4940 root D []:1080 gw Apr04 00:00:00"],
        );
        check(
            "\
  PID USER                      STARTED     TIME COMMAND
 4940 root     Mon Nov 23 21:27:17 2026 00:00:00 /tmp/parser-fake/bin/ssh -D 1080 gw
",
            0,
            &["4940 root D []:1080 gw Mon Nov 23 21:27:17 2026 00:00:00"],
        );
    }

    #[test]
    fn autossh_reported_once() {
        let parent = "root      4937  0.0  0.0   2492  1688 ?        S    21:27   0:00 /usr/lib/autossh/autossh -M 20000 -N -L 5905:h:5955 gw\n";
        let child = "root      4939  0.0  0.0   2940  1832 ?        S    21:27   0:00 /tmp/parser-fake/bin/ssh -L 20000:127.0.0.1:20000 -R 20000:127.0.0.1:20001 -N -L 5905:h:5955 gw\n";
        // Child present: its forwards only.
        check(
            &format!("{parent}{child}"),
            0,
            &[
                "4939 root L []:20000 [127.0.0.1]:20000 gw 21:27 0:00",
                "4939 root R []:20000 [127.0.0.1]:20001 gw 21:27 0:00",
                "4939 root L []:5905 [h]:5955 gw 21:27 0:00",
            ],
        );
        // Child between restarts: autossh's own forwards.
        check(parent, 0, &["4937 root L []:5905 [h]:5955 gw 21:27 0:00"]);
        // An ssh of another user or to another host is not its child.
        let other = child.replacen("root ", "alice", 1);
        check(
            &format!("{parent}{other}"),
            0,
            &[
                "4937 root L []:5905 [h]:5955 gw 21:27 0:00",
                "4939 alice L []:20000 [127.0.0.1]:20000 gw 21:27 0:00",
                "4939 alice R []:20000 [127.0.0.1]:20001 gw 21:27 0:00",
                "4939 alice L []:5905 [h]:5955 gw 21:27 0:00",
            ],
        );
        // The same through tunnels_of_all, from processes.
        let (procs, _) = parse_processes(&format!("{parent}{child}"));
        assert_eq!(tunnels_of_all(&procs).len(), 3);
        assert_eq!(tunnels_of(&procs[0]).len(), 1);
    }

    #[test]
    fn lines_cut_at_a_terminal_width() {
        // AUX as ps prints it on a 100-column terminal: every longer line
        // is cut to exactly 100 characters.
        let cut: String = AUX
            .lines()
            .map(|l| format!("{}\n", &l[..l.len().min(100)]))
            .collect();
        // Once the possibly cut last word is set aside, every forward shown
        // in full is reported: `bin/ssh -L 5903:h:5951 gw sleep 1[00]` with
        // its destination; `-R 0:localhost:5906 -R 6906` keeps the first
        // (6906 may have lost digits, and the `-R` before it has no value
        // then), and `-L 5923:localhost:5973 novad` its forward, both
        // without the destination ps cut off. `.../bin/ssh -D 1080 gw` is
        // exactly 100 characters long, so it cannot be told from a cut line:
        // its forward is reported without `gw`. The other ssh lines were
        // cut before their first forward was whole.
        check(
            &cut,
            0,
            &[
                "21614 novacr01 R []:0 [localhost]:5906  21:22 0:00",
                "21691 novacr01 L []:5923 [localhost]:5973  21:22 0:00",
                "4936 root L []:5903 [h]:5951 gw 21:27 0:00",
                "4940 root D []:1080  21:27 0:00",
            ],
        );
        let out = parse_ps(&cut);
        assert!(
            out.problems
                .iter()
                .any(|p| p.message.starts_with("ps cut lines at 100 characters")),
            "{:?}",
            out.problems
        );
        // Uncut, the same lines all report.
        check(AUX, 0, AUX_TUNNELS);
        // Lines of one length are not cut when they all run one program
        // (here: the same tunnel command for many accounts).
        let same: String = (0..30)
            .map(|i| {
                format!(
                    "novacr{i:02}   {:>6}  0.0  0.0  14540  5628 ?        Ss   Nov22   0:01 ssh -N -L {}:h:5951 gw\n",
                    10_000 + i,
                    20_000 + i
                )
            })
            .collect();
        assert_eq!(parse_ps(&same).tunnels.len(), 30);
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let capture = "\
USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root     21483  0.0  0.0  11232  3508 ?        Ss   21:22   0:00 ssh -N -L 5900:h:5951 gw

root     xx483  0.0  0.0  11232  3508 ?        Ss   21:22   0:00 ssh -N -L 5901:h:5951 gw
root     21484  0.0  0.0  11232
$ ps aux | grep ssh
root     99999999999  0.0  0.0  11232  3508 ?        Ss   21:22   0:00 ssh -N -L 5902:h:5951 gw
   \t  \r
novacr01 21485  0.0  0.0  11232  3508 ?        Ss   21:22   0:00 ssh -N -L 5900:h gw -L 5903:h:5953\r
";
        check(
            capture,
            4,
            &[
                "21483 root L []:5900 [h]:5951 gw 21:22 0:00",
                "21485 novacr01 L []:5903 [h]:5953 gw 21:22 0:00",
            ],
        );
        let out = parse_ps(capture);
        assert_eq!(out.bad_forwards, 1);
        let problems: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            problems,
            [
                "4: not a process line: 'root     xx483  0.0  0.0  11232  3508 ?        Ss   21:22   0:00 ssh -N -L 5901:...'",
                "5: not a process line: 'root     21484  0.0  0.0  11232'",
                "6: not a process line: '$ ps aux | grep ssh'",
                "7: not a process line: 'root     99999999999  0.0  0.0  11232  3508 ?        Ss   21:22   0:00 ssh -N -L...'",
                "9: bad -L spec '5900:h' (pid 21485)",
            ]
        );
        // Without a header, lines that fit no layout are skipped too.
        check("hello\nssh -L 1:h:2 gw\n\n", 2, &[]);
    }

    #[test]
    fn empty_and_header_only() {
        check("", 0, &[]);
        check("\n\n", 0, &[]);
        check(
            "USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n",
            0,
            &[],
        );
    }

    #[test]
    fn processes_keep_what_ps_printed() {
        let (procs, skipped) = parse_processes(
            "\
USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
novacr0+  4242  0.0  0.0  11232  3500 ?        Ss   Apr04   1:56 /usr/lib/autossh/autossh    -M 20000 -N  -L 5900:h:5951 gw
root         2  0.0  0.0      0     0 ?        S    20:29   0:00 [kthreadd]
bad line
",
        );
        assert_eq!(skipped, 1);
        assert_eq!(
            procs[0],
            Process {
                user: "novacr0+".into(),
                pid: 4242,
                start: "Apr04".into(),
                cpu_time: "1:56".into(),
                command: "/usr/lib/autossh/autossh    -M 20000 -N  -L 5900:h:5951 gw".into(),
            }
        );
        assert_eq!(procs[1].command, "[kthreadd]");
        assert_eq!(procs.len(), 2);
    }

    #[test]
    fn very_long_lines() {
        let mut cmd = String::from("ssh -N");
        for i in 0..20_000 {
            cmd.push_str(&format!(" -L {}:h:{}", 1 + i % 60_000, 5900 + i % 100));
        }
        cmd.push_str(" gw");
        let line = format!("root 1 0.0 0.0 1 1 ? S 21:22 0:00 {cmd}\n");
        let out = parse_ps(&line);
        assert_eq!(out.tunnels.len(), 20_000);
        let junk = format!(
            "root 1 0.0 0.0 1 1 ? S 21:22 0:00 ssh {}\n",
            "x".repeat(1 << 20)
        );
        assert!(parse_ps(&junk).tunnels.is_empty());
        // 60,000 forwards, many equal, in an autossh and its child: linear.
        let many: String = (0..60_000)
            .map(|i| format!(" -L {}:h:{}", 1 + i % 30_000, 5900 + i % 100))
            .collect();
        let capture = format!(
            "root 1 0.0 0.0 1 1 ? S 21:22 0:00 autossh -M 0{many} gw\n\
             root 2 0.0 0.0 1 1 ? S 21:22 0:00 ssh{many} gw\n"
        );
        let out = parse_ps(&capture);
        assert_eq!(out.tunnels.len(), 30_000);
        assert!(out.tunnels.iter().all(|t| t.pid == 2));
    }

    /// The obvious way to split `ps aux` lines, to check the fast one against.
    fn naive_processes(text: &str) -> (Vec<Process>, usize) {
        let mut procs = Vec::new();
        let mut skipped = 0;
        for line in text.split('\n').skip(1) {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.bytes().all(is_space) {
                continue;
            }
            let b = line.as_bytes();
            let mut words = Vec::new();
            let mut i = 0;
            while words.len() < 10 {
                while i < b.len() && is_space(b[i]) {
                    i += 1;
                }
                let s = i;
                while i < b.len() && !is_space(b[i]) {
                    i += 1;
                }
                if s == i {
                    break;
                }
                words.push(&line[s..i]);
            }
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            let command = line[i..].trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
            let pid = words
                .get(1)
                .filter(|p| is_number(p))
                .and_then(|p| p.parse().ok());
            match pid {
                Some(pid) if words.len() == 10 && !command.is_empty() => procs.push(Process {
                    user: words[0].into(),
                    pid,
                    start: words[8].into(),
                    cpu_time: words[9].into(),
                    command: command.into(),
                }),
                _ => skipped += 1,
            }
        }
        (procs, skipped)
    }

    #[test]
    fn fast_split_agrees_with_naive_on_real_lines() {
        let text = format!("{AUX}root 1 0.0 0.0 1 1 ? S 21:22 0:00 x\n\nroot 2\tx");
        assert_eq!(parse_processes(&text), naive_processes(&text));
    }

    proptest::proptest! {
        /// The word bits of 16 bytes, every way they are computed, are
        /// those of a byte-by-byte look.
        #[test]
        fn word_bits_agree(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            for at in 0..bytes.len() {
                let naive = (0..16)
                    .filter(|k| bytes.get(at + k).is_some_and(|&b| !is_space(b)))
                    .fold(0u32, |m, k| m | (1 << k));
                proptest::prop_assert_eq!(word_bits(&bytes, at), naive);
                let mut padded = [0u8; 16];
                let rest = &bytes[at..bytes.len().min(at + 16)];
                padded[..rest.len()].copy_from_slice(rest);
                proptest::prop_assert_eq!(portable_word_bits(&padded), naive);
            }
        }
    }

    proptest::proptest! {
        /// The end of the first word, 16 bytes a step, is where a
        /// byte-by-byte look for ASCII white space finds it, control
        /// characters included.
        #[test]
        fn first_word_end_agrees(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b's', b'h', b' ', b'\t', b'\n', 0x0b, 0x01, 0, b'\r', 0x0c, 0xc3]),
                0..70,
            )
        ) {
            let naive = bytes.iter().position(u8::is_ascii_whitespace).unwrap_or(bytes.len());
            proptest::prop_assert_eq!(first_word_end(&bytes), naive);
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_split_agrees_with_naive(
            lines in proptest::collection::vec(
                "([a-z+]{1,9}|[0-9]{1,12}|[ \t]{1,3}|[0-9.:]{1,8}|é|ssh|-L|\\?|x{60,130}){0,40}",
                0..12,
            )
        ) {
            let text = format!("{}\n{}", AUX.lines().next().unwrap_or(""), lines.join("\n"));
            let naive = naive_processes(&text);
            // parse_ps only checks the shape of lines that cannot be
            // tunnels: it must skip the same lines.
            proptest::prop_assert_eq!(parse_ps(&text).skipped, naive.1);
            proptest::prop_assert_eq!(parse_processes(&text), naive);
        }

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_ps(&text);
            let _ = parse_processes(&text);
        }

        #[test]
        fn never_panics_on_ps_like_lines(
            lines in proptest::collection::vec(
                "(USER +PID .*COMMAND|PID +USER +(TIME|VSZ STAT)? *COMMAND|[a-z0-9+]{0,9} +[0-9]{0,6} +[0-9.:a-zA-Z ]{0,30} +(/usr/bin/)?(auto)?ssh( [-a-zA-Z0-9:/@\\[\\]*=%.]{0,10}){0,12})",
                0..20,
            )
        ) {
            let text = lines.join("\n");
            let out = parse_ps(&text);
            proptest::prop_assert!(out.skipped <= lines.len());
        }
    }
}
