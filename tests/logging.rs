//! The log hook (issue 14): wsc's lines through `wsc_set_log_callback`.
//!
//! The `log` crate has one logger per process, and `wsc_shutdown` is
//! process-wide, so these tests live in a binary of their own and run one
//! at a time (`common::serial`).

mod common;

use common::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use wsc::ffi::{self, wsc_log_level as L, wsc_status};
use wsc::{ErrorKind, Options};

type Line = (L, u64, String);

static LINES: Mutex<Vec<Line>> = Mutex::new(Vec::new());
/// The callback calls back into wsc for every line.
static REENTER: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn on_log(level: L, id: u64, message: *const c_char, user: *mut c_void) {
    assert_eq!(user as usize, 0x5eed, "user_data is passed back");
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    if REENTER.load(Ordering::SeqCst) && id != 0 {
        let mut state = ffi::wsc_state::WSC_STATE_OPEN;
        let _ = unsafe { ffi::wsc_get_state(id, &mut state) };
        let mut stats = ffi::wsc_stats { struct_size: std::mem::size_of::<ffi::wsc_stats>(), ..Default::default() };
        let _ = unsafe { ffi::wsc_get_stats(id, &mut stats) };
    }
    LINES.lock().unwrap().push((level, id, text));
}

fn install(max: L) {
    let st = unsafe { ffi::wsc_set_log_callback(Some(on_log), max.into(), 0x5eed as *mut c_void) };
    assert_eq!(st, wsc_status::WSC_OK);
}

fn lines_of(id: u64) -> Vec<Line> {
    LINES.lock().unwrap().iter().filter(|l| l.1 == id).cloned().collect()
}

fn has(lines: &[Line], level: L, words: &str) -> bool {
    lines.iter().any(|(l, _, m)| *l == level && m.contains(words))
}

const SECRETS: [&str; 4] = ["SECRET-TOKEN-1", "SECRET-COOKIE-2", "SECRET-PASS-3", "SECRET-PROXY-AUTH-4"];

#[test]
fn lines_carry_the_id_and_level_and_never_a_credential() {
    let _serial = serial();
    install(L::WSC_LOG_TRACE);
    let server = echo_server();
    let (proxy, heads) = forwarding_http_proxy("127.0.0.1:0");
    let mut o = Options::new();
    o.add_header("Authorization", "Bearer SECRET-TOKEN-1").unwrap();
    o.add_header("Cookie", "sid=SECRET-COOKIE-2").unwrap();
    o.add_header("Proxy-Authorization", "Basic SECRET-PROXY-AUTH-4").unwrap();
    o.add_header("X-Visible", "shown-in-trace").unwrap();
    o.proxy(&format!("http://user:SECRET-PASS-3@{}", proxy.addr())).unwrap();
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    echo_text(&conn, &rx, "hello");
    close_cleanly(&conn, &rx);
    assert!(next_event(&heads, "the CONNECT").contains("Proxy-Authorization: Basic"), "credentials were sent");
    let mine = lines_of(conn.id());
    let text: Vec<String> = mine.iter().map(|(l, _, m)| format!("{l:?} {m}")).collect();
    assert!(has(&mine, L::WSC_LOG_INFO, "connecting to 127.0.0.1"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_INFO, "through proxy http://"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_DEBUG, "TCP connected"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_DEBUG, "opened the tunnel"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_INFO, "upgraded: HTTP 101"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_TRACE, "upgrade request header Authorization: ***"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_TRACE, "upgrade request header X-Visible: shown-in-trace"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_DEBUG, "Close sent: code 1000"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_DEBUG, "Close received: code 1000"), "{text:#?}");
    assert!(has(&mine, L::WSC_LOG_INFO, "connection closed: code 1000"), "{text:#?}");
    for (_, id, m) in &mine {
        assert!(m.starts_with(&format!("conn {id}: ")), "{m}");
    }
    // A failure is an ERROR line, with its kind.
    let (bad, rx) = open_channel(&format!("ws://127.0.0.1:{}/", closed_port()), Options::new());
    expect_error(&rx, ErrorKind::Connect);
    assert!(eventually(DEADLINE, || has(&lines_of(bad.id()), L::WSC_LOG_ERROR, "connection failed (Connect")));
    // No line of any connection, at any level, holds a credential.
    for (_, _, m) in LINES.lock().unwrap().iter() {
        for secret in SECRETS {
            assert!(!m.contains(secret), "credential in a log line: {m}");
        }
    }
    assert_eq!(
        unsafe { ffi::wsc_set_log_callback(None, L::WSC_LOG_TRACE.into(), std::ptr::null_mut()) },
        wsc_status::WSC_OK
    );
}

#[test]
fn the_level_limits_what_is_delivered() {
    let _serial = serial();
    install(L::WSC_LOG_INFO);
    let server = echo_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    close_cleanly(&conn, &rx);
    let mine = lines_of(conn.id());
    assert!(has(&mine, L::WSC_LOG_INFO, "upgraded"), "{mine:?}");
    assert!(mine.iter().all(|(l, _, _)| *l <= L::WSC_LOG_INFO), "{mine:?}");
    for bad in [0u32, 6] {
        let st = unsafe { ffi::wsc_set_log_callback(Some(on_log), bad.into(), std::ptr::null_mut()) };
        assert_eq!(st, wsc_status::WSC_ERR_INVALID_ARGUMENT);
    }
}

#[test]
fn a_log_callback_that_calls_wsc_does_not_deadlock() {
    let _serial = serial();
    install(L::WSC_LOG_TRACE);
    REENTER.store(true, Ordering::SeqCst);
    let server = echo_server();
    let mut o = Options::new();
    o.ping_interval(Some(Duration::from_millis(20)));
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    for i in 0..20 {
        echo_text(&conn, &rx, &format!("re-entrant {i}"));
    }
    assert!(eventually(DEADLINE, || conn.stats().unwrap().pongs_received >= 2));
    close_cleanly(&conn, &rx);
    REENTER.store(false, Ordering::SeqCst);
    assert!(has(&lines_of(conn.id()), L::WSC_LOG_TRACE, "pong received"));
}

#[test]
fn nothing_is_logged_after_shutdown_until_init() {
    let _serial = serial();
    install(L::WSC_LOG_TRACE);
    let server = echo_server();
    let (conns, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| open_channel(&server.url(), Options::new())).unzip();
    for rx in &rxs {
        expect_open(rx);
    }
    assert_eq!(ffi::wsc_shutdown(10_000), wsc_status::WSC_OK);
    let at_shutdown = LINES.lock().unwrap().len();
    assert!(has(&lines_of(conns[0].id()), L::WSC_LOG_DEBUG, "Close sent: code 1001"), "logged while shutting down");
    let url = CString::new(server.url()).unwrap();
    let callbacks = ffi::wsc_callbacks { on_open: None, on_message: None, on_error: None, on_close: None };
    let mut id = 0;
    let st = unsafe { ffi::wsc_connect(url.as_ptr(), std::ptr::null(), &callbacks, std::ptr::null_mut(), &mut id) };
    assert_eq!(st, wsc_status::WSC_ERR_SHUTDOWN);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(LINES.lock().unwrap().len(), at_shutdown, "a line after wsc_shutdown returned WSC_OK");
    assert_eq!(ffi::wsc_init(), wsc_status::WSC_OK);
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    close_cleanly(&conn, &rx);
    assert!(has(&lines_of(conn.id()), L::WSC_LOG_INFO, "connecting"), "the callback stays installed");
}
