//! Fuzz target: see `wsc::fuzzing::upgrade_response` for the input format and the invariants.
fn main() {
    afl::fuzz!(|data: &[u8]| wsc::fuzzing::upgrade_response(data));
}
