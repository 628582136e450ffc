//! Hostile peers (issue 5, section 3): raw TCP servers that break the
//! protocol or the network on purpose. Each test checks that only the
//! affected connection ends, with the documented terminal event and a clear
//! message, that nothing the peer completed before misbehaving is lost, and
//! that a healthy connection opened beforehand still works afterwards.

mod common;

use common::*;
use crossbeam_channel::Receiver;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};
use wsc::{ConnectionError, Error, ErrorKind, Event, Message, Options};

/// Upgrades, writes `bytes`, then reports the code of the client's Close
/// frame (None if it sent none before leaving).
fn hostile(bytes: Vec<u8>) -> (TcpServer, Receiver<Option<u16>>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let server = raw_ws_server(move |mut s| {
        let _ = s.write_all(&bytes);
        let _ = tx.send(read_close_code(&mut s));
    });
    (server, rx)
}

/// A server sends `bytes` after the upgrade: the client must fail with
/// `kind` and tell the server why with close code `code`.
fn violation(bytes: Vec<u8>, options: Options, kind: ErrorKind, code: u16) -> ConnectionError {
    let healthy = Healthy::open();
    let (server, codes) = hostile(bytes);
    let (_conn, rx) = open_channel(&server.url(), options);
    expect_open(&rx);
    let e = expect_error(&rx, kind);
    assert_eq!(codes.recv_timeout(DEADLINE).unwrap(), Some(code), "{e}");
    healthy.check();
    e
}

/// The server answers the upgrade with `response`: the connection fails in
/// the handshake with the status in the error.
fn refused_upgrade(response: &'static str, status: u16) {
    let healthy = Healthy::open();
    let server = http_server(response);
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    let (before, last) = finish(&rx);
    assert!(before.is_empty(), "never opened: {before:?}");
    let Event::Error(e) = last else { panic!("{last:?}") };
    assert_eq!(e.kind(), ErrorKind::Handshake { status: Some(status) });
    assert!(e.message().contains(&status.to_string()), "{e}");
    healthy.check();
}

#[test]
fn never_answers_the_handshake_connect_timeout() {
    let healthy = Healthy::open();
    let (e, took) = connect_to_silent_server(Duration::from_millis(500));
    assert!(e.message().contains("connect timeout"), "{e}");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "{took:?}");
    healthy.check();
}

#[test]
fn answers_http_200() {
    refused_upgrade("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200);
}

#[test]
fn answers_http_301() {
    refused_upgrade("HTTP/1.1 301 Moved Permanently\r\nLocation: ws://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n", 301);
}

#[test]
fn answers_http_403() {
    refused_upgrade("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 403);
}

#[test]
fn answers_http_500() {
    refused_upgrade("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", 500);
}

#[test]
fn bad_sec_websocket_accept() {
    let healthy = Healthy::open();
    let server = http_server(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
    );
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    let e = expect_error(&rx, ErrorKind::Handshake { status: None });
    assert!(e.message().contains("Accept"), "{e}");
    healthy.check();
}

#[test]
fn frame_with_reserved_bits() {
    let e = violation(frame(FIN | 0x70 | TEXT, b"rsv"), Options::new(), ErrorKind::Protocol, 1002);
    assert!(e.message().to_lowercase().contains("reserved bits"), "{e}");
}

#[test]
fn masked_frame_from_server() {
    let e = violation(masked_frame(FIN | TEXT, b"masked"), Options::new(), ErrorKind::Protocol, 1002);
    assert!(e.message().contains("mask"), "{e}");
}

#[test]
fn text_frame_with_invalid_utf8() {
    let e = violation(frame(FIN | TEXT, &[b'o', b'k', 0xC3, 0x28]), Options::new(), ErrorKind::Protocol, 1007);
    assert!(e.message().contains("UTF-8"), "{e}");
}

#[test]
fn control_frame_longer_than_125_bytes() {
    let e = violation(frame(FIN | PING, &[b'p'; 126]), Options::new(), ErrorKind::Protocol, 1002);
    assert!(e.message().to_lowercase().contains("control frame too big"), "{e}");
}

#[test]
fn fragmented_control_frame() {
    let e = violation(frame(PING, b"half"), Options::new(), ErrorKind::Protocol, 1002);
    assert!(e.message().contains("ragmented"), "{e}");
}

#[test]
fn message_larger_than_the_maximum_closes_with_1009() {
    // Three fragments of 400 KiB: each frame fits, the message does not.
    let part = vec![b'x'; 400 << 10];
    let mut bytes = frame(BINARY, &part);
    bytes.extend(frame(0, &part));
    bytes.extend(frame(FIN, &part));
    let o = opts(|o| {
        o.max_message_size(1 << 20).unwrap();
    });
    let e = violation(bytes, o, ErrorKind::MessageTooBig, 1009);
    assert!(e.message().contains("too big"), "{e}");
}

#[test]
fn length_of_two_to_the_63() {
    let mut bytes = vec![FIN | BINARY, 127];
    bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
    bytes.extend_from_slice(b"tail");
    violation(bytes, Options::new(), ErrorKind::MessageTooBig, 1009);
}

#[test]
fn vanishes_mid_frame() {
    let healthy = Healthy::open();
    let server = raw_ws_server(|mut s| {
        let mut out = frame(FIN | TEXT, b"complete");
        out.extend(&frame(FIN | BINARY, &[9u8; 100])[..12]);
        let _ = s.write_all(&out);
    });
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "complete", "the whole message before it is kept");
    let e = expect_error(&rx, ErrorKind::ConnectionLost);
    assert!(e.message().contains("connection lost"), "{e}");
    healthy.check();
}

#[test]
fn half_closes_after_a_message() {
    let healthy = Healthy::open();
    let server = raw_ws_server(|mut s| {
        let _ = s.write_all(&frame(FIN | TEXT, b"last words"));
        let _ = s.shutdown(Shutdown::Write);
        drain(s);
    });
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "last words");
    expect_error(&rx, ErrorKind::ConnectionLost);
    healthy.check();
}

#[test]
fn stops_reading_while_the_client_sends_100_mib() {
    let healthy = Healthy::open();
    let (server, release) = stalled_server();
    let limit = 8 << 20;
    let o = opts(|o| {
        o.max_buffered_bytes(limit).unwrap();
        o.close_timeout(Duration::from_millis(500));
    });
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let rss_before = rss_bytes();
    let (mut accepted, mut refused) = (0usize, 0usize);
    for i in 0..1600 {
        // 1600 x 64 KiB = 100 MiB, each a fresh allocation.
        match conn.send_binary(vec![i as u8; 64 << 10]) {
            Ok(()) => accepted += 64 << 10,
            Err(Error::QueueFull { limit: l, buffered }) => {
                assert!(l == limit && buffered <= limit);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(conn.buffered_amount().unwrap() <= limit);
    }
    assert!(refused > 0, "QueueFull never came");
    assert!(accepted <= limit + (32 << 20), "accepted {accepted} bytes");
    let grew = rss_bytes().saturating_sub(rss_before);
    assert!(grew < 64 << 20, "memory grew by {grew} bytes");
    let asked = Instant::now();
    conn.close().unwrap();
    let reason = expect_close(&rx, 1006);
    assert!(asked.elapsed() < Duration::from_secs(5), "close took {:?}", asked.elapsed());
    assert!(reason.contains("close timeout") && reason.contains("queued messages"), "{reason}");
    drop(release);
    healthy.check();
}

#[test]
fn never_answers_the_close_frame() {
    let healthy = Healthy::open();
    let server = raw_ws_server(drain);
    let o = opts(|o| {
        o.close_timeout(Duration::from_millis(500));
    });
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let asked = Instant::now();
    conn.close().unwrap();
    let reason = expect_close(&rx, 1006);
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "{took:?}");
    assert!(reason.contains("close timeout"), "{reason}");
    healthy.check();
}

#[test]
fn never_answers_pings() {
    let healthy = Healthy::open();
    let server = raw_ws_server(drain);
    let o = opts(|o| {
        o.ping_interval(Some(Duration::from_millis(200)));
        o.pong_timeout(Duration::from_millis(400));
    });
    let (_conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let e = expect_error(&rx, ErrorKind::Timeout);
    assert!(e.message().contains("keepalive"), "{e}");
    healthy.check();
}

/// Writes `bytes` one at a time, 100 ms apart.
fn trickle(s: &mut TcpStream, bytes: &[u8]) {
    for b in bytes {
        if s.write_all(&[*b]).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn slowloris_handshake_hits_the_connect_timeout() {
    let healthy = Healthy::open();
    let server = TcpServer::local(|mut s| {
        if let Ok(head) = read_request(&mut s) {
            trickle(&mut s, upgrade_response(&head).as_bytes());
        }
    });
    let o = opts(|o| {
        o.connect_timeout(Duration::from_secs(1));
    });
    let started = Instant::now();
    let (_conn, rx) = open_channel(&server.url(), o);
    expect_error(&rx, ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    healthy.check();
}

#[test]
fn slowloris_message_arrives_whole() {
    let healthy = Healthy::open();
    let server = raw_ws_server(|mut s| {
        trickle(&mut s, &frame(FIN | TEXT, b"slowly"));
        let _ = s.write_all(&close_frame(1000, ""));
        let _ = read_close_code(&mut s);
    });
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    let (events, last) = finish(&rx);
    let slow = Event::Message(Message::Text("slowly".into()));
    assert_eq!(events, vec![Event::Open, slow]);
    assert!(matches!(last, Event::Close { code: 1000, .. }), "{last:?}");
    healthy.check();
}

#[test]
fn reset_during_a_large_send_with_sigpipe_at_default() {
    sigpipe_default();
    let healthy = Healthy::open();
    let server = raw_ws_server(|mut s| {
        let mut buf = vec![0u8; 1 << 20];
        let _ = std::io::Read::read_exact(&mut s, &mut buf);
        reset_on_close(&s);
    });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let e = flood_until_reset(&conn, &rx);
    assert!(e.message().contains("connection lost"), "{e}");
    healthy.check();
}

/// Every row above, through the C ABI: inside `on_error`,
/// `wsc_get_error_kind()` and `wsc_get_http_status()` say what the Rust
/// `ErrorKind` says (issue 14).
#[test]
fn error_kind_reaches_c_for_every_hostile_row() {
    use wsc::ffi::{self, wsc_error_kind as K};
    let none = |_: *mut ffi::wsc_options| {};
    let check = |row: &str, seen: CErrorSeen, kind: K, status: u16| {
        let (k, s, message) = seen.unwrap_or_else(|| panic!("{row}: ended with on_close, not on_error"));
        assert_eq!((k, s), (kind, status), "{row}: {message}");
    };
    for (response, status) in [
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200),
        ("HTTP/1.1 301 Moved Permanently\r\nLocation: ws://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n", 301),
        ("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 403),
        ("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", 500),
    ] {
        let server = http_server(response);
        check(response, c_connection_end(&server.url(), none), K::WSC_ERROR_HANDSHAKE, status);
    }
    let server = http_server(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
    );
    check("bad accept key", c_connection_end(&server.url(), none), K::WSC_ERROR_HANDSHAKE, 0);
    let mut huge = vec![FIN | BINARY, 127];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    let protocol_rows: Vec<(&str, Vec<u8>, K)> = vec![
        ("reserved bits", frame(FIN | 0x70 | TEXT, b"rsv"), K::WSC_ERROR_PROTOCOL),
        ("masked server frame", masked_frame(FIN | TEXT, b"masked"), K::WSC_ERROR_PROTOCOL),
        ("invalid UTF-8", frame(FIN | TEXT, &[b'o', b'k', 0xC3, 0x28]), K::WSC_ERROR_PROTOCOL),
        ("control frame > 125", frame(FIN | PING, &[b'p'; 126]), K::WSC_ERROR_PROTOCOL),
        ("fragmented control frame", frame(PING, b"half"), K::WSC_ERROR_PROTOCOL),
        ("length 2^63", huge, K::WSC_ERROR_MESSAGE_TOO_BIG),
    ];
    for (row, bytes, kind) in protocol_rows {
        let (server, _codes) = hostile(bytes);
        check(row, c_connection_end(&server.url(), none), kind, 0);
    }
    let (server, _codes) = hostile(frame(FIN | BINARY, &[1u8; 2000]));
    let small = |o: *mut ffi::wsc_options| unsafe {
        ffi::wsc_options_set_max_message_size(o, 1000);
    };
    check("message > maximum", c_connection_end(&server.url(), small), K::WSC_ERROR_MESSAGE_TOO_BIG, 0);
    let server = raw_ws_server(|s| {
        let _ = s.shutdown(Shutdown::Write);
        drain(s);
    });
    check("half-closes", c_connection_end(&server.url(), none), K::WSC_ERROR_CONNECTION_LOST, 0);
    let server = raw_ws_server(|mut s| {
        let _ = s.write_all(&frame(FIN | BINARY, &[9u8; 100])[..12]);
    });
    check("vanishes mid-frame", c_connection_end(&server.url(), none), K::WSC_ERROR_CONNECTION_LOST, 0);
    let server = raw_ws_server(drain);
    let pings = |o: *mut ffi::wsc_options| unsafe {
        ffi::wsc_options_set_ping_interval_ms(o, 200);
        ffi::wsc_options_set_pong_timeout_ms(o, 400);
    };
    check("never answers pings", c_connection_end(&server.url(), pings), K::WSC_ERROR_TIMEOUT, 0);
    let server = silent_server();
    let quick = |o: *mut ffi::wsc_options| unsafe {
        ffi::wsc_options_set_connect_timeout_ms(o, 300);
    };
    check("never answers the upgrade", c_connection_end(&server.url(), quick), K::WSC_ERROR_TIMEOUT, 0);
    let refused = format!("ws://127.0.0.1:{}/", closed_port());
    check("connection refused", c_connection_end(&refused, none), K::WSC_ERROR_CONNECT, 0);
    let unresolvable = format!("ws://{}.invalid/", "a".repeat(64));
    check("does not resolve", c_connection_end(&unresolvable, none), K::WSC_ERROR_RESOLVE, 0);
    // Outside any callback there is no error.
    assert_eq!(ffi::wsc_get_error_kind(), K::WSC_ERROR_NONE);
    assert_eq!(ffi::wsc_get_http_status(), 0);
}
