//! Fuzzes the wire decoder with a fixed key, two ways, chosen by the first
//! byte of the input:
//!
//! - even: the rest is a datagram as it arrives from the network. Almost
//!   everything stops at the header or the signature check.
//! - odd: the rest is a *body*, signed here with the key, so the strict JSON
//!   reader and the body checks are reached: that is where an attacker who
//!   holds the key, or a bug in a client, would hit the collector. Several
//!   bodies may be given, separated by a 0xFF byte (never in UTF-8); the
//!   accepted ones go through a `Reassembler` together.
//!
//! Whatever is accepted must encode again to a datagram that decodes to the
//! same body (when that datagram fits in the size limit).
#![no_main]

use gateway_client::key::Key;
use gateway_client::reassembly::Reassembler;
use gateway_client::wire;
use libfuzzer_sys::fuzz_target;

fn key() -> Key {
    Key::from_text("5f0c3a9d2b7e41c8a6f9e03d7b12c4a85e6f0d1b9c3a7e2f4d8b6a0c1e3f5a79")
}

fn check(key: &Key, datagram: &[u8]) -> Option<wire::Body> {
    let body = wire::decode(key, datagram).ok()?;
    let again = wire::encode(key, &body);
    if again.len() <= wire::MAX_DATAGRAM {
        assert_eq!(wire::decode(key, &again).as_ref(), Ok(&body));
    }
    Some(body)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = key();
    if mode % 2 == 0 {
        check(&key, rest);
        return;
    }
    let mut r = Reassembler::new(60);
    for (i, body) in rest.split(|&b| b == 0xFF).take(64).enumerate() {
        if let Some(b) = check(&key, &wire::frame(&key, body)) {
            if let Some(rep) = r.add(b, i as u64).0 {
                assert!(rep.parts >= 1);
            }
        }
    }
    assert!(r.pending() <= 4);
});
