//! The endpoint server over wss:// (`ServerBuilder::tls`,
//! `wsc_server_start_tls`): wsc's own client echoes through it, the TLS
//! handshake of silent or half-speaking sockets costs no thread and ends at
//! the handshake timeout, plain HTTP to the TLS port is dropped while the
//! server carries on, and bad certificate files are refused with a message
//! naming the file. The independent clients (Python, Node, Chromium,
//! Autobahn) over wss:// are in `server_interop.rs`, `browser.rs` and
//! `tests/autobahn`.

mod common;

use common::*;
use crossbeam_channel::{unbounded, Receiver};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wsc::{Connection, Error, Event, Server};

fn echo_handler(name: &str) -> Receiver<Event> {
    let (tx, rx) = unbounded();
    wsc::register_handler(name, move |conn: &Connection, event: &Event| {
        if conn.endpoint().is_none() {
            return;
        }
        if let Event::Message(m) = event {
            let _ = conn.send_message(m.clone());
        }
        let _ = tx.send(event.clone());
    })
    .unwrap();
    rx
}

fn tls_server(endpoint: &str, handler: &str) -> Server {
    Server::bind("127.0.0.1:0")
        .endpoint(endpoint, handler)
        .tls(test_cert("good.pem"), test_cert("good.key"))
        .start()
        .unwrap()
}

#[test]
fn wsc_client_echoes_over_wss() {
    let seen = echo_handler("server-tls/echo");
    let server = tls_server("echo", "server-tls/echo");
    let url = server.url("echo");
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let (conn, rx) = open_channel(&url, trusting(&test_cert("ca.pem")));
    expect_open(&rx);
    for size in [0usize, 125, 126, 65536, 1 << 20] {
        let text = "é".repeat(size / 2);
        conn.send(&text).unwrap();
        assert_eq!(expect_text(&rx), text);
    }
    echo_binaries(&conn, &rx, 3, 70_000);
    close_cleanly(&conn, &rx);
    assert!(matches!(next_event(&seen, "server open"), Event::Open));
    server.stop().unwrap();
}

#[test]
fn a_client_not_trusting_the_certificate_fails_and_the_server_carries_on() {
    let _seen = echo_handler("server-tls/untrusted");
    let server = tls_server("e", "server-tls/untrusted");
    let (_conn, rx) = open_channel(&server.url("e"), trusting(&test_cert("other-ca.pem")));
    let e = expect_error(&rx, wsc::ErrorKind::Tls);
    assert!(e.message().contains("not trusted"), "{e}");
    round_trip(&server.url("e"), trusting(&test_cert("ca.pem")), "still serving");
}

#[test]
fn silent_and_half_speaking_tls_sockets_cost_no_thread() {
    let _seen = echo_handler("server-tls/silent");
    let server = tls_server("e", "server-tls/silent");
    server.set_limits(1000, 1 << 20, Duration::from_millis(1500)).unwrap();
    let before = all_threads();
    let mut held = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        if i % 2 == 0 {
            // the first bytes of a TLS ClientHello record, then nothing
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        }
        held.push(s);
    }
    // A real client is served at once while they are held.
    let started = Instant::now();
    round_trip(&server.url("e"), trusting(&test_cert("ca.pem")), "through the crowd");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let during = all_threads();
    assert!(during <= before + 8, "threads {before} -> {during} with 200 pending TLS sockets");
    // Each is closed by the handshake timeout.
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 64];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break true,
                Ok(_) => {}
            }
        };
        assert!(closed);
    }
}

#[test]
fn plain_http_to_the_tls_port_is_dropped() {
    let _seen = echo_handler("server-tls/plain");
    let server = tls_server("e", "server-tls/plain");
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(b"GET /websockets/v4/service/e HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert!(!all.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&all));
    let (_c, rx) = open_channel(&server.url("e").replace("wss://", "ws://"), wsc::Options::new());
    let (before, _) = finish(&rx);
    assert!(before.is_empty(), "never opened over ws:// on a wss:// port: {before:?}");
    round_trip(&server.url("e"), trusting(&test_cert("ca.pem")), "still serving");
}

#[test]
fn bad_certificate_files_are_refused_naming_the_file() {
    let missing = Server::bind("127.0.0.1:0").tls("/nonexistent/cert.pem", test_cert("good.key")).start();
    match missing {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("/nonexistent/cert.pem"), "{m}"),
        other => panic!("{other:?}"),
    }
    // a key that is not the certificate's
    let wrong = Server::bind("127.0.0.1:0").tls(test_cert("good.pem"), test_cert("expired.key")).start();
    assert!(matches!(wrong, Err(Error::InvalidArgument(_))), "{wrong:?}");
    // the certificate given as the key
    let swapped = Server::bind("127.0.0.1:0").tls(test_cert("good.key"), test_cert("good.pem")).start();
    assert!(matches!(swapped, Err(Error::InvalidArgument(_))), "{swapped:?}");
}

#[test]
fn c_start_tls_status_paths() {
    use std::ffi::CString;
    use wsc::ffi::{self, wsc_status};
    let c = |s: &str| CString::new(s).unwrap();
    let (bind, cert, key) = (c("127.0.0.1:0"), c(&test_cert("good.pem")), c(&test_cert("good.key")));
    let mut server: *mut ffi::wsc_server = std::ptr::null_mut();
    unsafe {
        let null = std::ptr::null();
        for (b, ce, k) in [
            (null, cert.as_ptr(), key.as_ptr()),
            (bind.as_ptr(), null, key.as_ptr()),
            (bind.as_ptr(), cert.as_ptr(), null),
        ] {
            assert_eq!(ffi::wsc_server_start_tls(b, null, ce, k, &mut server), wsc_status::WSC_ERR_INVALID_ARGUMENT);
        }
        assert_eq!(
            ffi::wsc_server_start_tls(bind.as_ptr(), null, cert.as_ptr(), key.as_ptr(), std::ptr::null_mut()),
            wsc_status::WSC_ERR_INVALID_ARGUMENT
        );
        let missing = c("/nonexistent/key.pem");
        assert_eq!(
            ffi::wsc_server_start_tls(bind.as_ptr(), null, cert.as_ptr(), missing.as_ptr(), &mut server),
            wsc_status::WSC_ERR_INVALID_ARGUMENT
        );
        let why = std::ffi::CStr::from_ptr(ffi::wsc_last_error()).to_string_lossy().into_owned();
        assert!(why.contains("/nonexistent/key.pem"), "{why}");
        assert_eq!(
            ffi::wsc_server_start_tls(bind.as_ptr(), null, cert.as_ptr(), key.as_ptr(), &mut server),
            wsc_status::WSC_OK
        );
        let ep = c("e");
        let handler = c("server-tls/c");
        let _seen = echo_handler("server-tls/c");
        assert_eq!(ffi::wsc_server_add_endpoint(server, ep.as_ptr(), handler.as_ptr()), wsc_status::WSC_OK);
        let port = ffi::wsc_server_local_port(server);
        round_trip(
            &format!("wss://127.0.0.1:{port}/websockets/v4/service/e"),
            trusting(&test_cert("ca.pem")),
            "from C",
        );
        assert_eq!(ffi::wsc_server_stop(server), wsc_status::WSC_OK);
    }
}
