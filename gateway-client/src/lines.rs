//! Reads text a buffer at a time and hands it on in whole lines, so that a
//! `ps` capture of any size is parsed in a fixed amount of memory.
//!
//! [`read_lines`] reads into one buffer of [`CHUNK`] bytes, which it reuses:
//! the whole lines read so far go to the caller as one block of text, and
//! the incomplete last line is moved to the front of the buffer to be
//! completed by the next read. A line longer than the buffer (`ps auxww`
//! prints a Java command line in full) grows it for that line only.
//!
//! Reading the text whole would cost a fresh buffer as large as the
//! capture; each of its pages is a page fault on first touch, which for a
//! 1.6 MB capture costs more than parsing it. One small buffer stays in
//! the cache and its pages are touched once.

use std::borrow::Cow;
use std::io::{self, Read};

/// The size of the buffer [`read_lines`] reads into: large enough that a
/// read is a fraction of the parse, small enough to stay in the L2 cache
/// and below malloc's threshold for a mapping of its own.
pub(crate) const CHUNK: usize = 64 << 10;

/// Reads `r` to its end through a buffer of `chunk` bytes (at least one),
/// and calls `block` with each run of whole lines read (ending with
/// `\n`), then with the last line if it has no newline. Returns the
/// number of bytes read.
///
/// Bytes that are not UTF-8 become U+FFFD as with
/// [`String::from_utf8_lossy`]; since a newline is never part of a
/// sequence, a text decodes the same whichever blocks its lines fall in.
pub(crate) fn read_lines(
    mut r: impl Read,
    chunk: usize,
    mut block: impl FnMut(&str),
) -> io::Result<u64> {
    let chunk = chunk.max(1);
    let mut buf = vec![0u8; chunk];
    // buf[..filled] holds bytes read and not yet handed on: part of a line.
    let mut filled = 0;
    let mut total = 0u64;
    loop {
        if filled == buf.len() {
            // The line does not fit: grow the buffer for it.
            buf.resize(buf.len() * 2, 0);
        }
        let n = match r.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if filled > 0 {
                block(&decode(&buf[..filled]));
            }
            return Ok(total);
        }
        total += n as u64;
        let read = filled;
        filled += n;
        // Only the new bytes can hold a newline.
        let Some(last) = buf[read..filled].iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        let end = read + last + 1;
        block(&decode(&buf[..end]));
        buf.copy_within(end..filled, 0);
        filled -= end;
        if buf.len() > chunk && filled < chunk {
            // The long line is done: back to the usual size.
            buf.truncate(chunk);
            buf.shrink_to_fit();
        }
    }
}

/// The text of some bytes: borrowed when they are UTF-8 (std's validator is
/// fast), else decoded with U+FFFD for each bad sequence.
fn decode(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its bytes `step` at a time, with an interruption before each.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.step.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    /// The blocks of `bytes` read through a `chunk`-byte buffer in reads
    /// of at most `step` bytes.
    fn blocks(bytes: &[u8], chunk: usize, step: usize) -> Vec<String> {
        let mut out = Vec::new();
        let r = Trickle {
            bytes,
            step,
            interrupt: false,
        };
        let n = read_lines(r, chunk, |b| out.push(b.to_string())).unwrap();
        assert_eq!(n, bytes.len() as u64);
        out
    }

    #[test]
    fn blocks_end_at_line_ends_and_join_to_the_text() {
        let text = "a\nbc\n\ndef\r\nghijklmnop\nq";
        for chunk in [1, 2, 3, 4, 7, 64] {
            for step in [1, 2, 5, 100] {
                let got = blocks(text.as_bytes(), chunk, step);
                assert_eq!(got.concat(), text, "chunk {chunk} step {step}");
                let (last, whole) = got.split_last().unwrap();
                assert!(whole.iter().all(|b| b.ends_with('\n')), "{got:?}");
                assert_eq!(last, "q");
            }
        }
        assert_eq!(blocks(b"", 4, 4), Vec::<String>::new());
        assert_eq!(blocks(b"\n", 4, 4), ["\n"]);
    }

    #[test]
    fn a_long_line_grows_the_buffer_for_that_line_only() {
        let long = "x".repeat(10_000);
        let text = format!("ab\n{long}\ncd\nef\n");
        let got = blocks(text.as_bytes(), 8, 3);
        assert!(got.contains(&format!("{long}\n")), "the long line whole");
        assert_eq!(got.concat(), text);
        // Back to 8 bytes after it: the short lines come one block each.
        assert_eq!(&got[got.len() - 2..], ["cd\n", "ef\n"]);
    }

    #[test]
    fn bad_utf8_decodes_as_the_whole_text_would() {
        let bytes = b"ok \xff\xfe\nbad \xe2\x82\nend \xf0\x9f\x98";
        let whole = String::from_utf8_lossy(bytes);
        for chunk in [1, 2, 3, 5, 64] {
            assert_eq!(blocks(bytes, chunk, 3).concat(), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn read_errors_are_returned() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let e = read_lines(Broken, 16, |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
    }
}
