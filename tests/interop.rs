//! Interop with servers nobody here wrote: Python `websockets` 17.x and
//! Node `ws` 8.x (installed by `tests/interop/setup.sh`). wsc's own echo
//! server shares its assumptions with wsc; these peers do not, so they catch
//! what a self-test cannot. Every test runs against both; the scenarios are
//! picked by URL path (see `tests/interop/py_server.py`).
//!
//! Without the peers installed these tests fail when `CI=true` and otherwise
//! say loudly that they were skipped: never a silent pass.

mod common;

use common::peers::{self, cert, Peer};
use common::trusting;
use crossbeam_channel::Receiver;
use std::sync::OnceLock;
use std::time::Duration;
use wsc::{Builder, Connection, ErrorKind, Event, Message, Options};

const DEADLINE: Duration = Duration::from_secs(60);

/// Both peers, started once per test binary; empty when skipped.
fn peers() -> &'static [Peer] {
    static PEERS: OnceLock<Vec<Peer>> = OnceLock::new();
    PEERS.get_or_init(|| match peers::missing() {
        None => vec![peers::start_python(), peers::start_node()],
        Some(why) => {
            peers::unavailable("INTEROP TESTS", &why);
            Vec::new()
        }
    })
}

fn open_with(peer: &Peer, url: &str, options: Options) -> (Connection, Receiver<Event>) {
    let (conn, rx) = Builder::new(url).options(options).connect_channel().unwrap();
    match next(&rx) {
        Event::Open => (conn, rx),
        other => panic!("{}: {url}: expected Open, got {other:?}", peer.name),
    }
}

fn open(peer: &Peer, path: &str) -> (Connection, Receiver<Event>) {
    open_with(peer, &peer.ws(path), Options::new())
}

fn next(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(DEADLINE).expect("no event within the deadline")
}

fn next_message(peer: &Peer, rx: &Receiver<Event>) -> Message {
    match next(rx) {
        Event::Message(m) => m,
        other => panic!("{}: expected a message, got {other:?}", peer.name),
    }
}

fn expect_close(peer: &Peer, rx: &Receiver<Event>, code: u16, reason: &str) {
    match next(rx) {
        Event::Close { code: c, reason: r } if c == code && r == reason => {}
        other => panic!("{}: expected Close {{ {code}, {reason:?} }}, got {other:?}", peer.name),
    }
    assert!(rx.recv_timeout(DEADLINE).is_err(), "event after terminal");
}

/// The same text the servers build for `/fragments`: a multi-byte pattern cut
/// to `size` bytes on a character boundary and padded with '.'.
fn text_pattern(size: usize) -> String {
    let unit = "wsc-é€😀|";
    let mut s = unit.repeat(size / unit.len() + 1).into_bytes();
    s.truncate(size);
    let valid = std::str::from_utf8(&s).map_or_else(|e| e.valid_up_to(), |_| s.len());
    s.truncate(valid);
    s.resize(size, b'.');
    String::from_utf8(s).unwrap()
}

fn binary_pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Asks the server what Close the client sent on the `/record` connection.
fn reported_close(peer: &Peer, token: &str) -> String {
    let (_c, rx) = open(peer, &format!("/report?token={token}"));
    let m = next_message(peer, &rx);
    m.as_text().unwrap().to_owned()
}

fn token(test: &str, peer: &Peer) -> String {
    format!("{test}-{}-{}", peer.name, std::process::id())
}

const SIZES: [usize; 11] = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20, (16 << 20) - 1, 16 << 20];

#[test]
fn echo_text_and_binary_0_b_to_16_mib() {
    for peer in peers() {
        let (conn, rx) = open(peer, "/echo");
        for &size in &SIZES {
            conn.send(text_pattern(size)).unwrap();
            conn.send_binary(binary_pattern(size)).unwrap();
        }
        for &size in &SIZES {
            let text = next_message(peer, &rx);
            assert_eq!(text.as_text(), Some(text_pattern(size).as_str()), "{}: text of {size} bytes", peer.name);
            let binary = next_message(peer, &rx);
            assert!(
                matches!(&binary, Message::Binary(b) if b[..] == binary_pattern(size)[..]),
                "{}: binary of {size} bytes",
                peer.name
            );
        }
        conn.close().unwrap();
        expect_close(peer, &rx, 1000, "");
    }
}

#[test]
fn messages_fragmented_by_the_server_are_reassembled() {
    let cases = [
        ("text", 3, 10),
        ("text", 16, 8), // more fragments than bytes: empty fragments
        ("text", 1000, 100_000),
        ("binary", 2, 1),
        ("binary", 5000, 1 << 20),
    ];
    for peer in peers() {
        for (kind, n, size) in cases {
            let path = format!("/fragments?n={n}&size={size}&type={kind}");
            let (conn, rx) = open(peer, &path);
            let m = next_message(peer, &rx);
            let ok = match (kind, &m) {
                ("text", Message::Text(t)) => t.as_str() == text_pattern(size),
                ("binary", Message::Binary(b)) => b[..] == binary_pattern(size)[..],
                _ => false,
            };
            assert!(ok, "{}: {path}: got {} bytes", peer.name, m.len());
            conn.close().unwrap();
            expect_close(peer, &rx, 1000, "");
        }
    }
}

#[test]
fn utf8_edge_cases_round_trip_unchanged() {
    let texts = [
        "",
        "\0",
        "a\0b",
        "é",
        "€",
        "😀",
        "\u{FEFF}BOM first",
        "\u{7F}\u{80}\u{7FF}\u{800}",
        "\u{D7FF}\u{E000}\u{FFFD}\u{FFFE}\u{FFFF}",
        "\u{10000}\u{10FFFF}",
        "e\u{301} combining, \u{200D} joiner, \u{202E}RTL override",
        "κόσμε",
    ];
    for peer in peers() {
        let (conn, rx) = open(peer, "/echo");
        for t in texts {
            conn.send(t).unwrap();
        }
        for t in texts {
            let m = next_message(peer, &rx);
            assert_eq!(m.as_text(), Some(t), "{}: {t:?}", peer.name);
        }
        conn.close().unwrap();
        expect_close(peer, &rx, 1000, "");
    }
}

#[test]
fn invalid_utf8_from_the_server_fails_with_1007() {
    for peer in peers() {
        let token = token("utf8", peer);
        let (_conn, rx) = open(peer, &format!("/invalid-utf8?token={token}"));
        match next(&rx) {
            Event::Error(e) => {
                assert_eq!(e.kind(), ErrorKind::Protocol, "{}: {e}", peer.name);
                assert!(e.message().contains("UTF-8"), "{}: {e}", peer.name);
            }
            other => panic!("{}: expected a protocol error, got {other:?}", peer.name),
        }
        let report = reported_close(peer, &token);
        assert!(report.contains("\"code\":1007"), "{}: {report}", peer.name);
    }
}

#[test]
fn client_close_codes_reach_the_server_and_come_back() {
    let long = "r".repeat(123);
    let cases: [(u16, &str); 4] = [(1000, ""), (3000, "x"), (4999, "bye ünïcode"), (4000, &long)];
    for peer in peers() {
        for (code, reason) in cases {
            let token = format!("{}-{code}", token("close", peer));
            let (conn, rx) = open(peer, &format!("/record?token={token}"));
            conn.send("before close").unwrap();
            assert_eq!(next_message(peer, &rx).as_text(), Some("before close"));
            if code == 1000 && reason.is_empty() {
                conn.close().unwrap();
            } else {
                conn.close_with(code, reason).unwrap();
            }
            expect_close(peer, &rx, code, reason);
            let expected = format!("{{\"code\":{code},\"reason\":\"{reason}\"}}");
            assert_eq!(reported_close(peer, &token), expected, "{}", peer.name);
        }
    }
}

#[test]
fn server_close_codes_are_reported() {
    let cases: [(&str, u16, &str); 5] = [
        ("?code=1000", 1000, ""),
        ("?code=1001&reason=going%20away", 1001, "going away"),
        ("?code=1011&reason=oops", 1011, "oops"),
        ("?code=4001&reason=server%20says%20bye", 4001, "server says bye"),
        ("", 1005, ""), // a Close frame with no status code
    ];
    for peer in peers() {
        for (query, code, reason) in cases {
            let (_conn, rx) = open(peer, &format!("/close{query}"));
            expect_close(peer, &rx, code, reason);
        }
    }
}

#[test]
fn server_dropping_tcp_is_an_error_after_its_last_message() {
    for peer in peers() {
        let (_conn, rx) = open(peer, "/drop");
        assert_eq!(next_message(peer, &rx).as_text(), Some("bye"));
        match next(&rx) {
            Event::Error(e) => {
                assert_eq!(e.kind(), ErrorKind::ConnectionLost, "{}: {e}", peer.name)
            }
            other => panic!("{}: expected ConnectionLost, got {other:?}", peer.name),
        }
    }
}

#[test]
fn subprotocol_is_negotiated() {
    for peer in peers() {
        let mut o = Options::new();
        o.add_subprotocol("not.supported").unwrap();
        o.add_subprotocol("wsc.test.v1").unwrap();
        let (conn, rx) = open_with(peer, &peer.ws("/echo"), o);
        assert_eq!(conn.protocol().as_deref(), Some("wsc.test.v1"), "{}", peer.name);
        conn.close().unwrap();
        expect_close(peer, &rx, 1000, "");

        let (conn, rx) = open(peer, "/echo");
        assert_eq!(conn.protocol(), None, "{}", peer.name);
        conn.close().unwrap();
        expect_close(peer, &rx, 1000, "");
    }
}

#[test]
fn custom_headers_reach_the_server() {
    for peer in peers() {
        let mut o = Options::new();
        o.add_header("X-Wsc-Test", "hello 123").unwrap();
        o.add_header("Authorization", "Bearer abc.def").unwrap();
        let (conn, rx) = open_with(peer, &peer.ws("/headers"), o);
        let m = next_message(peer, &rx);
        let json = m.as_text().unwrap();
        for want in
            ["\"x-wsc-test\":\"hello 123\"", "\"authorization\":\"Bearer abc.def\"", "\"sec-websocket-version\":\"13\""]
        {
            assert!(json.contains(want), "{}: {want} not in {json}", peer.name);
        }
        conn.close().unwrap();
        expect_close(peer, &rx, 1000, "");
    }
}

#[test]
fn server_pings_are_answered_with_their_payload() {
    for peer in peers() {
        let (conn, rx) = open(peer, "/ping?count=5");
        assert_eq!(next_message(peer, &rx).as_text(), Some("pongs 5"), "{}", peer.name);
        conn.close().unwrap();
        expect_close(peer, &rx, 1000, "");
    }
}

fn echo_once(peer: &Peer, url: &str, options: Options) {
    let (conn, rx) = open_with(peer, url, options);
    conn.send_binary(binary_pattern(1 << 20)).unwrap();
    conn.send("over IPv6 or TLS").unwrap();
    let m = next_message(peer, &rx);
    assert!(m.as_bytes() == &binary_pattern(1 << 20)[..], "{}: {url}", peer.name);
    let m = next_message(peer, &rx);
    assert_eq!(m.as_text(), Some("over IPv6 or TLS"), "{}: {url}", peer.name);
    conn.close().unwrap();
    expect_close(peer, &rx, 1000, "");
}

#[test]
fn ipv6_loopback() {
    for peer in peers() {
        let url = format!("ws://[::1]:{}/echo", peer.ports.plain);
        echo_once(peer, &url, Options::new());
    }
}

#[test]
fn wss_verified_against_the_test_ca() {
    for peer in peers() {
        let port = peer.ports.good;
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            let url = format!("wss://{host}:{port}/echo");
            echo_once(peer, &url, trusting(&cert("ca.pem")));
        }
    }
}

fn tls_failure(peer: &Peer, url: &str, options: Options) -> String {
    let (_conn, rx) = Builder::new(url).options(options).connect_channel().unwrap();
    match next(&rx) {
        Event::Error(e) if e.kind() == ErrorKind::Tls => {
            eprintln!("{}: {url}: {e}", peer.name);
            e.message().to_owned()
        }
        other => panic!("{}: {url}: expected a TLS error, got {other:?}", peer.name),
    }
}

fn assert_says(peer: &Peer, message: &str, what: &str, needles: &[&str]) {
    let lower = message.to_lowercase();
    assert!(needles.iter().any(|n| lower.contains(n)), "{}: the {what} error does not say so: {message}", peer.name);
}

#[test]
fn wss_with_the_wrong_ca_fails_and_says_so() {
    for peer in peers() {
        let url = format!("wss://localhost:{}/echo", peer.ports.good);
        let msg = tls_failure(peer, &url, trusting(&cert("other-ca.pem")));
        assert_says(peer, &msg, "wrong CA", &["issuer", "self-signed", "untrusted"]);
    }
}

#[test]
fn wss_with_the_wrong_host_name_fails_and_says_so() {
    for peer in peers() {
        let url = format!("wss://localhost:{}/echo", peer.ports.wronghost);
        let msg = tls_failure(peer, &url, trusting(&cert("ca.pem")));
        assert_says(peer, &msg, "wrong host", &["hostname", "host name"]);
    }
}

#[test]
fn wss_with_an_expired_certificate_fails_and_says_so() {
    for peer in peers() {
        let url = format!("wss://localhost:{}/echo", peer.ports.expired);
        let msg = tls_failure(peer, &url, trusting(&cert("ca.pem")));
        assert_says(peer, &msg, "expired certificate", &["expired"]);
    }
}
