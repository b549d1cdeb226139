//! A gateway's tunnel count per complete report, `(received, count)` in
//! the order the reports came, kept packed: a year of a gateway reporting
//! every minute is half a million reports, 16 bytes each as a list and
//! about 2 here. The checkpoint (`cache`) saves these bytes as they are and
//! reads them back with one pass that checks them, instead of making the
//! list anew: a run that reads 90 days from the cache spent more time
//! there, and on the memory of the list, than on anything else it loads.
//!
//! Each report is the difference between its time and the one before (the
//! first's from 0) as a zigzag LEB128 number, then its count as a LEB128
//! number: the encoding the checkpoint has always given the series.

/// Reports between two entries of [`Series::blocks`].
const BLOCK: usize = 64;

/// Where a run of reports starts, so that a range is found without
/// decoding the reports before it, and what the run holds, so that a
/// chart bucket that takes it whole need not decode it.
#[derive(Clone, Copy, Debug)]
struct Block {
    /// Its first report's offset in the bytes.
    at: usize,
    /// The time of the report before it (0 for the first).
    before: i64,
    summary: Summary,
}

/// A run of reports: its first and last report's time, how many, and the
/// least and most tunnels in them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) len: usize,
    pub(crate) min: u32,
    pub(crate) max: u32,
}

/// A whole block of reports, with its [`Summary`], or the part of one
/// that a range starts in.
pub(crate) struct Chunk<'a> {
    pub(crate) summary: Option<Summary>,
    pub(crate) reports: Reports<'a>,
}

/// A gateway's tunnel counts (see the module doc).
#[derive(Debug)]
pub(crate) struct Series {
    bytes: Vec<u8>,
    len: usize,
    /// The last report's time, as the differences count it.
    last: i64,
    /// No report's time is before the time of the report before it.
    sorted: bool,
    /// Every [`BLOCK`]th report.
    blocks: Vec<Block>,
}

impl Default for Series {
    fn default() -> Series {
        Series {
            bytes: Vec::new(),
            len: 0,
            last: 0,
            sorted: true,
            blocks: Vec::new(),
        }
    }
}

impl Series {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds a report at the end.
    pub(crate) fn push(&mut self, t: u64, n: u32) {
        let at = self.bytes.len();
        self.note(at, t, n);
        put_u(&mut self.bytes, zigzag((t as i64).wrapping_sub(self.last)));
        put_u(&mut self.bytes, u64::from(n));
        self.last = t as i64;
    }

    /// Counts the report at `at`: at `t`, `n` tunnels.
    fn note(&mut self, at: usize, t: u64, n: u32) {
        match self.blocks.last_mut() {
            Some(b) if !self.len.is_multiple_of(BLOCK) => {
                let s = &mut b.summary;
                (s.last, s.len, s.min, s.max) = (t, s.len + 1, s.min.min(n), s.max.max(n));
            }
            _ => self.blocks.push(Block {
                at,
                before: self.last,
                summary: Summary {
                    first: t,
                    last: t,
                    len: 1,
                    min: n,
                    max: n,
                },
            }),
        }
        self.sorted &= self.len == 0 || t >= self.last as u64;
        self.len += 1;
    }

    /// The packed bytes (what the checkpoint saves after [`Series::len`]).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `len` reports packed at the front of `b`, and how many bytes
    /// they take; `None` when they are not whole.
    pub(crate) fn read(b: &[u8], len: usize) -> Option<(Series, usize)> {
        let mut s = Series::default();
        let mut pos = 0;
        for _ in 0..len {
            let at = pos;
            let t = s.last.wrapping_add(unzigzag(get_u(b, &mut pos)?));
            let n = u32::try_from(get_u(b, &mut pos)?).ok()?;
            s.note(at, t as u64, n);
            s.last = t;
        }
        s.bytes = b[..pos].to_vec();
        Some((s, pos))
    }

    /// The reports from the first at or after `start` on: from where
    /// `partition_point` finds it in the list of reports (their first with
    /// a time not before `start`, when the times are in order).
    pub(crate) fn from(&self, start: u64) -> Reports<'_> {
        let k = if self.sorted {
            let b = self
                .blocks
                .partition_point(|x| x.summary.first < start)
                .saturating_sub(1);
            b * BLOCK + self.block(b).take_while(|&(t, _)| t < start).count()
        } else {
            let all: Vec<(u64, u32)> = self.block(0).collect();
            all.partition_point(|&(t, _)| t < start)
        };
        let mut reports = self.block(k / BLOCK);
        for _ in 0..k % BLOCK {
            reports.next();
        }
        reports
    }

    /// With the reports in order, the reports from the first at or after
    /// `start` on (as [`Series::from`]), as the rest of the block it is in,
    /// then whole blocks; `None` when they are not in order.
    pub(crate) fn chunks_from(&self, start: u64) -> Option<impl Iterator<Item = Chunk<'_>>> {
        if !self.sorted {
            return None;
        }
        let mut first = self.from(start);
        let k = self.len - first.left;
        let b = k.div_ceil(BLOCK);
        first.left = (b * BLOCK).min(self.len) - k;
        let head = Chunk {
            summary: None,
            reports: first,
        };
        let blocks = self.blocks[b.min(self.blocks.len())..]
            .iter()
            .map(|x| Chunk {
                summary: Some(x.summary),
                reports: Reports {
                    bytes: &self.bytes,
                    pos: x.at,
                    last: x.before,
                    left: x.summary.len,
                },
            });
        Some(std::iter::once(head).chain(blocks))
    }

    /// The reports from the start of block `b` on.
    fn block(&self, b: usize) -> Reports<'_> {
        match self.blocks.get(b) {
            Some(x) => Reports {
                bytes: &self.bytes,
                pos: x.at,
                last: x.before,
                left: self.len - b * BLOCK,
            },
            None => Reports {
                bytes: &[],
                pos: 0,
                last: 0,
                left: 0,
            },
        }
    }
}

/// Reports of a [`Series`], decoded as they are read.
pub(crate) struct Reports<'a> {
    bytes: &'a [u8],
    pos: usize,
    last: i64,
    left: usize,
}

impl Iterator for Reports<'_> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let t = self
            .last
            .wrapping_add(unzigzag(get_u(self.bytes, &mut self.pos)?));
        let n = u32::try_from(get_u(self.bytes, &mut self.pos)?).ok()?;
        self.last = t;
        Some((t as u64, n))
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

fn put_u(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A LEB128 number at `*pos`, as the checkpoint's decoder reads them.
fn get_u(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(list: &[(u64, u32)]) -> Series {
        let mut s = Series::default();
        for &(t, n) in list {
            s.push(t, n);
        }
        s
    }

    #[test]
    fn a_range_starts_where_partition_point_says() {
        // In order (with equal times), and out of order.
        let sorted: Vec<(u64, u32)> = (0..5000u64)
            .map(|k| (1_000 + k / 2 * 61, k as u32))
            .collect();
        let mut shuffled = sorted.clone();
        shuffled.swap(10, 4000);
        shuffled.swap(1500, 1501);
        shuffled.push((0, 7));
        for list in [
            sorted,
            shuffled,
            Vec::new(),
            vec![(u64::MAX, u32::MAX), (0, 0)],
        ] {
            let s = series(&list);
            assert_eq!(s.len(), list.len());
            assert_eq!(s.from(0).collect::<Vec<_>>(), list);
            for start in [
                0,
                999,
                1_000,
                1_001,
                62_000,
                100_000,
                152_000,
                200_000,
                u64::MAX,
            ] {
                let k = list.partition_point(|&(t, _)| t < start);
                assert_eq!(s.from(start).collect::<Vec<_>>(), list[k..], "{start}");
            }
            // Read back from its bytes, with more after them.
            let mut bytes = s.bytes().to_vec();
            bytes.push(0x55);
            let (back, used) = Series::read(&bytes, list.len()).unwrap();
            assert_eq!(used, s.bytes().len());
            assert_eq!(back.from(0).collect::<Vec<_>>(), list);
            assert_eq!(back.from(62_000).count(), s.from(62_000).count());
        }
    }

    #[test]
    fn chunks_hold_the_reports_from_start() {
        let list: Vec<(u64, u32)> = (0..1000u64).map(|k| (k * 60, (k % 13) as u32)).collect();
        let s = series(&list);
        for start in [0, 1, 60 * 64, 60 * 64 + 1, 60 * 999, 60 * 1000] {
            let k = list.partition_point(|&(t, _)| t < start);
            let mut got = Vec::new();
            for c in s.chunks_from(start).unwrap() {
                let reports: Vec<(u64, u32)> = c.reports.collect();
                if let Some(sum) = c.summary {
                    let n = reports.iter().map(|r| r.1);
                    let want = Summary {
                        first: reports[0].0,
                        last: reports[reports.len() - 1].0,
                        len: reports.len(),
                        min: n.clone().min().unwrap(),
                        max: n.max().unwrap(),
                    };
                    assert_eq!(sum, want);
                }
                got.extend(reports);
            }
            assert_eq!(got, list[k..], "{start}");
        }
        let mut unsorted = s;
        unsorted.push(0, 0);
        assert!(unsorted.chunks_from(0).is_none());
    }

    #[test]
    fn damaged_bytes_are_none() {
        let s = series(&[(1_000, 3), (1_060, 4)]);
        let b = s.bytes();
        assert!(Series::read(&b[..b.len() - 1], 2).is_none());
        assert!(Series::read(&[0xff; 11], 1).is_none());
        // A count past u32.
        let mut big = Vec::new();
        put_u(&mut big, 2);
        put_u(&mut big, u64::from(u32::MAX) + 1);
        assert!(Series::read(&big, 1).is_none());
    }
}
