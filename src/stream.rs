//! The byte stream under tungstenite: TCP, optionally inside TLS.
//!
//! The TCP side remembers a short read. A read that returned less than was
//! asked almost always drained the kernel queue, so the next read would be a
//! wasted system call ending in `EAGAIN`; instead it answers `WouldBlock`
//! at once and the worker goes straight to `poll(2)`. That is safe because
//! poll is level-triggered: if data did arrive meanwhile, poll returns at
//! once. Data buffered above this layer (in tungstenite or OpenSSL) is never
//! hidden, since they only call down here when they need more bytes.
//!
//! It also remembers which direction last answered `WouldBlock`. A TLS
//! handshake or an HTTP upgrade says only "interrupted", yet the step may be
//! stuck on a write (a request with large cookies fills the socket buffer)
//! as well as on a read: the dialer waits for whichever the socket refused.
//!
//! On top, above TLS, [`Stream`] shows every byte tungstenite reads to a
//! [`Frames`] tracker, so the worker knows when tungstenite's buffers hold
//! nothing but whole messages and may be given back (see `frames`). A
//! second tracker follows what tungstenite writes; both count frames into
//! the connection's statistics (a few instructions per frame, no lock).

use crate::frames::Frames;
use crate::stats::{add, Stats};
use crate::waker::Interest;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use tungstenite::stream::MaybeTlsStream;

/// TCP, or TLS over it.
pub(crate) type Transport = MaybeTlsStream<Tcp>;

/// What tungstenite reads and writes: the transport, with the frame tracker
/// watching what is read and counting what is written.
#[derive(Debug)]
pub(crate) struct Stream {
    transport: Transport,
    frames: Frames,
    written: Frames,
    stats: Arc<Stats>,
}

impl Stream {
    /// A stream whose first bytes to read are the HTTP upgrade response
    /// (and the first written, the request).
    pub(crate) fn new(transport: Transport, stats: Arc<Stats>) -> Stream {
        Stream { transport, frames: Frames::default(), written: Frames::default(), stats }
    }

    /// A server's stream: the request head has been read and the response
    /// written, and `leftover` (bytes the client sent after the request)
    /// goes to tungstenite first.
    pub(crate) fn accepted(transport: Transport, leftover: &[u8], stats: Arc<Stats>) -> Stream {
        let mut frames = Frames::after_head();
        frames.feed(leftover);
        add(&stats.frames_received, frames.count());
        Stream { transport, frames, written: Frames::after_head(), stats }
    }

    /// See [`Frames::at_message_boundary`].
    pub(crate) fn at_message_boundary(&self) -> bool {
        self.frames.at_message_boundary()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.transport.read(buf)?;
        let before = self.frames.count();
        self.frames.feed(&buf[..n]);
        let begun = self.frames.count() - before;
        if begun != 0 {
            add(&self.stats.frames_received, begun);
        }
        Ok(n)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.transport.write(buf)?;
        let before = self.written.count();
        self.written.feed(&buf[..n]);
        let begun = self.written.count() - before;
        if begun != 0 {
            add(&self.stats.frames_sent, begun);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.transport.flush()
    }
}

#[derive(Debug)]
pub(crate) struct Tcp {
    inner: TcpStream,
    drained: bool,
    /// The last `WouldBlock` came from a write (else from a read).
    write_blocked: bool,
}

impl Tcp {
    pub(crate) fn new(inner: TcpStream) -> Tcp {
        Tcp { inner, drained: false, write_blocked: false }
    }

    /// What the socket must become ready for before the last refused
    /// operation can go on.
    pub(crate) fn blocked_on(&self) -> Interest {
        Interest { read: !self.write_blocked, write: self.write_blocked }
    }

    /// Notes which direction refused, passing the result through.
    fn note<T>(&mut self, write: bool, r: io::Result<T>) -> io::Result<T> {
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.write_blocked = write;
        }
        r
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = if std::mem::take(&mut self.drained) {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            self.inner.read(buf)
        };
        let n = self.note(false, r)?;
        self.drained = n > 0 && n < buf.len();
        Ok(n)
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf); // std sends with MSG_NOSIGNAL: no SIGPIPE in C hosts
        self.note(true, r)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl AsRawFd for Tcp {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// The TCP layer under either kind of transport.
pub(crate) fn tcp(transport: &Transport) -> &Tcp {
    match transport {
        MaybeTlsStream::Plain(s) => s,
        MaybeTlsStream::NativeTls(s) => s.get_ref(),
        _ => unreachable!("only plain and native-tls streams are built"),
    }
}

impl Stream {
    /// The TCP layer underneath.
    pub(crate) fn tcp(&self) -> &Tcp {
        tcp(&self.transport)
    }

    /// Before this stream is written from an application's thread: OpenSSL
    /// reads the *calling thread's* error queue to tell "would block" from
    /// a failure, and a host may have left errors queued there, which would
    /// turn a full socket into a fatal TLS error. wsc's own threads never
    /// leave any.
    pub(crate) fn foreign_thread(&self) {
        if matches!(self.transport, MaybeTlsStream::NativeTls(_)) {
            // SAFETY: clears the calling thread's OpenSSL error queue; no
            // arguments, no preconditions.
            unsafe { openssl_sys::ERR_clear_error() };
        }
    }
}

/// The socket under a stream.
pub(crate) fn raw_fd(stream: &Stream) -> RawFd {
    stream.tcp().as_raw_fd()
}
