//! Checks the Rust wire codec against the signed vectors in `testdata/wire/`,
//! which `scripts/make-wire-vectors` writes with an independent (Python)
//! implementation of `docs/protocol.md`.
//!
//! Each `NAME.dgram` is a datagram; `NAME.expect` says `accept` and the body's
//! JSON, or `reject REASON`. An accepted vector must decode to that body and
//! encode back to the very same bytes (`report-older-client`, without
//! `connections` and `connected`, is what an older client sends). An
//! `accept-newer` vector (fields this version does not know, or the unknown
//! values spelled out) must decode to the body given, as this version
//! writes it. The unit tests of `wire` read the same vectors with
//! each of its two body readers.

use std::path::Path;

use gateway_client::key::Key;
use gateway_client::wire;

#[test]
fn every_vector_decodes_as_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/wire");
    // Git does not keep the key file's mode 600, so read its text directly.
    let key = Key::from_text(&std::fs::read_to_string(dir.join("key.txt")).unwrap());
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".dgram").map(str::to_string))
        .collect();
    names.sort();
    assert!(
        names.len() >= 20,
        "only {} vectors in {}",
        names.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    for name in &names {
        let dgram = std::fs::read(dir.join(format!("{name}.dgram"))).unwrap();
        let expect = std::fs::read_to_string(dir.join(format!("{name}.expect"))).unwrap();
        let mut lines = expect.lines();
        let verdict = lines.next().unwrap_or("");
        match (verdict, wire::decode(&key, &dgram)) {
            ("accept", Ok(body)) => {
                let want = lines.next().unwrap_or("");
                if body.to_json() != want {
                    failures.push(format!(
                        "{name}: decoded to\n  {}\nwant\n  {want}",
                        body.to_json()
                    ));
                }
                if wire::encode(&key, &body) != dgram {
                    failures.push(format!("{name}: does not encode back to the same bytes"));
                }
            }
            ("accept-newer", Ok(body)) => {
                let want = lines.next().unwrap_or("");
                if body.to_json() != want {
                    failures.push(format!(
                        "{name}: decoded to\n  {}\nwant\n  {want}",
                        body.to_json()
                    ));
                }
            }
            ("accept" | "accept-newer", Err(e)) => failures.push(format!("{name}: refused: {e}")),
            (v, Err(e)) if v.strip_prefix("reject ") == Some(e.reason.as_str()) => {}
            (v, Err(e)) => failures.push(format!("{name}: want {v}, got reject {e}")),
            (v, Ok(_)) => failures.push(format!("{name}: want {v}, but it was accepted")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
