//! The server's side of the HTTP upgrade, on the accepted connection's own
//! thread: read the request head, let the server route it, answer.
//!
//! It mirrors `dial`: the socket is non-blocking and every wait is a
//! `poll(2)` that a stopping server interrupts at once, under one deadline
//! (the handshake timeout), so a slowloris client holds a thread no longer
//! than that. The request is parsed and the 101 built by tungstenite's
//! server handshake (`TryParse`, `create_response`); the I/O is ours, so a
//! plain `GET /` can be answered with a page and a refusal with a real HTTP
//! status, neither of which tungstenite's handshake machine can do.

use crate::stream::{Stream, Tcp};
use crate::waker::{Interest, StopSignal};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{create_response, write_response, Request};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

/// Longest request head accepted (431 beyond).
const MAX_HEAD: usize = 64 << 10;

/// What the server makes of a request.
pub(crate) enum Route<T> {
    /// Answer with the built-in page.
    Page(&'static str),
    /// Upgrade to WebSocket; `T` is what the server found for it.
    Upgrade(T),
    /// Refuse with this HTTP status and a plain-text reason.
    Refuse(u16, String),
}

pub(crate) struct Accept<'a> {
    pub(crate) stop: &'a StopSignal,
    /// `None`: no handshake timeout.
    pub(crate) deadline: Option<Instant>,
    pub(crate) config: WebSocketConfig,
    /// The connection's counters, which its stream feeds.
    pub(crate) stats: &'a std::sync::Arc<crate::stats::Stats>,
}

const READ: Interest = Interest { read: true, write: false };
const WRITE: Interest = Interest { read: false, write: true };

impl Accept<'_> {
    /// Reads the request, routes it with `route`, and answers. Returns the
    /// upgraded socket and the request that asked for it; `None` once the
    /// connection was answered with a page or a refusal, or dropped (stop,
    /// timeout, a client that went away or sent garbage).
    pub(crate) fn handshake<T>(
        &self,
        stream: TcpStream,
        route: impl FnOnce(&Request) -> Route<T>,
    ) -> Option<(WebSocket<Stream>, Request, T)> {
        if stream.set_nonblocking(true).is_err() {
            return None;
        }
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        let mut tcp = Tcp::new(stream);
        let (request, leftover) = match self.read_request(&mut tcp, fd) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return None,
            Err((status, why)) => {
                self.answer(&mut tcp, fd, &refusal(status, &why));
                return None;
            }
        };
        match route(&request) {
            Route::Page(html) => self.answer(&mut tcp, fd, &page(html)),
            Route::Refuse(status, why) => self.answer(&mut tcp, fd, &refusal(status, &why)),
            Route::Upgrade(found) => match create_response(&request) {
                Err(e) => self.answer(&mut tcp, fd, &refusal(400, &format!("not a WebSocket upgrade: {e}"))),
                Ok(response) => {
                    let mut head = Vec::new();
                    if write_response(&mut head, &response).is_err() || !self.write_all(&mut tcp, fd, &head) {
                        return None;
                    }
                    let stream = Stream::accepted(MaybeTlsStream::Plain(tcp), &leftover, self.stats.clone());
                    let ws = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(self.config));
                    return Some((ws, request, found));
                }
            },
        }
        None
    }

    /// The request head and the bytes after it; `Ok(None)` if the client
    /// went away, the server stopped or the deadline passed; `Err` with the
    /// status to answer for a request that cannot be served.
    #[allow(clippy::type_complexity)]
    fn read_request(&self, tcp: &mut Tcp, fd: RawFd) -> Result<Option<(Request, Vec<u8>)>, (u16, String)> {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            match tcp.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if !chunk[..n].contains(&b'\n') {
                        continue; // the head cannot have ended in this piece
                    }
                    match Request::try_parse(&buf) {
                        Ok(Some((len, request))) => return Ok(Some((request, buf.split_off(len)))),
                        Ok(None) if buf.len() > MAX_HEAD => {
                            return Err((431, "the request head is larger than 64 KiB".into()))
                        }
                        Ok(None) => {}
                        Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::WrongHttpMethod)) => {
                            return Err((405, "only GET is served here".into()))
                        }
                        Err(e) => return Err((400, format!("bad request: {e}"))),
                    }
                }
                Err(e) if e.kind() == IoKind::WouldBlock => {
                    if !self.wait(fd, READ) {
                        return Ok(None);
                    }
                }
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(_) => return Ok(None),
            }
        }
    }

    /// Writes a whole HTTP answer, then closes our side of the connection.
    fn answer(&self, tcp: &mut Tcp, fd: RawFd, bytes: &[u8]) {
        if self.write_all(tcp, fd, bytes) {
            // SAFETY: shutdown on our own open socket.
            unsafe { libc::shutdown(fd, libc::SHUT_WR) };
        }
    }

    fn write_all(&self, tcp: &mut Tcp, fd: RawFd, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            match tcp.write(bytes) {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == IoKind::WouldBlock => {
                    if !self.wait(fd, WRITE) {
                        return false;
                    }
                }
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Waits for the socket; false once the server stops or the deadline passes.
    fn wait(&self, fd: RawFd, interest: Interest) -> bool {
        let live = || !self.stop.is_raised() && self.deadline.map_or(true, |d| Instant::now() < d);
        if !live() {
            return false;
        }
        self.stop.wait(fd, interest, self.deadline);
        live()
    }
}

/// A complete HTTP answer that closes the connection.
fn http(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let reason = tungstenite::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn refusal(status: u16, why: &str) -> Vec<u8> {
    http(status, "text/plain; charset=utf-8", &format!("{why}\n"))
}

fn page(html: &str) -> Vec<u8> {
    http(200, "text/html; charset=utf-8", html)
}
