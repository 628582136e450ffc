//! Two kinds of failure, kept apart because the caller reacts differently:
//! [`Error`] is a call refused right now (fix the argument, stop sending, wait);
//! [`ConnectionError`] is why a connection ended, delivered once through the
//! terminal `on_error` event, after which the connection is gone.

use std::fmt;

/// A call that was refused. Each variant says what the caller should do.
///
/// Variants may be added in a minor release: `match` with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An argument was unusable (bad header, bad close code, unreadable file...).
    /// Fix the argument; nothing was changed.
    InvalidArgument(String),
    /// The URI did not parse or its scheme is not `ws`/`wss`. Nothing was started.
    InvalidUri(String),
    /// The connection has finished (or never existed). Drop the handle.
    UnknownId,
    /// The connection is closing: nothing more can be sent on it.
    Closed,
    /// Sending this would take the outgoing queue past its limit. Wait for
    /// [`crate::Connection::buffered_amount`] to fall, or raise the limit.
    QueueFull {
        /// Bytes accepted and not yet written when the send was refused.
        buffered: usize,
        /// The connection's `max_buffered_bytes`.
        limit: usize,
    },
    /// No handler is registered under this name. Register it first.
    UnknownHandler(String),
    /// [`crate::shutdown`] has run; call [`crate::init`] to use the library again.
    Shutdown,
    /// A bug in wsc (including a caught panic). Please report it.
    Internal(String),
    /// [`crate::shutdown`] gave up waiting: some worker threads are still running.
    /// Call it again later before unloading the library.
    Timeout(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::InvalidUri(m) => write!(f, "invalid URI: {m}"),
            Error::UnknownId => f.write_str("unknown connection: it never existed or has finished"),
            Error::Closed => f.write_str("the connection is closing: nothing more can be sent"),
            Error::QueueFull { buffered, limit } => {
                write!(f, "send queue full: {buffered} bytes buffered, limit {limit} (see max_buffered_bytes)")
            }
            Error::UnknownHandler(name) => write!(f, "no handler registered as '{name}'"),
            Error::Shutdown => f.write_str("wsc has been shut down: call wsc_init() first"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
            Error::Timeout(m) => write!(f, "timed out: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// What ended a connection, for code that reacts by kind (retry on
/// `Connect`, alert on `Tls`, ...). The message says it for people.
///
/// Kinds may be added in a minor release: `match` with a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The host name did not resolve.
    Resolve,
    /// TCP connect failed (refused, unreachable).
    Connect,
    /// TLS failed: certificate not trusted, wrong host name, expired, bad handshake.
    Tls,
    /// The HTTP upgrade was refused or malformed; `status` is the HTTP status if any.
    Handshake {
        /// The HTTP status of a refused upgrade (e.g. 403); `None` when the
        /// response was not a status at all (malformed, too slow, bad accept key).
        status: Option<u16>,
    },
    /// The proxy could not be reached or would not open the tunnel: refused,
    /// unresolvable, silent until the connect timeout, closed mid-reply,
    /// refused the credentials, or a SOCKS error.
    Proxy {
        /// The HTTP status of a refused `CONNECT` (401, 403, 407, 502, ...), if any.
        status: Option<u16>,
    },
    /// The peer broke RFC 6455 (bad frame, invalid UTF-8, ...).
    Protocol,
    /// An incoming message or frame exceeded the configured maximum (closed with 1009).
    MessageTooBig,
    /// A deadline passed: connect timeout or keepalive (pong) timeout.
    Timeout,
    /// The peer went away without a closing handshake (EOF, reset).
    ConnectionLost,
    /// A user callback panicked.
    Callback,
    /// Any other I/O or internal failure.
    Other,
}

/// Why a connection ended in `on_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    kind: ErrorKind,
    message: String,
    /// A refused upgrade's `Retry-After`, for reconnect.
    retry_after: Option<std::time::Duration>,
}

impl ConnectionError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConnectionError { kind, message: message.into(), retry_after: None }
    }

    pub(crate) fn with_retry_after(mut self, after: Option<std::time::Duration>) -> Self {
        self.retry_after = after;
        self
    }

    pub(crate) fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// The category of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A human-readable explanation, e.g. `connection refused (127.0.0.1:9)`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status that ended the connection: the server's answer to the
    /// upgrade, or the proxy's answer to `CONNECT`. `None` for every other failure.
    pub fn http_status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Handshake { status } | ErrorKind::Proxy { status } => status,
            _ => None,
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectionError {}

/// The message of a caught panic, for the error that reports it.
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}
