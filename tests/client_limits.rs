//! Every reader of the network on the client side that has a limit (issue
//! 21, item 2): the HTTP CONNECT reply (16 KiB, interim 1xx heads
//! included), the SOCKS5 replies (fixed sizes, at most 262 bytes) and the
//! upgrade response (tungstenite's 64 KiB). Each limit is crossed in one
//! write, in two, and byte by byte, with every shape of content (no newline
//! at all, one giant header line, many short lines, endless interim heads):
//! the connection ends with a clear error long before its connect timeout,
//! and the peer sees the socket closed. A head right at the limit still
//! passes. Raw peers on loopback.

mod common;

use common::*;
use crossbeam_channel::{bounded, Receiver};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wsc::{ConnectionError, ErrorKind, Event, Options};

/// The CONNECT reply's limit (src/proxy.rs `MAX_REPLY_HEAD`).
const PROXY_LIMIT: usize = 16 << 10;
/// tungstenite 0.30's limit on the upgrade response (its `AttackCheck`).
const UPGRADE_LIMIT: usize = 64 << 10;
/// Far beyond anything these tests wait for: failing before it is the limit's doing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Delivery {
    OneWrite,
    /// The first write stops 10 bytes short of the limit.
    TwoWrites,
    /// One write up to 32 bytes before the limit, then a byte per write
    /// until 32 bytes past it, then the rest.
    ByteByByte,
}

const DELIVERIES: [Delivery; 3] = [Delivery::OneWrite, Delivery::TwoWrites, Delivery::ByteByByte];

/// Writes `bytes` as `how` says, crossing `limit`; stops at the first
/// failed write (the client has given up).
fn deliver(s: &mut TcpStream, bytes: &[u8], how: Delivery, limit: usize) -> std::io::Result<()> {
    let _ = s.set_nodelay(true);
    match how {
        Delivery::OneWrite => s.write_all(bytes),
        Delivery::TwoWrites => {
            let cut = (limit - 10).min(bytes.len());
            s.write_all(&bytes[..cut])?;
            s.write_all(&bytes[cut..])
        }
        Delivery::ByteByByte => {
            let (from, to) = ((limit - 32).min(bytes.len()), (limit + 32).min(bytes.len()));
            s.write_all(&bytes[..from])?;
            for b in &bytes[from..to] {
                s.write_all(&[*b])?;
                std::thread::sleep(Duration::from_millis(2)); // pacing the hostile peer, not synchronisation
            }
            s.write_all(&bytes[to..])
        }
    }
}

/// After its bytes, the peer waits for the client to close the socket and
/// reports whether it did (end of stream or reset) within the deadline.
fn closed_by_client(mut s: TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(DEADLINE));
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => return !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    }
}

/// Connects with `options` (connect timeout 60 s) and returns the error
/// (after checking it came well before the timeout and nothing opened).
fn fails_at_once(url: &str, mut options: Options) -> ConnectionError {
    options.connect_timeout(CONNECT_TIMEOUT);
    let started = Instant::now();
    let (_conn, rx) = open_channel(url, options);
    let (before, last) = finish(&rx);
    let took = started.elapsed();
    assert!(before.is_empty(), "never opened: {before:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}: the timeout ended it, not the limit");
    match last {
        Event::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A peer that answers each connection with `reply` delivered as `how`,
/// then reports on the channel whether the client closed the socket.
fn peer(read_head: bool, reply: Vec<u8>, how: Delivery, limit: usize) -> (TcpServer, Receiver<bool>) {
    let (tx, rx) = bounded(1);
    let server = TcpServer::local(move |mut s| {
        if read_head && read_request(&mut s).is_err() {
            return;
        }
        let _ = deliver(&mut s, &reply, how, limit);
        let _ = tx.send(closed_by_client(s));
    });
    (server, rx)
}

fn via(proxy: &str) -> Options {
    let mut o = Options::new();
    o.proxy(proxy).unwrap();
    o
}

fn assert_closed(rx: &Receiver<bool>, what: &str) {
    assert!(rx.recv_timeout(DEADLINE).unwrap_or(false), "{what}: the client did not close the socket");
}

// ------------------------------------------------------------ CONNECT reply

/// A CONNECT reply head of exactly `len` bytes: a 200 with one padding header.
fn connect_reply_of(len: usize) -> Vec<u8> {
    let start = b"HTTP/1.1 200 Connection established\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    let mut head = start.to_vec();
    head.resize(len - end.len(), b'a');
    head.extend_from_slice(end);
    assert_eq!(head.len(), len);
    head
}

/// Shapes of CONNECT replies that pass the limit, with what the error says.
fn oversized_connect_replies() -> Vec<(&'static str, Vec<u8>)> {
    let mut no_newline = b"HTTP/1.1 200 ".to_vec();
    no_newline.resize(100_000, b'a');
    let mut short_lines = b"HTTP/1.1 200 Connection established\r\n".to_vec();
    while short_lines.len() < 40_000 {
        short_lines.extend_from_slice(b"A: b\r\n");
    }
    short_lines.extend_from_slice(b"\r\n");
    let continues = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(2_000);
    vec![
        ("no newline at all", no_newline),
        ("one giant header line", connect_reply_of(1 << 20)),
        ("many short lines", short_lines),
        ("endless 100 Continue heads", continues),
        ("one byte past the limit", connect_reply_of(PROXY_LIMIT + 1)),
    ]
}

#[test]
fn connect_reply_past_16_kib_ends_the_connection_however_it_arrives() {
    let healthy = Healthy::open();
    for (shape, reply) in oversized_connect_replies() {
        for how in DELIVERIES {
            let (proxy, closed) = peer(true, reply.clone(), how, PROXY_LIMIT);
            let e = fails_at_once("ws://127.0.0.1:9/", via(&format!("http://{}", proxy.addr())));
            let what = format!("{shape}, {how:?}");
            assert_eq!(e.kind(), ErrorKind::Proxy { status: None }, "{what}: {e}");
            assert!(e.message().contains("longer than 16384 bytes"), "{what}: {e}");
            assert_closed(&closed, &what);
        }
    }
    healthy.check();
}

#[test]
fn connect_reply_right_at_16_kib_passes_interim_heads_included() {
    let echo = echo_server();
    let target = echo.addr();
    let at_limit = connect_reply_of(PROXY_LIMIT);
    let mut with_interim = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(100);
    with_interim.extend(connect_reply_of(PROXY_LIMIT - with_interim.len()));
    for reply in [at_limit, with_interim] {
        for how in DELIVERIES {
            let reply = reply.clone();
            let proxy = TcpServer::local(move |mut s| {
                if read_request(&mut s).is_ok() && deliver(&mut s, &reply, how, PROXY_LIMIT).is_ok() {
                    relay(s, TcpStream::connect(target).unwrap())
                }
            });
            round_trip(&echo.url(), via(&format!("http://{}", proxy.addr())), "at the limit");
        }
    }
}

// ------------------------------------------------------------ SOCKS5 replies

/// The greeting reply and the largest CONNECT reply SOCKS5 has (a 255-byte
/// domain name), in one piece.
fn largest_socks_reply() -> Vec<u8> {
    let mut r = vec![5, 0, 5, 0, 0, 3, 255];
    r.extend_from_slice(&[b'n'; 255]);
    r.extend_from_slice(&[0x1f, 0x90]);
    r
}

#[test]
fn socks5_replies_are_read_to_their_length_and_no_further() {
    let echo = echo_server();
    let target = echo.addr();
    // The reply is 264 bytes: cross "the limit" (its end) every way.
    for how in DELIVERIES {
        let proxy = TcpServer::local(move |mut s| {
            // Both replies go out right after the greeting: wsc must take
            // the greeting reply's 2 bytes only, send its request, then read the rest.
            let (mut greeting, mut request) = ([0u8; 3], [0u8; 10]);
            let ok = s.read_exact(&mut greeting).is_ok()
                && deliver(&mut s, &largest_socks_reply(), how, 64).is_ok()
                && s.read_exact(&mut request).is_ok();
            if ok {
                relay(s, TcpStream::connect(target).unwrap())
            }
        });
        round_trip(&echo.url(), via(&format!("socks5://{}", proxy.addr())), "socks");
    }
    // An endless stream of bytes that are not SOCKS: refused at the first
    // byte that cannot be, not buffered.
    for how in DELIVERIES {
        let (proxy, closed) = peer(false, vec![0xFF; 100_000], how, 64);
        let e = fails_at_once("ws://127.0.0.1:9/", via(&format!("socks5://{}", proxy.addr())));
        assert!(e.message().contains("is not a SOCKS5 proxy"), "{how:?}: {e}");
        assert_closed(&closed, &format!("{how:?}"));
    }
}

// ---------------------------------------------------------- upgrade response

/// A 101 head of exactly `len` bytes (a valid answer to `request`).
fn upgrade_of(request: &str, len: usize) -> Vec<u8> {
    let valid = upgrade_response(request);
    let mut head = valid.strip_suffix("\r\n").unwrap().as_bytes().to_vec();
    head.extend_from_slice(b"X-Pad: ");
    head.resize(len - 4, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(head.len(), len);
    head
}

/// Makes the upgrade response from the request head.
type Shape = fn(&str) -> Vec<u8>;

/// A server answering the upgrade with `shape(request)` delivered as `how`.
fn upgrade_peer(shape: Shape, how: Delivery) -> (TcpServer, Receiver<bool>) {
    let (tx, rx) = bounded(1);
    let server = TcpServer::local(move |mut s| {
        let Ok(request) = read_request(&mut s) else { return };
        let _ = deliver(&mut s, &shape(&request), how, UPGRADE_LIMIT);
        let _ = tx.send(closed_by_client(s));
    });
    (server, rx)
}

#[test]
fn upgrade_response_past_64_kib_ends_the_connection_however_it_arrives() {
    let healthy = Healthy::open();
    let shapes: [(&str, Shape); 4] = [
        ("100 KB with no newline", |_| {
            let mut r = b"HTTP/1.1 101 ".to_vec();
            r.resize(100_000, b'a');
            r
        }),
        ("a complete 1 MB head", |req| upgrade_of(req, 1 << 20)),
        ("many short lines", |req| {
            let mut r = upgrade_response(req).strip_suffix("\r\n").unwrap().as_bytes().to_vec();
            while r.len() < 100_000 {
                r.extend_from_slice(b"A: b\r\n");
            }
            r.extend_from_slice(b"\r\n");
            r
        }),
        ("one byte past the limit", |req| upgrade_of(req, UPGRADE_LIMIT + 1)),
    ];
    for (shape, make) in shapes {
        for how in DELIVERIES {
            let (server, closed) = upgrade_peer(make, how);
            let e = fails_at_once(&server.url(), Options::new());
            let what = format!("{shape}, {how:?}");
            assert_eq!(e.kind(), ErrorKind::Handshake { status: None }, "{what}: {e}");
            // tungstenite's two limits: 64 KiB (its AttackCheck) and 124 headers (httparse's array).
            let said = ["too large", "over 64 KiB", "Too many headers"];
            assert!(said.iter().any(|w| e.message().contains(w)), "{what}: {e}");
            assert_closed(&closed, &what);
        }
    }
    healthy.check();
}

#[test]
fn upgrade_response_right_at_64_kib_passes() {
    for how in [Delivery::OneWrite, Delivery::TwoWrites] {
        let server = TcpServer::local(move |mut s| {
            let Ok(request) = read_request(&mut s) else { return };
            if deliver(&mut s, &upgrade_of(&request, UPGRADE_LIMIT), how, UPGRADE_LIMIT).is_ok()
                && read_close_code(&mut s).is_some()
            {
                let _ = s.write_all(&close_frame(1000, ""));
            }
        });
        let (conn, rx) = open_channel(&server.url(), Options::new());
        expect_open(&rx);
        conn.close().unwrap();
        expect_close(&rx, 1000);
    }
}
