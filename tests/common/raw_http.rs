//! Raw HTTP clients for the endpoint server on an open network: request
//! heads written by hand (valid, oversized, split at any byte, hostile),
//! answers read with a deadline, sockets that stay silent or trickle one
//! byte at a time, and the probes that tell whether the server closed one.
//!
//! Every wait here is bounded: reads carry a timeout, writes too, loops a
//! count and a deadline. A refused client sends everything before it reads
//! (`send_then_read`), as a client that sends a whole request first does:
//! on Linux an answer already received stays readable after a reset, so
//! whether every write succeeded is what tells a lingering close from an
//! abrupt one.
#![allow(dead_code)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The RFC 6455 sample key (16 bytes, base64).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A request head for `target` with the upgrade headers, `extra` lines
/// (each ending in CRLF) and the final blank line.
pub fn upgrade_head(target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    )
}

/// The same without a `Sec-WebSocket-Key` or version line (`extra` brings its own).
pub fn upgrade_head_without_key(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{extra}\r\n")
}

/// A loopback connection with `TCP_NODELAY` (so small writes leave as small
/// segments), connected within the test deadline.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(20)).expect("connect to the server");
    let _ = s.set_nodelay(true);
    s
}

/// A loopback connection from source address `from` (e.g. 127.0.0.2), with
/// `TCP_NODELAY`. A soak's legitimate clients connect from an address of
/// their own: thousands of hostile connections the server closes first
/// leave its side in TIME_WAIT, and a client port reused against one of
/// those costs that connect a SYN retransmission (1 s), a loopback artefact
/// that says nothing about the server.
pub fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
    socket.connect_timeout(&addr.into(), Duration::from_secs(20)).expect("connect to the server");
    let s: TcpStream = socket.into();
    let _ = s.set_nodelay(true);
    s
}

/// What the server answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The status line and the headers, without the blank line.
    pub head: String,
    /// The body, for answers that close the connection.
    pub body: Vec<u8>,
    /// True once the server closed (FIN or reset) after the answer.
    pub closed: bool,
}

impl Answer {
    /// The value of header `name` (the first one), case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads the answer to a request: its head, then for anything but a 101
/// everything up to the close. `Err` when no complete head arrived within
/// `within` (timeout), or the connection ended or was reset before it.
/// A reset after the whole head counts as the close.
pub fn read_answer(stream: &mut TcpStream, within: Duration) -> io::Result<Answer> {
    let deadline = Instant::now() + within;
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = all.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = read_before(stream, &mut buf, deadline)?;
        if n == 0 {
            let got = String::from_utf8_lossy(&all).into_owned();
            return Err(io::Error::new(ErrorKind::UnexpectedEof, format!("closed before a whole answer: {got:?}")));
        }
        all.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&all[..head_end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = all[head_end + 4..].to_vec();
    let mut closed = false;
    if status != 101 {
        loop {
            match read_before(stream, &mut buf, deadline) {
                Ok(0) => break closed = true,
                Ok(n) => body.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break closed = true,
                Err(_) => break, // still open at the deadline
            }
        }
    }
    Ok(Answer { status, head, body, closed })
}

/// One read that gives up at `deadline` (`TimedOut`).
fn read_before(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "no answer before the deadline"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Writes `head` in one write and reads the answer.
pub fn exchange(addr: SocketAddr, head: &[u8], within: Duration) -> io::Result<Answer> {
    let mut s = connect(addr);
    s.write_all(head)?;
    read_answer(&mut s, within)
}

/// The status the server answers `head` with (panics without an answer).
pub fn status_of(addr: SocketAddr, head: &[u8]) -> u16 {
    match exchange(addr, head, Duration::from_secs(10)) {
        Ok(a) => a.status,
        Err(e) => panic!("no answer to a {}-byte head: {e}", head.len()),
    }
}

/// Writes `pieces` one write each (pausing `pace` between them: the
/// client's pace, not a synchronisation), and only then reads the answer,
/// as a client that sends its whole request before reading does. Write
/// errors end the writing quietly. A server that refuses part way must
/// keep reading (and discarding) until the client has sent everything, or
/// its close resets the connection and the answer is lost before it is
/// read (a lingering close keeps it). Returns the answer and how many bytes
/// were written.
pub fn send_then_read(
    addr: SocketAddr,
    pieces: &[Vec<u8>],
    pace: Duration,
    within: Duration,
) -> (io::Result<Answer>, u64) {
    let mut s = connect(addr);
    let _ = s.set_write_timeout(Some(within));
    let mut written = 0u64;
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 && !pace.is_zero() {
            std::thread::sleep(pace);
        }
        if s.write_all(piece).is_err() {
            break;
        }
        written += piece.len() as u64;
    }
    (read_answer(&mut s, within), written)
}

/// `bytes` cut into pieces of 1 to `max` bytes (sizes from `mix`).
pub fn small_pieces(bytes: &[u8], max: usize, mix: impl Fn(u64) -> u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0u64;
    while at < bytes.len() {
        let n = (1 + (mix(i) as usize) % max).min(bytes.len() - at);
        out.push(bytes[at..at + n].to_vec());
        at += n;
        i += 1;
    }
    out
}

/// Whether the server closed `stream` (EOF or reset, after any bytes it
/// sent) within `within`; false if it is still open then.
pub fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        match read_before(stream, &mut buf, deadline) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::TimedOut => return false,
            Err(_) => return true, // reset
        }
    }
}

/// Whether `stream` is open right now: nothing to read and no EOF.
pub fn open_now(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let open = matches!((&*stream).read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

/// Opens `n` sockets that never send a byte.
pub fn silent_sockets(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| connect(addr)).collect()
}

/// Sockets fed one byte of a never-ending request head per socket every
/// `every` from one thread (the hostile client's pace), until dropped.
pub struct Trickle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<TcpStream>>>,
}

/// The bytes a trickling client sends: a request line, then a header that never ends.
pub fn trickle_byte(i: usize) -> u8 {
    const START: &[u8] = b"GET /websockets/v4/service/x HTTP/1.1\r\nX-Slow: ";
    START.get(i).copied().unwrap_or(b'a')
}

impl Trickle {
    /// Opens `n` sockets and starts trickling.
    pub fn start(addr: SocketAddr, n: usize, every: Duration) -> Trickle {
        let sockets = silent_sockets(addr, n);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut sockets = sockets;
            let mut sent = 0usize;
            while !flag.load(Ordering::SeqCst) && sent < 10_000 {
                for s in &mut sockets {
                    let _ = s.write(&[trickle_byte(sent)]);
                }
                sent += 1;
                let until = Instant::now() + every;
                while !flag.load(Ordering::SeqCst) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10)); // the pace
                }
            }
            sockets
        });
        Trickle { stop, thread: Some(thread) }
    }

    /// Stops trickling and hands back the sockets.
    pub fn stop(mut self) -> Vec<TcpStream> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Raises this process's soft limit on open files to the hard limit (up to
/// `want`): hundreds of sockets take two descriptors each here, one on
/// each side.
pub fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit on a zeroed struct of our own.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < want {
            l.rlim_cur = want.min(l.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// A masked client frame header announcing `len` payload bytes, then the
/// first `sent` of them (a frame cut in the middle).
pub fn half_frame(len: usize, sent: usize) -> Vec<u8> {
    let mut out = vec![0x82u8];
    super::push_len(&mut out, 0x80, len as u64);
    out.extend_from_slice(&[9, 8, 7, 6]);
    out.extend(std::iter::repeat(0x5au8).take(sent));
    out
}
