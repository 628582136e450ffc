//! Fuzz target: see `wsc::fuzzing::proxy_reply` for the input format and the invariants.
fn main() {
    afl::fuzz!(|data: &[u8]| wsc::fuzzing::proxy_reply(data));
}
