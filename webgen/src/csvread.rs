//! A CSV record reader that gives the same records and line numbers as
//! `csv::Reader` (no headers, flexible, default `,` and CRLF terminator),
//! several times faster on the collector's logs.
//!
//! Almost every log row is one plain line: no quote, no `\r`. Such a line
//! is split on commas directly (`memchr` finds the line end, a word-at-a-time
//! loop the commas; one `memchr2` scan ahead, over many lines at once, finds
//! the next quote or `\r`). Any other record (a message with quotes or commas, a blank
//! line, a `\r`) goes to `csv_core`, the state machine the `csv` crate
//! itself runs, one record at a time, so quoting, escapes, blank lines and
//! truncated last rows follow exactly the same rules. The tests compare it
//! with `csv::Reader` on awkward inputs.

use std::io::{self, Read};

use csv::ByteRecord;
use csv_core::ReadRecordResult;

pub(crate) struct FastReader<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// `\n` bytes consumed so far (how `csv_core` counts lines).
    newlines: u64,
    /// Line the current record starts on (as `csv::Position::line`).
    line: u64,
    core: csv_core::Reader,
    /// The previous record came from `csv_core` and did not end on `\n`:
    /// its state (after a `\r`) matters for the next record.
    core_active: bool,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// The current record's fields: (start, end) in `buf` or, when
    /// `in_out`, in `out`. Valid until the next read.
    spans: Vec<(usize, usize)>,
    in_out: bool,
    /// `buf[pos..clean]` holds no `"` and no `\r` (when `clean > pos`):
    /// one vectorised scan covers many lines, instead of one per line.
    clean: usize,
}

impl<R: Read> FastReader<R> {
    pub(crate) fn new(src: R) -> FastReader<R> {
        FastReader {
            src,
            buf: vec![0; 256 * 1024],
            pos: 0,
            end: 0,
            eof: false,
            newlines: 0,
            line: 1,
            core: csv_core::Reader::new(),
            core_active: false,
            out: vec![0; 1024],
            ends: vec![0; 32],
            spans: Vec::with_capacity(32),
            in_out: false,
            clean: 0,
        }
    }

    /// The line the last record read starts on (1-based).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The number of fields of the record read last.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Field `i` of the record read last.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let &(a, b) = self.spans.get(i)?;
        Some(if self.in_out {
            &self.out[a..b]
        } else {
            &self.buf[a..b]
        })
    }

    /// Fields `first..=last` of the record read last as they stand in the
    /// line, commas included, when the record was a plain line (no quotes):
    /// equal bytes then mean equal fields. `None` for a record that went
    /// through `csv_core`.
    #[inline]
    pub(crate) fn raw_fields(&self, first: usize, last: usize) -> Option<&[u8]> {
        if self.in_out || first > last {
            return None;
        }
        let (a, _) = *self.spans.get(first)?;
        let (_, b) = *self.spans.get(last)?;
        Some(&self.buf[a..b])
    }

    /// The record read last, as a `csv::ByteRecord`.
    pub(crate) fn to_byte_record(&self, rec: &mut ByteRecord) {
        rec.clear();
        for i in 0..self.len() {
            rec.push_field(self.get(i).unwrap_or_default());
        }
    }

    /// Reads more input after what is unconsumed; sets `eof` at the end.
    fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.clean = self.clean.saturating_sub(self.pos);
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the next record (see [`FastReader::get`]); `Ok(false)` at the end.
    pub(crate) fn read_record(&mut self) -> io::Result<bool> {
        self.spans.clear();
        self.in_out = false;
        self.line = self.newlines + 1;
        if !self.core_active {
            let nl = loop {
                if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                    break Some(self.pos + i);
                }
                if self.eof {
                    break None;
                }
                self.fill()?;
            };
            let line_end = nl.unwrap_or(self.end);
            if nl.is_none() && line_end == self.pos {
                return Ok(false);
            }
            if self.clean < line_end {
                // Find the next quote or CR (or the end of what is read).
                let from = self.clean.max(self.pos);
                self.clean = memchr::memchr2(b'"', b'\r', &self.buf[from..self.end])
                    .map_or(self.end, |k| from + k);
            }
            let line = &self.buf[self.pos..line_end];
            if !line.is_empty() && line_end <= self.clean {
                split_commas(line, self.pos, &mut self.spans);
                match nl {
                    Some(i) => {
                        self.pos = i + 1;
                        self.newlines += 1;
                    }
                    None => self.pos = line_end,
                }
                return Ok(true);
            }
            self.core.reset();
        }
        self.read_core()
    }

    /// One record through `csv_core`.
    fn read_core(&mut self) -> io::Result<bool> {
        let (mut outlen, mut endlen) = (0, 0);
        loop {
            if self.pos == self.end && !self.eof {
                self.fill()?;
            }
            let input = &self.buf[self.pos..self.end];
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[outlen..], &mut self.ends[endlen..]);
            self.newlines += input[..nin].iter().filter(|&&b| b == b'\n').count() as u64;
            self.pos += nin;
            outlen += nout;
            endlen += nend;
            match res {
                ReadRecordResult::InputEmpty => continue,
                ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    let mut start = 0;
                    for &e in &self.ends[..endlen] {
                        self.spans.push((start, e));
                        start = e;
                    }
                    self.in_out = true;
                    self.core_active = self.pos == 0 || self.buf[self.pos - 1] != b'\n';
                    return Ok(true);
                }
                ReadRecordResult::End => {
                    self.core_active = true;
                    return Ok(false);
                }
            }
        }
    }
}

/// Pushes the spans of the comma-separated fields of `line` (which starts
/// at `base`), eight bytes at a time: a byte equal to `,` is a zero byte of
/// `w ^ 0x2c2c…`, found exactly (no borrow between bytes) with the usual
/// bit trick.
#[inline]
fn split_commas(line: &[u8], base: usize, spans: &mut Vec<(usize, usize)>) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const COMMAS: u64 = 0x2c2c_2c2c_2c2c_2c2c;
    let mut start = 0;
    let mut chunks = line.chunks_exact(8);
    let mut off = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) ^ COMMAS;
        // High bit set in exactly the bytes where x is zero.
        let mut zeros = !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
        while zeros != 0 {
            let i = off + (zeros.trailing_zeros() / 8) as usize;
            spans.push((base + start, base + i));
            start = i + 1;
            zeros &= zeros - 1;
        }
        off += 8;
    }
    for (j, &b) in chunks.remainder().iter().enumerate() {
        if b == b',' {
            let i = off + j;
            spans.push((base + start, base + i));
            start = i + 1;
        }
    }
    spans.push((base + start, base + line.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record and its line, as `csv::Reader` (the reference) reads them.
    fn reference(input: &[u8]) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        while rdr.read_byte_record(&mut rec).unwrap() {
            let line = rec.position().unwrap().line();
            out.push((line, rec.iter().map(<[u8]>::to_vec).collect()));
        }
        out
    }

    /// Reads in pieces of `chunk` bytes, so records straddle refills.
    struct Chunked<'a>(&'a [u8], usize);

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn fast(input: &[u8], chunk: usize, small: bool) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut rdr = FastReader::new(Chunked(input, chunk));
        if small {
            rdr.buf = vec![0; 4];
            rdr.out = vec![0; 1];
            rdr.ends = vec![0; 1];
        }
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        while rdr.read_record().unwrap() {
            rdr.to_byte_record(&mut rec);
            assert_eq!(rec.len(), rdr.len());
            assert_eq!(rdr.get(rdr.len()), None);
            out.push((rdr.line(), rec.iter().map(<[u8]>::to_vec).collect()));
        }
        // Reading past the end stays at the end.
        assert!(!rdr.read_record().unwrap());
        out
    }

    fn check(input: &[u8]) {
        let want = reference(input);
        for (chunk, small) in [(1 << 20, false), (1, true), (3, true), (7, false)] {
            assert_eq!(
                fast(input, chunk, small),
                want,
                "input {:?}, chunk {chunk}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn same_as_csv_reader() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n",
            b"\n\n\n",
            b"a",
            b"a\n",
            b"a,b,c\n1,2,3\n",
            b"a,b,c\n1,2,3",
            b",\n,,\n",
            b"a,b\n\nc,d\n\n\n",
            b"a,b\r\nc,d\r\n",
            b"a,b\rc,d\r",
            b"a,b\r\n\r\nc\r\n",
            b"\r\n\n\r\r\nx\n",
            b"a,\"b,c\",d\ne,f\n",
            b"a,\"multi\nline\",x\nnext,row\n",
            b"a,\"esc \"\"q\"\" x\",y\nz\n",
            b"a,\"unterminated\nb,c\n",
            b"a,\"unterminated",
            b"a,b\"c,d\ne\n",
            b"\"a\"b,c\nd\n",
            b"\"\"\n\"\",\"\"\n",
            b"x,\"q\"\r\ny\n\"r\"\rz\n",
            b"x,\"q\"\r\r\ny\n",
            b"a,\"b\"\n\nc\n",
            b"#comment,1\nx\n",
            b"long,line,with,many,fields,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\nshort\n",
            b",,,,,,,,,,,,,,,,,\n-,-,-,--,---,----,-----,------,-------,--------\n",
            b"novadaq-far-gateway-01,1795996802821888,1,3305288,dunepro,L,,5900\n",
            b"\xff\xfe,\xac\xad\x2c\x2d\x2b\x00,\x80\x7f,\x01\x00\x00\x00\x2c\n",
        ];
        for c in cases {
            check(c);
        }
    }

    #[test]
    fn raw_fields_only_for_plain_lines() {
        let mut rdr = FastReader::new(&b"a,bb,,c\nx,\"y,z\",w\n"[..]);
        assert!(rdr.read_record().unwrap());
        assert_eq!(rdr.raw_fields(1, 3), Some(&b"bb,,c"[..]));
        assert_eq!(rdr.raw_fields(2, 2), Some(&b""[..]));
        assert_eq!(rdr.raw_fields(3, 4), None);
        assert_eq!(rdr.raw_fields(2, 1), None);
        assert!(rdr.read_record().unwrap());
        assert_eq!(rdr.get(1), Some(&b"y,z"[..]));
        assert_eq!(rdr.raw_fields(0, 2), None);
    }

    #[test]
    fn same_as_csv_reader_on_mixed_bytes() {
        // Every string of up to five bytes from an alphabet of the bytes that matter.
        let alphabet = [b'a', b',', b'"', b'\n', b'\r'];
        let mut input = Vec::new();
        for len in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                input.clear();
                for _ in 0..len {
                    input.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                check(&input);
            }
        }
    }
}
