//! Load against independent peers: mutual backpressure with websocat's
//! `mirror:` echo, and 1,000 concurrent connections to Node `ws`.
//!
//! websocat's mirror stops reading while its own writes are blocked, so a
//! client that stops reading while it has writes pending deadlocks against
//! it: these tests stream without waiting for echoes and check that every
//! echo arrives, in order, with memory bounded by the send-queue limit. The
//! 1,000-connection test checks order per connection, then that every worker
//! thread is gone and memory is back near where it started.
//!
//! Prerequisites (`tests/interop/setup.sh`, `cargo install websocat`)
//! missing: fail when `CI=true`, otherwise a loud skip.

mod common;

// The tests here count the process's threads and wsc's workers: one at a time (`serial`).
use common::{all_threads, peers, rss_kib, serial};
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wsc::{Builder, Connection, Error, Event, Message, Options};

const DEADLINE: Duration = Duration::from_secs(60);

fn websocat() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("websocat")).collect())
        .unwrap_or_default();
    candidates.push(cargo_home.join("bin/websocat"));
    candidates.into_iter().find(|p| p.is_file())
}

/// websocat's binary echo that stops reading while its writes are blocked.
struct Mirror {
    child: Child,
    port: u16,
}

impl Mirror {
    fn start(bin: &PathBuf) -> Mirror {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .args(["-b", "-B", "2000000", &format!("ws-l:127.0.0.1:{port}"), "mirror:"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start websocat");
        // websocat says nothing when it is listening: wait until it accepts.
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "websocat did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mirror { child, port }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn numbered(i: usize, size: usize) -> Vec<u8> {
    let mut m = vec![(i % 251) as u8; size];
    m[..8].copy_from_slice(&(i as u64).to_le_bytes());
    m
}

/// Counts echoes and checks they come back whole and in order.
struct Echoes {
    size: usize,
    received: usize,
}

impl Echoes {
    fn take(&mut self, event: Event) {
        match event {
            Event::Message(Message::Binary(b)) => {
                assert_eq!(b.len(), self.size, "echo {} has the wrong length", self.received);
                assert_eq!(&b[..], &numbered(self.received, self.size)[..], "echo {} out of order", self.received);
                self.received += 1;
            }
            other => panic!("after {} echoes: unexpected {other:?}", self.received),
        }
    }
}

/// Sends `count` messages without waiting for echoes; on QueueFull waits for
/// the next echo instead. Returns the peak RSS growth in KiB and how often
/// the queue was full.
fn stream(conn: &Connection, rx: &Receiver<Event>, count: usize, size: usize, limit: usize) -> (usize, usize) {
    let (start_rss, mut peak, mut full) = (rss_kib(), 0, 0);
    let mut echoes = Echoes { size, received: 0 };
    let mut sent = 0;
    while sent < count {
        match conn.send_binary(numbered(sent, size)) {
            Ok(()) => sent += 1,
            Err(Error::QueueFull { buffered, limit: l }) => {
                assert!(buffered <= limit && l == limit, "queue past its limit: {buffered} > {limit}");
                full += 1;
                echoes.take(rx.recv_timeout(DEADLINE).expect("stalled: no echo while the queue is full"));
                peak = peak.max(rss_kib().saturating_sub(start_rss));
            }
            Err(e) => panic!("send {sent}: {e}"),
        }
        while let Ok(ev) = rx.try_recv() {
            echoes.take(ev);
        }
    }
    while echoes.received < count {
        echoes.take(rx.recv_timeout(DEADLINE).expect("stalled: echoes stopped arriving"));
    }
    (peak.max(rss_kib().saturating_sub(start_rss)), full)
}

fn backpressure_case(bin: &PathBuf, count: usize, size: usize, limit: usize) {
    let mirror = Mirror::start(bin);
    let mut o = Options::new();
    o.max_buffered_bytes(limit).unwrap().close_timeout(Duration::from_millis(500));
    let url = format!("ws://127.0.0.1:{}/", mirror.port);
    let (conn, rx) = Builder::new(url).options(o).connect_channel().unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), Event::Open);
    let started = Instant::now();
    let (peak_kib, full) = stream(&conn, &rx, count, size, limit);
    eprintln!(
        "{count} x {size} B echoed by websocat mirror in {:?}; queue full {full} times; \
         peak RSS growth {peak_kib} KiB (queue limit {} KiB)",
        started.elapsed(),
        limit / 1024
    );
    assert!(full > 0, "the send queue never filled: nothing pushed back");
    // Echoes waiting in the channel, tungstenite's buffers and websocat's
    // never touch more than a few queue limits.
    assert!(peak_kib < (4 * limit + (32 << 20)) / 1024, "memory grew by {peak_kib} KiB");
    conn.close().unwrap();
    // websocat 1.14 answers a Close with a Close without status (1005);
    // older ones did not answer at all, and the close timeout ends it (1006).
    match rx.recv_timeout(DEADLINE).unwrap() {
        Event::Close { code: 1005 | 1006, .. } => {}
        other => panic!("expected Close, got {other:?}"),
    }
}

#[test]
fn mutual_backpressure_with_websocat_mirror() {
    let _serial = serial();
    let Some(bin) = websocat() else {
        return peers::unavailable("BACKPRESSURE TEST", "websocat not found: run `cargo install websocat`");
    };
    backpressure_case(&bin, 100_000, 16, 256 << 10);
    backpressure_case(&bin, 300, 1 << 20, 8 << 20);
}

/// One connection's outcome in the 1,000-connection round.
struct Outcome {
    echoed_in_order: usize,
    terminal: Event,
}

const PER_CONNECTION: usize = 100;

fn exchange(url: &str, done: Sender<Outcome>) -> Connection {
    let (tx_msg, tx_end) = (done.clone(), done);
    let mut expected = 0;
    Builder::new(url)
        .on_open(|c| {
            for i in 0..PER_CONNECTION {
                c.send(format!("message {i}")).unwrap();
            }
        })
        .on_message(move |c, m| {
            if m.as_text() == Some(format!("message {expected}").as_str()) {
                expected += 1;
            } else {
                let _ = tx_msg.send(Outcome { echoed_in_order: expected, terminal: Event::Message(m) });
            }
            if expected == PER_CONNECTION {
                let _ = tx_msg.send(Outcome { echoed_in_order: expected, terminal: Event::Open });
                c.close().unwrap();
            }
        })
        .on_error({
            let tx = tx_end.clone();
            move |_, e| {
                let _ = tx.send(Outcome { echoed_in_order: 0, terminal: Event::Error(e.clone()) });
            }
        })
        .on_close(move |_, code, reason| {
            let _ = tx_end.send(Outcome { echoed_in_order: 0, terminal: Event::Close { code, reason: reason.into() } });
        })
        .connect()
        .unwrap()
}

/// 1,000 connections at once, 100 messages each; returns when all ended.
fn thousand_round(url: &str) {
    const N: usize = 1000;
    let (tx, rx) = unbounded();
    let conns: Vec<Connection> = (0..N).map(|_| exchange(url, tx.clone())).collect();
    drop(tx);
    let (mut complete, mut closed) = (0, 0);
    let until = Instant::now() + Duration::from_secs(180);
    while closed < N {
        let left = until.saturating_duration_since(Instant::now());
        let o = rx.recv_timeout(left).unwrap_or_else(|_| panic!("{closed} of {N} ended, {complete} complete"));
        match o.terminal {
            Event::Open => complete += 1,
            Event::Close { code: 1000, .. } => closed += 1,
            other => panic!("a connection went wrong after {} in-order echoes: {other:?}", o.echoed_in_order),
        }
    }
    assert_eq!(complete, N, "every connection got all {PER_CONNECTION} echoes, in order");
    drop(conns);
}

#[test]
fn thousand_concurrent_connections_to_node_ws() {
    let _serial = serial();
    if let Some(why) = peers::missing() {
        return peers::unavailable("1,000-CONNECTION TEST", &why);
    }
    let node = peers::start_node();
    let url = node.ws("/echo");
    let (threads_before, rss_before) = (all_threads(), rss_kib());
    let mut after = Vec::new();
    for round in 0..2 {
        let started = Instant::now();
        thousand_round(&url);
        // Every connection has ended; shutdown proves every worker has exited.
        wsc::shutdown(Duration::from_secs(30)).expect("worker threads left behind");
        wsc::init();
        after.push(rss_kib());
        eprintln!(
            "round {round}: 1,000 x {PER_CONNECTION} messages in {:?}; threads {} -> {}; RSS {} -> {} KiB",
            started.elapsed(),
            threads_before,
            all_threads(),
            rss_before,
            after[round]
        );
        assert_eq!(all_threads(), threads_before, "worker threads left behind");
    }
    let (first, second) = (after[0], after[1]);
    assert!(first < rss_before + (64 << 10), "RSS grew from {rss_before} to {first} KiB");
    assert!(second < first + (16 << 10), "RSS keeps growing: {first} then {second} KiB");
}
