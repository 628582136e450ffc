//! The endpoint server: one handler model for both sides. A wsc client and
//! the server share a handler; server-side ids take every call a client id
//! takes; refusals are real HTTP answers; descriptors load whole or not at
//! all; stop closes with 1001 and leaves no thread. Peers are wsc clients
//! and plain tungstenite clients on loopback (independent peers: interop).

mod common;

use common::*;
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wsc::{Connection, ErrorKind, Event, Message, Options, Server};

/// What a handler saw: (connection id, endpoint, event).
type Seen = (u64, Option<String>, Event);

/// Registers `name` as a handler that reports every event and echoes every
/// message it gets on the server side.
fn echo_handler(name: &str) -> Receiver<Seen> {
    let (tx, rx): (Sender<Seen>, _) = unbounded();
    wsc::register_handler(name, move |conn: &Connection, event: &Event| {
        if let (Some(_), Event::Message(m)) = (conn.endpoint(), event) {
            let _ = conn.send_message(m.clone());
        }
        let _ = tx.send((conn.id(), conn.endpoint().map(str::to_owned), event.clone()));
    })
    .unwrap();
    rx
}

fn server_with(endpoint: &str, handler: &str) -> Server {
    Server::bind("127.0.0.1:0").endpoint(endpoint, handler).start().unwrap()
}

/// A raw HTTP exchange: the status line and the whole answer.
fn http_get(server: &Server, path: &str, extra: &str) -> (String, String) {
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").unwrap();
    // Refusals and the page close the connection after the answer; a 101
    // keeps it open, so stop at the end of its head.
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        all.extend_from_slice(&buf[..n]);
        let upgraded = all.starts_with(b"HTTP/1.1 101") && all.windows(4).any(|w| w == b"\r\n\r\n");
        if n == 0 || upgraded {
            break;
        }
    }
    let all = String::from_utf8_lossy(&all).into_owned();
    (all.lines().next().unwrap_or_default().to_owned(), all)
}

fn upgrade_headers() -> &'static str {
    "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
}

#[test]
fn one_handler_serves_both_sides() {
    let seen = echo_handler("server-test/both");
    let server = server_with("both", "server-test/both");
    let client = wsc::create_websocket(&server.url("both"), "server-test/both", None, None).unwrap();
    client.send("hello").unwrap();
    client.send_binary(vec![1u8, 2, 3]).unwrap();
    let mut client_got = Vec::new();
    let mut server_id = None;
    while client_got.len() < 2 {
        let (id, endpoint, ev) = next_event(&seen, "handler events");
        match endpoint.as_deref() {
            Some(e) => {
                assert_eq!(e, "both");
                server_id = Some(id);
            }
            None => {
                assert_eq!(id, client.id());
                if let Event::Message(m) = ev {
                    client_got.push(m);
                }
            }
        }
    }
    assert_eq!(client_got, vec![Message::Text("hello".into()), Message::Binary(vec![1u8, 2, 3].into())]);
    let server_id = server_id.expect("the server side saw events");
    // Server-side connections are not clients.
    assert!(wsc::clients().iter().all(|c| c.id != server_id));
    assert!(wsc::client(server_id).is_none());
    // SAFETY: a zeroed wsc_client_info is a valid out-struct (NULL strings).
    let mut info: wsc::ffi::wsc_client_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable struct.
    assert_eq!(unsafe { wsc::ffi::wsc_get_client(server_id, &mut info) }, wsc::ffi::wsc_status::WSC_ERR_UNKNOWN_ID);
    // ... yet every call works on their ids, as on a client's.
    let mut state = wsc::ffi::wsc_state::WSC_STATE_CLOSING;
    assert_eq!(unsafe { wsc::ffi::wsc_get_state(server_id, &mut state) }, wsc::ffi::wsc_status::WSC_OK);
    assert_eq!(state, wsc::ffi::wsc_state::WSC_STATE_OPEN);
    assert_eq!(wsc::ffi::wsc_set_flow_control(server_id, false), wsc::ffi::wsc_status::WSC_OK);
    assert_eq!(wsc::ffi::wsc_close(server_id), wsc::ffi::wsc_status::WSC_OK);
    assert_eq!(wsc::ffi::wsc_wait(server_id, 20_000), wsc::ffi::wsc_status::WSC_OK);
    assert_eq!(client.wait(DEADLINE), Ok(()));
    let ends: Vec<Seen> = seen.try_iter().filter(|(_, _, e)| e.is_terminal()).collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends.iter().all(|(_, _, e)| matches!(e, Event::Close { code: 1000, .. })), "{ends:?}");
    server.stop().unwrap();
}

#[test]
fn a_plain_tungstenite_client_is_served_and_sees_1001_at_stop() {
    let _seen = echo_handler("server-test/plain");
    let server = server_with("plain", "server-test/plain");
    let (mut ws, response) = tungstenite::connect(server.url("plain")).unwrap();
    assert_eq!(response.status(), 101);
    ws.send(tungstenite::Message::text("round trip")).unwrap();
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text("round trip"));
    let before = thread_names().iter().filter(|(_, n)| n.starts_with("wsc-")).count();
    assert!(before >= 2, "an accept thread and a connection thread");
    let stopper = std::thread::spawn(move || server.stop());
    let close = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1001));
    let _ = ws.close(None);
    while ws.read().is_ok() {}
    assert_eq!(stopper.join().unwrap(), Ok(()));
}

#[test]
fn refusals_are_real_http_answers() {
    let server = Server::bind("127.0.0.1:0").endpoint("later", "server-test/registered-later").start().unwrap();
    let (status, all) = http_get(&server, "/websockets/v4/service/nope", upgrade_headers());
    assert!(status.starts_with("HTTP/1.1 404"), "{all}");
    assert!(all.contains("Content-Length: "), "{all}");
    let (status, _) = http_get(&server, "/elsewhere", upgrade_headers());
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    // a handler not registered yet: 503, and the server keeps running
    let (status, all) = http_get(&server, "/websockets/v4/service/later", upgrade_headers());
    assert!(status.starts_with("HTTP/1.1 503"), "{all}");
    let _seen = echo_handler("server-test/registered-later");
    let (status, _) = http_get(&server, "/websockets/v4/service/later", upgrade_headers());
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    // not an upgrade
    let (status, _) = http_get(&server, "/websockets/v4/service/later", "");
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    // the page
    let (status, all) = http_get(&server, "/", "");
    assert!(status.starts_with("HTTP/1.1 200") && all.contains("<title>wsc endpoint server</title>"), "{status}");
    let (status, _) = http_get(&server, "/index.html", "");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // a wsc client refused: an error naming the status, no server-side events
    let (_c, rx) = open_channel(&server.url("nope"), Options::new());
    let e = expect_error(&rx, ErrorKind::Handshake { status: Some(404) });
    assert!(e.message().contains("404"), "{e}");
    server.stop().unwrap();
}

#[test]
fn origins_limits_and_timeouts() {
    let _seen = echo_handler("server-test/limits");
    let server = server_with("limits", "server-test/limits");
    server.add_allowed_origin("http://good.example").unwrap();
    let path = "/websockets/v4/service/limits";
    let (status, _) = http_get(&server, path, &format!("{}Origin: http://evil.example\r\n", upgrade_headers()));
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    let (status, _) = http_get(&server, path, &format!("{}Origin: http://good.example\r\n", upgrade_headers()));
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");

    // one connection at most: the second is refused while the first lives
    server.set_limits(1, 1000, Duration::from_millis(300)).unwrap();
    // The upgraded exchange above counts until its thread has ended, a
    // moment after the client dropped it: the first may be refused until then.
    let mut opened = None;
    assert!(eventually(DEADLINE, || {
        let (conn, rx) = open_channel(&server.url("limits"), Options::new());
        let open = next_event(&rx, "first connection") == Event::Open;
        opened = open.then_some((conn, rx));
        open
    }));
    let (first, first_rx) = opened.expect("opened");
    let (_second, second_rx) = open_channel(&server.url("limits"), Options::new());
    expect_error(&second_rx, ErrorKind::Handshake { status: Some(503) });
    // a message over the limit ends that connection with 1009
    first.send("x".repeat(2000)).unwrap();
    let end = finish(&first_rx).1;
    assert!(matches!(end, Event::Close { code: 1009, .. }), "{end:?}");
    // a client that never finishes its request is dropped at the handshake timeout
    let mut slow = TcpStream::connect(server.local_addr()).unwrap();
    slow.write_all(b"GET /websockets/v4/service/limits HTTP/1.1\r\n").unwrap();
    slow.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(slow.read(&mut buf), Ok(0)), "closed without an answer");
    assert!(server.set_limits(0, 1, Duration::from_secs(1)).is_err());
    server.stop().unwrap();
}

#[test]
fn endpoints_added_in_code_and_name_rules() {
    let _seen = echo_handler("server-test/code");
    let server = Server::bind("127.0.0.1:0").start().unwrap();
    server.add_endpoint("added", "server-test/code").unwrap();
    round_trip(&server.url("added"), Options::new(), "added in code");
    for bad in ["", ".", "..", "a/b", "sp ace", "ü"] {
        assert!(matches!(server.add_endpoint(bad, "h"), Err(wsc::Error::InvalidArgument(_))), "{bad:?}");
    }
    assert!(server.add_endpoint("added", "other").is_err(), "duplicate");
    server.stop().unwrap();
}

fn descriptor_dir(files: &[(&str, &str)]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wsc-descriptors-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

#[test]
fn descriptors_load_whole_or_not_at_all() {
    let _seen = echo_handler("my-project/ws-handler");
    let dir = descriptor_dir(&[
        (
            "my-endpoint.websocket",
            r#"{ "handler": "my-project/ws-handler", "endpoint": "my-endpoint", "description": "My Websocket" }"#,
        ),
        ("notes.txt", "not a descriptor"),
    ]);
    let server = Server::bind("127.0.0.1:0").descriptors(&dir).start().unwrap();
    round_trip(&server.url("my-endpoint"), Options::new(), "from a descriptor");
    server.stop().unwrap();

    let bad = descriptor_dir(&[
        ("a.websocket", r#"{"handler":"h","endpoint":"a"}"#),
        ("b.websocket", r#"{"handler":"h","endpoint":"a"}"#),
    ]);
    let e = Server::bind("127.0.0.1:0").descriptors(&bad).start().unwrap_err().to_string();
    assert!(e.contains("b.websocket") && e.contains("'a'"), "{e}");
    let bad = descriptor_dir(&[("c.websocket", r#"{"handler":7,"endpoint":"c"}"#)]);
    let e = Server::bind("127.0.0.1:0").descriptors(&bad).start().unwrap_err().to_string();
    assert!(e.contains("c.websocket") && e.contains("'handler'"), "{e}");
    let e = Server::bind("127.0.0.1:0").descriptors(dir.join("missing")).start().unwrap_err();
    assert!(matches!(e, wsc::Error::InvalidArgument(_)), "{e:?}");
    let e = Server::bind("not an address").start().unwrap_err();
    assert!(matches!(e, wsc::Error::InvalidArgument(_)), "{e:?}");
    let taken = Server::bind("127.0.0.1:0").start().unwrap();
    let e = Server::bind(&taken.local_addr().to_string()).start().unwrap_err();
    assert!(matches!(&e, wsc::Error::Internal(m) if m.contains("in use")), "{e:?}");
    taken.stop().unwrap();
}

#[test]
fn two_hundred_concurrent_connections_to_one_endpoint() {
    let _seen = echo_handler("server-test/many");
    let server = server_with("many", "server-test/many");
    let conns: Vec<_> = (0..200).map(|_| open_channel(&server.url("many"), Options::new())).collect();
    for (i, (c, rx)) in conns.iter().enumerate() {
        expect_open(rx);
        c.send(format!("message {i}")).unwrap();
    }
    for (i, (c, rx)) in conns.iter().enumerate() {
        assert_eq!(expect_text(rx), format!("message {i}"));
        c.close().unwrap();
    }
    for (_, rx) in &conns {
        expect_close(rx, 1000);
    }
    server.stop().unwrap();
}

#[test]
fn stop_from_inside_a_handler_is_refused() {
    let server: Arc<parking_lot::Mutex<Option<Server>>> = Arc::default();
    let (tx, rx) = unbounded();
    let slot = server.clone();
    wsc::register_handler("server-test/stop-inside", move |c, event| {
        if c.endpoint().is_some() && matches!(event, Event::Open) {
            let r = slot.lock().as_ref().map(|s| s.stop());
            let _ = tx.send(r);
        }
    })
    .unwrap();
    *server.lock() = Some(server_with("inside", "server-test/stop-inside"));
    let url = server.lock().as_ref().unwrap().url("inside");
    let (_c, events) = open_channel(&url, Options::new());
    expect_open(&events);
    let r = rx.recv_timeout(DEADLINE).unwrap().unwrap();
    assert!(matches!(r, Err(wsc::Error::InvalidArgument(_))), "{r:?}");
    let s = server.lock().take().unwrap();
    s.stop().unwrap();
    expect_close(&events, 1001);
}
