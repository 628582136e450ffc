//! Fuzz target: see `wsc::fuzzing::frames` for the input format and the invariants.
fn main() {
    afl::fuzz!(|data: &[u8]| wsc::fuzzing::frames(data));
}
