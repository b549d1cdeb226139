//! divan micro-benchmarks of the wire codec on the ingest benchmark's
//! datagrams (a report of 10 tunnels, which is 2 datagrams): what the
//! collector spends per datagram to verify and read it, with its own MAC
//! (`collector::FastKey`, SHA-NI where the CPU has it) and with the
//! client's portable one, and what an ack and a whole report's encoding
//! cost. Run with `cargo bench -p bench --bench wire`.

use divan::Bencher;
use gateway_client::key::Key;
use gateway_client::wire::{self, Body, MsgKind};

fn main() {
    divan::main();
}

fn key() -> Key {
    Key::from_text(bench::live::KEY_TEXT)
}

fn report() -> Body {
    Body {
        gateway: "bench-gw-00".into(),
        kind: MsgKind::Report,
        seq: 1_796_083_200_000_000,
        sent: 1_796_083_200,
        part: 1,
        parts: 1,
        text: String::new(),
        tunnels: bench::live::tunnels(10, "bench-gw-00"),
        period: None,
        until: None,
    }
}

/// The first datagram of the report: the larger one (1,300-odd bytes).
fn datagram() -> Vec<u8> {
    wire::encode_all(&key(), &report())
        .expect("the report encodes")
        .swap_remove(0)
        .1
}

#[divan::bench]
fn decode_fast_mac(bencher: Bencher) {
    decode_with(bencher, collector::FastKey::new(&key()));
}

#[divan::bench]
fn decode_portable_mac(bencher: Bencher) {
    decode_with(bencher, key());
}

fn decode_with(bencher: Bencher, k: impl wire::Mac + Sync) {
    let d = datagram();
    bencher
        .counter(divan::counter::BytesCount::of_slice(&d))
        .bench(|| wire::decode(&k, divan::black_box(&d)).expect("valid"));
}

#[divan::bench]
fn ack(bencher: Bencher) {
    let k = collector::FastKey::new(&key());
    let body = wire::decode(&k, &datagram()).expect("valid");
    bencher.bench(|| wire::ack(&k, divan::black_box(&body), "ok"));
}

#[divan::bench]
fn encode_report_of_10(bencher: Bencher) {
    let k = key();
    let body = report();
    bencher.bench(|| wire::encode_all(&k, divan::black_box(&body)).expect("fits"));
}
