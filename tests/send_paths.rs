//! Sends from application threads, now that a send may write to the socket
//! itself while the worker sleeps (see `src/wire.rs`): every path a message
//! can take — written by the caller, queued behind a busy worker, queued
//! behind a blocked socket, written by a worker after a wake-up — racing
//! each other and whatever else may happen at that moment (close, the
//! peer's Close, a reset, the rebuild after idle, shutdown, callbacks of
//! other connections), over ws and wss, through Rust and through C.
//!
//! Every message is numbered by the thread that sends it, and its content is
//! a function of that number, so a peer can check that each thread's
//! messages arrive exactly once, in order, intact. Peers are real sockets on
//! loopback: tungstenite echo servers, and raw servers that parse the
//! client's frames themselves so they can say what came after a Close.
//!
//! `SEND_PATHS_ROUNDS` scales the racing tests' round counts (default 1) for
//! soak runs, e.g. `SEND_PATHS_ROUNDS=10 taskset -c 0 cargo test --release
//! --test send_paths`.

mod common;

use common::*;
use crossbeam_channel::{unbounded, Receiver, Sender};
use native_tls::{Identity, TlsAcceptor};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};
use wsc::{Builder, Connection, Error, ErrorKind, Event, Message, Options};

// ------------------------------------------------------------- turns

/// `shutdown` is process-wide: the test that calls it runs alone, the others
/// share (a failed test does not poison the lock for the rest).
static TURNS: RwLock<()> = RwLock::new(());

fn shared_turn() -> RwLockReadGuard<'static, ()> {
    TURNS.read().unwrap_or_else(|p| p.into_inner())
}

fn exclusive_turn() -> RwLockWriteGuard<'static, ()> {
    TURNS.write().unwrap_or_else(|p| p.into_inner())
}

/// Scales the racing tests' rounds (see the module docs).
const ROUNDS: &str = "SEND_PATHS_ROUNDS";

// ----------------------------------------------------------- messages

/// Length of the header `ttt.kkkkkkkkk.` that names a message's sender and number.
const HEAD: usize = 14;

/// Message `k` of sender `t`, at most `max` bytes: text or binary; mostly
/// small, some of a few KiB, one in a hundred of 64–200 KiB (under `max`);
/// sender 0 also sends empty ones. Its content is a function of `(t, k)`.
fn message(t: u32, k: u32, max: usize) -> Message {
    let h = mix((u64::from(t) << 32) | u64::from(k));
    let text = h & (1 << 40) != 0;
    let r = (h >> 8) as usize;
    let len = if t == 0 && h % 41 == 0 {
        0
    } else {
        let len = match h % 100 {
            0..=88 => HEAD + r % 240,
            89..=98 => (1 << 10) + r % (15 << 10),
            _ => (64 << 10) + r % (136 << 10),
        };
        len.min(max).max(HEAD)
    };
    let mut v = Vec::with_capacity(len);
    if len > 0 {
        v.extend_from_slice(format!("{t:03}.{k:09}.").as_bytes());
    }
    let mut x = h;
    while v.len() < len {
        x = mix(x);
        for b in x.to_le_bytes() {
            if v.len() < len {
                v.push(if text { b'a' + b % 26 } else { b });
            }
        }
    }
    if text {
        Message::Text(String::from_utf8(v).unwrap().into())
    } else {
        Message::Binary(v.into())
    }
}

/// The sender a message names (an empty one is sender 0's).
fn sender_of(m: &Message) -> u32 {
    let b = m.as_bytes();
    if b.is_empty() {
        return 0;
    }
    let t = std::str::from_utf8(&b[..3.min(b.len())]).ok().and_then(|s| s.parse().ok());
    t.unwrap_or_else(|| panic!("not a numbered message: {}", describe(m)))
}

fn describe(m: &Message) -> String {
    let b = m.as_bytes();
    let kind = if m.as_text().is_some() { "text" } else { "binary" };
    format!("{kind} of {} bytes starting {:?}", b.len(), String::from_utf8_lossy(&b[..b.len().min(HEAD)]))
}

/// Checks that each sender's messages arrive exactly once, in order, intact.
struct Checker {
    next: Vec<u32>,
    max: usize,
    what: String,
}

impl Checker {
    fn new(senders: usize, max: usize, what: &str) -> Checker {
        Checker { next: vec![0; senders], max, what: what.to_owned() }
    }

    fn check(&mut self, m: &Message) {
        let t = sender_of(m);
        let k = *self.next.get(t as usize).unwrap_or_else(|| panic!("{}: unknown sender {t}", self.what));
        let want = message(t, k, self.max);
        assert!(
            *m == want,
            "{}: sender {t}'s message {k} should be {}, got {}",
            self.what,
            describe(&want),
            describe(m)
        );
        self.next[t as usize] += 1;
    }

    fn total(&self) -> u64 {
        self.next.iter().map(|&n| u64::from(n)).sum()
    }
}

/// Sends messages `0..count` of sender `t`; every send must succeed.
fn send_all(conn: &Connection, t: u32, count: u32, max: usize) {
    for k in 0..count {
        if let Err(e) = conn.send_message(message(t, k, max)) {
            panic!("sender {t}, message {k}: {e:?}");
        }
    }
}

/// What a stuck or wrongly ended connection looks like from outside: its
/// state, the bytes still buffered, and whether its worker is spinning.
fn diagnosis(conn: &Connection) -> String {
    let name = format!("wsc-{}", conn.id());
    let cpu = if thread_names().iter().any(|(_, n)| *n == name) {
        let before = worker_cpu_ticks(conn.id());
        thread::sleep(Duration::from_millis(200));
        format!("its worker used {} ticks of CPU in 200 ms", worker_cpu_ticks(conn.id()) - before)
    } else {
        "its worker has exited".to_owned()
    };
    format!("state {:?}, {:?} bytes buffered, {cpu}", conn.state(), conn.buffered_amount())
}

// ------------------------------------------------------------- peers

/// A wss echo server presenting the test PKI's `good` certificate.
fn tls_echo_server() -> TcpServer {
    let cert = std::fs::read(test_cert("good.pem")).unwrap();
    let key = std::fs::read(test_cert("good.key")).unwrap();
    let acceptor = Arc::new(TlsAcceptor::new(Identity::from_pkcs8(&cert, &key).unwrap()).unwrap());
    TcpServer::local(move |tcp| {
        let _ = tcp.set_nodelay(true);
        let Ok(tls) = acceptor.accept(tcp) else { return };
        if let Ok(ws) = tungstenite::accept(tls) {
            echo(ws)
        }
    })
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Ws,
    Wss,
}

/// An echo server of that transport, its URL and the options to reach it.
fn echo_peer(transport: Transport) -> (TcpServer, String, Options) {
    match transport {
        Transport::Ws => {
            let s = echo_server();
            let url = s.url();
            (s, url, Options::new())
        }
        Transport::Wss => {
            let s = tls_echo_server();
            let url = s.wss_url();
            (s, url, trusting(&test_cert("ca.pem")))
        }
    }
}

/// What a frame-parsing peer saw on one connection.
#[derive(Debug, Default)]
struct Seen {
    /// Data frames, in order.
    data: Vec<Message>,
    /// The client's Close frame came (with this code, if it had one).
    close: Option<Option<u16>>,
    /// Opcodes of frames that came after the client's Close: must be none.
    after_close: Vec<u8>,
    /// Path of the request (the test's instructions to the peer).
    path: String,
}

fn data_message(op: u8, payload: Vec<u8>) -> Message {
    match op {
        TEXT => match String::from_utf8(payload) {
            Ok(t) => Message::Text(t.into()),
            Err(e) => panic!("a text frame of {} bytes with invalid UTF-8: {}", e.as_bytes().len(), e.utf8_error()),
        },
        BINARY => Message::Binary(payload.into()),
        other => panic!("unexpected opcode {other:#x}"),
    }
}

/// Reads client frames until the client's Close (recorded in `seen`);
/// `on_data` runs after each data frame. False if the stream ended first.
fn read_until_close(s: &mut TcpStream, seen: &mut Seen, mut on_data: impl FnMut(&mut TcpStream, usize)) -> bool {
    loop {
        match read_frame(s) {
            Ok((CLOSE, _, p)) => {
                seen.close = Some((p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])));
                return true;
            }
            Ok((PING | PONG, _, _)) => {}
            Ok((op, fin, p)) => {
                assert!(fin, "wsc fragments nothing");
                seen.data.push(data_message(op, p));
                on_data(s, seen.data.len());
            }
            Err(_) => return false,
        }
    }
}

/// After the client's Close: half-closes (the client then sees the end of
/// the stream) and records whatever frame still comes.
fn after_close(s: &mut TcpStream, seen: &mut Seen) {
    let _ = s.shutdown(Shutdown::Write);
    while let Ok((op, _, _)) = read_frame(s) {
        seen.after_close.push(op);
    }
}

/// Upgrades (with small kernel buffers, so writes block soon), runs `f`
/// and reports what it saw. The request path is in `Seen::path`.
fn parsing_server(f: impl Fn(&mut TcpStream, &mut Seen) + Send + Sync + 'static) -> (TcpServer, Receiver<Seen>) {
    let (tx, rx) = unbounded();
    let server = TcpServer::local(move |mut s| {
        let _ = s.set_nodelay(true);
        small_buffers(&s);
        let Ok(head) = read_request(&mut s) else { return };
        if s.write_all(upgrade_response(&head).as_bytes()).is_err() {
            return;
        }
        let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
        let mut seen = Seen { path, ..Seen::default() };
        f(&mut s, &mut seen);
        let _ = tx.send(seen);
    });
    (server, rx)
}

/// A peer that answers the client's Close with the same code and reports.
fn closing_peer() -> (TcpServer, Receiver<Seen>) {
    parsing_server(|s, seen| {
        if read_until_close(s, seen, |_, _| {}) {
            let code = seen.close.flatten().unwrap_or(1000);
            let _ = s.write_all(&close_frame(code, ""));
            after_close(s, seen);
        }
    })
}

/// Checks what a raw peer received against what each sender had accepted
/// (`ok[t]` sends returned `Ok`): each sender's messages form a prefix of
/// its own, in order and intact, and at least `ok[t] - lost` of them.
fn check_prefixes(seen: &Seen, ok: &[u32], lost: u32, max: usize, what: &str) {
    let mut c = Checker::new(ok.len(), max, what);
    for m in &seen.data {
        c.check(m);
    }
    for (t, (&got, &sent)) in c.next.iter().zip(ok).enumerate() {
        assert!(got <= sent, "{what}: sender {t} had {sent} sends accepted, yet {got} messages arrived");
        assert!(got.saturating_add(lost) >= sent, "{what}: sender {t} had {sent} sends accepted, only {got} arrived");
    }
}

// -------------------------------------------------------------- tests

/// Four threads per connection, each sending 2,500 numbered messages of
/// 0 B to 200 KiB (text and binary) to an echo server, over ws and wss at
/// the same time: every message comes back exactly once, in its thread's
/// order, byte for byte. The echo server stops reading while its writes
/// are blocked, so this also needs the worker to keep reading while its
/// own writes (and the callers') are blocked.
#[test]
fn many_threads_over_ws_and_wss_each_message_once_in_order_intact() {
    let _turn = shared_turn();
    const THREADS: u32 = 4;
    const EACH: u32 = 2_500;
    let run = |transport: Transport| {
        let (_server, url, options) = echo_peer(transport);
        let (conn, rx) = open_channel(&url, options);
        expect_open(&rx);
        let start = Arc::new(Barrier::new(THREADS as usize));
        let senders: Vec<_> = (0..THREADS)
            .map(|t| {
                let (conn, start) = (conn.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    send_all(&conn, t, EACH, usize::MAX);
                })
            })
            .collect();
        let mut c = Checker::new(THREADS as usize, usize::MAX, &format!("{transport:?} echo"));
        while c.total() < u64::from(THREADS * EACH) {
            c.check(&expect_message(&rx, "echoes"));
        }
        for s in senders {
            s.join().unwrap();
        }
        close_cleanly(&conn, &rx);
        conn
    };
    let wss = thread::spawn(move || run(Transport::Wss));
    let ws = run(Transport::Ws);
    let wss = wss.join().unwrap();
    for conn in [ws, wss] {
        assert_eq!(conn.state(), Err(Error::UnknownId));
    }
}

/// Threads that hand a baton round (each sends one message, then passes the
/// baton on): a send that happens after another sent must arrive after it,
/// whichever path each took (the worker wakes and sleeps between them, so
/// some are written by the caller, some queued). Over ws and wss.
#[test]
fn a_baton_passed_between_threads_keeps_the_global_order() {
    let _turn = shared_turn();
    const THREADS: usize = 4;
    const MESSAGES: u32 = 4_000;
    let run = |transport: Transport| {
        let (_server, url, options) = echo_peer(transport);
        let (conn, rx) = open_channel(&url, options);
        expect_open(&rx);
        let batons: Vec<(Sender<u32>, Receiver<u32>)> = (0..THREADS).map(|_| unbounded()).collect();
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let conn = conn.clone();
                let mine = batons[i].1.clone();
                let next = batons[(i + 1) % THREADS].0.clone();
                thread::spawn(move || {
                    while let Ok(k) = mine.recv() {
                        if k == MESSAGES {
                            let _ = next.send(k);
                            return;
                        }
                        // One sender (0) for all: the order checked is the baton's.
                        conn.send_message(message(0, k, 32 << 10)).unwrap();
                        let _ = next.send(k + 1);
                    }
                })
            })
            .collect();
        batons[0].0.send(0).unwrap();
        let mut c = Checker::new(1, 32 << 10, &format!("{transport:?} baton"));
        while c.total() < u64::from(MESSAGES) {
            c.check(&expect_message(&rx, "echoes"));
        }
        drop(batons);
        for t in threads {
            t.join().unwrap();
        }
        close_cleanly(&conn, &rx);
    };
    let wss = thread::spawn(move || run(Transport::Wss));
    run(Transport::Ws);
    wss.join().unwrap();
}

/// A peer that completes the upgrade and then does not read. Four threads
/// send until `QueueFull` and none of them blocks; meanwhile the peer sends
/// 2 MiB, far more than the kernel buffers hold, which arrives only because
/// the worker keeps reading while its writes are blocked, and it does so
/// without spinning. Once the peer reads, every accepted message arrives,
/// in order, before the Close.
#[test]
fn a_peer_that_stops_reading_blocks_no_sender_and_we_keep_reading() {
    let _turn = shared_turn();
    const THREADS: u32 = 4;
    const FROM_PEER: usize = 32;
    let limit = 8 << 20;
    let (go_write, may_write) = unbounded::<()>();
    let (go_read, may_read) = unbounded::<()>();
    let (server, seen) = parsing_server(move |s, seen| {
        let _ = may_write.recv();
        for i in 0..FROM_PEER {
            let text = format!("{i:06}").repeat(8192);
            if s.write_all(&frame(FIN | TEXT, text.as_bytes())).is_err() {
                return;
            }
        }
        let _ = may_read.recv();
        if read_until_close(s, seen, |_, _| {}) {
            let _ = s.write_all(&close_frame(1000, ""));
            after_close(s, seen);
        }
    });
    let o = opts(|o| {
        o.max_buffered_bytes(limit).unwrap();
    });
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let (done_tx, done) = unbounded();
    for t in 0..THREADS {
        let (conn, done_tx) = (conn.clone(), done_tx.clone());
        thread::spawn(move || {
            let mut k = 0;
            loop {
                match conn.send_message(message(t, k, 64 << 10)) {
                    Ok(()) => k += 1,
                    Err(Error::QueueFull { buffered, limit: l }) => {
                        assert!(l == limit && buffered <= limit, "{buffered} of {l}");
                        break;
                    }
                    Err(e) => panic!("sender {t}: {e:?}"),
                }
            }
            let _ = done_tx.send((t, k));
        });
    }
    let mut ok = vec![0u32; THREADS as usize];
    for _ in 0..THREADS {
        // The peer reads nothing until every sender is done: a sender that
        // blocked would never be.
        let (t, k) = done.recv_timeout(DEADLINE).expect("a sender blocked on a peer that does not read");
        ok[t as usize] = k;
    }
    assert!(conn.buffered_amount().unwrap() <= limit);
    go_write.send(()).unwrap();
    for i in 0..FROM_PEER {
        let m = expect_message(&rx, "the peer's messages while our writes are blocked");
        assert_eq!(&m.as_bytes()[..6], format!("{i:06}").as_bytes());
    }
    // Blocked both ways now: the worker must sleep, not spin.
    let id = conn.id();
    let before = worker_cpu_ticks(id);
    thread::sleep(Duration::from_millis(300));
    let spent = worker_cpu_ticks(id) - before;
    assert!(spent <= 5, "the worker used {spent} ticks of CPU in 300 ms while blocked");
    go_read.send(()).unwrap();
    conn.close().unwrap();
    expect_close(&rx, 1000);
    let seen = seen.recv_timeout(DEADLINE).unwrap();
    assert!(seen.after_close.is_empty(), "frames after our Close: {:?}", seen.after_close);
    check_prefixes(&seen, &ok, 0, 64 << 10, "after the peer read again");
}

/// Control frames written while data frames wait half-written for a full
/// socket: the client's keepalive pings, and its pongs to the peer's pings,
/// while four threads fill a socket the peer is not reading — over ws and
/// wss (where a refused TLS write must be retried with the same bytes).
/// Every frame the peer parses is whole and masked, every message arrives
/// intact and in order, and the peer's pings are answered.
#[test]
fn control_frames_never_split_data_waiting_for_a_blocked_socket() {
    let _turn = shared_turn();
    for transport in [Transport::Ws, Transport::Wss] {
        control_frames_while_blocked(transport);
    }
}

fn control_frames_while_blocked(transport: Transport) {
    const THREADS: u32 = 4;
    const PINGS: u32 = 200;
    let what = format!("{transport:?}");
    let limit = 2 << 20;
    let (go_ping, may_ping) = unbounded::<()>();
    let (go_read, may_read) = unbounded::<()>();
    let (seen_tx, seen) = unbounded::<(Seen, u32)>();
    let serve = move |s: &mut dyn ReadWrite| {
        let Ok(head) = read_request(s) else { return };
        if s.write_all(upgrade_response(&head).as_bytes()).is_err() || may_ping.recv().is_err() {
            return;
        }
        for i in 0..PINGS {
            if s.write_all(&frame(FIN | PING, &i.to_be_bytes())).is_err() {
                return;
            }
        }
        let _ = s.flush();
        let _ = may_read.recv();
        let (mut seen, mut pongs) = (Seen::default(), 0);
        loop {
            match read_frame(s).unwrap_or_else(|e| panic!("a frame the peer could not parse: {e}")) {
                (CLOSE, _, p) => {
                    seen.close = Some((p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])));
                    break;
                }
                (PONG, _, p) => {
                    assert_eq!(p.len(), 4, "a pong's payload is its ping's");
                    pongs += 1;
                }
                (PING, _, _) => {}
                (op, fin, p) => {
                    assert!(fin, "wsc fragments nothing");
                    seen.data.push(data_message(op, p));
                }
            }
        }
        let _ = s.write_all(&close_frame(1000, ""));
        let _ = s.flush();
        let _ = seen_tx.send((seen, pongs));
    };
    let acceptor = matches!(transport, Transport::Wss).then(|| {
        let cert = std::fs::read(test_cert("good.pem")).unwrap();
        let key = std::fs::read(test_cert("good.key")).unwrap();
        TlsAcceptor::new(Identity::from_pkcs8(&cert, &key).unwrap()).unwrap()
    });
    let server = TcpServer::local(move |tcp| {
        let _ = tcp.set_nodelay(true);
        small_buffers(&tcp);
        match &acceptor {
            None => serve(&mut { tcp }),
            Some(a) => {
                if let Ok(mut tls) = a.accept(tcp) {
                    serve(&mut tls)
                }
            }
        }
    });
    let (url, mut o) = match transport {
        Transport::Ws => (server.url(), Options::new()),
        Transport::Wss => (server.wss_url(), trusting(&test_cert("ca.pem"))),
    };
    o.max_buffered_bytes(limit).unwrap();
    o.ping_interval(Some(Duration::from_millis(5))).pong_timeout(Duration::from_secs(120));
    let (conn, rx) = open_channel(&url, o);
    expect_open(&rx);
    let ok: Vec<u32> = (0..THREADS)
        .map(|t| {
            let conn = conn.clone();
            thread::spawn(move || {
                let mut k = 0;
                while conn.send_message(message(t, k, 64 << 10)).is_ok() {
                    k += 1;
                }
                k
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    // The socket is full and the peer reads nothing: the pings and pongs
    // below are written behind data waiting for it.
    let before = conn.stats().unwrap();
    go_ping.send(()).unwrap();
    let arrived = eventually(DEADLINE, || {
        let now = conn.stats().unwrap();
        now.frames_received >= before.frames_received + u64::from(PINGS) && now.pings_sent >= before.pings_sent + 3
    });
    assert!(arrived, "{what}: the peer's pings were not read, or no keepalive ping went out, while blocked");
    go_read.send(()).unwrap();
    conn.close().unwrap();
    expect_close(&rx, 1000);
    let (seen, pongs) = seen.recv_timeout(DEADLINE).expect("the peer's report");
    assert!(pongs >= 1, "{what}: no pong for {PINGS} pings");
    check_prefixes(&seen, &ok, 0, 64 << 10, &what);
}

/// Both ends of a plain or TLS socket, for a peer that serves either.
trait ReadWrite: std::io::Read + Write {}
impl<T: std::io::Read + Write> ReadWrite for T {}

/// `close()` racing sends from four threads, for hundreds of rounds (every
/// other one with `Duration::MAX` timeouts): a send that starts after
/// `close()` returned `Ok` fails and its message never reaches the peer;
/// each thread's messages that do arrive are a prefix of what it sent (only
/// its last accepted one may be lost, if it was queued after the Close went
/// out); nothing follows our Close frame; the one terminal event is Close
/// 1000, soon.
///
/// Ignored until the engine stops spinning on messages queued after a Close
/// went out (see [`kept_messages_during_a_peer_close_cost_no_cpu`]): a send
/// that passed its check just before `close()` and queued just after our
/// Close went out leaves the worker looping without ever polling, so it
/// never reads the peer's answer and ends in Close 1006 after the close
/// timeout (never, with `Duration::MAX`). It fails that way in most runs.
#[test]
fn close_racing_sends_lets_no_later_send_through() {
    let _turn = shared_turn();
    const THREADS: u32 = 4;
    let (server, seen) = closing_peer();
    for round in 0..rounds(ROUNDS, 300) {
        let o = opts(|o| {
            if round % 2 == 1 {
                o.close_timeout(Duration::MAX);
                o.ping_interval(Some(Duration::MAX));
                o.pong_timeout(Duration::MAX);
            }
        });
        let (conn, rx) = open_channel(&server.url(), o);
        // One round in three, the sends start while connecting (queued
        // until open); the closer always waits for open (closing while
        // connecting abandons the handshake, which is not this test).
        let early = round % 3 == 0;
        if !early {
            expect_open(&rx);
        }
        let (opened_tx, opened) = unbounded::<()>();
        let closed = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (conn, closed, start, opened) = (conn.clone(), closed.clone(), start.clone(), opened.clone());
                thread::spawn(move || {
                    let closer = t == THREADS - 1;
                    let close_after = mix((round << 8) | u64::from(t)) % 40;
                    let (mut k, mut refused_after_close) = (0u32, 0);
                    start.wait();
                    while refused_after_close < 10 {
                        if closer && u64::from(k) == close_after && !closed.load(SeqCst) {
                            opened.recv_timeout(DEADLINE).unwrap();
                            conn.close().unwrap_or_else(|e| panic!("round {round}: close: {e:?}"));
                            closed.store(true, SeqCst);
                        }
                        let after = closed.load(SeqCst);
                        match conn.send_message(message(t, k, 16 << 10)) {
                            Ok(()) if after => panic!("round {round}: a send that started after close() returned Ok"),
                            Ok(()) => k += 1,
                            Err(Error::Closed | Error::UnknownId) => refused_after_close += u32::from(after),
                            Err(e) => panic!("round {round}: sender {t}: {e:?}"),
                        }
                    }
                    k
                })
            })
            .collect();
        if early {
            expect_open(&rx);
        }
        opened_tx.send(()).unwrap();
        let ok: Vec<u32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        match rx.recv_timeout(DEADLINE) {
            Ok(Event::Close { code: 1000, reason }) if reason.is_empty() => {}
            Ok(other) => panic!("round {round}: expected Close 1000, got {other:?} ({})", diagnosis(&conn)),
            Err(_) => panic!("round {round}: no terminal event within {DEADLINE:?} ({})", diagnosis(&conn)),
        }
        assert!(rx.recv_timeout(DEADLINE).is_err(), "round {round}: an event after the terminal one");
        let seen = seen.recv_timeout(DEADLINE).unwrap();
        assert_eq!(seen.close, Some(Some(1000)), "round {round}");
        assert!(seen.after_close.is_empty(), "round {round}: frames after our Close: {:?}", seen.after_close);
        check_prefixes(&seen, &ok, 1, 16 << 10, &format!("round {round}"));
    }
}

/// The peer ends the connection while four threads send: with a Close
/// frame (answered, then nothing more from us; the end is the peer's Close)
/// or with a TCP reset (the end is a connection-lost error; SIGPIPE is at
/// its default, so a write without MSG_NOSIGNAL from any thread would kill
/// the process). Sends return only Ok, Closed or UnknownId, and each
/// thread's messages that arrived are a prefix of what it sent.
#[test]
fn the_peer_closing_or_resetting_while_threads_send() {
    let _turn = shared_turn();
    sigpipe_default();
    const THREADS: u32 = 4;
    const MAX: usize = 16 << 10;
    let (server, seen) = parsing_server(|s, seen| {
        let mut parts = seen.path.trim_start_matches('/').split('/');
        let (how, after): (String, usize) = (parts.next().unwrap().to_owned(), parts.next().unwrap().parse().unwrap());
        if after == 0 {
            interrupt(s, &how);
        }
        let mut done = after == 0;
        let answered = read_until_close(s, seen, |s, n| {
            if n == after {
                interrupt(s, &how);
                done = true;
            }
        });
        if answered && how == "close" {
            if !done {
                let _ = s.write_all(&close_frame(4000, "bye")); // the client closed first
            }
            after_close(s, seen);
        }
    });
    /// The peer's move: a Close frame, or a reset.
    fn interrupt(s: &mut TcpStream, how: &str) {
        if how == "close" {
            let _ = s.write_all(&close_frame(4000, "bye"));
        } else {
            reset_on_close(s);
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    for round in 0..rounds(ROUNDS, 120) {
        let how = if round % 2 == 0 { "close" } else { "reset" };
        let after = mix(round) % 300;
        let url = format!("{}{how}/{after}", server.url());
        let (conn, rx) = open_channel(&url, Options::new());
        expect_open(&rx);
        let start = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (conn, start) = (conn.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let mut k = 0u32;
                    while k < 3_000 {
                        match conn.send_message(message(t, k, MAX)) {
                            Ok(()) => k += 1,
                            Err(Error::Closed | Error::UnknownId) => break,
                            Err(e) => panic!("round {round} ({how}): sender {t}: {e:?}"),
                        }
                    }
                    k
                })
            })
            .collect();
        let ok: Vec<u32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let (_, last) = finish(&rx);
        let seen = seen.recv_timeout(DEADLINE).unwrap();
        if how == "close" {
            assert_eq!(last, Event::Close { code: 4000, reason: "bye".into() }, "round {round}");
            assert!(seen.close.is_some(), "round {round}: our Close never came");
            assert!(seen.after_close.is_empty(), "round {round}: frames after our Close: {:?}", seen.after_close);
            check_prefixes(&seen, &ok, u32::MAX, MAX, &format!("round {round} (close)"));
        } else {
            match &last {
                Event::Error(e) if e.kind() == ErrorKind::ConnectionLost => {}
                other => panic!("round {round} (reset): expected a connection-lost error, got {other:?}"),
            }
            check_prefixes(&seen, &ok, u32::MAX, MAX, &format!("round {round} (reset)"));
        }
    }
}

/// Sends racing the rebuild of tungstenite after a large message and an
/// idle second: four threads send paced small messages from 0.85 s to
/// 1.3 s after a 100 KiB message passed (the rebuild is due at 1 s), then a
/// large one each. Everything comes back, in order, intact; twice in a row,
/// over ws and wss at once.
#[test]
fn sends_racing_the_rebuild_after_idle() {
    let _turn = shared_turn();
    const THREADS: u32 = 4;
    let run = |transport: Transport| {
        let (_server, url, options) = echo_peer(transport);
        let (conn, rx) = open_channel(&url, options);
        expect_open(&rx);
        let mut c = Checker::new(THREADS as usize + 1, usize::MAX, &format!("{transport:?} rebuild"));
        let large =
            |k: u32| Message::Binary(format!("{THREADS:03}.{k:09}.").repeat((100 << 10) / HEAD).into_bytes().into());
        let mut sent = [0u32; THREADS as usize];
        for cycle in 0..2u32 {
            conn.send_message(large(cycle)).unwrap();
            let echoed = expect_message(&rx, "the large message");
            assert_eq!(echoed, large(cycle));
            c.next[THREADS as usize] += 1;
            let passed = Instant::now();
            let from = passed + Duration::from_millis(850);
            let until = passed + Duration::from_millis(1300);
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let conn = conn.clone();
                    let first = sent[t as usize];
                    thread::spawn(move || {
                        thread::sleep(from.saturating_duration_since(Instant::now()));
                        let mut k = first;
                        while Instant::now() < until {
                            conn.send_message(message(t, k, 4 << 10)).unwrap();
                            k += 1;
                            let pause = mix((u64::from(k) << 8) | u64::from(t)) % 2_000;
                            thread::sleep(Duration::from_micros(pause));
                        }
                        k
                    })
                })
                .collect();
            for (t, th) in threads.into_iter().enumerate() {
                sent[t] = th.join().unwrap();
            }
            let expected: u64 = sent.iter().map(|&k| u64::from(k)).sum::<u64>() + u64::from(cycle) + 1;
            c.max = 4 << 10;
            while c.total() < expected {
                c.check(&expect_message(&rx, "the paced messages"));
            }
            c.max = usize::MAX;
        }
        close_cleanly(&conn, &rx);
    };
    let wss = thread::spawn(move || run(Transport::Wss));
    run(Transport::Ws);
    wss.join().unwrap();
}

/// Flow control on, the first message not completed: the gate is shut, so
/// the worker neither reads nor watches the socket for reading. Four
/// threads' sends still all reach the peer (written by the callers, or by a
/// worker woken for them), and the peer's next message is not delivered
/// until `message_complete`: one permit, whatever the sends did.
#[test]
fn sends_while_the_gate_is_shut_all_arrive_and_the_gate_stays_shut() {
    let _turn = shared_turn();
    const THREADS: u32 = 4;
    const EACH: u32 = 500;
    let (tx, received) = unbounded();
    let server = ws_server(move |mut ws| {
        for s in ["s0", "s1", "s2"] {
            ws.send(tungstenite::Message::text(s)).unwrap();
        }
        while let Ok(m) = ws.read() {
            let m = match m {
                tungstenite::Message::Text(t) => Message::Text(t),
                tungstenite::Message::Binary(b) => Message::Binary(b),
                _ => continue,
            };
            let _ = tx.send(m);
        }
    });
    let o = opts(|o| {
        o.flow_control(true);
    });
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    assert_eq!(expect_text(&rx), "s0");
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let conn = conn.clone();
            thread::spawn(move || send_all(&conn, t, EACH, 16 << 10))
        })
        .collect();
    let mut c = Checker::new(THREADS as usize, 16 << 10, "gate shut");
    while c.total() < u64::from(THREADS * EACH) {
        c.check(&next_event(&received, "the peer receiving while our gate is shut"));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert!(rx.try_recv().is_err(), "a message was delivered while the gate was shut");
    conn.message_complete().unwrap();
    assert_eq!(expect_text(&rx), "s1");
    conn.message_complete().unwrap();
    assert_eq!(expect_text(&rx), "s2");
    close_cleanly(&conn, &rx);
}

/// Two connections whose callbacks send on each other (a callback of one
/// worker writes to the other's socket, or queues behind it), 400 chains of
/// 8 hops each, while four application threads send numbered messages on
/// the second: no deadlock, every chain completes exactly once, and the
/// application threads' messages come back in order.
#[test]
fn callbacks_sending_on_each_others_connections_while_threads_send() {
    let _turn = shared_turn();
    const THREADS: u32 = 4;
    const CHAINS: u32 = 400;
    const HOPS: u32 = 8;
    const EACH: u32 = 1_000;
    let (server_a, server_b) = (echo_server(), echo_server());
    let (a_cell, b_cell) = (Arc::new(OnceLock::<Connection>::new()), Arc::new(OnceLock::<Connection>::new()));
    let (done_tx, done) = unbounded::<u32>();
    let (direct_tx, direct) = unbounded::<Message>();
    let (open_tx, opened) = unbounded::<()>();
    let (end_tx, ended) = unbounded::<Event>();
    // A chain message: "c<chain>.<hop>"; an echo of hop h goes on as h + 1
    // on the other connection, until the last hop.
    let relay = |other: Arc<OnceLock<Connection>>, done_tx: Sender<u32>, direct_tx: Option<Sender<Message>>| {
        move |_: &Connection, m: Message| {
            let Some(chain) = m.as_text().and_then(|s| s.strip_prefix('c')).map(str::to_owned) else {
                if let Some(d) = &direct_tx {
                    let _ = d.send(m);
                }
                return;
            };
            let (id, hop) = chain.split_once('.').unwrap();
            let (id, hop): (u32, u32) = (id.parse().unwrap(), hop.parse().unwrap());
            if hop == HOPS {
                let _ = done_tx.send(id);
            } else {
                other.get().unwrap().send(format!("c{id}.{}", hop + 1)).expect("send from the other's callback");
            }
        }
    };
    let connect = |url: String, on_message, open_tx: Sender<()>, end_tx: Sender<Event>| {
        let end_tx2 = end_tx.clone();
        Builder::new(url)
            .on_open(move |_| {
                let _ = open_tx.send(());
            })
            .on_message(on_message)
            .on_error(move |_, e| {
                let _ = end_tx.send(Event::Error(e.clone()));
            })
            .on_close(move |_, code, reason| {
                let _ = end_tx2.send(Event::Close { code, reason: reason.to_owned() });
            })
            .connect()
            .unwrap()
    };
    let a = connect(server_a.url(), relay(b_cell.clone(), done_tx.clone(), None), open_tx.clone(), end_tx.clone());
    let b = connect(server_b.url(), relay(a_cell.clone(), done_tx, Some(direct_tx)), open_tx, end_tx);
    a_cell.set(a.clone()).unwrap();
    b_cell.set(b.clone()).unwrap();
    for _ in 0..2 {
        next_event(&opened, "both open");
    }
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                for k in 0..EACH {
                    b.send_message(message(t, k, 8 << 10)).unwrap();
                    if k % (EACH / (CHAINS / THREADS)) == 0 {
                        let chain = t * (CHAINS / THREADS) + k / (EACH / (CHAINS / THREADS));
                        a.send(format!("c{chain}.0")).unwrap();
                    }
                }
            })
        })
        .collect();
    let mut c = Checker::new(THREADS as usize, 8 << 10, "direct sends on the second connection");
    while c.total() < u64::from(THREADS * EACH) {
        c.check(&next_event(&direct, "the application threads' echoes"));
    }
    let mut chains = vec![false; CHAINS as usize];
    for _ in 0..CHAINS {
        let id = next_event(&done, "chains completing") as usize;
        assert!(!std::mem::replace(&mut chains[id], true), "chain {id} completed twice");
    }
    for t in threads {
        t.join().unwrap();
    }
    a.close().unwrap();
    b.close().unwrap();
    for _ in 0..2 {
        match next_event(&ended, "the terminal events") {
            Event::Close { code: 1000, .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(done.try_recv().is_err());
}

/// The C ABI from four threads: `wsc_send_text` and `wsc_send_binary`
/// alternately, numbered; every echo comes back once, in its thread's
/// order, intact; after `wsc_close` a send is refused.
#[test]
fn c_abi_sends_from_several_threads() {
    use std::ffi::{c_char, c_void};
    use wsc::ffi;
    let _turn = shared_turn();
    const THREADS: u32 = 4;
    const EACH: u32 = 1_500;
    enum C {
        Open,
        Message(Message),
        End(Option<u16>),
    }
    unsafe fn tx<'a>(user: *mut c_void) -> &'a Sender<C> {
        // SAFETY: user is the Sender leaked below, never freed.
        unsafe { &*(user as *const Sender<C>) }
    }
    unsafe extern "C" fn on_open(_: u64, user: *mut c_void) {
        let _ = unsafe { tx(user) }.send(C::Open);
    }
    unsafe extern "C" fn on_message(_: u64, data: *const u8, len: usize, binary: bool, user: *mut c_void) {
        let b = if len == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(data, len) }.to_vec() };
        let m = if binary { Message::Binary(b.into()) } else { Message::Text(String::from_utf8(b).unwrap().into()) };
        let _ = unsafe { tx(user) }.send(C::Message(m));
    }
    unsafe extern "C" fn on_error(_: u64, _: *const c_char, user: *mut c_void) {
        let _ = unsafe { tx(user) }.send(C::End(None));
    }
    unsafe extern "C" fn on_close(_: u64, code: u16, _: *const c_char, user: *mut c_void) {
        let _ = unsafe { tx(user) }.send(C::End(Some(code)));
    }
    let server = wsc::server::EchoServer::start("127.0.0.1:0").unwrap();
    let (c_tx, events) = unbounded::<C>();
    let user = Box::into_raw(Box::new(c_tx)) as *mut c_void;
    let callbacks = ffi::wsc_callbacks {
        on_open: Some(on_open),
        on_message: Some(on_message),
        on_error: Some(on_error),
        on_close: Some(on_close),
    };
    let url = std::ffi::CString::new(server.url("echo")).unwrap();
    let mut id = 0;
    // SAFETY: valid URL, NULL options (defaults), callbacks and out-pointer.
    let status = unsafe { ffi::wsc_connect(url.as_ptr(), std::ptr::null(), &callbacks, user, &mut id) };
    assert_eq!(status, ffi::wsc_status::WSC_OK);
    assert!(matches!(next_event(&events, "open"), C::Open));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for k in 0..EACH {
                    let m = message(t, k, 64 << 10);
                    let b = m.as_bytes();
                    // SAFETY: `b` is valid for its length during the call.
                    let status = unsafe {
                        match m {
                            Message::Text(_) => ffi::wsc_send_text(id, b.as_ptr().cast(), b.len()),
                            Message::Binary(_) => ffi::wsc_send_binary(id, b.as_ptr(), b.len()),
                        }
                    };
                    assert_eq!(status, ffi::wsc_status::WSC_OK, "sender {t}, message {k}");
                }
            })
        })
        .collect();
    let mut c = Checker::new(THREADS as usize, 64 << 10, "C echoes");
    while c.total() < u64::from(THREADS * EACH) {
        match next_event(&events, "echoes") {
            C::Message(m) => c.check(&m),
            C::Open => panic!("a second open"),
            C::End(code) => panic!("ended early: {code:?}"),
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ffi::wsc_close(id), ffi::wsc_status::WSC_OK);
    let refused = unsafe { ffi::wsc_send_text(id, c"late".as_ptr(), 4) };
    assert!(matches!(refused, ffi::wsc_status::WSC_ERR_CLOSED | ffi::wsc_status::WSC_ERR_UNKNOWN_ID), "{refused:?}");
    assert!(matches!(next_event(&events, "the end"), C::End(Some(1000))));
}

/// `shutdown` while threads send on several connections: it returns Ok,
/// every connection ends once, sends return only Ok, Closed or UnknownId
/// (afterwards UnknownId), and no peer sees a frame after our Close. Runs
/// alone (shutdown is process-wide), then `init` lets the others go on.
#[test]
fn shutdown_while_threads_send() {
    let _turn = exclusive_turn();
    const CONNS: usize = 3;
    const THREADS: u32 = 3;
    for round in 0..rounds(ROUNDS, 20) {
        wsc::init();
        let (server, seen) = closing_peer();
        let conns: Vec<(Connection, Receiver<Event>)> =
            (0..CONNS).map(|i| open_channel(&format!("{}{i}", server.url()), Options::new())).collect();
        for (_, rx) in &conns {
            expect_open(rx);
        }
        let stop = Arc::new(AtomicU64::new(0));
        let start = Arc::new(Barrier::new(CONNS * THREADS as usize + 1));
        let threads: Vec<_> = (0..CONNS * THREADS as usize)
            .map(|i| {
                let conn = conns[i / THREADS as usize].0.clone();
                let (start, stop) = (start.clone(), stop.clone());
                thread::spawn(move || {
                    let t = (i % THREADS as usize) as u32;
                    start.wait();
                    let mut k = 0u32;
                    loop {
                        let after = stop.load(SeqCst) == 1;
                        match conn.send_message(message(t, k, 16 << 10)) {
                            Ok(()) if after => panic!("round {round}: a send after shutdown returned Ok"),
                            Ok(()) => k += 1,
                            Err(Error::UnknownId) if after => return k,
                            Err(Error::Closed | Error::UnknownId) => {}
                            Err(e) => panic!("round {round}: {e:?}"),
                        }
                        if k >= 20_000 {
                            return k;
                        }
                    }
                })
            })
            .collect();
        start.wait();
        for _ in 0..mix(round) % 2_000 {
            std::hint::spin_loop();
        }
        assert_eq!(wsc::shutdown(DEADLINE), Ok(()), "round {round}");
        stop.store(1, SeqCst);
        let ok: Vec<u32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for (i, (conn, rx)) in conns.iter().enumerate() {
            let (_, last) = finish(rx);
            assert!(matches!(last, Event::Close { .. }), "round {round}: connection {i} ended with {last:?}");
            assert_eq!(conn.state(), Err(Error::UnknownId));
        }
        for _ in 0..CONNS {
            let seen = seen.recv_timeout(DEADLINE).unwrap();
            assert!(seen.after_close.is_empty(), "round {round}: frames after our Close: {:?}", seen.after_close);
            assert_eq!(seen.close, Some(Some(1001)), "round {round}");
            let i: usize = seen.path.trim_start_matches('/').parse().unwrap();
            let ok = &ok[i * THREADS as usize..(i + 1) * THREADS as usize];
            check_prefixes(&seen, ok, 1, 16 << 10, &format!("round {round}, connection {i}"));
        }
    }
    wsc::init();
}

/// A peer asks for a later try (Close 1012) while our writes are blocked
/// and messages wait in the queue; with reconnect they are kept for the
/// next connection. The peer then reads everything (our Close reply goes
/// out) but keeps TCP open for a while: the worker has nothing to do but
/// wait, and must not spin on the kept messages meanwhile.
///
/// The deterministic form of the race in
/// [`close_racing_sends_lets_no_later_send_through`]: `Session::sleep`
/// used to count queued messages as work to do even once a Close was under
/// way, when `write` no longer takes them, so it returned without polling,
/// again and again, at 100 % CPU, and never saw the socket become readable.
#[test]
fn kept_messages_during_a_peer_close_cost_no_cpu() {
    let _turn = shared_turn();
    let (go, may_go) = unbounded::<()>();
    let (replied_tx, replied) = unbounded::<()>();
    let (release, released) = unbounded::<()>();
    let (server, _seen) = parsing_server(move |s, seen| {
        if seen.path != "/first" {
            return; // the reconnect: nothing to do
        }
        let _ = may_go.recv();
        let _ = s.write_all(&close_frame(1012, "restarting"));
        if read_until_close(s, seen, |_, _| {}) {
            let _ = replied_tx.send(());
            let _ = released.recv();
        }
    });
    let o = opts(|o| {
        o.reconnect(wsc::Reconnect {
            min_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30),
            max_attempts: 1,
        })
        .unwrap();
        o.max_buffered_bytes(8 << 20).unwrap();
    });
    let (conn, rx) = open_channel(&format!("{}first", server.url()), o);
    expect_open(&rx);
    let mut k = 0;
    loop {
        match conn.send_message(message(1, k, 64 << 10)) {
            Ok(()) => k += 1,
            Err(Error::QueueFull { .. }) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    go.send(()).unwrap();
    next_event(&replied, "our Close reply");
    let id = conn.id();
    let before = worker_cpu_ticks(id);
    thread::sleep(Duration::from_millis(400));
    let spent = worker_cpu_ticks(id) - before;
    drop(release);
    let _ = conn.close();
    let _ = finish(&rx);
    assert!(spent <= 5, "the worker used {spent} ticks of CPU in 400 ms waiting for the peer to close TCP");
}

#[test]
fn the_message_generator_covers_what_the_tests_claim() {
    let ms: Vec<Message> = (0..20_000).map(|k| message(0, k, usize::MAX)).collect();
    assert!(ms.iter().any(|m| m.is_empty() && m.as_text().is_some()));
    assert!(ms.iter().any(|m| m.is_empty() && m.as_text().is_none()));
    assert!(ms.iter().any(|m| m.len() > 190 << 10));
    assert!(ms.iter().all(|m| m.len() <= 200 << 10));
    assert!(ms.iter().filter(|m| m.as_text().is_some()).count() > 9_000);
    let mut c = Checker::new(1, usize::MAX, "self-check");
    ms.iter().for_each(|m| c.check(m));
    assert_eq!(message(3, 7, 100).len(), 100.min(message(3, 7, usize::MAX).len()));
}
