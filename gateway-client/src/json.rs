//! A small, strict JSON reader and writer for the wire body and `--json`.
//!
//! The client may only use crates without dependencies, and the datagrams it
//! exchanges are small and fixed in shape, so JSON is done here by hand. The
//! reader is written for hostile input (the collector runs it on every signed
//! body): it never panics, never loops without consuming input, and refuses
//! anything outside what the wire needs, namely nesting deeper than
//! [`MAX_DEPTH`], input longer than [`MAX_INPUT`], and numbers that are not
//! unsigned integers (no floats, no negatives, nothing above `u64::MAX`).
//! That sidesteps the traps of general-purpose JSON crates on such input.
//!
//! Two ways to read: [`parse`] builds a [`Value`] tree of anything JSON
//! (within those limits) and gives a precise error; [`Reader`] walks the text
//! for a caller that knows the shape it expects (the wire body, read by the
//! collector for every datagram), borrows strings without escapes instead of
//! copying them, and only says *no* when the text is not that shape, so that
//! the caller can ask [`parse`] for the error.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Deepest nesting accepted (the wire body needs 3: object, array, object).
pub(crate) const MAX_DEPTH: usize = 8;
/// Longest input accepted, in bytes (a datagram is at most 1,400).
pub(crate) const MAX_INPUT: usize = 1 << 20;

/// A parsed JSON value. Objects keep their keys in order (duplicates kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Num(u64),
    Str(String),
    Arr(Vec<Value>),
    Obj(Vec<(String, Value)>),
}

impl Value {
    pub(crate) fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Obj(o) => Some(o),
            _ => None,
        }
    }

    /// The first value under `key` in an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Parses one JSON document (surrounding white space allowed).
pub(crate) fn parse(input: &str) -> Result<Value, String> {
    if input.len() > MAX_INPUT {
        return Err(format!(
            "JSON of {} bytes is longer than {MAX_INPUT}",
            input.len()
        ));
    }
    let mut p = Parser::new(input);
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected data after JSON at byte {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser {
            text,
            s: text.as_bytes(),
            i: 0,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            self.err(&format!("expected '{}'", b as char))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth >= MAX_DEPTH {
            return self.err("JSON nested too deeply");
        }
        match self.s.get(self.i) {
            None => self.err("unexpected end of JSON"),
            Some(b'{') => {
                self.i += 1;
                let mut obj = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Value::Obj(obj));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    obj.push((k, v));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Obj(obj));
                        }
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut arr = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::Arr(arr));
                }
                loop {
                    self.ws();
                    arr.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Arr(arr));
                        }
                        _ => return self.err("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b'0'..=b'9') => Ok(Value::Num(self.number()?)),
            Some(b'-') => self.err("only unsigned integers are allowed"),
            Some(_) => {
                for (word, v) in [
                    (&b"null"[..], Value::Null),
                    (b"true", Value::Bool(true)),
                    (b"false", Value::Bool(false)),
                ] {
                    if self.s[self.i..].starts_with(word) {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                self.err("unexpected character")
            }
        }
    }

    /// An unsigned integer in JSON's syntax (no leading zero, no fraction).
    fn number(&mut self) -> Result<u64, String> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(&d @ b'0'..=b'9') = self.s.get(self.i) {
            n = match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
            {
                Some(n) => n,
                None => return self.err("number too large"),
            };
            self.i += 1;
        }
        if self.i == start {
            return self.err("expected a number");
        }
        if self.i - start > 1 && self.s[start] == b'0' {
            return self.err("number with a leading zero");
        }
        if let Some(b'.' | b'e' | b'E') = self.s.get(self.i) {
            return self.err("only unsigned integers are allowed");
        }
        Ok(n)
    }

    /// A string, borrowed from the input when it holds no escape.
    fn string_cow(&mut self) -> Result<Cow<'a, str>, String> {
        let open = self.i;
        self.eat(b'"')?;
        let start = self.i;
        while let Some(&b) = self.s.get(self.i) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            self.i += 1;
        }
        if self.s.get(self.i) == Some(&b'"') {
            // The run ends at an ASCII byte, so it is whole characters.
            if let Some(run) = self.text.get(start..self.i) {
                self.i += 1;
                return Ok(Cow::Borrowed(run));
            }
        }
        self.i = open;
        self.string().map(Cow::Owned)
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return self.err("short \\u escape");
        };
        let h = std::str::from_utf8(h).map_err(|_| format!("bad \\u escape at byte {}", self.i))?;
        let v =
            u32::from_str_radix(h, 16).map_err(|_| format!("bad \\u escape at byte {}", self.i))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            // Copy a run of plain characters at once. The input is a &str,
            // and runs end only at ASCII bytes, so slicing stays on char
            // boundaries.
            let start = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).map_err(|_| "invalid UTF-8")?);
            match self.s.get(self.i) {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("unterminated string");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return self.err("lone surrogate in \\u escape");
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return self.err("bad surrogate pair");
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            match char::from_u32(c) {
                                Some(c) => out.push(c),
                                None => return self.err("bad \\u escape"),
                            }
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                Some(_) => return self.err("control character in string"),
            }
        }
    }
}

/// Reads JSON text of a shape the caller knows, front to back, without
/// building a tree. Every method first skips white space; it returns `None`
/// (or `false`) when the text is not what was asked for, and the reader is
/// then of no further use: the caller gives up and calls [`parse`] for the
/// precise error. What a `Reader` accepts, [`parse`] accepts with the same
/// values: both share one tokenizer, one depth limit and one size limit.
pub(crate) struct Reader<'a> {
    p: Parser<'a>,
}

impl<'a> Reader<'a> {
    /// A reader over `text`, or `None` if it is longer than [`MAX_INPUT`].
    pub(crate) fn new(text: &'a str) -> Option<Reader<'a>> {
        (text.len() <= MAX_INPUT).then(|| Reader {
            p: Parser::new(text),
        })
    }

    /// Consumes `b` (one of `{}[]:,`) if it comes next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        let found = self.peek_is(b);
        if found {
            self.p.i += 1;
        }
        found
    }

    /// Whether the next byte is `b` (not consumed).
    pub(crate) fn peek_is(&mut self, b: u8) -> bool {
        self.p.ws();
        self.p.s.get(self.p.i) == Some(&b)
    }

    /// Consumes `null` if it comes next.
    pub(crate) fn null(&mut self) -> bool {
        self.p.ws();
        let found = self
            .p
            .s
            .get(self.p.i..)
            .is_some_and(|r| r.starts_with(b"null"));
        if found {
            self.p.i += 4;
        }
        found
    }

    /// Whether only white space is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.p.ws();
        self.p.i == self.p.s.len()
    }

    /// A string; borrowed from the text when it holds no escape.
    pub(crate) fn str(&mut self) -> Option<Cow<'a, str>> {
        self.p.ws();
        self.p.string_cow().ok()
    }

    /// An unsigned integer.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.p.ws();
        self.p.number().ok()
    }

    /// Reads an object: `field` is called with each key and must read its
    /// value. Keys come in the order written; a repeated key comes again.
    pub(crate) fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &str) -> Option<()>,
    ) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.str()?;
            if !self.eat(b':') {
                return None;
            }
            field(self, &key)?;
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Reads an array: `item` is called for each element and must read it.
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        if self.eat(b']') {
            return Some(());
        }
        loop {
            item(self)?;
            if self.eat(b']') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Skips one value of any kind, nested `depth` deep (as [`parse`]
    /// counts it: the top-level value is at depth 0).
    pub(crate) fn skip(&mut self, depth: usize) -> Option<()> {
        self.p.ws();
        self.p.value(depth).ok().map(drop)
    }
}

/// The bytes [`write_str`] looks at: control characters, `"`, `\\`,
/// `<`, `>`, `&`, and 0xE2 (which starts U+2028 and U+2029). A table,
/// since every byte of every string written goes through it.
static MAY_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xE2] = true;
    t
};

/// Appends `s` as a JSON string literal.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Most strings need no escape at all: find the first byte that may
    // (0xE2 starts U+2028 and U+2029, and other characters), copy what is
    // before it at once, and look at characters only from there on.
    let first = s
        .bytes()
        .position(|b| MAY_ESCAPE[usize::from(b)])
        .unwrap_or(s.len());
    // Runs of characters that need no escape are copied at once.
    let mut plain = 0;
    for (i, c) in s[first..].char_indices().map(|(i, c)| (first + i, c)) {
        let escape: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            // Escaping <, > and & keeps the JSON safe to embed in HTML.
            c if (c as u32) < 0x20
                || c == '<'
                || c == '>'
                || c == '&'
                || c == '\u{2028}'
                || c == '\u{2029}' =>
            {
                None
            }
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        plain = i + c.len_utf8();
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Appends `"key":"value"`, preceded by a comma.
pub(crate) fn field_str(out: &mut String, key: &str, value: &str) {
    out.push(',');
    write_key(out, key);
    write_str(out, value);
}

/// Appends `"key":`. Keys are the program's own field names, which need no
/// escape (checked in debug builds).
fn write_key(out: &mut String, key: &str) {
    debug_assert!(!key.bytes().any(|b| MAY_ESCAPE[usize::from(b)]), "{key}");
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// Appends `"key":n`, preceded by a comma unless `first`.
pub(crate) fn field_u64(out: &mut String, key: &str, n: u64, first: bool) {
    if !first {
        out.push(',');
    }
    write_key(out, key);
    push_u64(out, n);
}

/// Appends `n` in decimal (what `write!("{n}")` writes, without the
/// formatting machinery: numbers are most of a wire body's fields).
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits, so always UTF-8.
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

pub(crate) fn want_str<'a>(key: &str, v: &'a Value) -> Result<&'a str, String> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(format!("'{key}' must be a string")),
    }
}

pub(crate) fn want_u64(key: &str, v: &Value) -> Result<u64, String> {
    match v {
        Value::Num(n) => Ok(*n),
        _ => Err(format!("'{key}' must be an unsigned integer")),
    }
}

pub(crate) fn want_u32(key: &str, v: &Value) -> Result<u32, String> {
    u32::try_from(want_u64(key, v)?).map_err(|_| format!("'{key}' is out of range"))
}

pub(crate) fn want_u16(key: &str, v: &Value) -> Result<u16, String> {
    u16::try_from(want_u64(key, v)?).map_err(|_| format!("'{key}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_wire_uses() {
        let v = parse(r#" {"a":1,"b":[true,false,null],"c":"x\"\u00e9\ud83d\ude00"} "#).unwrap();
        assert_eq!(v.get("a"), Some(&Value::Num(1)));
        assert_eq!(v.get("c"), Some(&Value::Str("x\"é😀".into())));
    }

    #[test]
    fn refuses_the_known_traps_of_general_crates() {
        // nanoserde 0.2.1 panics on the first and loops on the second.
        assert!(parse(r#"{"zz":}"#).is_err());
        assert!(parse(r#"{"zz":[1,2"#).is_err());
        assert!(parse(r#"{"n":-1}"#).is_err());
        assert!(parse(r#"{"n":1.5}"#).is_err());
        assert!(parse(r#"{"n":18446744073709551616}"#).is_err());
        assert!(parse(&"[".repeat(100_000)).is_err());
        assert!(parse("\"\\ud800\"").is_err());
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            5901,
            1_796_083_200,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn strings_round_trip() {
        for s in [
            "",
            "plain",
            "<script>\"&'",
            "tab\tnl\n\u{1}",
            "ünï😀",
            "é<x>\u{2028}\u{2029}\u{2027}€",
        ] {
            let mut out = String::new();
            write_str(&mut out, s);
            assert_eq!(parse(&out).unwrap(), Value::Str(s.into()));
            assert!(
                !out.contains(['<', '>', '&', '\u{2028}', '\u{2029}']),
                "{out}"
            );
        }
    }
}
