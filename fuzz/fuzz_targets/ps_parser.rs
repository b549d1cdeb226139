//! Fuzzes the `ps` parser: any bytes, read as UTF-8 lossily the way the
//! client reads a capture, must parse without panicking, and every tunnel
//! found must belong to a process line of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let out = gateway_client::ps::parse_ps(&text);
    for t in &out.tunnels {
        let pid = t.pid.to_string();
        assert!(
            text.contains(&pid),
            "tunnel with pid {pid} not in the input: {t:?}"
        );
    }
});
