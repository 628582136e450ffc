//! Peers and probes shared by the integration tests.
//!
//! Every peer is a real socket on loopback in this process: tungstenite
//! servers for well-behaved peers (they show what wsc sends and record what
//! arrives), and raw TCP servers that write bytes by hand for peers that
//! break the protocol on purpose. The probes read what a user could check
//! from outside: events in order, thread names in `/proc/self/task`, CPU
//! time of one worker thread. Waits are deadlines on channels, never sleeps.
#![allow(dead_code)]

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tungstenite::WebSocket;
use wsc::server::Listener;
use wsc::{Builder, Connection, ConnectionError, ErrorKind, Event, Message, Options};

pub mod dns;
pub mod peers;
pub mod raw_http;

/// How long any single expected event may take. Generous: two shared cores.
pub const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- servers

/// A TCP listener on loopback running `handler` on its own thread (named
/// `srv-conn`) for each accepted connection: wsc's [`Listener`], plus a
/// signal per accepted connection. Stops accepting when dropped; connection
/// threads end when their peer does.
pub struct TcpServer {
    listener: Listener,
    accepted: Receiver<()>,
}

impl TcpServer {
    /// Listens on `bind` (`127.0.0.1:0` or `[::1]:0`).
    pub fn start(bind: &str, handler: impl Fn(TcpStream) + Send + Sync + 'static) -> TcpServer {
        let (tx, accepted) = unbounded();
        let listener = Listener::start(bind, "srv-conn", move |stream| {
            let _ = tx.send(());
            handler(stream)
        })
        .expect("bind a loopback port");
        TcpServer { listener, accepted }
    }

    /// Loopback IPv4, the common case.
    pub fn local(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> TcpServer {
        TcpServer::start("127.0.0.1:0", handler)
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// `ws://<addr>/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr())
    }

    /// `wss://<addr>/`.
    pub fn wss_url(&self) -> String {
        format!("wss://{}/", self.addr())
    }

    /// Waits until the server has accepted one more TCP connection.
    pub fn wait_accepted(&self) {
        self.accepted.recv_timeout(DEADLINE).expect("the server never accepted a connection");
    }
}

/// A tungstenite server: `f` gets each connection after the handshake.
pub fn ws_server(f: impl Fn(WebSocket<TcpStream>) + Send + Sync + 'static) -> TcpServer {
    TcpServer::local(move |stream| {
        let _ = stream.set_nodelay(true);
        if let Ok(ws) = tungstenite::accept(stream) {
            f(ws)
        }
    })
}

/// Echoes every text and binary message with blocking writes, so it stops
/// reading while its own writes are blocked (as websocat's echo does).
/// Completes the closing handshake.
pub fn echo_server() -> TcpServer {
    ws_server(echo)
}

/// The echo loop of [`echo_server`], for servers built by hand.
pub fn echo<S: Read + Write>(ws: WebSocket<S>) {
    wsc::server::echo_messages(ws);
}

/// A tungstenite server that reports every message it reads (data, pings,
/// the client's Close) on the returned channel, echoing data if `echo`.
pub fn recording_server(echo: bool) -> (TcpServer, Receiver<tungstenite::Message>) {
    let (tx, rx) = unbounded();
    let server = ws_server(move |mut ws| loop {
        let Ok(m) = ws.read() else { return };
        let _ = tx.send(m.clone());
        if echo && (m.is_text() || m.is_binary()) && ws.send(m).is_err() {
            return;
        }
    });
    (server, rx)
}

/// Completes the upgrade, then neither reads nor writes until the returned
/// sender is dropped. Its socket buffers are small, so a client's writes
/// block soon.
pub fn stalled_server() -> (TcpServer, Sender<()>) {
    let (release, released) = unbounded::<()>();
    let server = TcpServer::local(move |mut stream| {
        small_buffers(&stream);
        if accept_upgrade(&mut stream).is_ok() {
            let _ = released.recv();
        }
    });
    (server, release)
}

/// Shrinks the kernel buffers of `stream` (and stops their autotuning), so
/// backpressure shows after kilobytes instead of megabytes.
pub fn small_buffers(stream: &TcpStream) {
    let s = socket2::SockRef::from(stream);
    let _ = s.set_recv_buffer_size(32 << 10);
    let _ = s.set_send_buffer_size(32 << 10);
}

/// Accepts TCP and never answers: reads and discards until the client leaves.
pub fn silent_server() -> TcpServer {
    TcpServer::local(drain)
}

/// Reads and discards until EOF or error.
pub fn drain(mut stream: TcpStream) {
    let mut buf = [0u8; 64 << 10];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

/// A raw server that completes the HTTP upgrade by hand and then hands the
/// socket to `f`, which writes whatever bytes the test wants.
pub fn raw_ws_server(f: impl Fn(TcpStream) + Send + Sync + 'static) -> TcpServer {
    TcpServer::local(move |mut stream| {
        let _ = stream.set_nodelay(true);
        if accept_upgrade(&mut stream).is_ok() {
            f(stream)
        }
    })
}

/// A raw server that reads the request and answers with `response` verbatim.
pub fn http_server(response: &'static str) -> TcpServer {
    TcpServer::local(move |mut stream| {
        if read_request(&mut stream).is_ok() {
            let _ = stream.write_all(response.as_bytes());
            drain(stream);
        }
    })
}

/// Reads an HTTP request head (up to the blank line) byte by byte, so
/// nothing after it is consumed.
pub fn read_request(stream: &mut (impl Read + ?Sized)) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The `Sec-WebSocket-Key` of a request head.
pub fn request_key(head: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
    })
}

/// A valid 101 answer to `head`.
pub fn upgrade_response(head: &str) -> String {
    let key = request_key(head).unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// Reads the request and answers 101 correctly.
pub fn accept_upgrade(stream: &mut TcpStream) -> io::Result<()> {
    let head = read_request(stream)?;
    stream.write_all(upgrade_response(&head).as_bytes())
}

// ----------------------------------------------------------------- frames

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;
pub const FIN: u8 = 0x80;

/// A server frame: `b0` is the first byte (FIN, RSV, opcode), unmasked.
pub fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    push_len(&mut out, 0, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// A frame with the mask bit set, which a server must never send.
pub fn masked_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut out = vec![b0];
    push_len(&mut out, 0x80, payload.len() as u64);
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Appends the length field: 7-bit, 16-bit or 64-bit form.
pub fn push_len(out: &mut Vec<u8>, mask_bit: u8, len: u64) {
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A Close frame with `code`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    frame(FIN | CLOSE, &payload)
}

/// Reads one client frame: (opcode, fin, unmasked payload). A frame
/// without a mask (which a client must never send) is `InvalidData`.
pub fn read_frame(stream: &mut (impl Read + ?Sized)) -> io::Result<(u8, bool, Vec<u8>)> {
    let mut h = [0u8; 2];
    stream.read_exact(&mut h)?;
    if h[1] & 0x80 == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("an unmasked client frame: {h:02x?}")));
    }
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b)?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b)?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut key = [0u8; 4];
    stream.read_exact(&mut key)?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
    Ok((h[0] & 0x0F, h[0] & FIN != 0, payload))
}

/// Reads client frames until a Close; returns its code (None: no code, or
/// the stream ended first).
pub fn read_close_code(stream: &mut impl Read) -> Option<u16> {
    loop {
        let (op, _, payload) = read_frame(stream).ok()?;
        if op == CLOSE {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

// ----------------------------------------------------------------- client

/// Channel-style connection with `options`.
pub fn open_channel(uri: &str, options: Options) -> (Connection, Receiver<Event>) {
    Builder::new(uri).options(options).connect_channel().expect("connect() refused the call")
}

/// Options changed by `f`.
pub fn opts(f: impl FnOnce(&mut Options)) -> Options {
    let mut o = Options::new();
    f(&mut o);
    o
}

/// Options trusting the CA in the PEM file `ca`.
pub fn trusting(ca: &str) -> Options {
    opts(|o| {
        o.ca_file(ca).unwrap();
    })
}

/// The next event (or anything else sent on `rx`), or a panic naming what
/// was awaited.
pub fn next_event<T>(rx: &Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(DEADLINE) {
        Ok(ev) => ev,
        Err(RecvTimeoutError::Timeout) => panic!("no event within {DEADLINE:?} ({what})"),
        Err(RecvTimeoutError::Disconnected) => panic!("the connection ended ({what})"),
    }
}

pub fn expect_open(rx: &Receiver<Event>) {
    match next_event(rx, "waiting for Open") {
        Event::Open => {}
        other => panic!("expected Open, got {other:?}"),
    }
}

/// The next message's text.
pub fn expect_text(rx: &Receiver<Event>) -> String {
    match next_event(rx, "waiting for a message") {
        Event::Message(m) => m.as_text().expect("a text message").to_owned(),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Sends `text` and expects it back as the next event.
pub fn echo_text(conn: &Connection, rx: &Receiver<Event>, text: &str) {
    conn.send(text).unwrap();
    assert_eq!(expect_text(rx), text);
}

/// Sends `count` binary messages of `size` bytes (message `i` filled with
/// `i`) without waiting, then expects their echoes whole and in order.
pub fn echo_binaries(conn: &Connection, rx: &Receiver<Event>, count: u8, size: usize) {
    for i in 0..count {
        conn.send_binary(vec![i; size]).unwrap();
    }
    for i in 0..count {
        match next_event(rx, "echo") {
            Event::Message(Message::Binary(b)) => assert_eq!((b.len(), b[0]), (size, i), "echo {i} in order"),
            other => panic!("{other:?}"),
        }
    }
}

/// Closes and expects `Close { code: 1000 }` as the one terminal event.
pub fn close_cleanly(conn: &Connection, rx: &Receiver<Event>) {
    conn.close().unwrap();
    expect_close(rx, 1000);
}

/// Connects to the echo server at `url`, exchanges `text` and closes cleanly.
pub fn round_trip(url: &str, options: Options, text: &str) {
    let (conn, rx) = open_channel(url, options);
    expect_open(&rx);
    echo_text(&conn, &rx, text);
    close_cleanly(&conn, &rx);
}

/// Reads the remaining events until the channel ends (which proves nothing
/// more can be delivered), checking that exactly one terminal event came
/// and came last. Returns the events that preceded it and the terminal one.
pub fn finish(rx: &Receiver<Event>) -> (Vec<Event>, Event) {
    let deadline = Instant::now() + DEADLINE;
    let mut events = Vec::new();
    loop {
        match rx.recv_deadline(deadline) {
            Ok(ev) => events.push(ev),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                panic!("the connection did not end within {DEADLINE:?}; events so far: {events:?}")
            }
        }
    }
    let terminals = events.iter().filter(|e| e.is_terminal()).count();
    assert_eq!(terminals, 1, "exactly one terminal event: {events:?}");
    let last = events.pop().unwrap();
    assert!(last.is_terminal(), "the terminal event is last: {events:?} {last:?}");
    (events, last)
}

/// Finishes and expects `Close { code }`; returns the reason.
pub fn expect_close(rx: &Receiver<Event>, code: u16) -> String {
    match finish(rx).1 {
        Event::Close { code: c, reason } if c == code => reason,
        other => panic!("expected Close {{ code: {code} }}, got {other:?}"),
    }
}

/// Finishes and expects an error of `kind`.
pub fn expect_error(rx: &Receiver<Event>, kind: ErrorKind) -> ConnectionError {
    match finish(rx).1 {
        Event::Error(e) if e.kind() == kind => e,
        other => panic!("expected an error of kind {kind:?}, got {other:?}"),
    }
}

/// Connects with `connect_timeout` to a server that accepts TCP and never
/// answers the upgrade; expects a Timeout error. Returns it and how long the
/// connection took to end.
pub fn connect_to_silent_server(connect_timeout: Duration) -> (ConnectionError, Duration) {
    let server = silent_server();
    let started = Instant::now();
    let o = opts(|o| {
        o.connect_timeout(connect_timeout);
    });
    let (_conn, rx) = open_channel(&server.url(), o);
    let e = expect_error(&rx, ErrorKind::Timeout);
    (e, started.elapsed())
}

/// Everything sent on `rx` until its senders are gone (panics at the deadline).
pub fn collect_all<T: std::fmt::Debug>(rx: &Receiver<T>) -> Vec<T> {
    let deadline = Instant::now() + DEADLINE;
    let mut all = Vec::new();
    loop {
        match rx.recv_deadline(deadline) {
            Ok(x) => all.push(x),
            Err(RecvTimeoutError::Disconnected) => return all,
            Err(RecvTimeoutError::Timeout) => panic!("still open after {DEADLINE:?}: {all:?}"),
        }
    }
}

/// The first item on `rx` matching `pred` (panics at the deadline).
pub fn wait_for<T: std::fmt::Debug>(rx: &Receiver<T>, what: &str, pred: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match rx.recv_deadline(deadline) {
            Ok(x) if pred(&x) => return x,
            Ok(_) => {}
            Err(e) => panic!("{what}: {e:?}"),
        }
    }
}

/// A connection to its own echo server, opened before a test does
/// something hostile and checked afterwards: it must still work.
pub struct Healthy {
    _server: TcpServer,
    conn: Connection,
    rx: Receiver<Event>,
}

impl Healthy {
    pub fn open() -> Healthy {
        let server = echo_server();
        let (conn, rx) = open_channel(&server.url(), Options::new());
        expect_open(&rx);
        Healthy { _server: server, conn, rx }
    }

    /// Exchanges a message and closes cleanly.
    pub fn check(self) {
        echo_text(&self.conn, &self.rx, "still here");
        close_cleanly(&self.conn, &self.rx);
    }
}

/// Callback-style connection whose every event is recorded with the name of
/// the thread it ran on. The channel ends when the worker drops the callbacks.
pub fn recorded(builder: Builder) -> (Connection, Receiver<(Event, String)>) {
    let (tx, rx) = unbounded();
    let here = |tx: &Sender<(Event, String)>, ev: Event| {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        let _ = tx.send((ev, name));
    };
    let (t1, t2, t3, t4) = (tx.clone(), tx.clone(), tx.clone(), tx);
    let conn = builder
        .on_open(move |_| here(&t1, Event::Open))
        .on_message(move |_, m| here(&t2, Event::Message(m)))
        .on_error(move |_, e| here(&t3, Event::Error(e.clone())))
        .on_close(move |_, code, reason| {
            let reason = reason.to_owned();
            here(&t4, Event::Close { code, reason })
        })
        .connect()
        .expect("connect() refused the call");
    (conn, rx)
}

// ----------------------------------------------------------------- probes

/// Names (`comm`) of this process's threads, from `/proc/self/task`.
pub fn thread_names() -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        Some((tid, comm.trim_end().to_owned()))
    })
    .collect()
}

/// How many wsc worker threads (named `wsc-<id>`) exist right now.
pub fn worker_threads() -> usize {
    thread_names().iter().filter(|(_, n)| n.strip_prefix("wsc-").is_some_and(|id| id.parse::<u64>().is_ok())).count()
}

/// Entries in `/proc/self/task`.
pub fn all_threads() -> usize {
    thread_names().len()
}

/// Waits until `cond` holds, checking every few milliseconds; false at the
/// deadline. For conditions only observable by looking (thread exit).
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// User + system CPU time, in clock ticks, of the thread named `wsc-<id>`.
pub fn worker_cpu_ticks(id: u64) -> u64 {
    let name = format!("wsc-{id}");
    let (tid, _) =
        thread_names().into_iter().find(|(_, n)| *n == name).unwrap_or_else(|| panic!("no thread named {name}"));
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // Fields after the parenthesised name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: u64 = fields[11].parse().unwrap();
    let stime: u64 = fields[12].parse().unwrap();
    utime + stime
}

/// User + system CPU time of the whole process (`getrusage`).
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we pass; nothing else is touched.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Resident memory of the process, in bytes.
pub fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// The process's resident memory, in KiB.
pub fn rss_kib() -> usize {
    rss_bytes() / 1024
}

/// Tests that count the process's threads or call `shutdown` take turns
/// through this lock (a test that failed while holding it does not poison
/// it for the others).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Restores the default disposition of SIGPIPE, as in a C host that has not
/// ignored it: a write(2) without MSG_NOSIGNAL to a reset socket would then
/// kill the whole test process.
pub fn sigpipe_default() {
    // SAFETY: restoring the default disposition of a signal has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Makes the next close of `stream` a reset (RST) instead of a FIN.
pub fn reset_on_close(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Sends 8 messages of 4 MiB to a peer that resets the connection part way
/// through the first, and expects a connection-lost error.
pub fn flood_until_reset(conn: &Connection, rx: &Receiver<Event>) -> ConnectionError {
    for _ in 0..8 {
        let _ = conn.send_binary(vec![5u8; 4 << 20]);
    }
    expect_error(rx, ErrorKind::ConnectionLost)
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ----------------------------------------------------------- certificates

/// The test PKI of this test run, made once by `tests/interop/gen-certs.sh`
/// (the one certificate script) in a fresh temporary directory: ca.pem,
/// other-ca.pem, good, wronghost and expired (each .pem and .key).
pub fn test_certs() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wsc-test-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/gen-certs.sh");
        let out = std::process::Command::new("bash").arg(&script).arg(&dir).output().expect("run gen-certs.sh");
        assert!(
            out.status.success(),
            "{} failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// The path of `file` in [`test_certs`].
pub fn test_cert(file: &str) -> String {
    test_certs().join(file).to_str().unwrap().to_owned()
}

// ------------------------------------------------------------ the C view

/// What a C `on_error` saw: `wsc_get_error_kind()`, `wsc_get_http_status()`
/// and the message, read inside the callback; `None` for an `on_close` end.
pub type CErrorSeen = Option<(wsc::ffi::wsc_error_kind, u16, String)>;

unsafe extern "C" fn c_seen_error(_id: u64, message: *const std::ffi::c_char, user: *mut std::ffi::c_void) {
    // SAFETY: user is the Sender leaked by c_connection_end; message is a C string for the call.
    let tx = unsafe { &*(user as *const Sender<CErrorSeen>) };
    let text = unsafe { std::ffi::CStr::from_ptr(message) }.to_string_lossy().into_owned();
    let _ = tx.send(Some((wsc::ffi::wsc_get_error_kind(), wsc::ffi::wsc_get_http_status(), text)));
}

unsafe extern "C" fn c_seen_close(_id: u64, _code: u16, _reason: *const std::ffi::c_char, user: *mut std::ffi::c_void) {
    // SAFETY: as above.
    let tx = unsafe { &*(user as *const Sender<CErrorSeen>) };
    let _ = tx.send(None);
}

/// Connects through the C ABI with options made by `configure` and returns
/// what its terminal callback saw (see [`CErrorSeen`]).
pub fn c_connection_end(url: &str, configure: impl FnOnce(*mut wsc::ffi::wsc_options)) -> CErrorSeen {
    use wsc::ffi;
    let (tx, rx) = unbounded::<CErrorSeen>();
    // Leaked: the worker may still hold it after this returns (a few bytes a test).
    let user = Box::into_raw(Box::new(tx)) as *mut std::ffi::c_void;
    let callbacks = ffi::wsc_callbacks {
        on_open: None,
        on_message: None,
        on_error: Some(c_seen_error),
        on_close: Some(c_seen_close),
    };
    let url = std::ffi::CString::new(url).unwrap();
    let mut id = 0;
    unsafe {
        let o = ffi::wsc_options_new();
        configure(o);
        assert_eq!(ffi::wsc_connect(url.as_ptr(), o, &callbacks, user, &mut id), ffi::wsc_status::WSC_OK);
        ffi::wsc_options_free(o);
    }
    next_event(&rx, "the terminal callback")
}

// ---------------------------------------------------------------- proxies

/// Copies both ways until each side has finished.
pub fn relay(a: TcpStream, b: TcpStream) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let t = std::thread::spawn(move || copy_then_close(a2, b2));
    copy_then_close(b, a);
    let _ = t.join();
}

pub fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// An HTTP CONNECT proxy written here: reports each request head, connects
/// to the requested `host:port`, answers 200 and relays.
pub fn forwarding_http_proxy(bind: &str) -> (TcpServer, Receiver<String>) {
    let (tx, rx) = unbounded();
    let server = TcpServer::start(bind, move |mut client| {
        let Ok(head) = read_request(&mut client) else { return };
        let _ = tx.send(head.clone());
        let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
        match TcpStream::connect(target.as_str()) {
            Ok(upstream) => {
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                relay(client, upstream)
            }
            Err(_) => drop(client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")),
        }
    });
    (server, rx)
}

// ------------------------------------------------------------- racing

/// `base` rounds of a racing test, times the number in the environment
/// variable `var` (for soak runs; default 1).
pub fn rounds(var: &str, base: u64) -> u64 {
    let scale = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(1u64);
    base * scale.max(1)
}

/// splitmix64: deterministic test data (sizes, kinds, bytes) from a number.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The next event, which must be a message.
pub fn expect_message(rx: &Receiver<Event>, what: &str) -> Message {
    match next_event(rx, what) {
        Event::Message(m) => m,
        other => panic!("{what}: expected a message, got {other:?}"),
    }
}
