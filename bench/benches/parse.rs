//! divan micro-benchmarks of the `ps` parser on seeded captures: the
//! benchmark's 10,000 processes with 1,000 forwards, and a gateway's usual
//! size (300 processes, 10 forwards) for comparison. Run with
//! `cargo bench -p bench --bench parse`.

use divan::Bencher;

fn main() {
    divan::main();
}

#[divan::bench(args = [(300, 10), (10_000, 1_000)])]
fn parse_ps(bencher: Bencher, (procs, forwards): (usize, usize)) {
    let capture = bench::pscapture::generate(bench::data::SEED, procs, forwards);
    bencher
        .counter(divan::counter::BytesCount::of_str(&capture.text))
        .bench(|| gateway_client::ps::parse_ps(divan::black_box(&capture.text)));
}
