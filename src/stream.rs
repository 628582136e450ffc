//! The byte stream under tungstenite: TCP, optionally inside TLS.
//!
//! The TCP side remembers a short read. A read that returned less than was
//! asked almost always drained the kernel queue, so the next read would be a
//! wasted system call ending in `EAGAIN`; instead it answers `WouldBlock`
//! at once and the worker goes straight to `poll(2)`. That is safe because
//! poll is level-triggered: if data did arrive meanwhile, poll returns at
//! once. Data buffered above this layer (in tungstenite or OpenSSL) is never
//! hidden, since they only call down here when they need more bytes.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use tungstenite::stream::MaybeTlsStream;

pub(crate) type Stream = MaybeTlsStream<Tcp>;

#[derive(Debug)]
pub(crate) struct Tcp {
    inner: TcpStream,
    drained: bool,
}

impl Tcp {
    pub(crate) fn new(inner: TcpStream) -> Tcp {
        Tcp { inner, drained: false }
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::mem::take(&mut self.drained) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.inner.read(buf)?;
        self.drained = n > 0 && n < buf.len();
        Ok(n)
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf) // std sends with MSG_NOSIGNAL: no SIGPIPE in C hosts
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

/// The socket under either kind of stream.
pub(crate) fn raw_fd(stream: &Stream) -> RawFd {
    match stream {
        MaybeTlsStream::Plain(s) => s.as_raw_fd(),
        MaybeTlsStream::NativeTls(s) => s.get_ref().as_raw_fd(),
        _ => unreachable!("only plain and native-tls streams are built"),
    }
}
