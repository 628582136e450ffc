//! Opt-in reconnect: one id across network loss. A server that dies and
//! comes back on the same port, refused upgrades (retried or not by their
//! status), close codes (retried or not), close during backoff, the backoff
//! bounds over 200 attempts, and messages queued during backoff arriving
//! after the next handshake, in order. Real sockets on loopback.

mod common;

use common::*;
use crossbeam_channel::{unbounded, Receiver};
use parking_lot::Mutex;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsc::{Builder, Connection, ErrorKind, Event, Options, Reconnect};

fn with_reconnect(min_ms: u64, max_ms: u64, max_attempts: u32) -> Options {
    let mut o = Options::new();
    o.reconnect(Reconnect {
        min_delay: Duration::from_millis(min_ms),
        max_delay: Duration::from_millis(max_ms),
        max_attempts,
    })
    .unwrap();
    o
}

/// A port bound but not listening, held for the test: connecting is
/// refused, and no client can get it as its own ephemeral port.
fn held_closed_port() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// Every event in order, with the connection's id at that moment.
fn recorded_events(uri: &str, options: Options) -> (Connection, Receiver<Event>) {
    Builder::new(uri).options(options).connect_channel().unwrap()
}

/// An echo server whose live connections can be killed (reset), so it can
/// "crash" and be started again on the same port.
struct Killable {
    server: Option<TcpServer>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Killable {
    fn start(bind: &str) -> Killable {
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let l = live.clone();
        let server = TcpServer::start(bind, move |stream| {
            l.lock().push(stream.try_clone().unwrap());
            let _ = stream.set_nodelay(true);
            if let Ok(ws) = tungstenite::accept(stream) {
                echo(ws);
            }
        });
        Killable { server: Some(server), live }
    }

    fn port(&self) -> u16 {
        self.server.as_ref().unwrap().addr().port()
    }

    /// Stops accepting and resets every connection, as a killed process would.
    fn kill(&mut self) {
        drop(self.server.take());
        for s in self.live.lock().drain(..) {
            reset_on_close(&s);
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn a_server_that_dies_and_comes_back_gets_the_same_id_and_the_queued_messages() {
    let mut server = Killable::start("127.0.0.1:0");
    let port = server.port();
    let (conn, rx) = recorded_events(&format!("ws://127.0.0.1:{port}/"), with_reconnect(5, 100, 0));
    expect_open(&rx);
    conn.send("before").unwrap();
    assert_eq!(expect_text(&rx), "before");
    server.kill();
    let first = wait_for(&rx, "the first reconnecting", |e| matches!(e, Event::Reconnecting { .. }));
    let Event::Reconnecting { attempt, delay, reason } = first else { unreachable!() };
    assert_eq!(attempt, 1);
    assert!(delay <= Duration::from_millis(5), "{delay:?}");
    assert_eq!(reason.kind(), ErrorKind::ConnectionLost, "{reason}");
    // queued during backoff, in order, before anything on_open sends
    conn.send("queued 1").unwrap();
    conn.send("queued 2").unwrap();
    // a few refused attempts, then the server is back on the same port
    let mut attempts = vec![attempt];
    while attempts.len() < 3 {
        if let Event::Reconnecting { attempt, delay, .. } = next_event(&rx, "reconnecting") {
            assert!(delay <= Duration::from_millis(100), "{delay:?}");
            attempts.push(attempt);
        }
    }
    assert_eq!(attempts, [1, 2, 3]);
    let _back = Killable::start(&format!("127.0.0.1:{port}"));
    wait_for(&rx, "open again", |e| matches!(e, Event::Open));
    assert_eq!(expect_text(&rx), "queued 1");
    assert_eq!(expect_text(&rx), "queued 2");
    assert_eq!(wsc::client(conn.id()).map(|c| c.id()), Some(conn.id()), "same id");
    assert_eq!(conn.stats().unwrap().reconnects, 3, "one per announced retry");
    conn.close().unwrap();
    let (_, end) = finish(&rx);
    assert!(matches!(end, Event::Close { code: 1000, .. }), "{end:?}");
}

#[test]
fn a_403_is_not_retried_and_a_503_is_until_max_attempts() {
    let forbidden = http_server("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let (_c, rx) = recorded_events(&forbidden.url(), with_reconnect(1, 10, 0));
    let (events, end) = finish(&rx);
    assert!(events.is_empty(), "no reconnecting: {events:?}");
    assert!(matches!(&end, Event::Error(e) if e.http_status() == Some(403)), "{end:?}");

    let unavailable = http_server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    let (_c, rx) = recorded_events(&unavailable.url(), with_reconnect(1, 10, 3));
    let (events, end) = finish(&rx);
    let attempts: Vec<u32> = events
        .iter()
        .filter_map(|e| if let Event::Reconnecting { attempt, .. } = e { Some(*attempt) } else { None })
        .collect();
    assert_eq!(attempts, [1, 2, 3], "{events:?}");
    assert!(matches!(&end, Event::Error(e) if e.http_status() == Some(503)), "the last reason: {end:?}");
}

#[test]
fn retry_after_raises_the_delay_up_to_the_maximum() {
    let busy = http_server("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3600\r\nContent-Length: 0\r\n\r\n");
    let (c, rx) = recorded_events(&busy.url(), with_reconnect(1, 300, 1));
    let ev = wait_for(&rx, "reconnecting", |e| matches!(e, Event::Reconnecting { .. }));
    assert!(matches!(ev, Event::Reconnecting { delay, .. } if delay == Duration::from_millis(300)), "{ev:?}");
    c.close().unwrap();
    expect_close(&rx, 1006);
}

#[test]
fn close_1000_from_the_server_is_not_retried_and_1012_is() {
    let normal = raw_ws_server(|mut s| {
        let _ = std::io::Write::write_all(&mut s, &close_frame(1000, "bye"));
        let _ = read_close_code(&mut s);
    });
    let (_c, rx) = recorded_events(&normal.url(), with_reconnect(1, 10, 0));
    let (events, end) = finish(&rx);
    assert_eq!(events, vec![Event::Open]);
    assert!(matches!(end, Event::Close { code: 1000, .. }), "{end:?}");

    // The first connection is told 1012 (service restart); the next one stays.
    let restarts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = restarts.clone();
    let server = raw_ws_server(move |mut s| {
        if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            let _ = std::io::Write::write_all(&mut s, &close_frame(1012, "restarting"));
            let _ = read_close_code(&mut s);
        } else {
            let ws = tungstenite::WebSocket::from_raw_socket(s, tungstenite::protocol::Role::Server, None);
            echo(ws);
        }
    });
    let (conn, rx) = recorded_events(&server.url(), with_reconnect(1, 10, 0));
    expect_open(&rx);
    let ev = next_event(&rx, "reconnecting after 1012");
    assert!(
        matches!(&ev, Event::Reconnecting { attempt: 1, reason, .. } if reason.message().contains("1012")),
        "{ev:?}"
    );
    expect_open(&rx);
    conn.send("after the restart").unwrap();
    assert_eq!(expect_text(&rx), "after the restart");
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

#[test]
fn close_during_backoff_ends_at_once_with_1006() {
    let (_hold, port) = held_closed_port();
    let (conn, rx) = recorded_events(&format!("ws://127.0.0.1:{port}/"), with_reconnect(60_000, 60_000, 0));
    let ev = next_event(&rx, "reconnecting");
    assert!(matches!(ev, Event::Reconnecting { attempt: 1, .. }), "{ev:?}");
    assert_eq!(conn.state(), Ok(wsc::State::Connecting), "connecting during backoff");
    conn.send("queued while connecting").unwrap();
    let started = Instant::now();
    conn.close().unwrap();
    expect_close(&rx, 1006);
    assert!(started.elapsed() < Duration::from_secs(30), "not the 60 s delay: {:?}", started.elapsed());
}

#[test]
fn two_hundred_attempts_stay_within_the_backoff_bounds() {
    let (_hold, port) = held_closed_port();
    let (_c, rx) = recorded_events(&format!("ws://127.0.0.1:{port}/"), with_reconnect(1, 20, 200));
    let (events, end) = finish(&rx);
    let delays: Vec<(u32, Duration)> = events
        .iter()
        .filter_map(
            |e| if let Event::Reconnecting { attempt, delay, .. } = e { Some((*attempt, *delay)) } else { None },
        )
        .collect();
    assert_eq!(delays.len(), 200);
    for (i, (attempt, delay)) in delays.iter().enumerate() {
        assert_eq!(*attempt as usize, i + 1);
        let cap = Duration::from_millis(1u64 << (attempt - 1).min(5)).min(Duration::from_millis(20));
        assert!(*delay <= cap, "attempt {attempt}: {delay:?} over {cap:?}");
    }
    let distinct: std::collections::HashSet<_> = delays.iter().map(|(_, d)| *d).collect();
    assert!(distinct.len() > 100, "jitter: {} distinct delays", distinct.len());
    assert!(matches!(&end, Event::Error(e) if e.kind() == ErrorKind::Connect), "{end:?}");
}

#[test]
fn reconnect_settings_are_checked() {
    let mut o = Options::new();
    let bad = Reconnect { min_delay: Duration::from_millis(10), max_delay: Duration::from_millis(5), max_attempts: 0 };
    assert!(matches!(o.reconnect(bad), Err(wsc::Error::InvalidArgument(_))));
    let zero = Reconnect { min_delay: Duration::ZERO, max_delay: Duration::ZERO, max_attempts: 0 };
    assert!(o.reconnect(zero).is_err());
    let (tx, _rx) = unbounded::<()>();
    drop(tx);
}

/// Python `websockets` echo server on `port` (0: free), killable with SIGKILL.
fn python_echo(port: u16) -> Option<(std::process::Child, u16)> {
    if let Some(why) = peers::missing() {
        peers::unavailable("python websockets", &why);
        return None;
    }
    let mut child = std::process::Command::new(peers::interop_dir().join("venv/bin/python"))
        .arg(peers::interop_dir().join("py_echo.py"))
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the Python server");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let port = line.trim().trim_start_matches("{\"port\": ").trim_end_matches('}').parse().expect("a port");
    Some((child, port))
}

#[test]
fn a_python_server_killed_with_sigkill_and_restarted() {
    let Some((mut first, port)) = python_echo(0) else { return };
    let (conn, rx) = recorded_events(&format!("ws://127.0.0.1:{port}/"), with_reconnect(10, 200, 0));
    expect_open(&rx);
    conn.send("one").unwrap();
    assert_eq!(expect_text(&rx), "one");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    wait_for(&rx, "reconnecting", |e| matches!(e, Event::Reconnecting { attempt: 1, .. }));
    conn.send("during backoff").unwrap();
    let (mut second, again) = python_echo(port).unwrap();
    assert_eq!(again, port);
    wait_for(&rx, "open again", |e| matches!(e, Event::Open));
    assert_eq!(expect_text(&rx), "during backoff");
    conn.close().unwrap();
    let (_, end) = finish(&rx);
    assert!(matches!(end, Event::Close { code: 1000, .. }), "{end:?}");
    let _ = second.kill();
    let _ = second.wait();
}

/// Issue 21: `min_delay` 0 made every cap 0 (0 doubled stays 0), so a
/// server that drops each connection right after the upgrade got thousands
/// of attempts a second. A zero minimum now starts from 100 ms: over a 2 s
/// window the caps are 0.1, 0.2, 0.4, 0.8, 1.6, 3.2 … s, so a handful of
/// attempts (more than 15 has a vanishing probability; the bug made thousands).
#[test]
fn a_zero_minimum_delay_still_backs_off_against_a_server_that_drops_after_the_upgrade() {
    let upgrades = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = upgrades.clone();
    let server = raw_ws_server(move |stream| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        drop(stream); // FIN right after the 101: connection lost, retried
    });
    let (conn, rx) = recorded_events(&format!("ws://{}/", server.addr()), with_reconnect(0, 60_000, 0));
    expect_open(&rx);
    let window = Instant::now() + Duration::from_secs(2);
    let mut delays = Vec::new();
    while let Ok(event) = rx.recv_deadline(window) {
        match event {
            Event::Reconnecting { attempt, delay, .. } => {
                let cap = (Duration::from_millis(100) * (1u32 << (attempt - 1).min(20))).min(Duration::from_secs(60));
                assert!(delay <= cap, "attempt {attempt}: {delay:?} over its cap {cap:?}");
                delays.push(delay);
            }
            Event::Open => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let attempts = delays.len();
    let first = &delays[..attempts.min(20)];
    assert!((1..=15).contains(&attempts), "{attempts} reconnect attempts in 2 s, the first delays: {first:?}");
    assert!(upgrades.load(std::sync::atomic::Ordering::SeqCst) <= 16);
    conn.close().unwrap();
    let (_, end) = finish(&rx);
    assert!(matches!(end, Event::Close { code: 1006, .. }), "{end:?}");

    // The C setter accepts a zero minimum (same rule) and still refuses a zero maximum.
    unsafe {
        let o = wsc::ffi::wsc_options_new();
        assert_eq!(wsc::ffi::wsc_options_set_reconnect(o, 0, 1, 0), wsc::ffi::wsc_status::WSC_OK);
        assert_eq!(wsc::ffi::wsc_options_set_reconnect(o, 0, 0, 0), wsc::ffi::wsc_status::WSC_ERR_INVALID_ARGUMENT);
        wsc::ffi::wsc_options_free(o);
    }
}
