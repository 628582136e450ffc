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
//! The payload of a large frame lands in an aligned buffer of its own
//! before it is copied into tungstenite's. For such a frame tungstenite
//! reserves a buffer of the frame's size and reads into it at whatever
//! offset it has reached, and the kernel's copy into that large, cold
//! destination ran several times slower on this project's reference machine
//! (AMD EPYC, KVM: `_copy_to_iter` took 6× raw tungstenite's samples in a
//! 1 MiB echo). Landing in a small buffer at a 64-byte boundary and copying
//! on in vector-sized pieces cut that echo's CPU by about 40 %. Smaller
//! frames, whose buffer stays in the cache, read directly (landing them
//! cost a 64 KiB stream a third more CPU); so does TLS, which decrypts from
//! its own buffer. The landing buffer is given back with tungstenite's when
//! the connection idles.
//!
//! It also remembers which direction last answered `WouldBlock`. A TLS
//! handshake or an HTTP upgrade says only "interrupted", yet the step may be
//! stuck on a write (a request with large cookies fills the socket buffer)
//! as well as on a read: the dialer waits for whichever the socket refused.
//!
//! On top, above TLS, [`Stream`] shows every byte tungstenite reads to a
//! [`Frames`] tracker, so the worker knows when tungstenite's buffers hold
//! nothing but whole messages and may be given back (see `frames`). A
//! second tracker follows what is written; both count frames into the
//! connection's statistics (a few instructions per frame, no lock).
//!
//! Two writers share the socket: tungstenite (control frames: pings, pongs,
//! Close) and the outbox's batches of data frames, framed by the senders
//! (see `outbox`). Bytes must never interleave inside a frame, yet either
//! may be refused half-way by a full socket. So every byte goes through one
//! ordered buffer here: what the socket does not take at once waits in
//! `unsent`, everything written later queues behind it, and `flush` drains
//! it (`WouldBlock` while the socket refuses). A write from tungstenite is
//! always taken whole, so tungstenite never holds a half-written frame of
//! its own. TLS asks that a refused write be retried with the same bytes:
//! the retry starts with them, as it did when tungstenite's buffer held
//! them.

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
    /// Bytes owed to the socket, in order, from `sent` on.
    unsent: Vec<u8>,
    sent: usize,
}

impl Stream {
    /// A stream whose first bytes to read are the HTTP upgrade response
    /// (and the first written, the request).
    pub(crate) fn new(transport: Transport, stats: Arc<Stats>) -> Stream {
        Stream::with(transport, Frames::default(), Frames::default(), stats)
    }

    fn with(transport: Transport, frames: Frames, written: Frames, stats: Arc<Stats>) -> Stream {
        Stream { transport, frames, written, stats, unsent: Vec::new(), sent: 0 }
    }

    /// A server's stream: the request head has been read and the response
    /// written, and `leftover` (bytes the client sent after the request)
    /// goes to tungstenite first.
    pub(crate) fn accepted(transport: Transport, leftover: &[u8], stats: Arc<Stats>) -> Stream {
        let mut frames = Frames::after_head();
        frames.feed(leftover);
        add(&stats.frames_received, frames.count());
        Stream::with(transport, frames, Frames::after_head(), stats)
    }

    /// See [`Frames::at_message_boundary`].
    pub(crate) fn at_message_boundary(&self) -> bool {
        self.frames.at_message_boundary()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.transport {
            MaybeTlsStream::Plain(tcp) if self.frames.payload_left() > LAND_ABOVE => tcp.receive(buf, true)?,
            transport => transport.read(buf)?,
        };
        let before = self.frames.count();
        self.frames.feed(&buf[..n]);
        let begun = self.frames.count() - before;
        if begun != 0 {
            add(&self.stats.frames_received, begun);
        }
        Ok(n)
    }
}

impl Stream {
    /// Queues whole frames behind everything written before (no copy when
    /// nothing waits); returns the buffer to reuse, emptied.
    pub(crate) fn append(&mut self, mut bytes: Vec<u8>) -> Vec<u8> {
        self.count_written(&bytes);
        if self.unsent.is_empty() {
            std::mem::swap(&mut self.unsent, &mut bytes);
            self.sent = 0;
        } else {
            self.unsent.extend_from_slice(&bytes);
        }
        bytes.clear();
        bytes
    }

    /// Frees the buffer of bytes owed to the socket when it is empty, and
    /// the landing buffer of reads.
    pub(crate) fn release(&mut self) {
        if self.unsent.is_empty() {
            self.unsent = Vec::new();
        }
        tcp_mut(&mut self.transport).landing = Vec::new();
    }

    fn count_written(&mut self, bytes: &[u8]) {
        let before = self.written.count();
        self.written.feed(bytes);
        let begun = self.written.count() - before;
        if begun != 0 {
            add(&self.stats.frames_sent, begun);
        }
    }
}

impl Write for Stream {
    /// Takes all of `buf`: what the socket refuses waits for `flush`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count_written(buf);
        if !self.unsent.is_empty() {
            self.unsent.extend_from_slice(buf);
            return Ok(buf.len());
        }
        let n = match self.transport.write(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        self.unsent.extend_from_slice(&buf[n..]);
        self.sent = 0;
        Ok(buf.len())
    }

    /// Writes what waits; `WouldBlock` while the socket refuses some of it.
    fn flush(&mut self) -> io::Result<()> {
        while self.sent < self.unsent.len() {
            match self.transport.write(&self.unsent[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) => {
                    if self.sent > self.unsent.len() / 2 {
                        self.unsent.drain(..self.sent); // the unsent bytes stay first
                        self.sent = 0;
                    }
                    return Err(e);
                }
            }
        }
        self.unsent.clear();
        self.sent = 0;
        self.transport.flush()
    }
}

#[derive(Debug)]
pub(crate) struct Tcp {
    inner: TcpStream,
    drained: bool,
    /// The last `WouldBlock` came from a write (else from a read).
    write_blocked: bool,
    /// Where reads land first (see the module docs); empty until needed.
    landing: Vec<u8>,
}

/// The most one read takes through the landing buffer.
const LANDING: usize = 16 << 10;

/// Frames with more payload than this still to come land (see the module docs).
const LAND_ABOVE: u64 = 64 << 10;

/// The boundary reads land on.
const ALIGN: usize = 64;

impl Tcp {
    pub(crate) fn new(inner: TcpStream) -> Tcp {
        Tcp { inner, drained: false, write_blocked: false, landing: Vec::new() }
    }

    /// Reads into the landing buffer, then copies into `buf`.
    fn land(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(LANDING);
        if self.landing.is_empty() {
            self.landing = vec![0; LANDING + ALIGN];
        }
        let at = self.landing.as_ptr().align_offset(ALIGN);
        let landed = &mut self.landing[at..at + want];
        let n = self.inner.read(landed)?;
        crate::scratch::copy(&mut buf[..n], &landed[..n]);
        Ok(n)
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

impl Tcp {
    /// A read, straight into `buf` or through the landing buffer.
    fn receive(&mut self, buf: &mut [u8], land: bool) -> io::Result<usize> {
        let asked = if land { buf.len().min(LANDING) } else { buf.len() };
        let r = if std::mem::take(&mut self.drained) {
            Err(io::ErrorKind::WouldBlock.into())
        } else if land {
            self.land(buf)
        } else {
            self.inner.read(buf)
        };
        let n = self.note(false, r)?;
        self.drained = n > 0 && n < asked;
        Ok(n)
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.receive(buf, false)
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

pub(crate) fn tcp_mut(transport: &mut Transport) -> &mut Tcp {
    match transport {
        MaybeTlsStream::Plain(s) => s,
        MaybeTlsStream::NativeTls(s) => s.get_mut(),
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
