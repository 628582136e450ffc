//! Fuzz target: see `wsc::fuzzing::request_head` for the input format and the invariants.
fn main() {
    afl::fuzz!(|data: &[u8]| wsc::fuzzing::request_head(data));
}
