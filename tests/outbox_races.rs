//! The outbox (`src/outbox.rs`) at its edges and in its races: senders frame
//! their own messages (header, mask, payload) into one buffer that the
//! worker, or a caller writing in its place while the worker sleeps (see
//! `src/wire.rs`), takes whole and queues in the stream (`src/stream.rs`).
//!
//! - **Framing**: every client frame is whole, final, masked, with a fresh
//!   key per frame, at each length encoding's edges (0, 125, 126, 65535,
//!   65536 …), through Rust and through the C ABI; a server's frames
//!   (`wsc::Server`) are never masked.
//! - **C text**: characters of every width cut by the 64 KiB blocks the copy
//!   is checked in arrive intact; invalid UTF-8 anywhere (at a block's edge,
//!   in a carried character, at the very end) is refused, queues nothing and
//!   gives its bytes back to the buffered count.
//! - **Wake-ups**: a send racing the worker's decision to sleep, and two
//!   sends racing each other for the caller's write (one consumes the lent
//!   flush, the other must wake the worker), never wait for a timer.
//! - **Backpressure**: sends while the socket refuses never block,
//!   `QueueFull` keeps the count under the limit, and once the peer reads
//!   `buffered_amount` returns to 0 with every accepted message delivered.
//! - **Closing**: `close()` right after the sends writes every one of them,
//!   then the Close, then nothing, over ws and wss (a TLS peer that reads
//!   slowly through small buffers).
//! - **Reconnect**: messages left in the outbox when the connection drops (a
//!   reset, or the peer's Close 1012 while our writes are blocked) go out
//!   whole on the next connection, never as the tail of a torn frame, each
//!   exactly once (1012) or as each sender's unbroken suffix (reset).
//!
//! Peers are real sockets on loopback that parse the frames themselves.
//! `OUTBOX_RACES_ROUNDS` scales the racing tests' rounds (default 1).

mod common;

use common::*;
use crossbeam_channel::{unbounded, Receiver};
use native_tls::{Identity, TlsAcceptor};
use std::collections::HashSet;
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use wsc::ffi::{self, wsc_status};
use wsc::{Connection, Error, Event, Message, Options, Reconnect};

/// Scales the racing tests' rounds (see the module docs).
const ROUNDS: &str = "OUTBOX_RACES_ROUNDS";

// ------------------------------------------------------------- frames

/// A frame as it came off the wire: first byte, mask key, unmasked payload.
#[derive(Debug, Clone)]
struct Frame {
    b0: u8,
    key: Option<[u8; 4]>,
    payload: Vec<u8>,
}

impl Frame {
    fn opcode(&self) -> u8 {
        self.b0 & 0x0F
    }
}

/// Reads one frame, masked or not, checking what RFC 6455 fixes: no RSV
/// bits, a known opcode, minimal length encodings. A torn frame (the tail
/// of one continued by the head of another) fails here or later.
fn read_any_frame(s: &mut (impl Read + ?Sized)) -> io::Result<Frame> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    if h[0] & 0x70 != 0 {
        return Err(bad(format!("RSV bits set: {h:02x?}")));
    }
    if !matches!(h[0] & 0x0F, 0x0..=0x2 | 0x8..=0xA) {
        return Err(bad(format!("unknown opcode: {h:02x?}")));
    }
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b)?;
            let len = u16::from_be_bytes(b) as usize;
            if len < 126 {
                return Err(bad(format!("16-bit length {len} for a short payload")));
            }
            len
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b)?;
            let len = u64::from_be_bytes(b);
            if len <= 0xFFFF || len > 64 << 20 {
                return Err(bad(format!("64-bit length {len}")));
            }
            len as usize
        }
        n => n as usize,
    };
    let key = if h[1] & 0x80 != 0 {
        let mut k = [0u8; 4];
        s.read_exact(&mut k)?;
        Some(k)
    } else {
        None
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    if let Some(k) = key {
        payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= k[i % 4]);
    }
    Ok(Frame { b0: h[0], key, payload })
}

/// A client frame the server sends: masked with a fixed key.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    masked_frame(b0, payload)
}

/// What a frame-parsing peer saw on one connection.
#[derive(Debug, Default)]
struct Recorded {
    /// Every frame before the client's Close (data and control), in order.
    frames: Vec<Frame>,
    /// The client's Close frame's payload, if it came.
    close: Option<Vec<u8>>,
    /// Frames after the client's Close: must be none.
    after_close: Vec<Frame>,
    /// How reading ended before a Close (a parse error shows a torn frame).
    error: Option<String>,
    /// Which connection the peer accepted (0 first).
    index: usize,
}

impl Recorded {
    fn data(&self) -> Vec<&Frame> {
        self.frames.iter().filter(|f| matches!(f.opcode(), TEXT | BINARY)).collect()
    }
}

/// Reads frames until the client's Close, answers it (if `answer`: not when
/// the peer closed first), half-closes with `shutdown` and records whatever
/// still comes.
fn record_until_close<S: Read + Write>(s: &mut S, rec: &mut Recorded, answer: bool, shutdown: impl FnOnce(&mut S)) {
    loop {
        match read_any_frame(s) {
            Ok(f) if f.opcode() == CLOSE => {
                rec.close = Some(f.payload.clone());
                let code = if f.payload.len() >= 2 { u16::from_be_bytes([f.payload[0], f.payload[1]]) } else { 1000 };
                if answer {
                    let _ = s.write_all(&close_frame(code, ""));
                    let _ = s.flush();
                }
                shutdown(s);
                while let Ok(f) = read_any_frame(s) {
                    rec.after_close.push(f);
                }
                return;
            }
            Ok(f) => rec.frames.push(f),
            Err(e) => {
                rec.error = Some(e.to_string());
                return;
            }
        }
    }
}

/// What a peer does after the upgrade, before it records: go on
/// recording (answering the client's Close or not), or stop (dropping the
/// socket).
enum Then {
    Record { answer: bool },
    Stop,
}

/// A ws peer (small kernel buffers) that records every connection; `before`
/// runs after the upgrade with the connection's index (0 for the first) to
/// stall, close or reset.
fn recording_peer(
    before: impl Fn(&mut TcpStream, usize) -> Then + Send + Sync + 'static,
) -> (TcpServer, Receiver<Recorded>) {
    let (tx, rx) = unbounded();
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let server = TcpServer::local(move |mut s| {
        let index = accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = s.set_nodelay(true);
        small_buffers(&s);
        let _ = s.set_read_timeout(Some(DEADLINE));
        let Ok(head) = read_request(&mut s) else { return };
        if s.write_all(upgrade_response(&head).as_bytes()).is_err() {
            return;
        }
        let mut rec = Recorded { index, ..Recorded::default() };
        if let Then::Record { answer } = before(&mut s, index) {
            record_until_close(&mut s, &mut rec, answer, |s| {
                let _ = s.shutdown(Shutdown::Write);
            });
        }
        let _ = tx.send(rec);
    });
    (server, rx)
}

/// A wss peer presenting the test PKI's `good` certificate, with small
/// kernel buffers, that reads frame by frame (a slow reader) and records.
fn tls_recording_peer() -> (TcpServer, Receiver<Recorded>) {
    let cert = std::fs::read(test_cert("good.pem")).unwrap();
    let key = std::fs::read(test_cert("good.key")).unwrap();
    let acceptor = Arc::new(TlsAcceptor::new(Identity::from_pkcs8(&cert, &key).unwrap()).unwrap());
    let (tx, rx) = unbounded();
    let server = TcpServer::local(move |tcp| {
        let _ = tcp.set_nodelay(true);
        small_buffers(&tcp);
        let _ = tcp.set_read_timeout(Some(DEADLINE));
        let Ok(mut tls) = acceptor.accept(tcp) else { return };
        let Ok(head) = read_request(&mut tls) else { return };
        if tls.write_all(upgrade_response(&head).as_bytes()).is_err() {
            return;
        }
        let mut rec = Recorded::default();
        record_until_close(&mut tls, &mut rec, true, |tls| {
            let _ = tls.get_ref().shutdown(Shutdown::Write);
        });
        let _ = tx.send(rec);
    });
    (server, rx)
}

// ------------------------------------------------------------ messages

/// Lengths that sit on the frame header's edges.
const EDGES: [usize; 9] = [14, 125, 126, 127, 1000, 0xFFFF, 0x1_0000, 0x1_0001, 4000];

/// Message `k` of sender `t` (at most `max` bytes): `ttt.kkkkkkkkk.` then
/// filler derived from `(t, k)`; text or binary; lengths often on an edge.
fn numbered(t: u32, k: u32, max: usize) -> Message {
    let h = mix((u64::from(t) << 32) | u64::from(k));
    let text = h & 1 == 0;
    let len = if h % 7 == 0 { EDGES[(h >> 8) as usize % EDGES.len()] } else { 14 + (h >> 16) as usize % 300 };
    let len = len.min(max).max(14);
    let mut v = format!("{t:03}.{k:09}.").into_bytes();
    let mut x = h;
    while v.len() < len {
        x = mix(x);
        v.extend(x.to_le_bytes().iter().map(|b| if text { b'a' + b % 26 } else { *b }));
    }
    v.truncate(len);
    if text {
        Message::Text(String::from_utf8(v).unwrap().into())
    } else {
        Message::Binary(v.into())
    }
}

/// (sender, number) of a numbered payload.
fn number_of(p: &[u8]) -> (u32, u32) {
    let s = std::str::from_utf8(&p[..14.min(p.len())]).unwrap_or_else(|_| panic!("not numbered: {:02x?}", &p[..8]));
    let t = s[..3].parse().unwrap_or_else(|_| panic!("not numbered: {s:?}"));
    let k = s[4..13].parse().unwrap_or_else(|_| panic!("not numbered: {s:?}"));
    (t, k)
}

/// Checks data frames against the numbered messages: each intact, whole,
/// masked; returns each sender's numbers in arrival order.
fn numbers(frames: &[&Frame], senders: usize, max: usize, what: &str) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); senders];
    for f in frames {
        assert!(f.key.is_some(), "{what}: an unmasked client frame");
        assert!(f.b0 & 0x80 != 0, "{what}: a fragment");
        let (t, k) = number_of(&f.payload);
        let want = numbered(t, k, max);
        let op = if want.as_text().is_some() { TEXT } else { BINARY };
        assert!(f.opcode() == op && f.payload == want.as_bytes(), "{what}: sender {t}'s message {k} is not intact");
        out[t as usize].push(k);
    }
    out
}

/// Busy-waits a pseudo-random few microseconds: shifts where a send lands
/// relative to the worker's way to sleep (a delay, not a synchronisation).
fn jitter(seed: u64) {
    for _ in 0..(mix(seed) % 3000) {
        std::hint::spin_loop();
    }
}

// ------------------------------------------------------------- framing

/// Lengths around every length-encoding edge, text and binary, sent through
/// `send`, `send_binary`, `wsc_send_text`, `wsc_send_binary` and `wsc_send`
/// (NUL-terminated): every frame parses whole, is final and masked, the
/// keys differ from frame to frame, and every payload arrives intact, in
/// send order.
#[test]
fn client_frames_are_masked_with_fresh_keys_at_every_length_edge() {
    let (server, seen) = recording_peer(|_, _| Then::Record { answer: true });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let id = conn.id();
    let mut sent: Vec<(u8, Vec<u8>)> = Vec::new();
    for (i, len) in [0usize, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 0x1_0001, (128 << 10) + 3].into_iter().enumerate() {
        let text: String = (0..len).map(|j| (b'a' + ((i + j) % 26) as u8) as char).collect();
        let bin: Vec<u8> = (0..len).map(|j| mix((i * 1_000_003 + j) as u64) as u8).collect();
        conn.send(text.clone()).unwrap();
        sent.push((TEXT, text.clone().into_bytes()));
        conn.send_binary(bin.clone()).unwrap();
        sent.push((BINARY, bin.clone()));
        // SAFETY: valid pointers and lengths for the calls.
        unsafe {
            assert_eq!(ffi::wsc_send_text(id, text.as_ptr().cast(), len), wsc_status::WSC_OK);
            sent.push((TEXT, text.clone().into_bytes()));
            assert_eq!(ffi::wsc_send_binary(id, bin.as_ptr(), len), wsc_status::WSC_OK);
            sent.push((BINARY, bin.clone()));
            let c = CString::new(text.clone()).unwrap();
            assert_eq!(ffi::wsc_send(id, c.as_ptr()), wsc_status::WSC_OK);
            sent.push((TEXT, text.into_bytes()));
        }
        // Empty data from C with a NULL pointer is an empty message too.
        if len == 0 {
            // SAFETY: NULL with length 0 is allowed.
            unsafe {
                assert_eq!(ffi::wsc_send_binary(id, std::ptr::null(), 0), wsc_status::WSC_OK);
                sent.push((BINARY, Vec::new()));
                assert_eq!(ffi::wsc_send_text(id, std::ptr::null(), 0), wsc_status::WSC_OK);
                sent.push((TEXT, Vec::new()));
            }
        }
    }
    assert!(eventually(DEADLINE, || conn.buffered_amount().unwrap() == 0), "buffered never returned to 0");
    conn.close().unwrap();
    let rec = next_event(&seen, "the peer's record");
    assert!(rec.error.is_none(), "the peer could not parse: {:?}", rec.error);
    assert!(rec.after_close.is_empty(), "frames after our Close: {:?}", rec.after_close.len());
    let data = rec.data();
    assert_eq!(data.len(), sent.len(), "every message, once");
    let mut keys = HashSet::new();
    for (i, (f, (op, payload))) in data.iter().zip(&sent).enumerate() {
        assert_eq!(f.b0, 0x80 | op, "frame {i}: FIN and opcode");
        let key = f.key.unwrap_or_else(|| panic!("frame {i} is not masked"));
        keys.insert(key);
        assert!(f.payload == *payload, "frame {i} ({} bytes) is not intact", payload.len());
    }
    // 32-bit keys from a CSPRNG: a repeat among ~50 is a one-in-10^7 event.
    assert_eq!(keys.len(), data.len(), "mask keys repeat");
    assert_eq!(expect_close(&rx, 1000), "");
}

/// A raw WebSocket client of a `wsc::Server` endpoint whose handler echoes
/// text through `wsc_send_text` and binary through `send_binary`: every
/// frame the server sends is unmasked (RFC 6455 5.1), final, intact, at
/// each length edge.
#[test]
fn a_servers_frames_are_never_masked() {
    let handler = "outbox-races-echo";
    wsc::register_handler(handler, |conn: &Connection, event: &Event| {
        if let (Some(_), Event::Message(m)) = (conn.endpoint(), event) {
            match m {
                // SAFETY: valid pointer and length for the call.
                Message::Text(t) => unsafe {
                    let _ = ffi::wsc_send_text(conn.id(), t.as_ptr().cast(), t.len());
                },
                Message::Binary(b) => {
                    let _ = conn.send_binary(b.clone());
                }
            }
        }
    })
    .unwrap();
    let server = wsc::Server::bind("127.0.0.1:0").endpoint("races", handler).start().unwrap();
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "GET /websockets/v4/service/races HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let head = read_request(&mut s).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for (i, len) in [0usize, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 0x1_0001].into_iter().enumerate() {
        let text: String = (0..len).map(|j| (b'a' + ((i + j) % 26) as u8) as char).collect();
        let bin: Vec<u8> = (0..len).map(|j| mix((i + j) as u64) as u8).collect();
        for (op, payload) in [(TEXT, text.as_bytes()), (BINARY, &bin[..])] {
            s.write_all(&client_frame(FIN | op, payload)).unwrap();
            let f = read_any_frame(&mut s).unwrap();
            assert_eq!(f.key, None, "the server masked its {len}-byte frame");
            assert_eq!(f.b0, FIN | op, "{len} bytes: FIN and opcode");
            assert!(f.payload == payload, "the {len}-byte echo is not intact");
        }
    }
    s.write_all(&client_frame(FIN | CLOSE, &1000u16.to_be_bytes())).unwrap();
    let f = read_any_frame(&mut s).unwrap();
    assert_eq!((f.opcode(), f.key), (CLOSE, None));
    server.stop().unwrap();
}

// --------------------------------------------------------------- C text

/// Text from C whose multi-byte characters (2, 3 and 4 bytes) are cut by
/// the 64 KiB blocks the copy is checked in, at each cut position, through
/// `wsc_send_text` and `wsc_send`: each arrives intact. Invalid text (a bad
/// byte at a block's first byte, a character cut at a block's edge whose
/// tail is wrong, a truncated character at the very end, a lone
/// continuation byte right after a block) is refused with
/// `WSC_ERR_INVALID_ARGUMENT`, leaves `buffered_amount` as it was and puts
/// nothing on the wire: the peer sees exactly the valid messages, in order.
#[test]
fn c_text_cut_by_the_64k_blocks() {
    let (server, seen) = recording_peer(|_, _| Then::Record { answer: true });
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let id = conn.id();
    let mut valid: Vec<Vec<u8>> = Vec::new();
    let chars = ['é', '€', '😀'];
    for block in [64usize << 10, 128 << 10] {
        for c in chars {
            let w = c.len_utf8();
            for cut in 1..w {
                let mut t = "a".repeat(block - cut);
                t.push(c);
                t.push_str("tail");
                assert!(!t.is_char_boundary(block), "the block's edge cuts the character");
                // SAFETY: valid pointer and length.
                assert_eq!(unsafe { ffi::wsc_send_text(id, t.as_ptr().cast(), t.len()) }, wsc_status::WSC_OK);
                valid.push(t.clone().into_bytes());
                let z = CString::new(t.clone()).unwrap();
                // SAFETY: NUL-terminated.
                assert_eq!(unsafe { ffi::wsc_send(id, z.as_ptr()) }, wsc_status::WSC_OK);
                valid.push(t.into_bytes());
            }
        }
    }
    let b = 64usize << 10;
    let a = |n: usize| vec![b'a'; n];
    let invalid: Vec<Vec<u8>> = vec![
        [a(b), vec![0xFF], a(10)].concat(), // a bad first byte of block 2
        [a(b - 1), vec![0xE2, 0x82], vec![0x41], a(10)].concat(), // carried, wrong tail
        [a(b - 2), vec![0xF0, 0x9F], vec![0x98, 0x41]].concat(), // carried, wrong last byte
        [a(b), vec![0x80], a(10)].concat(), // lone continuation after a block
        [a(b - 1), vec![0xC3]].concat(),    // truncated at the end of block 1
        [a(b + 5), vec![0xE2, 0x82]].concat(), // truncated at the very end
        [a(2 * b - 1), vec![0xED, 0xA0, 0x80], a(3)].concat(), // a surrogate across block 2/3
    ];
    for (i, bad) in invalid.iter().enumerate() {
        assert!(eventually(DEADLINE, || conn.buffered_amount().unwrap() == 0), "buffered never reached 0");
        // SAFETY: valid pointer and length.
        let status = unsafe { ffi::wsc_send_text(id, bad.as_ptr().cast(), bad.len()) };
        assert_eq!(status, wsc_status::WSC_ERR_INVALID_ARGUMENT, "invalid text {i} was accepted");
        assert_eq!(conn.buffered_amount().unwrap(), 0, "invalid text {i} left bytes counted");
        if !bad.contains(&0) {
            let z = CString::new(bad.clone()).unwrap();
            // SAFETY: NUL-terminated.
            let status = unsafe { ffi::wsc_send(id, z.as_ptr()) };
            assert_eq!(status, wsc_status::WSC_ERR_INVALID_ARGUMENT, "invalid NUL-terminated text {i} was accepted");
            assert_eq!(conn.buffered_amount().unwrap(), 0, "invalid NUL-terminated text {i} left bytes counted");
        }
        let marker = format!("after invalid text {i}");
        conn.send(marker.clone()).unwrap();
        valid.push(marker.into_bytes());
    }
    assert!(eventually(DEADLINE, || conn.buffered_amount().unwrap() == 0), "buffered never returned to 0");
    conn.close().unwrap();
    let rec = next_event(&seen, "the peer's record");
    assert!(rec.error.is_none(), "the peer could not parse: {:?}", rec.error);
    let data = rec.data();
    assert_eq!(data.len(), valid.len(), "exactly the valid messages");
    for (i, (f, want)) in data.iter().zip(&valid).enumerate() {
        assert_eq!(f.b0, FIN | TEXT, "message {i}");
        assert!(f.payload == *want, "message {i} ({} bytes) is not intact", want.len());
    }
    assert_eq!(expect_close(&rx, 1000), "");
}

// ------------------------------------------------------------- wake-ups

/// How long an echo may take before it counts as a missed wake-up: a lost
/// wake-up is rescued at best by the next timer (the rebuild after 1 s
/// idle), at worst never; a loopback echo takes well under a millisecond.
const SLOW: Duration = Duration::from_millis(800);

/// One thread sends, waits for the echo, waits a pseudo-random few
/// microseconds and sends again, thousands of times: each send lands somewhere on the
/// worker's way to sleep after the previous echo (callback, re-check,
/// `prepare_sleep`, the outbox check, the unlock, poll). Every echo comes
/// back at once: no send waits for a timer to wake the worker. (No
/// keepalive: its timer would rescue a lost wake-up and hide it.)
#[test]
fn a_send_racing_the_worker_going_to_sleep_is_never_stranded() {
    let server = echo_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let mut slow = Vec::new();
    for k in 0..rounds(ROUNDS, 4000) as u32 {
        let m = numbered(0, k, 2000);
        let at = Instant::now();
        conn.send_message(m.clone()).unwrap();
        let back = expect_message(&rx, "echo");
        let took = at.elapsed();
        assert!(back == m, "echo {k} is not message {k}");
        if took > SLOW {
            slow.push((k, took));
        }
        jitter(u64::from(k));
    }
    assert!(slow.is_empty(), "echoes that waited for a timer: {slow:?}");
    assert_eq!(conn.buffered_amount().unwrap(), 0);
    close_cleanly(&conn, &rx);
}

/// Two threads released together by a barrier each send one message per
/// round (one through Rust, one through `wsc_send_binary`), while the
/// worker is asleep: one of them gets the lent flush, the other finds it
/// taken (or the batch already written) and must wake the worker if its
/// message is still queued. Both echoes come back at once, every round,
/// each thread's in order.
#[test]
fn two_sends_racing_for_the_lent_flush_both_arrive_at_once() {
    let server = echo_server();
    let (conn, rx) = open_channel(&server.url(), Options::new());
    expect_open(&rx);
    let n = rounds(ROUNDS, 1500) as u32;
    let go = Arc::new(Barrier::new(3));
    let done = Arc::new(Barrier::new(3));
    let senders: Vec<_> = (0..2u32)
        .map(|t| {
            let (conn, go, done) = (conn.clone(), go.clone(), done.clone());
            thread::spawn(move || {
                for k in 0..n {
                    let m = numbered(t, k, 3000);
                    go.wait();
                    jitter(u64::from(k * 2 + t));
                    if t == 0 {
                        conn.send_message(m).unwrap();
                    } else {
                        let b = m.as_bytes();
                        let status = match m.as_text() {
                            // SAFETY: valid pointer and length.
                            Some(_) => unsafe { ffi::wsc_send_text(conn.id(), b.as_ptr().cast(), b.len()) },
                            // SAFETY: valid pointer and length.
                            None => unsafe { ffi::wsc_send_binary(conn.id(), b.as_ptr(), b.len()) },
                        };
                        assert_eq!(status, wsc_status::WSC_OK);
                    }
                    done.wait();
                }
            })
        })
        .collect();
    let mut next = [0u32; 2];
    let mut slow = Vec::new();
    for k in 0..n {
        go.wait();
        let at = Instant::now();
        for _ in 0..2 {
            let m = expect_message(&rx, "echo");
            let (t, got) = number_of(m.as_bytes());
            assert_eq!(got, next[t as usize], "sender {t}'s messages out of order");
            assert!(m == numbered(t, got, 3000), "sender {t}'s message {got} is not intact");
            next[t as usize] += 1;
        }
        if at.elapsed() > SLOW {
            slow.push((k, at.elapsed()));
        }
        done.wait();
    }
    for s in senders {
        s.join().unwrap();
    }
    assert!(slow.is_empty(), "rounds whose echoes waited for a timer: {slow:?}");
    assert_eq!(conn.buffered_amount().unwrap(), 0);
    close_cleanly(&conn, &rx);
}

// --------------------------------------------------------- backpressure

/// A peer that stops reading: three threads send numbered messages until
/// `QueueFull` (limit 256 KiB); no send blocks, the count never passes the
/// limit, and invalid C text at that moment changes nothing. Once the peer
/// reads, every accepted message arrives whole, in order, exactly once,
/// `buffered_amount` returns to 0, and the Close comes last.
#[test]
fn a_blocked_socket_then_a_reading_peer_returns_the_count_to_zero() {
    const LIMIT: usize = 256 << 10;
    const MAX: usize = 8 << 10;
    let (release, released) = unbounded::<()>();
    let (server, seen) = recording_peer(move |_, _| {
        let _ = released.recv();
        Then::Record { answer: true }
    });
    let o = opts(|o| {
        o.max_buffered_bytes(LIMIT).unwrap();
    });
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let senders: Vec<_> = (0..3u32)
        .map(|t| {
            let conn = conn.clone();
            thread::spawn(move || {
                let mut k = 0;
                let mut slowest = Duration::ZERO;
                loop {
                    let at = Instant::now();
                    let r = conn.send_message(numbered(t, k, MAX));
                    slowest = slowest.max(at.elapsed());
                    match r {
                        Ok(()) => k += 1,
                        Err(Error::QueueFull { buffered, limit }) => {
                            assert!(buffered <= limit, "{buffered} > {limit}");
                            return (k, slowest);
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                    assert!(conn.buffered_amount().unwrap() <= LIMIT);
                }
            })
        })
        .collect();
    let sent: Vec<(u32, Duration)> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    for (t, (_, slowest)) in sent.iter().enumerate() {
        assert!(*slowest < Duration::from_secs(1), "sender {t} blocked for {slowest:?}");
    }
    // (The count may fall meanwhile: the kernel's send buffer grows.)
    let before = conn.buffered_amount().unwrap();
    let bad = [vec![b'a'; 100], vec![0xFF]].concat();
    // SAFETY: valid pointer and length.
    let status = unsafe { ffi::wsc_send_text(conn.id(), bad.as_ptr().cast(), bad.len()) };
    assert!(matches!(status, wsc_status::WSC_ERR_INVALID_ARGUMENT | wsc_status::WSC_ERR_QUEUE_FULL), "{status:?}");
    assert!(conn.buffered_amount().unwrap() <= before, "invalid text changed the count");
    drop(release);
    assert!(eventually(DEADLINE, || conn.buffered_amount().unwrap() == 0), "buffered stuck at {}", {
        conn.buffered_amount().unwrap()
    });
    conn.close().unwrap();
    let rec = next_event(&seen, "the peer's record");
    assert!(rec.error.is_none(), "the peer could not parse: {:?}", rec.error);
    assert!(rec.after_close.is_empty(), "frames after our Close");
    let got = numbers(&rec.data(), 3, MAX, "after the stall");
    for (t, ks) in got.iter().enumerate() {
        let want: Vec<u32> = (0..sent[t].0).collect();
        assert!(*ks == want, "sender {t}: {} of {} accepted messages, in order?", ks.len(), want.len());
    }
    assert_eq!(expect_close(&rx, 1000), "");
}

// -------------------------------------------------------------- closing

/// Four threads send (some messages written by the callers, some queued
/// behind a socket the slow peer keeps full), then `close()` at once: every
/// message is written before the Close, nothing after it, the end is Close
/// 1000. Over ws and over wss with a TLS peer reading frame by frame
/// through small buffers (refused TLS writes retried with the same bytes).
#[test]
fn close_right_after_sends_writes_them_all_first_ws_and_wss() {
    for round in 0..rounds(ROUNDS, 3) {
        for tls in [false, true] {
            let (server, seen, url, o) = if tls {
                let (s, seen) = tls_recording_peer();
                let url = s.wss_url();
                (s, seen, url, trusting(&test_cert("ca.pem")))
            } else {
                let (s, seen) = recording_peer(|_, _| Then::Record { answer: true });
                let url = s.url();
                (s, seen, url, Options::new())
            };
            let what = format!("round {round}, {}", if tls { "wss" } else { "ws" });
            let (conn, rx) = open_channel(&url, o);
            expect_open(&rx);
            const EACH: u32 = 300;
            let senders: Vec<_> = (0..4u32)
                .map(|t| {
                    let conn = conn.clone();
                    thread::spawn(move || {
                        for k in 0..EACH {
                            conn.send_message(numbered(t, k, 70 << 10)).unwrap();
                        }
                    })
                })
                .collect();
            for s in senders {
                s.join().unwrap();
            }
            conn.close().unwrap();
            let rec = next_event(&seen, "the peer's record");
            assert!(rec.error.is_none(), "{what}: the peer could not parse: {:?}", rec.error);
            assert!(rec.close.is_some(), "{what}: no Close");
            assert!(rec.after_close.is_empty(), "{what}: frames after our Close");
            let got = numbers(&rec.data(), 4, 70 << 10, &what);
            for (t, ks) in got.iter().enumerate() {
                assert!(*ks == (0..EACH).collect::<Vec<_>>(), "{what}: sender {t} got {} messages", ks.len());
            }
            assert_eq!(expect_close(&rx, 1000), "", "{what}");
            drop(server);
        }
    }
}

// ------------------------------------------------------------ reconnect

/// How the first connection ends in [`messages_left_in_the_outbox_go_out_whole_after_a_reconnect`].
#[derive(Clone, Copy, Debug)]
enum Drop1 {
    /// A TCP reset, nothing read: the messages in flight are lost.
    Reset,
    /// The peer's Close 1012, then it reads everything up to our Close
    /// reply: nothing is lost, nothing is sent twice.
    Restart,
}

fn reconnect_case(how: Drop1) {
    const EACH: u32 = 3000;
    const MAX: usize = 64 << 10;
    let (go, may_go) = unbounded::<()>();
    let may_go = Arc::new(parking_lot::Mutex::new(may_go));
    let (server, seen) = recording_peer(move |s, index| {
        if index != 0 {
            return Then::Record { answer: true };
        }
        let _ = may_go.lock().recv();
        match how {
            Drop1::Reset => {
                reset_on_close(s);
                Then::Stop
            }
            Drop1::Restart => {
                let _ = s.write_all(&close_frame(1012, "restarting"));
                Then::Record { answer: false }
            }
        }
    });
    let o = opts(|o| {
        o.reconnect(Reconnect {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            max_attempts: 0,
        })
        .unwrap();
    });
    let (conn, rx) = open_channel(&server.url(), o);
    expect_open(&rx);
    let senders: Vec<_> = (0..2u32)
        .map(|t| {
            let conn = conn.clone();
            thread::spawn(move || {
                let mut k = 0;
                while k < EACH {
                    match conn.send_message(numbered(t, k, MAX)) {
                        Ok(()) => k += 1,
                        // During the peer's Close: the reconnect is not under way yet.
                        Err(Error::Closed) => std::hint::spin_loop(),
                        Err(e) => panic!("sender {t}: {e:?}"),
                    }
                }
            })
        })
        .collect();
    // Writes blocked, the outbox holding frames: now the first connection drops.
    assert!(eventually(DEADLINE, || conn.buffered_amount().unwrap() > 1 << 20), "the socket never filled");
    go.send(()).unwrap();
    for s in senders {
        s.join().unwrap();
    }
    wait_for(&rx, "reconnecting", |e| matches!(e, Event::Reconnecting { .. }));
    wait_for(&rx, "the second open", |e| matches!(e, Event::Open));
    assert!(
        eventually(DEADLINE, || conn.buffered_amount().unwrap() == 0),
        "{how:?}: buffered stuck at {}",
        conn.buffered_amount().unwrap()
    );
    conn.close().unwrap();
    let first = next_event(&seen, "the first connection's record");
    let second = next_event(&seen, "the second connection's record");
    let (first, second) = if first.index == 0 { (first, second) } else { (second, first) };
    assert!(second.error.is_none(), "{how:?}: the second connection's peer could not parse: {:?}", second.error);
    assert!(second.after_close.is_empty(), "{how:?}: frames after our Close");
    let on_second = numbers(&second.data(), 2, MAX, "second connection");
    let on_first = numbers(&first.data(), 2, MAX, "first connection");
    for t in 0..2 {
        let (a, b) = (&on_first[t], &on_second[t]);
        assert!(!b.is_empty(), "{how:?}: sender {t}: nothing kept for the second connection");
        // Each sender's messages on the second connection: an unbroken run to its last.
        let start = b[0];
        assert!(*b == (start..EACH).collect::<Vec<_>>(), "{how:?}: sender {t}'s messages on the second connection");
        if let Drop1::Restart = how {
            assert!(first.error.is_none(), "{how:?}: the first peer could not parse: {:?}", first.error);
            assert!(
                *a == (0..start).collect::<Vec<_>>(),
                "{how:?}: sender {t}: lost or sent twice across the reconnect"
            );
        }
    }
    assert_eq!(expect_close(&rx, 1000), "");
}

/// Messages left in the outbox when the first connection drops (our
/// writes blocked, 1 MiB+ buffered) go out on the next connection as whole
/// frames — never the rest of a frame half-written on the old socket —
/// each sender's as an unbroken run to its last message; after a Close
/// 1012 (the peer reads up to our Close reply) every message arrives
/// exactly once across the two connections. `buffered_amount` returns to 0.
#[test]
fn messages_left_in_the_outbox_go_out_whole_after_a_reconnect() {
    reconnect_case(Drop1::Reset);
    reconnect_case(Drop1::Restart);
}
