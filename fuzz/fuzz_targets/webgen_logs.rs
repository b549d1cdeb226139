//! Fuzzes webgen's reading of the CSV logs (`webgen::logs::read`): the input
//! is cut at 0xFF bytes (never in UTF-8) into up to four files, the events
//! and tunnels files of two consecutive days, written to a scratch directory
//! and read back as webgen reads them. Whatever the files hold, reading must
//! not panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use webgen::logs::{self, Catalog, Event, Report, Visitor};

#[derive(Default)]
struct Count {
    events: u64,
    reports: u64,
}

impl Visitor for Count {
    fn event(&mut self, _: &Catalog, _: &Event) {
        self.events += 1;
    }
    fn report(&mut self, _: &Catalog, _: &Report<'_>) {
        self.reports += 1;
    }
}

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("roctm-fuzz-webgen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

const FILES: [&str; 4] = [
    "events-2026-11-22.csv",
    "tunnels-2026-11-22.csv",
    "events-2026-11-23.csv",
    "tunnels-2026-11-23.csv",
];

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let mut parts = data.split(|&b| b == 0xFF);
    for name in FILES {
        let path = dir.join(name);
        match parts.next() {
            Some(p) => std::fs::write(&path, p).expect("write scratch file"),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let mut catalog = Catalog::default();
    let mut count = Count::default();
    let from = jiff::civil::date(2026, 11, 22);
    let to = jiff::civil::date(2026, 11, 23);
    let stats = logs::read(dir, from, to, u64::MAX, &mut catalog, &mut count)
        .expect("a readable scratch directory");
    assert!(stats.files.len() <= 4);
});
