//! Fuzz target: see `wsc::fuzzing::uris` for the input format and the invariants.
fn main() {
    afl::fuzz!(|data: &[u8]| wsc::fuzzing::uris(data));
}
