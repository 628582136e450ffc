//! Independent clients to a wsc endpoint: Python `websockets` 17 and Node
//! `ws` 8 (installed by `tests/interop/setup.sh`) connect to a `wsc::Server`
//! in this process, whose endpoint's handler echoes every message. The
//! clients are `tests/interop/py_client.py` and `node_client.js`; they check
//! the echoes themselves and print what they saw, and the wsc handler's
//! events are checked here. One raw-TCP client sends what those clients (and
//! Autobahn's fuzzingclient) never send: an unmasked frame.
//!
//! Without the peers installed these tests fail when `CI=true` and otherwise
//! say loudly that they were skipped: never a silent pass.

mod common;

use common::peers;
use crossbeam_channel::{unbounded, Receiver};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wsc::{Connection, Event, Message, Server};

const DEADLINE: Duration = Duration::from_secs(60);

/// The sizes the clients send (see SIZES in py_client.py and node_client.js).
const SIZES: [usize; 9] = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20];

/// What a server-side handler call saw: (endpoint, event).
type Seen = (Option<String>, Event);

/// The two independent clients: (name, command to run a script with).
fn clients() -> Vec<(&'static str, Command)> {
    if let Some(why) = peers::missing() {
        peers::unavailable("SERVER INTEROP TESTS", &why);
        return Vec::new();
    }
    let dir = peers::interop_dir();
    let mut py = Command::new(dir.join("venv/bin/python"));
    py.arg("py_client.py");
    let mut node = Command::new("node");
    node.arg("node_client.js");
    vec![("python-websockets", py), ("node-ws", node)]
}

/// Registers `name` as a handler that echoes every message on the server
/// side and reports every server-side event.
fn echo_handler(name: &str) -> Receiver<Seen> {
    let (tx, rx) = unbounded();
    wsc::register_handler(name, move |conn: &Connection, event: &Event| {
        if conn.endpoint().is_none() {
            return;
        }
        if let Event::Message(m) = event {
            let _ = conn.send_message(m.clone());
        }
        let _ = tx.send((conn.endpoint().map(str::to_owned), event.clone()));
    })
    .unwrap();
    rx
}

fn server(endpoint: &str, handler: &str) -> Server {
    Server::bind("127.0.0.1:0").endpoint(endpoint, handler).start().unwrap()
}

/// Runs a client script to its end (killed past the deadline); its stdout.
fn run(name: &str, mut cmd: Command, args: &[&str]) -> String {
    cmd.current_dir(peers::interop_dir()).args(args).stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?}: still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap();
    assert!(status.success(), "{name} {args:?}: {status}\n{out}");
    out
}

/// The JSON line a client printed last, without spaces (Python's and
/// Node's JSON differ only in those).
fn last_json(out: &str) -> String {
    out.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default().replace(' ', "")
}

fn next(seen: &Receiver<Seen>, what: &str) -> Seen {
    seen.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}"))
}

#[test]
fn independent_clients_get_text_and_binary_echoed_0_b_to_1_mib() {
    let seen = echo_handler("server-interop/echo");
    let server = server("echo", "server-interop/echo");
    let url = server.url("echo");
    for (name, cmd) in clients() {
        let out = run(name, cmd, &["echo", &url]);
        for size in SIZES {
            assert!(out.contains(&format!("ok echo text and binary of {size} bytes\n")), "{name}: {size} B: {out}");
        }
        assert_eq!(last_json(&out), r#"{"close":1000}"#, "{name}");
        // The wsc handler saw the connection open, every message with its
        // type, and the client's close.
        assert!(matches!(next(&seen, "open"), (Some(e), Event::Open) if e == "echo"), "{name}");
        for size in SIZES {
            match next(&seen, "text") {
                (_, Event::Message(Message::Text(t))) => assert_eq!(t.len(), size, "{name}"),
                other => panic!("{name}: expected a text message of {size} B, got {other:?}"),
            }
            match next(&seen, "binary") {
                (_, Event::Message(Message::Binary(b))) => {
                    assert!(b.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8) && b.len() == size, "{name}")
                }
                other => panic!("{name}: expected a binary message of {size} B, got {other:?}"),
            }
        }
        match next(&seen, "close") {
            (_, Event::Close { code: 1000, .. }) => {}
            other => panic!("{name}: expected Close 1000, got {other:?}"),
        }
    }
    server.stop().unwrap();
}

#[test]
fn a_client_close_with_4000_reaches_the_wsc_handler() {
    let seen = echo_handler("server-interop/close");
    let server = server("close", "server-interop/close");
    let url = server.url("close");
    for (name, cmd) in clients() {
        let reason = format!("bye from {name}");
        let out = run(name, cmd, &["close", &url, "4000", &reason]);
        // tungstenite answers a Close with the same code and reason.
        assert_eq!(last_json(&out), format!(r#"{{"code":4000,"reason":"{}"}}"#, reason.replace(' ', "")), "{name}");
        assert!(matches!(next(&seen, "open"), (_, Event::Open)), "{name}");
        assert!(matches!(next(&seen, "message"), (_, Event::Message(m)) if m.as_text() == Some("before close")));
        match next(&seen, "close") {
            (Some(e), Event::Close { code: 4000, reason: r }) if e == "close" && r == reason => {}
            other => panic!("{name}: expected Close 4000 {reason:?} on endpoint 'close', got {other:?}"),
        }
        assert!(seen.recv_timeout(Duration::from_millis(200)).is_err(), "{name}: an event after the close");
    }
    server.stop().unwrap();
}

#[test]
fn an_unknown_endpoint_is_404_for_independent_clients() {
    let seen = echo_handler("server-interop/known");
    let server = server("known", "server-interop/known");
    let addr = server.local_addr();
    for (name, cmd) in clients() {
        let url = format!("ws://{addr}/websockets/v4/service/unknown");
        let out = run(name, cmd, &["status", &url]);
        assert_eq!(last_json(&out), r#"{"status":404}"#, "{name}: {out}");
    }
    assert!(seen.try_recv().is_err(), "a refused upgrade gave the handler an event");
    server.stop().unwrap();
}

/// What Autobahn's fuzzingclient never sends: an unmasked client frame. The
/// server must fail the connection with 1002, in a Close frame that is
/// itself unmasked (RFC 6455 5.1), and the handler sees the protocol error.
#[test]
fn an_unmasked_client_frame_is_refused_with_1002() {
    let seen = echo_handler("server-interop/unmasked");
    let server = server("unmasked", "server-interop/unmasked");
    let mut tcp = std::net::TcpStream::connect(server.local_addr()).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        tcp,
        "GET /websockets/v4/service/unmasked HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
    tcp.write_all(b"\x81\x05hello").unwrap(); // FIN, text, no mask bit
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    assert!(rest.len() >= 4, "no Close frame: {rest:?}");
    assert_eq!(rest[0], 0x88, "not a Close frame: {rest:?}");
    assert_eq!(rest[1] & 0x80, 0, "the server masked its frame: {rest:?}");
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), 1002, "{rest:?}");
    assert!(matches!(next(&seen, "open"), (_, Event::Open)));
    match next(&seen, "the end") {
        (_, Event::Error(e)) => assert_eq!(e.kind(), wsc::ErrorKind::Protocol, "{e}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    server.stop().unwrap();
}
