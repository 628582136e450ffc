//! Independent clients to a wsc endpoint: Python `websockets` 17 and Node
//! `ws` 8 (installed by `tests/interop/setup.sh`) connect to a `wsc::Server`
//! in this process, whose endpoint's handler echoes every message. The
//! clients are `tests/interop/py_client.py` and `node_client.js`; they check
//! the echoes themselves and print what they saw, and the wsc handler's
//! events are checked here. One raw-TCP client sends what those clients (and
//! Autobahn's fuzzingclient) never send: an unmasked frame.
//!
//! Every client test runs twice: over ws:// and over wss://, the server
//! presenting `good.pem` of the test PKI (`tests/interop/certs`). The
//! clients verify it with their default TLS settings, told to trust the test
//! CA the ordinary way: `SSL_CERT_FILE` for Python's default context (the
//! only trust root then), `NODE_EXTRA_CA_CERTS` for Node. A client trusting
//! another CA must fail, and the server must carry on.
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

/// ws:// or wss://: whether the server serves TLS and the clients trust
/// which CA.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scheme {
    Ws,
    /// wss://, the clients trusting this CA file of the test PKI.
    Wss(&'static str),
}

/// wss:// with the clients trusting the test CA that signed the server's certificate.
const WSS: Scheme = Scheme::Wss("ca.pem");

/// The two independent clients: (name, command to run a script with),
/// told to trust the CA of `scheme`.
fn clients(scheme: Scheme) -> Vec<(&'static str, Command)> {
    if let Some(why) = peers::missing() {
        peers::unavailable("SERVER INTEROP TESTS", &why);
        return Vec::new();
    }
    let dir = peers::interop_dir();
    let mut py = Command::new(dir.join("venv/bin/python"));
    py.arg("py_client.py");
    let mut node = Command::new("node");
    node.arg("node_client.js");
    if let Scheme::Wss(ca) = scheme {
        py.env("SSL_CERT_FILE", peers::cert(ca)).env_remove("SSL_CERT_DIR");
        node.env("NODE_EXTRA_CA_CERTS", peers::cert(ca));
    }
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

/// An endpoint server on 127.0.0.1, serving wss:// with `good.pem` for
/// [`Scheme::Wss`].
fn server(endpoint: &str, handler: &str, scheme: Scheme) -> Server {
    let builder = Server::bind("127.0.0.1:0").endpoint(endpoint, handler);
    let server = match scheme {
        Scheme::Ws => builder.start().unwrap(),
        Scheme::Wss(_) => builder.tls(peers::cert("good.pem"), peers::cert("good.key")).start().unwrap(),
    };
    let want = if scheme == Scheme::Ws { "ws://" } else { "wss://" };
    assert!(server.url(endpoint).starts_with(want), "{}", server.url(endpoint));
    server
}

/// Runs a client script to its end (killed past the deadline); its stdout.
fn run(name: &str, cmd: Command, args: &[&str]) -> String {
    let (status, out, err) = run_to_end(name, cmd, args);
    assert!(status.success(), "{name} {args:?}: {status}\n{out}\n{err}");
    out
}

/// Runs a client script to its end (killed past the deadline): its exit
/// status, stdout and stderr.
fn run_to_end(name: &str, mut cmd: Command, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    cmd.current_dir(peers::interop_dir()).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
    let read_all = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = from.read_to_string(&mut out);
            out
        })
    };
    let reader = read_all(Box::new(child.stdout.take().unwrap()));
    let err_reader = read_all(Box::new(child.stderr.take().unwrap()));
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
    (status, reader.join().unwrap(), err_reader.join().unwrap())
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
    echo_matrix(Scheme::Ws, "server-interop/echo");
}

#[test]
fn independent_clients_get_text_and_binary_echoed_0_b_to_1_mib_over_wss() {
    echo_matrix(WSS, "server-interop/echo-wss");
}

/// Each client sends text and binary of every size in [`SIZES`], checks the
/// echoes, and closes with 1000; the wsc handler sees all of it in order.
fn echo_matrix(scheme: Scheme, handler: &str) {
    let seen = echo_handler(handler);
    let server = server("echo", handler, scheme);
    let url = server.url("echo");
    for (name, cmd) in clients(scheme) {
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
    client_close(Scheme::Ws, "server-interop/close");
}

#[test]
fn a_client_close_with_4000_reaches_the_wsc_handler_over_wss() {
    client_close(WSS, "server-interop/close-wss");
}

fn client_close(scheme: Scheme, handler: &str) {
    let seen = echo_handler(handler);
    let server = server("close", handler, scheme);
    let url = server.url("close");
    for (name, cmd) in clients(scheme) {
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
    unknown_endpoint(Scheme::Ws, "server-interop/known");
}

#[test]
fn an_unknown_endpoint_is_404_for_independent_clients_over_wss() {
    unknown_endpoint(WSS, "server-interop/known-wss");
}

fn unknown_endpoint(scheme: Scheme, handler: &str) {
    let seen = echo_handler(handler);
    let server = server("known", handler, scheme);
    let url = server.url("known").replace("/known", "/unknown");
    for (name, cmd) in clients(scheme) {
        let out = run(name, cmd, &["status", &url]);
        assert_eq!(last_json(&out), r#"{"status":404}"#, "{name}: {out}");
    }
    assert!(seen.try_recv().is_err(), "a refused upgrade gave the handler an event");
    server.stop().unwrap();
}

/// A client that trusts another CA refuses the server's certificate (so
/// the wss:// runs above really verify it), the wsc handler sees nothing,
/// and the server serves the next client.
#[test]
fn independent_clients_trusting_another_ca_refuse_the_certificate_and_the_server_carries_on() {
    let seen = echo_handler("server-interop/untrusted");
    let server = server("e", "server-interop/untrusted", Scheme::Wss("other-ca.pem"));
    let url = server.url("e");
    for (name, cmd) in clients(Scheme::Wss("other-ca.pem")) {
        let (status, out, err) = run_to_end(name, cmd, &["close", &url, "1000", "never"]);
        assert!(!status.success(), "{name}: connected although it trusts another CA:\n{out}");
        let said = format!("{out}\n{err}").to_lowercase();
        assert!(said.contains("certificate"), "{name}: no certificate error:\n{out}\n{err}");
    }
    assert!(seen.try_recv().is_err(), "a failed TLS handshake gave the handler an event");
    for (name, cmd) in clients(WSS) {
        let out = run(name, cmd, &["close", &url, "4000", "after"]);
        assert_eq!(last_json(&out), r#"{"code":4000,"reason":"after"}"#, "{name}");
    }
    server.stop().unwrap();
}

/// What Autobahn's fuzzingclient never sends: an unmasked client frame. The
/// server must fail the connection with 1002, in a Close frame that is
/// itself unmasked (RFC 6455 5.1), and the handler sees the protocol error.
#[test]
fn an_unmasked_client_frame_is_refused_with_1002() {
    let seen = echo_handler("server-interop/unmasked");
    let server = server("unmasked", "server-interop/unmasked", Scheme::Ws);
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
