//! Fuzzes the reading of CSV log files: arbitrary bytes through a
//! `csv::Reader` configured as the collector's (and webgen's) readers are,
//! each record through `EventRow::from_record` and `TunnelRow::from_record`.
//! A row that parses must survive being written by `csv::Writer` and read
//! back unchanged, and the torn-row repair (`complete_rows_len`) must cut at
//! a row boundary.
#![no_main]

use collector::complete_rows_len;
use logs::schema::{EventRow, TunnelRow};
use libfuzzer_sys::fuzz_target;

fn rewrite(fields: &[String]) -> csv::StringRecord {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).expect("write to memory");
    let bytes = w.into_inner().expect("flush to memory");
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..]);
    let mut rec = csv::StringRecord::new();
    assert!(
        r.read_record(&mut rec).expect("reads back"),
        "no row read back"
    );
    rec
}

fuzz_target!(|data: &[u8]| {
    let keep = complete_rows_len(data);
    assert!(keep <= data.len());
    assert!(keep == 0 || data[keep - 1] == b'\n');

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(data);
    let mut rec = csv::StringRecord::new();
    // Each read consumes input, so this ends; bound it anyway.
    for _ in 0..=data.len() {
        match reader.read_record(&mut rec) {
            Ok(true) => {
                if let Ok(e) = EventRow::from_record(&rec) {
                    let back = rewrite(&e.to_record());
                    assert_eq!(EventRow::from_record(&back), Ok(e));
                }
                if let Ok(t) = TunnelRow::from_record(&rec) {
                    let back = rewrite(&t.to_record());
                    assert_eq!(TunnelRow::from_record(&back), Ok(t));
                }
            }
            Ok(false) => break,
            Err(_) => {}
        }
    }
});
