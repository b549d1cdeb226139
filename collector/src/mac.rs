//! The collector's HMAC-SHA-256, for every datagram it verifies and every
//! ack it signs.
//!
//! It is the same function as the client's [`gateway_client::wire::sign`],
//! computed with RustCrypto's `sha2`, which uses the CPU's SHA instructions
//! when it has them (SHA-NI on x86-64; it checks at run time and falls back
//! to portable code). The client may only depend on crates without
//! dependencies, so it keeps the portable `hmac-sha256`; at one report a
//! minute that costs it nothing, while the collector, verifying tens of
//! thousands of datagrams a second, spent a third of its time there.
//!
//! The key's inner and outer blocks are hashed once, when the key is read;
//! each signature then starts from a copy of that state.

use gateway_client::key::Key;
use gateway_client::wire;
use hmac::{Hmac, KeyInit, Mac as _};
use sha2::Sha256;

/// The shared key, ready to sign.
#[derive(Clone)]
pub struct FastKey {
    keyed: Hmac<Sha256>,
}

impl FastKey {
    pub fn new(key: &Key) -> FastKey {
        FastKey {
            // HMAC takes keys of any length (longer ones are hashed first).
            keyed: Hmac::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length"),
        }
    }
}

impl wire::Mac for FastKey {
    fn mac(&self, body: &[u8]) -> [u8; 32] {
        let mut m = self.keyed.clone();
        m.update(body);
        m.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_client::wire::Mac;
    use proptest::prelude::*;

    proptest! {
        /// The same bytes as the client's HMAC, for keys shorter and longer
        /// than SHA-256's 64-byte block and bodies across block boundaries:
        /// the datagrams the two frame are the same.
        #[test]
        fn signs_as_the_client_does(
            key in "[ -~]{1,100}",
            body in proptest::collection::vec(any::<u8>(), 0..1500),
        ) {
            let key = Key::from_text(&key);
            prop_assert_eq!(wire::frame(&FastKey::new(&key), &body), wire::frame(&key, &body));
        }
    }

    #[test]
    fn matches_rfc_4231_case_2() {
        // HMAC-SHA-256 test vector: key "Jefe".
        let key = Key::from_text("Jefe");
        let mac = FastKey::new(&key).mac(b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// Every signed vector of `testdata/wire/` (written by an independent
    /// Python implementation) decodes, or is refused, the same way with
    /// this MAC as with the client's, and an accepted body signs back to
    /// the same bytes (but for `accept-newer` ones, spelled as the writer
    /// would not: see `scripts/make-wire-vectors`).
    #[test]
    fn the_wire_vectors_decode_alike() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/wire");
        let key = Key::from_text(&std::fs::read_to_string(dir.join("key.txt")).unwrap());
        let fast = FastKey::new(&key);
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "dgram") {
                continue;
            }
            let dgram = std::fs::read(&path).unwrap();
            let (a, b) = (wire::decode(&key, &dgram), wire::decode(&fast, &dgram));
            assert_eq!(a, b, "{}", path.display());
            let expect = std::fs::read_to_string(path.with_extension("expect")).unwrap();
            if let Ok(body) = b
                && expect.starts_with("accept\n")
            {
                assert_eq!(wire::encode(&fast, &body), dgram, "{}", path.display());
            }
            seen += 1;
        }
        assert!(seen >= 20, "only {seen} vectors in {}", dir.display());
    }
}
