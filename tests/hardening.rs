//! The contract's edges, one regression test per item of the hardening
//! issue that a hostile review broke: extreme option values, close racing a
//! failing dial or a keepalive timeout, URIs without a path, a handshake
//! that blocks on write, a panic in `on_open`, handler lifetimes. Races are
//! run for many rounds; every round checks the rule, not a timing.
//!
//! Process-wide `shutdown` and thread-exit calls live in `tests/race.rs`
//! (their own binary: shutdown stops every test in the process).

mod common;

use common::*;
use crossbeam_channel::{bounded, unbounded};
use proptest::prelude::*;
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsc::{Builder, ErrorKind, Event, Options};

// ------------------------------------------- 3. durations of any size

/// Every timeout at `Duration::MAX`, or at zero, or anything between:
/// the connection works or fails with one terminal event, never a panic.
fn exchange_with(options: Options, url: &str) -> Event {
    let (conn, rx) = open_channel(url, options);
    let _ = conn.send("ping");
    let mut seen = Vec::new();
    loop {
        let ev = next_event(&rx, "an exchange with extreme options");
        match ev {
            Event::Message(_) => {
                let _ = conn.close();
            }
            ev if ev.is_terminal() => {
                assert_eq!(conn.wait(Duration::MAX), Ok(()), "wait(Duration::MAX) after the end");
                return ev;
            }
            ev => seen.push(ev),
        }
    }
}

#[test]
fn duration_max_everywhere_works() {
    let server = echo_server();
    let mut o = Options::new();
    o.connect_timeout(Duration::MAX)
        .close_timeout(Duration::MAX)
        .ping_interval(Some(Duration::MAX))
        .pong_timeout(Duration::MAX);
    let end = exchange_with(o, &server.url());
    assert!(matches!(end, Event::Close { code: 1000, .. }), "{end:?}");
}

#[test]
fn duration_max_close_timeout_against_a_peer_that_never_closes() {
    // The peer never answers our Close; with no close deadline the
    // connection waits for it, and shutting the peer down ends it.
    let (server, release) = stalled_server();
    let mut o = Options::new();
    o.close_timeout(Duration::MAX);
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    conn.close().unwrap();
    assert!(conn.wait(Duration::from_millis(300)).is_err(), "no deadline: still waiting for the peer");
    drop(release);
    drop(server);
    let end = finish(&rx).1;
    assert!(matches!(end, Event::Close { code: 1006, .. }), "{end:?}");
    assert_eq!(conn.wait(Duration::MAX), Ok(()));
}

#[test]
fn wait_with_duration_max_returns_when_finished() {
    let server = echo_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let waiter = {
        let conn = conn.clone();
        std::thread::spawn(move || conn.wait(Duration::MAX))
    };
    conn.close().unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(()));
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(Duration::from_millis(1 << 31)),
        Just(Duration::from_secs(u64::MAX)),
        (0u64..5_000).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_nanos),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any option durations: exactly one terminal event (checked by
    /// `finish`), within the deadline, and no panic.
    #[test]
    fn any_durations_end_in_exactly_one_terminal_event(
        connect in any_duration(),
        close in any_duration(),
        ping in proptest::option::of(any_duration()),
        pong in any_duration(),
    ) {
        let server = echo_server();
        let mut o = Options::new();
        o.connect_timeout(connect).close_timeout(close).ping_interval(ping).pong_timeout(pong);
        let (conn, rx) = open_channel(&server.url(), o);
        let _ = conn.send("x");
        let _ = conn.close();
        let _ = finish(&rx);
        prop_assert_eq!(conn.wait(Duration::MAX), Ok(()));
    }
}

// ------------------------- 5. close at the instant a dial fails

/// Connects, closes after `delay`, and checks the rule: if `close` returned
/// `Ok`, the end is `Close 1006`; otherwise the dial had already failed.
/// Returns whether close got in first.
fn close_races_a_failing_dial(url: &str, delay: Duration) -> bool {
    let (conn, rx) = open_channel(url, Options::new());
    let until = Instant::now() + delay;
    while Instant::now() < until {
        std::hint::spin_loop(); // vary the moment of the close, not a wait for an event
    }
    let closed = conn.close();
    let end = finish(&rx).1;
    match closed {
        Ok(()) => {
            assert!(matches!(end, Event::Close { code: 1006, .. }), "close() returned Ok, yet: {end:?}");
            true
        }
        Err(wsc::Error::Closed) | Err(wsc::Error::UnknownId) => {
            assert!(matches!(end, Event::Error(_)), "{end:?}");
            false
        }
        Err(e) => panic!("close: {e:?}"),
    }
}

/// Sweeps the moment of the close across the dial, from at once to
/// `max_delay`: both outcomes must occur, and every round keeps the rule.
fn close_races(url: &str, rounds: u32, max_delay: Duration) {
    let won = (0..rounds).filter(|r| close_races_a_failing_dial(url, max_delay * (r % 50) / 50)).count();
    assert!(won > 0, "close never got in first in {rounds} rounds: the race was not exercised");
    assert!(won < rounds as usize, "the dial never failed first in {rounds} rounds: the race was not exercised");
}

#[test]
fn close_right_after_connect_to_a_refused_port_ends_in_close() {
    close_races(&format!("ws://127.0.0.1:{}/", closed_port()), 400, Duration::from_millis(2));
}

#[test]
fn close_right_after_connect_to_an_unknown_host_ends_in_close() {
    // A 64-byte label is invalid, so the resolver fails without any query.
    close_races(&format!("ws://{}.invalid/", "a".repeat(64)), 400, Duration::from_millis(2));
}

#[test]
fn close_right_after_connect_to_a_403_ends_in_close() {
    let server = http_server("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    close_races(&server.url(), 300, Duration::from_millis(8));
}

// ---------------------------------------------- 6. a query without a path

#[test]
fn a_query_without_a_path_is_sent_as_slash_query() {
    let (tx, rx) = unbounded();
    let server = TcpServer::local(move |mut s| {
        if let Ok(head) = read_request(&mut s) {
            let _ = tx.send(head.lines().next().unwrap_or_default().to_owned());
            let _ = s.write_all(upgrade_response(&head).as_bytes());
            drain(s);
        }
    });
    let (conn, events) = open_channel(&format!("ws://{}?x=1&y=2", server.addr()), Options::new());
    expect_open(&events);
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), "GET /?x=1&y=2 HTTP/1.1");
    conn.close().unwrap();
}

// ------------------------- 7. a handshake that blocks on write

#[test]
fn an_upgrade_request_larger_than_the_socket_buffers_goes_through() {
    // The server takes the request slowly through a tiny receive buffer and
    // answers only once it has all of it: a client that waits for
    // readability while its request is stuck in its send buffer would hang
    // until the connect timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&listener).set_recv_buffer_size(4096).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut buf = vec![0u8; 4096];
        while !head.ends_with(b"\r\n\r\n") {
            let n = std::io::Read::read(&mut s, &mut buf).unwrap();
            assert!(n > 0, "the client hung up during its request");
            head.extend_from_slice(&buf[..n]); // the client sends nothing after its request
        }
        let head = String::from_utf8(head).unwrap();
        s.write_all(upgrade_response(&head).as_bytes()).unwrap();
        echo(tungstenite::WebSocket::from_raw_socket(s, tungstenite::protocol::Role::Server, None));
        head.len()
    });
    let cookie = "c".repeat(8 << 20);
    let mut o = Options::new();
    o.add_header("Cookie", &cookie).unwrap().connect_timeout(Duration::from_secs(15));
    let started = Instant::now();
    let (conn, rx) = open_channel(&format!("ws://{addr}/"), o);
    expect_open(&rx);
    conn.send("after a large request").unwrap();
    assert_eq!(expect_text(&rx), "after a large request");
    conn.close().unwrap();
    expect_close(&rx, 1000);
    assert!(server.join().unwrap() > 8 << 20);
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
}

// ------------------------------------------- 8. slowloris handshake

#[test]
fn a_handshake_response_in_tiny_pieces_is_refused_as_an_attack() {
    // Faster than the connect timeout: tungstenite's guard (more than 64
    // reads averaging under 128 bytes) ends it, as the README's table says.
    let server = TcpServer::local(|mut s| {
        if let Ok(head) = read_request(&mut s) {
            for b in upgrade_response(&head).bytes() {
                if s.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5)); // the peer's pace, not synchronisation
            }
            drain(s);
        }
    });
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    let e = expect_error(&rx, ErrorKind::Handshake { status: None });
    assert!(e.message().contains("slowloris"), "{e}");
}

// ------------------------------------------------- 9. panic in on_open

#[test]
fn a_panic_in_on_open_sends_close_1011_like_one_in_on_message() {
    let (server, frames) = recording_server(false);
    let (tx, rx) = unbounded();
    Builder::new(server.url())
        .on_open(|_| panic!("deliberate panic in on_open"))
        .on_error(move |_, e| {
            let _ = tx.send(e.clone());
        })
        .connect()
        .unwrap();
    let e = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(e.kind(), ErrorKind::Callback, "{e}");
    let close = wait_for(&frames, "the client's Close", |m| m.is_close());
    let tungstenite::Message::Close(Some(frame)) = close else { panic!("{close:?}") };
    assert_eq!(u16::from(frame.code), 1011);
}

// ------------------------ 10. keepalive timeout and close at once

#[test]
fn close_racing_a_keepalive_timeout_ends_in_close_once_close_returned_ok() {
    // The peer never answers pings: each connection's keepalive times out
    // after ~20 ms, while the application closes at a varying moment around
    // it. Whoever wins, close() returning Ok means the end is Close.
    let (server, _release) = stalled_server();
    let (mut close_won, mut timeout_won) = (0, 0);
    for round in 0..150u64 {
        let mut o = Options::new();
        o.ping_interval(Some(Duration::from_millis(5)))
            .pong_timeout(Duration::from_millis(15))
            .close_timeout(Duration::from_millis(50));
        let (conn, rx) = open_channel(&server.url(), o);
        expect_open(&rx);
        let spin = Instant::now() + Duration::from_micros(15_000 + (round % 30) * 300);
        while Instant::now() < spin {
            std::hint::spin_loop(); // vary the moment of the close, not a wait for an event
        }
        let closed = conn.close();
        let end = finish(&rx).1;
        match closed {
            Ok(()) => {
                assert!(matches!(end, Event::Close { code: 1006, .. }), "round {round}: close() was Ok, yet {end:?}");
                close_won += 1;
            }
            Err(_) => {
                assert!(matches!(&end, Event::Error(e) if e.kind() == ErrorKind::Timeout), "{end:?}");
                timeout_won += 1;
            }
        }
    }
    assert!(close_won > 0, "close never won ({timeout_won} timeouts)");
}

// ------------------------------------------ 12. handler lifetimes

#[test]
fn unregister_waits_for_calls_in_progress() {
    let server = echo_server();
    let name = "hardening/unregister-waits";
    let (entered_tx, entered) = bounded(1);
    let (release_tx, release) = bounded::<()>(1);
    let unregistered = Arc::new(AtomicBool::new(false));
    let (seen_tx, seen) = bounded(1);
    let flag = unregistered.clone();
    wsc::register_handler(name, move |_, event| {
        if matches!(event, Event::Open) {
            let _ = entered_tx.send(());
            let _ = release.recv();
            // Still inside the call: unregister must not have returned.
            let _ = seen_tx.send(flag.load(Ordering::SeqCst));
        }
    })
    .unwrap();
    let conn = wsc::create_websocket(&server.url(), name, None, None).unwrap();
    entered.recv_timeout(DEADLINE).unwrap();
    let (done_tx, done) = bounded(1);
    let remover = std::thread::spawn(move || {
        let r = wsc::unregister_handler(name);
        unregistered.store(true, Ordering::SeqCst);
        let _ = done_tx.send(());
        r
    });
    // Give a wrong implementation the chance to return early.
    assert!(done.recv_timeout(Duration::from_millis(200)).is_err(), "unregister returned during a call");
    release_tx.send(()).unwrap();
    assert!(!seen.recv_timeout(DEADLINE).unwrap(), "unregister returned while the handler ran");
    assert_eq!(remover.join().unwrap(), Ok(()));
    conn.close().unwrap();
    conn.wait(DEADLINE).unwrap();
}

#[test]
fn unregister_from_inside_the_handler_returns_at_once() {
    let server = echo_server();
    let name = "hardening/unregister-itself";
    let (tx, rx) = unbounded();
    wsc::register_handler(name, move |c, event| {
        if matches!(event, Event::Open) {
            let _ = tx.send(wsc::unregister_handler(name));
            let _ = c.close();
        }
    })
    .unwrap();
    let conn = wsc::create_websocket(&server.url(), name, None, None).unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), Ok(()));
    conn.wait(DEADLINE).unwrap();
}

#[test]
fn replacing_a_handler_waits_for_the_old_one() {
    let server = echo_server();
    let name = "hardening/replace-waits";
    let (entered_tx, entered) = bounded(1);
    let (release_tx, release) = bounded::<()>(1);
    let old_running = Arc::new(AtomicBool::new(false));
    let running = old_running.clone();
    wsc::register_handler(name, move |_, event| {
        if matches!(event, Event::Open) {
            running.store(true, Ordering::SeqCst);
            let _ = entered_tx.send(());
            let _ = release.recv();
            running.store(false, Ordering::SeqCst);
        }
    })
    .unwrap();
    let conn = wsc::create_websocket(&server.url(), name, None, None).unwrap();
    entered.recv_timeout(DEADLINE).unwrap();
    let replacer = std::thread::spawn(move || {
        wsc::register_handler(name, |_, _| {}).unwrap();
    });
    release_tx.send(()).unwrap();
    replacer.join().unwrap();
    assert!(!old_running.load(Ordering::SeqCst), "re-registering returned while the old handler ran");
    conn.close().unwrap();
    conn.wait(DEADLINE).unwrap();
    wsc::unregister_handler(name).unwrap();
}

// ------------------------------ 11. buffers given back after idling

#[test]
fn messages_after_the_buffers_were_given_back_arrive_intact() {
    // After a large message the connection idles past the point where wsc
    // rebuilds tungstenite's socket state; frames that follow (fragmented,
    // with a ping between fragments, large again) must arrive whole.
    let big = vec![b'b'; 200 << 10];
    let payload = big.clone();
    let server = raw_ws_server(move |mut s| {
        let _ = s.write_all(&frame(FIN | BINARY, &payload));
        std::thread::sleep(Duration::from_millis(1500)); // the peer's pace: idle past the shrink
        let mut bytes = frame(TEXT, b"frag");
        bytes.extend(frame(FIN | PING, b"p"));
        bytes.extend(frame(FIN, b"mented"));
        bytes.extend(frame(FIN | BINARY, &payload));
        for chunk in bytes.chunks(7) {
            let _ = s.write_all(chunk);
        }
        let _ = s.write_all(&close_frame(1000, "done"));
        let _ = read_close_code(&mut s);
    });
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    let (events, last) = finish(&rx);
    let bin = Event::Message(wsc::Message::Binary(big.into()));
    let text = Event::Message(wsc::Message::Text("fragmented".into()));
    assert_eq!(events, vec![Event::Open, bin.clone(), text, bin]);
    assert!(matches!(last, Event::Close { code: 1000, .. }), "{last:?}");
}

// ------------------------------ 3. every C option value, as a C host passes it

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Any `u32` for the millisecond setters and any `usize` for the sizes:
    /// each setter answers OK or INVALID_ARGUMENT, and a connection made with
    /// the result ends (one terminal event, `wsc_wait` succeeds), never a
    /// panic or a hang.
    #[test]
    fn any_c_option_values_give_a_status_and_a_connection_that_ends(
        ms in proptest::collection::vec(prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>(), 0u32..3000], 4),
        sizes in proptest::collection::vec(prop_oneof![Just(0usize), Just(usize::MAX), any::<usize>(), 0usize..(1 << 20)], 4),
    ) {
        use wsc::ffi::*;
        let server = echo_server();
        let o = wsc_options_new();
        // SAFETY: `o` comes from wsc_options_new and is freed once below.
        unsafe {
            for (i, v) in ms.iter().enumerate() {
                let st = match i {
                    0 => wsc_options_set_connect_timeout_ms(o, *v),
                    1 => wsc_options_set_close_timeout_ms(o, *v),
                    2 => wsc_options_set_ping_interval_ms(o, *v),
                    _ => wsc_options_set_pong_timeout_ms(o, *v),
                };
                prop_assert_eq!(st, wsc_status::WSC_OK);
            }
            for (i, v) in sizes.iter().enumerate() {
                let st = match i {
                    0 => wsc_options_set_max_message_size(o, *v),
                    1 => wsc_options_set_max_buffered_bytes(o, *v),
                    2 => wsc_options_set_read_buffer_size(o, *v),
                    _ => wsc_options_set_stack_size(o, (*v).min(64 << 20)),
                };
                prop_assert!(matches!(st, wsc_status::WSC_OK | wsc_status::WSC_ERR_INVALID_ARGUMENT), "{:?}", st);
            }
            let direct = std::ffi::CString::new("").unwrap();
            prop_assert_eq!(wsc_options_set_proxy(o, direct.as_ptr()), wsc_status::WSC_OK);
            prop_assert_eq!(wsc_options_set_proxy_from_env(o, ms[0] % 2 == 0), wsc_status::WSC_OK);
            let uri = std::ffi::CString::new(server.url()).unwrap();
            let callbacks = wsc_callbacks { on_open: None, on_message: None, on_error: None, on_close: None };
            let mut id = 0;
            prop_assert_eq!(wsc_connect(uri.as_ptr(), o, &callbacks, std::ptr::null_mut(), &mut id), wsc_status::WSC_OK);
            wsc_options_free(o);
            let text = std::ffi::CString::new("x").unwrap();
            let _ = wsc_send(id, text.as_ptr());
            let _ = wsc_close(id);
            prop_assert_eq!(wsc_wait(id, 20_000), wsc_status::WSC_OK);
        }
    }
}

#[test]
fn close_while_a_keepalive_timeout_is_being_delivered_is_refused() {
    // Deterministic form of the race: the keepalive timeout has ended the
    // connection and its on_error is running; a close() from another thread
    // at that moment must not return Ok (the end is already an error).
    let (server, _release) = stalled_server();
    let mut o = Options::new();
    o.ping_interval(Some(Duration::from_millis(10))).pong_timeout(Duration::from_millis(10));
    let (in_error_tx, in_error) = bounded(1);
    let (closed_tx, closed) = bounded(1);
    let conn = Builder::new(server.url())
        .options(o)
        .on_error(move |_, e| {
            let _ = in_error_tx.send(e.kind());
            let _ = closed.recv_timeout(DEADLINE); // hold the terminal callback until close() returned
        })
        .connect()
        .unwrap();
    assert_eq!(in_error.recv_timeout(DEADLINE).unwrap(), ErrorKind::Timeout);
    let r = conn.close();
    closed_tx.send(()).unwrap();
    assert_eq!(r, Err(wsc::Error::Closed), "close() during the terminal error must not report success");
    conn.wait(DEADLINE).unwrap();
}
