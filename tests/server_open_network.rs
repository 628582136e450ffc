//! The endpoint server on an open network (issue 21): what a client can do
//! to it before its upgrade is admitted, and what a real client sees while
//! others do it.
//!
//! * Threads: silent and byte-a-second sockets cost no thread (at most 8
//!   above the admitted connections' count) and do not count against
//!   `max_connections`; a real upgrade is answered at once meanwhile.
//! * `max_pending`: sockets past it are closed at once (and logged at WARN at
//!   most once a second); the handshake timeout frees the places.
//! * Bytes, not lines: a head over 64 KiB, however it is split, is answered
//!   431 (414 for the request line) while the client is still sending, and a
//!   flood with no newline leaves the server's memory where it was.
//! * Origin, version, key and absolute-form answers (RFC 6455, RFC 9112), and
//!   the log line naming the endpoint.
//! * A hostile-mix soak (`WSC_SOAK_SECS`, default 60): legitimate clients
//!   echo without error and within bounded latency while others attack.
//!
//! The server runs in this process, so its threads and resident memory are
//! read from `/proc/self`; every test takes `serial()` so that no other test
//! of this binary moves them (and the log callback is process-wide).

mod common;

use common::raw_http::*;
use common::*;
use std::ffi::{c_char, c_void, CStr};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::protocol::Role;
use tungstenite::WebSocket;
use wsc::ffi::{self, wsc_log_level as L, wsc_status};
use wsc::{Connection, Event, Server};

/// The handler's name and the endpoint it serves: different on purpose, so
/// a log line naming one cannot pass for naming the other.
const HANDLER: &str = "open-net/echo";
const ENDPOINT: &str = "svc";
const PATH: &str = "/websockets/v4/service/svc";

/// "At once": generous on two shared cores, far below any timeout in play.
const AT_ONCE: Duration = Duration::from_secs(2);
/// How long a refusal may take to arrive (a server that never answers fails here).
const ANSWER: Duration = Duration::from_secs(10);
/// A handshake timeout no test waits for.
const LONG: Duration = Duration::from_secs(60);

/// Registers the echo handler (server side echoes every message).
fn register_echo() {
    wsc::register_handler(HANDLER, |conn: &Connection, event: &Event| {
        if let (Some(_), Event::Message(m)) = (conn.endpoint(), event) {
            let _ = conn.send_message(m.clone());
        }
    })
    .unwrap();
}

/// A server with the echo endpoint, handshake timeout `timeout`.
fn server(max_connections: u32, timeout: Duration) -> Server {
    register_echo();
    let server = Server::bind("127.0.0.1:0").endpoint(ENDPOINT, HANDLER).start().unwrap();
    server.set_limits(max_connections, 64 << 20, timeout).unwrap();
    server
}

type Ws = WebSocket<TcpStream>;

/// A plain tungstenite client's upgrade: the socket or the HTTP status it got.
fn upgrade(addr: SocketAddr) -> Result<Ws, String> {
    upgrade_over(connect(addr), addr)
}

/// The same over `s`, a connection to `addr`.
fn upgrade_over(s: TcpStream, addr: SocketAddr) -> Result<Ws, String> {
    s.set_read_timeout(Some(ANSWER)).unwrap();
    s.set_write_timeout(Some(ANSWER)).unwrap();
    match tungstenite::client(format!("ws://{addr}{PATH}"), s) {
        Ok((ws, response)) => {
            assert_eq!(response.status(), 101);
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => Err(format!("HTTP {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// An upgrade that must be answered 101 at once, and then echo.
fn upgrade_at_once(addr: SocketAddr, what: &str) -> (Ws, Duration) {
    let started = Instant::now();
    let mut ws = upgrade(addr).unwrap_or_else(|e| panic!("{what}: the upgrade failed: {e}"));
    let took = started.elapsed();
    assert!(took < AT_ONCE, "{what}: the upgrade took {took:?}");
    echo(&mut ws, what);
    (ws, took)
}

fn echo(ws: &mut Ws, text: &str) {
    ws.send(tungstenite::Message::text(text)).unwrap();
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => return assert_eq!(t.as_str(), text),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("expected the echo of {text:?}, got {other:?}"),
        }
    }
}

/// The largest value of `probe` seen over `window`, sampled every 20 ms
/// (a measurement over a window, not a wait for an event).
fn peak_during(window: Duration, mut probe: impl FnMut() -> usize) -> usize {
    let until = Instant::now() + window;
    let mut peak = probe();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        peak = peak.max(probe());
    }
    peak
}

// ------------------------------------------------------------ log capture

type Line = (L, String);
static LINES: Mutex<Vec<Line>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_log(level: L, _id: u64, message: *const c_char, _user: *mut c_void) {
    // SAFETY: wsc passes a NUL-terminated string valid for the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    LINES.lock().unwrap_or_else(|p| p.into_inner()).push((level, text));
}

/// wsc's log lines up to `max` while it lives (the callback is process-wide).
struct LogCapture;

impl LogCapture {
    fn install(max: L) -> LogCapture {
        LINES.lock().unwrap_or_else(|p| p.into_inner()).clear();
        // SAFETY: a valid callback; user_data unused.
        let st = unsafe { ffi::wsc_set_log_callback(Some(on_log), max.into(), std::ptr::null_mut()) };
        assert_eq!(st, wsc_status::WSC_OK);
        LogCapture
    }

    fn lines(&self, pred: impl Fn(&Line) -> bool) -> Vec<Line> {
        LINES.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|l| pred(l)).cloned().collect()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        // SAFETY: NULL turns logging off.
        unsafe { ffi::wsc_set_log_callback(None, L::WSC_LOG_ERROR.into(), std::ptr::null_mut()) };
    }
}

// ----------------------------------------------------------------- threads

#[test]
fn silent_and_trickling_sockets_cost_no_thread_and_a_real_upgrade_gets_in_at_once() {
    let _serial = serial();
    raise_fd_limit(8192);
    let server = server(1000, LONG);
    let addr = server.local_addr();
    // Only admitted connections: one real client, its echo proving its worker runs.
    let (mut admitted, _) = upgrade_at_once(addr, "the first client");
    let with_admitted = all_threads();
    let silent = silent_sockets(addr, 300);
    let trickle = Trickle::start(addr, 300, Duration::from_secs(1)); // + the test's own trickling thread
    let peak = peak_during(Duration::from_secs(3), all_threads);
    let (mut late, took) = upgrade_at_once(addr, "an upgrade among 600 pending sockets");
    let peak = peak.max(all_threads());
    println!(
        "threads: {with_admitted} with one admitted connection, peak {peak} with 300 silent + 300 trickling \
         sockets; an upgrade meanwhile took {took:?}"
    );
    assert!(
        peak <= with_admitted + 1 + 8,
        "600 pending sockets raised the threads from {with_admitted} to {peak} (the test adds 1)"
    );
    echo(&mut admitted, "the first client still works");
    echo(&mut late, "and so does the late one");
    let trickled = trickle.stop();
    assert!(trickled.iter().chain(&silent).all(open_now), "pending sockets are held until the timeout");
    drop((silent, trickled, admitted, late));
    server.stop().unwrap();
}

#[test]
fn silent_sockets_do_not_count_against_max_connections() {
    let _serial = serial();
    raise_fd_limit(8192);
    let n = 4;
    let server = server(n, LONG);
    let addr = server.local_addr();
    let mut real: Vec<Ws> = (1..n).map(|i| upgrade_at_once(addr, &format!("real client {i}")).0).collect();
    let silent = silent_sockets(addr, 300);
    let with_silent = all_threads();
    let (last, took) = upgrade_at_once(addr, "the Nth real client among 300 silent sockets");
    println!("the {n}th real client among 300 silent sockets: 101 after {took:?}");
    real.push(last);
    // The limit itself still holds: one more real client is refused with 503, at once.
    let started = Instant::now();
    assert_eq!(upgrade(addr).err().as_deref(), Some("HTTP 503 Service Unavailable"), "past max_connections");
    assert!(started.elapsed() < AT_ONCE, "the 503 took {:?}", started.elapsed());
    assert!(all_threads() <= with_silent + 1 + 8, "threads {} (from {with_silent})", all_threads());
    for (i, ws) in real.iter_mut().enumerate() {
        echo(ws, &format!("real client {i} still echoes"));
    }
    drop(silent);
    server.stop().unwrap();
}

// ------------------------------------------------------------- max_pending

#[test]
fn past_max_pending_new_sockets_are_closed_at_once_and_logged_at_most_once_a_second() {
    let _serial = serial();
    let log = LogCapture::install(L::WSC_LOG_WARN);
    let server = server(1000, LONG);
    let addr = server.local_addr();
    server.set_max_pending(50).unwrap();
    let started = Instant::now();
    let mut held = silent_sockets(addr, 50);
    let mut extra = silent_sockets(addr, 30);
    let deadline = Instant::now() + ANSWER;
    for (i, s) in extra.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(closed_within(s, left), "socket {} past max_pending 50 was not closed", 50 + i);
    }
    let took = started.elapsed();
    println!("30 sockets past max_pending 50 closed within {took:?} of the first connect");
    assert!(took < Duration::from_secs(5), "closing them took {took:?}");
    assert!(held.iter().all(open_now), "the 50 within the limit are held");
    // Counted and logged, at most once a second.
    assert!(eventually(DEADLINE, || !log.lines(|(l, m)| *l == L::WSC_LOG_WARN && m.contains("pending")).is_empty()));
    let warned = log.lines(|(l, m)| *l == L::WSC_LOG_WARN && m.contains("pending"));
    let secs = started.elapsed().as_secs() as usize;
    assert!(warned.len() <= secs + 2, "{} WARN lines in {secs} s: {warned:?}", warned.len());
    // Places free up as held sockets leave: a real client gets in.
    held.truncate(40);
    let mut attempts = 0;
    let mut got = None;
    assert!(eventually(DEADLINE, || {
        attempts += 1;
        got = upgrade(addr).ok();
        got.is_some()
    }));
    echo(got.as_mut().unwrap(), "in after 10 pending sockets left");
    println!("a real client got in after {attempts} attempt(s) once 10 places were free");
    server.stop().unwrap();
}

#[test]
fn the_handshake_timeout_closes_pending_sockets_and_frees_their_places() {
    let _serial = serial();
    let timeout = Duration::from_millis(1000);
    let server = server(1000, timeout);
    let addr = server.local_addr();
    server.set_max_pending(20).unwrap();
    let started = Instant::now();
    let mut pending = silent_sockets(addr, 20);
    let mut trickling = connect(addr);
    trickling.write_all(b"GET /websockets/v4/service/svc HTTP/1.1\r\nX-Slow: ").unwrap();
    // The 21st: past the limit, closed at once.
    assert!(closed_within(&mut trickling, AT_ONCE), "the 21st socket was not closed at once");
    assert!(started.elapsed() < timeout, "closed at once, not at the timeout: {:?}", started.elapsed());
    for (i, s) in pending.iter_mut().enumerate() {
        assert!(closed_within(s, ANSWER), "pending socket {i} outlived the handshake timeout");
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(950), "closed before the timeout: {took:?}");
    println!("20 silent sockets closed {took:?} after their connects (handshake timeout {timeout:?})");
    upgrade_at_once(addr, "a real client once the places are free");
    server.stop().unwrap();
}

#[test]
fn max_pending_zero_is_refused_and_one_holds_exactly_one() {
    let _serial = serial();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    assert!(matches!(server.set_max_pending(0), Err(wsc::Error::InvalidArgument(_))));
    server.set_max_pending(u32::MAX).unwrap();
    server.set_max_pending(1).unwrap();
    let held = connect(addr);
    let mut second = connect(addr);
    assert!(closed_within(&mut second, ANSWER), "a second pending socket past max_pending 1 was not closed");
    assert!(open_now(&held));
    drop(held);
    let mut got = None;
    assert!(eventually(DEADLINE, || {
        got = upgrade(addr).ok();
        got.is_some()
    }));
    echo(got.as_mut().unwrap(), "the only place");
    server.stop().unwrap();
}

// ------------------------------------------------------------- byte limits

const LIMIT: usize = 64 << 10;

/// A head that never ends, of `len` bytes: `kind` is what it is made of.
fn endless_head(kind: &str, len: usize) -> Vec<u8> {
    let mut head = match kind {
        "no newline" => b"GET /".to_vec(),
        "one giant header line" => format!("GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ").into_bytes(),
        _ => format!("GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes(),
    };
    let value = if kind == "many header lines" { "v".repeat(600) } else { "v".into() };
    let mut i = 0;
    while head.len() < len {
        if kind.starts_with("many") {
            head.extend_from_slice(format!("X-Line-{i:05}: {value}\r\n").as_bytes());
            i += 1;
        } else {
            head.push(b'a');
        }
    }
    head.truncate(len);
    head
}

/// The status a head of `kind` gets past the limit: one with no newline is
/// all request line (414, RFC 9112 §3); any other is a head too large (431),
/// whatever its lines (a head that never ends is never parsed, so
/// tungstenite's 124-header limit does not come first).
fn wanted(kind: &str) -> &'static [u16] {
    match kind {
        "no newline" => &[414],
        _ => &[431],
    }
}

/// Sends every piece, then reads: one of `statuses` and a close. The
/// server keeps reading (and discarding) after its answer while the client
/// is still sending (a lingering close), so every write succeeds: a server
/// that closes at once resets the connection and the client's writes fail.
/// Returns how long the exchange took.
fn refused(addr: SocketAddr, what: &str, pieces: &[Vec<u8>], pace: Duration, statuses: &[u16]) -> Duration {
    let started = Instant::now();
    let total: usize = pieces.iter().map(Vec::len).sum();
    let (answer, written) = send_then_read(addr, pieces, pace, ANSWER);
    let answer = answer.unwrap_or_else(|e| panic!("{what}: no answer read ({written} of {total} bytes written): {e}"));
    assert!(statuses.contains(&answer.status), "{what}: expected {statuses:?}, got {}", answer.head);
    assert!(answer.closed, "{what}: the server did not close after {}", answer.status);
    assert_eq!(written, total as u64, "{what}: the server stopped reading before the client had sent everything");
    started.elapsed()
}

/// Sends `head` up to one byte past the limit, one byte a millisecond over
/// its last 300 bytes, and stops there: the answer must come now, not at
/// the timeout or the close. (A server that refuses earlier, as tungstenite's
/// parser does past 124 headers, may close first: the writes stop there.)
fn refused_one_byte_over(addr: SocketAddr, what: &str, head: &[u8], statuses: &[u16]) -> Duration {
    let mut s = connect(addr);
    let _ = s.write_all(&head[..LIMIT - 300]);
    for b in &head[LIMIT - 300..=LIMIT] {
        std::thread::sleep(Duration::from_millis(1)); // the client's pace
        if s.write_all(&[*b]).is_err() {
            break;
        }
    }
    let started = Instant::now();
    let answer = read_answer(&mut s, ANSWER).unwrap_or_else(|e| panic!("{what}: no answer one byte past 64 KiB: {e}"));
    assert!(statuses.contains(&answer.status), "{what}: expected {statuses:?}, got {}", answer.head);
    assert!(answer.closed, "{what}: the server did not close after {}", answer.status);
    started.elapsed()
}

#[test]
fn a_head_over_64_kib_gets_431_however_it_is_split_and_whatever_it_holds() {
    let _serial = serial();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    // 200 KiB in all: the client is still sending well after the limit is passed.
    for kind in ["no newline", "one giant header line", "many header lines", "many short header lines"] {
        let head = endless_head(kind, 200 << 10);
        let statuses = wanted(kind);
        let t1 = refused(addr, &format!("{kind}, one write"), std::slice::from_ref(&head), Duration::ZERO, statuses);
        let two = [head[..40 << 10].to_vec(), head[40 << 10..].to_vec()];
        let t2 = refused(addr, &format!("{kind}, two writes"), &two, Duration::ZERO, statuses);
        let at_limit = [head[..LIMIT].to_vec(), head[LIMIT..LIMIT + 1].to_vec(), head[LIMIT + 1..].to_vec()];
        refused(addr, &format!("{kind}, split at the limit"), &at_limit, Duration::from_millis(50), statuses);
        let pieces = small_pieces(&head, 97, mix);
        let t3 = refused(addr, &format!("{kind}, pieces of 1-97 bytes"), &pieces, Duration::ZERO, statuses);
        let t4 = refused_one_byte_over(addr, &format!("{kind}, byte by byte"), &head, statuses);
        println!(
            "{kind}: refused after {t1:?} (one write), {t2:?} (two), {t3:?} (small pieces); \
             {t4:?} after the byte past the limit (byte by byte)"
        );
    }
    server.stop().unwrap();
}

/// A complete upgrade head of `len` bytes, padded with header lines of
/// 1,000 bytes (so 64 KiB pass before tungstenite's 124 headers) and, to the
/// exact length, one last `X-Pad` header.
fn complete_head(len: usize) -> Vec<u8> {
    let mut extra = String::new();
    let mut i = 0;
    while upgrade_head(PATH, &extra).len() + 1000 < len {
        extra.push_str(&format!("X-Pad-{i:06}: {}\r\n", "p".repeat(984)));
        i += 1;
    }
    let base = upgrade_head(PATH, &format!("{extra}X-Pad: \r\n")).len();
    assert!(base <= len, "{base} > {len}");
    let head = upgrade_head(PATH, &format!("{extra}X-Pad: {}\r\n", "q".repeat(len - base)));
    assert_eq!(head.len(), len);
    head.into_bytes()
}

#[test]
fn complete_heads_over_64_kib_get_431_and_one_of_exactly_64_kib_is_served() {
    let _serial = serial();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    // The edge: 65,536 bytes (the blank line included) is within the limit.
    let mut s = connect(addr);
    s.write_all(&complete_head(LIMIT)).unwrap();
    let answer = read_answer(&mut s, ANSWER).unwrap();
    assert_eq!(answer.status, 101, "a head of exactly 64 KiB: {}", answer.head);
    let mut ws = WebSocket::from_raw_socket(s, Role::Client, None);
    echo(&mut ws, "a 64 KiB head");
    for len in [LIMIT + 1, 100_000, 1_000_000] {
        let head = complete_head(len);
        let t =
            refused(addr, &format!("a complete {len}-byte head"), std::slice::from_ref(&head), Duration::ZERO, &[431]);
        let two = [head[..LIMIT].to_vec(), head[LIMIT..].to_vec()];
        let t2 =
            refused(addr, &format!("a complete {len}-byte head, two writes"), &two, Duration::from_millis(20), &[431]);
        println!("a complete {len}-byte head: 431 after {t:?} (one write), {t2:?} (two)");
    }
    // One giant header line in a complete head.
    let giant = upgrade_head(PATH, &format!("X-Big: {}\r\n", "b".repeat(100_000))).into_bytes();
    refused(addr, "a complete head with a 100 KB header line", &[giant], Duration::ZERO, &[431]);
    server.stop().unwrap();
}

#[test]
fn a_request_line_over_64_kib_gets_414() {
    let _serial = serial();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    let line = format!("GET {PATH}?q={} HTTP/1.1\r\n", "q".repeat(LIMIT + 100));
    let head = format!("{line}Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").into_bytes();
    refused(addr, "a long request line, one write", std::slice::from_ref(&head), Duration::ZERO, &[414]);
    let two = [head[..LIMIT].to_vec(), head[LIMIT..].to_vec()];
    refused(addr, "a long request line, split at the limit", &two, Duration::from_millis(20), &[414]);
    let pieces = small_pieces(&head, 97, mix);
    refused(addr, "a long request line, small pieces", &pieces, Duration::ZERO, &[414]);
    refused_one_byte_over(addr, "a long request line, byte by byte", &head, &[414]);
    server.stop().unwrap();
}

#[test]
fn a_flood_with_no_newline_leaves_the_server_within_a_few_mib_and_gets_an_answer() {
    let _serial = serial();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    const TOTAL: u64 = 256 << 20;
    let chunk = vec![b'a'; 1 << 20]; // allocated (and touched) before the idle figure
    let (go_tx, go) = crossbeam_channel::bounded::<()>(1);
    let mut reader = connect(addr);
    let mut writer = reader.try_clone().unwrap();
    writer.set_write_timeout(Some(ANSWER)).unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let counted = written.clone();
    let flood = std::thread::spawn(move || {
        go.recv().unwrap();
        if writer.write_all(b"GET /").is_err() {
            return;
        }
        while counted.load(Ordering::Relaxed) < TOTAL {
            if writer.write_all(&chunk).is_err() {
                return;
            }
            counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let (answer_tx, answer_rx) = crossbeam_channel::bounded(1);
    let answering = std::thread::spawn(move || {
        let _ = answer_tx.send(read_answer(&mut reader, ANSWER));
        reader // kept open until the flood is over
    });
    let idle = rss_kib();
    go_tx.send(()).unwrap();
    let started = Instant::now();
    let mut peak = idle;
    let answer = loop {
        peak = peak.max(rss_kib());
        match answer_rx.recv_timeout(Duration::from_millis(5)) {
            Ok(a) => break a,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    };
    let answered_after = started.elapsed();
    // Keep sampling until the flood has ended (the server closed, or all was sent).
    while !flood.is_finished() && started.elapsed() < DEADLINE {
        peak = peak.max(rss_kib());
        std::thread::sleep(Duration::from_millis(5));
    }
    flood.join().unwrap();
    drop(answering.join().unwrap());
    let sent = written.load(Ordering::Relaxed);
    println!(
        "flood with no newline: {} MiB written, answered after {answered_after:?}, RSS idle {idle} KiB, peak {peak} KiB (+{} KiB)",
        sent >> 20,
        peak.saturating_sub(idle)
    );
    let answer = answer.unwrap_or_else(|e| panic!("no answer to the flood ({} MiB written): {e}", sent >> 20));
    assert_eq!(answer.status, 414, "all request line: {}", answer.head);
    assert!(answer.closed, "closed after the answer");
    assert!(peak <= idle + 8 * 1024, "RSS rose from {idle} KiB to {peak} KiB during the flood");
    server.stop().unwrap();
}

// ------------------------------------------------------------------ Origin

#[test]
fn only_an_exact_allowed_origin_is_admitted() {
    let _serial = serial();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    server.add_allowed_origin("http://good.example").unwrap();
    let with = |origin_lines: &[u8]| {
        let mut head = format!("GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n").into_bytes();
        head.extend_from_slice(origin_lines);
        head.extend_from_slice(b"\r\n");
        status_of(addr, &head)
    };
    assert_eq!(with(b"Origin: http://good.example\r\n"), 101, "the exact origin");
    assert_eq!(with(b""), 101, "no Origin (a program, not a browser)");
    let refused: [(&str, &[u8]); 10] = [
        ("another origin", b"Origin: http://evil.example\r\n"),
        ("a byte 0x80 inside", b"Origin: http://good.ex\x80ample\r\n"),
        ("a byte 0xff after", b"Origin: http://good.example\xff\r\n"),
        ("a tab inside", b"Origin: http://good.\texample\r\n"),
        ("a second Origin after the allowed one", b"Origin: http://good.example\r\nOrigin: http://evil.example\r\n"),
        ("the allowed one twice", b"Origin: http://good.example\r\nOrigin: http://good.example\r\n"),
        ("an empty Origin", b"Origin: \r\n"),
        ("another case", b"Origin: HTTP://GOOD.EXAMPLE\r\n"),
        ("a trailing slash", b"Origin: http://good.example/\r\n"),
        ("a longer name", b"Origin: http://good.example.evil\r\n"),
    ];
    for (what, lines) in refused {
        assert_eq!(with(lines), 403, "{what}");
    }
    server.stop().unwrap();
}

// ------------------------------------------------------------- RFC answers

#[test]
fn an_unsupported_version_gets_426_naming_13() {
    let _serial = serial();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    for version in ["8", "14", "0"] {
        let head = upgrade_head_without_key(
            PATH,
            &format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: {version}\r\n"),
        );
        let answer = exchange(addr, head.as_bytes(), ANSWER).unwrap();
        assert_eq!(answer.status, 426, "version {version}: {}", answer.head);
        assert_eq!(answer.header("Sec-WebSocket-Version"), Some("13"), "{}", answer.head);
        assert!(answer.header("Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")), "{}", answer.head);
        assert!(answer.closed);
    }
    server.stop().unwrap();
}

#[test]
fn duplicated_conflicting_or_malformed_keys_get_400() {
    let _serial = serial();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    let v13 = "Sec-WebSocket-Version: 13\r\n";
    let with_keys = |keys: &[&str]| {
        let lines: String = keys.iter().map(|k| format!("Sec-WebSocket-Key: {k}\r\n")).collect();
        status_of(addr, upgrade_head_without_key(PATH, &format!("{v13}{lines}")).as_bytes())
    };
    assert_eq!(with_keys(&["AAECAwQFBgcICQoLDA0ODw=="]), 101, "another valid key (16 bytes)");
    let bad: [(&str, &[&str]); 9] = [
        ("the same key twice", &[KEY, KEY]),
        ("two different keys", &[KEY, "AAECAwQFBgcICQoLDA0ODw=="]),
        ("not base64", &["!!!!!!!!!!!!!!!!!!!!!!=="]),
        ("too short", &["abc"]),
        ("no padding", &["dGhlIHNhbXBsZSBub25jZQ"]),
        ("15 bytes", &["AAECAwQFBgcICQoLDA0O"]),
        ("17 bytes", &["AAECAwQFBgcICQoLDA0ODxA="]),
        ("empty", &[""]),
        ("two keys in one header", &[&format!("{KEY}, {KEY}")]),
    ];
    for (what, keys) in bad {
        assert_eq!(with_keys(keys), 400, "{what}: {keys:?}");
    }
    // No key at all is not an upgrade either.
    assert_eq!(status_of(addr, upgrade_head_without_key(PATH, v13).as_bytes()), 400, "no key");
    server.stop().unwrap();
}

#[test]
fn an_absolute_form_target_is_routed_by_its_path_and_logged_as_its_url() {
    let _serial = serial();
    let log = LogCapture::install(L::WSC_LOG_INFO);
    let server = server(1000, LONG);
    let addr = server.local_addr();
    let mut s = connect(addr);
    s.write_all(upgrade_head(&format!("http://{addr}{PATH}"), "").as_bytes()).unwrap();
    let answer = read_answer(&mut s, ANSWER).unwrap();
    assert_eq!(answer.status, 101, "{}", answer.head);
    let mut ws = WebSocket::from_raw_socket(s, Role::Client, None);
    echo(&mut ws, "absolute form");
    let port = format!(":{}", addr.port());
    let accepted = |(_, m): &Line| m.contains("accepted") && m.contains(&port);
    assert!(eventually(DEADLINE, || !log.lines(accepted).is_empty()), "no 'accepted' line");
    let lines = log.lines(accepted);
    let want = format!("accepted ws://{addr}{PATH} on endpoint '{ENDPOINT}'");
    assert!(lines.len() == 1 && lines[0].1.contains(&want), "want {want:?} in {lines:#?}");
    drop(ws);
    server.stop().unwrap();
}

#[test]
fn the_accepted_line_names_the_endpoint_not_the_handler() {
    let _serial = serial();
    let log = LogCapture::install(L::WSC_LOG_INFO);
    let server = server(1000, LONG);
    let addr = server.local_addr();
    let (ws, _) = upgrade_at_once(addr, "a client to log");
    let want = format!("accepted ws://{addr}{PATH} on endpoint '{ENDPOINT}'");
    let found = eventually(DEADLINE, || !log.lines(|(l, m)| *l == L::WSC_LOG_INFO && m.contains(&want)).is_empty());
    let named_handler = log.lines(|(_, m)| m.contains(&format!("on endpoint '{HANDLER}'")));
    assert!(found, "no INFO line with {want:?}: {:#?}", log.lines(|(_, m)| m.contains("accepted")));
    assert!(named_handler.is_empty(), "{named_handler:#?}");
    drop(ws);
    server.stop().unwrap();
}

// -------------------------------------------------------- the hostile mix

/// Latencies in a fixed-size histogram (eight buckets per doubling from
/// 1 µs: quantiles within 9 %, the max exact), so that recording hundreds of
/// thousands of them does not move the RSS the soak watches.
#[derive(Clone)]
struct Histogram {
    counts: [u64; 256],
    n: u64,
    max: Duration,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { counts: [0; 256], n: 0, max: Duration::ZERO }
    }
}

impl Histogram {
    fn record(&mut self, d: Duration) {
        let us = (d.as_nanos() / 1000).max(1) as f64;
        self.counts[((us.log2() * 8.0) as usize).min(255)] += 1;
        self.n += 1;
        self.max = self.max.max(d);
    }

    fn merge(mut self, other: &Histogram) -> Histogram {
        self.counts.iter_mut().zip(&other.counts).for_each(|(a, b)| *a += b);
        self.n += other.n;
        self.max = self.max.max(other.max);
        self
    }

    /// The upper edge of the bucket holding quantile `q` (at most the max).
    fn quantile(&self, q: f64) -> Duration {
        let want = (self.n as f64 * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                let edge = Duration::from_nanos((2f64.powf((i + 1) as f64 / 8.0) * 1000.0) as u64);
                return edge.min(self.max);
            }
        }
        self.max
    }

    fn summary(&self) -> String {
        format!("{}: p50 {:?} p99 {:?} max {:?}", self.n, self.quantile(0.5), self.quantile(0.99), self.max)
    }
}

/// What the legitimate clients measured.
#[derive(Default)]
struct Legit {
    echoes: Histogram,
    upgrades: Histogram,
    errors: Vec<String>,
}

/// One legitimate client: echoes messages of varying size (at a pace of
/// 5 ms), reconnecting every 200 messages, until `end`. It connects from
/// 127.0.0.2 (see `connect_from`).
fn legitimate(addr: SocketAddr, seed: u64, end: Instant) -> Legit {
    let mut out = Legit::default();
    let mut n = 0u64;
    while Instant::now() < end && n < 1_000_000 {
        let started = Instant::now();
        let mut ws = match upgrade_over(connect_from(addr, [127, 0, 0, 2].into()), addr) {
            Ok(ws) => ws,
            Err(e) => {
                out.errors.push(format!("upgrade: {e}"));
                return out;
            }
        };
        out.upgrades.record(started.elapsed());
        for _ in 0..200 {
            if Instant::now() >= end {
                break;
            }
            n += 1;
            let size = (mix(seed ^ n) % 16_384) as usize;
            let text: String = "x".repeat(size) + &n.to_string();
            let started = Instant::now();
            if let Err(e) = ws.send(tungstenite::Message::text(text.clone())) {
                out.errors.push(format!("send: {e}"));
                return out;
            }
            match ws.read() {
                Ok(tungstenite::Message::Text(t)) if t.as_str() == text => out.echoes.record(started.elapsed()),
                Ok(other) => {
                    out.errors.push(format!("unexpected: {}", other.len()));
                    return out;
                }
                Err(e) => {
                    out.errors.push(format!("read: {e}"));
                    return out;
                }
            }
            std::thread::sleep(Duration::from_millis(5)); // the client's pace
        }
        let _ = ws.close(None);
        while ws.read().is_ok() {}
    }
    out
}

/// A hostile client: repeats `attack` every `every` (its pace) until `stop`,
/// at most `max` times; returns how many it made.
fn hostile(stop: &Arc<AtomicBool>, every: Duration, max: u64, mut attack: impl FnMut(u64)) -> u64 {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) && n < max {
        attack(n);
        n += 1;
        std::thread::sleep(every);
    }
    n
}

/// Floods a head with no newline: up to 1 MiB, then leaves.
fn flood_head(addr: SocketAddr) {
    let mut s = connect(addr);
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let chunk = [b'a'; 64 << 10];
    if s.write_all(b"GET /").is_ok() {
        for _ in 0..16 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    }
}

/// Sends 1–4 KiB of garbage, glances at any answer, leaves (half the time with a reset).
fn garbage(addr: SocketAddr, n: u64) {
    let mut s = connect(addr);
    let len = 1024 + (mix(n) % 3072) as usize;
    let bytes: Vec<u8> = (0..len as u64).map(|i| mix(n * 10_007 + i) as u8).collect();
    let _ = s.write_all(&bytes);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = s.read(&mut [0u8; 512]);
    if n % 2 == 0 {
        reset_on_close(&s);
    }
}

/// Upgrades, sends half of a 1,000-byte frame and resets the connection.
fn reset_mid_frame(addr: SocketAddr) {
    let mut s = connect(addr);
    if s.write_all(upgrade_head(PATH, "").as_bytes()).is_ok() && read_answer(&mut s, ANSWER).is_ok() {
        let _ = s.write_all(&half_frame(1000, 500));
    }
    reset_on_close(&s);
}

/// Holds `n` sockets open (silent, or trickling one byte each per second),
/// replacing those the server closes, until `stop`; returns how many it
/// opened. It opens at most 20 every 100 ms: a burst of hundreds of connects
/// overflows the listen backlog (128) whatever the server does, and the
/// dropped SYNs cost every client connecting then a 1 s retransmission.
fn hold(addr: SocketAddr, n: usize, trickle: bool, stop: &Arc<AtomicBool>) -> u64 {
    let mut sockets: Vec<(TcpStream, usize)> = Vec::new();
    let mut opened = 0u64;
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) && round < 100_000 {
        let mut budget = 20;
        sockets.retain_mut(|(s, sent)| {
            if trickle && round % 10 == 0 {
                let _ = s.write(&[trickle_byte(*sent)]);
                *sent += 1;
            }
            open_now(s)
        });
        while sockets.len() < n && budget > 0 {
            sockets.push((connect(addr), 0));
            opened += 1;
            budget -= 1;
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(100)); // the pace
    }
    opened
}

/// The hostile clients of the soak, each on a thread of its own, until stopped.
struct Attackers {
    stop: Arc<AtomicBool>,
    threads: Vec<(&'static str, std::thread::JoinHandle<u64>)>,
}

impl Attackers {
    fn start(addr: SocketAddr) -> Attackers {
        let stop = Arc::new(AtomicBool::new(false));
        let every = |what: &'static str, ms: u64, attack: fn(SocketAddr, u64)| {
            let stop = stop.clone();
            let pace = Duration::from_millis(ms);
            (what, std::thread::spawn(move || hostile(&stop, pace, 1_000_000, |n| attack(addr, n))))
        };
        let holding = |what: &'static str, trickle: bool| {
            let stop = stop.clone();
            (what, std::thread::spawn(move || hold(addr, 200, trickle, &stop)))
        };
        let threads = vec![
            every("head floods (1 MiB, no newline)", 50, |a, _| flood_head(a)),
            every("garbage", 10, garbage),
            every("resets mid-frame", 20, |a, _| reset_mid_frame(a)),
            holding("silent sockets opened (200 held)", false),
            holding("trickling sockets opened (200 held)", true),
        ];
        Attackers { stop, threads }
    }

    /// Stops them; what each did.
    fn stop(self) -> Vec<(&'static str, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.into_iter().map(|(what, t)| (what, t.join().unwrap())).collect()
    }
}

/// The legitimate clients' figures, printed for the README.
fn report(results: &[Legit]) -> (Duration, Duration) {
    let echoes = results.iter().fold(Histogram::default(), |h, r| h.merge(&r.echoes));
    let upgrades = results.iter().fold(Histogram::default(), |h, r| h.merge(&r.upgrades));
    println!("  {} legitimate clients", results.len());
    println!("  echoes {}", echoes.summary());
    println!("  upgrades {}", upgrades.summary());
    assert!(echoes.n > 0 && upgrades.n >= results.len() as u64);
    (echoes.max, upgrades.max)
}

/// The process's resident memory once the allocator has given back the
/// free pages it keeps for reuse (glibc keeps them, and exited threads'
/// stacks, resident): what is left is what is still held.
fn rss_kib_trimmed() -> usize {
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    rss_kib()
}

#[test]
fn hostile_mix_soak() {
    let _serial = serial();
    raise_fd_limit(8192);
    let secs: u64 = std::env::var("WSC_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let legit_clients = 20;
    let server = server(1000, Duration::from_secs(2));
    let addr = server.local_addr();
    let (idle_threads, idle_rss) = (all_threads(), rss_kib());
    let end = Instant::now() + Duration::from_secs(secs);
    let attackers = Attackers::start(addr);
    let legit: Vec<_> =
        (0..legit_clients).map(|seed| std::thread::spawn(move || legitimate(addr, seed, end))).collect();
    let own = legit.len() + attackers.threads.len(); // the test's own threads
    let (mut peak_threads, mut peak_rss) = (0, 0);
    while Instant::now() < end {
        peak_threads = peak_threads.max(all_threads());
        peak_rss = peak_rss.max(rss_kib());
        std::thread::sleep(Duration::from_millis(100)); // the sampling period
    }
    let results: Vec<Legit> = legit.into_iter().map(|t| t.join().unwrap()).collect();
    let counts = attackers.stop();
    let settle = Instant::now();
    let threads_back = eventually(DEADLINE, || all_threads() <= idle_threads);
    let settled_after = settle.elapsed();
    let (after_rss, trimmed) = (rss_kib(), rss_kib_trimmed());
    println!("hostile mix, {secs} s:");
    let (echo_max, upgrade_max) = report(&results);
    counts.iter().for_each(|(what, n)| println!("  {what}: {n}"));
    println!("  threads: idle {idle_threads}, peak {peak_threads} (test's own {own}), back after {settled_after:?}");
    println!("  RSS: idle {idle_rss} KiB, peak {peak_rss} KiB, after {after_rss} KiB ({trimmed} KiB trimmed)");
    let errors: Vec<&String> = results.iter().flat_map(|r| &r.errors).collect();
    assert!(errors.is_empty(), "legitimate clients saw errors: {errors:?}");
    assert!(echo_max < AT_ONCE && upgrade_max < AT_ONCE, "latency: echo max {echo_max:?}, upgrade {upgrade_max:?}");
    // Server threads: the legitimate clients' workers, those of hostile
    // upgrades being torn down, and at most 8 more.
    let bound = idle_threads + own + legit_clients as usize + 8;
    assert!(peak_threads <= bound, "threads peaked at {peak_threads} (idle {idle_threads}, test's own {own})");
    assert!(threads_back, "threads did not return to {idle_threads}: {}", all_threads());
    assert!(peak_rss <= idle_rss + 48 * 1024, "RSS peaked at {peak_rss} KiB (idle {idle_rss} KiB)");
    assert!(trimmed <= idle_rss + 24 * 1024, "RSS stayed at {trimmed} KiB (idle {idle_rss} KiB)");
    server.stop().unwrap();
}

// ------------------------------------------------------------------ edges

#[test]
fn an_unbounded_handshake_timeout_keeps_pending_sockets_and_still_serves() {
    let _serial = serial();
    let server = server(1000, Duration::MAX);
    let addr = server.local_addr();
    let mut silent = silent_sockets(addr, 5);
    upgrade_at_once(addr, "a real client beside silent sockets with no handshake timeout");
    assert!(silent.iter().all(open_now), "no timeout: pending sockets stay");
    server.stop().unwrap();
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(closed_within(s, ANSWER), "pending socket {i} outlived stop");
    }
}

/// Sockets in every state the acceptor holds them in (silent, mid-head,
/// being refused while still sending, lingering) and a thread writing a 101
/// nobody reads: `stop` returns, closes every one of them and leaves no
/// thread of the server behind.
#[test]
fn stop_ends_sockets_in_every_pending_state() {
    let _serial = serial();
    let before = worker_threads();
    let server = server(1000, LONG);
    let addr = server.local_addr();
    let mut sockets = silent_sockets(addr, 3);
    let mut mid_head = connect(addr);
    mid_head.write_all(b"GET /websockets/v4/service/svc HTTP/1.1\r\nHost: x\r\n").unwrap();
    sockets.push(mid_head);
    let mut refused_still_sending = connect(addr);
    refused_still_sending.write_all(&vec![b'a'; LIMIT + 10]).unwrap();
    sockets.push(refused_still_sending);
    let mut lingering = connect(addr);
    lingering.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = read_answer(&mut lingering, ANSWER).unwrap();
    assert_eq!(answer.status, 404);
    sockets.push(lingering);
    let (_ws, _) = upgrade_at_once(addr, "an admitted connection");
    server.stop().unwrap();
    for (i, s) in sockets.iter_mut().enumerate() {
        assert!(closed_within(s, ANSWER), "socket {i} outlived stop");
    }
    assert!(eventually(DEADLINE, || worker_threads() <= before), "{} wsc threads left", worker_threads());
}
