//! The core engine's promises (issue 2, behaviours 1-11), each checked the
//! way a user would see it: events on a channel or in callbacks, what a real
//! loopback server receives, thread names and CPU time from `/proc`.

mod common;

use common::*;
use crossbeam_channel::{unbounded, RecvTimeoutError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use wsc::{Builder, Error, ErrorKind, Event, Message, Options, State};

/// Asserts nothing arrives for `quiet` (a negative check needs a window).
fn assert_quiet(rx: &crossbeam_channel::Receiver<Event>, quiet: Duration, why: &str) {
    match rx.recv_timeout(quiet) {
        Err(RecvTimeoutError::Timeout) => {}
        Ok(ev) => panic!("{why}: got {ev:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{why}: the connection ended"),
    }
}

// ------------------------------------------------------ 1. queued sends

#[test]
fn sends_before_open_are_queued_and_delivered_in_order() {
    let (release, hold) = unbounded::<()>();
    let server = TcpServer::local(move |stream| {
        let _ = hold.recv(); // answer the upgrade only when the test says so
        if let Ok(ws) = tungstenite::accept(stream) {
            echo(ws)
        }
    });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    server.wait_accepted();
    for i in 0..50 {
        assert_eq!(conn.state(), Ok(State::Connecting));
        conn.send(format!("m{i}")).unwrap();
    }
    assert!(conn.buffered_amount().unwrap() > 0);
    drop(release);
    expect_open(&rx);
    for i in 0..50 {
        assert_eq!(expect_text(&rx), format!("m{i}"));
    }
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

// --------------------------------------------- 2. exactly one terminal event

#[test]
fn terminal_close_from_server_carries_its_code_and_reason() {
    let server = ws_server(|mut ws| {
        let _ = ws.close(Some(CloseFrame { code: CloseCode::from(4001), reason: "bye".into() }));
        while ws.read().is_ok() {}
    });
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    let (before, last) = finish(&rx);
    assert_eq!(before, vec![Event::Open]);
    assert_eq!(last, Event::Close { code: 4001, reason: "bye".into() });
}

#[test]
fn terminal_close_from_client() {
    let (server, seen) = recording_server(true);
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    conn.close_with(4002, "done").unwrap();
    expect_close(&rx, 4002);
    match seen.recv_timeout(DEADLINE).unwrap() {
        tungstenite::Message::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 4002);
            assert_eq!(f.reason.as_str(), "done");
        }
        other => panic!("server saw {other:?}"),
    }
}

#[test]
fn terminal_error_connection_refused() {
    let url = format!("ws://127.0.0.1:{}/", closed_port());
    let (_conn, rx) = open_channel(&url, Options::new());
    let e = expect_error(&rx, ErrorKind::Connect);
    assert!(e.message().contains("refused"), "{e}");
}

#[test]
fn terminal_error_dns_failure() {
    // A 64-byte label is invalid, so the resolver fails without any query.
    let url = format!("ws://{}.invalid/", "a".repeat(64));
    let (_conn, rx) = open_channel(&url, Options::new());
    let e = expect_error(&rx, ErrorKind::Resolve);
    assert!(e.message().contains("resolve"), "{e}");
}

#[test]
fn terminal_error_http_404_carries_the_status() {
    let server = http_server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    let e = expect_error(&rx, ErrorKind::Handshake { status: Some(404) });
    assert!(e.message().contains("404"), "{e}");
}

#[test]
fn terminal_error_protocol_violation() {
    let server = raw_ws_server(|mut s| {
        use std::io::Write;
        let _ = s.write_all(&frame(FIN | 0x40 | TEXT, b"rsv1"));
        drain(s);
    });
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let e = expect_error(&rx, ErrorKind::Protocol);
    assert!(e.message().contains("protocol"), "{e}");
}

#[test]
fn terminal_error_connect_timeout_on_silent_server() {
    let (e, took) = connect_to_silent_server(Duration::from_millis(400));
    assert!(e.message().contains("timeout"), "{e}");
    assert!(took >= Duration::from_millis(400));
}

#[test]
fn terminal_error_peer_vanishes() {
    let server = raw_ws_server(drop);
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    expect_error(&rx, ErrorKind::ConnectionLost);
}

#[test]
fn close_while_connecting_to_silent_server_ends_at_once_with_1006() {
    let server = silent_server();
    let o = opts(|o| {
        o.connect_timeout(Duration::from_secs(60));
    });
    let (conn, rx) = open_channel(&server.url(), o);
    server.wait_accepted();
    let asked = Instant::now();
    conn.close().unwrap();
    let late = conn.send("late"); // Closed, or UnknownId if it has already ended
    assert!(matches!(late, Err(Error::Closed | Error::UnknownId)), "{late:?}");
    let (before, last) = finish(&rx);
    assert!(before.is_empty(), "no Open: {before:?}");
    assert!(matches!(last, Event::Close { code: 1006, .. }), "{last:?}");
    assert!(asked.elapsed() < Duration::from_secs(2), "took {:?}", asked.elapsed());
}

#[test]
fn close_while_connecting_before_any_answer_from_a_real_server() {
    let (release, hold) = unbounded::<()>();
    let server = TcpServer::local(move |stream| {
        let _ = hold.recv();
        if let Ok(ws) = tungstenite::accept(stream) {
            echo(ws)
        }
    });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    conn.close().unwrap();
    expect_close(&rx, 1006);
    drop(release);
}

// ------------------------------------------------- 3. threads and reentrancy

/// Callbacks that record (event, thread name) and count overlapping calls.
fn probed(url: &str) -> (wsc::Connection, crossbeam_channel::Receiver<(Event, String)>, Arc<AtomicUsize>) {
    let (tx, rx) = unbounded();
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let probe = {
        let overlaps = overlaps.clone();
        move |ev: Event| {
            if inside.swap(true, Ordering::SeqCst) {
                overlaps.fetch_add(1, Ordering::SeqCst);
            }
            let name = std::thread::current().name().unwrap_or("").to_owned();
            let _ = tx.send((ev, name));
            std::thread::yield_now();
            inside.store(false, Ordering::SeqCst);
        }
    };
    let (p1, p2, p3, p4) = (probe.clone(), probe.clone(), probe.clone(), probe);
    let conn = Builder::new(url)
        .on_open(move |_| p1(Event::Open))
        .on_message(move |_, m| p2(Event::Message(m)))
        .on_error(move |_, e| p3(Event::Error(e.clone())))
        .on_close(move |_, code, reason| {
            let reason = reason.to_owned();
            p4(Event::Close { code, reason })
        })
        .connect()
        .unwrap();
    (conn, rx, overlaps)
}

#[test]
fn callbacks_run_on_the_named_worker_one_at_a_time_in_order() {
    let server = echo_server();
    let (conn, rx, overlaps) = probed(&server.url());
    let name = format!("wsc-{}", conn.id());
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), (Event::Open, name.clone()));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let c = conn.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    c.send(format!("{t}-{i}")).unwrap();
                }
            })
        })
        .collect();
    senders.into_iter().for_each(|h| h.join().unwrap());
    let mut last_seen = [-1i32; 4];
    for _ in 0..100 {
        let (ev, thread) = rx.recv_timeout(DEADLINE).unwrap();
        assert_eq!(thread, name);
        let Event::Message(m) = ev else { panic!("{ev:?}") };
        let (t, i) = m.as_text().unwrap().split_once('-').unwrap();
        let (t, i): (usize, i32) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, last_seen[t] + 1, "each sender's messages in order");
        last_seen[t] = i;
    }
    conn.close().unwrap();
    let closed = Event::Close { code: 1000, reason: String::new() };
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), (closed, name));
    assert!(rx.recv_timeout(DEADLINE).is_err(), "nothing after the terminal event");
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "callbacks overlapped");
}

#[test]
fn api_calls_from_callbacks_and_other_threads_do_not_deadlock() {
    let server = echo_server();
    let (done_tx, done) = unbounded();
    let counted = Arc::new(AtomicUsize::new(0));
    let n = counted.clone();
    let conn = Builder::new(server.url())
        .on_open(|c| c.send("0").unwrap())
        .on_message(move |c, m| {
            c.set_flow_control(true).unwrap();
            c.message_complete().unwrap();
            let _ = (c.state(), c.buffered_amount(), c.protocol());
            c.set_flow_control(false).unwrap();
            let Ok(i) = m.as_text().unwrap().parse::<usize>() else {
                return;
            };
            n.store(i, Ordering::SeqCst);
            if i == 200 {
                c.close().unwrap();
            } else {
                c.send((i + 1).to_string()).unwrap();
            }
        })
        .on_close(move |_, code, _| done_tx.send(code).unwrap())
        .connect()
        .unwrap();
    let pokers: Vec<_> = (0..3)
        .map(|_| {
            let c = conn.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let r = c.send("x").and(c.message_complete());
                    let _ = (c.state(), c.buffered_amount());
                    match r {
                        Ok(()) => {}
                        Err(Error::Closed | Error::UnknownId) => return,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    assert_eq!(done.recv_timeout(DEADLINE), Ok(1000));
    pokers.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(counted.load(Ordering::SeqCst), 200);
}

// ------------------------------------------------------- 4. flow control

/// A server that sends `m1..=mN` right after the upgrade, then records.
fn sender_server(n: usize) -> (TcpServer, crossbeam_channel::Receiver<tungstenite::Message>) {
    let (tx, rx) = unbounded();
    let server = ws_server(move |mut ws| {
        for i in 1..=n {
            let _ = ws.send(tungstenite::Message::text(format!("m{i}")));
        }
        while let Ok(m) = ws.read() {
            let _ = tx.send(m);
        }
    });
    (server, rx)
}

fn flow_controlled(url: &str) -> (wsc::Connection, crossbeam_channel::Receiver<Event>) {
    open_channel(
        url,
        opts(|o| {
            o.flow_control(true);
        }),
    )
}

#[test]
fn flow_control_holds_the_next_message_until_complete_and_banks_no_credit() {
    let (server, _seen) = sender_server(4);
    let (conn, rx) = flow_controlled(&server.url());
    for _ in 0..3 {
        conn.message_complete().unwrap(); // nothing outstanding: no credit
    }
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "m1");
    assert_quiet(&rx, Duration::from_millis(400), "second delivery before complete");
    conn.message_complete().unwrap();
    assert_eq!(expect_text(&rx), "m2");
    assert_quiet(&rx, Duration::from_millis(300), "delivery before complete");
    conn.close().unwrap();
    let (rest, _) = finish(&rx);
    assert!(rest.is_empty(), "nothing delivered after close: {rest:?}");
}

#[test]
fn flow_control_complete_from_another_thread_later() {
    let (server, _seen) = sender_server(2);
    let (conn, rx) = flow_controlled(&server.url());
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "m1");
    assert_quiet(&rx, Duration::from_millis(300), "delivery before complete");
    let c = conn.clone();
    std::thread::spawn(move || c.message_complete().unwrap()).join().unwrap();
    assert_eq!(expect_text(&rx), "m2");
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

#[test]
fn flow_control_sends_and_close_still_work_while_the_gate_is_shut() {
    let (server, seen) = sender_server(3);
    let (conn, rx) = flow_controlled(&server.url());
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "m1");
    conn.send("while shut").unwrap();
    let got = seen.recv_timeout(DEADLINE).unwrap();
    assert_eq!(got, tungstenite::Message::text("while shut"));
    conn.close().unwrap();
    let (rest, last) = finish(&rx);
    assert!(rest.is_empty(), "m2 must not be delivered: {rest:?}");
    assert!(matches!(last, Event::Close { code: 1000, .. }), "{last:?}");
}

#[test]
fn flow_control_off_releases_the_gate() {
    let (server, _seen) = sender_server(5);
    let (conn, rx) = flow_controlled(&server.url());
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "m1");
    assert_quiet(&rx, Duration::from_millis(300), "delivery before complete");
    conn.set_flow_control(false).unwrap();
    for i in 2..=5 {
        assert_eq!(expect_text(&rx), format!("m{i}"));
    }
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

/// Writes 16 KiB messages without blocking until the socket refuses more;
/// reports how many it wrote, then finishes them, sends "end" and echoes.
fn flooding_server() -> (TcpServer, crossbeam_channel::Receiver<usize>) {
    let (tx, rx) = unbounded();
    let server = ws_server(move |mut ws| {
        ws.get_ref().set_nonblocking(true).unwrap();
        let chunk = tungstenite::Bytes::from(vec![7u8; 16 << 10]);
        let mut sent = 0usize;
        while sent < 4096 {
            sent += 1; // queued in tungstenite even if the write would block
            match ws.write(tungstenite::Message::Binary(chunk.clone())) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        let _ = tx.send(sent);
        ws.get_ref().set_nonblocking(false).unwrap();
        let _ = ws.send(tungstenite::Message::text("end"));
        echo(ws);
    });
    (server, rx)
}

#[test]
fn flow_control_shut_gate_stops_reading_so_the_server_blocks() {
    let (server, blocked) = flooding_server();
    let (conn, rx) = flow_controlled(&server.url());
    expect_open(&rx);
    assert!(matches!(next_event(&rx, "first"), Event::Message(_)));
    let sent = blocked.recv_timeout(DEADLINE).expect("the server's writes never blocked: the client kept reading");
    assert!(sent < 4096, "the server wrote 64 MiB without blocking");
    assert!(rx.is_empty(), "nothing more was delivered while shut");
    conn.set_flow_control(false).unwrap();
    for i in 2..=sent {
        match next_event(&rx, "flooded messages") {
            Event::Message(Message::Binary(b)) => assert_eq!(b.len(), 16 << 10),
            other => panic!("message {i}: {other:?}"),
        }
    }
    assert_eq!(expect_text(&rx), "end", "nothing lost, nothing extra");
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

// ------------------------------------------------- 5. no busy waiting, 5a

#[test]
fn peer_that_stops_reading_while_writing_does_not_stall_receiving() {
    // Echo with blocking writes and tiny buffers: while its writes are
    // blocked it reads nothing, so a client that stops reading while its own
    // sends are pending deadlocks against it.
    let server = TcpServer::local(|stream| {
        small_buffers(&stream);
        if let Ok(ws) = tungstenite::accept(stream) {
            echo(ws)
        }
    });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    echo_binaries(&conn, &rx, 32, 256 << 10);
    close_cleanly(&conn, &rx);
}

#[test]
fn idle_connections_use_no_cpu_and_a_send_wakes_the_worker_at_once() {
    let server = echo_server();
    let conns: Vec<_> = (0..4).map(|_| open_channel(&server.url(), Options::new())).collect();
    for (_, rx) in &conns {
        expect_open(rx);
    }
    let before: u64 = conns.iter().map(|(c, _)| worker_cpu_ticks(c.id())).sum();
    assert_quiet(&conns[0].1, Duration::from_secs(1), "idle");
    let after: u64 = conns.iter().map(|(c, _)| worker_cpu_ticks(c.id())).sum();
    assert!(after - before <= 2, "4 idle workers used {} ticks in 1 s", after - before);

    let (conn, rx) = &conns[0];
    let mut rtts: Vec<Duration> = (0..7)
        .map(|i| {
            let c = conn.clone();
            let t = Instant::now();
            std::thread::spawn(move || c.send(format!("wake {i}")).unwrap());
            assert_eq!(expect_text(rx), format!("wake {i}"));
            t.elapsed()
        })
        .collect();
    rtts.sort();
    assert!(rtts[3] < Duration::from_millis(25), "round trips: {rtts:?}");
    for (c, rx) in &conns {
        c.close().unwrap();
        expect_close(rx, 1000);
    }
}

// ------------------------------------------------------------ 6. closing

#[test]
fn close_writes_every_queued_message_then_the_close_frame() {
    let (server, seen) = recording_server(false);
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let pad = "p".repeat(4096);
    for i in 0..200 {
        conn.send(format!("{i} {pad}")).unwrap();
    }
    conn.close().unwrap();
    for i in 0..200 {
        let m = seen.recv_timeout(DEADLINE).unwrap();
        let text = m.to_text().unwrap().to_owned();
        assert!(text.starts_with(&format!("{i} ")), "message {i} in order");
    }
    let close = seen.recv_timeout(DEADLINE).unwrap();
    assert!(matches!(close, tungstenite::Message::Close(Some(ref f)) if f.code == CloseCode::Normal));
    expect_close(&rx, 1000);
}

#[test]
fn calls_after_close_are_refused_and_after_the_end_are_unknown() {
    // The server answers our Close only when told, so the connection stays
    // in Closing while the test probes it.
    let (release, hold) = unbounded::<()>();
    let server = raw_ws_server(move |mut s| {
        use std::io::Write;
        let code = read_close_code(&mut s).unwrap();
        let _ = hold.recv();
        let _ = s.write_all(&close_frame(code, ""));
    });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    conn.close().unwrap();
    assert_eq!(conn.state(), Ok(State::Closing));
    assert_eq!(conn.send("late"), Err(Error::Closed));
    assert_eq!(conn.send_binary(vec![1]), Err(Error::Closed));
    assert_eq!(conn.close(), Err(Error::Closed));
    assert_eq!(conn.close_with(4000, "again"), Err(Error::Closed));
    drop(release);
    expect_close(&rx, 1000);
    // The channel ends after the terminal event returned: the id is gone.
    assert_eq!(conn.state(), Err(Error::UnknownId));
    assert_eq!(conn.send("later"), Err(Error::UnknownId));
    assert_eq!(conn.close(), Err(Error::UnknownId));
    assert_eq!(conn.message_complete(), Err(Error::UnknownId));
    assert_eq!(conn.set_flow_control(true), Err(Error::UnknownId));
    assert_eq!(conn.buffered_amount(), Err(Error::UnknownId));
}

#[test]
fn connection_lives_without_any_handle() {
    let server = echo_server();
    let (tx, rx) = unbounded();
    let tx2 = tx.clone();
    drop(
        Builder::new(server.url())
            .on_open(|c| c.send("alone").unwrap())
            .on_message(move |c, m| {
                tx2.send(m.as_text().unwrap().to_owned()).unwrap();
                c.close().unwrap();
            })
            .on_close(move |_, code, _| tx.send(code.to_string()).unwrap())
            .connect()
            .unwrap(),
    );
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), "alone");
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), "1000");
}

// -------------------------------------------------------------- 7. limits

#[test]
fn oversized_message_ends_with_message_too_big_and_close_1009() {
    let (tx, codes) = unbounded();
    let server = ws_server(move |mut ws| {
        let _ = ws.send(tungstenite::Message::binary(vec![0u8; 2048]));
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Close(f)) => {
                    let _ = tx.send(f.map(|f| u16::from(f.code)));
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let o = opts(|o| {
        o.max_message_size(1024).unwrap();
    });
    let (_conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let e = expect_error(&rx, ErrorKind::MessageTooBig);
    assert!(e.message().contains("too big"), "{e}");
    assert_eq!(codes.recv_timeout(DEADLINE).unwrap(), Some(1009));
}

#[test]
fn queue_full_past_max_buffered_bytes_when_the_server_does_not_read() {
    let (server, release) = stalled_server();
    let limit = 1 << 20;
    let o = opts(|o| {
        o.max_buffered_bytes(limit).unwrap();
        o.close_timeout(Duration::from_millis(500));
    });
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let mut accepted = 0usize;
    let full = loop {
        match conn.send_binary(vec![1u8; 64 << 10]) {
            Ok(()) => accepted += 64 << 10,
            Err(e) => break e,
        }
        assert!(accepted < 256 << 20, "QueueFull never came");
    };
    assert!(matches!(full, Error::QueueFull { limit: l, buffered } if l == limit && buffered <= limit), "{full:?}");
    assert!(conn.buffered_amount().unwrap() <= limit);
    conn.close().unwrap();
    expect_close(&rx, 1006);
    drop(release);
}

// ------------------------------------------------------------ 8. keepalive

#[test]
fn keepalive_sends_pings_at_the_interval() {
    let (tx, pings) = unbounded();
    let server = ws_server(move |mut ws| {
        while let Ok(m) = ws.read() {
            if m.is_ping() {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let o = opts(|o| {
        o.ping_interval(Some(Duration::from_millis(200)));
        o.pong_timeout(Duration::from_secs(5));
    });
    let started = Instant::now();
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let times: Vec<Instant> = (0..4).map(|_| pings.recv_timeout(DEADLINE).unwrap()).collect();
    assert!(times[0] - started >= Duration::from_millis(150));
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(150), "ping gap {:?}", w[1] - w[0]);
    }
    assert!(rx.is_empty(), "answered pings keep the connection alive");
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

#[test]
fn keepalive_times_out_when_the_server_never_answers() {
    let server = raw_ws_server(drain);
    let o = opts(|o| {
        o.ping_interval(Some(Duration::from_millis(200)));
        o.pong_timeout(Duration::from_millis(300));
    });
    let started = Instant::now();
    let (_conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let e = expect_error(&rx, ErrorKind::Timeout);
    assert!(e.message().contains("keepalive"), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[test]
fn incoming_pings_are_answered_and_not_delivered() {
    let (tx, pongs) = unbounded();
    let server = ws_server(move |mut ws| {
        let _ = ws.send(tungstenite::Message::Ping("are you there".into()));
        while let Ok(m) = ws.read() {
            if let tungstenite::Message::Pong(p) = m {
                let _ = tx.send(p.to_vec());
            }
        }
    });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    assert_eq!(pongs.recv_timeout(DEADLINE).unwrap(), b"are you there");
    conn.close().unwrap();
    let (rest, _) = finish(&rx);
    assert!(rest.is_empty(), "a ping is not a message: {rest:?}");
}

// -------------------------------------------------------------- 9. options

#[test]
#[allow(clippy::result_large_err)] // tungstenite's handshake callback type
fn headers_and_subprotocols_reach_the_server_and_the_choice_is_readable() {
    let (tx, requests) = unbounded();
    let server = TcpServer::local(move |stream| {
        let tx = tx.clone();
        let callback = move |req: &tungstenite::handshake::server::Request,
                             mut resp: tungstenite::handshake::server::Response| {
            let h = |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
            let _ = tx.send((h("x-wsc-test"), h("sec-websocket-protocol")));
            resp.headers_mut().insert("Sec-WebSocket-Protocol", "chat.v2".parse().unwrap());
            Ok(resp)
        };
        if let Ok(ws) = tungstenite::accept_hdr(stream, callback) {
            echo(ws)
        }
    });
    let o = opts(|o| {
        o.add_header("X-Wsc-Test", "yes").unwrap();
        o.add_subprotocol("chat.v1").unwrap();
        o.add_subprotocol("chat.v2").unwrap();
    });
    let (conn, rx) = open_channel(&server.url(), o);
    let (header, offered) = requests.recv_timeout(DEADLINE).unwrap();
    assert_eq!(header.as_deref(), Some("yes"));
    assert_eq!(offered.as_deref(), Some("chat.v1, chat.v2"));
    expect_open(&rx);
    assert_eq!(conn.protocol().as_deref(), Some("chat.v2"));
    conn.close().unwrap();
    expect_close(&rx, 1000);
}

/// The raw request heads a server receives, one per connection; each is
/// then upgraded and the socket drained.
fn request_recording_server() -> (TcpServer, crossbeam_channel::Receiver<String>) {
    let (tx, heads) = unbounded();
    let server = TcpServer::local(move |mut stream| {
        let Ok(head) = read_request(&mut stream) else { return };
        let _ = tx.send(head.clone());
        if std::io::Write::write_all(&mut stream, upgrade_response(&head).as_bytes()).is_ok() {
            drain(stream);
        }
    });
    (server, heads)
}

/// The values of header `name` in a raw request head.
fn header_values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

#[test]
fn the_upgrade_request_says_user_agent_wsc_unless_the_application_sets_one() {
    let (server, heads) = request_recording_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    let head = heads.recv_timeout(DEADLINE).unwrap();
    expect_open(&rx);
    assert_eq!(header_values(&head, "user-agent"), [format!("wsc/{}", env!("CARGO_PKG_VERSION"))], "{head}");
    conn.close().unwrap();

    // The application's own User-Agent (in any case) replaces it: one header, theirs.
    let (conn, rx) = open_channel(
        &server.url(),
        opts(|o| {
            o.add_header("user-agent", "pbx/7.1").unwrap();
        }),
    );
    let head = heads.recv_timeout(DEADLINE).unwrap();
    expect_open(&rx);
    assert_eq!(header_values(&head, "user-agent"), ["pbx/7.1"], "{head}");
    conn.close().unwrap();
}

#[test]
fn ipv6_loopback_literal() {
    let server = TcpServer::start("[::1]:0", |stream| {
        if let Ok(ws) = tungstenite::accept(stream) {
            echo(ws)
        }
    });
    let url = server.url();
    assert!(url.starts_with("ws://[::1]:"), "{url}");
    round_trip(&url, Options::new(), "over v6");
}

#[test]
fn invalid_uris_are_rejected_by_connect() {
    for uri in [
        "http://127.0.0.1/",
        "https://127.0.0.1/",
        "ftp://127.0.0.1/",
        "ws://",
        "ws:///no-host",
        "garbage",
        "",
        "ws://exa mple.com/",
    ] {
        match wsc::connect(uri) {
            Err(Error::InvalidUri(m)) => assert!(!m.is_empty()),
            Err(other) => panic!("{uri:?}: expected InvalidUri, got {other:?}"),
            Ok(_) => panic!("{uri:?} was accepted"),
        }
    }
}

#[test]
fn text_binary_and_fragmented_messages_arrive_whole() {
    let server = raw_ws_server(|mut s| {
        use std::io::Write;
        let mut out = frame(TEXT, b"Hel");
        out.extend(frame(FIN | PING, b"in between"));
        out.extend(frame(0, "lo, wörld".as_bytes()));
        out.extend(frame(FIN, b"!"));
        out.extend(frame(BINARY, &[0, 1]));
        out.extend(frame(FIN, &[2, 255]));
        out.extend(frame(FIN | BINARY, &[]));
        out.extend(close_frame(1000, "done"));
        let _ = s.write_all(&out);
        let _ = read_close_code(&mut s);
    });
    let (_conn, rx) = open_channel(&server.url(), Options::new());
    let (events, last) = finish(&rx);
    assert_eq!(
        events,
        vec![
            Event::Open,
            Event::Message(Message::Text("Hello, wörld!".into())),
            Event::Message(Message::Binary(vec![0u8, 1, 2, 255].into())),
            Event::Message(Message::Binary(Vec::new().into())),
        ]
    );
    assert_eq!(last, Event::Close { code: 1000, reason: "done".into() });
}

/// Frames larger than 64 KiB are read through an aligned landing buffer
/// (see `src/stream.rs`): written by the peer in pieces of every size, with
/// a fragmented one and control frames in between, they arrive byte for
/// byte whatever the read buffer (smaller and larger than the landing).
#[test]
fn large_frames_arrive_intact_in_any_pieces_whatever_the_read_buffer() {
    const SIZES: [usize; 6] = [65_535, 65_536, 65_537, 200_003, 300_001, 1 << 20];
    fn payload(len: usize, k: usize) -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 9) ^ (k * 77)) as u8).collect()
    }
    let server = raw_ws_server(|mut s| {
        use std::io::Write;
        let mut out = Vec::new();
        for (k, &len) in SIZES.iter().enumerate() {
            out.extend(frame(FIN | BINARY, &payload(len, k)));
            out.extend(frame(FIN | PING, b"between"));
        }
        let big = payload(150_000, 9);
        out.extend(frame(BINARY, &big[..70_001]));
        out.extend(frame(FIN, &big[70_001..]));
        let mut cut = 1;
        for piece in std::iter::from_fn(|| {
            if out.is_empty() {
                return None;
            }
            cut = (cut * 7919 + 13) % 70_000 + 1;
            Some(out.drain(..cut.min(out.len())).collect::<Vec<u8>>())
        }) {
            if s.write_all(&piece).is_err() {
                return;
            }
        }
        let _ = read_close_code(&mut s);
        let _ = s.write_all(&close_frame(1000, ""));
    });
    for read_buffer in [1 << 10, 8 << 10, 16 << 10, 64 << 10, 1 << 20] {
        let o = opts(|o| {
            o.read_buffer_size(read_buffer).unwrap();
        });
        let (conn, rx) = open_channel(&server.url(), o);
        expect_open(&rx);
        let wanted = SIZES.iter().enumerate().map(|(k, &len)| payload(len, k)).chain([payload(150_000, 9)]);
        for (k, want) in wanted.enumerate() {
            match next_event(&rx, "a large frame") {
                Event::Message(Message::Binary(b)) => {
                    assert!(b[..] == want[..], "read buffer {read_buffer}: message {k} ({} bytes) differs", want.len())
                }
                other => panic!("read buffer {read_buffer}: {other:?}"),
            }
        }
        close_cleanly(&conn, &rx);
    }
}

// ------------------------------------------------------ 10. panics caught

#[test]
fn panic_in_a_callback_ends_only_that_connection() {
    let (server, seen) = recording_server(true);
    let healthy = Healthy::open();
    let (tx, rx) = unbounded();
    let tx2 = tx.clone();
    let _conn = Builder::new(server.url())
        .on_open(|c| c.send("boom").unwrap())
        .on_message(|_, _| panic!("deliberate panic in on_message"))
        .on_error(move |_, e| tx.send(format!("{:?}: {}", e.kind(), e.message())).unwrap())
        .on_close(move |_, code, _| tx2.send(format!("close {code}")).unwrap())
        .connect()
        .unwrap();
    let ends = collect_all(&rx); // ends when the worker drops the callbacks
    assert_eq!(ends.len(), 1, "exactly one terminal callback: {ends:?}");
    assert!(ends[0].starts_with("Callback: "), "{ends:?}");
    assert!(ends[0].contains("deliberate panic"), "{ends:?}");
    let close = seen.iter().find(|m| m.is_close()).expect("the server sees a Close frame");
    assert!(
        matches!(close, tungstenite::Message::Close(Some(ref f)) if f.code == CloseCode::Error),
        "1011 expected: {close:?}"
    );
    healthy.check();
}

#[test]
fn panic_in_the_terminal_callback_is_contained() {
    let server = echo_server();
    let (tx, rx) = unbounded();
    let conn = Builder::new(server.url())
        .on_open(|c| c.close().unwrap())
        .on_close(move |_, code, _| {
            tx.send(code).unwrap();
            panic!("deliberate panic in on_close");
        })
        .connect()
        .unwrap();
    assert_eq!(collect_all(&rx), vec![1000], "on_close ran once, then the callbacks were dropped");
    assert_eq!(conn.state(), Err(Error::UnknownId));
    let name = format!("wsc-{}", conn.id());
    assert!(eventually(DEADLINE, || !thread_names().iter().any(|(_, n)| *n == name)), "{name} still runs");
}
