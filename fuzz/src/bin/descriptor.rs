//! Fuzz target: see `wsc::fuzzing::descriptor` for the input format and the invariants.
fn main() {
    afl::fuzz!(|data: &[u8]| wsc::fuzzing::descriptor(data));
}
