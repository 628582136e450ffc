//! Starting a connection, callback style (the App Services `WebsocketClient`)
//! or channel style (plain blocking Rust). Both only wrap their callbacks into
//! one [`Sink`]; `lifecycle` does the rest, as for every API style.

use crate::connection::{Connection, Sink};
use crate::error::{ConnectionError, Error};
use crate::event::{Event, Message};
use crate::lifecycle;
use crate::options::Options;
use crossbeam_channel::{unbounded, Receiver};
use std::time::Duration;

type OnOpen = Box<dyn FnMut(&Connection) + Send>;
type OnMessage = Box<dyn FnMut(&Connection, Message) + Send>;
type OnError = Box<dyn FnMut(&Connection, &ConnectionError) + Send>;
type OnClose = Box<dyn FnMut(&Connection, u16, &str) + Send>;
type OnReconnecting = Box<dyn FnMut(&Connection, u32, std::time::Duration, &ConnectionError) + Send>;
type OnPong = Box<dyn FnMut(&Connection, &[u8], Option<Duration>) + Send>;

/// Starts a connection, callback style (the App Services `WebsocketClient`):
///
/// ```no_run
/// let conn = wsc::Builder::new("ws://127.0.0.1:9001/")
///     .on_open(|c| { c.send("hello").unwrap(); })
///     .on_message(|c, msg| { println!("{:?}", msg.as_text()); c.close().unwrap(); })
///     .on_close(|_, code, reason| println!("closed {code} {reason}"))
///     .on_error(|_, err| eprintln!("failed: {err}"))
///     .connect()
///     .unwrap();
/// ```
///
/// Callbacks run on the connection's worker thread, one at a time, in order.
/// Exactly one of `on_error` / `on_close` runs, last.
pub struct Builder {
    uri: String,
    options: Options,
    on_open: Option<OnOpen>,
    on_message: Option<OnMessage>,
    on_error: Option<OnError>,
    on_close: Option<OnClose>,
    on_reconnecting: Option<OnReconnecting>,
    on_pong: Option<OnPong>,
}

impl Builder {
    /// A connection to `uri` (`ws://` or `wss://`) with default options.
    pub fn new(uri: impl Into<String>) -> Builder {
        Builder {
            uri: uri.into(),
            options: Options::default(),
            on_open: None,
            on_message: None,
            on_error: None,
            on_close: None,
            on_reconnecting: None,
            on_pong: None,
        }
    }

    /// Uses these options instead of the defaults ([`Options::new`]).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Called once, first, when the handshake has completed.
    pub fn on_open(mut self, f: impl FnMut(&Connection) + Send + 'static) -> Self {
        self.on_open = Some(Box::new(f));
        self
    }

    /// Called for every complete message, in order. With flow control on,
    /// the next one waits for [`Connection::message_complete`].
    pub fn on_message(mut self, f: impl FnMut(&Connection, Message) + Send + 'static) -> Self {
        self.on_message = Some(Box::new(f));
        self
    }

    /// Terminal: the connection failed (refused, DNS, TLS, HTTP status,
    /// protocol violation, timeout, peer vanished). Nothing follows it.
    pub fn on_error(mut self, f: impl FnMut(&Connection, &ConnectionError) + Send + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }

    /// Terminal: the connection closed, with the peer's code and reason (or
    /// 1006 when the closing handshake could not complete). Nothing follows it.
    pub fn on_close(mut self, f: impl FnMut(&Connection, u16, &str) + Send + 'static) -> Self {
        self.on_close = Some(Box::new(f));
        self
    }

    /// With reconnect on ([`Options::reconnect`]): called before each retry
    /// with its number (from 1), the delay before it, and what went wrong;
    /// `on_open` runs again when it succeeds.
    pub fn on_reconnecting(
        mut self,
        f: impl FnMut(&Connection, u32, std::time::Duration, &ConnectionError) + Send + 'static,
    ) -> Self {
        self.on_reconnecting = Some(Box::new(f));
        self
    }

    /// Called for every pong, with its payload and the round-trip time of
    /// the ping it answers (keepalive or [`Connection::ping`]; `None` for an
    /// unsolicited pong). Turns on [`Options::deliver_pongs`].
    pub fn on_pong(mut self, f: impl FnMut(&Connection, &[u8], Option<Duration>) + Send + 'static) -> Self {
        self.on_pong = Some(Box::new(f));
        self
    }

    /// Returns at once; DNS, TCP, TLS and the upgrade run on the worker thread.
    ///
    /// # Errors
    /// [`Error::InvalidUri`] for a URI that does not parse or is not
    /// `ws://`/`wss://`; [`Error::Shutdown`] after [`crate::shutdown`] (until
    /// [`crate::init`]); [`Error::Internal`] if the system refuses an eventfd
    /// or a thread.
    pub fn connect(self) -> Result<Connection, Error> {
        let Builder {
            uri,
            mut options,
            mut on_open,
            mut on_message,
            mut on_error,
            mut on_close,
            mut on_reconnecting,
            mut on_pong,
        } = self;
        if on_pong.is_some() {
            options.deliver_pongs(true);
        }
        let sink: Sink = Box::new(move |c, ev| match ev {
            Event::Open => on_open.as_mut().map_or((), |f| f(c)),
            Event::Message(m) => on_message.as_mut().map_or((), |f| f(c, m)),
            Event::Reconnecting { attempt, delay, reason } => {
                on_reconnecting.as_mut().map_or((), |f| f(c, attempt, delay, &reason))
            }
            Event::Pong { data, rtt } => on_pong.as_mut().map_or((), |f| f(c, &data, rtt)),
            Event::Error(e) => on_error.as_mut().map_or((), |f| f(c, &e)),
            Event::Close { code, reason } => on_close.as_mut().map_or((), |f| f(c, code, &reason)),
        });
        lifecycle::start(&uri, &options, None, sink)
    }

    /// Channel style: every event arrives on the receiver, which ends after
    /// the terminal event, so `for ev in events { ... }` works. Callbacks set on
    /// this builder are ignored (but `on_pong` still turns on
    /// [`Options::deliver_pongs`], so pongs arrive as [`Event::Pong`]).
    ///
    /// # Errors
    /// As [`Builder::connect`].
    pub fn connect_channel(self) -> Result<(Connection, Receiver<Event>), Error> {
        let (tx, rx) = unbounded();
        let sink: Sink = Box::new(move |_, ev| {
            let _ = tx.send(ev);
        });
        let mut options = self.options;
        if self.on_pong.is_some() {
            options.deliver_pongs(true);
        }
        Ok((lifecycle::start(&self.uri, &options, None, sink)?, rx))
    }
}

/// Channel style with default options: `let (conn, events) = wsc::connect(uri)?;`
///
/// # Errors
/// As [`Builder::connect`].
pub fn connect(uri: &str) -> Result<(Connection, Receiver<Event>), Error> {
    Builder::new(uri).connect_channel()
}
