//! No lock is held across a log call (issue 21, item 5): a C log callback
//! at TRACE calls wsc from every line -- client calls (stats, state,
//! buffered amount, the client list, a send on a live connection) and
//! server calls (adding an allowed origin, which takes the origins lock for
//! writing; the local port; adding an endpoint) -- while the test runs a
//! client-server exchange over a wsc endpoint server, the refusals (404 for
//! no endpoint, 403 by origin, 503 for a handler not registered) and
//! `wsc_shutdown`. A lock held across any of those lines deadlocks the
//! thread that logged it; a watchdog turns that into a failure after 60 s
//! instead of a hung CI.
//!
//! The log hook and `wsc_shutdown` are process-wide: this binary holds one test.

mod common;

use common::*;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;
use wsc::ffi::{self, wsc_log_level as L, wsc_status};
use wsc::{Connection, ErrorKind, Event, Options};

/// The server the callback calls into; null once it may be freed.
static SERVER: AtomicPtr<ffi::wsc_server> = AtomicPtr::new(std::ptr::null_mut());
/// A live client connection the callback sends on (0: none).
static BYSTANDER: AtomicU64 = AtomicU64::new(0);
/// Lines delivered, and lines whose callback made every call and returned.
static LINES: AtomicUsize = AtomicUsize::new(0);
static REENTERED: AtomicUsize = AtomicUsize::new(0);
/// Lines logged by a call made from inside the callback (not re-entered).
static NESTED: AtomicUsize = AtomicUsize::new(0);
static TEXT: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The step the scenario is at, for the failure message.
static STEP: Mutex<&str> = Mutex::new("starting");

fn step(name: &'static str) {
    *STEP.lock().unwrap() = name;
}

thread_local! {
    /// Inside the callback on this thread (a line logged by a call made from it is not re-entered again).
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

const ALLOWED: &str = "http://allowed.example";
const WATCHDOG: Duration = Duration::from_secs(60);

unsafe extern "C" fn on_log(_level: L, id: u64, message: *const c_char, _user: *mut c_void) {
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    LINES.fetch_add(1, SeqCst);
    TEXT.lock().unwrap().push(text);
    if INSIDE.with(|i| i.replace(true)) {
        NESTED.fetch_add(1, SeqCst);
        return;
    }
    unsafe { call_wsc_from_a_log_line(id) };
    INSIDE.with(|i| i.set(false));
    REENTERED.fetch_add(1, SeqCst);
}

/// Client and server calls, whatever they return.
unsafe fn call_wsc_from_a_log_line(id: u64) {
    unsafe {
        let mut stats = ffi::wsc_stats { struct_size: std::mem::size_of::<ffi::wsc_stats>(), ..Default::default() };
        let _ = ffi::wsc_get_stats(id, &mut stats);
        let mut state = ffi::wsc_state::WSC_STATE_OPEN;
        let _ = ffi::wsc_get_state(id, &mut state);
        let mut buffered = 0usize;
        let _ = ffi::wsc_buffered_amount(id, &mut buffered);
        let (mut clients, mut len) = (std::ptr::null_mut(), 0usize);
        if ffi::wsc_get_clients(&mut clients, &mut len) == wsc_status::WSC_OK {
            ffi::wsc_free_clients(clients, len);
        }
        let bystander = BYSTANDER.load(SeqCst);
        if bystander != 0 {
            let _ = ffi::wsc_send(bystander, c"from a log line".as_ptr());
        }
        let server = SERVER.load(SeqCst);
        if !server.is_null() {
            let origin = CString::new(ALLOWED).unwrap();
            let _ = ffi::wsc_server_add_allowed_origin(server, origin.as_ptr());
            let _ = ffi::wsc_server_local_port(server);
            let _ = ffi::wsc_server_add_endpoint(server, c"added-from-a-log-line".as_ptr(), c"nobody".as_ptr());
        }
    }
}

fn last_lines() -> Vec<String> {
    TEXT.lock().unwrap().iter().rev().take(5).cloned().collect()
}

/// Connects to `path` on the server (with `origin` if any) and expects the
/// upgrade refused with `status`.
fn refused(port: u16, path: &str, origin: Option<&str>, status: u16) {
    let mut o = Options::new();
    if let Some(origin) = origin {
        o.add_header("Origin", origin).unwrap();
    }
    let (_conn, rx) = open_channel(&format!("ws://127.0.0.1:{port}{path}"), o);
    let e = expect_error(&rx, ErrorKind::Handshake { status: Some(status) });
    assert_eq!(e.http_status(), Some(status), "{path}: {e}");
}

/// The whole scenario, from installing the callback to `wsc_shutdown`.
fn scenario() {
    let st = unsafe { ffi::wsc_set_log_callback(Some(on_log), L::WSC_LOG_TRACE.into(), std::ptr::null_mut()) };
    assert_eq!(st, wsc_status::WSC_OK);

    wsc::register_handler("log-reentry/echo", |conn: &Connection, event: &Event| {
        if let (Some(_), Event::Message(m)) = (conn.endpoint(), event) {
            let _ = conn.send_message(m.clone());
        }
    })
    .unwrap();
    let mut server = std::ptr::null_mut();
    let st = unsafe { ffi::wsc_server_start(c"127.0.0.1:0".as_ptr(), std::ptr::null(), &mut server) };
    assert_eq!(st, wsc_status::WSC_OK);
    unsafe {
        assert_eq!(
            ffi::wsc_server_add_endpoint(server, c"e".as_ptr(), c"log-reentry/echo".as_ptr()),
            wsc_status::WSC_OK
        );
        assert_eq!(
            ffi::wsc_server_add_endpoint(server, c"orphan".as_ptr(), c"log-reentry/none".as_ptr()),
            wsc_status::WSC_OK
        );
        let origin = CString::new(ALLOWED).unwrap();
        assert_eq!(ffi::wsc_server_add_allowed_origin(server, origin.as_ptr()), wsc_status::WSC_OK);
    }
    SERVER.store(server, SeqCst);
    let port = unsafe { ffi::wsc_server_local_port(server) };

    step("a client to a peer that discards");
    let sink = raw_ws_server(drain);
    let (bystander, bystander_rx) = open_channel(&sink.url(), Options::new());
    expect_open(&bystander_rx);
    BYSTANDER.store(bystander.id(), SeqCst);

    step("the exchange through the endpoint: open, echo, ping, close");
    let url = format!("ws://127.0.0.1:{port}/websockets/v4/service/e");
    let mut allowed = Options::new();
    allowed.add_header("Origin", ALLOWED).unwrap();
    let (conn, rx) = open_channel(&url, allowed);
    expect_open(&rx);
    echo_text(&conn, &rx, "through the endpoint");
    conn.ping(b"p".to_vec()).unwrap();
    echo_text(&conn, &rx, "after a ping");
    close_cleanly(&conn, &rx);

    // Refusals: no endpoint, origin, handler not registered.
    step("404: no endpoint");
    refused(port, "/websockets/v4/service/none", None, 404);
    step("403: origin not allowed");
    refused(port, "/websockets/v4/service/e", Some("http://evil.example"), 403);
    step("503: handler not registered (WARN line)");
    refused(port, "/websockets/v4/service/orphan", None, 503);

    step("wsc_shutdown with a server-side connection and clients open");
    let (_open, open_rx) = open_channel(&url, Options::new());
    expect_open(&open_rx);
    assert_eq!(wsc::ffi::wsc_shutdown(10_000), wsc_status::WSC_OK);
    SERVER.store(std::ptr::null_mut(), SeqCst);
    BYSTANDER.store(0, SeqCst);
    assert_eq!(unsafe { ffi::wsc_server_stop(server) }, wsc_status::WSC_OK);
    drop(bystander);
}

#[test]
fn a_log_callback_calling_wsc_from_every_line_deadlocks_nothing() {
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let runner = std::thread::Builder::new()
        .name("scenario".into())
        .spawn(move || {
            scenario();
            let _ = done_tx.send(());
        })
        .unwrap();
    match done.recv_timeout(WATCHDOG) {
        Ok(()) => runner.join().unwrap(),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            // The scenario panicked (an event that never came: a thread stuck in a log line?).
            if let Err(p) = runner.join() {
                eprintln!("the scenario failed at step: {}; last lines: {:#?}", STEP.lock().unwrap(), last_lines());
                std::panic::resume_unwind(p);
            }
        }
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
            panic!(
                "deadlock: the scenario did not finish within {WATCHDOG:?}, stuck at step: {}; {} lines logged, \
                 {} callbacks returned; last lines (newest first): {:#?}",
                STEP.lock().unwrap(),
                LINES.load(SeqCst),
                REENTERED.load(SeqCst),
                last_lines()
            );
        }
    }
    let text = TEXT.lock().unwrap();
    let has = |words: &str| text.iter().any(|l| l.contains(words));
    for words in ["accepted", "Close received", "upgraded: HTTP 101", "is not registered", "HTTP 404", "HTTP 403"] {
        assert!(has(words), "no line with '{words}': {text:#?}");
    }
    assert_eq!(LINES.load(SeqCst), REENTERED.load(SeqCst) + NESTED.load(SeqCst), "every line's callback returned");
}
