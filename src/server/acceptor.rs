//! The server's one acceptor thread: it accepts sockets and carries every
//! one of them through the TLS handshake (wss://), the request head and a
//! refusal or page, multiplexed with `poll(2)`, so a socket that has not
//! been admitted costs no thread. Only an admitted upgrade gets one
//! (`lifecycle::start_accepted`), which writes the 101 and runs the worker.
//!
//! Invariants:
//! * At most `max_pending` sockets are pending (handshaking, reading their
//!   head, being answered or lingering); one accepted past it is closed at
//!   once, counted, and logged at WARN at most once a second.
//! * A pending socket costs its descriptor, at most 64 KiB + 1 of head (see
//!   `accept::HeadReader`), its TLS state and a slot here; each ends by the
//!   handshake timeout, and a lingering one `LINGER` after its answer.
//! * Refusals, 503 over the connection limit included, are answered here;
//!   then the write side is shut and what the client still sends is read
//!   and discarded (nginx's lingering close), so it can read the answer
//!   instead of a reset. Nothing read after a refusal is kept.
//! * No lock is held here across a log line; the loop sleeps in `poll` with
//!   the nearest deadline as its timeout (no busy waiting) and wakes at once
//!   when the server stops, dropping every pending socket.

use super::{Admit, ServerShared};
use crate::accept::{HeadReader, Progress, Refusal, Route, Upgraded};
use crate::logging::wlog;
use crate::stream::{tcp, tcp_mut, Tcp, Transport};
use crate::waker::{deadline_in, poll_timeout, Interest};
use native_tls::{HandshakeError, MidHandshakeTlsStream};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;

/// How long a refused client may go on sending after the answer.
const LINGER: Duration = Duration::from_secs(2);

/// Accepts taken per wake-up, so pending sockets are served between bursts.
const ACCEPT_BURST: usize = 256;

/// Where a pending socket is.
enum State {
    Tls(MidHandshakeTlsStream<Tcp>),
    Head(Transport, HeadReader),
    /// Writing a refusal or the page, from `.2` on.
    Answer(Transport, Vec<u8>, usize),
    Linger(Transport),
    Done,
}

struct Pending {
    state: State,
    deadline: Option<Instant>,
    peer: SocketAddr,
}

/// Sockets closed because `max_pending` were already pending.
#[derive(Default)]
struct Overflow {
    total: u64,
    unlogged: u64,
    logged_at: Option<Instant>,
}

struct Acceptor<'a> {
    server: &'a Arc<ServerShared>,
    listener: &'a TcpListener,
    pending: Vec<Pending>,
    /// Where reads land (a head's bytes, or bytes to discard).
    chunk: Vec<u8>,
    overflow: Overflow,
    /// Accepting again after this (out of descriptors).
    paused_until: Option<Instant>,
}

/// Runs the acceptor until the server stops.
pub(crate) fn run(server: &Arc<ServerShared>, listener: &TcpListener) {
    let mut a = Acceptor {
        server,
        listener,
        pending: Vec::new(),
        chunk: vec![0; 16 << 10],
        overflow: Overflow::default(),
        paused_until: None,
    };
    while !server.stop.is_raised() {
        a.turn();
    }
}

impl Acceptor<'_> {
    /// One wait and everything it made ready.
    fn turn(&mut self) {
        let now = Instant::now();
        if self.paused_until.is_some_and(|t| now >= t) {
            self.paused_until = None;
        }
        let listening = self.paused_until.is_none();
        let mut fds = Vec::with_capacity(self.pending.len() + 2);
        fds.push(pollfd(self.server.stop.fd(), Interest { read: true, write: false }));
        fds.push(pollfd(if listening { self.listener.as_raw_fd() } else { -1 }, Interest { read: true, write: false }));
        fds.extend(self.pending.iter().map(|p| pollfd(p.fd(), p.interest())));
        let timeout = self.next_deadline().map_or(-1, poll_timeout);
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 || self.server.stop.is_raised() {
            return;
        }
        let now = Instant::now();
        for (p, fd) in self.pending.iter_mut().zip(&fds[2..]) {
            if p.deadline.is_some_and(|d| now >= d) {
                if !matches!(p.state, State::Linger(_)) {
                    wlog!(
                        Debug,
                        0,
                        "server {}: {} did not finish its handshake in time: closed",
                        self.server.addr,
                        p.peer
                    );
                }
                p.state = State::Done;
            } else if fd.revents != 0 {
                step(self.server, &mut self.chunk, p);
            }
        }
        self.pending.retain(|p| !matches!(p.state, State::Done));
        if fds[1].revents != 0 {
            self.accept_burst();
        }
        self.overflow.log(self.server);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let pending = self.pending.iter().filter_map(|p| p.deadline);
        let overflow = self.overflow.next_log();
        pending.chain(overflow).chain(self.paused_until).min()
    }

    fn accept_burst(&mut self) {
        for _ in 0..ACCEPT_BURST {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == IoKind::WouldBlock => return,
                Err(e) if e.kind() == IoKind::Interrupted || e.kind() == IoKind::ConnectionAborted => {}
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    wlog!(Warn, 0, "server {}: cannot accept: {e}; retrying in 100 ms", self.server.addr);
                    self.paused_until = deadline_in(Duration::from_millis(100));
                    return;
                }
            }
        }
    }

    /// Takes a new socket in as pending, or closes it over the limit.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.pending.len() >= self.server.max_pending() {
            self.overflow.total += 1;
            self.overflow.unlogged += 1;
            self.overflow.log(self.server);
            return; // dropped: closed at once
        }
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let deadline = deadline_in(self.server.handshake_timeout());
        let tcp = Tcp::new(stream);
        let state = match &self.server.tls {
            Some(tls) => tls_step(tls.accept(tcp), peer, self.server),
            None => State::Head(MaybeTlsStream::Plain(tcp), HeadReader::default()),
        };
        let mut p = Pending { state, deadline, peer };
        step(self.server, &mut self.chunk, &mut p);
        if !matches!(p.state, State::Done) {
            self.pending.push(p);
        }
    }
}

impl Overflow {
    /// Logs what was closed since the last line, at most once a second.
    fn log(&mut self, server: &ServerShared) {
        let due = self.logged_at.map_or(true, |t| t.elapsed() >= Duration::from_secs(1));
        if self.unlogged == 0 || !due {
            return;
        }
        let (addr, max) = (server.addr, server.max_pending());
        wlog!(
            Warn,
            0,
            "server {addr}: closed {} new socket(s) at once: {max} handshakes were already pending \
             (wsc_server_set_max_pending); {} in all",
            self.unlogged,
            self.total
        );
        self.unlogged = 0;
        self.logged_at = Some(Instant::now());
    }

    /// When the sockets closed since the last line may be logged.
    fn next_log(&self) -> Option<Instant> {
        (self.unlogged > 0).then(|| self.logged_at.map(|t| t + Duration::from_secs(1))).flatten()
    }
}

impl Pending {
    fn fd(&self) -> RawFd {
        match &self.state {
            State::Tls(mid) => mid.get_ref().as_raw_fd(),
            State::Head(t, _) | State::Answer(t, ..) | State::Linger(t) => tcp(t).as_raw_fd(),
            State::Done => -1,
        }
    }

    fn interest(&self) -> Interest {
        match &self.state {
            State::Tls(mid) => mid.get_ref().blocked_on(),
            State::Head(t, _) | State::Answer(t, ..) => tcp(t).blocked_on(),
            State::Linger(_) | State::Done => Interest { read: true, write: false },
        }
    }
}

fn pollfd(fd: RawFd, interest: Interest) -> libc::pollfd {
    let mut events = 0;
    if interest.read {
        events |= libc::POLLIN;
    }
    if interest.write {
        events |= libc::POLLOUT;
    }
    libc::pollfd { fd, events, revents: 0 }
}

fn tls_step(
    attempt: Result<native_tls::TlsStream<Tcp>, HandshakeError<Tcp>>,
    peer: SocketAddr,
    server: &ServerShared,
) -> State {
    match attempt {
        Ok(tls) => State::Head(MaybeTlsStream::NativeTls(tls), HeadReader::default()),
        Err(HandshakeError::WouldBlock(mid)) => State::Tls(mid),
        Err(HandshakeError::Failure(e)) => {
            wlog!(Debug, 0, "server {}: TLS handshake with {peer} failed: {e}", server.addr);
            State::Done
        }
    }
}

/// Moves a pending socket on as far as its socket allows.
fn step(server: &Arc<ServerShared>, chunk: &mut [u8], p: &mut Pending) {
    loop {
        let state = std::mem::replace(&mut p.state, State::Done);
        let lingering = matches!(state, State::Linger(_));
        let (next, again) = match state {
            State::Tls(mid) => {
                let next = tls_step(mid.handshake(), p.peer, server);
                let again = matches!(next, State::Head(..));
                (next, again)
            }
            State::Head(t, reader) => read_head(server, chunk, t, reader, p.peer),
            State::Answer(t, bytes, at) => answer(t, bytes, at),
            State::Linger(t) => (discard(chunk, t), false),
            State::Done => (State::Done, false),
        };
        if matches!(next, State::Linger(_)) && !lingering {
            p.deadline = deadline_in(LINGER);
        }
        p.state = next;
        if !again {
            return;
        }
    }
}

/// Reads what the socket has of the head; on to the answer or the upgrade
/// once it is complete. The bool: step again at once.
fn read_head(
    server: &Arc<ServerShared>,
    chunk: &mut [u8],
    mut t: Transport,
    mut reader: HeadReader,
    peer: SocketAddr,
) -> (State, bool) {
    loop {
        let room = chunk.len().min(reader.room());
        match t.read(&mut chunk[..room]) {
            Ok(0) => return (State::Done, false),
            Ok(n) => match reader.feed(&chunk[..n]) {
                Progress::More => {}
                Progress::Head(request, leftover) => return (decide(server, t, *request, leftover, peer), true),
                Progress::Refuse(refusal) => return (refuse(server, t, &refusal, peer), true),
            },
            Err(e) if e.kind() == IoKind::WouldBlock => return (State::Head(t, reader), false),
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(_) => return (State::Done, false),
        }
    }
}

/// Routes a complete request: an answer to write here, or an upgrade
/// handed to a thread of its own.
fn decide(
    server: &Arc<ServerShared>,
    t: Transport,
    request: tungstenite::handshake::server::Request,
    leftover: Vec<u8>,
    peer: SocketAddr,
) -> State {
    let Admit { endpoint, handler, response } = match server.route(&request) {
        Route::Page(html) => return State::Answer(t, crate::accept::page(html), 0),
        Route::Refuse(refusal) => return refuse(server, t, &refusal, peer),
        Route::Upgrade(admit) => admit,
    };
    let max = server.max_connections();
    if server.live.load(Ordering::SeqCst) >= max {
        let full = Refusal::new(503, format!("this server serves at most {max} connections"));
        return refuse(server, t, &full, peer);
    }
    let deadline = deadline_in(server.handshake_timeout());
    let upgraded = Upgraded { transport: t, request, leftover, response, endpoint, handler, deadline };
    if let Err(e) = crate::lifecycle::start_accepted(server, upgraded) {
        wlog!(Warn, 0, "server {}: cannot serve {peer}: {e}", server.addr);
    }
    State::Done
}

fn refuse(server: &ServerShared, t: Transport, refusal: &Refusal, peer: SocketAddr) -> State {
    wlog!(Debug, 0, "server {}: answered {} to {peer}: {}", server.addr, refusal.status, refusal.why);
    State::Answer(t, refusal.to_bytes(), 0)
}

/// Writes the answer; then shuts the write side and lingers.
fn answer(mut t: Transport, bytes: Vec<u8>, mut at: usize) -> (State, bool) {
    while at < bytes.len() {
        match t.write(&bytes[at..]) {
            Ok(0) => return (State::Done, false),
            Ok(n) => at += n,
            Err(e) if e.kind() == IoKind::WouldBlock => return (State::Answer(t, bytes, at), false),
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(_) => return (State::Done, false),
        }
    }
    if let MaybeTlsStream::NativeTls(tls) = &mut t {
        let _ = tls.shutdown(); // close_notify, if the socket takes it now
    }
    // SAFETY: shutdown on our own open socket.
    unsafe { libc::shutdown(tcp(&t).as_raw_fd(), libc::SHUT_WR) };
    (State::Linger(t), true)
}

/// Reads and drops what a refused client still sends, until it closes
/// (a bounded amount per wake-up, so a flood cannot hold the loop).
fn discard(chunk: &mut [u8], mut t: Transport) -> State {
    for _ in 0..16 {
        match tcp_mut(&mut t).read(chunk) {
            Ok(0) => return State::Done,
            Ok(_) => {}
            Err(e) if e.kind() == IoKind::WouldBlock => return State::Linger(t),
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(_) => return State::Done,
        }
    }
    State::Linger(t)
}
