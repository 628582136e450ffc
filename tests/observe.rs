//! Observability (issue 14): statistics against what an independent peer
//! (Node `ws`, tests/interop/obs_server.js) counted, round-trip times
//! against a peer that delays its pongs by a known amount, connect phases,
//! the upgrade response's headers (after open, and for a refused upgrade
//! inside `on_error`), in Rust and through the C ABI.
//!
//! Without Node `ws` installed (tests/interop/setup.sh) the peer tests fail
//! when `CI=true` and otherwise skip loudly, as tests/interop.rs does.

mod common;

use common::peers::{interop_dir, missing, unavailable};
use common::*;
use crossbeam_channel::Receiver;
use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wsc::ffi::{self, wsc_status};
use wsc::{Builder, Connection, ErrorKind, Event, Message, Options};

/// The observability peer, killed when dropped.
struct Peer {
    port: u16,
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }
}

fn peer(test: &str) -> Option<Peer> {
    if let Some(why) = missing() {
        unavailable(test, &why);
        return None;
    }
    let mut child = Command::new("node")
        .arg("obs_server.js")
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node obs_server.js");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().trim_start_matches("{\"port\":").trim_end_matches('}').parse().expect(&line);
    Some(Peer { port, child })
}

fn json_u64(json: &str, key: &str) -> u64 {
    let at = json.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {json}"));
    json[at + key.len() + 3..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// The next event that is not a pong.
fn next_non_pong(rx: &Receiver<Event>) -> Event {
    loop {
        match next_event(rx, "an event") {
            Event::Pong { .. } => continue,
            other => return other,
        }
    }
}

fn next_pong(rx: &Receiver<Event>) -> (tungstenite::Bytes, Option<Duration>) {
    match wait_for(rx, "a pong", |e| matches!(e, Event::Pong { .. })) {
        Event::Pong { data, rtt } => (data, rtt),
        _ => unreachable!(),
    }
}

#[test]
fn statistics_match_what_node_ws_counted() {
    let Some(peer) = peer("statistics_match_what_node_ws_counted") else { return };
    let (conn, rx) = open_channel(
        &peer.url("/count"),
        opts(|o| {
            o.deliver_pongs(true);
        }),
    );
    expect_open(&rx);
    let sizes = [0usize, 1, 125, 126, 65_535, 65_536, 300_000];
    for (i, size) in sizes.iter().enumerate() {
        if i % 2 == 0 {
            conn.send("t".repeat(*size)).unwrap();
        } else {
            conn.send_binary(vec![7u8; *size]).unwrap();
        }
    }
    for _ in sizes {
        assert!(matches!(next_non_pong(&rx), Event::Message(_)));
    }
    conn.ping(&b"stats"[..]).unwrap();
    assert_eq!(next_pong(&rx).0, &b"stats"[..]);
    conn.send("report").unwrap();
    let Event::Message(Message::Text(report)) = next_non_pong(&rx) else { panic!("no report") };
    let s = conn.stats().unwrap();
    let payload: u64 = sizes.iter().map(|s| *s as u64).sum();
    // What Node counted before "report", plus "report" and its answer.
    assert_eq!(json_u64(&report, "received"), sizes.len() as u64);
    assert_eq!(json_u64(&report, "receivedBytes"), payload);
    assert_eq!(s.messages_sent, json_u64(&report, "received") + 1);
    assert_eq!(s.bytes_sent, json_u64(&report, "receivedBytes") + 6);
    assert_eq!(s.messages_received, json_u64(&report, "sent") + 1);
    assert_eq!(s.bytes_received, json_u64(&report, "sentBytes") + report.len() as u64);
    assert_eq!(s.pings_sent, json_u64(&report, "pings"));
    assert_eq!((s.pings_sent, s.pongs_received), (1, 1));
    // Node sends each message as one frame: messages plus the ping / pong.
    assert_eq!(s.frames_sent, s.messages_sent + 1);
    assert_eq!(s.frames_received, s.messages_received + 1);
    assert!(s.last_rtt.is_some());
    assert_eq!(s.reconnects, 0);
    close_cleanly(&conn, &rx);
}

#[test]
fn round_trip_time_of_a_pong_delayed_by_200_ms() {
    let Some(peer) = peer("round_trip_time_of_a_pong_delayed_by_200_ms") else { return };
    let delay = Duration::from_millis(200);
    let (pongs_tx, pongs) = crossbeam_channel::unbounded();
    let conn = Builder::new(peer.url("/delayed-pong?ms=200"))
        .on_pong(move |_, data, rtt| {
            let _ = pongs_tx.send((data.to_vec(), rtt));
        })
        .connect()
        .unwrap();
    // One ping, once open: several pings with one payload would each be
    // answered 200 ms after its own arrival, and the first pong matched to
    // the newest ping would measure less than the delay.
    assert!(eventually(DEADLINE, || conn.state() == Ok(wsc::State::Open)));
    conn.ping(&b"rtt-1"[..]).unwrap();
    let (data, rtt) = next_event(&pongs, "the delayed pong");
    let rtt = rtt.expect("the pong answers our ping");
    assert_eq!(data, b"rtt-1");
    assert!(rtt >= delay && rtt < delay + Duration::from_secs(2), "{rtt:?}");
    let stats = conn.stats().unwrap();
    assert_eq!(stats.last_rtt.map(|d| d.as_millis()), Some(rtt.as_millis()));
    conn.close().unwrap();
    conn.wait(DEADLINE).unwrap();

    // Keepalive pings measure the same round trip.
    let (conn, rx) = open_channel(
        &peer.url("/delayed-pong?ms=200"),
        opts(|o| {
            o.ping_interval(Some(Duration::from_millis(100))).deliver_pongs(true);
        }),
    );
    expect_open(&rx);
    let (data, rtt) = next_pong(&rx);
    assert_eq!(data, &1u64.to_be_bytes()[..], "keepalive pings carry a sequence number");
    let rtt = rtt.expect("answers a keepalive ping");
    assert!(rtt >= delay && rtt < delay + Duration::from_secs(2), "{rtt:?}");
    assert!(conn.stats().unwrap().last_rtt.unwrap() >= delay);
    close_cleanly(&conn, &rx);
}

#[test]
fn a_ping_payload_over_125_bytes_is_refused() {
    let server = echo_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    assert!(matches!(conn.ping(vec![0u8; 126]), Err(wsc::Error::InvalidArgument(_))));
    expect_open(&rx);
    let over = [0u8; 126];
    assert_eq!(unsafe { ffi::wsc_ping(conn.id(), over.as_ptr(), 126) }, wsc_status::WSC_ERR_INVALID_ARGUMENT);
    assert_eq!(unsafe { ffi::wsc_ping(conn.id(), over.as_ptr(), 125) }, wsc_status::WSC_OK);
    assert_eq!(unsafe { ffi::wsc_ping(conn.id(), std::ptr::null(), 0) }, wsc_status::WSC_OK);
    assert!(eventually(DEADLINE, || conn.stats().unwrap().pongs_received == 2));
    close_cleanly(&conn, &rx);
    assert_eq!(conn.ping(&b"late"[..]), Err(wsc::Error::UnknownId));
}

/// A wss server for `localhost` from the test PKI, echoing.
fn tls_echo_server() -> TcpServer {
    use native_tls::{Identity, TlsAcceptor};
    let cert = std::fs::read(test_cert("good.pem")).unwrap();
    let key = std::fs::read(test_cert("good.key")).unwrap();
    let acceptor = std::sync::Arc::new(TlsAcceptor::new(Identity::from_pkcs8(&cert, &key).unwrap()).unwrap());
    TcpServer::local(move |tcp| {
        let Ok(tls) = acceptor.accept(tcp) else { return };
        if let Ok(ws) = tungstenite::accept(tls) {
            echo(ws)
        }
    })
}

#[test]
fn connect_phases_are_measured_and_fit_in_the_connect() {
    // wss://localhost: every phase happens.
    let server = tls_echo_server();
    let url = format!("wss://localhost:{}/", server.addr().port());
    let started = Instant::now();
    let (conn, rx) = open_channel(&url, trusting(&test_cert("ca.pem")));
    expect_open(&rx);
    let took = started.elapsed();
    let p = conn.stats().unwrap().connect;
    assert!(p.dns > Duration::ZERO && p.tcp > Duration::ZERO, "{p:?}");
    assert!(p.tls > Duration::ZERO && p.upgrade > Duration::ZERO, "{p:?}");
    assert_eq!(p.proxy, Duration::ZERO);
    // Phases run one after the other, within the connect.
    assert!(p.dns + p.tcp + p.tls + p.upgrade <= took, "{p:?} in {took:?}");
    // TLS does more round trips than TCP's handshake on loopback.
    assert!(p.tls > p.tcp, "{p:?}");
    let mut c = ffi::wsc_stats { struct_size: std::mem::size_of::<ffi::wsc_stats>(), ..Default::default() };
    assert_eq!(unsafe { ffi::wsc_get_stats(conn.id(), &mut c) }, wsc_status::WSC_OK);
    assert_eq!(u128::from(c.tls_us), p.tls.as_micros());
    assert_eq!(c.struct_size, std::mem::size_of::<ffi::wsc_stats>(), "the whole struct, every field");
    close_cleanly(&conn, &rx);

    // ws:// to an IP literal: no DNS, no TLS.
    let server = echo_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let p = conn.stats().unwrap().connect;
    assert_eq!((p.dns, p.tls, p.proxy), (Duration::ZERO, Duration::ZERO, Duration::ZERO), "{p:?}");
    assert!(p.tcp > Duration::ZERO && p.upgrade > Duration::ZERO, "{p:?}");
    close_cleanly(&conn, &rx);
}

#[test]
fn wsc_get_stats_fills_only_what_the_caller_has_room_for() {
    let server = echo_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    echo_text(&conn, &rx, "counted");
    // An older caller whose struct ends after messages_received.
    let mut old = [0xAAu8; 48];
    old[..8].copy_from_slice(&40usize.to_ne_bytes());
    let st = unsafe { ffi::wsc_get_stats(conn.id(), old.as_mut_ptr().cast()) };
    assert_eq!(st, wsc_status::WSC_OK);
    assert_eq!(usize::from_ne_bytes(old[..8].try_into().unwrap()), 40);
    assert_eq!(u64::from_ne_bytes(old[8..16].try_into().unwrap()), 7, "bytes_sent");
    assert_eq!(u64::from_ne_bytes(old[32..40].try_into().unwrap()), 1, "messages_received");
    assert_eq!(old[40..], [0xAA; 8], "nothing past struct_size");
    let mut zero = ffi::wsc_stats::default();
    assert_eq!(unsafe { ffi::wsc_get_stats(conn.id(), &mut zero) }, wsc_status::WSC_ERR_INVALID_ARGUMENT);
    every_struct_size_gets_whole_fields_only(conn.id());
    assert_eq!(unsafe { ffi::wsc_get_stats(conn.id(), std::ptr::null_mut()) }, wsc_status::WSC_ERR_INVALID_ARGUMENT);
    close_cleanly(&conn, &rx);
    let mut after = ffi::wsc_stats { struct_size: std::mem::size_of::<ffi::wsc_stats>(), ..Default::default() };
    assert_eq!(unsafe { ffi::wsc_get_stats(conn.id(), &mut after) }, wsc_status::WSC_ERR_UNKNOWN_ID);
}

/// Issue 21: a `struct_size` ending inside a field had that field's first
/// bytes written. Every size from 0 to sizeof + 8, in a buffer of canary
/// bytes: only whole fields are written, `struct_size` comes back as the end
/// of the last one, and every byte after it (the cut field, padding, the
/// caller's bytes past `struct_size`) keeps the canary.
fn every_struct_size_gets_whole_fields_only(id: u64) {
    use std::mem::{offset_of, size_of};
    const CANARY: u8 = 0xA5;
    let sizeof = size_of::<ffi::wsc_stats>();
    // Where each field after struct_size ends, in order.
    let ends = [
        offset_of!(ffi::wsc_stats, bytes_sent) + 8,
        offset_of!(ffi::wsc_stats, bytes_received) + 8,
        offset_of!(ffi::wsc_stats, messages_sent) + 8,
        offset_of!(ffi::wsc_stats, messages_received) + 8,
        offset_of!(ffi::wsc_stats, frames_sent) + 8,
        offset_of!(ffi::wsc_stats, frames_received) + 8,
        offset_of!(ffi::wsc_stats, pings_sent) + 8,
        offset_of!(ffi::wsc_stats, pongs_received) + 8,
        offset_of!(ffi::wsc_stats, last_rtt_us) + 4,
        offset_of!(ffi::wsc_stats, reconnects) + 4,
        offset_of!(ffi::wsc_stats, dns_us) + 4,
        offset_of!(ffi::wsc_stats, tcp_us) + 4,
        offset_of!(ffi::wsc_stats, tls_us) + 4,
        offset_of!(ffi::wsc_stats, upgrade_us) + 4,
        offset_of!(ffi::wsc_stats, proxy_us) + 4,
        offset_of!(ffi::wsc_stats, reserved) + 4,
    ];
    let mut full = ffi::wsc_stats { struct_size: sizeof, ..Default::default() };
    assert_eq!(unsafe { ffi::wsc_get_stats(id, &mut full) }, wsc_status::WSC_OK);
    for size in 0..=sizeof + 8 {
        // u64 words: aligned like the struct, and room for sizeof + 16 bytes.
        let mut words = vec![u64::from_ne_bytes([CANARY; 8]); (sizeof + 16) / 8 + 1];
        let bytes: &mut [u8] = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) };
        bytes[..8].copy_from_slice(&size.to_ne_bytes());
        let st = unsafe { ffi::wsc_get_stats(id, words.as_mut_ptr().cast()) };
        let bytes: &[u8] = unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), words.len() * 8) };
        let reported = usize::from_ne_bytes(bytes[..8].try_into().unwrap());
        if size < 8 {
            assert_eq!(st, wsc_status::WSC_ERR_INVALID_ARGUMENT, "struct_size {size}");
            assert_eq!(reported, size, "struct_size {size}: left as it was");
            assert!(bytes[8..].iter().all(|&b| b == CANARY), "struct_size {size}: nothing written");
            continue;
        }
        assert_eq!(st, wsc_status::WSC_OK, "struct_size {size}");
        let expected = ends.iter().copied().filter(|&end| end <= size).max().unwrap_or(8);
        assert_eq!(reported, expected, "struct_size {size}: the end of the last whole field");
        assert!(reported <= size);
        let untouched = bytes[reported..].iter().position(|&b| b != CANARY);
        assert_eq!(
            untouched,
            None,
            "struct_size {size}: byte {:?} after the filled part was written",
            untouched.map(|i| i + reported)
        );
        // What was written is the counters, field by field.
        let filled = unsafe { &*words.as_ptr().cast::<ffi::wsc_stats>() };
        if reported >= offset_of!(ffi::wsc_stats, messages_received) + 8 {
            assert_eq!((filled.bytes_sent, filled.messages_received), (full.bytes_sent, full.messages_received));
        }
        if reported == ends[14] {
            assert_eq!((filled.tcp_us, filled.upgrade_us), (full.tcp_us, full.upgrade_us));
        }
    }
}

fn header(id: u64, name: &str, len: usize) -> Result<String, (wsc_status, String)> {
    let name = CString::new(name).unwrap();
    let mut buf = vec![0 as c_char; len];
    let st = unsafe { ffi::wsc_get_response_header(id, name.as_ptr(), buf.as_mut_ptr(), len) };
    if st != wsc_status::WSC_OK {
        let why = unsafe { CStr::from_ptr(ffi::wsc_last_error()) }.to_string_lossy().into_owned();
        return Err((st, why));
    }
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

#[test]
fn response_headers_after_open() {
    let Some(peer) = peer("response_headers_after_open") else { return };
    let (conn, rx) = open_channel(&peer.url("/cookies"), Options::new());
    assert!(conn.response().is_none() || conn.state() == Ok(wsc::State::Open));
    expect_open(&rx);
    let r = conn.response().expect("kept after open");
    assert_eq!(r.status(), 101);
    assert_eq!(r.header("X-CUSTOM"), Some("wsc-observability"));
    assert_eq!(r.header_joined("set-cookie").as_deref(), Some("session=abc123; Path=/\ntheme=dark"));
    assert_eq!(r.headers().iter().filter(|(n, _)| n == "set-cookie").count(), 2);
    assert_eq!(header(conn.id(), "x-custom", 64).unwrap(), "wsc-observability");
    assert_eq!(header(conn.id(), "Set-Cookie", 64).unwrap(), "session=abc123; Path=/\ntheme=dark");
    let (st, why) = header(conn.id(), "x-custom", 17).unwrap_err();
    assert_eq!(st, wsc_status::WSC_ERR_INVALID_ARGUMENT);
    assert!(why.contains("too small") && why.contains("18"), "{why}");
    let (st, why) = header(conn.id(), "x-absent", 64).unwrap_err();
    assert_eq!(st, wsc_status::WSC_ERR_INVALID_ARGUMENT);
    assert!(why.contains("absent"), "{why}");
    close_cleanly(&conn, &rx);
}

/// What the C `on_error` of a refused upgrade could read.
#[derive(Debug, Default)]
struct Refusal {
    kind: Option<ffi::wsc_error_kind>,
    status: u16,
    www_authenticate: String,
    reason: String,
}

unsafe extern "C" fn refused(id: u64, _message: *const c_char, user: *mut c_void) {
    // SAFETY: user is the Sender below, alive until the test has received.
    let tx = unsafe { &*(user as *const crossbeam_channel::Sender<Refusal>) };
    let _ = tx.send(Refusal {
        kind: Some(ffi::wsc_get_error_kind()),
        status: ffi::wsc_get_http_status(),
        www_authenticate: header(id, "www-authenticate", 256).unwrap_or_else(|e| format!("{e:?}")),
        reason: header(id, "X-Reason", 256).unwrap_or_else(|e| format!("{e:?}")),
    });
}

#[test]
fn a_401_with_headers_reaches_on_error() {
    let Some(peer) = peer("a_401_with_headers_reaches_on_error") else { return };
    // Rust: the response inside on_error.
    let (tx, rx) = crossbeam_channel::unbounded();
    let _conn = Builder::new(peer.url("/deny"))
        .on_error(move |c: &Connection, e| {
            let r = c.response();
            let _ = tx.send((e.kind(), e.http_status(), r));
        })
        .connect()
        .unwrap();
    let (kind, status, response) = next_event(&rx, "on_error");
    assert_eq!(kind, ErrorKind::Handshake { status: Some(401) });
    assert_eq!(status, Some(401));
    let response = response.expect("the refusal is kept");
    assert_eq!(response.status(), 401);
    assert_eq!(response.header("x-reason"), Some("token expired"));

    // C: kind, status and headers inside on_error.
    let (tx, rx) = crossbeam_channel::unbounded::<Refusal>();
    let callbacks = ffi::wsc_callbacks { on_open: None, on_message: None, on_error: Some(refused), on_close: None };
    let url = CString::new(peer.url("/deny")).unwrap();
    let mut id = 0;
    let user = &tx as *const _ as *mut c_void;
    let st = unsafe { ffi::wsc_connect(url.as_ptr(), std::ptr::null(), &callbacks, user, &mut id) };
    assert_eq!(st, wsc_status::WSC_OK);
    let seen = next_event(&rx, "the C on_error");
    assert_eq!(ffi::wsc_wait(id, 20_000), wsc_status::WSC_OK);
    assert_eq!(seen.kind, Some(ffi::wsc_error_kind::WSC_ERROR_HANDSHAKE), "{seen:?}");
    assert_eq!(seen.status, 401);
    assert_eq!(seen.www_authenticate, "Bearer realm=\"wsc\"");
    assert_eq!(seen.reason, "token expired");
    assert_eq!(ffi::wsc_get_error_kind(), ffi::wsc_error_kind::WSC_ERROR_NONE, "outside on_error");
    assert_eq!(ffi::wsc_get_http_status(), 0);
}

#[test]
fn statistics_count_frames_and_a_server_side_connection() {
    // Fragments from a raw peer: each counted as a frame, one message.
    let server = raw_ws_server(|mut s| {
        use std::io::Write;
        let mut out = frame(TEXT, b"frag");
        out.extend(frame(0x00, b"men"));
        out.extend(frame(FIN, b"ted"));
        let _ = s.write_all(&out);
        let _ = read_close_code(&mut s);
        let _ = s.write_all(&close_frame(1000, ""));
    });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "fragmented");
    let s = conn.stats().unwrap();
    assert_eq!((s.frames_received, s.messages_received, s.bytes_received), (3, 1, 10));
    close_cleanly(&conn, &rx);

    // A wsc::Server's connection counts too (read inside its handler).
    let name = "observe/stats-server";
    let (tx, stats) = crossbeam_channel::unbounded();
    wsc::register_handler(name, move |c, e| {
        if let Event::Message(m) = e {
            c.send_message(m.clone()).unwrap();
        }
        if e.is_terminal() {
            let _ = tx.send(c.stats().unwrap());
        }
    })
    .unwrap();
    let server = wsc::Server::bind("127.0.0.1:0").endpoint("stats", name).start().unwrap();
    let (conn, rx) = open_channel(&server.url("stats"), Options::new());
    expect_open(&rx);
    echo_text(&conn, &rx, "server side");
    close_cleanly(&conn, &rx);
    let s = next_event(&stats, "the server side's stats");
    assert_eq!((s.messages_received, s.bytes_received, s.messages_sent, s.bytes_sent), (1, 11, 1, 11));
    assert_eq!(s.frames_received, 2, "the message and the Close");
    assert_eq!(s.connect, wsc::ConnectPhases::default());
}
