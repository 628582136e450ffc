//! Rows (d): ping-pong through the C ABI, sending from inside `on_message`,
//! binary or text (text adds the UTF-8 check a C caller's bytes need).
//!
//! With `--c-bench PATH` the measurement is the C twin (`c-examples/bench.c`)
//! in its own process, exactly as a C program links wsc. Without it (no C
//! compiler) the same `extern "C"` functions are called from Rust, which
//! still crosses every ABI translation: C strings, copied payloads, ids.

use crate::flow::PATIENCE;
use crate::pingpong::Relay;
use crate::stats::PingPong;
use crossbeam_channel::{bounded, Sender};
use std::ffi::{c_char, c_void, CString};
use tungstenite::Bytes;
use wsc::ffi::{self, wsc_callbacks, wsc_id};

/// Runs `PATH [--text] URL SIZE N` and reads its `RESULT` line.
pub fn run_c_twin(path: &str, url: &str, size: usize, n: usize, text: bool) -> Result<PingPong, String> {
    let mut args: Vec<String> = text.then(|| "--text".to_owned()).into_iter().collect();
    args.extend([url.to_owned(), size.to_string(), n.to_string()]);
    let line = crate::peers::result_line(path, &args)?;
    PingPong::parse(&line).ok_or_else(|| format!("{path}: cannot read {line:?}"))
}

struct State {
    relay: Relay,
    payload: Bytes,
    text: bool,
    opened: Sender<bool>,
    ended: Sender<()>,
}

unsafe extern "C" fn on_open(_id: wsc_id, user: *mut c_void) {
    // SAFETY: user is the State leaked in run_from_rust, alive for the process.
    let st = unsafe { &*(user as *const State) };
    let _ = st.opened.send(true);
}

unsafe extern "C" fn on_message(id: wsc_id, _data: *const u8, _len: usize, _binary: bool, user: *mut c_void) {
    // SAFETY: as above; callbacks of one connection never run concurrently.
    let st = unsafe { &mut *(user as *mut State) };
    if st.relay.echo() {
        send(id, &st.payload, st.text);
    }
}

fn send(id: wsc_id, payload: &Bytes, text: bool) {
    // SAFETY: payload is a live buffer of payload.len() bytes.
    unsafe {
        match text {
            true => ffi::wsc_send_text(id, payload.as_ptr().cast(), payload.len()),
            false => ffi::wsc_send_binary(id, payload.as_ptr(), payload.len()),
        }
    };
}

unsafe extern "C" fn on_end(user: *mut c_void) {
    // SAFETY: as above.
    let st = unsafe { &*(user as *const State) };
    let _ = st.opened.send(false);
    let _ = st.ended.send(());
}

unsafe extern "C" fn on_error(_id: wsc_id, _msg: *const c_char, user: *mut c_void) {
    // SAFETY: forwarded unchanged.
    unsafe { on_end(user) }
}

unsafe extern "C" fn on_close(_id: wsc_id, _code: u16, _reason: *const c_char, user: *mut c_void) {
    // SAFETY: forwarded unchanged.
    unsafe { on_end(user) }
}

pub fn run_from_rust(url: &str, payload: Bytes, n: usize, text: bool) -> Result<PingPong, String> {
    let (done_tx, done_rx) = bounded(1);
    let (open_tx, open_rx) = bounded(2);
    let (end_tx, end_rx) = bounded(1);
    // Leaked: a callback may still be returning after it signalled the end.
    let state: &'static mut State = Box::leak(Box::new(State {
        relay: Relay::new(n, done_tx),
        payload: payload.clone(),
        text,
        opened: open_tx,
        ended: end_tx,
    }));
    let callbacks = wsc_callbacks {
        on_open: Some(on_open),
        on_message: Some(on_message),
        on_error: Some(on_error),
        on_close: Some(on_close),
    };
    let uri = CString::new(url).map_err(|e| e.to_string())?;
    let mut id: wsc_id = 0;
    let user = (state as *mut State).cast::<c_void>();
    // SAFETY: valid NUL-terminated URI, callbacks and out pointer; user_data outlives the connection.
    let status = unsafe { ffi::wsc_connect(uri.as_ptr(), std::ptr::null(), &callbacks, user, &mut id) };
    if status as u32 != 0 {
        return Err(format!("wsc_connect: status {}", status as u32));
    }
    if open_rx.recv_timeout(PATIENCE) != Ok(true) {
        return Err("wsc (d): no open".into());
    }
    send(id, &payload, text);
    let result = done_rx.recv_timeout(PATIENCE).map_err(|_| "wsc (d): no result within the patience limit".to_owned());
    ffi::wsc_close(id);
    let _ = end_rx.recv_timeout(PATIENCE);
    result
}
