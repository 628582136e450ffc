//! What a connection reports. One enum serves every API style (callbacks,
//! channel, named handlers, C), so the worker has a single way to deliver.

use crate::error::ConnectionError;
use std::time::Duration;
use tungstenite::{Bytes, Utf8Bytes};

/// A complete WebSocket message (fragments are reassembled before delivery).
///
/// The payloads are tungstenite's reference-counted buffers, so delivering a
/// message copies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message: valid UTF-8, checked on arrival.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The payload bytes (UTF-8 for text).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(_) => None,
        }
    }
}

/// One event of a connection. `Open` comes first, once per successful
/// (re)connect (at most once without reconnect); exactly one of `Error` or
/// `Close` comes last, and nothing follows it.
///
/// New kinds of event may be added in a minor release: `match` with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed.
    Open,
    /// A text or binary message arrived.
    Message(Message),
    /// A pong arrived. Delivered only when asked for
    /// ([`crate::Builder::on_pong`], [`crate::Options::deliver_pongs`]); not
    /// a message, so the flow gate does not hold it back.
    Pong {
        /// The pong's payload (a ping's, echoed).
        data: Bytes,
        /// Time since the ping it answers was sent (keepalive or
        /// [`crate::Connection::ping`]); `None` for a pong that answers none.
        rtt: Option<Duration>,
    },
    /// The connection failed (terminal).
    Error(ConnectionError),
    /// With reconnect on: the connection was lost (or a connect failed) and
    /// wsc tries again after `delay`; `on_open` follows on success. Not
    /// terminal.
    Reconnecting {
        /// The retry's number, from 1.
        attempt: u32,
        /// How long wsc waits before it.
        delay: std::time::Duration,
        /// What went wrong.
        reason: ConnectionError,
    },
    /// The connection closed (terminal): the peer's close code and reason after
    /// a closing handshake, or 1006 when the application closed it and the
    /// handshake could not complete (closed while connecting, close timeout).
    Close {
        /// The close code (1000 normal, 1001 going away, 1006 abnormal, ...).
        code: u16,
        /// The close reason, possibly empty.
        reason: String,
    },
}

impl Event {
    /// True for `Error` and `Close`, the last event of a connection.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Error(_) | Event::Close { .. })
    }

    /// The Dirigible-style method name: `onopen`, `onmessage`, `onpong`,
    /// `onreconnecting`, `onerror`, `onclose`.
    pub fn method(&self) -> &'static str {
        match self {
            Event::Open => "onopen",
            Event::Message(_) => "onmessage",
            Event::Reconnecting { .. } => "onreconnecting",
            Event::Pong { .. } => "onpong",
            Event::Error(_) => "onerror",
            Event::Close { .. } => "onclose",
        }
    }
}
