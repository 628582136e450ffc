//! The peer: the benchmark binary started again with `--peer`, so it runs in
//! its own process (client CPU from `getrusage` is then the client's alone)
//! and pinned to its own core.
//!
//! It serves three listeners on 127.0.0.1:
//! * plain, one blocking tungstenite thread per connection; the path picks
//!   the behaviour: `/echo` (send each message back at once: the shortest
//!   round trip), `/stream` (echo, but flush only when no more input is
//!   waiting, so pipelined messages are answered in batches), and
//!   `/push?n=N&size=S` (after the client's first message, send N messages of
//!   S bytes as fast as possible, to measure a client's receive path alone);
//! * TLS (native-tls with a certificate from the local test CA), echo;
//! * scale: one epoll thread for thousands of idle connections, because a
//!   thread per connection on both sides would not fit this machine's task
//!   limit at 8,000 connections.
//!
//! It exits when its standard input closes, that is when the benchmark ends.

use native_tls::{Identity, TlsAcceptor};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use tungstenite::handshake::server::{ErrorResponse, NoCallback, Request, Response};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Bytes, Message, ServerHandshake, WebSocket};

/// Addresses the client needs; printed by the peer as one `PORTS` line.
pub struct Ports {
    pub plain: u16,
    pub tls: u16,
    pub scale: u16,
}

impl Ports {
    pub fn parse(line: &str) -> Option<Ports> {
        let mut it = line.strip_prefix("PORTS")?.split_whitespace();
        let mut next = || it.next()?.parse().ok();
        Some(Ports { plain: next()?, tls: next()?, scale: next()? })
    }
}

/// `--peer [--tls CERT KEY]`: serve until standard input closes.
pub fn main(tls: Option<(String, String)>) -> Result<(), String> {
    crate::sys::raise_nofile();
    let plain = listen()?;
    let scale = listen()?;
    let acceptor = tls.map(|(c, k)| acceptor(&c, &k)).transpose()?;
    let tls_listener = acceptor.as_ref().map(|_| listen()).transpose()?;
    let port = |l: &TcpListener| l.local_addr().map_or(0, |a| a.port());
    println!("PORTS {} {} {}", port(&plain), tls_listener.as_ref().map_or(0, port), port(&scale));
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    std::thread::spawn(move || accept_loop(plain, None));
    if let (Some(l), Some(a)) = (tls_listener, acceptor) {
        std::thread::spawn(move || accept_loop(l, Some(a)));
    }
    std::thread::spawn(move || scale::serve(scale));
    // Until the benchmark goes away.
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_until(0, &mut sink);
    Ok(())
}

/// A listener with a backlog deep enough for 8,000 connects at once.
fn listen() -> Result<TcpListener, String> {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(|e| e.to_string())?;
    s.set_reuse_address(true).map_err(|e| e.to_string())?;
    s.bind(&addr.into()).map_err(|e| e.to_string())?;
    s.listen(8192).map_err(|e| e.to_string())?;
    Ok(s.into())
}

fn acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, String> {
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
    let identity = Identity::from_pkcs8(&read(cert)?, &read(key)?).map_err(|e| e.to_string())?;
    TlsAcceptor::new(identity).map_err(|e| e.to_string())
}

fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>) {
    for stream in listener.incoming().flatten() {
        let tls = tls.clone();
        let _ = std::thread::Builder::new().stack_size(256 << 10).spawn(move || {
            let _ = stream.set_nodelay(true);
            match tls {
                Some(a) => {
                    if let Ok(s) = a.accept(stream) {
                        serve(s, false);
                    }
                }
                None => serve(stream, true),
            }
        });
    }
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(64 << 10)
}

/// Handshakes, then behaves as the request path asks.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn serve<S: Read + Write + AsFd>(stream: S, plain: bool) {
    let mut path = String::new();
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().to_string();
        Ok(resp)
    };
    let Ok(ws) = tungstenite::accept_hdr_with_config(stream, callback, Some(config())) else {
        return;
    };
    if plain && path.starts_with("/stream") {
        stream_echo(ws);
    } else if let Some(query) = path.strip_prefix("/push?") {
        push(ws, query);
    } else {
        echo(ws);
    }
}

/// Streams whose file descriptor the non-blocking echo can poll.
pub trait AsFd {
    fn fd(&self) -> RawFd;
}
impl AsFd for TcpStream {
    fn fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}
impl AsFd for native_tls::TlsStream<TcpStream> {
    fn fd(&self) -> RawFd {
        self.get_ref().as_raw_fd()
    }
}

/// Each message straight back: the peer side of a ping-pong.
fn echo<S: Read + Write>(mut ws: WebSocket<S>) {
    loop {
        match ws.read() {
            Ok(m @ (Message::Binary(_) | Message::Text(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn is_would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
}

/// Echo that answers pipelined messages in batches: reads until no input is
/// left, then flushes everything at once.
fn stream_echo<S: Read + Write + AsFd>(mut ws: WebSocket<S>) {
    let fd = ws.get_ref().fd();
    set_nonblocking(fd);
    loop {
        match ws.read() {
            Ok(m @ (Message::Binary(_) | Message::Text(_))) => match ws.write(m) {
                Ok(()) => {}
                Err(e) if is_would_block(&e) => {
                    if !flush_all(&mut ws, fd) {
                        return;
                    }
                }
                Err(_) => return,
            },
            Ok(_) => {}
            Err(e) if is_would_block(&e) => {
                if !flush_all(&mut ws, fd) {
                    return;
                }
                poll(fd, libc::POLLIN);
            }
            Err(_) => return,
        }
    }
}

fn flush_all<S: Read + Write>(ws: &mut WebSocket<S>, fd: RawFd) -> bool {
    loop {
        match ws.flush() {
            Ok(()) => return true,
            Err(e) if is_would_block(&e) => poll(fd, libc::POLLOUT),
            Err(_) => return false,
        }
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor this thread owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

fn poll(fd: RawFd, events: libc::c_short) {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, -1) };
}

/// After the client's first message, `n` messages of `size` bytes, written
/// back to back through tungstenite's write buffer; then an ordinary echo
/// until the client closes.
fn push<S: Read + Write>(mut ws: WebSocket<S>, query: &str) {
    let param = |name: &str| -> usize {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (n, size) = (param("n"), param("size"));
    let payload = Bytes::from(vec![0x5a; size]);
    loop {
        match ws.read() {
            Ok(Message::Binary(_) | Message::Text(_)) => break,
            Ok(_) => {}
            Err(_) => return,
        }
    }
    for _ in 0..n {
        if ws.write(Message::Binary(payload.clone())).is_err() {
            return;
        }
    }
    if ws.flush().is_ok() {
        echo(ws);
    }
}

/// The scale listener: one thread, epoll, non-blocking tungstenite.
mod scale {
    use super::*;

    const LISTENER: u64 = u64::MAX;

    enum Peer {
        Handshaking(MidHandshake<ServerHandshake<TcpStream, NoCallback>>),
        /// The socket, and whether it is registered for writability.
        Open(WebSocket<TcpStream>, bool),
    }

    struct Server {
        ep: RawFd,
        peers: HashMap<RawFd, Peer>,
    }

    pub fn serve(listener: TcpListener) {
        let _ = listener.set_nonblocking(true);
        // SAFETY: epoll_create1 has no memory preconditions.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        let mut server = Server { ep, peers: HashMap::new() };
        server.ctl(libc::EPOLL_CTL_ADD, listener.as_raw_fd(), libc::EPOLLIN, LISTENER);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        loop {
            // SAFETY: events is a valid buffer of 1024 epoll_event.
            let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 1024, -1) };
            for ev in events.iter().take(n.max(0) as usize).copied() {
                let key = ev.u64;
                if key == LISTENER {
                    server.accept_all(&listener);
                } else {
                    server.service(key as RawFd);
                }
            }
        }
    }

    impl Server {
        fn ctl(&self, op: libc::c_int, fd: RawFd, events: libc::c_int, key: u64) {
            let mut ev = libc::epoll_event { events: events as u32, u64: key };
            // SAFETY: a valid epoll_event for the duration of the call.
            unsafe { libc::epoll_ctl(self.ep, op, fd, &mut ev) };
        }

        fn accept_all(&mut self, listener: &TcpListener) {
            while let Ok((stream, _)) = listener.accept() {
                let _ = stream.set_nonblocking(true);
                let _ = stream.set_nodelay(true);
                let fd = stream.as_raw_fd();
                self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN, fd as u64);
                let small = WebSocketConfig::default().read_buffer_size(4 << 10);
                self.handshake(fd, tungstenite::accept_with_config(stream, Some(small)));
            }
        }

        fn handshake(
            &mut self,
            fd: RawFd,
            r: Result<WebSocket<TcpStream>, HandshakeError<ServerHandshake<TcpStream, NoCallback>>>,
        ) {
            match r {
                Ok(ws) => {
                    self.peers.insert(fd, Peer::Open(ws, false));
                }
                Err(HandshakeError::Interrupted(mid)) => {
                    self.peers.insert(fd, Peer::Handshaking(mid));
                }
                Err(HandshakeError::Failure(_)) => {
                    self.peers.remove(&fd);
                }
            }
        }

        fn service(&mut self, fd: RawFd) {
            match self.peers.remove(&fd) {
                Some(Peer::Handshaking(mid)) => self.handshake(fd, mid.handshake()),
                Some(Peer::Open(mut ws, out)) => {
                    if let Some(out) = self.echo_all(&mut ws, fd, out) {
                        self.peers.insert(fd, Peer::Open(ws, out));
                    }
                }
                None => {}
            }
        }

        /// Echoes whatever is readable. Returns whether to wait for
        /// writability, or None when the connection is over.
        fn echo_all(&self, ws: &mut WebSocket<TcpStream>, fd: RawFd, out: bool) -> Option<bool> {
            loop {
                match ws.read() {
                    Ok(m @ (Message::Binary(_) | Message::Text(_))) => match ws.write(m) {
                        Ok(()) => {}
                        Err(e) if is_would_block(&e) => break,
                        Err(_) => return None,
                    },
                    Ok(_) => {}
                    Err(e) if is_would_block(&e) => break,
                    Err(_) => return None,
                }
            }
            let blocked = match ws.flush() {
                Ok(()) => false,
                Err(e) if is_would_block(&e) => true,
                Err(_) => return None,
            };
            if blocked != out {
                let events = if blocked { libc::EPOLLIN | libc::EPOLLOUT } else { libc::EPOLLIN };
                self.ctl(libc::EPOLL_CTL_MOD, fd, events, fd as u64);
            }
            Some(blocked)
        }
    }
}
