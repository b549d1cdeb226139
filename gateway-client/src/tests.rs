//! Tests that span the crate's modules: the property tests of the `ps`
//! reader and the wire (split, sign, reassemble), and the `ps` captures of
//! `testdata/ps` with their hand-checked records. They are unit tests so
//! that they can reach what the crate keeps to itself (the streaming
//! reader, the split encoder).

mod properties;
mod ps_fixtures;
